/**
 * An `llm` node conversation against the local OpenAI-compatible peer: the reply streams (over SSE
 * to the client), the model calls a tenant tool that receives a valid signature, the tool's result
 * goes back to the model, and the model ends the step through `complete_step`. Post-call analysis
 * then runs on the same peer and lands on the call record with the LLM tokens in the usage record.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import request from 'supertest';
import { workflowBundle } from '../workers/create-workers';
import { callWorkflowId } from '../contracts/call';
import { withTenant } from '../db/tenant-context';
import { startOpenAiPeer, type OpenAiPeer } from './peers/openai-peer';
import { startToolServer, type ToolServer } from './peers/tool-server';
import { signUpTenant, startStack, type SignedUp, type TestStack } from './support/stack';

const API_KEY = 'sk-test-parley-peer';
const TOOL_SECRET = 'tool-signing-secret-0123456789';

let peer: OpenAiPeer;
let toolServer: ToolServer;
let stack: TestStack;
let tenant: SignedUp;

beforeAll(async () => {
  peer = await startOpenAiPeer({ apiKey: API_KEY });
  toolServer = await startToolServer({ secret: TOOL_SECRET });
  stack = await startStack({
    worker: true,
    speech: true,
    queues: ['calls', 'integrations'],
    env: { OPENAI_BASE_URL: peer.baseUrl, OPENAI_API_KEY: API_KEY },
  });
  tenant = await signUpTenant(stack.app, 'Support Co');
});
afterAll(async () => {
  await stack.close();
  await peer.close();
  await toolServer.close();
});

const auth = () => ({ authorization: `Bearer ${tenant.token}` });

function supportAgent() {
  return {
    name: 'Order support',
    definition: {
      persona: { systemPrompt: 'You are the support agent of Acme.' },
      greeting: 'Hi, this is Acme support.',
      llm: { model: 'gpt-4o-mini', temperature: 0.2 },
      tools: [
        {
          name: 'lookup_order',
          description: 'Looks up an order by its number',
          url: toolServer.url,
          parameters: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] },
          signingSecret: TOOL_SECRET,
        },
      ],
      analysis: {
        successCriteria: 'The caller learned where the order is.',
        structuredDataSchema: { type: 'object', properties: { orderId: { type: 'string' } } },
      },
      flow: {
        startNodeId: 'support',
        nodes: [
          {
            id: 'support',
            type: 'llm',
            goal: 'Tell the caller where their order is.',
            tools: ['lookup_order'],
            outcomes: ['resolved'],
          },
          { id: 'done', type: 'end', disposition: 'resolved', message: 'Goodbye!' },
        ],
        edges: [
          { id: 'e1', source: 'support', target: 'done', when: { kind: 'outcome', equals: 'resolved' } },
        ],
      },
    },
  };
}

/** Reads an SSE response into its events. */
function parseSse(text: string): { event: string; data: unknown }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as unknown;
      return { event, data };
    });
}

