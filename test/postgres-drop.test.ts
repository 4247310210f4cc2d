/**
 * Fault test: PostgreSQL drops the app's connections under load. While an outbound campaign dials
 * 20 contacts (voice calls through the Twilio peer, each logged to HubSpot and metered to Stripe)
 * and 20 text conversations talk to the demo booking agent, with readers polling the API, the
 * database owner terminates every backend of the app role opened by this test's stack (api and
 * worker share its pool here), in three waves a second apart.
 *
 * Afterwards nothing is lost and nothing is doubled: every call workflow has exactly one call row
 * and every call row a workflow, every turn is stored once in order, each campaign contact was
 * dialed at most once and has one call, each call has one usage record, each voice call one HubSpot
 * call log (and each contact one HubSpot contact), each meter event carries its usage record's id
 * as identifier and idempotency key (so a resend is one event to Stripe). Every call ended
 * `completed`, or `failed` with a reason; no call workflow is left running. The API answered every
 * request during the drop with success or 503 DATABASE_UNAVAILABLE (never a 500), and every request
 * after it succeeds: the pool recovered.
 */
import request from 'supertest';
import { callWorkflowId } from '../contracts/call';
import { tenantProvisioningWorkflowId } from '../contracts/tenant-provisioning';
import { appRoleName } from '../db/orm';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { sleep, waitUntil } from '../lib/net';
import { HubSpotPeer } from './peers/hubspot-peer';
import { STRIPE_MOCK_API_KEY } from './peers/stripe-mock';
import { StripePeer } from './peers/stripe-peer';
import {
  campaignDiagnostics,
  createCampaign,
  launchCampaign,
  startCampaignStack,
  testNumber,
  waitForCampaignEnd,
  type CampaignStack,
} from './support/campaign-stack';
import { bearer, ownerClient } from './support/stack';
import type { Client as PgClient } from 'pg';

jest.setTimeout(120_000);

const HUBSPOT_TOKEN = 'pat-na1-99999999-8888-7777-6666-555555555555';
const CONTACTS = 20;
const CONVERSATIONS = 20;
const READERS = 4;
const WAVES = 3;
const ALWAYS_OPEN = Object.fromEntries(
  ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [{ start: '00:00', end: '24:00' }]]),
);
const ONE_ATTEMPT = { maxAttempts: 1, backoffSeconds: 1, backoffMultiplier: 1 };
/**
 * node-postgres names its connections from PGAPPNAME: the waves terminate this stack's backends
 * only, not those of a test file running beside this one on the same database and role.
 */
const APP_NAME = `parley-pg-drop-${process.pid}`;
const previousAppName = process.env.PGAPPNAME;

let hubspot: HubSpotPeer;
let stripePeer: StripePeer;
let cs: CampaignStack;
let admin: PgClient;
let bookingAgentId: string;

/** Every answer the API (and the Twilio peer's callbacks) got while the load ran, and after. */
interface Answer {
  what: string;
  status: number;
  code?: string;
}
const answers: Answer[] = [];

beforeAll(async () => {
  // knex logs each connection the waves kill ("Connection Error: …") with console.log: expected here.
  const log = console.log.bind(console);
  jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    if (!(typeof args[0] === 'string' && args[0].startsWith('Connection Error:'))) log(...args);
  });
  process.env.PGAPPNAME = APP_NAME;
  hubspot = new HubSpotPeer({ accessToken: HUBSPOT_TOKEN });
  stripePeer = new StripePeer({ upstream: process.env.STRIPE_MOCK_URL });
  const [hubspotUrl, stripe] = await Promise.all([hubspot.start(), stripePeer.start()]);
  cs = await startCampaignStack({
    peer: { fastMedia: true },
    env: {
      HUBSPOT_API_BASE_URL: hubspotUrl,
      STRIPE_SECRET_KEY: STRIPE_MOCK_API_KEY,
      STRIPE_API_BASE_URL: stripe.url,
      STRIPE_PLAN_PRICES: 'free=price_free_parley,pro=price_pro_parley,enterprise=price_ent_parley',
      STRIPE_SECONDS_METER_ID: 'mtr_parley_seconds',
    },
  });
  // Sign-up's provisioning gives the tenant its Stripe customer: its calls are metered.
  await cs.stack.temporal.workflow.getHandle(tenantProvisioningWorkflowId(cs.tenant.tenantId)).result();
  const connected = await request(cs.stack.app)
    .put('/v1/integrations/hubspot')
    .set(bearer(cs.tenant.token))
    .send({ accessToken: HUBSPOT_TOKEN });
  if (connected.status !== 200)
    throw new Error(`hubspot: ${connected.status} ${JSON.stringify(connected.body)}`);
  bookingAgentId = (await seedDemoAgents(cs.stack.orm, cs.tenant.tenantId, cs.tenant.userId)).bookingAgentId;
  admin = await ownerClient(cs.stack.config);
});

