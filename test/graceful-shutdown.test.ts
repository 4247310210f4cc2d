/**
 * Graceful shutdown on SIGTERM, on real processes (README, docs/deployment.md "Graceful shutdown"):
 * - the api stops accepting connections but answers the request already in flight, then exits 0;
 *   a streamed reply (SSE) in flight is delivered whole, including the `speak` the turn schedules on
 *   the api's own queue after SIGTERM (so its `speak` worker must outlive the HTTP server);
 * - the relay refuses new streams (503) and turns unready, while a live call goes on (the caller
 *   takes a turn and hears the reply); a call that hangs up lets it exit before its 20 s bound, and
 *   a call that does not is closed at the bound (1001) and ends `failed`, naming `relay_shutdown`;
 * - a worker finishes the activity it holds (first attempt) and leaves no task half-done, then exits 0;
 *   an activity that honours cancellation (post-call analysis, its LLM request held) is given the
 *   grace period (WORKER_SHUTDOWN_GRACE_SECONDS) rather than cancelled at SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Client as PgClient } from 'pg';
import request from 'supertest';
import WebSocket from 'ws';
import type { AgentDefinitionInput } from '../contracts/agent-definition';
import { callWorkflowId, type CallWorkflowResult } from '../contracts/call';
import { freePort, sleep, waitUntil } from '../lib/net';
import { ISOLATED_NAMESPACE } from './harness/state';
import { CallerSimulator } from './peers/caller-simulator';
import { startOpenAiPeer, type OpenAiPeer } from './peers/openai-peer';
import { bearer, ownerClient, signUpTenant, startStack, type TestStack } from './support/stack';
import { startVoiceStack, type VoiceStack } from './support/voice-stack';
import { startParleyProcess, type ParleyProcess } from './support/process';
import { startWorkerProcess, type WorkerProcess } from './support/worker-process';

jest.setTimeout(120_000);

const { EventType, PendingActivityState } = temporal.api.enums.v1;

type Proc = ParleyProcess;

const procs: Proc[] = [];

function startProcess(script: string, env: NodeJS.ProcessEnv): Proc {
  const proc = startParleyProcess(script, env);
  procs.push(proc);
  return proc;
}

/** SIGTERM; resolves once the process has logged that it is shutting down (lib/shutdown.ts). */
async function sigterm(proc: Pick<Proc, 'child' | 'output'>): Promise<void> {
  proc.child.kill('SIGTERM');
  await waitUntil(
    'the process to log its shutdown',
    () => Promise.resolve(proc.output().includes('shutting down')),
    30_000,
    20,
  );
}

/** Whether the workflow has an activity of this type running (started, not yet finished). */
async function activityRunning(handle: WorkflowHandle, activityType: string): Promise<boolean> {
  return ((await handle.describe()).raw.pendingActivities ?? []).some(
    (a) =>
      a.activityType?.name === activityType &&
      a.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
  );
}