it('streams replies, calls a signed tool, feeds its result back and exits by tool call', async () => {
  const created = await request(stack.app).post('/v1/agents').set(auth()).send(supportAgent());
  expect(created.status).toBe(201);
  const agentId: string = created.body.id;
  expect((await request(stack.app).post(`/v1/agents/${agentId}/publish`).set(auth()).send({})).status).toBe(
    201,
  );

  toolServer.script([{ json: { orderId: '42', status: 'shipped', eta: 'tomorrow' } }]);
  peer.script([
    { content: 'How can I help with your order?' },
    { toolCalls: [{ name: 'lookup_order', arguments: { orderId: '42' } }] },
    { content: 'Order 42 has shipped and arrives tomorrow.' },
    {
      content: 'Glad I could help!',
      toolCalls: [
        { name: 'complete_step', arguments: { outcome: 'resolved', summary: 'Order 42 status given' } },
      ],
    },
    {
      toolCalls: [
        {
          name: 'record_analysis',
          arguments: {
            summary: 'The caller asked about order 42, which has shipped.',
            sentiment: 'positive',
            success: { achieved: true, reason: 'The caller learned the order status.' },
            csat: 5,
            structuredData: { orderId: '42' },
          },
        },
      ],
    },
  ]);

  const started = await request(stack.app).post('/v1/conversations').set(auth()).send({ agentId });
  expect(started.status).toBe(201);
  expect(started.body.reply.text).toBe('Hi, this is Acme support. How can I help with your order?');
  const { callId } = started.body;

  // The turn with the tool call, streamed over SSE: deltas first, then the whole reply.
  const streamed = await request(stack.app)
    .post(`/v1/conversations/${callId}/messages/stream`)
    .set(auth())
    .send({ text: 'Where is order 42?' })
    .buffer(true)
    .parse((res, done) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => done(null, text));
    });
  expect(streamed.status).toBe(200);
  expect(streamed.headers['content-type']).toContain('text/event-stream');
  const events = parseSse(streamed.body as string);
  const deltas = events.filter((e) => e.event === 'delta').map((e) => (e.data as { text: string }).text);
  expect(deltas.length).toBeGreaterThan(3);
  expect(deltas.join('')).toBe('Order 42 has shipped and arrives tomorrow.');
  expect(events.at(-1)).toMatchObject({
    event: 'reply',
    data: { text: 'Order 42 has shipped and arrives tomorrow.', ended: false },
  });

  // The tool got a signed request with the model's arguments, keyed for idempotency by business ids.
  expect(toolServer.calls).toHaveLength(1);
  const call = toolServer.calls[0]!;
  expect(call.signatureValid).toBe(true);
  expect(call.body).toMatchObject({ tool: 'lookup_order', arguments: { orderId: '42' }, callId });
  expect(call.headers['idempotency-key']).toMatch(new RegExp(`^${callId}:`));

  // What the model was given: the tools, then the tool result as a tool message answering its call.
  const withTools = peer.requests[1]!;
  expect(withTools.tools?.map((t) => t.function.name).sort()).toEqual(['complete_step', 'lookup_order']);
  const afterTool = peer.requests[2]!.messages;
  const toolMessage = afterTool.find((m) => m.role === 'tool');
  expect(toolMessage?.tool_call_id).toBeTruthy();
  expect(String(toolMessage?.content)).toContain('shipped');

  const last = await request(stack.app)
    .post(`/v1/conversations/${callId}/messages`)
    .set(auth())
    .send({ text: "Great, that's all." });
  expect(last.body).toMatchObject({
    ended: true,
    disposition: 'resolved',
    text: 'Glad I could help! Goodbye!',
  });

  await stack.temporal.workflow.getHandle(callWorkflowId(callId)).result();
  const detail = await request(stack.app).get(`/v1/calls/${callId}`).set(auth());
  expect(detail.body).toMatchObject({ status: 'completed', disposition: 'resolved' });
  expect(detail.body.analysis).toMatchObject({
    status: 'completed',
    sentiment: 'positive',
    success: { achieved: true },
    csat: 5,
    structuredData: { orderId: '42' },
  });
  expect(detail.body.summary).toContain('order 42');
  expect(detail.body.transcript.filter((t: { role: string }) => t.role === 'tool')).toHaveLength(1);
  expect(detail.body.llmTokens).toBeGreaterThan(0);
  const usage = await withTenant(stack.orm, tenant.tenantId, (em) =>
    em.execute<{ llm_tokens: number }[]>('select llm_tokens from usage_records where call_id = ?', [callId]),
  );
  expect(usage[0]!.llm_tokens).toBeGreaterThan(detail.body.llmTokens - 1);
  expect(peer.remaining()).toBe(0);

  const history = await stack.temporal.workflow.getHandle(callWorkflowId(callId)).fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
  if (process.env.RECORD_HISTORIES) {
    writeFileSync(path.join(__dirname, 'histories', 'call-llm-support.json'), historyToJSON(history));
  }
});
