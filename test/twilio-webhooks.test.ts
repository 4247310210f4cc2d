/**
 * Twilio's webhooks against the real api, PostgreSQL and Temporal dev server (with a worker on the
 * calls queue), signed exactly as Twilio signs them (HMAC-SHA1 of the public URL and the sorted
 * form): signatures are enforced for the public URL behind a proxy; an inbound call is routed by
 * number, admitted under the tenant's concurrency limit, recorded and started once however often
 * Twilio retries, and answered with a `<Connect><Stream>` whose token the relay will accept; the
 * status, AMD and media-stream callbacks reach the call's workflow.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import request from 'supertest';
import twilio from 'twilio';
import { createApp } from '../api/app';
import { callIdForCallSid } from '../api/services/call-starts';
import {
  CALL_QUEUE,
  CALL_WORKFLOW,
  callWorkflowId,
  type CallWorkflowInput,
  type CallWorkflowResult,
} from '../contracts/call';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { createLogger } from '../lib/logger';
import { freePort } from '../lib/net';
import { toE164 } from '../lib/phone';
import { verifyStreamToken } from '../lib/stream-token';
import {
  bearer,
  ownerClient,
  signUpTenant,
  startStack,
  testConfig,
  type SignedUp,
  type TestStack,
} from './support/stack';

const AUTH_TOKEN = randomBytes(16).toString('hex');
/** The api sits behind a proxy: Twilio signs the public URL, not the one the api listens on. */
const PUBLIC_BASE_URL = 'https://parley.example.com';
const RELAY_PUBLIC_URL = 'wss://relay.parley.example.com';

let stack: TestStack;
let tenant: SignedUp;
let bookingAgentId: string;
let line: string;
const startedSids: string[] = [];

const newCallSid = () => `CA${randomBytes(16).toString('hex')}`;

function freshNumber(): string {
  for (;;) {
    const e164 = toE164(`+1415${randomInt(2_000_000, 10_000_000)}`, 'US');
    if (e164) return e164;
  }
}

/** Posts a form to a Twilio webhook, signed for `signedUrl` (default: the public URL of `path`). */
function twilioPost(
  path: string,
  form: Record<string, string>,
  options: { signedUrl?: string; signature?: string | null; app?: TestStack['app'] } = {},
) {
  const signature =
    options.signature === undefined
      ? twilio.getExpectedTwilioSignature(AUTH_TOKEN, options.signedUrl ?? `${PUBLIC_BASE_URL}${path}`, form)
      : options.signature;
  const req = request(options.app ?? stack.app)
    .post(path)
    .type('form');
  if (signature !== null) req.set('x-twilio-signature', signature);
  return req.send(form);
}

function inboundForm(
  callSid: string,
  to: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    CallSid: callSid,
    AccountSid: `AC${'0'.repeat(32)}`,
    From: '+14155550100',
    To: to,
    CallStatus: 'ringing',
    ApiVersion: '2010-04-01',
    Direction: 'inbound',
    ...extra,
  };
}

const unescapeXml = (v: string) =>
  v
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The `<Stream>` of a Connect answer: its URL, status callback and token parameter. */
function streamOf(twiml: string): { url: string; statusCallback: string; token: string } {
  const match =
    /^<\?xml[^>]*\?><Response><Connect><Stream url="([^"]*)" statusCallback="([^"]*)"><Parameter name="token" value="([^"]*)"\/><\/Stream><\/Connect><\/Response>$/.exec(
      twiml,
    );
  if (!match) throw new Error(`not a Connect/Stream answer: ${twiml}`);
  return {
    url: unescapeXml(match[1]!),
    statusCallback: unescapeXml(match[2]!),
    token: unescapeXml(match[3]!),
  };
}

/** The one sentence of a Say + Hangup answer. */
function spokenOf(twiml: string): string {
  const match = /^<\?xml[^>]*\?><Response><Say>([^<]*)<\/Say><Hangup\/><\/Response>$/.exec(twiml);
  if (!match) throw new Error(`not a Say + Hangup answer: ${twiml}`);
  return unescapeXml(match[1]!);
}

