/**
 * callWorkflow's lifecycle on the real dev server: continue-as-new keeps the conversation and its
 * transcript whole; the idle and max-duration timers end calls durably; keypad digits fill slots;
 * the customer's `call.ended` webhook arrives signed; search attributes follow the status.
 */
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import {
  CALL_QUEUE,
  CALL_WORKFLOW,
  callWorkflowId,
  dtmfSignal,
  openConversationUpdate,
  stateQuery,
  userTurnUpdate,
  userTurnUpdateId,
  type CallWorkflowInput,
  type CallWorkflowResult,
} from '../contracts/call';
import { SEARCH_ATTRIBUTES } from '../contracts';
import { verifyWebhookSignature } from '../activities/customer-webhooks';
import { DEMO_BOOKING_AGENT, seedDemoAgents } from '../db/seed/demo-agents';
import { withTenant } from '../db/tenant-context';
import { startWebhookReceiver, type WebhookReceiver } from './peers/webhook-receiver';
import { signUpTenant, startStack, type SignedUp, type TestStack } from './support/stack';

let stack: TestStack;
let tenant: SignedUp;
let bookingAgentId: string;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  stack = await startStack({ worker: true, queues: ['calls', 'integrations'] });
  tenant = await signUpTenant(stack.app, 'Lifecycle Co');
  ({ bookingAgentId } = await seedDemoAgents(stack.orm, tenant.tenantId, tenant.userId));
});
afterAll(async () => {
  await stack.close();
  await receiver.close();
});

const auth = () => ({ authorization: `Bearer ${tenant.token}` });

async function publishedVersionId(agentId: string): Promise<string> {
  const res = await request(stack.app).get(`/v1/agents/${agentId}`).set(auth());
  return res.body.publishedVersionId as string;
}

/** Starts a text call directly through Temporal, with test options the API does not expose. */
async function startCall(options: CallWorkflowInput['options'], agentId = bookingAgentId) {
  const callId = randomUUID();
  const input: CallWorkflowInput = {
    callId,
    tenantId: tenant.tenantId,
    agentId,
    agentVersionId: await publishedVersionId(agentId),
    direction: 'inbound',
    channel: 'text',
    options,
  };
  const handle = await stack.temporal.workflow.start(CALL_WORKFLOW, {
    workflowId: callWorkflowId(callId),
    taskQueue: CALL_QUEUE,
    args: [input],
  });
  const opening = await handle.executeUpdate(openConversationUpdate, { args: [{}] });
  return { callId, handle, opening };
}

async function turn(
  handle: Awaited<ReturnType<typeof startCall>>['handle'],
  callId: string,
  turnId: number,
  text: string,
) {
  return handle.executeUpdate(userTurnUpdate, {
    args: [{ turnId, text }],
    updateId: userTurnUpdateId(callId, turnId),
  });
}

it('continues as new every few turns without losing a turn or a slot', async () => {
  const { callId, handle } = await startCall({ maxTurnsPerRun: 2 });
  const firstRunId = (await handle.describe()).runId;
  await turn(handle, callId, 1, 'Ada Lovelace');
  await turn(handle, callId, 2, 'banana');
  await turn(handle, callId, 3, 'whenever');
  await turn(handle, callId, 4, 'tomorrow at 3pm');
  const state = await handle.query(stateQuery);
  expect(state.runs).toBeGreaterThanOrEqual(2);
  expect(state.slots).toMatchObject({ name: 'Ada Lovelace' });
  expect(state.lastTurnId).toBe(4);
  expect((await handle.describe()).runId).not.toBe(firstRunId);
  // A late openConversation on the continued run does not greet again.
  const reopened = await handle.executeUpdate(openConversationUpdate, { args: [{}] });
  expect(reopened).toMatchObject({ text: '', ended: false, slots: { name: 'Ada Lovelace' } });

  const last = await turn(handle, callId, 5, 'yes');
  expect(last).toMatchObject({ ended: true, disposition: 'booked' });
  const result = (await handle.result()) as CallWorkflowResult;
  expect(result).toMatchObject({ status: 'completed', disposition: 'booked' });

  const rows = await withTenant(stack.orm, tenant.tenantId, (em) =>
    em.execute<{ seq: number; role: string; text: string }[]>(
      'select seq, role, text from call_turns where call_id = ? order by seq',
      [callId],
    ),
  );
  expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
  expect(rows.filter((r) => r.role === 'caller').map((r) => r.text)).toEqual([
    'Ada Lovelace',
    'banana',
    'whenever',
    'tomorrow at 3pm',
    'yes',
  ]);
});

