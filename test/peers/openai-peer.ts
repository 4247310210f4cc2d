/**
 * A local OpenAI peer over a real socket (port 0), speaking the wire format the SDK expects: Bearer
 * auth with OpenAI's error shape; chat completions as SSE chunks with content and tool-call deltas
 * split into pieces, a usage chunk, `data: [DONE]`, and plain JSON when `stream` is false; audio
 * transcriptions (multipart upload → `{"text"}`) and speech (JSON → raw 24 kHz PCM16LE), both
 * answered at once. A scripted reply may be held until the test releases it. Tests script its replies one request at a time and read back what it received.
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
  /** Answer only once this settles (after `delayMs`): a test holds the request in flight, then releases it. */
  hold?: Promise<unknown>;
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

/** The fields of a transcription request, as the SDK's multipart upload carried them. */
export interface TranscriptionRequest {
  model: string;
  language?: string;
  prompt?: string;
  /** Size of the uploaded file. */
  audioBytes: number;
  fileName: string;
  fileType: string;
}

export type TranscriptionScriptEntry = string | ((req: TranscriptionRequest) => string);

/** The JSON body of a speech request. */
export interface SpeechRequestBody {
  model: string;
  input: string;
  voice: string;
  response_format?: string;
  [key: string]: unknown;
}

/** Sample rate of the peer's `pcm` speech, as OpenAI's. */
export const PEER_SPEECH_RATE = 24_000;
/** Length of the peer's synthetic speech per input character. */
export const PEER_SPEECH_MS_PER_CHAR = 60;
/** Frequency of the peer's synthetic speech tone. */
export const PEER_SPEECH_TONE_HZ = 440;

export interface OpenAiPeer {
  /** `http://127.0.0.1:<port>/v1`, for `baseURL` / `OPENAI_BASE_URL`. */
  baseUrl: string;
  /** Bodies of the authenticated chat completion requests, in arrival order. */
  requests: ChatRequestBody[];
  /** Texts for `/audio/transcriptions`, taken one per request; when empty, `defaultTranscription`. */
  transcriptions: TranscriptionScriptEntry[];
  defaultTranscription: string;
  /** Authenticated transcription requests, in arrival order. */
  transcriptionRequests: TranscriptionRequest[];
  /** Authenticated speech requests, in arrival order. */
  speechRequests: SpeechRequestBody[];
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

/** A deterministic stand-in for speech: a tone, PEER_SPEECH_MS_PER_CHAR per input character. */
function speechPcm(input: string): Buffer {
  const samples = Math.round((PEER_SPEECH_RATE * PEER_SPEECH_MS_PER_CHAR * input.length) / 1000);
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) {
    const value = Math.round(8000 * Math.sin((2 * Math.PI * PEER_SPEECH_TONE_HZ * i) / PEER_SPEECH_RATE));
    pcm.writeInt16LE(value, i * 2);
  }
  return pcm;
}

export async function startOpenAiPeer(options: { apiKey: string }): Promise<OpenAiPeer> {
  const queue: PeerScriptEntry[] = [];
  const requests: ChatRequestBody[] = [];
  const transcriptionRequests: TranscriptionRequest[] = [];
  const speechRequests: SpeechRequestBody[] = [];
  let served = 0;

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  function authorized(req: IncomingMessage, res: ServerResponse): boolean {
    const auth = req.headers.authorization ?? '';
    if (auth === `Bearer ${options.apiKey}`) return true;
    const given = auth.replace(/^Bearer\s+/, '');
    const masked = given.length > 8 ? `${given.slice(0, 3)}***${given.slice(-4)}` : '***';
    sendError(
      res,
      401,
      `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    );
    return false;
  }

  async function handleTranscription(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const contentType = req.headers['content-type'] ?? '';
    if (!contentType.startsWith('multipart/form-data')) {
      sendError(res, 400, 'Expected a multipart/form-data body.');
      return;
    }
    // The platform's own multipart parser (undici's), fed the raw body and its boundary.
    let form: FormData;
    try {
      form = await new Response(await readBody(req), { headers: { 'content-type': contentType } }).formData();
    } catch {
      sendError(res, 400, 'We could not parse the multipart body of your request.');
      return;
    }
    const file = form.get('file');
    const model = form.get('model');
    if (!(file instanceof Blob) || typeof model !== 'string') {
      sendError(res, 400, "Missing required parameter: 'file' or 'model'.");
      return;
    }
    const field = (name: string) => {
      const value = form.get(name);
      return typeof value === 'string' ? value : undefined;
    };
    const request: TranscriptionRequest = {
      model,
      language: field('language'),
      prompt: field('prompt'),
      audioBytes: file.size,
      fileName: file instanceof File ? file.name : 'blob',
      fileType: file.type,
    };
    transcriptionRequests.push(request);
    const next = peer.transcriptions.shift() ?? peer.defaultTranscription;
    const text = typeof next === 'function' ? next(request) : next;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ text, usage: { type: 'duration', seconds: Math.ceil(file.size / 16_000) } }));
  }

  async function handleSpeech(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: SpeechRequestBody;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8')) as SpeechRequestBody;
    } catch {
      sendError(res, 400, 'We could not parse the JSON body of your request.');
      return;
    }
    if (typeof body.model !== 'string' || typeof body.input !== 'string' || typeof body.voice !== 'string') {
      sendError(res, 400, "Missing required parameter: 'model', 'input' or 'voice'.");
      return;
    }
    const format = body.response_format ?? 'mp3';
    if (format !== 'pcm') {
      sendError(res, 400, `openai-peer: only response_format 'pcm' is implemented (got '${format}')`);
      return;
    }
    speechRequests.push(body);
    const pcm = speechPcm(body.input);
    res.writeHead(200, { 'Content-Type': 'audio/pcm', 'Content-Length': pcm.length });
    res.end(pcm);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url?.split('?')[0];
    const route =
      req.method !== 'POST'
        ? undefined
        : path === '/v1/chat/completions'
          ? handleChat
          : path === '/v1/audio/transcriptions'
            ? handleTranscription
            : path === '/v1/audio/speech'
              ? handleSpeech
              : undefined;
    if (!route) {
      sendError(res, 404, `Unknown request URL: ${req.method} ${req.url}`);
      return;
    }
    if (!authorized(req, res)) return;
    await route(req, res);
  }

  async function handleChat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: ChatRequestBody;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8')) as ChatRequestBody;
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
    if (entry.hold) await entry.hold.catch(() => undefined);

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

  const peer: OpenAiPeer = {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    transcriptions: [],
    defaultTranscription: '',
    transcriptionRequests,
    speechRequests,
    script(entries) {
      queue.push(...entries);
    },
    remaining: () => queue.length,
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
  return peer;
}