async function callRows(callSid: string) {
  const db = await ownerClient(stack.config);
  try {
    const res = await db.query<Record<string, unknown>>(
      'select id, tenant_id, status, direction, channel, from_number, to_number, workflow_id, agent_id, agent_version_id, end_reason, ended_at from calls where provider_call_sid = $1',
      [callSid],
    );
    return res.rows;
  } finally {
    await db.end();
  }
}

async function setTenantSettings(tenantId: string, settings: Record<string, unknown>): Promise<void> {
  const db = await ownerClient(stack.config);
  try {
    await db.query('update tenants set settings = $2::jsonb where id = $1', [
      tenantId,
      JSON.stringify(settings),
    ]);
  } finally {
    await db.end();
  }
}

async function registerNumber(token: string, agentId: string | null): Promise<string> {
  const res = await request(stack.app)
    .post('/v1/phone-numbers')
    .set(bearer(token))
    .send({ number: freshNumber(), agentId });
  expect(res.status).toBe(201);
  return res.body.number as string;
}

/** Answers an inbound call and remembers it so afterAll can end its workflow. */
async function answerInbound(callSid: string, to: string) {
  const res = await twilioPost('/twilio/voice', inboundForm(callSid, to));
  startedSids.push(callSid);
  return res;
}

const handleOf = (callSid: string) => stack.temporal.workflow.getHandle(callWorkflowId(callSid));

/**
 * The signals in the workflow's history once there are `count` of them (a signal that arrives while
 * a workflow task runs is buffered and reaches the history when that task completes).
 */
async function signalsReceived(callSid: string, count: number): Promise<{ name: string; input: unknown }[]> {
  for (let attempt = 0; ; attempt++) {
    const history = await handleOf(callSid).fetchHistory();
    const signals = (history.events ?? [])
      .map((e) => e.workflowExecutionSignaledEventAttributes)
      .filter((a) => a !== null && a !== undefined)
      .map((a) => ({
        name: a.signalName ?? '',
        input: defaultPayloadConverter.fromPayload(a.input!.payloads![0]!),
      }));
    if (signals.length >= count || attempt >= 50) return signals;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  stack = await startStack({
    worker: true,
    queues: ['calls', 'integrations', 'billing'],
    env: { TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL, RELAY_PUBLIC_URL },
  });
  tenant = await signUpTenant(stack.app, 'Phone Co');
  bookingAgentId = (await seedDemoAgents(stack.orm, tenant.tenantId, tenant.userId)).bookingAgentId;
  line = await registerNumber(tenant.token, bookingAgentId);
  // More lines than the free plan's two: these tests leave calls ringing.
  await setTenantSettings(tenant.tenantId, { maxConcurrentCalls: 100 });
});

afterAll(async () => {
  for (const sid of startedSids) {
    await handleOf(sid)
      .terminate('test over')
      .catch(() => undefined);
  }
  await stack.close();
});

