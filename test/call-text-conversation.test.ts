/**
 * The text channel end to end on the real dev server and PostgreSQL: the demo booking agent books
 * an appointment through the API; the call record, transcript, slots, usage record and workflow
 * history are what a user relies on; bad turns are refused; a call stays pinned to its version.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import request from 'supertest';
import { callWorkflowId } from '../contracts/call';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { withTenant } from '../db/tenant-context';
import { workflowBundle } from '../workers/create-workers';
import { signUpTenant, startStack, type SignedUp, type TestStack } from './support/stack';

let stack: TestStack;
let tenant: SignedUp;
let bookingAgentId: string;

beforeAll(async () => {
  stack = await startStack({ worker: true, queues: ['calls', 'integrations', 'billing'] });
  tenant = await signUpTenant(stack.app, 'Booking Co');
  const seeded = await seedDemoAgents(stack.orm, tenant.tenantId, tenant.userId);
  bookingAgentId = seeded.bookingAgentId;
});
afterAll(() => stack.close());

const auth = () => ({ authorization: `Bearer ${tenant.token}` });

async function say(callId: string, text: string, turnId?: number) {
  const res = await request(stack.app)
    .post(`/v1/conversations/${callId}/messages`)
    .set(auth())
    .send(turnId === undefined ? { text } : { text, turnId });
  return res;
}

async function waitForCallEnd(callId: string) {
  await stack.temporal.workflow.getHandle(callWorkflowId(callId)).result();
  const res = await request(stack.app).get(`/v1/calls/${callId}`).set(auth());
  expect(res.status).toBe(200);
  return res.body;
}

it('books an appointment end to end: transcript, slots, disposition, call record, usage record', async () => {
  const started = await request(stack.app)
    .post('/v1/conversations')
    .set(auth())
    .send({ agentId: bookingAgentId });
  expect(started.status).toBe(201);
  const { callId } = started.body;
  expect(started.body.version).toBe(1);
  expect(started.body.reply.text).toContain("Hi, this is Parley's demo booking line.");
  expect(started.body.reply.text).toContain('May I have your name?');
  expect(started.body.reply.hints).toMatchObject({ slotType: 'text' });

  const name = await say(callId, 'Ada Lovelace');
  expect(name.status).toBe(200);
  expect(name.body).toMatchObject({ turnId: 1, ended: false, hints: { slotType: 'datetime' } });
  expect(name.body.text).toContain('What day and time');

  const when = await say(callId, 'tomorrow at 3pm');
  // Said the way a person would say it; stored exactly (ISO 8601) for tools.
  expect(when.body.text).toMatch(
    /Just to confirm, Ada Lovelace, you'd like \w+day, \w+ \d{1,2} at 3:00 PM\. Is that right\?/,
  );
  expect(when.body.slots.when).toMatch(/^\d{4}-\d{2}-\d{2}T15:00/);

  const confirm = await say(callId, 'yes please');
  expect(confirm.body).toMatchObject({ ended: true, disposition: 'booked', status: 'completed' });
  expect(confirm.body.text).toContain("You're booked. See you then, Ada Lovelace.");

  const call = await waitForCallEnd(callId);
  expect(call).toMatchObject({
    channel: 'text',
    status: 'completed',
    disposition: 'booked',
    agentId: bookingAgentId,
  });
  expect(call.slots).toMatchObject({ name: 'Ada Lovelace', confirm: true });
  expect(call.workflowId).toBe(callWorkflowId(callId));
  expect(call.temporalUrl).toContain(`/workflows/${encodeURIComponent(callWorkflowId(callId))}`);
  expect(call.analysis).toMatchObject({ status: 'skipped' });
  expect(call.analysis.reason).toMatch(/LLM/);
  const caller = call.transcript
    .filter((t: { role: string }) => t.role === 'caller')
    .map((t: { text: string }) => t.text);
  expect(caller).toEqual(['Ada Lovelace', 'tomorrow at 3pm', 'yes please']);
  const seqs = call.transcript.map((t: { seq: number }) => t.seq);
  expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1));
  expect(call.transcript[0]).toMatchObject({ role: 'agent' });

  const usage = await withTenant(stack.orm, tenant.tenantId, (em) =>
    em.execute<{ kind: string; quantity: number; llm_tokens: number }[]>(
      'select kind, quantity, llm_tokens from usage_records where call_id = ?',
      [callId],
    ),
  );
  expect(usage).toEqual([{ kind: 'call_seconds', quantity: call.durationSeconds, llm_tokens: 0 }]);

  const list = await request(stack.app)
    .get('/v1/calls')
    .query({ channel: 'text', disposition: 'booked' })
    .set(auth());
  expect(list.body.data.map((c: { id: string }) => c.id)).toContain(callId);

  // The history of this conversation replays against today's code (and can be recorded for CI).
  const history = await stack.temporal.workflow.getHandle(callWorkflowId(callId)).fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
  if (process.env.RECORD_HISTORIES) {
    writeFileSync(path.join(__dirname, 'histories', 'call-demo-booking.json'), historyToJSON(history));
  }
});

it('refuses an empty message and a stale turn id, and the conversation goes on', async () => {
  const { body } = await request(stack.app)
    .post('/v1/conversations')
    .set(auth())
    .send({ agentId: bookingAgentId });
  const empty = await say(body.callId, '   ');
  expect(empty.status).toBe(400);
  expect(empty.body.error.details[0].path).toBe('body.text');

  expect((await say(body.callId, 'Grace Hopper', 1)).status).toBe(200);
  // The same turn id again is deduplicated: the same reply, not a second turn.
  const again = await say(body.callId, 'Grace Hopper', 1);
  expect(again.status).toBe(200);
  expect(again.body.turnId).toBe(1);
  const zero = await say(body.callId, 'someone else', 0);
  expect(zero.status).toBe(400);
  // Ids may skip ahead; they may never go back.
  const older = await request(stack.app)
    .post(`/v1/conversations/${body.callId}/messages`)
    .set(auth())
    .send({ text: 'x', turnId: 5 });
  expect(older.status).toBe(200);
  const staleTurn = await say(body.callId, 'late', 3);
  expect(staleTurn.status).toBe(409);
  expect(staleTurn.body.error.code).toBe('TURN_STALE');

  const state = await request(stack.app).get(`/v1/conversations/${body.callId}`).set(auth());
  const callerTurns = state.body.transcript.filter((t: { role: string }) => t.role === 'caller');
  expect(callerTurns.map((t: { text: string }) => t.text)).toEqual(['Grace Hopper', 'x']);
  const ended = await request(stack.app).post(`/v1/conversations/${body.callId}/end`).set(auth());
  expect(ended.body).toMatchObject({ status: 'completed', disposition: 'user_ended' });
});

it('a call pinned to version 1 keeps version 1 after version 2 is published', async () => {
  const v1Call = await request(stack.app)
    .post('/v1/conversations')
    .set(auth())
    .send({ agentId: bookingAgentId });
  expect(v1Call.body.version).toBe(1);

  const agent = await request(stack.app).get(`/v1/agents/${bookingAgentId}`).set(auth());
  const definition = agent.body.definition;
  definition.greeting = 'Welcome to version two.';
  const collectName = definition.flow.nodes.find(
    (n: { type: string; slot?: string }) => n.type === 'collect' && n.slot === 'when',
  );
  collectName.prompt = 'Version two asks: when?';
  expect(
    (
      await request(stack.app)
        .put(`/v1/agents/${bookingAgentId}`)
        .set(auth())
        .send({ name: agent.body.name, definition })
    ).status,
  ).toBe(200);
  const published = await request(stack.app)
    .post(`/v1/agents/${bookingAgentId}/publish`)
    .set(auth())
    .send({});
  expect(published.body.version).toBe(2);

  const next = await say(v1Call.body.callId, 'Alan Turing');
  expect(next.body.text).toContain('What day and time would you like to come in?');
  expect(next.body.text).not.toContain('Version two');

  const v2Call = await request(stack.app)
    .post('/v1/conversations')
    .set(auth())
    .send({ agentId: bookingAgentId });
  expect(v2Call.body.version).toBe(2);
  expect(v2Call.body.reply.text).toContain('Welcome to version two.');
  for (const id of [v1Call.body.callId, v2Call.body.callId]) {
    await request(stack.app).post(`/v1/conversations/${id}/end`).set(auth());
  }
});

it('an unknown agent is a 404 with a code; an unknown conversation too', async () => {
  const res = await request(stack.app)
    .post('/v1/conversations')
    .set(auth())
    .send({ agentId: '00000000-0000-4000-8000-000000000001' });
  expect(res.status).toBe(404);
  expect(res.body.error.code).toBe('AGENT_NOT_FOUND');
  const missing = await say('00000000-0000-4000-8000-000000000002', 'hello');
  expect(missing.status).toBe(404);
  expect(missing.body.error.code).toBe('CONVERSATION_NOT_FOUND');
});
