/**
 * Hostile requests against the real api and relay: another tenant's ids on every route of the
 * OpenAPI document, SQL-looking strings in ids, queries and bodies, oversized and deeply nested
 * bodies, forged Twilio and Stripe signatures, replayed / forged / expired stream tokens, and
 * malformed credentials. Each must be refused with a 4xx (never 2xx, never 500) and leave the other
 * tenant's rows exactly as they were.
 */
import { randomInt, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Client as PgClient } from 'pg';
import Stripe from 'stripe';
import request from 'supertest';
import twilio from 'twilio';
import WebSocket from 'ws';
import { signStreamToken } from '../lib/stream-token';
import { waitUntil } from '../lib/net';
import { bearer, ownerClient, signUpTenant, uniqueEmail, type SignedUp } from './support/stack';
import { startVoiceStack, type VoiceStack } from './support/voice-stack';

jest.setTimeout(180_000);

const STRIPE_WEBHOOK_SECRET = 'whsec_hostile_requests_test_secret_0001';

const DEFINITION = {
  greeting: 'Hello, this is the hostile requests line. I will keep talking for a short while.',
  flow: {
    startNodeId: 'ask',
    nodes: [
      { id: 'ask', type: 'collect', slot: 'ok', slotType: 'yes_no', prompt: 'Are you still there?' },
      { id: 'done', type: 'end', disposition: 'still_there', message: 'Good. Goodbye!' },
    ],
    edges: [{ id: 'e1', source: 'ask', target: 'done' }],
  },
};

/** Everything a tenant holds, by the kind of id a path parameter takes. */
interface Fixture {
  signedUp: SignedUp;
  token: string;
  agentId: string;
  phoneNumberId: string;
  phoneNumber: string;
  contactId: string;
  contactListId: string;
  campaignId: string;
  callId: string;
  apiKeyId: string;
  apiKey: string;
  webhookEndpointId: string;
  userId: string;
  importId: string;
  doNotCallPhone: string;
}

let voice: VoiceStack;
let owner: PgClient;
let A: Fixture;
let B: Fixture;

function uniqueUsNumber(): string {
  return `+1415555${String(randomInt(10_000)).padStart(4, '0')}`;
}

function ok<T = Record<string, unknown>>(
  what: string,
  res: request.Response,
  status: number | number[] = 201,
): T {
  const expected = Array.isArray(status) ? status : [status];
  if (!expected.includes(res.status)) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as T;
}

async function buildFixture(signedUp: SignedUp, label: string): Promise<Fixture> {
  const app = voice.stack.app;
  const auth = bearer(signedUp.token);
  const agent = ok<{ id: string }>(
    'agent',
    await request(app)
      .post('/v1/agents')
      .set(auth)
      .send({ name: `${label} agent`, definition: DEFINITION }),
  );
  ok('publish', await request(app).post(`/v1/agents/${agent.id}/publish`).set(auth).send({}));
  let phone: { id: string; number: string } | undefined;
  for (let attempt = 0; !phone && attempt < 10; attempt += 1) {
    const res = await request(app)
      .post('/v1/phone-numbers')
      .set(auth)
      .send({ number: uniqueUsNumber(), agentId: agent.id, label: `${label} line` });
    if (res.status === 201) phone = res.body;
    else if (res.status !== 409) throw new Error(`number: ${res.status} ${JSON.stringify(res.body)}`);
  }
  if (!phone) throw new Error('no free phone number');
  const contact = ok<{ id: string }>(
    'contact',
    await request(app)
      .post('/v1/contacts')
      .set(auth)
      .send({ phone: uniqueUsNumber(), name: `${label} contact`, email: uniqueEmail(label) }),
  );
  const list = ok<{ id: string }>(
    'list',
    await request(app)
      .post('/v1/contact-lists')
      .set(auth)
      .send({ name: `${label} list` }),
  );
  ok(
    'members',
    await request(app)
      .post(`/v1/contact-lists/${list.id}/members`)
      .set(auth)
      .send({ contactIds: [contact.id] }),
    [200, 201],
  );
  const campaign = ok<{ id: string }>(
    'campaign',
    await request(app)
      .post('/v1/campaigns')
      .set(auth)
      .send({
        name: `${label} campaign`,
        agentId: agent.id,
        callerNumberId: phone.id,
        contactListId: list.id,
      }),
  );
  const conversation = ok<{ callId: string }>(
    'conversation',
    await request(app).post('/v1/conversations').set(auth).send({ agentId: agent.id }),
  );
  const key = ok<{ id: string; key: string }>(
    'api key',
    await request(app)
      .post('/v1/api-keys')
      .set(auth)
      .send({ name: `${label} key`, role: 'viewer' }),
  );
  const endpoint = ok<{ id: string }>(
    'webhook endpoint',
    await request(app)
      .post('/v1/webhook-endpoints')
      .set(auth)
      .send({ url: `https://hooks.example.com/${label}`, events: ['call.ended'] }),
  );
  const user = ok<{ id: string }>(
    'user',
    await request(app)
      .post('/v1/users')
      .set(auth)
      .send({
        email: uniqueEmail(label),
        name: `${label} user`,
        role: 'designer',
        password: 'a long password',
      }),
  );
  const dnc = uniqueUsNumber();
  ok('do-not-call', await request(app).post('/v1/do-not-call').set(auth).send({ phone: dnc }), [200, 201]);
  // A CRM import needs a connected CRM to start; the row itself is what the import route reads.
  const { rows } = await owner.query<{ id: string }>(
    `insert into crm_imports (tenant_id, provider, source, contact_list_id)
     values ($1, 'hubspot', '{}'::jsonb, $2) returning id`,
    [signedUp.tenantId, list.id],
  );
  return {
    signedUp,
    token: signedUp.token,
    agentId: agent.id,
    phoneNumberId: phone.id,
    phoneNumber: phone.number,
    contactId: contact.id,
    contactListId: list.id,
    campaignId: campaign.id,
    callId: conversation.callId,
    apiKeyId: key.id,
    apiKey: key.key,
    webhookEndpointId: endpoint.id,
    userId: user.id,
    importId: rows[0]!.id,
    doNotCallPhone: dnc,
  };
}

