/**
 * `POST /v1/contacts/import/preview`: a CSV checked exactly as the import checks it (the dashboard
 * shows it before a campaign is created) while storing nothing: the same row-by-row report, line
 * numbers and reasons as `POST /v1/contact-lists/:id/import` gives for the same file afterwards, the
 * same whole-file refusals, and no contact, list membership or audit entry written.
 */
import request from 'supertest';
import {
  bearer,
  ownerClient,
  signUpTenant,
  startStack,
  type SignedUp,
  type TestStack,
} from './support/stack';

let stack: TestStack;
let tenant: SignedUp;

beforeAll(async () => {
  stack = await startStack();
  tenant = await signUpTenant(stack.app, 'Preview Co');
});
afterAll(() => stack.close());

const preview = (csv: string, contentType = 'text/csv', token = tenant.token) =>
  request(stack.app)
    .post('/v1/contacts/import/preview')
    .set(bearer(token))
    .set('content-type', contentType)
    .send(csv);

/** Rows the tenant has in every table an import writes to. */
async function written(): Promise<Record<string, number>> {
  const db = await ownerClient(stack.config);
  try {
    const out: Record<string, number> = {};
    for (const table of ['contacts', 'contact_lists', 'contact_list_members', 'audit_log']) {
      const res = await db.query<{ n: string }>(`select count(*) as n from ${table} where tenant_id = $1`, [
        tenant.tenantId,
      ]);
      out[table] = Number(res.rows[0]!.n);
    }
    return out;
  } finally {
    await db.end();
  }
}

const mixed = [
  'Phone,Name,Email,TimeZone,do_not_call,Plan', // 1
  '(415) 555-0101,Ada Lovelace,ADA@example.com,,no,gold', // 2
  '+1 212 555 0102,Grace Hopper,,america/chicago,yes,"silver', // 3
  'tier"', // 4
  '415.555.0101,Dup In File,,,,', // 5: same phone as row 2
  '312-555-0150,Existing,,,,platinum', // 6: already a contact
  '555,Bad Phone,,,,', // 7
  '+13125550103,Bad Email,x@,,,', // 8
  '+13035550104,Bad Zone,,Mars/Olympus,,', // 9
  '+16025550105,Short', // 10
  '', // 11: blank
  '"bad"x,Malformed,,,,', // 12
  '+16025550108,,,,,', // 13
].join('\r\n');