it('ends an idle text conversation with a durable timer', async () => {
  const { handle } = await startCall({ idleTimeoutSeconds: 2 });
  const result = (await handle.result()) as CallWorkflowResult;
  expect(result).toMatchObject({ status: 'completed', disposition: 'idle_timeout' });
});

it('enforces the agent’s maximum call duration with a durable timer', async () => {
  const created = await request(stack.app)
    .post('/v1/agents')
    .set(auth())
    .send({ name: 'Short calls', definition: { ...DEMO_BOOKING_AGENT, maxCallDurationSeconds: 10 } });
  expect(created.status).toBe(201);
  await request(stack.app).post(`/v1/agents/${created.body.id}/publish`).set(auth()).send({});
  const { callId, handle } = await startCall({}, created.body.id);
  await turn(handle, callId, 1, 'Ada Lovelace');
  const result = (await handle.result()) as CallWorkflowResult;
  expect(result).toMatchObject({ status: 'completed', disposition: 'max_duration' });
  const call = await request(stack.app).get(`/v1/calls/${callId}`).set(auth());
  expect(call.body.endReason).toMatch(/10 s limit/);
}, 30_000);

it('fills a yes/no slot from keypad digits (DTMF)', async () => {
  const { callId, handle } = await startCall({});
  await turn(handle, callId, 1, 'Grace Hopper');
  await turn(handle, callId, 2, 'next Monday at 10:30');
  await handle.signal(dtmfSignal, { digits: '1' });
  const result = (await handle.result()) as CallWorkflowResult;
  expect(result).toMatchObject({ disposition: 'booked', slots: { confirm: true } });
});

it('sends the signed call.ended webhook and keeps search attributes current', async () => {
  const endpoint = await request(stack.app)
    .post('/v1/webhook-endpoints')
    .set(auth())
    .send({ url: receiver.url('/parley'), events: ['call.ended'] });
  expect(endpoint.status).toBe(201);
  receiver.secret = endpoint.body.secret;

  const started = await request(stack.app)
    .post('/v1/conversations')
    .set(auth())
    .send({ agentId: bookingAgentId });
  const { callId } = started.body;
  await request(stack.app).post(`/v1/conversations/${callId}/end`).set(auth()).expect(200);

  const deadline = Date.now() + 20_000;
  while (!receiver.accepted.some((d) => (d.body as { data?: { callId?: string } }).data?.callId === callId)) {
    if (Date.now() > deadline)
      throw new Error(`no call.ended webhook for ${callId}: ${JSON.stringify(receiver.deliveries)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const delivery = receiver.accepted.find(
    (d) => (d.body as { data?: { callId?: string } }).data?.callId === callId,
  )!;
  expect(delivery.body).toMatchObject({
    id: `call.ended:${callId}`,
    type: 'call.ended',
    data: { callId, status: 'completed', disposition: 'user_ended', agentId: bookingAgentId },
  });
  expect(delivery.signatureValid).toBe(true);
  expect(verifyWebhookSignature(endpoint.body.secret, delivery.signature, delivery.rawBody)).toBe(true);

  const description = await stack.temporal.workflow.getHandle(callWorkflowId(callId)).describe();
  expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.CallStatus)).toBe('completed');
  expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.TenantId)).toBe(tenant.tenantId);
  expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.AgentId)).toBe(bookingAgentId);
});
