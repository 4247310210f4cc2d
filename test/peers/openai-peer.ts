/**
 * A local OpenAI chat-completions peer over a real socket (port 0), speaking the wire format the
 * SDK expects: Bearer auth with OpenAI's error shape, SSE chunks with content and tool-call deltas
 * split into pieces, a usage chunk, `data: [DONE]`, and plain JSON when `stream` is false.
 * Tests script its replies one request at a time and read back the request bodies it received.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PeerToolCall {
  name: string;
  /** An object is sent as its JSON; a string is sent verbatim (to script malformed arguments). */
  arguments: object | string;
}

export interface PeerReply {
  content?: string;
  toolCalls?: PeerToolCall[];
  /** Reported token counts; estimated from the text (4 characters a token) when unset. */
  usage?: { promptTokens: number; completionTokens: number };
  /** Defaults to 'tool_calls' when the reply has tool calls, else 'stop'. */
  finishReason?: string;
  /** Stream parallel tool calls' pieces round-robin (index 0, 1, 0, 1…) rather than one call after another. */
  interleaveToolCalls?: boolean;
  /** Wait before answering (headers included). */
  delayMs?: number;
  /** Wait between streamed chunks. */
  chunkDelayMs?: number;
  /** Cut the connection after this many streamed chunks (a provider dropping mid-stream). */
  destroyAfterChunks?: number;
  /** Leave out the usage chunk even when asked for it (as some compatible servers do). */
  omitUsageChunk?: boolean;
}

export interface PeerFailure {
  status: number;
  message: string;
  delayMs?: number;
}

export type PeerScriptEntry = PeerReply | PeerFailure | ((body: ChatRequestBody) => PeerReply | PeerFailure);

/** The parsed JSON body of a chat completions request, as the SDK sent it. */
export type ChatRequestBody = {
  model: string;
  messages: { role: string; content?: unknown; tool_calls?: unknown; tool_call_id?: string }[];
  tools?: {
    type: string;
    function: {
      name: string;
      description?: string;
      parameters: { properties: Record<string, Record<string, unknown>>; required?: string[] };
    };
  }[];
  tool_choice?: unknown;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  [key: string]: unknown;
};

export interface OpenAiPeer {
  /** `http://127.0.0.1:<port>/v1`, for `baseURL` / `OPENAI_BASE_URL`. */
  baseUrl: string;
  /** Bodies of the authenticated chat completion requests, in arrival order. */
  requests: ChatRequestBody[];
  /** Queues replies; each request takes the next one. */
  script(entries: PeerScriptEntry[]): void;
  /** Replies not yet taken. */
  remaining(): number;
  close(): Promise<void>;
}

const ERROR_TYPES: Record<number, { type: string; code: string | null }> = {
  400: { type: 'invalid_request_error', code: null },
  401: { type: 'invalid_request_error', code: 'invalid_api_key' },
  403: { type: 'invalid_request_error', code: 'unsupported_country_region_territory' },
  404: { type: 'invalid_request_error', code: 'model_not_found' },
  429: { type: 'requests', code: 'rate_limit_exceeded' },
  500: { type: 'server_error', code: null },
  503: { type: 'server_error', code: null },
};

function sendError(res: ServerResponse, status: number, message: string): void {
  const { type, code } = ERROR_TYPES[status] ?? { type: 'server_error', code: null };
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type, param: null, code } }));
}

function isFailure(entry: PeerReply | PeerFailure): entry is PeerFailure {
  return 'status' in entry;
}

/** Splits text into small pieces (about three characters) the way a model streams tokens. */
function pieces(text: string, size = 3): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

const estimateTokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startOpenAiPeer(options: { apiKey: string }): Promise<OpenAiPeer> {
  const queue: PeerScriptEntry[] = [];
  const requests: ChatRequestBody[] = [];
  let served = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST' || req.url?.split('?')[0] !== '/v1/chat/completions') {
      sendError(res, 404, `Unknown request URL: ${req.method} ${req.url}`);
      return;
    }
    const auth = req.headers.authorization ?? '';
    if (auth !== `Bearer ${options.apiKey}`) {
      const given = auth.replace(/^Bearer\s+/, '');
      const masked = given.length > 8 ? `${given.slice(0, 3)}***${given.slice(-4)}` : '***';
      sendError(
        res,
        401,
        `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      );
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: ChatRequestBody;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequestBody;
    } catch {
      sendError(res, 400, 'We could not parse the JSON body of your request.');
      return;
    }
    requests.push(body);
    served += 1;

    const next = queue.shift();
    if (!next) {
      sendError(
        res,
        500,
        `openai-peer: no scripted reply for request #${served} (model ${body.model}); call peer.script([...]) first`,
      );
      return;
    }
    const entry = typeof next === 'function' ? next(body) : next;
    if (entry.delayMs) await sleep(entry.delayMs);
    if (isFailure(entry)) {
      sendError(res, entry.status, entry.message);
      return;
    }

    const id = `chatcmpl-peer${served}`;
    const created = Math.floor(Date.now() / 1000);
    const content = entry.content ?? '';
    const toolCalls = (entry.toolCalls ?? []).map((call, index) => ({
      id: `call_peer${served}_${index}`,
      name: call.name,
      arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
    }));
    const finishReason = entry.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop');
    const promptText = body.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
    const usage = entry.usage
      ? {
          prompt_tokens: entry.usage.promptTokens,
          completion_tokens: entry.usage.completionTokens,
          total_tokens: entry.usage.promptTokens + entry.usage.completionTokens,
        }
      : (() => {
          const prompt = estimateTokens(promptText);
          const completion = estimateTokens(content + toolCalls.map((c) => c.arguments).join(''));
          return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
        })();

    if (!body.stream) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: content === '' && toolCalls.length > 0 ? null : content,
                refusal: null,
                ...(toolCalls.length > 0
                  ? {
                      tool_calls: toolCalls.map((c) => ({
                        id: c.id,
                        type: 'function',
                        function: { name: c.name, arguments: c.arguments },
                      })),
                    }
                  : {}),
              },
              logprobs: null,
              finish_reason: finishReason,
            },
          ],
          usage,
          system_fingerprint: 'fp_parley_peer',
        }),
      );
      return;
    }

    // Streamed: with include_usage every chunk carries `usage: null` and a last chunk the totals.
    const includeUsage = body.stream_options?.include_usage === true;
    const deltas: { delta: Record<string, unknown>; finish_reason: string | null }[] = [
      { delta: { role: 'assistant', content: '', refusal: null }, finish_reason: null },
    ];
    for (const piece of pieces(content)) deltas.push({ delta: { content: piece }, finish_reason: null });

    const callPieces = toolCalls.map((call, index) => [
      { index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } },
      ...pieces(call.arguments, 5).map((args) => ({ index, function: { arguments: args } })),
    ]);
    if (entry.interleaveToolCalls) {
      const longest = Math.max(0, ...callPieces.map((p) => p.length));
      for (let step = 0; step < longest; step += 1)
        for (const perCall of callPieces) {
          const piece = perCall[step];
          if (piece) deltas.push({ delta: { tool_calls: [piece] }, finish_reason: null });
        }
    } else {
      for (const perCall of callPieces)
        for (const piece of perCall) deltas.push({ delta: { tool_calls: [piece] }, finish_reason: null });
    }
    deltas.push({ delta: {}, finish_reason: finishReason });

    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
    });
    let sent = 0;
    const send = (payload: object) => {
      res.write(`data: ${JSON.stringify(payload)}\n\n`);
      sent += 1;
    };
    for (const { delta, finish_reason } of deltas) {
      if (entry.destroyAfterChunks !== undefined && sent >= entry.destroyAfterChunks) {
        await sleep(20); // let the chunks already written reach the client first
        res.socket?.destroy();
        return;
      }
      send({
        id,
        object: 'chat.completion.chunk',
        created,
        model: body.model,
        system_fingerprint: 'fp_parley_peer',
        choices: [{ index: 0, delta, logprobs: null, finish_reason }],
        ...(includeUsage ? { usage: null } : {}),
      });
      if (entry.chunkDelayMs) await sleep(entry.chunkDelayMs);
    }
    if (includeUsage && !entry.omitUsageChunk) {
      send({
        id,
        object: 'chat.completion.chunk',
        created,
        model: body.model,
        system_fingerprint: 'fp_parley_peer',
        choices: [],
        usage,
      });
    }
    res.end('data: [DONE]\n\n');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, `openai-peer failed: ${String(err)}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    script(entries) {
      queue.push(...entries);
    },
    remaining: () => queue.length,
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
