/**
 * Phone numbers through the public API on the real database: numbers typed as people write them
 * are stored as E.164 in the tenant's region, a number belongs to one tenant only, only published
 * agents take calls, roles and tenant isolation hold, and every write leaves an audit entry.
 */
import { randomInt, randomUUID } from 'node:crypto';
import request from 'supertest';
import { DEMO_BOOKING_AGENT } from '../db/seed/demo-agents';
import { toE164 } from '../lib/phone';
import {
  bearer,
  ownerClient,
  signUpTenant,
  startStack,
  uniqueEmail,
  type SignedUp,
  type TestStack,
} from './support/stack';

let stack: TestStack;
let tenant: SignedUp;
let other: SignedUp;
let publishedAgentId: string;
let draftAgentId: string;
let viewerKey: string;

/** A valid US number no other test is likely to hold: (area) NXX-XXXX with random digits. */
interface UsNumber {
  area: string;
  exchange: string;
  line: string;
  national: string;
  e164: string;
}

function freshUsNumber(): UsNumber {
  for (;;) {
    const area = ['415', '628', '650', '212', '646'][randomInt(5)]!;
    const exchange = String(randomInt(200, 1000));
    const line = String(randomInt(0, 10_000)).padStart(4, '0');
    const e164 = toE164(`+1${area}${exchange}${line}`, 'US');
    if (e164) return { area, exchange, line, national: `(${area}) ${exchange}-${line}`, e164 };
  }
}

async function createAgent(token: string, name: string, publish: boolean): Promise<string> {
  const created = await request(stack.app)
    .post('/v1/agents')
    .set(bearer(token))
    .send({ name, definition: DEMO_BOOKING_AGENT });
  expect(created.status).toBe(201);
  if (publish) {
    const published = await request(stack.app)
      .post(`/v1/agents/${created.body.id}/publish`)
      .set(bearer(token));
    expect(published.status).toBe(201);
  }
  return created.body.id as string;
}

const register = (token: string, body: Record<string, unknown>) =>
  request(stack.app).post('/v1/phone-numbers').set(bearer(token)).send(body);

async function auditActions(
  tenantId: string,
  targetId: string,
): Promise<{ action: string; after: unknown }[]> {
  const db = await ownerClient(stack.config);
  try {
    const res = await db.query<{ action: string; after: unknown }>(
      'select action, after from audit_log where tenant_id = $1 and target_id = $2 order by created_at',
      [tenantId, targetId],
    );
    return res.rows;
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  stack = await startStack({ worker: true });
  tenant = await signUpTenant(stack.app, 'Numbers Co');
  other = await signUpTenant(stack.app, 'Other Numbers Co');
  publishedAgentId = await createAgent(tenant.token, 'Front desk', true);
  draftAgentId = await createAgent(tenant.token, 'Unpublished', false);
  const key = await request(stack.app)
    .post('/v1/api-keys')
    .set(bearer(tenant.token))
    .send({ name: 'read only', role: 'viewer' });
  expect(key.status).toBe(201);
  viewerKey = key.body.key;
});
afterAll(() => stack.close());

it('stores numbers typed in any common format as E.164, read in the tenant region', async () => {
  const formats = [
    (n: UsNumber) => n.national,
    (n: UsNumber) => `${n.area}.${n.exchange}.${n.line}`,
    (n: UsNumber) => `+1 ${n.area} ${n.exchange} ${n.line}`,
    (n: UsNumber) => `1-${n.area}-${n.exchange}-${n.line}`,
    (n: UsNumber) => n.e164,
  ];
  for (const format of formats) {
    const number = freshUsNumber();
    const res = await register(tenant.token, { number: format(number), label: 'Main' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ number: number.e164, label: 'Main', agentId: null, provider: 'twilio' });
  }

  // A tenant in Great Britain types national numbers the British way.
  const gb = await request(stack.app)
    .post('/v1/auth/signup')
    .send({
      tenantName: 'London Co',
      name: 'Owner',
      email: uniqueEmail('gb'),
      password: 'correct horse battery',
      defaultRegion: 'GB',
    });
  expect(gb.status).toBe(201);
  const line = String(randomInt(0, 10_000)).padStart(4, '0');
  const london = await register(gb.body.token, { number: `020 7946 ${line}` });
  expect(london.status).toBe(201);
  expect(london.body.number).toBe(`+44207946${line}`);
});

