/**
 * A conversation survives its worker process being killed (SIGKILL) and another one starting: it
 * goes on where it was, with no turn lost or duplicated. The workers are real `npm run worker`
 * processes in the isolated namespace, so no other test file's in-process worker can take their
 * tasks; the api app runs in-process and talks to that namespace.
 *
 * Three ways to die, each recovered by a different path in Temporal:
 * - between turns: the next turn arrives while no worker is alive; its workflow task waits on the
 *   dead worker's sticky queue until it moves to the normal queue and the new worker takes it;
 * - mid-turn, after the turn was accepted: the worker dies inside one of the turn's activities
 *   (held on a row lock, so the crash point is exact); the new worker replays the history, retries
 *   the activity once it times out, and records the turn;
 * - holding the turn's workflow task (frozen with SIGSTOP until the server has handed it the task):
 *   the task times out and the new worker takes it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { Client as PgClient } from 'pg';
import request from 'supertest';
import { callWorkflowId, userTurnUpdateId, type CallWorkflowResult } from '../contracts/call';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { withTenant } from '../db/tenant-context';
import { sleep } from '../lib/net';
import { workflowBundle } from '../workers/create-workers';
import { ISOLATED_NAMESPACE } from './harness/state';
import { Timeline, withDiagnostics as withCrashDiagnostics } from './support/diagnostics';
import { ownerClient, signUpTenant, startStack, type SignedUp, type TestStack } from './support/stack';

const ROOT = path.resolve(__dirname, '..');
const { PendingActivityState, PendingWorkflowTaskState } = temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

// Recovery waits on Temporal's own timeouts: a dead worker's sticky queue (10 s), a taken workflow
// task (10 s), an activity in flight (10 s, records' startToCloseTimeout); a worker starts in 5-10 s.
jest.setTimeout(150_000);

interface WorkerProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  output(): string;
}

const workers: WorkerProcess[] = [];
/** What happened when, for failure messages. */
const timeline = new Timeline();
const mark = (what: string) => timeline.mark(what);

function spawnWorker(name: string): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE,
      WORKER_TASK_QUEUES: 'calls,integrations',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const worker = { name, child, exited, output: () => output };
  workers.push(worker);
  mark(`${name} spawned (pid ${child.pid})`);
  return worker;
}

function alive(worker: WorkerProcess): boolean {
  return worker.child.exitCode === null && worker.child.signalCode === null;
}

async function startWorker(name: string): Promise<WorkerProcess> {
  const worker = spawnWorker(name);
  const deadline = Date.now() + 60_000;
  while (!worker.output().includes('worker running')) {
    if (!alive(worker)) throw new Error(`${name} exited before polling`);
    if (Date.now() > deadline) throw new Error(`${name} did not start polling within 60 s`);
    await sleep(100);
  }
  mark(`${name} polling`);
  return worker;
}

async function killHard(worker: WorkerProcess): Promise<void> {
  if (alive(worker)) worker.child.kill('SIGKILL');
  await worker.exited;
  mark(`${worker.name} killed (${worker.child.signalCode ?? `exit ${worker.child.exitCode}`})`);
}

/** The identity a worker process gives Temporal by default: `<pid>@<host>`. */
const identityOf = (worker: WorkerProcess) => new RegExp(`^${worker.child.pid}@`);

/** The conversation under test, whose history goes with a failure. */
let conversationHandle: WorkflowHandle | undefined;

/** Every worker's output, the timeline and the conversation's history, appended to a failure. */
const withDiagnostics = (test: () => Promise<void>) =>
  withCrashDiagnostics(test, {
    timeline,
    output: () => workers.map((w) => `--- ${w.name} (pid ${w.child.pid}) ---\n${w.output()}`).join('\n'),
    workflow: () => conversationHandle,
  });

/** Polls `probe` until it returns a value; each new `state` it reports goes on the timeline. */
async function pollUntil<T>(
  what: string,
  probe: (report: (state: string) => void) => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  const report = (state: string) => {
    if (state !== last) mark(`${what}: ${(last = state)}`);
  };
  for (;;) {
    const value = await probe(report);
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(25);
  }
}

let stack: TestStack;
let tenant: SignedUp;
let bookingAgentId: string;
/** A row lock a test holds on a call; released in afterAll if a test failed holding it. */
let locker: PgClient | undefined;

