/**
 * CSV imports of contacts: the streaming reader (line numbers with any line ends and chunking,
 * quoting, malformed rows that cost only themselves), the column mapping, and imports through the
 * API on the real database: a row-by-row report with exact totals, valid rows stored with derived
 * time zones and added to the list, existing contacts joined to the list unchanged, whole-file
 * refusals that store nothing, and a 20,000-row file imported completely.
 */
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import request from 'supertest';
import {
  CsvRecordReader,
  MAX_CSV_BYTES,
  MAX_REPORTED_ROWS,
  importContactsCsv,
  mapColumns,
  type CsvRecord,
} from '../api/services/contact-import';
import { AppError } from '../api/errors';
import { toE164 } from '../lib/phone';
import {
  bearer,
  ownerClient,
  signUpTenant,
  startStack,
  type SignedUp,
  type TestStack,
} from './support/stack';

/** Feeds `text` to a reader in chunks of `size` characters. */
function readAll(text: string, size: number): CsvRecord[] {
  const reader = new CsvRecordReader();
  const records: CsvRecord[] = [];
  for (let i = 0; i < text.length; i += size) records.push(...reader.write(text.slice(i, i + size)));
  records.push(...reader.end());
  return records;
}

describe('CsvRecordReader', () => {
  const sample = [
    '\ufeffphone,name,notes', // 1
    '+14155550100,"Doe, Jane","two', // 2
    'lines"', // 3
    '', // 4: blank
    '555,Bob', // 5: short
    '"a ""quoted"" word",2,3', // 6
    '"bad"x,1,2', // 7: text after a closing quote
    'ok,1,2', // 8
    'x,"never closed,3', // 9
    'last,row,here', // 10
    'trailing,comma,', // 11
  ].join('\n');

  const expected: CsvRecord[] = [
    { line: 1, fields: ['phone', 'name', 'notes'] },
    { line: 2, fields: ['+14155550100', 'Doe, Jane', 'two\nlines'] },
    { line: 5, fields: ['555', 'Bob'] },
    { line: 6, fields: ['a "quoted" word', '2', '3'] },
    { line: 7, fields: ['badx', '1', '2'], error: 'line 7: text after the closing quote of field 1' },
    { line: 8, fields: ['ok', '1', '2'] },
    { line: 9, fields: [], error: 'line 9: a quote opened on this line is never closed' },
    { line: 10, fields: ['last', 'row', 'here'] },
    { line: 11, fields: ['trailing', 'comma', ''] },
  ];

  it.each([1, 2, 3, 5, 16, 4096])(
    'numbers records by the line they start on, with LF, CRLF or CR line ends, in chunks of %i',
    (size) => {
      expect(readAll(sample, size)).toEqual(expected);
      expect(readAll(sample.replace(/\n/g, '\r\n'), size)).toEqual(expected);
      expect(readAll(sample.replace(/\n/g, '\r'), size)).toEqual(expected);
      expect(readAll(`${sample}\r\n`, size)).toEqual(expected);
    },
  );

  it('a stray quote that runs over lines costs only its own line', () => {
    const text = 'phone,name\n"+14155550100,Ann\n+14155550101,Bob\n+14155550102,"Cy"\n';
    expect(readAll(text, 7)).toEqual([
      { line: 1, fields: ['phone', 'name'] },
      { line: 2, fields: [], error: 'line 2: a quote opened on this line is never closed' },
      { line: 3, fields: ['+14155550101', 'Bob'] },
      { line: 4, fields: ['+14155550102', 'Cy'] },
    ]);
  });

  it('a quoted field past its size bound is taken as never closed, and reading goes on', () => {
    const text = `a,b\n1,"${'z'.repeat(20_000)}",3\n4,5\n"${'y\n'.repeat(6_000)}`;
    const records = readAll(text, 1000);
    expect(records.slice(0, 3)).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: [], error: 'line 2: a quote opened on this line is never closed' },
      { line: 3, fields: ['4', '5'] },
    ]);
    expect(records[3]).toMatchObject({ line: 4, error: expect.stringContaining('never closed') });
    expect(records[4]).toEqual({ line: 5, fields: ['y'] });
    expect(records.at(-1)).toEqual({ line: 6003, fields: ['y'] });
  });
});

