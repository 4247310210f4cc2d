/**
 * Fault test: the Temporal dev server (file-backed, SQLite) is SIGKILLed in the middle of a
 * conversation and started again on the same port and file. The call is not lost:
 * - between turns: a turn sent while Temporal is down is refused with 503 TEMPORAL_UNAVAILABLE and
 *   changes nothing, the call record stays readable from PostgreSQL, the real worker process
 *   (`npm run worker`) rides the outage out and reconnects by itself, the same turn sent again is
 *   answered, and the call completes;
 * - in the middle of a turn (accepted, its activity running): the turn is answered once Temporal is
 *   back, once.
 * Each ends with one call record, each turn once, one usage record and one workflow run.
 *
 * This file starts its own dev server: the harness's one is shared with every other test file and
 * is never restarted. PostgreSQL is the harness's. A text conversation has no bound on how long it
 * may wait for Temporal (only its 30-minute idle timeout), so there is no "down too long → failed"
 * case here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { Client as PgClient } from 'pg';
import request from 'supertest';
import { callWorkflowId, userTurnUpdateId, type CallWorkflowResult } from '../contracts/call';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { withTenant } from '../db/tenant-context';
import { freePort, sleep, waitUntil } from '../lib/net';
import { locateTemporalCli } from '../temporal-config/cli';
import { startDevServer, type DevServer } from '../temporal-config/dev-server';
import { workflowBundle } from '../workers/create-workers';
import { Timeline, withDiagnostics as withRestartDiagnostics } from './support/diagnostics';
import { ownerClient, signUpTenant, startStack, type SignedUp, type TestStack } from './support/stack';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from './support/worker-process';

// A worker process starts in 5-10 s; a turn sent while Temporal is down fails after the client's
// own retries (~20 s); after the restart the worker's polls come back within their backoff (≤10 s),
// and an activity whose completion was lost is retried after its 10 s timeout.
jest.setTimeout(120_000);

const NAMESPACE = 'parley-restart';
const { PendingActivityState } = temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

let dir: string;
let cliPath: string;
let port: number;
let httpPort: number;
let server: DevServer | undefined;
let stack: TestStack | undefined;
let worker: WorkerProcess | undefined;
/** Each case has a tenant of its own, whose only call is the one under test. */
let tenant: SignedUp;
let bookingAgentId: string;
/** The conversation under test, whose history goes with a failure. */
let conversation: WorkflowHandle | undefined;
/** A row lock a case holds on its call; released in afterAll if the case failed holding it. */
let locker: PgClient | undefined;

const timeline = new Timeline();
const mark = (what: string) => timeline.mark(what);

/** The dev server on the same port and SQLite file every time: a restart, not a new server. */
async function startTemporal(): Promise<DevServer> {
  const started = await startDevServer({
    cliPath,
    port,
    httpPort,
    headless: true,
    namespace: NAMESPACE,
    dbFile: path.join(dir, 'temporal.sqlite'),
  });
  mark(`dev server up (pid ${started.child.pid})`);
  return started;
}

async function killTemporal(): Promise<void> {
  const child = server!.child;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await gone;
  mark(`dev server killed (${child.signalCode ?? `exit ${child.exitCode}`})`);
}

const workerAlive = () => worker!.child.exitCode === null && worker!.child.signalCode === null;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'parley-temporal-restart-'));
  cliPath = await locateTemporalCli({ explicitPath: process.env.TEMPORAL_CLI_PATH });
  port = await freePort();
  httpPort = await freePort();
  server = await startTemporal();
  const env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: NAMESPACE };
  // The api in-process (its Temporal client retries as in production); the worker a real process.
  stack = await startStack({ env });
  worker = await startWorkerProcess({
    ...env,
    WORKER_TASK_QUEUES: 'calls,integrations,billing',
    WORKER_METRICS_PORT: '0',
    TEMPORAL_METRICS_PORT: '0',
  });
  mark(`worker polling (pid ${worker.child.pid})`);
});