it('refuses a number that is not one: 400 PHONE_NUMBER_INVALID naming the field', async () => {
  for (const number of ['12', 'call me', '+1 415 555 267 111', '020 7946 0958']) {
    const res = await register(tenant.token, { number });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('PHONE_NUMBER_INVALID');
    expect(res.body.error.details[0].path).toBe('body.number');
  }
  const badSid = await register(tenant.token, { number: freshUsNumber().e164, providerSid: 'XX123' });
  expect(badSid.status).toBe(400);
  expect(badSid.body.error.details[0].path).toBe('body.providerSid');
});

it("a number another tenant holds is taken (409), without revealing that tenant's data", async () => {
  const number = freshUsNumber();
  expect((await register(other.token, { number: number.e164, label: 'Theirs' })).status).toBe(201);
  const res = await register(tenant.token, { number: number.national });
  expect(res.status).toBe(409);
  expect(res.body.error.code).toBe('PHONE_NUMBER_TAKEN');
  expect(res.body.error.details).toEqual({ number: number.e164 });
  expect(JSON.stringify(res.body)).not.toContain('Theirs');

  // Registered twice in one tenant: the same code, pointing at the existing entry.
  const mine = freshUsNumber();
  const first = await register(tenant.token, { number: mine.e164 });
  const again = await register(tenant.token, { number: mine.national });
  expect(again.status).toBe(409);
  expect(again.body.error).toMatchObject({
    code: 'PHONE_NUMBER_TAKEN',
    details: { number: mine.e164, phoneNumberId: first.body.id },
  });
});

it('assigns only agents of the tenant that have a published version', async () => {
  const unpublished = await register(tenant.token, { number: freshUsNumber().e164, agentId: draftAgentId });
  expect(unpublished.status).toBe(409);
  expect(unpublished.body.error.code).toBe('AGENT_NOT_PUBLISHED');

  const theirAgent = await createAgent(other.token, 'Not yours', true);
  const foreign = await register(tenant.token, { number: freshUsNumber().e164, agentId: theirAgent });
  expect(foreign.status).toBe(404);
  expect(foreign.body.error.code).toBe('AGENT_NOT_FOUND');

  const created = await register(tenant.token, { number: freshUsNumber().e164, agentId: publishedAgentId });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ agentId: publishedAgentId, agentName: 'Front desk' });

  const toDraft = await request(stack.app)
    .patch(`/v1/phone-numbers/${created.body.id}`)
    .set(bearer(tenant.token))
    .send({ agentId: draftAgentId });
  expect(toDraft.status).toBe(409);
  expect(toDraft.body.error.code).toBe('AGENT_NOT_PUBLISHED');
});