describe('POST /v1/contacts/import/preview', () => {
  it('reports a bad row by its line and reason, as the import words it, storing nothing', async () => {
    const before = await written();
    const csv = 'phone,name,time_zone\n+14155550111,Ann,\n+14155550112,Bob,America/Chicago\n555,Cy,\n';
    const res = await preview(csv);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      listId: null,
      region: 'US',
      totals: { rows: 3, accepted: 2, duplicate: 0, invalid: 1 },
      rowsTruncated: false,
      rows: [
        { row: 2, status: 'accepted', phone: '+14155550111', name: 'Ann', timeZone: 'America/Los_Angeles' },
        { row: 3, status: 'accepted', phone: '+14155550112', name: 'Bob', timeZone: 'America/Chicago' },
        { row: 4, status: 'invalid', reason: "phone: '555' is not a valid number for region US" },
      ],
      columns: {
        phone: 'phone',
        name: 'name',
        firstName: null,
        lastName: null,
        email: null,
        timeZone: 'time_zone',
        doNotCall: null,
        attributes: [],
      },
    });
    expect(await written()).toEqual(before);
  });

  it('gives the report the import then gives for the same file (duplicates included), and writes nothing', async () => {
    const existing = await request(stack.app)
      .post('/v1/contacts')
      .set(bearer(tenant.token))
      .send({ phone: '+13125550150', name: 'Existing Before' });
    expect(existing.status).toBe(201);
    const before = await written();

    const res = await preview(mixed);
    expect(res.status).toBe(200);
    expect(await written()).toEqual(before);
    expect(res.body.totals).toEqual({ rows: 10, accepted: 3, duplicate: 2, invalid: 5 });
    expect(res.body.columns).toEqual({
      phone: 'Phone',
      name: 'Name',
      firstName: null,
      lastName: null,
      email: 'Email',
      timeZone: 'TimeZone',
      doNotCall: 'do_not_call',
      attributes: [{ column: 'Plan', key: 'Plan' }],
    });
    expect(res.body.rows.filter((r: { status: string }) => r.status !== 'accepted')).toEqual([
      {
        row: 5,
        status: 'duplicate',
        phone: '+14155550101',
        name: 'Dup In File',
        timeZone: 'America/Los_Angeles',
        reason: 'same phone as row 2',
      },
      {
        row: 6,
        status: 'duplicate',
        contactId: existing.body.id,
        phone: '+13125550150',
        name: 'Existing',
        timeZone: 'America/Chicago',
        reason: 'already a contact',
      },
      { row: 7, status: 'invalid', reason: "phone: '555' is not a valid number for region US" },
      { row: 8, status: 'invalid', phone: '+13125550103', reason: "email: 'x@' is not an email" },
      {
        row: 9,
        status: 'invalid',
        phone: '+13035550104',
        reason: "time_zone: 'Mars/Olympus' is not a time zone",
      },
      { row: 10, status: 'invalid', reason: 'row has 2 fields, header has 6' },
      {
        row: 12,
        status: 'invalid',
        reason: 'malformed CSV (line 12: text after the closing quote of field 1)',
      },
    ]);

    // The real import of the same file, afterwards: the same rows, statuses, phones and reasons.
    const list = await request(stack.app)
      .post('/v1/contact-lists')
      .set(bearer(tenant.token))
      .send({ name: 'After preview' });
    const imported = await request(stack.app)
      .post(`/v1/contact-lists/${list.body.id}/import`)
      .set(bearer(tenant.token))
      .set('content-type', 'text/csv')
      .send(mixed);
    expect(imported.status).toBe(200);
    expect(imported.body.totals).toEqual(res.body.totals);
    const essentials = (rows: Record<string, unknown>[]) =>
      rows.map(({ row, status, phone, reason }) => ({ row, status, phone, reason }));
    expect(essentials(res.body.rows)).toEqual(essentials(imported.body.rows));

    // Previewed again, the contacts the import stored are now duplicates, as a second import says.
    const again = await preview(mixed);
    expect(again.body.totals).toEqual({ rows: 10, accepted: 0, duplicate: 5, invalid: 5 });
    const accepted = imported.body.rows.filter((r: { status: string }) => r.status === 'accepted');
    for (const row of accepted) {
      expect(again.body.rows.find((r: { row: number }) => r.row === row.row)).toMatchObject({
        status: 'duplicate',
        contactId: row.contactId,
        reason: 'already a contact',
      });
    }
  });

  it('refuses a whole file as the import does (nothing stored), and in the region given', async () => {
    const before = await written();
    const cases: [string, string, number, string][] = [
      ['', 'text/csv', 422, 'CSV_EMPTY'],
      ['phone,name\r\n', 'text/csv', 422, 'CSV_EMPTY'],
      ['name,email\nAda,ada@example.com\n', 'text/csv', 422, 'CSV_PHONE_COLUMN_MISSING'],
      ['phone,Email,email\n+14155550190,a@b.co,c@d.co\n', 'text/csv', 422, 'CSV_HEADER_INVALID'],
      ['phone\n+14155550191\n', 'application/xml', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['phone\n+14155550192\n', 'text/csv; charset=iso-8859-1', 415, 'UNSUPPORTED_ENCODING'],
    ];
    for (const [csv, type, status, code] of cases) {
      const res = await preview(csv, type);
      expect([res.status, res.body.error?.code]).toEqual([status, code]);
    }
    const gb = await request(stack.app)
      .post('/v1/contacts/import/preview')
      .query({ region: 'gb' })
      .set(bearer(tenant.token))
      .set('content-type', 'text/csv')
      .send('phone\n020 7946 0958\n');
    expect(gb.status).toBe(200);
    expect(gb.body).toMatchObject({
      region: 'GB',
      rows: [{ row: 2, status: 'accepted', phone: '+442079460958', timeZone: 'Europe/London' }],
    });
    expect(await written()).toEqual(before);
  });

  it('is for the roles that import (403 for a viewer), and documented with a text/csv body', async () => {
    const key = await request(stack.app)
      .post('/v1/api-keys')
      .set(bearer(tenant.token))
      .send({ name: 'viewer', role: 'viewer' });
    expect(key.status).toBe(201);
    const res = await preview('phone\n+14155550100\n', 'text/csv', key.body.key as string);
    expect([res.status, res.body.error?.code]).toEqual([403, 'INSUFFICIENT_ROLE']);

    const doc = await request(stack.app).get('/openapi.json');
    const op = doc.body.paths['/v1/contacts/import/preview'].post;
    expect(Object.keys(op.requestBody.content)).toEqual(['text/csv']);
    expect(op.requestBody.description).toContain('Nothing is stored');
  });
});