beforeAll(async () => {
  // No in-process worker: the calls queue of the isolated namespace is served by the processes below.
  stack = await startStack({ env: { TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE } });
  tenant = await signUpTenant(stack.app, 'Crash Co');
  ({ bookingAgentId } = await seedDemoAgents(stack.orm, tenant.tenantId, tenant.userId));
});

afterAll(async () => {
  await locker?.end();
  await Promise.all(workers.map((w) => killHard(w)));
  await stack?.close();
});

const auth = () => ({ authorization: `Bearer ${tenant.token}` });

async function openConversation() {
  const opened = await request(stack.app)
    .post('/v1/conversations')
    .set(auth())
    .send({ agentId: bookingAgentId });
  expect(opened.status).toBe(201);
  expect(opened.body.reply.text).toContain('May I have your name?');
  const callId: string = opened.body.callId;
  mark(`conversation ${callId} opened`);
  conversationHandle = stack.temporal.workflow.getHandle(callWorkflowId(callId));
  return { callId, greeting: opened.body.reply.text as string, handle: conversationHandle };
}

function say(callId: string, text: string, turnId: number) {
  return request(stack.app).post(`/v1/conversations/${callId}/messages`).set(auth()).send({ text, turnId });
}

/**
 * Sends a turn until the api answers it, as a client whose request failed would: the same turnId
 * is the same update id, so Temporal answers a retry with the first outcome, never a second turn.
 */
async function sayUntilAnswered(callId: string, text: string, turnId: number) {
  const failures: string[] = [];
  for (let attempt = 1; ; attempt += 1) {
    const res = await say(callId, text, turnId);
    mark(`turn ${turnId} attempt ${attempt}: ${res.status}`);
    if (res.status === 200) return res;
    failures.push(`${res.status} ${JSON.stringify(res.body)}`);
    if (res.status < 500 || attempt >= 5)
      throw new Error(`turn ${turnId} was refused: ${failures.join('; ')}`);
    await sleep(1000);
  }
}

interface TurnInHistory {
  updateId: string;
  /** Identity of the worker whose workflow task accepted the turn, then the one whose task answered it. */
  acceptedBy: string;
  completedBy?: string;
}

/** Every accepted `userTurn` update, in order, with the workers that accepted and answered it. */
function turnsInHistory(events: HistoryEvent[]): TurnInHistory[] {
  const turns: TurnInHistory[] = [];
  let lastTaskBy = '';
  for (const event of events) {
    if (event.workflowTaskCompletedEventAttributes) {
      lastTaskBy = event.workflowTaskCompletedEventAttributes.identity ?? '';
    }
    const req = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    if (req?.input?.name === 'userTurn')
      turns.push({ updateId: req.meta?.updateId ?? '', acceptedBy: lastTaskBy });
    const completedId = event.workflowExecutionUpdateCompletedEventAttributes?.meta?.updateId;
    const turn = turns.find((t) => t.updateId === completedId);
    if (turn) turn.completedBy = lastTaskBy;
  }
  return turns;
}

/**
 * The call ended booked and everything a user relies on holds each turn exactly once: the call
 * record, its transcript (API and table), the usage record, and the workflow's history, in which
 * each turn was accepted and answered once, by the workers alive at the time (`[accepted, answered]`).
 */