afterAll(async () => {
  await admin?.end();
  await cs?.close();
  await Promise.all([hubspot?.stop(), stripePeer?.stop()]);
  if (previousAppName === undefined) delete process.env.PGAPPNAME;
  else process.env.PGAPPNAME = previousAppName;
  jest.restoreAllMocks();
});

const authed = () => bearer(cs.tenant.token);

function note(what: string, res: request.Response): request.Response {
  answers.push({ what, status: res.status, code: res.body?.error?.code });
  return res;
}

/**
 * A client that retries what the API says is worth retrying (503), as a well-behaved client does;
 * every answer is noted. Messages carry their turn id, so a retry can never make a second turn.
 */
async function withRetries(what: string, send: () => request.Test): Promise<request.Response> {
  for (let attempt = 1; ; attempt += 1) {
    const res = note(what, await send());
    if (res.status !== 503 || attempt >= 40) return res;
    await sleep(250);
  }
}

const TEXTS = (i: number) => [`Caller Number${i}`, 'tomorrow at 3pm', 'yes please'];

/** One text conversation booking an appointment: start, then three turns. */
async function converse(i: number): Promise<{ callId: string; last: request.Response }> {
  const started = await withRetries('POST /v1/conversations', () =>
    request(cs.stack.app).post('/v1/conversations').set(authed()).send({ agentId: bookingAgentId }),
  );
  if (started.status !== 201)
    throw new Error(`start ${i}: ${started.status} ${JSON.stringify(started.body)}`);
  const callId = started.body.callId as string;
  let last = started;
  for (const [n, text] of TEXTS(i).entries()) {
    last = await withRetries('POST /v1/conversations/:id/messages', () =>
      request(cs.stack.app)
        .post(`/v1/conversations/${callId}/messages`)
        .set(authed())
        .send({ text, turnId: n + 1 }),
    );
    if (last.status !== 200)
      throw new Error(`turn ${n + 1} of ${i}: ${last.status} ${JSON.stringify(last.body)}`);
  }
  return { callId, last };
}

/** Reads the API until told to stop; single attempts, every answer noted. */
async function read(paths: string[], until: () => boolean): Promise<void> {
  while (!until()) {
    for (const path of paths)
      note(`GET ${path.split('?')[0]}`, await request(cs.stack.app).get(path).set(authed()));
    await sleep(20);
  }
}

/** Terminates the app's connections; the number of backends it ended. */
async function dropConnections(): Promise<number> {
  const res = await admin.query(
    `select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and usename = $1 and application_name = $2`,
    [appRoleName(cs.stack.config), APP_NAME],
  );
  return res.rowCount ?? 0;
}

