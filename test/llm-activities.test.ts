/**
 * Streamed chat completions through the real `openai` SDK against the local OpenAI peer over a real
 * socket: delta assembly, tool calls split across chunks, usage, message mapping, and how provider
 * failures become Temporal failure classes.
 */
import { ApplicationFailure, CancelledFailure, noopMetricMeter } from '@temporalio/common';
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import type { LlmRequest, LlmSettings } from '../contracts/llm';
import { createLlmActivities, createLlmClients, streamChat, type LlmClients } from '../activities/llm';
import { startOpenAiPeer, type OpenAiPeer } from './peers/openai-peer';

const API_KEY = 'sk-peer-test-key-0123456789';

let peer: OpenAiPeer;
let clients: LlmClients;

beforeAll(async () => {
  peer = await startOpenAiPeer({ apiKey: API_KEY });
  clients = createLlmClients({
    defaultApiKey: API_KEY,
    defaultBaseUrl: peer.baseUrl,
    keys: { support: API_KEY, stale: 'sk-revoked-key-9876543210' },
  });
});
afterAll(() => peer.close());
beforeEach(() => {
  peer.requests.length = 0;
  expect(peer.remaining()).toBe(0);
});

const settings: LlmSettings = {
  model: 'gpt-test-mini',
  temperature: 0.3,
  maxTokens: 256,
  apiKeyRef: 'default',
};

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    settings,
    messages: [
      { role: 'system', content: 'You are the Acme order line.' },
      { role: 'user', content: 'Where is my order?' },
    ],
    tools: [],
    ...overrides,
  };
}

interface SseChunk {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: {
    index: number;
    delta: {
      role?: string;
      content?: string;
      tool_calls?: { index: number; id?: string; type?: string; function: Record<string, string> }[];
    };
    finish_reason: string | null;
  }[];
  usage?: Record<string, number> | null;
}

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