async function expectBookedOnce(
  handle: WorkflowHandle,
  callId: string,
  callerTurns: string[],
  agentReplies: string[],
  handledBy: [WorkerProcess, WorkerProcess][],
): Promise<HistoryEvent[]> {
  const result = (await handle.result()) as CallWorkflowResult;
  mark(`workflow of ${callId} completed`);
  expect(result).toMatchObject({ status: 'completed', disposition: 'booked' });

  const call = (await request(stack.app).get(`/v1/calls/${callId}`).set(auth()).expect(200)).body;
  expect(call).toMatchObject({ status: 'completed', disposition: 'booked' });
  expect(call.slots).toMatchObject({ name: callerTurns[0], confirm: true });
  const transcript: { seq: number; role: string; text: string; timings: { turnId?: number } | null }[] =
    call.transcript;
  expect(transcript.map((t) => t.seq)).toEqual(transcript.map((_, i) => i + 1));
  const roles = agentReplies.flatMap((_, i) => (i === 0 ? ['agent'] : ['caller', 'agent']));
  expect(transcript.map((t) => t.role)).toEqual(roles);
  const caller = transcript.filter((t) => t.role === 'caller');
  expect(caller.map((t) => t.text)).toEqual(callerTurns);
  expect(caller.map((t) => t.timings?.turnId)).toEqual(callerTurns.map((_, i) => i + 1));
  // Each agent turn once, in order, and the same words the api answered with.
  expect(transcript.filter((t) => t.role === 'agent').map((t) => t.text)).toEqual(agentReplies);

  const usage = await withTenant(stack.orm, tenant.tenantId, (em) =>
    em.execute<{ kind: string }[]>('select kind from usage_records where call_id = ?', [callId]),
  );
  expect(usage).toEqual([{ kind: 'call_seconds' }]);

  const owner = await ownerClient();
  try {
    const { rows } = await owner.query<{ seq: number; role: string }>(
      'select seq, role from call_turns where call_id = $1 order by seq',
      [callId],
    );
    expect(rows.map((r) => r.seq)).toEqual(transcript.map((t) => t.seq));
    expect(rows.map((r) => r.role)).toEqual(roles);
  } finally {
    await owner.end();
  }

  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const turns = turnsInHistory(events);
  expect(turns.map((t) => t.updateId)).toEqual(callerTurns.map((_, i) => userTurnUpdateId(callId, i + 1)));
  turns.forEach((turn, i) => {
    const [accepted, answered] = handledBy[i]!;
    expect({ turn: i + 1, acceptedBy: turn.acceptedBy, completedBy: turn.completedBy }).toEqual({
      turn: i + 1,
      acceptedBy: expect.stringMatching(identityOf(accepted)),
      completedBy: expect.stringMatching(identityOf(answered)),
    });
  });
  // openConversation and every turn completed once.
  expect(events.filter((e) => e.workflowExecutionUpdateCompletedEventAttributes)).toHaveLength(
    callerTurns.length + 1,
  );
  // A history written by several processes, crashes included, replays on today's code.
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
  return events;
}

