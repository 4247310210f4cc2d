/**
 * Browser test calls: the api pins the version (published, else the draft, or the one named),
 * admits the call, starts its `callWorkflow` on the web channel and answers with a relay URL and a
 * stream token the relay will accept. Roles and tenants are enforced.
 */
import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import request from 'supertest';
import { CALL_WORKFLOW, callWorkflowId, type CallWorkflowInput } from '../contracts/call';
import { DEMO_BOOKING_AGENT, seedDemoAgents } from '../db/seed/demo-agents';
import { verifyStreamToken } from '../lib/stream-token';
import {
  bearer,
  ownerClient,
  signUpTenant,
  startStack,
  type SignedUp,
  type TestStack,
} from './support/stack';

const RELAY_PUBLIC_URL = 'wss://relay.parley.example.com/';

let stack: TestStack;
let tenant: SignedUp;
let other: SignedUp;
let bookingAgentId: string;
let draftOnlyAgentId: string;
const workflowIds: string[] = [];

const startTestCall = (agentId: string, body: Record<string, unknown> = {}, token = tenant.token) =>
  request(stack.app).post(`/v1/agents/${agentId}/test-calls`).set(bearer(token)).send(body);

/** The input the workflow was started with, read back from its history. */
async function startedWith(workflowId: string): Promise<CallWorkflowInput> {
  const history = await stack.temporal.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
  return defaultPayloadConverter.fromPayload<CallWorkflowInput>(payload);
}

beforeAll(async () => {
  stack = await startStack({
    worker: true,
    queues: ['calls', 'integrations', 'billing'],
    env: { RELAY_PUBLIC_URL },
  });
  tenant = await signUpTenant(stack.app, 'Test Call Co');
  other = await signUpTenant(stack.app, 'Other Test Call Co');
  bookingAgentId = (await seedDemoAgents(stack.orm, tenant.tenantId, tenant.userId)).bookingAgentId;
  const draft = await request(stack.app)
    .post('/v1/agents')
    .set(bearer(tenant.token))
    .send({ name: 'Work in progress', definition: DEMO_BOOKING_AGENT });
  draftOnlyAgentId = draft.body.id;
  const db = await ownerClient(stack.config);
  try {
    await db.query('update tenants set settings = $2::jsonb where id = $1', [
      tenant.tenantId,
      JSON.stringify({ maxConcurrentCalls: 50 }),
    ]);
  } finally {
    await db.end();
  }
});

afterAll(async () => {
  for (const id of workflowIds) {
    await stack.temporal.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => undefined);
  }
  await stack.close();
});

it('starts a web call on the published version: 201 with a relay URL and a token that names the call', async () => {
  const res = await startTestCall(bookingAgentId);
  expect(res.status).toBe(201);
  workflowIds.push(res.body.workflowId);
  const { callId, workflowId, token } = res.body;
  expect(workflowId).toBe(callWorkflowId(callId));
  expect(res.body).toMatchObject({
    version: 1,
    streamUrl: 'wss://relay.parley.example.com/web/stream',
    encoding: 'pcm16',
    sampleRate: 16000,
  });
  const claims = verifyStreamToken(stack.config.STREAM_TOKEN_SECRET, token);
  expect(claims).toMatchObject({ callId, tenantId: tenant.tenantId, workflowId, channel: 'web' });
  expect(claims.callSid).toBeUndefined();
  expect(res.body.expiresAt).toBe(new Date(claims.exp * 1000).toISOString());

  const description = await stack.temporal.workflow.getHandle(workflowId).describe();
  expect(description).toMatchObject({ type: CALL_WORKFLOW, status: { name: 'RUNNING' } });
  expect(await startedWith(workflowId)).toMatchObject({
    callId,
    tenantId: tenant.tenantId,
    agentId: bookingAgentId,
    agentVersionId: res.body.agentVersionId,
    direction: 'inbound',
    channel: 'web',
    timeZone: 'UTC',
  });
  const call = await request(stack.app).get(`/v1/calls/${callId}`).set(bearer(tenant.token));
  expect(call.status).toBe(200);
  expect(call.body).toMatchObject({
    channel: 'web',
    status: 'ringing',
    agentVersionId: res.body.agentVersionId,
  });
});

it('pins the version asked for (number, id or draft) and falls back to the draft when nothing is published', async () => {
  const byNumber = await startTestCall(bookingAgentId, { version: 1, encoding: 'mulaw' });
  expect(byNumber.status).toBe(201);
  expect(byNumber.body).toMatchObject({ version: 1, encoding: 'mulaw', sampleRate: 8000 });
  const byId = await startTestCall(bookingAgentId, { version: byNumber.body.agentVersionId });
  expect(byId.body).toMatchObject({ version: 1, agentVersionId: byNumber.body.agentVersionId });
  const draft = await startTestCall(bookingAgentId, { version: 'draft' });
  expect(draft.body).toMatchObject({ version: null, agentVersionId: null });
  const unpublished = await startTestCall(draftOnlyAgentId);
  expect(unpublished.status).toBe(201);
  expect(unpublished.body).toMatchObject({ version: null, agentVersionId: null });
  for (const res of [byNumber, byId, draft, unpublished]) workflowIds.push(res.body.workflowId);
  expect((await startedWith(unpublished.body.workflowId)).agentVersionId).toBeNull();

  for (const version of [7, randomUUID()]) {
    const missing = await startTestCall(bookingAgentId, { version });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('AGENT_VERSION_NOT_FOUND');
  }
  const badEncoding = await startTestCall(bookingAgentId, { encoding: 'opus' });
  expect(badEncoding.status).toBe(400);
  expect(badEncoding.body.error.details[0].path).toBe('body.encoding');
});

it('viewers may not start test calls (403), and nobody starts one with another tenant’s agent (404)', async () => {
  const key = await request(stack.app)
    .post('/v1/api-keys')
    .set(bearer(tenant.token))
    .send({ name: 'viewer', role: 'viewer' });
  const viewer = await startTestCall(bookingAgentId, {}, key.body.key);
  expect(viewer.status).toBe(403);
  expect(viewer.body.error.code).toBe('INSUFFICIENT_ROLE');

  const foreign = await startTestCall(bookingAgentId, {}, other.token);
  expect(foreign.status).toBe(404);
  expect(foreign.body.error.code).toBe('AGENT_NOT_FOUND');
});