/** Every row of every tenant-scoped table that belongs to the tenant, plus its users: a snapshot. */
async function snapshotTenant(tenantId: string, userIds: string[]): Promise<Record<string, unknown[]>> {
  const { rows: tables } = await owner.query<{ table_name: string }>(
    `select table_name from information_schema.columns
     where table_schema = 'public' and column_name = 'tenant_id'
       and table_name in (select table_name from information_schema.tables
                          where table_schema = 'public' and table_type = 'BASE TABLE')
     order by table_name`,
  );
  const snapshot: Record<string, unknown[]> = {};
  for (const { table_name: table } of tables) {
    const res = await owner.query(
      `select to_jsonb(t) as row from "${table}" t where tenant_id = $1 order by to_jsonb(t)::text`,
      [tenantId],
    );
    snapshot[table] = res.rows.map((r: { row: unknown }) => r.row);
  }
  const users = await owner.query(
    `select to_jsonb(u) as row from users u where id = any($1::uuid[]) order by id`,
    [userIds],
  );
  snapshot.users = users.rows.map((r: { row: unknown }) => r.row);
  return snapshot;
}

beforeAll(async () => {
  voice = await startVoiceStack({ env: { STRIPE_WEBHOOK_SECRET }, startTimeoutMs: 2_000 });
  owner = await ownerClient(voice.stack.config);
  A = await buildFixture(voice.tenant, 'alpha');
  B = await buildFixture(await signUpTenant(voice.stack.app, 'Bravo Co'), 'bravo');
});
afterAll(async () => {
  await owner?.end();
  await voice?.close();
});

// ---------------------------------------------------------------------------------------------------
// 1. Another tenant's ids on every route
// ---------------------------------------------------------------------------------------------------

/** The id of B's object a path parameter names, from the path's resource. */
function idFor(path: string, param: string, f: Fixture): string | undefined {
  if (param === 'version') return '1';
  if (param === 'provider') return undefined; // the caller's own integration: not another tenant's id
  if (param === 'phone') return encodeURIComponent(f.doNotCallPhone);
  if (param === 'callId') return f.callId;
  if (param === 'agentId') return f.agentId;
  const resource = path.split('/')[2];
  switch (resource) {
    case 'agents':
      return f.agentId;
    case 'calls':
    case 'conversations':
      return f.callId;
    case 'campaigns':
      return f.campaignId;
    case 'contacts':
      return f.contactId;
    case 'contact-lists':
      return f.contactListId;
    case 'phone-numbers':
      return f.phoneNumberId;
    case 'users':
      return f.userId;
    case 'api-keys':
      return f.apiKeyId;
    case 'webhook-endpoints':
      return f.webhookEndpointId;
    case 'integrations':
      return path.includes('/imports/') ? f.importId : undefined;
    default:
      throw new Error(`no id kind known for {${param}} in ${path}: extend idFor`);
  }
}

/** A body the route would accept for an object of its own tenant, so refusal is about the id. */
function bodyFor(method: string, path: string): unknown {
  const key = `${method} ${path}`;
  const bodies: Record<string, unknown> = {
    'put /v1/agents/{id}': { name: 'taken over', definition: DEFINITION },
    'post /v1/agents/{id}/publish': { note: 'hostile' },
    'post /v1/agents/{id}/rollback': { version: 1 },
    'post /v1/agents/{agentId}/test-calls': { encoding: 'pcm16' },
    'patch /v1/campaigns/{id}': { name: 'taken over' },
    'post /v1/campaigns/{id}/launch': {},
    'patch /v1/contacts/{id}': { name: 'taken over' },
    'patch /v1/contact-lists/{id}': { name: 'taken over' },
    'post /v1/contact-lists/{id}/members': { contactIds: [A.contactId] },
    'delete /v1/contact-lists/{id}/members': { contactIds: [B.contactId] },
    'patch /v1/phone-numbers/{id}': { label: 'taken over', agentId: A.agentId },
    'patch /v1/users/{id}': { role: 'viewer', name: 'taken over' },
    'post /v1/conversations/{callId}/messages': { text: 'yes' },
    'post /v1/conversations/{callId}/messages/stream': { text: 'yes' },
    'post /v1/conversations/{callId}/end': {},
  };
  return bodies[key] ?? {};
}

interface Probe {
  method: string;
  path: string;
  url: string;
  status: number;
  code?: string;
}