it('SIGKILLed between turns and in the middle of one: the next worker goes on where it was, no turn lost or duplicated', () =>
  withDiagnostics(async () => {
    const worker1 = await startWorker('worker #1');
    const { callId, greeting, handle } = await openConversation();

    const name = await say(callId, 'Ada Lovelace', 1);
    expect(name.status).toBe(200);
    expect(name.body).toMatchObject({ turnId: 1, ended: false, hints: { slotType: 'datetime' } });
    expect(name.body.text).toContain('What day and time');

    // Crash 1, between turns: turn 2 is sent while no worker is alive; it waits, it does not fail.
    await killHard(worker1);
    let turn2AnsweredAt: number | undefined;
    const turn2 = sayUntilAnswered(callId, 'tomorrow at 3pm', 2).then((res) => {
      turn2AnsweredAt = Date.now();
      return res;
    });
    // The update is with the server, a workflow task waiting for a worker, before worker #2 exists.
    await pollUntil('turn 2 workflow task', async (report) => {
      const pending = (await handle.describe()).raw.pendingWorkflowTask;
      report(`state ${pending?.state} attempt ${pending?.attempt}`);
      return pending?.state === PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED || undefined;
    });
    await sleep(500);
    expect(turn2AnsweredAt).toBeUndefined();
    const worker2SpawnedAt = Date.now();
    const worker2 = await startWorker('worker #2');
    const when = await turn2;
    expect(turn2AnsweredAt!).toBeGreaterThan(worker2SpawnedAt);
    expect(when.body).toMatchObject({ turnId: 2, ended: false, slots: { name: 'Ada Lovelace' } });
    expect(when.body.text).toMatch(
      /Just to confirm, Ada Lovelace, you'd like .* at 3:00 PM\. Is that right\?/,
    );

    // Crash 2, mid-turn: turn 3 is accepted by worker #2, which runs its first activities and then
    // blocks writing the call (the row is locked here); it dies there, with the caller's words and
    // the agent's reply in its memory only. Worker #3 must finish the turn from the history.
    locker = await ownerClient();
    await locker.query('begin');
    await locker.query('select id from calls where id = $1 for update', [callId]);
    mark(`call row locked`);
    const turn3 = sayUntilAnswered(callId, 'yes', 3);
    await pollUntil('turn 3 in worker #2', async (report) => {
      const [description, history] = await Promise.all([handle.describe(), handle.fetchHistory()]);
      const accepted = turnsInHistory(history.events ?? []).some(
        (t) => t.updateId === userTurnUpdateId(callId, 3),
      );
      const running = (description.raw.pendingActivities ?? []).filter(
        (a) => a.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
      );
      const names = running.map((a) => a.activityType?.name ?? '?');
      report(`accepted ${accepted}, running [${names.join(', ')}]`);
      return accepted ? names.find((n) => n === 'recordCallStatus' || n === 'recordTurns') : undefined;
    });
    await killHard(worker2);
    await locker.query('rollback');
    await locker.end();
    locker = undefined;
    mark('call row released');
    const worker3 = await startWorker('worker #3');
    // The turn that ends the call is answered too, although its own activities finish (on worker #3,
    // after their timeout) only once the call has ended.
    const confirm = await turn3;
    expect(confirm.body).toMatchObject({
      turnId: 3,
      ended: true,
      status: 'completed',
      disposition: 'booked',
    });
    expect(confirm.body.text).toContain("You're booked. See you then, Ada Lovelace.");

    const events = await expectBookedOnce(
      handle,
      callId,
      ['Ada Lovelace', 'tomorrow at 3pm', 'yes'],
      [greeting, name.body.text, when.body.text, confirm.body.text],
      [
        [worker1, worker1],
        [worker2, worker2],
        [worker2, worker3],
      ],
    );
    // The activity worker #2 died in was retried, not skipped.
    expect(
      events.some(
        (e) =>
          e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1,
      ),
    ).toBe(true);

    // A client retrying turn 3 after all this (its request cut, say) gets the same reply, not a new turn.
    const retried = await say(callId, 'yes', 3);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ turnId: 3, disposition: 'booked', text: confirm.body.text });
    const call = (await request(stack.app).get(`/v1/calls/${callId}`).set(auth()).expect(200)).body;
    expect(call.transcript).toHaveLength(7);
  }));

it('SIGKILLed holding a turn before accepting it: the task goes to the next worker, the turn happens once', () =>
  withDiagnostics(async () => {
    const before =
      workers.find((w) => w.name === 'worker #3' && alive(w)) ?? (await startWorker('worker #3b'));
    const { callId, greeting, handle } = await openConversation();

    // Frozen, the worker still holds its polls: the server hands it turn 1's workflow task, which it
    // can neither complete nor give back. Killed so, the task must time out and move on.
    process.kill(before.child.pid!, 'SIGSTOP');
    mark(`${before.name} frozen`);
    const turn1 = sayUntilAnswered(callId, 'Grace Hopper', 1);
    await pollUntil('turn 1 workflow task', async (report) => {
      const pending = (await handle.describe()).raw.pendingWorkflowTask;
      report(`state ${pending?.state} attempt ${pending?.attempt}`);
      return pending?.state === PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED || undefined;
    });
    await killHard(before);
    const after = await startWorker('worker #4');
    const name = await turn1;
    expect(name.body).toMatchObject({ turnId: 1, ended: false, hints: { slotType: 'datetime' } });

    const when = await sayUntilAnswered(callId, 'tomorrow at 3pm', 2);
    expect(when.body.text).toContain('Just to confirm, Grace Hopper');
    const confirm = await sayUntilAnswered(callId, 'yes', 3);
    expect(confirm.body).toMatchObject({ turnId: 3, ended: true, disposition: 'booked' });

    const events = await expectBookedOnce(
      handle,
      callId,
      ['Grace Hopper', 'tomorrow at 3pm', 'yes'],
      [greeting, name.body.text, when.body.text, confirm.body.text],
      [
        [after, after],
        [after, after],
        [after, after],
      ],
    );
    // The task the frozen worker took timed out: that is how it came back.
    expect(
      events.some(
        (e) =>
          e.workflowTaskTimedOutEventAttributes?.timeoutType ===
          temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE,
      ),
    ).toBe(true);
  }));
