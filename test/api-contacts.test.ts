/**
 * Contacts, contact lists and the Do-Not-Call list through the public API on the real database:
 * numbers typed as people write them become E.164 in the tenant's region, time zones are checked
 * or derived from the number, attributes are checked, a number is one contact per tenant, roles
 * and tenant isolation hold, and every write leaves an audit entry. The dialer's own question
 * (`isDoNotCall`) gives the same answer as the API.
 */
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { isDoNotCall } from '../db/do-not-call';
import { withTenant } from '../db/tenant-context';
import { toE164 } from '../lib/phone';
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
let other: SignedUp;
let viewerKey: string;
let managerKey: string;
let designerKey: string;

async function apiKey(token: string, role: string): Promise<string> {
  const res = await request(stack.app).post('/v1/api-keys').set(bearer(token)).send({ name: role, role });
  expect(res.status).toBe(201);
  return res.body.key as string;
}

const create = (token: string, body: Record<string, unknown>) =>
  request(stack.app).post('/v1/contacts').set(bearer(token)).send(body);

let lineCounter = 0;
/** A valid number of the area code, unique within this file (each tenant here is new). */
function usNumber(area = '415'): { e164: string; national: string } {
  for (;;) {
    lineCounter += 1;
    const exchange = String(201 + Math.floor(lineCounter / 1000));
    const line = String(lineCounter % 1000).padStart(4, '0');
    const e164 = toE164(`+1${area}${exchange}${line}`, 'US');
    if (e164) return { e164, national: `(${area}) ${exchange}-${line}` };
  }
}

async function auditActions(
  tenantId: string,
  targetId: string,
): Promise<{ action: string; after: unknown }[]> {
  const db = await ownerClient(stack.config);
  try {
    const res = await db.query<{ action: string; after: unknown }>(
      'select action, after from audit_log where tenant_id = $1 and target_id = $2 order by created_at, action',
      [tenantId, targetId],
    );
    return res.rows;
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  stack = await startStack();
  tenant = await signUpTenant(stack.app, 'Contacts Co');
  other = await signUpTenant(stack.app, 'Other Contacts Co');
  viewerKey = await apiKey(tenant.token, 'viewer');
  managerKey = await apiKey(tenant.token, 'campaign_manager');
  designerKey = await apiKey(tenant.token, 'designer');
});
afterAll(() => stack.close());

