/**
 * Post-call analysis through the real `openai` SDK against the local OpenAI peer (non-streamed, with
 * the forced `record_analysis` tool): completed with structured data, skipped without an LLM, and
 * retried when the model's arguments are malformed.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { LlmSettings } from '../contracts/llm';
import { createLlmClients } from '../activities/llm';
import { createPostCallAnalysisActivities, type AnalyzeCallInput } from '../activities/post-call-analysis';
import { startOpenAiPeer, type OpenAiPeer } from './peers/openai-peer';

const API_KEY = 'sk-peer-analysis-key-0123456789';

let peer: OpenAiPeer;
let activities: ReturnType<typeof createPostCallAnalysisActivities>;
const analyzeCall = (input: AnalyzeCallInput) => activities.analyzeCall(input);

beforeAll(async () => {
  peer = await startOpenAiPeer({ apiKey: API_KEY });
  const clients = createLlmClients({
    defaultApiKey: API_KEY,
    defaultBaseUrl: peer.baseUrl,
    keys: { stale: 'sk-revoked-0000000000' },
  });
  activities = createPostCallAnalysisActivities(clients);
});
afterAll(() => peer.close());
beforeEach(() => {
  peer.requests.length = 0;
  expect(peer.remaining()).toBe(0);
});

const llm: LlmSettings = { model: 'gpt-test-mini', temperature: 0.7, maxTokens: 300, apiKeyRef: 'default' };

const transcript: AnalyzeCallInput['transcript'] = [
  { role: 'agent', text: 'Thanks for calling Acme, how can I help?' },
  { role: 'caller', text: 'Where is my order A-1001? I need it by Friday.' },
  { role: 'tool', text: '{"status":"shipped","eta":"Thursday"}' },
  { role: 'agent', text: 'It shipped and arrives Thursday.' },
  { role: 'caller', text: 'Great, thank you so much!' },
];

const structuredDataSchema = {
  type: 'object',
  properties: {
    orderId: { type: 'string' },
    deliveryConcern: { type: 'boolean' },
    deadline: { type: 'string', enum: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'] },
  },
  required: ['orderId', 'deliveryConcern'],
};

const goodArguments = {
  summary: 'The caller asked where order A-1001 was; the agent confirmed it shipped and arrives Thursday.',
  sentiment: 'positive',
  success: { achieved: true, reason: 'The caller got the delivery date they needed.' },
  csat: 5,
  structuredData: { orderId: 'A-1001', deliveryConcern: true, deadline: 'friday' },
};

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

it('completes with summary, sentiment, success, csat, usage and structured data per the agent schema', async () => {
  peer.script([
    {
      toolCalls: [{ name: 'record_analysis', arguments: goodArguments }],
      usage: { promptTokens: 412, completionTokens: 87 },
    },
  ]);
  const analysis = await analyzeCall({
    llm,
    transcript,
    successCriteria: 'The caller learns when their order arrives.',
    structuredDataSchema,
    disposition: 'resolved',
  });

  expect(analysis).toEqual({
    status: 'completed',
    summary: goodArguments.summary,
    sentiment: 'positive',
    success: goodArguments.success,
    csat: 5,
    structuredData: { orderId: 'A-1001', deliveryConcern: true, deadline: 'friday' },
    usage: { promptTokens: 412, completionTokens: 87 },
  });

  const sent = peer.requests[0]!;
  expect(sent.stream).toBeFalsy();
  expect(sent.model).toBe('gpt-test-mini');
  expect(sent.tool_choice).toEqual({ type: 'function', function: { name: 'record_analysis' } });
  expect(sent.tools).toHaveLength(1);
  const fn = sent.tools![0]!.function;
  expect(fn.name).toBe('record_analysis');
  expect(fn.parameters.properties.structuredData).toEqual(structuredDataSchema);
  expect(fn.parameters.properties.sentiment!.enum).toEqual(['positive', 'neutral', 'negative']);
  expect(fn.parameters.properties.csat).toMatchObject({ type: 'integer', minimum: 1, maximum: 5 });
  expect(fn.parameters.required).toEqual(['summary', 'sentiment', 'success', 'csat', 'structuredData']);
  const [system, user] = sent.messages;
  expect(system).toMatchObject({ role: 'system' });
  expect(system!.content).toContain('The caller learns when their order arrives.');
  expect(system!.content).toContain("disposition 'resolved'");
  expect(user!.content).toContain('Caller: Where is my order A-1001? I need it by Friday.');
  expect(user!.content).toContain('Agent: It shipped and arrives Thursday.');
  expect(user!.content).toContain('Tool result: {"status":"shipped","eta":"Thursday"}');
});

it('leaves structuredData out of the tool and the result when the agent has no schema', async () => {
  const { structuredData: _ignored, ...withoutData } = goodArguments;
  peer.script([{ toolCalls: [{ name: 'record_analysis', arguments: { ...withoutData, csat: 4 } }] }]);
  const analysis = await analyzeCall({ llm, transcript });
  expect(analysis).toMatchObject({ status: 'completed', csat: 4, structuredData: null });
  const parameters = peer.requests[0]!.tools![0]!.function.parameters;
  expect(parameters.properties).not.toHaveProperty('structuredData');
  expect(parameters.required).not.toContain('structuredData');
});

it('skips without calling a model when the agent has no LLM or its key is not configured', async () => {
  const noLlm = await analyzeCall({ transcript });
  expect(noLlm).toEqual({
    status: 'skipped',
    reason: expect.stringContaining('no LLM configured for this agent'),
  });

  const noKey = await analyzeCall({ llm: { ...llm, apiKeyRef: 'tenant-b' }, transcript });
  expect(noKey).toEqual({
    status: 'skipped',
    reason: expect.stringContaining('no LLM configured for this agent'),
  });
  expect(noKey.status === 'skipped' && noKey.reason).toContain("'tenant-b'");

  const silent = await analyzeCall({ llm, transcript: [{ role: 'system', text: 'call started' }] });
  expect(silent).toMatchObject({ status: 'skipped' });
  expect(peer.requests).toHaveLength(0);
});

it('fails retryably when the model returns malformed JSON arguments', async () => {
  peer.script([{ toolCalls: [{ name: 'record_analysis', arguments: '{"summary": "cut off' }] }]);
  const err = await failureOf(analyzeCall({ llm, transcript }));
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'AnalysisMalformed', nonRetryable: false });
  expect(err.message).toMatch(/not valid JSON/);
});

it('fails retryably when the arguments break the analysis schema or the agent schema', async () => {
  peer.script([
    { toolCalls: [{ name: 'record_analysis', arguments: { ...goodArguments, sentiment: 'ecstatic' } }] },
    { toolCalls: [{ name: 'record_analysis', arguments: { ...goodArguments, csat: 9 } }] },
    {
      toolCalls: [
        { name: 'record_analysis', arguments: { ...goodArguments, structuredData: { orderId: 1001 } } },
      ],
    },
  ]);
  for (const path of ['sentiment', 'csat', 'structuredData']) {
    const err = await failureOf(analyzeCall({ llm, transcript, structuredDataSchema }));
    expect(err).toMatchObject({ type: 'AnalysisMalformed', nonRetryable: false });
    expect(JSON.stringify((err as ApplicationFailure).details)).toContain(path);
  }
});

it('fails retryably when the model answers in prose instead of calling record_analysis', async () => {
  peer.script([{ content: 'The call went well.' }]);
  const err = await failureOf(analyzeCall({ llm, transcript }));
  expect(err).toMatchObject({ type: 'AnalysisMalformed', nonRetryable: false });
});

it("classes the provider's refusals and outages like every LLM call", async () => {
  const rejected = await failureOf(analyzeCall({ llm: { ...llm, apiKeyRef: 'stale' }, transcript }));
  expect(rejected).toMatchObject({ type: 'LlmRequestRejected', nonRetryable: true });

  peer.script([{ status: 503, message: 'overloaded' }]);
  const outage = await failureOf(analyzeCall({ llm, transcript }));
  expect(outage).not.toBeInstanceOf(ApplicationFailure);
  expect(outage).toMatchObject({ status: 503 });
});