describe('the OpenAI peer speaks the wire format', () => {
  it('streams SSE chunks with content pieces, tool-call pieces by index, a usage chunk and [DONE]', async () => {
    peer.script([
      {
        content: 'One moment.',
        toolCalls: [
          { name: 'lookup_order', arguments: { orderId: 'A-1001' } },
          { name: 'check_stock', arguments: { sku: 'SKU-77' } },
        ],
        interleaveToolCalls: true,
        usage: { promptTokens: 11, completionTokens: 22 },
      },
    ]);
    const res = await fetch(`${peer.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-test-mini',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as SseChunk);
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({
        id: 'chatcmpl-peer1',
        object: 'chat.completion.chunk',
        model: 'gpt-test-mini',
      });
      expect(typeof chunk.created).toBe('number');
    }
    const withChoice = chunks.filter((c) => c.choices.length > 0).map((c) => c.choices[0]!);
    expect(withChoice[0]!.delta.role).toBe('assistant');
    expect(withChoice.filter((c) => c.delta.content).length).toBeGreaterThan(2);

    const toolPieces = withChoice.flatMap((c) => c.delta.tool_calls ?? []);
    expect(toolPieces.slice(0, 4).map((p) => p.index)).toEqual([0, 1, 0, 1]);
    expect(toolPieces[0]).toEqual({
      index: 0,
      id: 'call_peer1_0',
      type: 'function',
      function: { name: 'lookup_order', arguments: '' },
    });
    const later = toolPieces.filter((p) => !p.id);
    expect(later.length).toBeGreaterThan(2);
    for (const piece of later) expect(Object.keys(piece.function)).toEqual(['arguments']);

    expect(withChoice.at(-1)).toMatchObject({ delta: {}, finish_reason: 'tool_calls' });
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 11, completion_tokens: 22, total_tokens: 33 },
    });
  });

  it("answers a wrong key with 401 and OpenAI's error shape, and an unscripted request with a clear 500", async () => {
    const wrong = await fetch(`${peer.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { Authorization: 'Bearer sk-nope-nope-nope', 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [] }),
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({
      error: {
        message: expect.stringContaining('Incorrect API key provided'),
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      },
    });

    const unscripted = await fetch(`${peer.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [] }),
    });
    expect(unscripted.status).toBe(500);
    expect(((await unscripted.json()) as { error: { message: string } }).error.message).toMatch(
      /no scripted reply/,
    );
  });
});

describe('streamChat', () => {
  it('assembles content from deltas, passing each to onDelta in order as it arrives', async () => {
    const text = 'Your order A-1001 shipped yesterday and arrives on Friday.';
    peer.script([{ content: text, chunkDelayMs: 5 }]);
    const deltas: { text: string; at: number }[] = [];
    const result = await streamChat(clients, request(), (delta) =>
      deltas.push({ text: delta, at: performance.now() }),
    );

    expect(result.content).toBe(text);
    expect(result.finishReason).toBe('stop');
    expect(result.toolCalls).toEqual([]);
    expect(deltas.length).toBeGreaterThan(10);
    expect(deltas.map((d) => d.text).join('')).toBe(text);
    // Delivered while streaming, not all at the end.
    expect(deltas.at(-1)!.at - deltas[0]!.at).toBeGreaterThan(20);
    expect(result.timings.firstTokenMs).toEqual(expect.any(Number));
    expect(result.timings.firstTokenMs!).toBeLessThanOrEqual(result.timings.totalMs);

    const sent = peer.requests[0]!;
    expect(sent).toMatchObject({
      model: 'gpt-test-mini',
      temperature: 0.3,
      max_tokens: 256,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(sent).not.toHaveProperty('tools');
  });

  it('assembles two parallel tool calls whose argument pieces interleave by index', async () => {
    const orderArgs = { orderId: 'A-1001', includeItems: true, note: 'caller asked twice' };
    const stockArgs = { sku: 'SKU-77', warehouse: 'north', quantity: 3 };
    peer.script([
      {
        toolCalls: [
          { name: 'lookup_order', arguments: orderArgs },
          { name: 'check_stock', arguments: stockArgs },
        ],
        interleaveToolCalls: true,
      },
    ]);
    const deltas: string[] = [];
    const result = await streamChat(
      clients,
      request({
        tools: [
          {
            name: 'lookup_order',
            description: 'Finds an order',
            parameters: { type: 'object', properties: { orderId: { type: 'string' } } },
          },
          {
            name: 'check_stock',
            description: 'Checks stock',
            parameters: { type: 'object', properties: { sku: { type: 'string' } } },
          },
        ],
      }),
      (d) => deltas.push(d),
    );

    expect(result.finishReason).toBe('tool_calls');
    expect(result.content).toBe('');
    expect(deltas).toEqual([]);
    expect(result.toolCalls).toEqual([
      {
        id: expect.stringMatching(/^call_peer\d+_0$/),
        name: 'lookup_order',
        arguments: JSON.stringify(orderArgs),
      },
      {
        id: expect.stringMatching(/^call_peer\d+_1$/),
        name: 'check_stock',
        arguments: JSON.stringify(stockArgs),
      },
    ]);
    expect(result.toolCalls.map((c) => JSON.parse(c.arguments) as unknown)).toEqual([orderArgs, stockArgs]);
    expect(result.timings.firstTokenMs).toEqual(expect.any(Number));
  });

  it('reports usage from the final usage chunk, and zero when the provider sends none', async () => {
    peer.script([
      { content: 'Sure.', usage: { promptTokens: 1234, completionTokens: 56 } },
      { content: 'Sure.', omitUsageChunk: true },
    ]);
    expect((await streamChat(clients, request())).usage).toEqual({
      promptTokens: 1234,
      completionTokens: 56,
    });
    expect((await streamChat(clients, request())).usage).toEqual({ promptTokens: 0, completionTokens: 0 });
  });

  it('maps system, user, assistant tool calls and tool results to the wire format, and tools to functions', async () => {
    peer.script([{ content: 'It shipped.' }]);
    await streamChat(
      clients,
      request({
        messages: [
          { role: 'system', content: 'You are the Acme order line.' },
          { role: 'user', content: 'Where is order A-1001?' },
          {
            role: 'assistant',
            content: null,
            toolCalls: [{ id: 'call_1', name: 'lookup_order', arguments: '{"orderId":"A-1001"}' }],
          },
          { role: 'tool', content: '{"status":"shipped"}', toolCallId: 'call_1' },
          { role: 'assistant', content: 'It shipped. Anything else?' },
          { role: 'user', content: 'No thanks.' },
        ],
        tools: [
          {
            name: 'lookup_order',
            description: 'Finds an order by id',
            parameters: {
              type: 'object',
              properties: { orderId: { type: 'string' } },
              required: ['orderId'],
            },
          },
        ],
      }),
    );

    const sent = peer.requests[0]!;
    expect(sent.messages).toEqual([
      { role: 'system', content: 'You are the Acme order line.' },
      { role: 'user', content: 'Where is order A-1001?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_1',
            type: 'function',
            function: { name: 'lookup_order', arguments: '{"orderId":"A-1001"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"status":"shipped"}' },
      { role: 'assistant', content: 'It shipped. Anything else?' },
      { role: 'user', content: 'No thanks.' },
    ]);
    expect(sent.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'lookup_order',
          description: 'Finds an order by id',
          parameters: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] },
        },
      },
    ]);
  });

  it('refuses a tool message without toolCallId before calling the provider', async () => {
    const err = await failureOf(
      streamChat(clients, request({ messages: [{ role: 'tool', content: '{}' }] })),
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'LlmRequestInvalid', nonRetryable: true });
    expect(peer.requests).toHaveLength(0);
  });

  it('turns a 401 into a non-retryable LlmRequestRejected carrying the status and provider message', async () => {
    const err = await failureOf(
      streamChat(clients, request({ settings: { ...settings, apiKeyRef: 'stale' } })),
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure.type).toBe('LlmRequestRejected');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/401.*Incorrect API key provided/);
    expect(failure.message).not.toContain('sk-revoked-key-9876543210');
    expect(failure.details?.[0]).toMatchObject({ status: 401, code: 'invalid_api_key' });
  });

  it('turns a 400 (and 404) into a non-retryable LlmRequestRejected', async () => {
    peer.script([
      { status: 400, message: "Invalid value for 'temperature'" },
      { status: 404, message: 'The model `gpt-nope` does not exist' },
    ]);
    for (const status of [400, 404]) {
      const err = await failureOf(streamChat(clients, request()));
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'LlmRequestRejected', nonRetryable: true });
      expect((err as ApplicationFailure).details?.[0]).toMatchObject({ status });
    }
  });

  it.each([429, 500])(
    'leaves a %i as a plain, retryable error and does not retry inside the SDK',
    async (status) => {
      peer.script([{ status, message: status === 429 ? 'Rate limit reached' : 'The server had an error' }]);
      peer.script([{ content: 'never reached' }]);
      const err = await failureOf(streamChat(clients, request()));
      expect(err).not.toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ status });
      // maxRetries: 0 — one request reached the provider; Temporal owns the retry.
      expect(peer.requests).toHaveLength(1);
      expect(peer.remaining()).toBe(1);
      expect((await streamChat(clients, request())).content).toBe('never reached');
    },
  );

  it('leaves a connection dropped mid-stream as a plain, retryable error', async () => {
    peer.script([{ content: 'This reply is cut off halfway through', destroyAfterChunks: 4 }]);
    const deltas: string[] = [];
    const err = await failureOf(streamChat(clients, request(), (d) => deltas.push(d)));
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect(deltas.length).toBeGreaterThan(0);
  });

  it('leaves a refused connection (nothing listening) as a plain, retryable error', async () => {
    const nowhere = createLlmClients({
      defaultApiKey: API_KEY,
      defaultBaseUrl: 'http://127.0.0.1:1/v1',
      keys: {},
    });
    const err = await failureOf(streamChat(nowhere, request()));
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect(err.constructor.name).toBe('APIConnectionError');
  });

  it('stops when its AbortSignal fires', async () => {
    peer.script([{ content: 'a long reply '.repeat(40), chunkDelayMs: 10 }]);
    const controller = new AbortController();
    const deltas: string[] = [];
    const started = performance.now();
    const err = await failureOf(
      streamChat(
        clients,
        request(),
        (d) => {
          deltas.push(d);
          if (deltas.length === 3) controller.abort();
        },
        controller.signal,
      ),
    );
    // The signal's reason, not a provider failure: a barge-in is not something to retry.
    expect(err.name).toBe('AbortError');
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect(deltas).toHaveLength(3);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('createLlmClients', () => {
  it('throws a non-retryable LlmNotConfigured naming a missing key ref (own keys only)', () => {
    for (const apiKeyRef of ['billing', 'constructor']) {
      let err: unknown;
      try {
        clients.clientFor({ apiKeyRef });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'LlmNotConfigured', nonRetryable: true });
      expect((err as Error).message).toContain(`'${apiKeyRef}'`);
    }
    const noDefault = createLlmClients({ keys: {} });
    expect(() => noDefault.clientFor({ apiKeyRef: 'default' })).toThrow(/OPENAI_API_KEY/);
    expect(noDefault.hasKey('default')).toBe(false);
    expect(clients.hasKey('support')).toBe(true);
    expect(clients.hasKey('toString')).toBe(false);
  });

  it('caches one client per key ref and base URL, with SDK retries off', () => {
    const a = clients.clientFor({ apiKeyRef: 'support' });
    expect(clients.clientFor({ apiKeyRef: 'support' })).toBe(a);
    expect(clients.clientFor({ apiKeyRef: 'support', baseUrl: 'http://127.0.0.1:9/v1' })).not.toBe(a);
    expect(a.maxRetries).toBe(0);
    expect(a.baseURL).toBe(peer.baseUrl);
    expect(clients.clientFor({ apiKeyRef: 'support', baseUrl: 'http://127.0.0.1:9/v1' }).baseURL).toBe(
      'http://127.0.0.1:9/v1',
    );
  });
});

describe('generateReply activity', () => {
  const activities = () => createLlmActivities({ llmClients: clients });

  function activityContext(heartbeat: (details?: unknown) => void, signal: AbortSignal): Context {
    const log = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };
    return new Context(
      { activityType: 'generateReply' } as Info,
      new Promise<never>(() => undefined),
      signal,
      heartbeat,
      undefined,
      log,
      noopMetricMeter,
      {},
    );
  }

  it('returns the whole reply when called outside an activity', async () => {
    peer.script([{ content: 'Hello from the peer.' }]);
    const result = await activities().generateReply(request());
    expect(result.content).toBe('Hello from the peer.');
  });

  it('heartbeats as chunks arrive when running as an activity', async () => {
    peer.script([{ content: 'Heartbeats keep a streaming activity alive.', chunkDelayMs: 2 }]);
    let beats = 0;
    const context = activityContext(() => (beats += 1), new AbortController().signal);
    const result = await asyncLocalStorage.run(context, () => activities().generateReply(request()));
    expect(result.content).toBe('Heartbeats keep a streaming activity alive.');
    expect(beats).toBeGreaterThan(10);
  });

  it("aborts the provider request when the activity's cancellation signal fires", async () => {
    peer.script([{ content: 'x'.repeat(600), chunkDelayMs: 10 }]);
    const controller = new AbortController();
    let beats = 0;
    const context = activityContext(() => {
      beats += 1;
      if (beats === 5) controller.abort(new CancelledFailure('CANCELLED'));
    }, controller.signal);
    const started = performance.now();
    const err = await failureOf(asyncLocalStorage.run(context, () => activities().generateReply(request())));
    // The worker reports a CancelledFailure thrown from a cancelled activity as a cancellation.
    expect(err).toBeInstanceOf(CancelledFailure);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