/** SIGTERM to an api process; resolves once it is shutting down and refuses new connections. */
async function sigtermUntilRefusing(api: Proc, port: number): Promise<void> {
  await sigterm(api);
  await waitUntil(
    'a new connection to be refused',
    async () => (await connectOutcome(port)) === 'ECONNREFUSED',
    10_000,
    50,
  );
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** Appends a process's logs to a failing test's error. */
async function withLogs(logs: () => string, test: () => Promise<void>): Promise<void> {
  try {
    await test();
  } catch (err) {
    const detail = `\n--- process output ---\n${logs().slice(-8000)}`;
    if (err instanceof Error) {
      err.message += detail;
      throw err;
    }
    throw new Error(`${String(err)}${detail}`);
  }
}

/** Resolves with the error code of a fresh TCP connection attempt, or 'connected'. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

const workerProcs: WorkerProcess[] = [];
let locker: PgClient | undefined;
let voice: VoiceStack | undefined;

const PEER_API_KEY = 'sk-graceful-peer-0123456789';
/** The LLM of the processes under test; a test holds a completion there across the SIGTERM. */
let peer: OpenAiPeer;
const llmEnv = () => ({ OPENAI_BASE_URL: peer.baseUrl, OPENAI_API_KEY: PEER_API_KEY });

/** A promise to hand the peer as `hold`, and the function that releases it. */
function holdOpen(): { hold: Promise<void>; release: () => void } {
  let release!: () => void;
  const hold = new Promise<void>((resolve) => (release = resolve));
  return { hold, release };
}

/** Creates and publishes an agent through the public API; returns its id. */
async function publishAgent(
  stack: TestStack,
  token: string,
  definition: AgentDefinitionInput,
): Promise<string> {
  const created = await request(stack.app)
    .post('/v1/agents')
    .set(bearer(token))
    .send({ name: 'Drain', definition });
  expect(created.status).toBe(201);
  const published = await request(stack.app)
    .post(`/v1/agents/${created.body.id}/publish`)
    .set(bearer(token))
    .send({});
  expect(published.status).toBe(201);
  return created.body.id as string;
}

/** Rejects when `promise` has not settled within `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** POSTs JSON to an SSE route on a connection of its own; resolves with the events once it ends. */
function postSse(
  port: number,
  route: string,
  token: string,
  body: object,
): Promise<{ status: number; events: { event: string; data: unknown }[] }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: route,
      agent: false,
      headers: {
        ...bearer(token),
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(payload)),
      },
    });
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.once('error', reject);
      res.once('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          events: text
            .split('\n\n')
            .filter((block) => block.trim())
            .map((block) => ({
              event: /^event: (.*)$/m.exec(block)?.[1] ?? 'message',
              data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as unknown,
            })),
        }),
      );
    });
    req.end(payload);
  });
}

beforeAll(async () => {
  peer = await startOpenAiPeer({ apiKey: PEER_API_KEY });
});

afterAll(async () => {
  await locker?.query('rollback').catch(() => undefined);
  await locker?.end();
  for (const p of [...procs, ...workerProcs]) if (running(p.child)) p.child.kill('SIGKILL');
  await Promise.all([...procs.map((p) => p.exited), ...workerProcs.map((w) => w.exited)]);
  await voice?.close();
  await peer?.close();
});

/** What the model records as the post-call analysis. */
const ANALYSIS = {
  summary: 'The caller reached the drain line and hung up.',
  sentiment: 'neutral',
  success: { achieved: true, reason: 'The line answered.' },
  csat: 4,
};

/** An `llm` step answered by the model, then a question: one turn, two `speak`s. */
const LLM_THEN_QUESTION: AgentDefinitionInput = {
  greeting: 'Hello, this is the drain line.',
  llm: { model: 'gpt-4o-mini' },
  flow: {
    startNodeId: 'help',
    nodes: [
      { id: 'help', type: 'llm', goal: 'Tell the caller when their order ships.', outcomes: ['answered'] },
      { id: 'more', type: 'collect', slot: 'more', slotType: 'yes_no', prompt: 'Anything else?' },
      { id: 'done', type: 'end', disposition: 'answered', message: 'Goodbye!' },
    ],
    edges: [
      { id: 'e1', source: 'help', target: 'more', when: { kind: 'outcome', equals: 'answered' } },
      { id: 'e2', source: 'more', target: 'done' },
    ],
  },
};