it('lists with agent names, reads, unassigns, relabels and deletes, each write audited', async () => {
  const number = freshUsNumber();
  const created = await register(tenant.token, {
    number: number.national,
    label: 'Support',
    providerSid: `PN${'a'.repeat(32)}`,
    agentId: publishedAgentId,
  });
  expect(created.status).toBe(201);
  const id: string = created.body.id;

  const list = await request(stack.app).get('/v1/phone-numbers').set(bearer(tenant.token));
  expect(list.status).toBe(200);
  expect(list.body.data).toContainEqual(
    expect.objectContaining({ id, number: number.e164, agentId: publishedAgentId, agentName: 'Front desk' }),
  );

  const unassigned = await request(stack.app)
    .patch(`/v1/phone-numbers/${id}`)
    .set(bearer(tenant.token))
    .send({ agentId: null, label: 'Support (off)' });
  expect(unassigned.status).toBe(200);
  expect(unassigned.body).toMatchObject({ agentId: null, agentName: null, label: 'Support (off)' });

  const read = await request(stack.app).get(`/v1/phone-numbers/${id}`).set(bearer(viewerKey));
  expect(read.status).toBe(200);
  expect(read.body).toMatchObject({
    id,
    number: number.e164,
    providerSid: `PN${'a'.repeat(32)}`,
    agentId: null,
  });

  const deleted = await request(stack.app).delete(`/v1/phone-numbers/${id}`).set(bearer(tenant.token));
  expect(deleted.status).toBe(204);
  expect((await request(stack.app).get(`/v1/phone-numbers/${id}`).set(bearer(tenant.token))).status).toBe(
    404,
  );

  const audit = await auditActions(tenant.tenantId, id);
  expect(audit.map((a) => a.action)).toEqual([
    'phone_number.created',
    'phone_number.updated',
    'phone_number.deleted',
  ]);
  expect(audit[0]!.after).toMatchObject({ number: number.e164, agentId: publishedAgentId });
  expect(audit[1]!.after).toMatchObject({ agentId: null, label: 'Support (off)' });

  // Once deleted, the number is free for anyone.
  expect((await register(other.token, { number: number.e164 })).status).toBe(201);
});

it('viewers read but cannot write (403)', async () => {
  const created = await register(tenant.token, { number: freshUsNumber().e164 });
  const id: string = created.body.id;
  expect((await request(stack.app).get('/v1/phone-numbers').set(bearer(viewerKey))).status).toBe(200);
  for (const res of [
    await register(viewerKey, { number: freshUsNumber().e164 }),
    await request(stack.app).patch(`/v1/phone-numbers/${id}`).set(bearer(viewerKey)).send({ label: 'x' }),
    await request(stack.app).delete(`/v1/phone-numbers/${id}`).set(bearer(viewerKey)),
  ]) {
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('INSUFFICIENT_ROLE');
  }
  const unchanged = await request(stack.app).get(`/v1/phone-numbers/${id}`).set(bearer(tenant.token));
  expect(unchanged.body.label).toBeNull();
});

it("another tenant's number is not found by id, for reading, changing or deleting", async () => {
  const theirs = await register(other.token, { number: freshUsNumber().e164, label: 'Private' });
  const id: string = theirs.body.id;
  for (const res of [
    await request(stack.app).get(`/v1/phone-numbers/${id}`).set(bearer(tenant.token)),
    await request(stack.app)
      .patch(`/v1/phone-numbers/${id}`)
      .set(bearer(tenant.token))
      .send({ label: 'Mine' }),
    await request(stack.app).delete(`/v1/phone-numbers/${id}`).set(bearer(tenant.token)),
  ]) {
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('PHONE_NUMBER_NOT_FOUND');
  }
  const list = await request(stack.app).get('/v1/phone-numbers').set(bearer(tenant.token));
  expect(list.body.data.map((n: { id: string }) => n.id)).not.toContain(id);
  const still = await request(stack.app).get(`/v1/phone-numbers/${id}`).set(bearer(other.token));
  expect(still.body).toMatchObject({ label: 'Private' });
  expect(
    (await request(stack.app).get(`/v1/phone-numbers/${randomUUID()}`).set(bearer(tenant.token))).status,
  ).toBe(404);
});

it('is described in the OpenAPI document', async () => {
  const doc = await request(stack.app).get('/openapi.json');
  expect(Object.keys(doc.body.paths['/v1/phone-numbers'])).toEqual(['get', 'post']);
  expect(Object.keys(doc.body.paths['/v1/phone-numbers/{id}']).sort()).toEqual(['delete', 'get', 'patch']);
});
