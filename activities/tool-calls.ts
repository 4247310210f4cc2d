/**
 * Calls a tenant's tool endpoint: a signed JSON request (HMAC-SHA256 over timestamp and body, the
 * scheme `verifyToolSignature` checks on the tenant's side) with an idempotency key from the call's
 * business ids, so a retried activity is recognisable as the same request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ApplicationFailure, asyncLocalStorage } from '@temporalio/activity';
import type { ToolDefinition } from '../contracts/agent-definition';

/** How much of a refusing tool's response body travels with the failure (and into the transcript). */
const MAX_RECORDED_BODY_BYTES = 2048;

/** 4xx statuses that mean "not now" rather than "no": retried like a 5xx. */
const RETRYABLE_CLIENT_STATUSES = new Set([408, 425, 429]);

export interface ToolCallInput {
  /** The tool as the workflow knows it; its `signingSecret` is empty there (secrets stay out of history). */
  tool: ToolDefinition;
  args: Record<string, unknown>;
  callId: string;
  tenantId: string;
  /** The model's tool call id, when an llm node asked for the call. */
  toolCallId?: string;
  /** Where the tool is defined, for finding its signing secret. */
  agentId?: string;
  agentVersionId?: string | null;
}

export interface ToolCallResult {
  ok: boolean;
  status: number;
  body: unknown;
  durationMs: number;
}

export interface ToolCallDeps {
  fetchImpl?: typeof fetch;
  /**
   * Finds the signing secret of a tool whose definition reached the workflow without it, so the
   * secret never sits in workflow history (visible in the Temporal Web UI).
   */
  resolveSigningSecret?: (input: ToolCallInput) => Promise<string>;
}

/** The `X-Parley-Signature` value for a body sent at `timestamp` (unix seconds). */
export function signToolRequest(secret: string, timestamp: number | string, rawBody: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
}

/**
 * What a tenant's endpoint does with a request: recompute the HMAC over `${timestamp}.${rawBody}`,
 * compare in constant time with any `v1=` entry of the header, and refuse timestamps further than
 * `toleranceSeconds` from now (replays).
 */
export function verifyToolSignature(
  secret: string,
  timestamp: string | number | undefined,
  rawBody: string,
  header: string | undefined,
  toleranceSeconds = 300,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): boolean {
  if (!header || timestamp === undefined) return false;
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowSeconds - ts) > toleranceSeconds) return false;
  const expected = Buffer.from(signToolRequest(secret, ts, rawBody).slice(3), 'hex');
  return header
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith('v1='))
    .some((part) => {
      const given = Buffer.from(part.slice(3), 'hex');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

function recordedBody(text: string): unknown {
  const bytes = Buffer.byteLength(text);
  if (bytes <= MAX_RECORDED_BODY_BYTES) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return `${Buffer.from(text).subarray(0, MAX_RECORDED_BODY_BYTES).toString('utf8')}… [truncated, ${bytes} bytes]`;
}

function parseBody(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function createToolCallActivities({ fetchImpl = fetch, resolveSigningSecret }: ToolCallDeps = {}) {
  return {
    /**
     * One signed request to `tool.url`. 2xx: the parsed body. 4xx: `ToolRejected`, not retried, with
     * the status and (up to 2 KB of) the body in its details. Timeouts, 5xx, rate limits and network
     * errors: plain errors for Temporal to retry, each attempt re-signed with a fresh timestamp.
     */
    async callTool(input: ToolCallInput): Promise<ToolCallResult> {
      const { tool, args, callId, toolCallId } = input;
      const signingSecret =
        tool.signingSecret || (resolveSigningSecret ? await resolveSigningSecret(input) : '');
      if (!signingSecret) {
        throw ApplicationFailure.create({
          type: 'ToolSecretMissing',
          message: `tool '${tool.name}' has no signing secret`,
          nonRetryable: true,
        });
      }
      const rawBody = JSON.stringify({ tool: tool.name, arguments: args, callId, toolCallId });
      const timestamp = Math.floor(Date.now() / 1000);
      const timeout = AbortSignal.timeout(tool.timeoutMs);
      const cancellation = asyncLocalStorage.getStore()?.cancellationSignal;
      const signal = cancellation ? AbortSignal.any([timeout, cancellation]) : timeout;
      const where = `tool '${tool.name}' (${tool.method} ${tool.url})`;
      const started = performance.now();

      let status: number;
      let text: string;
      try {
        const res = await fetchImpl(tool.url, {
          method: tool.method,
          headers: {
            'Content-Type': 'application/json',
            Accept: 'application/json',
            'X-Parley-Timestamp': String(timestamp),
            'X-Parley-Signature': signToolRequest(signingSecret, timestamp, rawBody),
            'Idempotency-Key': `${callId}:${toolCallId ?? tool.name}`,
          },
          body: rawBody,
          // A redirect would re-send (or drop) a signed body somewhere the agent did not name.
          redirect: 'manual',
          signal,
        });
        status = res.status;
        text = await res.text();
      } catch (err) {
        if (timeout.aborted) {
          throw new Error(`${where} timed out after ${tool.timeoutMs} ms`, { cause: err });
        }
        if (cancellation?.aborted) throw err;
        throw new Error(`${where} failed: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
      }
      const durationMs = Math.round(performance.now() - started);

      if (status >= 200 && status < 300) return { ok: true, status, body: parseBody(text), durationMs };
      if (status >= 500 || RETRYABLE_CLIENT_STATUSES.has(status)) {
        throw new Error(`${where} answered ${status}: ${text.slice(0, 200)}`);
      }
      throw ApplicationFailure.create({
        type: 'ToolRejected',
        message: `${where} rejected the call with ${status}${status < 400 ? ' (redirects are not followed)' : ''}`,
        nonRetryable: true,
        details: [
          { tool: tool.name, status, body: recordedBody(text), durationMs, tenantId: input.tenantId, callId },
        ],
      });
    },
  };
}