describe('signatures', () => {
  it('refuses a wrong or missing signature with 403 and stores nothing', async () => {
    for (const signature of ['c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ==', null]) {
      const callSid = newCallSid();
      const res = await twilioPost('/twilio/voice', inboundForm(callSid, line), { signature });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('TWILIO_SIGNATURE_INVALID');
      expect(await callRows(callSid)).toEqual([]);
      await expect(handleOf(callSid).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    }
    // Signed, then tampered with: another number than the one signed for.
    const callSid = newCallSid();
    const signed = inboundForm(callSid, freshNumber());
    const tampered = await request(stack.app)
      .post('/twilio/voice')
      .type('form')
      .set(
        'x-twilio-signature',
        twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_BASE_URL}/twilio/voice`, signed),
      )
      .send({ ...signed, To: line });
    expect(tampered.status).toBe(403);
    expect(await callRows(callSid)).toEqual([]);
    for (const path of ['/twilio/status', '/twilio/amd', '/twilio/stream-status']) {
      const res = await twilioPost(path, { CallSid: callSid, CallStatus: 'completed' }, { signature: 'bad' });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('TWILIO_SIGNATURE_INVALID');
    }
  });

  it('behind a proxy: accepts the signature for PUBLIC_BASE_URL, refuses one for the local URL', async () => {
    const server = stack.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as { port: number };
      const form = inboundForm(newCallSid(), freshNumber());
      const local = await twilioPost('/twilio/voice', form, {
        signedUrl: `http://127.0.0.1:${port}/twilio/voice`,
      });
      expect(local.status).toBe(403);
      expect(local.body.error.code).toBe('TWILIO_SIGNATURE_INVALID');
      const proxied = await twilioPost('/twilio/voice', form, {
        signedUrl: `${PUBLIC_BASE_URL}/twilio/voice`,
      });
      expect(proxied.status).toBe(200);
      // The query string is part of what Twilio signs.
      const withQuery = await request(stack.app)
        .post('/twilio/voice?attempt=2')
        .type('form')
        .set(
          'x-twilio-signature',
          twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_BASE_URL}/twilio/voice?attempt=2`, form),
        )
        .send(form);
      expect(withQuery.status).toBe(200);
    } finally {
      server.close();
    }
  });

  it('answers 503 TWILIO_NOT_CONFIGURED when no auth token is set', async () => {
    const config = testConfig({ TWILIO_AUTH_TOKEN: '', PUBLIC_BASE_URL });
    const app = createApp({
      config,
      orm: stack.orm,
      temporal: stack.temporal,
      logger: createLogger(config, 'test'),
    });
    const res = await twilioPost('/twilio/voice', inboundForm(newCallSid(), line), { app });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('TWILIO_NOT_CONFIGURED');
  });
});

describe('inbound voice webhook', () => {
  it('a number nobody registered: a spoken error and a hang-up, 200', async () => {
    const res = await twilioPost('/twilio/voice', inboundForm(newCallSid(), freshNumber()));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/xml/);
    expect(spokenOf(res.text)).toBe('Sorry, the number you dialled is not in service.');
  });

  it('starts the call: a calls row, the workflow call:<CallSid>, and a stream token naming the call', async () => {
    const callSid = newCallSid();
    const res = await answerInbound(callSid, line);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/xml/);
    const stream = streamOf(res.text);
    expect(stream.url).toBe(`${RELAY_PUBLIC_URL}/twilio/stream`);
    expect(stream.statusCallback).toBe(`${PUBLIC_BASE_URL}/twilio/stream-status`);
    const claims = verifyStreamToken(stack.config.STREAM_TOKEN_SECRET, stream.token);
    const callId = callIdForCallSid(callSid);
    expect(claims).toMatchObject({
      callId,
      tenantId: tenant.tenantId,
      workflowId: callWorkflowId(callSid),
      channel: 'voice',
      callSid,
    });

    const description = await handleOf(callSid).describe();
    expect(description.type).toBe(CALL_WORKFLOW);
    expect(description.status.name).toBe('RUNNING');
    expect(description.taskQueue).toBe(CALL_QUEUE);

    const agent = await request(stack.app).get(`/v1/agents/${bookingAgentId}`).set(bearer(tenant.token));
    expect(await callRows(callSid)).toEqual([
      expect.objectContaining({
        id: callId,
        tenant_id: tenant.tenantId,
        status: 'ringing',
        direction: 'inbound',
        channel: 'voice',
        from_number: '+14155550100',
        to_number: line,
        workflow_id: callWorkflowId(callSid),
        agent_id: bookingAgentId,
        agent_version_id: agent.body.publishedVersionId,
      }),
    ]);
    const [input] = (await handleOf(callSid).fetchHistory()).events![0]!
      .workflowExecutionStartedEventAttributes!.input!.payloads!;
    expect(defaultPayloadConverter.fromPayload<CallWorkflowInput>(input!)).toMatchObject({
      callId,
      tenantId: tenant.tenantId,
      agentVersionId: agent.body.publishedVersionId,
      direction: 'inbound',
      channel: 'voice',
      from: '+14155550100',
      to: line,
      providerCallSid: callSid,
      timeZone: 'UTC',
    });
  });

  it('the same webhook twice (a retry, or two at once): one workflow run, one calls row, two valid answers', async () => {
    const callSid = newCallSid();
    const [first, second] = await Promise.all([answerInbound(callSid, line), answerInbound(callSid, line)]);
    const runId = (await handleOf(callSid).describe()).runId;
    const third = await answerInbound(callSid, line);
    for (const res of [first, second, third]) {
      expect(res.status).toBe(200);
      const claims = verifyStreamToken(stack.config.STREAM_TOKEN_SECRET, streamOf(res.text).token);
      expect(claims.callId).toBe(callIdForCallSid(callSid));
    }
    // One id has at most one running run, and REJECT_DUPLICATE keeps a finished one from restarting.
    expect((await handleOf(callSid).describe()).runId).toBe(runId);
    expect(await callRows(callSid)).toHaveLength(1);
  });

  it('a number without an agent, an unpublished agent, or a suspended tenant: "cannot take your call"', async () => {
    const cannot = 'Sorry, we cannot take your call right now. Please try again later. Goodbye.';
    const owner = await signUpTenant(stack.app, 'Closed Co');
    const unassigned = await registerNumber(owner.token, null);
    const res = await twilioPost('/twilio/voice', inboundForm(newCallSid(), unassigned));
    expect(res.status).toBe(200);
    expect(spokenOf(res.text)).toBe(cannot);

    // Assigned while published, then its published version is gone (as after a restore).
    const agent = (await seedDemoAgents(stack.orm, owner.tenantId, owner.userId)).bookingAgentId;
    const assigned = await registerNumber(owner.token, agent);
    const db = await ownerClient(stack.config);
    try {
      await db.query('update agents set published_version_id = null where id = $1', [agent]);
      const unpublished = await twilioPost('/twilio/voice', inboundForm(newCallSid(), assigned));
      expect(spokenOf(unpublished.text)).toBe(cannot);

      await db.query(
        'update agents set published_version_id = (select id from agent_versions where agent_id = $1 and version = 1) where id = $1',
        [agent],
      );
      await db.query("update tenants set status = 'suspended' where id = $1", [owner.tenantId]);
      const callSid = newCallSid();
      const suspended = await twilioPost('/twilio/voice', inboundForm(callSid, assigned));
      expect(spokenOf(suspended.text)).toBe(cannot);
      expect(await callRows(callSid)).toEqual([]);
    } finally {
      await db.end();
    }
  });

  it('over the concurrency limit: a polite busy answer and a `rejected` call row; a line frees up when a call ends', async () => {
    const busyTenant = await signUpTenant(stack.app, 'Busy Co');
    const agent = (await seedDemoAgents(stack.orm, busyTenant.tenantId, busyTenant.userId)).bookingAgentId;
    const number = await registerNumber(busyTenant.token, agent);
    await setTenantSettings(busyTenant.tenantId, { maxConcurrentCalls: 1 });
    // A row left `ringing` six hours ago (its workflow terminated by hand) no longer holds a line.
    const db = await ownerClient(stack.config);
    try {
      const stale = randomUUID();
      await db.query(
        `insert into calls (id, tenant_id, direction, channel, workflow_id, status, started_at)
         values ($1, $2, 'inbound', 'voice', $3, 'ringing', now() - interval '6 hours')`,
        [stale, busyTenant.tenantId, `call:stale-${stale}`],
      );
    } finally {
      await db.end();
    }

    const live = newCallSid();
    streamOf((await answerInbound(live, number)).text);

    const refused = newCallSid();
    const res = await answerInbound(refused, number);
    expect(res.status).toBe(200);
    expect(spokenOf(res.text)).toBe(
      'All of our agents are busy right now. Please call again in a few minutes. Goodbye.',
    );
    const [row] = await callRows(refused);
    expect(row).toMatchObject({ status: 'rejected', end_reason: 'concurrency_limit', channel: 'voice' });
    expect(row!.ended_at).toBeInstanceOf(Date);
    await expect(handleOf(refused).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    // Twilio retries the refused call's webhook: the same answer, still one row.
    expect(spokenOf((await answerInbound(refused, number)).text)).toMatch(/busy/);
    expect(await callRows(refused)).toHaveLength(1);

    // The live call ends (status callback); the next call gets the line.
    expect(
      (await twilioPost('/twilio/status', { CallSid: live, CallStatus: 'completed', CallDuration: '3' }))
        .status,
    ).toBe(204);
    await handleOf(live).result();
    const next = newCallSid();
    streamOf((await answerInbound(next, number)).text);
    expect(await callRows(next)).toEqual([expect.objectContaining({ status: 'ringing' })]);

    // Browser calls share the same lines.
    const webCall = await request(stack.app)
      .post(`/v1/agents/${agent}/test-calls`)
      .set(bearer(busyTenant.token))
      .send({});
    expect(webCall.status).toBe(429);
    expect(webCall.body.error).toMatchObject({ code: 'CONCURRENCY_LIMIT', details: { limit: 1, live: 1 } });
  });

  it('calls arriving at the same instant: exactly as many get through as the limit allows', async () => {
    const rush = await signUpTenant(stack.app, 'Rush Co');
    const agent = (await seedDemoAgents(stack.orm, rush.tenantId, rush.userId)).bookingAgentId;
    const number = await registerNumber(rush.token, agent);
    await setTenantSettings(rush.tenantId, { maxConcurrentCalls: 2 });
    const sids = Array.from({ length: 8 }, newCallSid);
    const answers = await Promise.all(sids.map((sid) => answerInbound(sid, number)));
    const outcomes = answers.map((res) =>
      res.text.includes('<Connect>') ? 'connected' : spokenOf(res.text),
    );
    expect(outcomes.filter((o) => o === 'connected')).toHaveLength(2);
    expect(outcomes.filter((o) => /busy/.test(o))).toHaveLength(6);
    const db = await ownerClient(stack.config);
    try {
      const rows = await db.query<{ status: string; n: number }>(
        'select status, count(*)::int as n from calls where tenant_id = $1 group by status order by status',
        [rush.tenantId],
      );
      expect(rows.rows).toEqual([
        { status: 'rejected', n: 6 },
        { status: 'ringing', n: 2 },
      ]);
    } finally {
      await db.end();
    }
  });

  it('Temporal unreachable: a spoken apology, and the call row marked failed with the reason', async () => {
    // A client on a port nothing listens on, without the retry interceptor: every RPC fails at once.
    const deadConnection = Connection.lazy({ address: `127.0.0.1:${await freePort()}`, interceptors: [] });
    const config = testConfig({ TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL });
    const app = createApp({
      config,
      orm: stack.orm,
      temporal: new Client({ connection: deadConnection, namespace: config.TEMPORAL_NAMESPACE }),
      logger: createLogger(config, 'test'),
    });
    try {
      const callSid = newCallSid();
      const res = await twilioPost('/twilio/voice', inboundForm(callSid, line), { app });
      expect(res.status).toBe(200);
      expect(spokenOf(res.text)).toMatch(/^Sorry, something went wrong on our side/);
      const [row] = await callRows(callSid);
      expect(row).toMatchObject({ status: 'failed' });
      expect(row!.end_reason).toMatch(/^the call workflow could not be started: /);
    } finally {
      await deadConnection.close();
    }
  });
});

describe('callbacks', () => {
  it('status callback: signals the workflow; `completed` before the stream connected ends the call as no-answer', async () => {
    const callSid = newCallSid();
    streamOf((await answerInbound(callSid, line)).text);
    const ringing = await twilioPost('/twilio/status', { CallSid: callSid, CallStatus: 'ringing' });
    expect(ringing.status).toBe(204);
    const completed = await twilioPost('/twilio/status', {
      CallSid: callSid,
      CallStatus: 'completed',
      CallDuration: '7',
      StatusCallbackEvent: 'completed',
    });
    expect(completed.status).toBe(204);
    const result = (await handleOf(callSid).result()) as CallWorkflowResult;
    expect(result.status).toBe('no-answer');
    expect(await signalsReceived(callSid, 2)).toEqual([
      { name: 'callStatus', input: { status: 'ringing', callSid } },
      { name: 'callStatus', input: { status: 'completed', durationSeconds: 7, callSid } },
    ]);
    const [row] = await callRows(callSid);
    expect(row).toMatchObject({ status: 'no-answer' });

    // The workflow is gone, or the call was never ours: still 204, quickly.
    for (const sid of [callSid, newCallSid()]) {
      const late = await twilioPost('/twilio/status', { CallSid: sid, CallStatus: 'completed' });
      expect(late.status).toBe(204);
    }
  });

  it('AMD callback: tells the workflow who answered', async () => {
    const callSid = newCallSid();
    streamOf((await answerInbound(callSid, line)).text);
    const res = await twilioPost('/twilio/amd', { CallSid: callSid, AnsweredBy: 'machine_start' });
    expect(res.status).toBe(204);
    expect(await signalsReceived(callSid, 1)).toEqual([
      { name: 'answeredBy', input: { answeredBy: 'machine_start' } },
    ]);
  });

  it('stream status: a stream error hangs the call up with the reason; start and stop are only logged', async () => {
    const callSid = newCallSid();
    streamOf((await answerInbound(callSid, line)).text);
    for (const event of ['stream-started', 'stream-stopped']) {
      const res = await twilioPost('/twilio/stream-status', {
        CallSid: callSid,
        StreamSid: 'MZ1',
        StreamEvent: event,
      });
      expect(res.status).toBe(204);
    }
    expect((await handleOf(callSid).describe()).status.name).toBe('RUNNING');
    const res = await twilioPost('/twilio/stream-status', {
      CallSid: callSid,
      StreamSid: 'MZ1',
      StreamEvent: 'stream-error',
      StreamError: 'Stream - WebSocket - Connection Refused',
    });
    expect(res.status).toBe(204);
    const result = (await handleOf(callSid).result()) as CallWorkflowResult;
    expect(result.reason).toBe('media stream error: Stream - WebSocket - Connection Refused');
  });

  it('outbound call answered: the workflow hears in-progress and the call gets its stream', async () => {
    const callSid = newCallSid();
    const callId = randomUUID();
    const input: CallWorkflowInput = {
      callId,
      tenantId: tenant.tenantId,
      agentId: bookingAgentId,
      agentVersionId: (await request(stack.app).get(`/v1/agents/${bookingAgentId}`).set(bearer(tenant.token)))
        .body.publishedVersionId,
      direction: 'outbound',
      channel: 'voice',
      from: line,
      to: '+14155550199',
      providerCallSid: callSid,
    };
    await stack.temporal.workflow.start(CALL_WORKFLOW, {
      workflowId: callWorkflowId(callSid),
      taskQueue: CALL_QUEUE,
      args: [input],
    });
    startedSids.push(callSid);
    // The workflow records the call (its first activities) before Twilio could report an answer.
    for (let i = 0; i < 100 && (await callRows(callSid)).length === 0; i++)
      await new Promise((r) => setTimeout(r, 50));

    const res = await twilioPost('/twilio/voice', {
      ...inboundForm(callSid, '+14155550199', { Direction: 'outbound-api', From: line }),
    });
    expect(res.status).toBe(200);
    const claims = verifyStreamToken(stack.config.STREAM_TOKEN_SECRET, streamOf(res.text).token);
    expect(claims).toMatchObject({
      callId,
      tenantId: tenant.tenantId,
      workflowId: callWorkflowId(callSid),
      callSid,
    });
    expect(await signalsReceived(callSid, 1)).toEqual([
      { name: 'callStatus', input: { status: 'in-progress', callSid } },
    ]);

    const unknown = await twilioPost(
      '/twilio/voice',
      inboundForm(newCallSid(), line, { Direction: 'outbound-dial' }),
    );
    expect(unknown.status).toBe(200);
    expect(spokenOf(unknown.text)).toBe('Sorry, the number you dialled is not in service.');
  });

  it('outbound call answered before the dialer wrote its CallSid: found by the callId in the URL, CallSid recorded', async () => {
    const callId = randomUUID();
    const workflowId = callWorkflowId(callId);
    await stack.temporal.workflow.start(CALL_WORKFLOW, {
      workflowId,
      taskQueue: CALL_QUEUE,
      args: [
        {
          callId,
          tenantId: tenant.tenantId,
          agentId: bookingAgentId,
          agentVersionId: (
            await request(stack.app).get(`/v1/agents/${bookingAgentId}`).set(bearer(tenant.token))
          ).body.publishedVersionId,
          direction: 'outbound',
          channel: 'voice',
          from: line,
          to: '+14155550198',
        } satisfies CallWorkflowInput,
      ],
    });
    const callSid = newCallSid();
    startedSids.push(callSid);
    const db = await ownerClient(stack.config);
    try {
      for (let i = 0; i < 100; i++) {
        const { rows } = await db.query('select 1 from calls where id = $1', [callId]);
        if (rows.length > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // Signed over the URL with its query, as Twilio signs the Url the create gave it.
      const path = `/twilio/voice?callId=${callId}`;
      const res = await twilioPost(
        path,
        inboundForm(callSid, '+14155550198', { Direction: 'outbound-api', From: line }),
      );
      expect(res.status).toBe(200);
      expect(verifyStreamToken(stack.config.STREAM_TOKEN_SECRET, streamOf(res.text).token)).toMatchObject({
        callId,
        workflowId,
        callSid,
      });
      const { rows } = await db.query<{ provider_call_sid: string }>(
        'select provider_call_sid from calls where id = $1',
        [callId],
      );
      expect(rows).toEqual([{ provider_call_sid: callSid }]);
      // Another CallSid claiming the same call id is refused: the call already has its CallSid.
      const other = await twilioPost(
        path,
        inboundForm(newCallSid(), '+14155550198', { Direction: 'outbound-api', From: line }),
      );
      expect(spokenOf(other.text)).toBe('Sorry, the number you dialled is not in service.');
    } finally {
      await db.end();
      await stack.temporal.workflow
        .getHandle(workflowId)
        .terminate('test over')
        .catch(() => undefined);
    }
  });
});

describe('lookups before a tenant is known', () => {
  it('the app role reaches tenants only through the two narrow SECURITY DEFINER functions', async () => {
    const rows = await stack.orm.em
      .fork()
      .execute<{ tenant_id: string; agent_id: string }[]>('select * from parley_phone_route(?)', [line]);
    expect(rows).toEqual([expect.objectContaining({ tenant_id: tenant.tenantId, agent_id: bookingAgentId })]);
    // Without the function, RLS shows the app role nothing.
    expect(await stack.orm.em.fork().execute('select * from phone_numbers where e164 = ?', [line])).toEqual(
      [],
    );
    const db = await ownerClient(stack.config);
    try {
      const fns = await db.query<{
        proname: string;
        prosecdef: boolean;
        config: string[];
        public_exec: boolean;
      }>(
        `select p.proname, p.prosecdef, p.proconfig as config,
                has_function_privilege('public', p.oid, 'execute') as public_exec
           from pg_proc p where p.proname in ('parley_phone_route', 'parley_call_by_provider_sid') order by 1`,
      );
      expect(fns.rows).toEqual([
        {
          proname: 'parley_call_by_provider_sid',
          prosecdef: true,
          config: ['search_path=public, pg_temp'],
          public_exec: false,
        },
        {
          proname: 'parley_phone_route',
          prosecdef: true,
          config: ['search_path=public, pg_temp'],
          public_exec: false,
        },
      ]);
    } finally {
      await db.end();
    }
  });
});