describe('contacts', () => {
  it('creates a contact from a national number, deriving its time zone from the area code', async () => {
    const number = usNumber('312');
    const res = await create(tenant.token, {
      phone: number.national,
      name: '  Ada Lovelace ',
      email: 'Ada@Example.COM',
      attributes: { plan: 'gold', seats: 12, vip: true, _ref: 'x1' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      phone: number.e164,
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      timeZone: 'America/Chicago',
      attributes: { plan: 'gold', seats: 12, vip: true, _ref: 'x1' },
      doNotCall: false,
    });
    const read = await request(stack.app).get(`/v1/contacts/${res.body.id}`).set(bearer(viewerKey));
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: res.body.id, phone: number.e164, listIds: [] });
  });

  it('keeps an explicit time zone (spelled canonically), and reads numbers in a region given', async () => {
    const explicit = await create(tenant.token, { phone: usNumber('212').e164, timeZone: 'europe/london' });
    expect(explicit.status).toBe(201);
    expect(explicit.body.timeZone).toBe('Europe/London');

    const london = await create(tenant.token, { phone: '020 7946 0958', region: 'gb' });
    expect(london.status).toBe(201);
    expect(london.body).toMatchObject({ phone: '+442079460958', timeZone: 'Europe/London' });

    const tokyo = await create(tenant.token, { phone: '+81 3 1234 5678' });
    expect(tokyo.body).toMatchObject({ phone: '+81312345678', timeZone: 'Asia/Tokyo' });
  });

  it('refuses a number that is not one: 422 PHONE_NUMBER_INVALID naming the input', async () => {
    for (const phone of ['555', 'call me', '020 7946 0958', '+1 415 555 267 111']) {
      const res = await create(tenant.token, { phone });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('PHONE_NUMBER_INVALID');
      expect(res.body.error.message).toContain(`'${phone}'`);
      expect(res.body.error.details[0].path).toBe('body.phone');
    }
  });

  it('refuses a bad email, time zone, region or attribute with 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ email: 'x@' }, 'body.email'],
      [{ timeZone: 'Mars/Olympus' }, 'body.timeZone'],
      [{ region: 'XX' }, 'body.region'],
      [{ attributes: { '1st': 'a' } }, 'body.attributes.1st'],
      [{ attributes: { 'has-dash': 'a' } }, 'body.attributes.has-dash'],
      [{ attributes: { nested: { a: 1 } } }, 'body.attributes.nested'],
      [{ attributes: { long: 'x'.repeat(1001) } }, 'body.attributes.long'],
      [
        { attributes: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) },
        'body.attributes',
      ],
    ];
    for (const [extra, path] of cases) {
      const res = await create(tenant.token, { phone: usNumber().e164, ...extra });
      expect([res.status, res.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
      const paths: string[] = res.body.error.details.map((d: { path: string }) => d.path);
      expect(paths.some((p) => p.startsWith(path))).toBe(true);
    }
    const tz = await create(tenant.token, { phone: usNumber().e164, timeZone: 'Mars/Olympus' });
    expect(tz.body.error.message).toContain("'Mars/Olympus' is not an IANA time zone");
  });

  it('a number is one contact per tenant: 409 CONTACT_PHONE_TAKEN with the existing id; another tenant may hold it', async () => {
    const number = usNumber('646');
    const first = await create(tenant.token, { phone: number.e164, name: 'First' });
    const again = await create(tenant.token, { phone: number.national, name: 'Second' });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: 'CONTACT_PHONE_TAKEN',
      details: { phone: number.e164, contactId: first.body.id },
    });
    const theirs = await create(other.token, { phone: number.e164, name: 'Theirs' });
    expect(theirs.status).toBe(201);

    const second = await create(tenant.token, { phone: usNumber('646').e164 });
    const clash = await request(stack.app)
      .patch(`/v1/contacts/${second.body.id}`)
      .set(bearer(tenant.token))
      .send({ phone: number.national });
    expect(clash.status).toBe(409);
    expect(clash.body.error.details.contactId).toBe(first.body.id);
  });

  it('patches fields, merges attributes, re-derives a derived zone when the number changes', async () => {
    const created = await create(managerKey, {
      phone: usNumber('212').e164,
      name: 'Grace',
      attributes: { plan: 'silver', old: 1 },
    });
    expect(created.status).toBe(201);
    expect(created.body.timeZone).toBe('America/New_York');
    const id: string = created.body.id;
    const patch = (body: Record<string, unknown>) =>
      request(stack.app).patch(`/v1/contacts/${id}`).set(bearer(managerKey)).send(body);

    const moved = await patch({ phone: usNumber('415').national, attributes: { plan: 'gold', old: null } });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({
      timeZone: 'America/Los_Angeles',
      attributes: { plan: 'gold' },
      name: 'Grace',
    });
    expect(moved.body.attributes).not.toHaveProperty('old');

    const pinned = await patch({ timeZone: 'America/Denver', doNotCall: true, email: 'g@example.com' });
    expect(pinned.body).toMatchObject({
      timeZone: 'America/Denver',
      doNotCall: true,
      email: 'g@example.com',
    });
    // An explicit zone stays when the number changes.
    const kept = await patch({ phone: usNumber('312').e164 });
    expect(kept.body.timeZone).toBe('America/Denver');
    // null: derive it again.
    const derived = await patch({ timeZone: null, name: null, email: null });
    expect(derived.body).toMatchObject({ timeZone: 'America/Chicago', name: null, email: null });

    const badPhone = await patch({ phone: '12' });
    expect([badPhone.status, badPhone.body.error.code]).toEqual([422, 'PHONE_NUMBER_INVALID']);
  });

  it('lists newest first with cursor pagination, search by name, email or phone digits, and a list filter', async () => {
    const tag = randomUUID().slice(0, 8);
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const res = await create(tenant.token, {
        phone: usNumber('718').e164,
        name: `Searchable ${tag} ${i}`,
        email: i === 0 ? `only-${tag}@example.com` : undefined,
      });
      ids.push(res.body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await request(stack.app)
        .get('/v1/contacts')
        .query({ search: tag, limit: 2, ...(cursor ? { cursor } : {}) })
        .set(bearer(viewerKey));
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((c: { id: string }) => c.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    const byEmail = await request(stack.app)
      .get('/v1/contacts')
      .query({ search: `ONLY-${tag}` })
      .set(bearer(viewerKey));
    expect(byEmail.body.data.map((c: { id: string }) => c.id)).toEqual([ids[0]]);

    const someone = await request(stack.app).get(`/v1/contacts/${ids[2]}`).set(bearer(viewerKey));
    const digits = (someone.body.phone as string).slice(-7);
    const byPhone = await request(stack.app)
      .get('/v1/contacts')
      .query({ search: digits })
      .set(bearer(viewerKey));
    expect(byPhone.body.data.map((c: { id: string }) => c.id)).toContain(ids[2]);

    const wildcard = await request(stack.app)
      .get('/v1/contacts')
      .query({ search: '%' })
      .set(bearer(viewerKey));
    expect(wildcard.body.data).toEqual([]);

    const list = await request(stack.app)
      .post('/v1/contact-lists')
      .set(bearer(tenant.token))
      .send({ name: tag });
    await request(stack.app)
      .post(`/v1/contact-lists/${list.body.id}/members`)
      .set(bearer(tenant.token))
      .send({ contactIds: [ids[1], ids[3]] });
    const members = await request(stack.app)
      .get('/v1/contacts')
      .query({ listId: list.body.id })
      .set(bearer(viewerKey));
    expect(members.body.data.map((c: { id: string }) => c.id)).toEqual([ids[3], ids[1]]);

    const badCursor = await request(stack.app)
      .get('/v1/contacts')
      .query({ cursor: 'nope' })
      .set(bearer(viewerKey));
    expect(badCursor.status).toBe(400);
    const unknownList = await request(stack.app)
      .get('/v1/contacts')
      .query({ listId: randomUUID() })
      .set(bearer(viewerKey));
    expect([unknownList.status, unknownList.body.error.code]).toEqual([404, 'CONTACT_LIST_NOT_FOUND']);
  });

  it('deletes, and audits every write', async () => {
    const number = usNumber('303');
    const created = await create(tenant.token, { phone: number.e164, name: 'Audit me' });
    const id: string = created.body.id;
    await request(stack.app).patch(`/v1/contacts/${id}`).set(bearer(tenant.token)).send({ name: 'Audited' });
    const deleted = await request(stack.app).delete(`/v1/contacts/${id}`).set(bearer(tenant.token));
    expect(deleted.status).toBe(204);
    expect((await request(stack.app).get(`/v1/contacts/${id}`).set(bearer(tenant.token))).status).toBe(404);
    const audit = await auditActions(tenant.tenantId, id);
    expect(audit.map((a) => a.action)).toEqual(['contact.created', 'contact.updated', 'contact.deleted']);
    expect(audit[0]!.after).toMatchObject({
      phone: number.e164,
      name: 'Audit me',
      timeZone: 'America/Denver',
    });
    expect(audit[1]!.after).toMatchObject({ name: 'Audited' });
  });

  it('every role reads; only owners, admins and campaign managers write (403)', async () => {
    const created = await create(tenant.token, { phone: usNumber().e164 });
    const id: string = created.body.id;
    for (const key of [viewerKey, designerKey]) {
      expect((await request(stack.app).get('/v1/contacts').set(bearer(key))).status).toBe(200);
      expect((await request(stack.app).get(`/v1/contacts/${id}`).set(bearer(key))).status).toBe(200);
      for (const res of [
        await create(key, { phone: usNumber().e164 }),
        await request(stack.app).patch(`/v1/contacts/${id}`).set(bearer(key)).send({ name: 'x' }),
        await request(stack.app).delete(`/v1/contacts/${id}`).set(bearer(key)),
        await request(stack.app).post('/v1/contact-lists').set(bearer(key)).send({ name: 'x' }),
        await request(stack.app)
          .post('/v1/contacts/import')
          .set(bearer(key))
          .set('content-type', 'text/csv')
          .send('phone\n+14155550100\n'),
        await request(stack.app).post('/v1/do-not-call').set(bearer(key)).send({ phone: usNumber().e164 }),
      ]) {
        expect([res.status, res.body.error?.code]).toEqual([403, 'INSUFFICIENT_ROLE']);
      }
    }
    expect((await create(managerKey, { phone: usNumber().e164 })).status).toBe(201);
  });

  it("another tenant's contact is not found by id, for reading, changing or deleting", async () => {
    const theirs = await create(other.token, { phone: usNumber().e164, name: 'Private' });
    const id: string = theirs.body.id;
    for (const res of [
      await request(stack.app).get(`/v1/contacts/${id}`).set(bearer(tenant.token)),
      await request(stack.app).patch(`/v1/contacts/${id}`).set(bearer(tenant.token)).send({ name: 'Mine' }),
      await request(stack.app).delete(`/v1/contacts/${id}`).set(bearer(tenant.token)),
    ]) {
      expect([res.status, res.body.error.code]).toEqual([404, 'CONTACT_NOT_FOUND']);
    }
    const list = await request(stack.app)
      .get('/v1/contacts')
      .query({ search: 'Private' })
      .set(bearer(tenant.token));
    expect(list.body.data.map((c: { id: string }) => c.id)).not.toContain(id);
    const still = await request(stack.app).get(`/v1/contacts/${id}`).set(bearer(other.token));
    expect(still.body).toMatchObject({ name: 'Private' });
  });
});