it('drops every app connection three times under load: nothing lost, nothing doubled, the pool recovers', async () => {
  const tenantId = cs.tenant.tenantId;
  const phones = Array.from({ length: CONTACTS }, (_, i) => testNumber(734, 4100 + i));
  for (const phone of phones) cs.twilio.script(phone, { outcome: 'answer' });
  const campaign = await createCampaign(cs, {
    name: 'Postgres drop',
    contacts: phones.map((phone, i) => ({ phone, name: `Contact Number${i}` })),
    settings: {
      windows: ALWAYS_OPEN,
      maxConcurrentCalls: 10,
      maxCallsPerSecond: 5,
      retry: { 'no-answer': ONE_ATTEMPT, busy: ONE_ATTEMPT, failed: ONE_ATTEMPT, voicemail: ONE_ATTEMPT },
    },
  });

  // --- the load ---------------------------------------------------------------------------------
  await launchCampaign(cs, campaign.id);
  const conversations = Promise.allSettled(Array.from({ length: CONVERSATIONS }, (_, i) => converse(i)));
  let loadOver = false;
  const readers = Promise.all(
    Array.from({ length: READERS }, () =>
      read(
        [
          '/v1/calls?limit=20',
          `/v1/campaigns/${campaign.id}/progress`,
          '/v1/agents',
          '/v1/calls?channel=text',
        ],
        () => loadOver,
      ),
    ),
  );

  // --- the fault, once calls are under way -------------------------------------------------------
  await waitUntil(
    'calls to be under way',
    async () =>
      (await admin.query('select 1 from calls where tenant_id = $1', [tenantId])).rowCount! >= CONTACTS / 2,
    30_000,
    50,
  );
  const terminated: number[] = [];
  for (let wave = 0; wave < WAVES; wave += 1) {
    if (wave > 0) await sleep(1000);
    terminated.push(await dropConnections());
  }

  const settled = await conversations;
  try {
    await waitForCampaignEnd(cs, campaign.id, 60_000);
  } finally {
    loadOver = true;
    await readers;
  }
  if (process.env.DEBUG_PG_DROP) {
    const peer = [...cs.twilio.outboundCalls.values()].map((r) => ({
      to: r.to,
      outcome: r.outcome,
      endedBy: r.endedBy,
      webhookError: r.webhookError,
      callbacks: cs.twilio.callbacks
        .filter((c) => c.callSid === r.sid)
        .map((c) => `${c.params.CallStatus}:${c.status}`),
    }));
    process.stderr.write(
      `terminated ${terminated.join('/')}; answers ${JSON.stringify(
        answers.reduce<Record<string, number>>((n, a) => ({ ...n, [a.status]: (n[a.status] ?? 0) + 1 }), {}),
      )}\n${JSON.stringify(
        peer.filter((r) => r.webhookError || r.callbacks.some((c) => !c.endsWith(':204'))),
      )}\n${await campaignDiagnostics(cs, campaign.id)}\n`,
    );
  }
  const failedConversations = settled.filter((s) => s.status === 'rejected').map((s) => String(s.reason));
  expect(failedConversations).toEqual([]);
  const conversationIds = settled.map((s) => (s as PromiseFulfilledResult<{ callId: string }>).value.callId);
  // The waves hit live connections (else this test proves nothing).
  expect(terminated.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

  // --- the API during the drop: success, or a 503 that says what happened; never a 500 ------------
  for (const cb of cs.twilio.callbacks)
    answers.push({ what: `twilio ${cb.kind} callback`, status: cb.status });
  const unexpected = answers.filter(
    (a) => !(a.status >= 200 && a.status < 300) && !(a.status === 503 && a.code === 'DATABASE_UNAVAILABLE'),
  );
  expect(unexpected).toEqual([]);

  // --- after the drop: every request succeeds at once, the pool has recovered ---------------------
  const after = await Promise.all([
    ...Array.from({ length: 10 }, () => request(cs.stack.app).get('/v1/calls?limit=5').set(authed())),
    ...Array.from({ length: 5 }, () => request(cs.stack.app).get('/v1/agents').set(authed())),
    ...Array.from({ length: 5 }, () => request(cs.stack.app).get('/health/ready')),
  ]);
  expect(after.map((r) => r.status)).toEqual(after.map(() => 200));

  // --- every call workflow has closed, and every one has exactly one call row -------------------
  const campaignCalls = await admin.query<{ id: string; contact_id: string; to_number: string }>(
    'select id, contact_id, to_number from calls where campaign_id = $1',
    [campaign.id],
  );
  const expectedIds = [...conversationIds, ...campaignCalls.rows.map((c) => c.id)].sort();
  await waitUntil(
    'every call workflow to close',
    async () => {
      for (const id of expectedIds) {
        const d = await cs.stack.temporal.workflow.getHandle(callWorkflowId(id)).describe();
        if (d.status.name === 'RUNNING') return false;
      }
      return true;
    },
    30_000,
    250,
  );
  // What Temporal ran for the tenant is exactly what PostgreSQL recorded (visibility may lag a little).
  let workflowIds: string[] = [];
  await waitUntil(
    'visibility to list every call workflow',
    async () => {
      const ids = new Set<string>();
      for await (const w of cs.stack.temporal.workflow.list({
        query: `WorkflowType = 'callWorkflow' AND TenantId = '${tenantId}'`,
      }))
        ids.add(w.workflowId);
      workflowIds = [...ids].sort();
      return workflowIds.length >= expectedIds.length;
    },
    15_000,
    250,
  );
  expect(workflowIds).toEqual(expectedIds.map(callWorkflowId).sort());

  const calls = await admin.query<{
    id: string;
    workflow_id: string;
    channel: string;
    status: string;
    disposition: string | null;
    end_reason: string | null;
  }>(
    'select id, workflow_id, channel, status, disposition, end_reason from calls where tenant_id = $1 order by id',
    [tenantId],
  );
  expect(calls.rows.map((c) => c.id)).toEqual(expectedIds);
  expect(new Set(calls.rows.map((c) => c.workflow_id)).size).toBe(calls.rows.length);
  const badEnds = calls.rows.filter(
    (c) => !(c.status === 'completed' || (c.status === 'failed' && (c.end_reason ?? '').trim() !== '')),
  );
  expect(badEnds).toEqual([]);

  // --- each contact dialed at most once, and has exactly one call --------------------------------
  expect(campaignCalls.rows.map((c) => c.to_number).sort()).toEqual([...phones].sort());
  expect(new Set(campaignCalls.rows.map((c) => c.contact_id)).size).toBe(CONTACTS);
  const dials = new Map<string, number>();
  for (const create of cs.twilio.creates.filter((c) => c.status === 201))
    dials.set(create.to!, (dials.get(create.to!) ?? 0) + 1);
  expect([...dials.entries()].filter(([, n]) => n > 1)).toEqual([]);

  // --- every turn once, in order; conversations hold exactly what the caller said ----------------
  const turns = await admin.query<{ call_id: string; seq: number; role: string; text: string }>(
    'select call_id, seq, role, text from call_turns where tenant_id = $1 order by call_id, seq',
    [tenantId],
  );
  const byCall = new Map<string, { seq: number; role: string; text: string }[]>();
  for (const t of turns.rows) byCall.set(t.call_id, [...(byCall.get(t.call_id) ?? []), t]);
  for (const call of calls.rows) {
    const seqs = (byCall.get(call.id) ?? []).map((t) => t.seq);
    expect({ call: call.id, seqs }).toEqual({ call: call.id, seqs: seqs.map((_, i) => i + 1) });
  }
  for (const [i, callId] of conversationIds.entries()) {
    const call = calls.rows.find((c) => c.id === callId)!;
    expect({ callId, status: call.status, disposition: call.disposition }).toEqual({
      callId,
      status: 'completed',
      disposition: 'booked',
    });
    const said = byCall
      .get(callId)!
      .filter((t) => t.role === 'caller')
      .map((t) => t.text);
    expect({ callId, said }).toEqual({ callId, said: TEXTS(i) });
  }
  for (const call of campaignCalls.rows) {
    const row = calls.rows.find((c) => c.id === call.id)!;
    if (row.status === 'completed') expect(byCall.get(call.id)?.some((t) => t.role === 'agent')).toBe(true);
  }

  // --- one usage record per call; meter events named by it, so Stripe counts each once ----------
  const usage = await admin.query<{
    id: string;
    call_id: string;
    kind: string;
    billable_quantity: number;
    reported: boolean;
  }>(
    `select id, call_id, kind, billable_quantity, reported_at is not null as reported
       from usage_records where tenant_id = $1`,
    [tenantId],
  );
  const callSeconds = usage.rows.filter((u) => u.kind === 'call_seconds');
  expect(callSeconds.map((u) => u.call_id).sort()).toEqual(expectedIds);
  expect(usage.rows.filter((u) => u.kind !== 'call_seconds')).toEqual([]);
  const tenantRow = await admin.query<{ stripe_customer_id: string | null }>(
    'select stripe_customer_id from tenants where id = $1',
    [tenantId],
  );
  expect(tenantRow.rows[0]?.stripe_customer_id).toBeTruthy();
  const usageIds = new Set(usage.rows.map((u) => u.id));
  const meterEvents = stripePeer.requests.filter((r) => r.path === '/v1/billing/meter_events');
  const metered = new Set<string>();
  for (const event of meterEvents) {
    const identifier = typeof event.form.identifier === 'string' ? event.form.identifier : '';
    expect(usageIds.has(identifier)).toBe(true);
    expect(event.idempotencyKey).toBe(`usage:${identifier}`);
    if (event.status === 200) metered.add(identifier);
  }
  // A record marked reported with seconds to bill reached Stripe (an unreported one waits for the
  // billing cycle's reconciliation: metering right after the call is best effort).
  const reportedUnsent = usage.rows.filter(
    (u) => u.reported && u.billable_quantity > 0 && !metered.has(u.id),
  );
  expect(reportedUnsent).toEqual([]);

  // --- one HubSpot call log per voice call, one HubSpot contact per phone; none for text ---------
  await waitUntil(
    'every campaign call to be logged in HubSpot',
    async () => {
      const synced = await admin.query(
        `select 1 from crm_sync_records where tenant_id = $1 and provider = 'hubspot' and status = 'synced'`,
        [tenantId],
      );
      return synced.rowCount === CONTACTS;
    },
    30_000,
    250,
  ).catch(async (err: unknown) => {
    const records = await admin.query(
      'select call_id, status, error from crm_sync_records where tenant_id = $1',
      [tenantId],
    );
    throw new Error(`${(err as Error).message}: ${JSON.stringify(records.rows)}`);
  });
  const syncRows = await admin.query<{ call_id: string }>(
    'select call_id from crm_sync_records where tenant_id = $1',
    [tenantId],
  );
  expect(syncRows.rows.map((r) => r.call_id).sort()).toEqual(campaignCalls.rows.map((c) => c.id).sort());
  for (const call of campaignCalls.rows) {
    expect({
      call: call.id,
      logs: hubspot.calls.filter((c) => c.properties.parley_call_id === call.id).length,
    }).toEqual({ call: call.id, logs: 1 });
  }
  for (const callId of conversationIds) expect(hubspot.callByParleyId(callId)).toBeUndefined();
  const contactPhones = hubspot.contacts.map((c) => c.properties.phone);
  expect(contactPhones.length).toBe(new Set(contactPhones).size);
});