it('every route with an id refuses tenant A the ids of tenant B, and B keeps its rows unchanged', async () => {
  const doc = (await request(voice.stack.app).get('/openapi.json')).body as {
    paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
  };
  const userIds = [B.signedUp.userId, B.userId];
  const before = await snapshotTenant(B.signedUp.tenantId, userIds);
  // The snapshot holds what B made: the comparison afterwards is about real rows.
  for (const table of [
    'agents',
    'agent_versions',
    'phone_numbers',
    'contacts',
    'contact_lists',
    'campaigns',
    'calls',
  ]) {
    expect([table, (before[table] ?? []).length > 0]).toEqual([table, true]);
  }
  expect(before.users).toHaveLength(2);
  const probes: Probe[] = [];
  const skipped: string[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    if (params.length === 0) continue;
    for (const method of Object.keys(operations)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      let url = path;
      let usable = true;
      for (const param of params) {
        const id = idFor(path, param, B);
        if (id === undefined) usable = false;
        else url = url.replace(`{${param}}`, id);
      }
      if (!usable) {
        skipped.push(`${method.toUpperCase()} ${path}`);
        continue;
      }
      const client = request(voice.stack.app);
      let req = client[method as 'get'](url).set(bearer(A.token)).timeout({ response: 10_000 });
      if (path.endsWith('/diff')) req = req.query({ from: '1' });
      if (path.endsWith('/import')) {
        req = req.set('content-type', 'text/csv').send(`phone,name\n${uniqueUsNumber()},Intruder\n`);
      } else if (method !== 'get' && method !== 'delete') {
        req = req.send(bodyFor(method, path) as object);
      } else if (method === 'delete' && path.endsWith('/members')) {
        req = req.send(bodyFor(method, path) as object);
      }
      let status: number;
      let code: string | undefined;
      try {
        const res = await req;
        status = res.status;
        code = (res.body as { error?: { code?: string } })?.error?.code;
      } catch (err) {
        // An SSE stream that stays open would be a 200 that never ends.
        status = (err as { timeout?: number }).timeout ? 200 : 0;
        code = (err as Error).message;
      }
      probes.push({ method: method.toUpperCase(), path, url, status, code });
    }
  }
  // The document covered what it should: every kind of object took part.
  expect(probes.length).toBeGreaterThanOrEqual(40);
  for (const kind of [
    'agents',
    'calls',
    'campaigns',
    'contacts',
    'contact-lists',
    'phone-numbers',
    'users',
  ]) {
    expect(probes.some((p) => p.path.startsWith(`/v1/${kind}/`))).toBe(true);
  }
  expect(probes.some((p) => p.path === '/v1/integrations/imports/{id}')).toBe(true);
  expect(skipped.every((s) => s.includes('{provider}'))).toBe(true);

  const answered2xx = probes.filter((p) => p.status >= 200 && p.status < 300);
  expect(answered2xx.map((p) => `${p.method} ${p.url} → ${p.status}`)).toEqual([]);
  const notRefused = probes.filter((p) => ![400, 403, 404, 409, 422].includes(p.status));
  expect(notRefused.map((p) => `${p.method} ${p.url} → ${p.status} ${p.code ?? ''}`)).toEqual([]);
  // A read of another tenant's object says it does not exist, not that it is forbidden.
  const reads = probes.filter((p) => p.method === 'GET');
  expect(reads.filter((p) => p.status !== 404).map((p) => `${p.url} → ${p.status} ${p.code}`)).toEqual([]);

  const after = await snapshotTenant(B.signedUp.tenantId, userIds);
  expect(after).toEqual(before);
  // And B still sees its own objects through the API.
  for (const url of [
    `/v1/agents/${B.agentId}`,
    `/v1/calls/${B.callId}`,
    `/v1/campaigns/${B.campaignId}`,
    `/v1/contacts/${B.contactId}`,
    `/v1/contact-lists/${B.contactListId}`,
    `/v1/phone-numbers/${B.phoneNumberId}`,
    `/v1/users/${B.userId}`,
  ]) {
    expect([url, (await request(voice.stack.app).get(url).set(bearer(B.token))).status]).toEqual([url, 200]);
  }
});