describe('contact lists', () => {
  it('creates, lists with member counts, renames, adds and removes members, deletes (contacts stay)', async () => {
    const created = await request(stack.app)
      .post('/v1/contact-lists')
      .set(bearer(managerKey))
      .send({ name: ' Spring leads ' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Spring leads', memberCount: 0 });
    const listId: string = created.body.id;

    const a = (await create(tenant.token, { phone: usNumber().e164 })).body.id as string;
    const b = (await create(tenant.token, { phone: usNumber().e164 })).body.id as string;
    const add = await request(stack.app)
      .post(`/v1/contact-lists/${listId}/members`)
      .set(bearer(managerKey))
      .send({ contactIds: [a, b, a] });
    expect(add.status).toBe(200);
    expect(add.body).toEqual({ added: 2, alreadyMembers: 0, memberCount: 2 });
    const again = await request(stack.app)
      .post(`/v1/contact-lists/${listId}/members`)
      .set(bearer(managerKey))
      .send({ contactIds: [a] });
    expect(again.body).toEqual({ added: 0, alreadyMembers: 1, memberCount: 2 });

    const contact = await request(stack.app).get(`/v1/contacts/${a}`).set(bearer(viewerKey));
    expect(contact.body.listIds).toEqual([listId]);

    const all = await request(stack.app).get('/v1/contact-lists').set(bearer(viewerKey));
    expect(all.body.data).toContainEqual(expect.objectContaining({ id: listId, memberCount: 2 }));

    const renamed = await request(stack.app)
      .patch(`/v1/contact-lists/${listId}`)
      .set(bearer(managerKey))
      .send({ name: 'Summer leads' });
    expect(renamed.body).toMatchObject({ name: 'Summer leads', memberCount: 2 });

    const removed = await request(stack.app)
      .delete(`/v1/contact-lists/${listId}/members`)
      .set(bearer(managerKey))
      .send({ contactIds: [a, randomUUID()] });
    expect(removed.body).toEqual({ removed: 1, memberCount: 1 });

    const deleted = await request(stack.app).delete(`/v1/contact-lists/${listId}`).set(bearer(managerKey));
    expect(deleted.status).toBe(204);
    expect((await request(stack.app).get(`/v1/contact-lists/${listId}`).set(bearer(viewerKey))).status).toBe(
      404,
    );
    expect((await request(stack.app).get(`/v1/contacts/${b}`).set(bearer(viewerKey))).body.listIds).toEqual(
      [],
    );

    const audit = await auditActions(tenant.tenantId, listId);
    expect(audit.map((x) => x.action).sort()).toEqual(
      [
        'contact_list.created',
        'contact_list.members_added',
        'contact_list.members_added',
        'contact_list.renamed',
        'contact_list.members_removed',
        'contact_list.deleted',
      ].sort(),
    );
  });

  it("adds only the tenant's own contacts (404 CONTACT_NOT_FOUND naming them, nothing added), and hides other tenants' lists", async () => {
    const list = await request(stack.app)
      .post('/v1/contact-lists')
      .set(bearer(tenant.token))
      .send({ name: 'Mine' });
    const mine = (await create(tenant.token, { phone: usNumber().e164 })).body.id as string;
    const theirs = (await create(other.token, { phone: usNumber().e164 })).body.id as string;
    const res = await request(stack.app)
      .post(`/v1/contact-lists/${list.body.id}/members`)
      .set(bearer(tenant.token))
      .send({ contactIds: [mine, theirs] });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'CONTACT_NOT_FOUND', details: { contactIds: [theirs] } });
    const count = await request(stack.app).get(`/v1/contact-lists/${list.body.id}`).set(bearer(tenant.token));
    expect(count.body.memberCount).toBe(0);

    const otherList = await request(stack.app)
      .post('/v1/contact-lists')
      .set(bearer(other.token))
      .send({ name: 'Theirs' });
    for (const r of [
      await request(stack.app).get(`/v1/contact-lists/${otherList.body.id}`).set(bearer(tenant.token)),
      await request(stack.app)
        .patch(`/v1/contact-lists/${otherList.body.id}`)
        .set(bearer(tenant.token))
        .send({ name: 'x' }),
      await request(stack.app).delete(`/v1/contact-lists/${otherList.body.id}`).set(bearer(tenant.token)),
      await request(stack.app)
        .post(`/v1/contact-lists/${otherList.body.id}/members`)
        .set(bearer(tenant.token))
        .send({ contactIds: [mine] }),
      await request(stack.app)
        .post(`/v1/contact-lists/${otherList.body.id}/import`)
        .set(bearer(tenant.token))
        .set('content-type', 'text/csv')
        .send('phone\n+14155550100\n'),
    ]) {
      expect([r.status, r.body.error.code]).toEqual([404, 'CONTACT_LIST_NOT_FOUND']);
    }
    const names = await request(stack.app).get('/v1/contact-lists').set(bearer(tenant.token));
    expect(names.body.data.map((l: { id: string }) => l.id)).not.toContain(otherList.body.id);
  });
});

