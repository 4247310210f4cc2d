/**
 * Chat completions against any OpenAI-compatible endpoint: client resolution per agent (key ref and
 * base URL), a streamed completion assembled into an `LlmResult`, and the provider's failures sorted
 * into the ones Temporal should retry and the ones it must not.
 */
import { performance } from 'node:perf_hooks';
import { ApplicationFailure, asyncLocalStorage } from '@temporalio/activity';
import OpenAI, { APIError } from 'openai';
import type {
  ChatCompletionChunk,
  ChatCompletionFunctionTool,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { ChatMessage, LlmRequest, LlmResult, LlmSettings, ToolCall, ToolSpec } from '../contracts/llm';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';

/** Provider statuses that no retry will fix: a bad key, a missing model, a malformed request. */
const REJECTED_STATUSES = new Set([400, 401, 403, 404, 422]);

export interface LlmClientsDeps {
  /** The key `apiKeyRef: 'default'` resolves to (OPENAI_API_KEY). */
  defaultApiKey?: string;
  /** Used when an agent sets no `baseUrl` (OPENAI_BASE_URL); OpenAI itself when unset. */
  defaultBaseUrl?: string;
  /** Named keys agents refer to by `apiKeyRef` (LLM_API_KEYS). */
  keys: Readonly<Record<string, string>>;
}

export type LlmEndpoint = Pick<LlmSettings, 'apiKeyRef' | 'baseUrl'>;

export interface LlmClients {
  /** The cached client for an agent's key ref and base URL; throws `LlmNotConfigured` without a key. */
  clientFor(settings: LlmEndpoint): OpenAI;
  /** Whether `apiKeyRef` names a key this server holds. */
  hasKey(apiKeyRef: string): boolean;
}

export function createLlmClients(deps: LlmClientsDeps): LlmClients {
  const cache = new Map<string, OpenAI>();

  const keyFor = (apiKeyRef: string): string | undefined => {
    // Own properties only: an agent's `apiKeyRef: 'constructor'` must not find Object's prototype.
    const named = Object.hasOwn(deps.keys, apiKeyRef) ? deps.keys[apiKeyRef] : undefined;
    return (apiKeyRef === 'default' ? (deps.defaultApiKey ?? named) : named) || undefined;
  };

  return {
    hasKey: (apiKeyRef) => keyFor(apiKeyRef) !== undefined,
    clientFor({ apiKeyRef, baseUrl }) {
      const apiKey = keyFor(apiKeyRef);
      if (!apiKey) {
        throw ApplicationFailure.create({
          type: 'LlmNotConfigured',
          message:
            apiKeyRef === 'default'
              ? `No LLM API key for apiKeyRef 'default': set OPENAI_API_KEY (or LLM_API_KEYS default=…)`
              : `No LLM API key for apiKeyRef '${apiKeyRef}': add ${apiKeyRef}=… to LLM_API_KEYS`,
          nonRetryable: true,
          details: [{ apiKeyRef }],
        });
      }
      const baseURL = baseUrl ?? deps.defaultBaseUrl ?? OPENAI_BASE_URL;
      const cacheKey = `${apiKeyRef}\n${baseURL}`;
      let client = cache.get(cacheKey);
      if (!client) {
        client = new OpenAI({
          apiKey,
          // Explicit values so the SDK does not fall back to reading process.env itself.
          baseURL,
          organization: null,
          project: null,
          // Temporal owns retries (with its backoff, attempts and visibility), not the SDK.
          maxRetries: 0,
        });
        cache.set(cacheKey, client);
      }
      return client;
    },
  };
}

/** Our messages in the chat completions wire format. */
export function toOpenAiMessages(messages: readonly ChatMessage[]): ChatCompletionMessageParam[] {
  return messages.map((m, i): ChatCompletionMessageParam => {
    switch (m.role) {
      case 'system':
        return { role: 'system', content: m.content ?? '' };
      case 'user':
        return { role: 'user', content: m.content ?? '' };
      case 'assistant':
        return m.toolCalls?.length
          ? {
              role: 'assistant',
              content: m.content,
              tool_calls: m.toolCalls.map((c) => ({
                id: c.id,
                type: 'function',
                function: { name: c.name, arguments: c.arguments },
              })),
            }
          : { role: 'assistant', content: m.content ?? '' };
      case 'tool':
        if (!m.toolCallId) {
          throw ApplicationFailure.create({
            type: 'LlmRequestInvalid',
            message: `messages[${i}] has role 'tool' but no toolCallId`,
            nonRetryable: true,
          });
        }
        return { role: 'tool', tool_call_id: m.toolCallId, content: m.content ?? '' };
    }
  });
}

export function toOpenAiTools(tools: readonly ToolSpec[]): ChatCompletionFunctionTool[] {
  return tools.map((t) => ({
    type: 'function',
    function: { name: t.name, description: t.description, parameters: t.parameters },
  }));
}

/**
 * Sorts a provider error into Temporal's failure classes: a request the provider refuses (bad key,
 * unknown model, malformed request) fails for good as `LlmRequestRejected`; rate limits, 5xx and
 * network errors come back unchanged as plain errors, which Temporal retries.
 */
export function toLlmFailure(err: unknown): unknown {
  if (!(err instanceof APIError)) return err;
  const status = err.status as number | undefined;
  if (status !== undefined && REJECTED_STATUSES.has(status)) {
    const body = err.error as { message?: unknown } | undefined;
    const providerMessage = typeof body?.message === 'string' ? body.message : err.message;
    return ApplicationFailure.create({
      type: 'LlmRequestRejected',
      message: `LLM provider rejected the request (${status}): ${providerMessage}`,
      nonRetryable: true,
      details: [{ status, providerMessage, code: err.code ?? null, providerType: err.type ?? null }],
      cause: err,
    });
  }
  return err;
}

interface PartialToolCall {
  id?: string;
  name: string;
  arguments: string;
}

interface StreamHooks {
  onDelta?: (text: string) => void;
  /** Any chunk arrived (content, tool-call piece, usage): the stream is alive. */
  onProgress?: () => void;
  signal?: AbortSignal;
}

async function runStream(clients: LlmClients, request: LlmRequest, hooks: StreamHooks): Promise<LlmResult> {
  const { settings } = request;
  const client = clients.clientFor(settings);
  const started = performance.now();
  let firstTokenMs: number | null = null;
  let content = '';
  let finishReason: string | null = null;
  const usage = { promptTokens: 0, completionTokens: 0 };
  const calls = new Map<number, PartialToolCall>();

  const firstToken = () => {
    firstTokenMs ??= Math.round(performance.now() - started);
  };

  try {
    const stream = await client.chat.completions.create(
      {
        model: settings.model,
        temperature: settings.temperature,
        max_tokens: settings.maxTokens,
        messages: toOpenAiMessages(request.messages),
        // OpenAI rejects an empty `tools` array; no tools means leaving the field out.
        ...(request.tools.length > 0 ? { tools: toOpenAiTools(request.tools) } : {}),
        stream: true,
        stream_options: { include_usage: true },
      },
      { signal: hooks.signal },
    );
    for await (const chunk of stream) {
      hooks.onProgress?.();
      if (chunk.usage) {
        usage.promptTokens = chunk.usage.prompt_tokens ?? 0;
        usage.completionTokens = chunk.usage.completion_tokens ?? 0;
      }
      const choice = chunk.choices[0];
      if (!choice) continue; // the usage chunk carries no choices
      const { delta } = choice;
      if (delta.content) {
        firstToken();
        content += delta.content;
        hooks.onDelta?.(delta.content);
      }
      for (const piece of delta.tool_calls ?? []) {
        firstToken();
        mergeToolCallPiece(calls, piece);
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  } catch (err) {
    if (hooks.signal?.aborted) throw abortReason(hooks.signal);
    throw toLlmFailure(err);
  }

  // The SDK ends the iteration quietly when aborted; the caller must still learn it was cut short.
  if (hooks.signal?.aborted) throw abortReason(hooks.signal);
  if (finishReason === null) {
    // A stream cut short may hold half a tool call's arguments: never act on it, try again.
    throw new Error(`LLM stream from ${settings.model} ended without a finish_reason`);
  }
  return {
    content,
    toolCalls: [...calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, call]): ToolCall => ({
        id: call.id ?? `call_${index}`,
        name: call.name,
        arguments: call.arguments,
      })),
    finishReason,
    usage,
    timings: { firstTokenMs, totalMs: Math.round(performance.now() - started) },
  };
}

/**
 * Why a stream stopped early: the signal's reason (an activity's CancelledFailure, or the AbortError
 * of a relay's barge-in), so Temporal and callers see a cancellation, not a provider failure.
 */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The LLM request was aborted', 'AbortError');
}