afterAll(async () => {
  await locker?.end();
  await stopWorkerProcess(worker);
  await stack?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function newTenant(name: string): Promise<void> {
  tenant = await signUpTenant(stack!.app, name);
  ({ bookingAgentId } = await seedDemoAgents(stack!.orm, tenant.tenantId, tenant.userId));
}

const auth = () => ({ authorization: `Bearer ${tenant.token}` });

async function openConversation() {
  const opened = await request(stack!.app)
    .post('/v1/conversations')
    .set(auth())
    .send({ agentId: bookingAgentId });
  expect(opened.status).toBe(201);
  expect(opened.body.reply.text).toContain('May I have your name?');
  const callId: string = opened.body.callId;
  conversation = stack!.temporal.workflow.getHandle(callWorkflowId(callId));
  mark(`conversation ${callId} opened`);
  const { runId } = await conversation.describe();
  return { callId, greeting: opened.body.reply.text as string, handle: conversation, runId };
}

/** One turn, sent now (supertest sends a request only once it is awaited). */
async function say(callId: string, text: string, turnId: number) {
  return request(stack!.app).post(`/v1/conversations/${callId}/messages`).set(auth()).send({ text, turnId });
}

/**
 * Sends a turn until the api answers it, as a client would after a 503: the same turnId is the same
 * update id, so Temporal answers a retry with the first outcome, never with a second turn.
 */
async function sayUntilAnswered(callId: string, text: string, turnId: number) {
  const failures: string[] = [];
  for (let attempt = 1; ; attempt += 1) {
    const res = await say(callId, text, turnId);
    mark(`turn ${turnId} attempt ${attempt}: ${res.status}`);
    if (res.status === 200) return res;
    failures.push(`${res.status} ${JSON.stringify(res.body)}`);
    if (res.status !== 503 || attempt >= 4)
      throw new Error(`turn ${turnId} was refused: ${failures.join('; ')}`);
    await sleep(1000);
  }
}

/** Until the worker logs that it cannot reach Temporal (its polls fail and are retried). */
async function workerNoticedOutage(): Promise<void> {
  const since = worker!.output().length;
  await waitUntil(
    'the worker to find Temporal gone',
    () => Promise.resolve(/Unavailable|tcp connect error/.test(worker!.output().slice(since))),
    30_000,
    100,
  );
  mark('worker retrying its polls');
}

/** The worker's output, the timeline and the conversation's history, appended to a failure. */
const withDiagnostics = (test: () => Promise<void>) =>
  withRestartDiagnostics(test, {
    timeline,
    output: () => `--- worker (pid ${worker?.child.pid}) ---\n${worker?.output().slice(-6000) ?? ''}`,
    workflow: () => conversation,
  });

/** Every accepted `userTurn` update's id, in order. */
function acceptedTurns(events: HistoryEvent[]): string[] {
  return events
    .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest)
    .filter((req) => req?.input?.name === 'userTurn')
    .map((req) => req?.meta?.updateId ?? '');
}

/**
 * The call ended booked and holds each turn exactly once: the call record (one row, completed),
 * its transcript (API and table), the usage record, and the workflow: one run, started once, each
 * turn accepted and answered once, all by the one worker process, and its history replays.
 */
async function expectBookedOnce(
  handle: WorkflowHandle,
  runId: string,
  callId: string,
  callerTurns: string[],
  agentReplies: string[],
): Promise<void> {
  const result = (await handle.result()) as CallWorkflowResult;
  mark(`workflow of ${callId} completed`);
  expect(result).toMatchObject({ status: 'completed', disposition: 'booked' });
  expect(workerAlive()).toBe(true);

  const call = (await request(stack!.app).get(`/v1/calls/${callId}`).set(auth()).expect(200)).body;
  expect(call).toMatchObject({ status: 'completed', disposition: 'booked', channel: 'text' });
  expect(call.answeredAt).toEqual(expect.any(String));
  expect(call.slots).toMatchObject({ name: callerTurns[0], confirm: true });
  const transcript: { seq: number; role: string; text: string; timings: { turnId?: number } | null }[] =
    call.transcript;
  const roles = agentReplies.flatMap((_, i) => (i === 0 ? ['agent'] : ['caller', 'agent']));
  expect(transcript.map((t) => t.role)).toEqual(roles);
  expect(transcript.map((t) => t.seq)).toEqual(roles.map((_, i) => i + 1));
  const caller = transcript.filter((t) => t.role === 'caller');
  expect(caller.map((t) => t.text)).toEqual(callerTurns);
  expect(caller.map((t) => t.timings?.turnId)).toEqual(callerTurns.map((_, i) => i + 1));
  expect(transcript.filter((t) => t.role === 'agent').map((t) => t.text)).toEqual(agentReplies);

  // One call row (the tenant has no other call), its turns in the table once each, one usage record.
  const owner = await ownerClient(stack!.config);
  try {
    const calls = await owner.query<{ id: string; status: string }>(
      'select id, status from calls where tenant_id = $1',
      [tenant.tenantId],
    );
    expect(calls.rows).toEqual([{ id: callId, status: 'completed' }]);
    const turns = await owner.query<{ seq: number; role: string }>(
      'select seq, role from call_turns where call_id = $1 order by seq',
      [callId],
    );
    expect(turns.rows).toEqual(roles.map((role, i) => ({ seq: i + 1, role })));
  } finally {
    await owner.end();
  }
  const usage = await withTenant(stack!.orm, tenant.tenantId, (em) =>
    em.execute<{ kind: string }[]>('select kind from usage_records where call_id = ?', [callId]),
  );
  expect(usage).toEqual([{ kind: 'call_seconds' }]);

  // One run of the workflow, started once, from before the restart to its end.
  const runs: string[] = [];
  await waitUntil(
    'the call workflow in visibility as completed',
    async () => {
      runs.length = 0;
      let completed = true;
      for await (const execution of stack!.temporal.workflow.list({
        query: `WorkflowId = '${callWorkflowId(callId)}'`,
      })) {
        runs.push(execution.runId);
        completed &&= execution.status.name === 'COMPLETED';
      }
      return runs.length > 0 && completed;
    },
    20_000,
    250,
  );
  expect(runs).toEqual([runId]);
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  expect(events.filter((e) => e.workflowExecutionStartedEventAttributes)).toHaveLength(1);
  expect(events.some((e) => e.workflowExecutionContinuedAsNewEventAttributes)).toBe(false);
  expect(acceptedTurns(events)).toEqual(callerTurns.map((_, i) => userTurnUpdateId(callId, i + 1)));
  // openConversation and every turn completed once.
  expect(events.filter((e) => e.workflowExecutionUpdateCompletedEventAttributes)).toHaveLength(
    callerTurns.length + 1,
  );
  // All of it by the one worker process, before and after the restart: it reconnected by itself.
  const identities = new Set(
    events.map((e) => e.workflowTaskCompletedEventAttributes?.identity).filter(Boolean),
  );
  expect([...identities]).toEqual([expect.stringMatching(new RegExp(`^${worker!.child.pid}@`))]);
  // The history written across the restart replays on today's code.
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
}

it('killed between turns: a turn sent meanwhile gets 503 TEMPORAL_UNAVAILABLE; after the restart the call goes on and completes, nothing lost or doubled', () =>
  withDiagnostics(async () => {
    await newTenant('Restart Co');
    const { callId, greeting, handle, runId } = await openConversation();
    const name = await say(callId, 'Ada Lovelace', 1);
    expect(name.status).toBe(200);
    expect(name.body).toMatchObject({ turnId: 1, ended: false, hints: { slotType: 'datetime' } });
    expect(name.body.text).toContain('What day and time');

    // Temporal dies between turns, with no chance to flush anything.
    await killTemporal();

    // A turn sent now is refused with a stable code, once the client's own retries are spent.
    const refused = await say(callId, 'tomorrow at 3pm', 2);
    mark(`turn 2 while Temporal is down: ${refused.status}`);
    expect({ status: refused.status, code: refused.body.error?.code }).toEqual({
      status: 503,
      code: 'TEMPORAL_UNAVAILABLE',
    });
    // What is in PostgreSQL stays readable meanwhile: the call, in progress, and its turns so far.
    const during = await request(stack!.app).get(`/v1/calls/${callId}`).set(auth());
    expect(during.status).toBe(200);
    expect(during.body).toMatchObject({ status: 'in-progress', answeredAt: expect.any(String) });
    expect(during.body.transcript.map((t: { role: string }) => t.role)).toEqual(['agent', 'caller', 'agent']);
    // The worker process rides the outage out: it does not exit.
    expect(workerAlive()).toBe(true);

    server = await startTemporal();

    // The refused turn, sent again (same turnId), is answered by the same worker, which reconnected.
    const when = await sayUntilAnswered(callId, 'tomorrow at 3pm', 2);
    expect(when.body).toMatchObject({ turnId: 2, ended: false, slots: { name: 'Ada Lovelace' } });
    expect(when.body.text).toMatch(
      /Just to confirm, Ada Lovelace, you'd like .* at 3:00 PM\. Is that right\?/,
    );
    const confirm = await sayUntilAnswered(callId, 'yes', 3);
    expect(confirm.body).toMatchObject({
      turnId: 3,
      ended: true,
      status: 'completed',
      disposition: 'booked',
    });
    expect(confirm.body.text).toContain("You're booked. See you then, Ada Lovelace.");

    await expectBookedOnce(
      handle,
      runId,
      callId,
      ['Ada Lovelace', 'tomorrow at 3pm', 'yes'],
      [greeting, name.body.text, when.body.text, confirm.body.text],
    );
  }));

it('killed in the middle of a turn (accepted, its activity running): the turn is answered once after the restart', () =>
  withDiagnostics(async () => {
    await newTenant('Restart Co 2');
    const { callId, greeting, handle, runId } = await openConversation();
    const name = await say(callId, 'Grace Hopper', 1);
    expect(name.status).toBe(200);

    // Turn 2 is accepted and held in its activity writing the call (the row is locked here), so
    // Temporal dies at an exact point: the turn in its history, its activity running on the worker.
    locker = await ownerClient(stack!.config);
    await locker.query('begin');
    await locker.query('select id from calls where id = $1 for update', [callId]);
    const turn2 = say(callId, 'tomorrow at 3pm', 2);
    await waitUntil(
      'turn 2 accepted, its activity running',
      async () => {
        const [description, history] = await Promise.all([handle.describe(), handle.fetchHistory()]);
        const accepted = acceptedTurns(history.events ?? []).includes(userTurnUpdateId(callId, 2));
        const running = (description.raw.pendingActivities ?? []).filter(
          (a) => a.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
        );
        return (
          accepted &&
          running.some((a) => ['recordTurns', 'recordCallStatus'].includes(a.activityType?.name ?? ''))
        );
      },
      30_000,
      50,
    );
    mark('turn 2 accepted, held in its activity');
    await killTemporal();
    // The activity finishes now, with nobody to report to.
    await locker.query('rollback');
    await locker.end();
    locker = undefined;
    await workerNoticedOutage();
    expect(workerAlive()).toBe(true);

    server = await startTemporal();
    // The request in flight may have been answered through the client's own retries; if they ran
    // out first (503), the client sends the same turn again.
    const inFlight = await turn2;
    mark(`turn 2 in flight during the outage: ${inFlight.status}`);
    if (inFlight.status !== 200) expect(inFlight.body.error?.code).toBe('TEMPORAL_UNAVAILABLE');
    const when = inFlight.status === 200 ? inFlight : await sayUntilAnswered(callId, 'tomorrow at 3pm', 2);
    expect(when.body).toMatchObject({ turnId: 2, ended: false, slots: { name: 'Grace Hopper' } });
    expect(when.body.text).toContain('Just to confirm, Grace Hopper');
    const confirm = await sayUntilAnswered(callId, 'yes', 3);
    expect(confirm.body).toMatchObject({
      turnId: 3,
      ended: true,
      status: 'completed',
      disposition: 'booked',
    });

    await expectBookedOnce(
      handle,
      runId,
      callId,
      ['Grace Hopper', 'tomorrow at 3pm', 'yes'],
      [greeting, name.body.text, when.body.text, confirm.body.text],
    );
  }));