describe('mapColumns', () => {
  it('matches known columns in any case and spelling, the rest become attributes', () => {
    const columns = mapColumns([
      ' Mobile ',
      'First Name',
      'last-name',
      'E-Mail',
      'TimeZone',
      'DNC',
      'Plan',
      '2nd line',
      '',
    ]);
    expect(columns.known).toEqual({
      phone: 0,
      firstName: 1,
      lastName: 2,
      email: 3,
      timeZone: 4,
      doNotCall: 5,
    });
    expect(columns.attributes).toEqual([
      ['Plan', 6],
      ['_2nd_line', 7],
    ]);
    expect(columns.width).toBe(9);
    // With a full name, first and last names are kept as attributes.
    expect(mapColumns(['phone', 'name', 'first_name']).attributes).toEqual([['first_name', 2]]);
  });

  it('refuses a header without a phone column or with a column twice', () => {
    const refusal = (header: string[]) => {
      try {
        mapColumns(header);
      } catch (err) {
        return err instanceof AppError ? [err.status, err.code] : err;
      }
      return 'accepted';
    };
    expect(refusal(['name', 'email'])).toEqual([422, 'CSV_PHONE_COLUMN_MISSING']);
    expect(refusal(['phone', 'email', 'Email'])).toEqual([422, 'CSV_HEADER_INVALID']);
    expect(refusal(['phone', 'plan', 'plan'])).toEqual([422, 'CSV_HEADER_INVALID']);
  });
});