describe('api', () => {
  it('on SIGTERM refuses new connections but answers the request in flight, then exits 0', async () => {
    const port = await freePort();
    const api = startProcess('api/main.ts', { API_PORT: String(port), API_HOST: '127.0.0.1' });
    await withLogs(
      () => api.output(),
      async () => {
        await waitUntil(
          'the api to be ready',
          async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok,
          60_000,
        );
        const body = JSON.stringify({ email: 'nobody-graceful@example.com', password: 'not-the-password' });
        const half = Math.floor(body.length / 2);
        // `Expect: 100-continue`: the server's `100 Continue` proves it has parsed the request, so the
        // request is in flight (not an idle connection) when the signal arrives.
        const req = http.request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/auth/login',
          agent: false,
          headers: {
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(body)),
            connection: 'keep-alive',
            expect: '100-continue',
          },
        });
        const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
          (resolve, reject) => {
            req.once('error', reject);
            req.once('response', (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (text += chunk));
              res.once('end', () =>
                resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
              );
              res.once('error', reject);
            });
          },
        );
        await new Promise<void>((resolve, reject) => {
          req.once('continue', () => resolve());
          req.once('error', reject);
          req.flushHeaders();
        });
        await new Promise<void>((resolve, reject) =>
          req.write(body.slice(0, half), (err) => (err ? reject(err) : resolve())),
        );

        // It stops listening at once: a new connection is refused...
        await sigtermUntilRefusing(api, port);
        // ...while it is still up, waiting for the request it already has.
        await sleep(500);
        expect(running(api.child)).toBe(true);

        req.end(body.slice(half));
        const answer = await response;
        expect(answer.status).toBe(401);
        expect(JSON.parse(answer.body)).toMatchObject({
          error: { code: 'INVALID_CREDENTIALS', message: expect.any(String) },
        });
        expect(await api.exited).toBe(0);
        expect(api.output()).toContain('shutting down');
        expect(api.output()).not.toContain('shutdown step failed');
      },
    );
  });

  it('on SIGTERM delivers a streamed reply in flight whole, the speech it still needs included, then exits 0', async () => {
    // The conversation's workflow (and its greeting) runs here, on `calls` of this jest worker's
    // namespace (no other file polls it); the turn's `speak` runs in the api process, on its queue.
    const stack = await startStack({ worker: true, queues: ['calls'], env: llmEnv() });
    let workflowId: string | undefined;
    try {
      const tenant = await signUpTenant(stack.app, 'Drain Co');
      const agentId = await publishAgent(stack, tenant.token, LLM_THEN_QUESTION);
      const port = await freePort();
      const api = startProcess('api/main.ts', {
        ...llmEnv(),
        TEMPORAL_NAMESPACE: stack.config.TEMPORAL_NAMESPACE,
        API_PORT: String(port),
        API_HOST: '127.0.0.1',
        API_INSTANCE_ID: `graceful-${process.pid}-${Date.now()}`,
      });
      await withLogs(
        () => api.output(),
        async () => {
          await waitUntil(
            'the api to be ready',
            async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok,
            60_000,
          );
          peer.script([{ content: 'How can I help?' }]);
          const started = await request(stack.app)
            .post('/v1/conversations')
            .set(bearer(tenant.token))
            .send({ agentId });
          expect(started.status).toBe(201);
          expect(started.body.reply.text).toBe('Hello, this is the drain line. How can I help?');
          workflowId = started.body.workflowId as string;

          // The model's answer is held at the peer: the turn's `speak` is in flight in the api. Once
          // it comes, `complete_step` moves on to a question, spoken by a second `speak` on that queue.
          const { hold, release } = holdOpen();
          peer.script([
            {
              content: 'Your order ships tomorrow.',
              toolCalls: [
                { name: 'complete_step', arguments: { outcome: 'answered', summary: 'Told when it ships' } },
              ],
              hold,
            },
          ]);
          const asked = peer.requests.length;
          const streamed = postSse(
            port,
            `/v1/conversations/${started.body.callId}/messages/stream`,
            tenant.token,
            {
              text: 'When does my order ship?',
            },
          );
          await waitUntil(
            "the turn's LLM request to reach the peer",
            () => Promise.resolve(peer.requests.length > asked),
            30_000,
            20,
          );

          await sigtermUntilRefusing(api, port);
          await sleep(1_500);
          expect(running(api.child)).toBe(true);
          release();

          const answer = await within(20_000, 'the streamed reply to end', streamed);
          expect(answer.status).toBe(200);
          const deltas = answer.events
            .filter((e) => e.event === 'delta')
            .map((e) => (e.data as { text: string }).text);
          expect(deltas.join('')).toContain('Your order ships tomorrow.');
          expect(answer.events.map((e) => e.event)).not.toContain('error');
          expect(answer.events.at(-1)).toMatchObject({
            event: 'reply',
            data: { text: 'Your order ships tomorrow. Anything else?', ended: false },
          });
          expect(await within(30_000, 'the api to exit', api.exited)).toBe(0);
          expect(api.output()).not.toContain('shutdown step failed');

          // Both speak activities of the turn ran once, in the api, and completed.
          const events = (await stack.temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
          const onApi = events.filter((e) =>
            e.activityTaskScheduledEventAttributes?.taskQueue?.name?.startsWith('api.'),
          );
          expect(onApi.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)).toEqual([
            'speak',
            'speak',
          ]);
          const types = events.map((e) => EventType[e.eventType ?? 0]);
          expect(
            types.filter((t) => t === 'EVENT_TYPE_ACTIVITY_TASK_COMPLETED').length,
          ).toBeGreaterThanOrEqual(3);
          for (const bad of ['CANCELED', 'TIMED_OUT', 'FAILED'])
            expect(types).not.toContain(`EVENT_TYPE_ACTIVITY_TASK_${bad}`);
        },
      );
    } finally {
      if (workflowId)
        await stack.temporal.workflow
          .getHandle(workflowId)
          .terminate('test over')
          .catch(() => undefined);
      await stack.close();
    }
  });
});