describe('do-not-call', () => {
  it('adds numbers (normalized, with a reason), checks them, lists them, removes them, audited', async () => {
    const one = usNumber('617');
    const two = usNumber('617');
    const added = await request(stack.app)
      .post('/v1/do-not-call')
      .set(bearer(managerKey))
      .send({ phones: [one.national, two.e164, one.e164], reason: 'asked on a call' });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ added: 2, alreadyListed: 0 });
    expect(added.body.data.map((e: { phone: string }) => e.phone).sort()).toEqual(
      [one.e164, two.e164].sort(),
    );

    const again = await request(stack.app)
      .post('/v1/do-not-call')
      .set(bearer(managerKey))
      .send({ phone: one.national, reason: 'other reason' });
    expect(again.body).toMatchObject({
      added: 0,
      alreadyListed: 1,
      data: [{ phone: one.e164, reason: 'asked on a call' }],
    });

    const check = await request(stack.app)
      .get('/v1/do-not-call/check')
      .query({ phone: one.national })
      .set(bearer(viewerKey));
    expect(check.status).toBe(200);
    expect(check.body).toMatchObject({
      phone: one.e164,
      doNotCall: true,
      listed: true,
      reason: 'asked on a call',
      contactIds: [],
    });

    const page = await request(stack.app).get('/v1/do-not-call').query({ limit: 1 }).set(bearer(viewerKey));
    expect(page.body.data).toHaveLength(1);
    expect(page.body.nextCursor).toEqual(expect.any(String));
    const rest = await request(stack.app)
      .get('/v1/do-not-call')
      .query({ cursor: page.body.nextCursor })
      .set(bearer(viewerKey));
    const listed = [...page.body.data, ...rest.body.data].map((e: { phone: string }) => e.phone);
    expect(listed).toEqual(expect.arrayContaining([one.e164, two.e164]));
    expect(new Set(listed).size).toBe(listed.length);

    // Managers add; only owners and admins take a number off.
    const byManager = await request(stack.app)
      .delete(`/v1/do-not-call/${encodeURIComponent(one.e164)}`)
      .set(bearer(managerKey));
    expect(byManager.status).toBe(403);
    const removed = await request(stack.app)
      .delete(`/v1/do-not-call/${encodeURIComponent(one.e164)}`)
      .set(bearer(tenant.token));
    expect(removed.status).toBe(204);
    const gone = await request(stack.app).delete(`/v1/do-not-call/${one.e164}`).set(bearer(tenant.token));
    expect([gone.status, gone.body.error.code]).toEqual([404, 'DO_NOT_CALL_ENTRY_NOT_FOUND']);
    const cleared = await request(stack.app)
      .get('/v1/do-not-call/check')
      .query({ phone: one.e164 })
      .set(bearer(viewerKey));
    expect(cleared.body).toMatchObject({ doNotCall: false, listed: false, reason: null });

    const audit = await auditActions(tenant.tenantId, one.e164);
    expect(audit.map((a) => a.action)).toEqual(['do_not_call.added', 'do_not_call.removed']);
  });

  it('refuses invalid numbers with 422 naming each, adding none', async () => {
    const good = usNumber('617');
    const res = await request(stack.app)
      .post('/v1/do-not-call')
      .set(bearer(tenant.token))
      .send({ phones: [good.e164, '555', 'nope'] });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('PHONE_NUMBER_INVALID');
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual([
      'body.phones.1',
      'body.phones.2',
    ]);
    const check = await request(stack.app)
      .get('/v1/do-not-call/check')
      .query({ phone: good.e164 })
      .set(bearer(tenant.token));
    expect(check.body.doNotCall).toBe(false);
    const badCheck = await request(stack.app)
      .get('/v1/do-not-call/check')
      .query({ phone: '555' })
      .set(bearer(tenant.token));
    expect([badCheck.status, badCheck.body.error.code]).toEqual([422, 'PHONE_NUMBER_INVALID']);
  });

  it('a contact flagged doNotCall blocks its number too; the dialer helper agrees; tenants do not see each other', async () => {
    const flagged = usNumber('919');
    const contact = await create(tenant.token, { phone: flagged.e164, doNotCall: true });
    const listedOnly = usNumber('919');
    await request(stack.app)
      .post('/v1/do-not-call')
      .set(bearer(tenant.token))
      .send({ phone: listedOnly.e164 });
    const free = usNumber('919');

    const check = await request(stack.app)
      .get('/v1/do-not-call/check')
      .query({ phone: flagged.national })
      .set(bearer(tenant.token));
    expect(check.body).toMatchObject({ doNotCall: true, listed: false, contactIds: [contact.body.id] });

    const verdicts = await withTenant(stack.orm, tenant.tenantId, async (em) => [
      await isDoNotCall(em, flagged.e164),
      await isDoNotCall(em, listedOnly.e164),
      await isDoNotCall(em, free.e164),
    ]);
    expect(verdicts).toEqual([true, true, false]);
    const forOther = await withTenant(stack.orm, other.tenantId, async (em) => [
      await isDoNotCall(em, flagged.e164),
      await isDoNotCall(em, listedOnly.e164),
    ]);
    expect(forOther).toEqual([false, false]);
    // An unencoded + in the query string (read as a space) still means an international number.
    await request(stack.app)
      .post('/v1/do-not-call')
      .set(bearer(tenant.token))
      .send({ phone: '+442079460958' });
    const raw = await request(stack.app)
      .get('/v1/do-not-call/check?phone=+442079460958')
      .set(bearer(tenant.token));
    expect(raw.body).toMatchObject({ phone: '+442079460958', doNotCall: true });

    const otherCheck = await request(stack.app)
      .get('/v1/do-not-call/check')
      .query({ phone: listedOnly.e164 })
      .set(bearer(other.token));
    expect(otherCheck.body.doNotCall).toBe(false);
  });
});

it('is described in the OpenAPI document, the CSV imports with a text/csv body', async () => {
  const doc = await request(stack.app).get('/openapi.json');
  expect(Object.keys(doc.body.paths['/v1/contacts']).sort()).toEqual(['get', 'post']);
  expect(Object.keys(doc.body.paths['/v1/contacts/{id}']).sort()).toEqual(['delete', 'get', 'patch']);
  expect(Object.keys(doc.body.paths['/v1/contact-lists/{id}/members']).sort()).toEqual(['delete', 'post']);
  expect(Object.keys(doc.body.paths['/v1/do-not-call']).sort()).toEqual(['get', 'post']);
  expect(doc.body.paths['/v1/do-not-call/check'].get).toBeDefined();
  for (const path of ['/v1/contacts/import', '/v1/contact-lists/{id}/import']) {
    expect(Object.keys(doc.body.paths[path].post.requestBody.content)).toEqual(['text/csv']);
  }
});