describe('importing over HTTP', () => {
  let stack: TestStack;
  let tenant: SignedUp;

  beforeAll(async () => {
    stack = await startStack();
    tenant = await signUpTenant(stack.app, 'Import Co');
  });
  afterAll(() => stack.close());

  const newList = async (name: string): Promise<string> => {
    const res = await request(stack.app).post('/v1/contact-lists').set(bearer(tenant.token)).send({ name });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const importCsv = (path: string, csv: string | Buffer, contentType = 'text/csv') =>
    request(stack.app).post(path).set(bearer(tenant.token)).set('content-type', contentType).send(csv);

  async function members(listId: string): Promise<Record<string, unknown>[]> {
    const all: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await request(stack.app)
        .get('/v1/contacts')
        .query({ listId, limit: 200, ...(cursor ? { cursor } : {}) })
        .set(bearer(tenant.token));
      expect(page.status).toBe(200);
      all.push(...page.body.data);
      cursor = page.body.nextCursor;
    } while (cursor);
    return all;
  }

  async function contactCount(): Promise<number> {
    const db = await ownerClient(stack.config);
    try {
      const res = await db.query<{ n: string }>('select count(*) as n from contacts where tenant_id = $1', [
        tenant.tenantId,
      ]);
      return Number(res.rows[0]!.n);
    } finally {
      await db.end();
    }
  }

  it('reports every row of a mixed file and stores the valid ones with their time zones', async () => {
    const existing = await request(stack.app)
      .post('/v1/contacts')
      .set(bearer(tenant.token))
      .send({ phone: '+13125550150', name: 'Existing Before', attributes: { Plan: 'bronze' } });
    expect(existing.status).toBe(201);
    const listId = await newList('Mixed');

    const csv = [
      '\ufeffPhone,First Name,Last Name,Email,TimeZone,do_not_call,Plan,Notes', // 1
      '(415) 555-0101,Ada,Lovelace,ADA@example.com,,no,gold,"likes tea, not coffee"', // 2
      '+1 212 555 0102,Grace,Hopper,,america/chicago,yes,silver,"line one', // 3
      'line two"', // 4
      '415.555.0101,Dup,InFile,,,,,', // 5: same phone as row 2
      '312-555-0150,Existing,Changed,new@example.com,,,platinum,', // 6: already a contact
      '555,Bad,Phone,,,,,', // 7
      '+13125550103,Bad,Email,x@,,,,', // 8
      '+13035550104,Bad,Zone,,Mars/Olympus,,,', // 9
      '+16025550105,Short,Row', // 10
      '', // 11: blank
      '+18085550106,"Quoted ""Nick""",Name,,,,,', // 12
      '+442079460958,Brit,Person,,,,,', // 13
      '"bad"x,Malformed,Quote,,,,,', // 14
      '+16025550107,,,,,maybe,,', // 15
      '+16025550108,,,,,,,', // 16
    ].join('\r\n');

    const res = await importCsv(`/v1/contact-lists/${listId}/import`, csv);
    expect(res.status).toBe(200);
    const id = expect.any(String);
    expect(res.body).toEqual({
      listId,
      region: 'US',
      totals: { rows: 13, accepted: 5, duplicate: 2, invalid: 6 },
      rowsTruncated: false,
      rows: [
        { row: 2, status: 'accepted', contactId: id, phone: '+14155550101' },
        { row: 3, status: 'accepted', contactId: id, phone: '+12125550102' },
        {
          row: 5,
          status: 'duplicate',
          contactId: res.body.rows[0].contactId,
          phone: '+14155550101',
          reason: 'same phone as row 2',
        },
        {
          row: 6,
          status: 'duplicate',
          contactId: existing.body.id,
          phone: '+13125550150',
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
        { row: 10, status: 'invalid', reason: 'row has 3 fields, header has 8' },
        { row: 12, status: 'accepted', contactId: id, phone: '+18085550106' },
        { row: 13, status: 'accepted', contactId: id, phone: '+442079460958' },
        {
          row: 14,
          status: 'invalid',
          reason: 'malformed CSV (line 14: text after the closing quote of field 1)',
        },
        { row: 15, status: 'invalid', phone: '+16025550107', reason: "do_not_call: 'maybe' is not yes/no" },
        { row: 16, status: 'accepted', contactId: id, phone: '+16025550108' },
      ],
    });

    const stored = await members(listId);
    const byPhone = new Map(stored.map((c) => [c.phone, c]));
    expect([...byPhone.keys()].sort()).toEqual(
      [
        '+12125550102',
        '+13125550150',
        '+14155550101',
        '+16025550108',
        '+18085550106',
        '+442079460958',
      ].sort(),
    );
    expect(byPhone.get('+14155550101')).toMatchObject({
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      timeZone: 'America/Los_Angeles',
      doNotCall: false,
      attributes: { Plan: 'gold', Notes: 'likes tea, not coffee' },
    });
    expect(byPhone.get('+12125550102')).toMatchObject({
      name: 'Grace Hopper',
      timeZone: 'America/Chicago',
      doNotCall: true,
      attributes: { Plan: 'silver', Notes: 'line one\nline two' },
    });
    expect(byPhone.get('+18085550106')).toMatchObject({
      name: 'Quoted "Nick" Name',
      timeZone: 'Pacific/Honolulu',
    });
    expect(byPhone.get('+442079460958')).toMatchObject({ timeZone: 'Europe/London' });
    expect(byPhone.get('+16025550108')).toMatchObject({
      name: null,
      timeZone: 'America/Phoenix',
      attributes: {},
    });
    // The existing contact joined the list as it was.
    expect(byPhone.get('+13125550150')).toMatchObject({
      name: 'Existing Before',
      email: null,
      attributes: { Plan: 'bronze' },
    });

    const list = await request(stack.app).get(`/v1/contact-lists/${listId}`).set(bearer(tenant.token));
    expect(list.body.memberCount).toBe(6);

    // The same file again, into another list: every valid row is now a known contact.
    const second = await newList('Mixed again');
    const again = await importCsv(`/v1/contact-lists/${second}/import`, csv);
    expect(again.body.totals).toEqual({ rows: 13, accepted: 0, duplicate: 7, invalid: 6 });
    expect((await members(second)).length).toBe(6);

    const db = await ownerClient(stack.config);
    try {
      const audit = await db.query<{ after: unknown }>(
        "select after from audit_log where tenant_id = $1 and action = 'contacts.imported' and target_id = $2",
        [tenant.tenantId, listId],
      );
      expect(audit.rows).toEqual([
        { after: { listId, region: 'US', totals: { rows: 13, accepted: 5, duplicate: 2, invalid: 6 } } },
      ]);
    } finally {
      await db.end();
    }
  });

  it('imports without a list, reading national numbers in the region given', async () => {
    const res = await importCsv('/v1/contacts/import?region=gb', 'Number,Name\n020 7946 0959,Sherlock\n');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      listId: null,
      region: 'GB',
      totals: { rows: 1, accepted: 1, duplicate: 0, invalid: 0 },
      rows: [{ row: 2, status: 'accepted', phone: '+442079460959' }],
    });
    const contact = await request(stack.app)
      .get(`/v1/contacts/${res.body.rows[0].contactId}`)
      .set(bearer(tenant.token));
    expect(contact.body).toMatchObject({ name: 'Sherlock', timeZone: 'Europe/London', listIds: [] });

    const badRegion = await importCsv('/v1/contacts/import?region=XX', 'phone\n+14155550199\n');
    expect([badRegion.status, badRegion.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
  });

  it('refuses a whole file that cannot be read as contacts, storing nothing', async () => {
    const before = await contactCount();
    const listId = await newList('Refusals');
    const refusals: [string, string, number, string][] = [
      ['', 'text/csv', 422, 'CSV_EMPTY'],
      ['\ufeff\r\n\r\n', 'text/csv', 422, 'CSV_EMPTY'],
      ['phone,name\r\n', 'text/csv', 422, 'CSV_EMPTY'],
      ['phone,name\n,\n  ,\n', 'text/csv', 422, 'CSV_EMPTY'],
      ['name,email\nAda,ada@example.com\n', 'text/csv', 422, 'CSV_PHONE_COLUMN_MISSING'],
      ['phone,Email,email\n+14155550190,a@b.co,c@d.co\n', 'text/csv', 422, 'CSV_HEADER_INVALID'],
      ['phone\n+14155550191\n', 'text/html', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['phone\n+14155550192\n', 'text/csv; charset=iso-8859-1', 415, 'UNSUPPORTED_ENCODING'],
    ];
    for (const [csv, type, status, code] of refusals) {
      const res = await importCsv(`/v1/contact-lists/${listId}/import`, csv, type);
      expect([JSON.stringify(csv), res.status, res.body.error?.code]).toEqual([
        JSON.stringify(csv),
        status,
        code,
      ]);
    }
    const missing = await importCsv('/v1/contacts/import', 'name\nAda\n');
    expect(missing.body.error.details).toEqual({ header: ['name'] });
    expect(await contactCount()).toBe(before);
  });

  it(`refuses a body over ${MAX_CSV_BYTES} bytes with 413, and a stream that runs past the limit stops there`, async () => {
    const tooBig = Buffer.alloc(MAX_CSV_BYTES + 1, 'a');
    const res = await importCsv('/v1/contacts/import', tooBig);
    expect([res.status, res.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);

    // Used from another route with its own stream and bound.
    const stream = Readable.from(['phone\n', '+14155550193\n', '+14155550194\n']);
    const refused = importContactsCsv(stack, {
      tenantId: tenant.tenantId,
      listId: null,
      stream,
      actor: { type: 'user', id: tenant.userId, role: 'owner' },
      maxBytes: 10,
    });
    await expect(refused).rejects.toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('is usable from another route with any stream', async () => {
    const listId = await newList('From a campaign');
    const report = await importContactsCsv(stack, {
      tenantId: tenant.tenantId,
      listId,
      stream: Readable.from([Buffer.from('phone,name,'), Buffer.from('tier\n+1 720 555 0111,Kim,A\n')]),
      region: 'US',
      actor: { type: 'api_key', id: 'test', role: 'campaign_manager' },
    });
    expect(report).toMatchObject({
      listId,
      totals: { rows: 1, accepted: 1, duplicate: 0, invalid: 0 },
      rows: [{ row: 2, status: 'accepted', phone: '+17205550111' }],
      rowsTruncated: false,
    });
    expect(await members(listId)).toEqual([
      expect.objectContaining({ name: 'Kim', timeZone: 'America/Denver', attributes: { tier: 'A' } }),
    ]);
  });

  it('imports a 20,000-row file completely, listing only the rows not accepted', async () => {
    const listId = await newList('Big');
    const lines = ['phone,name,account'];
    const phones = new Set<string>();
    const invalidRows: number[] = [];
    for (let exchange = 200; phones.size + invalidRows.length < 20_000; exchange += 1) {
      for (let line = 0; line < 10_000 && phones.size + invalidRows.length < 20_000; line += 1) {
        const row = lines.length + 1;
        if (row % 4000 === 0) {
          lines.push(`not-a-number,Bad ${row},${row}`);
          invalidRows.push(row);
          continue;
        }
        const e164 = toE164(`+1646${exchange}${String(line).padStart(4, '0')}`, 'US');
        if (!e164) continue;
        phones.add(e164);
        lines.push(`${e164},Person ${row},ACC-${row}`);
      }
    }
    const csv = `${lines.join('\n')}\n`;
    const started = performance.now();
    const res = await importCsv(`/v1/contact-lists/${listId}/import`, csv);
    const ms = Math.round(performance.now() - started);
    // Reported for the record, not asserted: the machine's speed varies.
    console.log(`20,000-row CSV (${(csv.length / 1024 / 1024).toFixed(2)} MB) imported in ${ms} ms`);
    expect(res.status).toBe(200);
    expect(res.body.totals).toEqual({
      rows: 20_000,
      accepted: 20_000 - invalidRows.length,
      duplicate: 0,
      invalid: invalidRows.length,
    });
    expect(res.body.rowsTruncated).toBe(true);
    expect(res.body.rows).toEqual(
      invalidRows.map((row) => ({
        row,
        status: 'invalid',
        reason: "phone: 'not-a-number' is not a valid number for region US",
      })),
    );
    expect(res.body.rows.length).toBeLessThanOrEqual(MAX_REPORTED_ROWS);
    const list = await request(stack.app).get(`/v1/contact-lists/${listId}`).set(bearer(tenant.token));
    expect(list.body.memberCount).toBe(phones.size);

    // Rows stored in one batch share a created_at: pagination still visits each exactly once.
    const seen = await members(listId);
    expect(seen.length).toBe(phones.size);
    expect(new Set(seen.map((c) => c.id)).size).toBe(phones.size);
    expect(seen.find((c) => c.name === 'Person 2')).toMatchObject({
      timeZone: 'America/New_York',
      attributes: { account: 'ACC-2' },
    });
    // 20,000 rows in and 100 pages out: on two busy cores this can take longer than the default minute.
  }, 180_000);
});