/** Two questions, so a turn taken during the drain is answered and the call still goes on. */
const TWO_QUESTIONS = {
  greeting: 'Hello, this is the drain line.',
  // A call cut at the bound keeps what was recorded until then.
  recording: { enabled: true },
  flow: {
    startNodeId: 'first',
    nodes: [
      {
        id: 'first',
        type: 'collect' as const,
        slot: 'first',
        slotType: 'yes_no' as const,
        prompt: 'Can you hear me?',
      },
      {
        id: 'second',
        type: 'collect' as const,
        slot: 'second',
        slotType: 'yes_no' as const,
        prompt: 'Are you still with me?',
      },
      { id: 'done', type: 'end' as const, disposition: 'still_there', message: 'Goodbye!' },
    ],
    edges: [
      { id: 'e1', source: 'first', target: 'second' },
      { id: 'e2', source: 'second', target: 'done' },
    ],
  },
};

/** The bound `npm run relay` gives live calls on SIGTERM (realtime-relay/main.ts). */
const RELAY_DRAIN_BOUND_MS = 20_000;

/** The HTTP status a WebSocket upgrade gets (101 when it is accepted). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    ws.once('open', () => {
      resolve(101);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('relay', () => {
  let agentId: string;

  beforeAll(async () => {
    voice = await startVoiceStack();
    agentId = await voice.publishAgent('Drain', TWO_QUESTIONS);
  });
  // Its worker serves `calls` of this jest worker's namespace, which the worker tests below hand to
  // worker processes of their own.
  afterAll(async () => {
    await voice?.close();
    voice = undefined;
  });

  /** `npm run relay` as a process, and a caller simulator whose streams go to it. */
  async function startRelayProcess(name: string) {
    const port = await freePort();
    const config = voice!.stack.config;
    const relay = startProcess('realtime-relay/main.ts', {
      TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE,
      RELAY_PORT: String(port),
      RELAY_HOST: '127.0.0.1',
      RELAY_INSTANCE_ID: `${name}-${process.pid}-${Date.now()}`,
      STREAM_TOKEN_SECRET: config.STREAM_TOKEN_SECRET,
      RECORDINGS_DIR: config.RECORDINGS_DIR,
    });
    await waitUntil(
      'the relay process to be ready',
      async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok,
      60_000,
    );
    const simulator = new CallerSimulator({
      apiBaseUrl: voice!.apiUrl,
      authToken: config.TWILIO_AUTH_TOKEN as string,
      accountSid: config.TWILIO_ACCOUNT_SID as string,
      streamOrigin: `ws://127.0.0.1:${port}`,
    });
    return { ...relay, port, simulator };
  }

  async function callIdOf(callSid: string): Promise<string> {
    const history = await voice!.stack.temporal.workflow.getHandle(callWorkflowId(callSid)).fetchHistory();
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    return (JSON.parse(Buffer.from(input as Uint8Array).toString('utf8')) as { callId: string }).callId;
  }

  async function callRecord(callSid: string) {
    const res = await request(voice!.stack.app)
      .get(`/v1/calls/${await callIdOf(callSid)}`)
      .set(bearer(voice!.tenant.token));
    expect(res.status).toBe(200);
    return res.body as {
      status: string;
      disposition: string;
      endReason: string | null;
      transcript: { role: string; text: string }[];
      recording: { url: string; seconds: number | null } | null;
    };
  }

  it('on SIGTERM refuses new streams and turns unready; a live call goes on, and its hang-up ends the drain', async () => {
    const relay = await startRelayProcess('draining-relay');
    await withLogs(
      () => relay.output(),
      async () => {
        const call = await relay.simulator.dial({
          from: '+15550006001',
          to: await voice!.registerNumber(agentId),
        });
        await call.waitForAgentTurn({ timeoutMs: 30_000 }); // greeting, "Can you hear me?"

        const sigtermAt = Date.now();
        await sigterm(relay);
        const ready = await fetch(`http://127.0.0.1:${relay.port}/health/ready`);
        expect(ready.status).toBe(503);
        expect(await ready.json()).toMatchObject({ status: 'draining' });
        expect(await upgradeStatus(`ws://127.0.0.1:${relay.port}/twilio/stream`)).toBe(503);

        // The live call is untouched: the caller takes a turn and hears the agent's reply.
        await call.say('yes');
        const reply = await call.waitForAgentTurn({ timeoutMs: 30_000 }); // "Are you still with me?"
        expect(reply.audioMs).toBeGreaterThan(0);
        expect(running(relay.child)).toBe(true);

        await call.hangup();
        expect((await call.closed).code).toBe(1000);
        expect(await relay.exited).toBe(0);
        // It went once its last call did, not at the bound.
        expect(Date.now() - sigtermAt).toBeLessThan(RELAY_DRAIN_BOUND_MS);
        expect(relay.output()).not.toContain('shutdown step failed');

        const result = (await voice!.stack.temporal.workflow
          .getHandle(callWorkflowId(call.callSid))
          .result()) as CallWorkflowResult;
        expect(result).toMatchObject({ status: 'completed', disposition: 'caller_hung_up' });
        const record = await callRecord(call.callSid);
        expect(record).toMatchObject({ status: 'completed', disposition: 'caller_hung_up' });
        const turns = record.transcript.map((t) => `${t.role}: ${t.text}`);
        const answered = record.transcript.findIndex((t) => t.role === 'caller');
        expect(answered).toBeGreaterThan(0);
        expect(record.transcript[answered]!.text).toMatch(/yes/);
        expect(turns.slice(answered + 1)).toEqual(
          expect.arrayContaining([expect.stringContaining('Are you still with me?')]),
        );
      },
    );
  });

  it('closes a call still live at the bound (1001); the call ends failed, naming the relay shutdown', async () => {
    const relay = await startRelayProcess('bounded-relay');
    await withLogs(
      () => relay.output(),
      async () => {
        const call = await relay.simulator.dial({
          from: '+15550006002',
          to: await voice!.registerNumber(agentId),
        });
        await call.waitForAgentTurn({ timeoutMs: 30_000 });

        const sigtermAt = Date.now();
        relay.child.kill('SIGTERM');
        const closed = await call.closed;
        expect(Date.now() - sigtermAt).toBeGreaterThanOrEqual(RELAY_DRAIN_BOUND_MS - 1_000);
        expect(closed).toEqual({ code: 1001, reason: 'relay shutting down' });
        expect(await relay.exited).toBe(0);

        const result = (await voice!.stack.temporal.workflow
          .getHandle(callWorkflowId(call.callSid))
          .result()) as CallWorkflowResult;
        expect(result).toMatchObject({
          status: 'failed',
          disposition: 'media_lost',
          reason: expect.stringMatching(/relay_shutdown/),
        });
        const record = await callRecord(call.callSid);
        expect(record).toMatchObject({
          status: 'failed',
          disposition: 'media_lost',
          endReason: expect.stringMatching(/relay_shutdown/),
          // The relay sent what it held with the failure: the ~20 s recorded stay with the call.
          recording: { url: expect.stringMatching(/\/recording$/), seconds: expect.any(Number) },
        });
        expect(record.recording!.seconds).toBeGreaterThan(10);
      },
    );
  });
});