it('ids of tenant B inside tenant A’s bodies are refused and nothing of A points at B', async () => {
  const app = voice.stack.app;
  const auth = bearer(A.token);
  const userIds = [B.signedUp.userId, B.userId];
  const before = await snapshotTenant(B.signedUp.tenantId, userIds);
  const campaign = (overrides: Record<string, unknown>) => ({
    name: `cross ${randomInt(1e6)}`,
    agentId: A.agentId,
    callerNumberId: A.phoneNumberId,
    contactListId: A.contactListId,
    ...overrides,
  });
  const attempts: [string, Promise<request.Response>][] = [
    [
      'campaign with B agent',
      request(app)
        .post('/v1/campaigns')
        .set(auth)
        .send(campaign({ agentId: B.agentId })),
    ],
    [
      'campaign with B number',
      request(app)
        .post('/v1/campaigns')
        .set(auth)
        .send(campaign({ callerNumberId: B.phoneNumberId })),
    ],
    [
      'campaign with B list',
      request(app)
        .post('/v1/campaigns')
        .set(auth)
        .send(campaign({ contactListId: B.contactListId })),
    ],
    [
      'A list gets B contact',
      request(app)
        .post(`/v1/contact-lists/${A.contactListId}/members`)
        .set(auth)
        .send({ contactIds: [B.contactId] }),
    ],
    [
      'A number answered by B agent',
      request(app).patch(`/v1/phone-numbers/${A.phoneNumberId}`).set(auth).send({ agentId: B.agentId }),
    ],
    [
      'new number for B agent',
      request(app).post('/v1/phone-numbers').set(auth).send({ number: uniqueUsNumber(), agentId: B.agentId }),
    ],
    [
      'conversation with B agent',
      request(app).post('/v1/conversations').set(auth).send({ agentId: B.agentId }),
    ],
    [
      'A campaign moved to B agent',
      request(app).patch(`/v1/campaigns/${A.campaignId}`).set(auth).send({ agentId: B.agentId }),
    ],
  ];
  const accepted: string[] = [];
  for (const [label, pending] of attempts) {
    const res = await pending;
    if (res.status < 400 || res.status >= 500)
      accepted.push(`${label} → ${res.status} ${JSON.stringify(res.body)}`);
  }
  expect(accepted).toEqual([]);
  // A's user cannot switch into B's workspace, whether by tenant id or with B's token in hand.
  const switched = await request(app)
    .post('/v1/auth/switch-tenant')
    .set(auth)
    .send({ tenantId: B.signedUp.tenantId });
  expect([switched.status, switched.body.error?.code]).toEqual([403, 'NOT_A_MEMBER']);
  expect(switched.body.token).toBeUndefined();
  // List filters naming B's objects find nothing of B's (an empty page, or a refusal).
  for (const [path, query] of [
    ['/v1/calls', { agentId: B.agentId }],
    ['/v1/calls', { campaignId: B.campaignId }],
    ['/v1/contacts', { listId: B.contactListId }],
    ['/v1/audit-log', { actorId: B.signedUp.userId }],
    ['/v1/audit-log', { targetId: B.agentId }],
  ] as const) {
    const res = await request(app).get(path).query(query).set(auth);
    expect([path, JSON.stringify(query), res.status < 500]).toEqual([path, JSON.stringify(query), true]);
    if (res.status === 200) expect([path, query, res.body.data]).toEqual([path, query, []]);
    else expect([400, 404]).toContain(res.status);
  }
  // Nothing of tenant A refers to B's rows.
  const leaks = await owner.query(
    `select 'campaign' as kind, id from campaigns where tenant_id = $1
       and (agent_id = any($2::uuid[]) or caller_number_id = any($2::uuid[]) or contact_list_id = any($2::uuid[]))
     union all
     select 'number', id from phone_numbers where tenant_id = $1 and agent_id = any($2::uuid[])
     union all
     select 'call', id from calls where tenant_id = $1 and agent_id = any($2::uuid[])`,
    [A.signedUp.tenantId, [B.agentId, B.phoneNumberId, B.contactListId, B.contactId]],
  );
  expect(leaks.rows).toEqual([]);
  expect(await snapshotTenant(B.signedUp.tenantId, userIds)).toEqual(before);
});

// ---------------------------------------------------------------------------------------------------
// 2. SQL-looking strings
// ---------------------------------------------------------------------------------------------------

const INJECTIONS = [
  "' OR 1=1 --",
  '1; DROP TABLE calls',
  "%' UNION SELECT id, tenant_id, null FROM users --",
  "'); DELETE FROM contacts; --",
  '" OR ""="',
  '\\x27 OR 1=1',
];

async function tableCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of ['calls', 'contacts', 'contact_lists', 'users', 'agents', 'campaigns', 'tenants']) {
    const { rows } = await owner.query<{ n: string }>(
      `select count(*) as n from "${table}" where ${table === 'tenants' ? 'id' : 'tenant_id'} = any($1::uuid[])`,
      [[A.signedUp.tenantId, B.signedUp.tenantId]],
    );
    counts[table] = Number(rows[0]!.n);
  }
  return counts;
}