/** Tool calls stream in pieces keyed by `index`: id and name come first, arguments in fragments. */
function mergeToolCallPiece(
  calls: Map<number, PartialToolCall>,
  piece: ChatCompletionChunk.Choice.Delta.ToolCall,
): void {
  let call = calls.get(piece.index);
  if (!call) {
    call = { name: '', arguments: '' };
    calls.set(piece.index, call);
  }
  call.id ??= piece.id || undefined;
  if (!call.name && piece.function?.name) call.name = piece.function.name;
  call.arguments += piece.function?.arguments ?? '';
}

/**
 * One streamed chat completion. Each content delta goes to `onDelta` as it arrives (the relay speaks
 * them); the result holds the whole reply, its tool calls, usage and timings.
 */
export function streamChat(
  clients: LlmClients,
  request: LlmRequest,
  onDelta?: (text: string) => void,
  signal?: AbortSignal,
): Promise<LlmResult> {
  return runStream(clients, request, { onDelta, signal });
}

export interface LlmActivityDeps {
  llmClients: LlmClients;
}

export function createLlmActivities({ llmClients }: LlmActivityDeps) {
  return {
    /**
     * The model's next reply for a workflow. Streamed from the provider so a stalled stream stops
     * heartbeating (set a heartbeatTimeout) and a cancelled activity aborts the request.
     */
    async generateReply(request: LlmRequest): Promise<LlmResult> {
      // Also callable outside an activity (tests, scripts): then there is nothing to heartbeat.
      const context = asyncLocalStorage.getStore();
      context?.heartbeat();
      return runStream(llmClients, request, {
        onProgress: context ? () => context.heartbeat() : undefined,
        signal: context?.cancellationSignal,
      });
    },
  };
}