describe('worker', () => {
  it('on SIGTERM finishes the activity it holds on its first attempt, drops no task, then exits 0', async () => {
    const owner = await ownerClient();
    const [heldTenant, laterTenant] = [crypto.randomUUID(), crypto.randomUUID()];
    const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS as string });
    const client = new Client({ connection, namespace: ISOLATED_NAMESPACE });
    // `campaigns` of the isolated namespace: no other test file polls it.
    const env = {
      TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE,
      WORKER_TASK_QUEUES: 'campaigns',
      TEMPORAL_METRICS_PORT: '0',
    };
    const logs = () => workerProcs.map((w, i) => `--- worker #${i + 1} ---\n${w.output()}`).join('\n');
    try {
      for (const id of [heldTenant, laterTenant])
        await owner.query(
          `insert into tenants (id, name, slug, status) values ($1, 'Drain', $2, 'provisioning')`,
          [id, `drain-${id}`],
        );
      const first = await startWorkerProcess({ ...env, WORKER_METRICS_PORT: String(await freePort()) });
      workerProcs.push(first);
      await withLogs(logs, async () => {
        // activateTenant locks the tenant row: holding it here keeps the activity exactly in flight.
        locker = await ownerClient();
        await locker.query('begin');
        await locker.query('select id from tenants where id = $1 for update', [heldTenant]);
        const start = (tenantId: string) =>
          client.workflow.start('tenantProvisioningWorkflow', {
            taskQueue: 'campaigns',
            workflowId: `tenant-provision:${tenantId}`,
            args: [{ tenantId, ownerUserId: tenantId }],
          });
        const held = await start(heldTenant);
        await waitUntil(
          'activateTenant to be running in the worker',
          () => activityRunning(held, 'activateTenant'),
          30_000,
          50,
        );

        await sigterm(first);
        // Work that arrives now is not this worker's any more.
        const later = await start(laterTenant);
        await sleep(1_000);
        expect(running(first.child)).toBe(true);
        await locker.query('rollback');
        await locker.end();
        locker = undefined;
        await first.exited;
        expect(first.child.exitCode).toBe(0);
        expect(first.output()).not.toContain('shutdown step failed');

        // The held activity completed once, on its first attempt, in the worker that drained.
        const events = (await held.fetchHistory()).events ?? [];
        const types = events.map((e) => EventType[e.eventType ?? 0]);
        const started = events.filter((e) => e.activityTaskStartedEventAttributes);
        expect(started.map((e) => e.activityTaskStartedEventAttributes?.attempt)).toEqual([1]);
        expect(started[0]?.activityTaskStartedEventAttributes?.identity).toMatch(
          new RegExp(`^${first.child.pid}@`),
        );
        expect(types).toContain('EVENT_TYPE_ACTIVITY_TASK_COMPLETED');
        expect(types).not.toContain('EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT');
        expect(types).not.toContain('EVENT_TYPE_ACTIVITY_TASK_FAILED');
        // The workflow started after SIGTERM: the worker asks for no more work, but a poll already
        // waiting at the signal may still bring it that workflow's first task — which it then
        // finishes, never leaves to time out.
        const laterTypes = ((await later.fetchHistory()).events ?? []).map(
          (e) => EventType[e.eventType ?? 0],
        );
        expect(laterTypes).not.toContain('EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT');
        expect(laterTypes).not.toContain('EVENT_TYPE_WORKFLOW_TASK_FAILED');
        expect(laterTypes.filter((t) => t === 'EVENT_TYPE_WORKFLOW_TASK_STARTED').length).toBeLessThanOrEqual(
          laterTypes.filter((t) => t === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED').length,
        );

        // Another worker takes both from there (in-process: the relay tests' bundle is built already).
        const next = await startStack({
          worker: true,
          queues: ['campaigns'],
          env: { TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE },
        });
        try {
          expect(await held.result()).toMatchObject({ status: 'active', activatedNow: true });
          expect(await later.result()).toMatchObject({ status: 'active', activatedNow: true });
        } finally {
          await next.close();
        }
        // Nothing of either workflow timed out or failed on the way: no task was dropped.
        for (const handle of [held, later]) {
          const types = ((await handle.fetchHistory()).events ?? []).map((e) => EventType[e.eventType ?? 0]);
          expect(types.filter((t) => /TIMED_OUT|_FAILED$/.test(t ?? ''))).toEqual([]);
        }
      });
    } finally {
      // A failure may leave the row locked: release it before deleting the tenants.
      await locker?.query('rollback').catch(() => undefined);
      await locker?.end();
      locker = undefined;
      await connection.close();
      await owner.query('delete from tenants where id = any($1)', [[heldTenant, laterTenant]]);
      await owner.end();
    }
  });

  it('on SIGTERM gives an activity that honours cancellation its grace period: the held analysis completes on its first attempt', async () => {
    // The api in-process; `calls` of this jest worker's namespace served by the worker process only
    // (the relay tests' in-process worker is closed by now).
    const stack = await startStack({ env: llmEnv() });
    let workflowId: string | undefined;
    let next: TestStack | undefined;
    try {
      const tenant = await signUpTenant(stack.app, 'Drain Co');
      const agentId = await publishAgent(stack, tenant.token, {
        ...TWO_QUESTIONS,
        llm: { model: 'gpt-4o-mini' },
      });
      // WORKER_SHUTDOWN_GRACE_SECONDS is left to its default.
      const worker = await startWorkerProcess({
        ...llmEnv(),
        TEMPORAL_NAMESPACE: stack.config.TEMPORAL_NAMESPACE,
        WORKER_TASK_QUEUES: 'calls',
        TEMPORAL_METRICS_PORT: '0',
        WORKER_METRICS_PORT: String(await freePort()),
      });
      workerProcs.push(worker);
      await withLogs(
        () => worker.output(),
        async () => {
          const started = await request(stack.app)
            .post('/v1/conversations')
            .set(bearer(tenant.token))
            .send({ agentId });
          expect(started.status).toBe(201);
          const callId = started.body.callId as string;
          workflowId = started.body.workflowId as string;
          const handle = stack.temporal.workflow.getHandle(workflowId);

          // Ending the conversation runs post-call analysis (`analyzeCall`, which aborts its LLM
          // request when cancelled); the model's answer is held at the peer.
          const { hold, release } = holdOpen();
          peer.script([{ toolCalls: [{ name: 'record_analysis', arguments: ANALYSIS }], hold }]);
          const asked = peer.requests.length;
          const ended = request(stack.app)
            .post(`/v1/conversations/${callId}/end`)
            .set(bearer(tenant.token))
            .then((res) => res);
          await waitUntil(
            'analyzeCall to be running in the worker, its LLM request at the peer',
            async () => peer.requests.length > asked && (await activityRunning(handle, 'analyzeCall')),
            30_000,
            50,
          );

          await sigterm(worker);
          await sleep(1_500);
          expect(running(worker.child)).toBe(true);
          release();
          await within(30_000, 'the worker to exit', worker.exited);
          expect(worker.child.exitCode).toBe(0);
          expect(worker.output()).not.toContain('shutdown step failed');

          // analyzeCall ran once, on its first attempt, in the worker that drained, and completed.
          const events = (await handle.fetchHistory()).events ?? [];
          const scheduled = events.filter(
            (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'analyzeCall',
          );
          expect(scheduled).toHaveLength(1);
          const scheduledId = String(scheduled[0]!.eventId);
          const ofIt = events.filter(
            (e) =>
              String(
                e.activityTaskStartedEventAttributes?.scheduledEventId ??
                  e.activityTaskCompletedEventAttributes?.scheduledEventId,
              ) === scheduledId,
          );
          expect(ofIt.map((e) => EventType[e.eventType ?? 0])).toEqual([
            'EVENT_TYPE_ACTIVITY_TASK_STARTED',
            'EVENT_TYPE_ACTIVITY_TASK_COMPLETED',
          ]);
          expect(ofIt[0]!.activityTaskStartedEventAttributes?.attempt).toBe(1);
          expect(ofIt[0]!.activityTaskStartedEventAttributes?.identity).toMatch(
            new RegExp(`^${worker.child.pid}@`),
          );
          const types = events.map((e) => EventType[e.eventType ?? 0]);
          for (const bad of ['CANCELED', 'TIMED_OUT', 'FAILED'])
            expect(types).not.toContain(`EVENT_TYPE_ACTIVITY_TASK_${bad}`);

          // Another worker finishes the call from there, with the analysis the drained worker got.
          next = await startStack({ worker: true, queues: ['calls'], env: llmEnv() });
          const res = await within(30_000, 'the conversation to end', ended);
          expect(res.status).toBe(200);
          expect(res.body).toMatchObject({ callId, status: 'completed' });
          const detail = await request(stack.app).get(`/v1/calls/${callId}`).set(bearer(tenant.token));
          expect(detail.body.analysis).toMatchObject({ status: 'completed', sentiment: 'neutral', csat: 4 });
          expect(peer.requests.length).toBe(asked + 1);
        },
      );
    } finally {
      // A failure may leave the workflow waiting for a worker.
      if (workflowId)
        await stack.temporal.workflow
          .getHandle(workflowId)
          .terminate('test over')
          .catch(() => undefined);
      await next?.close();
      await stack.close();
    }
  });
});