it('SQL-looking strings in ids, queries and bodies are refused or stored verbatim, never a 500', async () => {
  const app = voice.stack.app;
  const auth = bearer(A.token);
  const countsBefore = await tableCounts();
  const answers: string[] = [];
  const record = (what: string, res: request.Response) => {
    answers.push(`${what} → ${res.status}`);
    return res;
  };

  for (const evil of INJECTIONS) {
    const id = encodeURIComponent(evil);
    for (const path of [
      'agents',
      'calls',
      'campaigns',
      'contacts',
      'contact-lists',
      'phone-numbers',
      'users',
    ]) {
      const res = record(`GET /v1/${path}/${evil}`, await request(app).get(`/v1/${path}/${id}`).set(auth));
      expect([400, 404]).toContain(res.status);
    }
    const q = { search: evil };
    const search = record(
      `GET /v1/contacts?search=${evil}`,
      await request(app).get('/v1/contacts').query(q).set(auth),
    );
    expect(search.status).toBe(200);
    // The search is a text match: a contact named like the injection only, never every contact.
    for (const c of search.body.data as { name?: string }[]) expect(c.name ?? '').toContain(evil.trim());
    for (const [path, query] of [
      ['/v1/contacts', { cursor: evil }],
      ['/v1/calls', { cursor: evil }],
      ['/v1/campaigns', { cursor: evil }],
      ['/v1/calls', { agentId: evil }],
      ['/v1/calls', { from: evil }],
      ['/v1/contacts', { listId: evil }],
      ['/v1/agents/' + A.agentId + '/diff', { from: evil, to: evil }],
    ] as const) {
      const res = record(
        `GET ${path}?${JSON.stringify(query)}`,
        await request(app).get(path).query(query).set(auth),
      );
      expect([400, 404]).toContain(res.status);
    }
    for (const [path, query] of [
      ['/v1/calls', { status: evil.slice(0, 32) }],
      ['/v1/calls', { disposition: evil }],
      ['/v1/audit-log', { action: evil }],
    ] as const) {
      const res = record(
        `GET ${path}?${JSON.stringify(query)}`,
        await request(app).get(path).query(query).set(auth),
      );
      expect([200, 400]).toContain(res.status);
      if (res.status === 200) expect(res.body.data).toEqual([]);
    }
  }

  // Free-text fields keep the text exactly as sent, and read it back identical.
  for (const evil of INJECTIONS) {
    const created = record(
      `POST /v1/contacts name=${evil}`,
      await request(app).post('/v1/contacts').set(auth).send({ phone: uniqueUsNumber(), name: evil }),
    );
    expect(created.status).toBe(201);
    const read = await request(app).get(`/v1/contacts/${created.body.id}`).set(auth);
    expect(read.body.name).toBe(evil.trim());
    const found = await request(app).get('/v1/contacts').query({ search: evil }).set(auth);
    expect(found.status).toBe(200);
    expect(found.body.data.map((c: { id: string }) => c.id)).toContain(created.body.id);
    const list = record(
      `POST /v1/contact-lists name=${evil}`,
      await request(app).post('/v1/contact-lists').set(auth).send({ name: evil }),
    );
    expect(list.status).toBe(201);
    expect((await request(app).get(`/v1/contact-lists/${list.body.id}`).set(auth)).body.name).toBe(
      evil.trim(),
    );
    // Emails: refused as invalid, or kept as they are.
    const user = record(
      `POST /v1/users email=${evil}`,
      await request(app)
        .post('/v1/users')
        .set(auth)
        .send({ email: `${evil}@example.test`, name: evil, role: 'viewer', password: 'a long password' }),
    );
    expect([201, 400]).toContain(user.status);
    if (user.status === 201) expect(user.body.email).toBe(`${evil}@example.test`.toLowerCase());
    const login = record(
      `POST /v1/auth/login email=${evil}`,
      await request(app).post('/v1/auth/login').send({ email: evil, password: evil }),
    );
    expect([400, 401]).toContain(login.status);
  }

  expect(answers.filter((a) => a.endsWith('→ 500'))).toEqual([]);
  const countsAfter = await tableCounts();
  // The tables are all there, and only the rows created above were added.
  for (const table of Object.keys(countsBefore)) {
    expect(await owner.query(`select to_regclass('public.${table}') as t`)).toMatchObject({
      rows: [{ t: table }],
    });
  }
  expect(countsAfter.calls).toBe(countsBefore.calls);
  expect(countsAfter.agents).toBe(countsBefore.agents);
  expect(countsAfter.campaigns).toBe(countsBefore.campaigns);
  expect(countsAfter.tenants).toBe(countsBefore.tenants);
  expect(countsAfter.contacts).toBe(countsBefore.contacts! + INJECTIONS.length);
  expect(countsAfter.contact_lists).toBe(countsBefore.contact_lists! + INJECTIONS.length);
});

// ---------------------------------------------------------------------------------------------------
// 3. Oversized and deeply nested bodies
// ---------------------------------------------------------------------------------------------------

describe('oversized bodies', () => {
  it('JSON over the body limit is 413 PAYLOAD_TOO_LARGE and nothing is stored', async () => {
    const before = await tableCounts();
    const res = await request(voice.stack.app)
      .post('/v1/contacts')
      .set(bearer(A.token))
      .send({ phone: uniqueUsNumber(), name: 'x'.repeat(1024 * 1024 + 10) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    // The campaign route's larger limit has an end too.
    const campaign = await request(voice.stack.app)
      .post('/v1/campaigns')
      .set(bearer(A.token))
      .send({
        name: 'huge',
        agentId: A.agentId,
        callerNumberId: A.phoneNumberId,
        csv: 'x'.repeat(12 * 1024 * 1024),
      });
    expect(campaign.status).toBe(413);
    expect(campaign.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await tableCounts()).toEqual(before);
  });

  it('a CSV import over its limit is 413 PAYLOAD_TOO_LARGE', async () => {
    const row = `${'+14155550100'},${'n'.repeat(80)}\n`;
    const csv = `phone,name\n${row.repeat(Math.ceil((20 * 1024 * 1024 + 1024) / row.length))}`;
    for (const path of ['/v1/contacts/import/preview', `/v1/contact-lists/${A.contactListId}/import`]) {
      const res = await request(voice.stack.app)
        .post(path)
        .set(bearer(A.token))
        .set('content-type', 'text/csv')
        .send(csv);
      expect([path, res.status, res.body.error?.code]).toEqual([path, 413, 'PAYLOAD_TOO_LARGE']);
    }
  });

  it('deeply nested JSON and huge arrays in a definition are 400, not 500', async () => {
    const app = voice.stack.app;
    const auth = bearer(A.token);
    // 20 000 levels of nesting, well under the size limit.
    const nested = `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`;
    const deep = await request(app)
      .post('/v1/agents')
      .set(auth)
      .set('content-type', 'application/json')
      .send(`{"name":"deep","definition":{"greeting":"hi","flow":${nested}}}`);
    // Refused as a request (400) or as a definition (422, the agent routes' answer), never a 500.
    expect([400, 422]).toContain(deep.status);
    expect(['VALIDATION_FAILED', 'AGENT_DEFINITION_INVALID']).toContain(deep.body.error?.code);
    const deepArray = await request(app)
      .post('/v1/agents')
      .set(auth)
      .set('content-type', 'application/json')
      .send(`{"name":"deep","definition":${'['.repeat(50_000)}${']'.repeat(50_000)}}`);
    expect([400, 422]).toContain(deepArray.status);
    expect(['VALIDATION_FAILED', 'AGENT_DEFINITION_INVALID']).toContain(deepArray.body.error?.code);
    // Thousands of nodes and edges (over the schema's maxima), inside the byte limit.
    const nodes = Array.from({ length: 5_000 }, (_, i) => ({ id: `n${i}`, type: 'end', disposition: 'x' }));
    const edges = Array.from({ length: 5_000 }, (_, i) => ({ id: `e${i}`, source: 'n0', target: `n${i}` }));
    const huge = await request(app)
      .post('/v1/agents')
      .set(auth)
      .send({ name: 'huge', definition: { greeting: 'hi', flow: { startNodeId: 'n0', nodes, edges } } });
    expect([400, 422]).toContain(huge.status);
    expect(['VALIDATION_FAILED', 'AGENT_DEFINITION_INVALID']).toContain(huge.body.error?.code);
    // The refusal stays small: it does not echo one problem per element of the arrays.
    expect(JSON.stringify(huge.body).length).toBeLessThan(100_000);
    // A huge array of ids where a few are expected.
    const members = await request(app)
      .post(`/v1/contact-lists/${A.contactListId}/members`)
      .set(auth)
      .send({ contactIds: Array.from({ length: 25_000 }, () => randomUUID()) });
    expect([400, 404, 413, 422]).toContain(members.status);
  });
});

// ---------------------------------------------------------------------------------------------------
// 4. Forged signatures
// ---------------------------------------------------------------------------------------------------

describe('forged webhook signatures', () => {
  const callRows = async (callSid: string) =>
    Number(
      (
        await owner.query<{ n: string }>('select count(*) as n from calls where provider_call_sid = $1', [
          callSid,
        ])
      ).rows[0]!.n,
    );

  it('Twilio webhooks with a missing, wrong or misplaced signature are 403 and create no call', async () => {
    const authToken = voice.stack.config.TWILIO_AUTH_TOKEN as string;
    const base = voice.apiUrl;
    const callSid = `CA${randomUUID().replace(/-/g, '')}`;
    const form = {
      CallSid: callSid,
      AccountSid: voice.simulator.accountSid,
      From: '+15550009999',
      To: A.phoneNumber,
      CallStatus: 'ringing',
      Direction: 'inbound',
    };
    const sign = (url: string, params: Record<string, string>) =>
      twilio.getExpectedTwilioSignature(authToken, url, params);
    const post = (path: string, signature: string | undefined, body: Record<string, string> = form) => {
      const req = request(voice.stack.app).post(path).type('form');
      if (signature !== undefined) req.set('x-twilio-signature', signature);
      return req.send(body);
    };
    for (const path of ['/twilio/voice', '/twilio/status', '/twilio/amd', '/twilio/stream-status']) {
      const cases: [string, string | undefined, Record<string, string>][] = [
        ['missing', undefined, form],
        ['garbage', 'not-a-signature', form],
        ['another token', twilio.getExpectedTwilioSignature('f'.repeat(32), `${base}${path}`, form), form],
        ['another url', sign(`${base}/twilio/other`, form), form],
        ['another host', sign(`https://evil.example.com${path}`, form), form],
        ['other params', sign(`${base}${path}`, { ...form, To: B.phoneNumber }), form],
        ['params added', sign(`${base}${path}`, form), { ...form, CallStatus: 'completed' }],
      ];
      for (const [label, signature, body] of cases) {
        const res = await post(path, signature, body);
        expect([path, label, res.status, res.body.error?.code]).toEqual([
          path,
          label,
          403,
          'TWILIO_SIGNATURE_INVALID',
        ]);
      }
      // A query string the signature did not cover (outbound webhooks carry ?callId=, signed).
      const withQuery = await post(`${path}?callId=${A.callId}`, sign(`${base}${path}`, form));
      expect([path, 'query added', withQuery.status]).toEqual([path, 'query added', 403]);
    }
    expect(await callRows(callSid)).toBe(0);
    // The same request, signed as Twilio signs it, is accepted: the refusals above were about the signature.
    const control = await post(
      '/twilio/status',
      sign(`${base}/twilio/status`, { ...form, CallStatus: 'completed' }),
      {
        ...form,
        CallStatus: 'completed',
      },
    );
    expect(control.status).not.toBe(403);
    expect(control.status).toBeLessThan(500);
  });

  it('the Stripe webhook refuses unsigned, wrongly signed and stale events with 400', async () => {
    const payload = JSON.stringify({
      id: `evt_${randomUUID()}`,
      object: 'event',
      type: 'invoice.paid',
      data: {
        object: {
          id: `in_${randomUUID()}`,
          metadata: { parley_tenant_id: A.signedUp.tenantId, parley_period: '2026-11' },
        },
      },
    });
    const header = (secret: string, timestamp = Math.floor(Date.now() / 1000)) =>
      Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
    const post = (signature?: string) => {
      const req = request(voice.stack.app).post('/stripe/webhook').set('content-type', 'application/json');
      if (signature !== undefined) req.set('stripe-signature', signature);
      return req.send(payload);
    };
    const cases: [string, string | undefined, string][] = [
      ['unsigned', undefined, 'STRIPE_SIGNATURE_MISSING'],
      ['garbage', 't=1,v1=deadbeef', 'STRIPE_SIGNATURE_INVALID'],
      ['wrong secret', header('whsec_someone_else_entirely_000000'), 'STRIPE_SIGNATURE_INVALID'],
      [
        'stale',
        header(STRIPE_WEBHOOK_SECRET, Math.floor(Date.now() / 1000) - 3_600),
        'STRIPE_SIGNATURE_INVALID',
      ],
    ];
    for (const [label, signature, code] of cases) {
      const res = await post(signature);
      expect([label, res.status, res.body.error?.code]).toEqual([label, 400, code]);
      expect(res.body.received).toBeUndefined();
    }
    // A body changed after signing.
    const tampered = await request(voice.stack.app)
      .post('/stripe/webhook')
      .set('content-type', 'application/json')
      .set('stripe-signature', header(STRIPE_WEBHOOK_SECRET))
      .send(payload.replace('invoice.paid', 'invoice.payment_failed'));
    expect([tampered.status, tampered.body.error?.code]).toEqual([400, 'STRIPE_SIGNATURE_INVALID']);
    // Signed with the right secret, now: read (no billing cycle is open for it, so nothing to do).
    const control = await post(header(STRIPE_WEBHOOK_SECRET));
    expect(control.status).toBe(200);
    expect(control.body.received).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------
// 5. Replayed, forged and expired stream tokens
// ---------------------------------------------------------------------------------------------------

interface Socket {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
  messages: Record<string, unknown>[];
}

function open(url: string, onOpen?: (ws: WebSocket) => void): Socket {
  const ws = new WebSocket(url);
  const messages: Record<string, unknown>[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  ws.on('message', (data: Buffer) => {
    try {
      messages.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
    } catch {
      // binary or garbage: not what these tests look at
    }
  });
  if (onOpen) ws.on('open', () => onOpen(ws));
  return { ws, closed, messages };
}

function twilioStream(token: string, callSid: string): Socket {
  return open(`${voice.relayUrl}/twilio/stream`, (ws) => {
    ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    ws.send(
      JSON.stringify({
        event: 'start',
        sequenceNumber: '1',
        streamSid: 'MZ11111111111111111111111111111111',
        start: {
          accountSid: voice.simulator.accountSid,
          streamSid: 'MZ11111111111111111111111111111111',
          callSid,
          tracks: ['inbound'],
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          customParameters: { token },
        },
      }),
    );
  });
}

describe('stream tokens', () => {
  it('a browser stream token works once: presented again it is closed with 4401 and no second session', async () => {
    const started = await request(voice.stack.app)
      .post(`/v1/agents/${A.agentId}/test-calls`)
      .set(bearer(A.token))
      .send({ encoding: 'pcm16' });
    expect(started.status).toBe(201);
    const url = `${started.body.streamUrl}?token=${encodeURIComponent(started.body.token)}&encoding=pcm16`;
    const first = open(url);
    try {
      await waitUntil(
        'the first stream started',
        () => Promise.resolve(first.messages.some((m) => m.event === 'start')),
        15_000,
        20,
      );
      const session = voice.relay.sessions.get(started.body.callId);
      expect(session).toBeDefined();
      const replay = open(url);
      expect(await replay.closed).toEqual({ code: 4401, reason: 'stream token replayed' });
      expect(replay.messages.filter((m) => m.event === 'start')).toEqual([]);
      // The first stream is still the call's one and only session.
      expect(voice.relay.sessions.get(started.body.callId)).toBe(session);
      expect(session!.ended).toBe(false);
      expect(first.ws.readyState).toBe(WebSocket.OPEN);
      expect(voice.relay.sessions.live().filter((s) => s.callId === started.body.callId)).toHaveLength(1);
    } finally {
      first.ws.close(1000);
      await first.closed;
    }
  });

  it('forged, expired, other-channel and other-call tokens are closed with 4401', async () => {
    const secret = voice.stack.config.STREAM_TOKEN_SECRET;
    const callId = randomUUID();
    const webClaims = {
      callId,
      tenantId: A.signedUp.tenantId,
      workflowId: `call:${callId}`,
      channel: 'web' as const,
    };
    const web = (token: string) => open(`${voice.relayUrl}/web/stream?token=${encodeURIComponent(token)}`);
    const webCases: [string, string, RegExp][] = [
      ['forged', signStreamToken('someone-elses-secret-000000000000', webClaims, 60).token, /bad_signature/],
      ['expired', signStreamToken(secret, webClaims, 30, Date.now() - 120_000).token, /expired/],
      [
        'voice token on the web',
        signStreamToken(secret, { ...webClaims, channel: 'voice' }, 60).token,
        /malformed/,
      ],
      ['garbage', "' OR 1=1 --", /malformed/],
      [
        'claims edited after signing',
        (() => {
          const [, sig] = signStreamToken(secret, webClaims, 60).token.split('.');
          const body = Buffer.from(
            JSON.stringify({
              v: 1,
              ...webClaims,
              tenantId: B.signedUp.tenantId,
              jti: randomUUID(),
              exp: 9e9,
            }),
          ).toString('base64url');
          return `${body}.${sig}`;
        })(),
        /bad_signature/,
      ],
    ];
    for (const [label, token, reason] of webCases) {
      const result = await web(token).closed;
      expect([label, result.code]).toEqual([label, 4401]);
      expect(result.reason).toMatch(reason);
    }

    // Twilio media streams: a token bound to one CallSid cannot attach another call's stream.
    const callSid = `CA${randomUUID().replace(/-/g, '')}`;
    const voiceClaims = {
      callId: randomUUID(),
      tenantId: A.signedUp.tenantId,
      workflowId: `call:${callSid}`,
      channel: 'voice' as const,
      callSid,
    };
    const otherCall = await twilioStream(
      signStreamToken(secret, voiceClaims, 60).token,
      `CA${randomUUID().replace(/-/g, '')}`,
    ).closed;
    expect(otherCall).toEqual({ code: 4401, reason: 'stream token malformed' });
    const webOnTwilio = await twilioStream(signStreamToken(secret, webClaims, 60).token, callSid).closed;
    expect(webOnTwilio.code).toBe(4401);
    const expired = await twilioStream(
      signStreamToken(secret, voiceClaims, 30, Date.now() - 120_000).token,
      callSid,
    ).closed;
    expect(expired).toEqual({ code: 4401, reason: 'stream token expired' });
    // Used once (the call itself does not exist, so the stream ends), then replayed: refused as replayed.
    const token = signStreamToken(secret, voiceClaims, 60).token;
    const once = twilioStream(token, callSid);
    await waitUntil(
      'the first stream was taken',
      () => Promise.resolve(Boolean(voice.relay.sessions.get(voiceClaims.callId))),
      10_000,
      20,
    );
    const replay = await twilioStream(token, callSid).closed;
    expect(replay).toEqual({ code: 4401, reason: 'stream token replayed' });
    once.ws.terminate();
    await once.closed;
  });
});

// ---------------------------------------------------------------------------------------------------
// 6. Malformed credentials
// ---------------------------------------------------------------------------------------------------

it('tampered JWTs, cross-tenant API keys and injected bearer strings are 401', async () => {
  const app = voice.stack.app;
  const secret = voice.stack.config.JWT_SECRET;
  const [header, payload, signature] = A.token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  const reencode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const aHex = A.signedUp.tenantId.replace(/-/g, '');
  const bHex = B.signedUp.tenantId.replace(/-/g, '');
  const aSecret = A.apiKey.slice(37);
  const bSecret = B.apiKey.slice(37);
  const tokens: [string, string][] = [
    [
      'B tenant claim, A signature',
      `${header}.${reencode({ ...claims, tid: B.signedUp.tenantId })}.${signature}`,
    ],
    [
      'B user claim, A signature',
      `${header}.${reencode({ ...claims, sub: B.signedUp.userId })}.${signature}`,
    ],
    [
      'alg none',
      `${reencode({ alg: 'none', typ: 'JWT' })}.${reencode({ ...claims, tid: B.signedUp.tenantId })}.`,
    ],
    ['signature cut', `${header}.${payload}.`],
    ['wrong secret', jwt.sign({ ...claims }, 'not-the-server-secret-at-all-000000', { algorithm: 'HS256' })],
    ['HS512', jwt.sign({ ...claims }, secret, { algorithm: 'HS512' })],
    [
      'no issuer',
      jwt.sign({ tid: claims.tid, sub: claims.sub }, secret, { algorithm: 'HS256', expiresIn: 60 }),
    ],
    [
      'expired',
      jwt.sign(
        { ...claims, exp: Math.floor(Date.now() / 1000) - 60, iat: Math.floor(Date.now() / 1000) - 120 },
        secret,
        {
          algorithm: 'HS256',
        },
      ),
    ],
    // Properly signed (the secret is known here), but A's user is no member of B.
    [
      'signed, A user in B tenant',
      jwt.sign({ ...claims, tid: B.signedUp.tenantId }, secret, { algorithm: 'HS256' }),
    ],
    ['A tenant part, B key secret', `prk_${aHex}_${bSecret}`],
    ['B tenant part, A key secret', `prk_${bHex}_${aSecret}`],
    ['key of B, one char changed', B.apiKey.slice(0, -1) + (B.apiKey.endsWith('A') ? 'B' : 'A')],
    ['key-shaped injection', `prk_${bHex}_' OR 1=1 --' OR 1=1 --' OR 1=1 --' OR 1=1 --`],
    ['injection', "' OR 1=1"],
    ['injection with comment', "' OR '1'='1' --"],
    ['empty', ''],
  ];
  const refused: string[] = [];
  for (const [label, token] of tokens) {
    const res = await request(app)
      .get('/v1/contacts')
      .set({ authorization: `Bearer ${token}` });
    if (res.status !== 401 && res.status !== 403) refused.push(`${label} → ${res.status}`);
    expect(res.body.data).toBeUndefined();
    // The same credential in X-API-Key, the other header the api reads.
    if (!token) continue;
    const viaKeyHeader = await request(app).get('/v1/contacts').set('x-api-key', token);
    if (viaKeyHeader.status !== 401) refused.push(`X-API-Key ${label} → ${viaKeyHeader.status}`);
  }
  expect(refused).toEqual([]);
  for (const value of ["Basic ' OR 1=1", `Token ${A.token}`, "Bearer ' OR 1=1 --; DROP TABLE users"]) {
    const res = await request(app).get('/v1/agents').set({ authorization: value });
    expect([value, res.status]).toEqual([value, 401]);
  }
  // Controls: the genuine credentials work, and each sees its own tenant only.
  const mine = await request(app).get(`/v1/contacts/${A.contactId}`).set(bearer(A.apiKey));
  expect(mine.status).toBe(200);
  const theirs = await request(app).get(`/v1/contacts/${A.contactId}`).set(bearer(B.apiKey));
  expect(theirs.status).toBe(404);
});
