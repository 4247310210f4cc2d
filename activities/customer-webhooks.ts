/**
 * Delivers Parley events to the webhook endpoints a tenant registered, signed with each
 * endpoint's secret. Delivery is at least once: a failed endpoint fails the activity so Temporal
 * retries it, and the endpoints already served are kept in the heartbeat details so a retry
 * sends only to the rest. Receivers dedupe on `Parley-Event-Id`.
 *
 * Signature: `Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { MikroORM } from '@mikro-orm/postgresql';
import { WebhookEndpoint } from '../db/entities';
import { withTenant } from '../db/tenant-context';
import { openSecret, type EncryptionKeyRing } from '../lib/secret-box';

/** Every event a tenant can subscribe an endpoint to. */
export const WEBHOOK_EVENTS = [
  'call.ended',
  'billing.payment_failed',
  'billing.outbound_suspended',
  'billing.outbound_reinstated',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const SIGNATURE_HEADER = 'Parley-Signature';
export const EVENT_ID_HEADER = 'Parley-Event-Id';
const DEFAULT_TIMEOUT_MS = 10_000;

export interface CustomerWebhookDeps {
  orm: MikroORM;
  encryptionKeys: EncryptionKeyRing;
  fetchImpl?: typeof fetch;
  /** Per-endpoint request timeout (default 10 s). */
  timeoutMs?: number;
}

export interface DeliverWebhookInput {
  tenantId: string;
  event: WebhookEvent;
  /** A business id (e.g. `call.ended:<callId>`): the same event keeps the same id on every retry. */
  eventId: string;
  payload: Record<string, unknown>;
}

export interface DeliverWebhookResult {
  /** Endpoints that have received the event, counting those served by earlier attempts. */
  delivered: number;
  /** Enabled endpoints subscribed to the event. */
  endpoints: number;
}

/** What an attempt carries over from the attempts before it (the activity's heartbeat details). */
export interface DeliveryProgress {
  /** Ids of endpoints that already accepted this event. */
  previouslyDelivered?: readonly string[];
  /** Called with every endpoint id delivered so far, after each success. */
  onProgress?: (delivered: string[]) => void;
  /** The event's `createdAt`; keep it stable across retries so the body is the same each time. */
  createdAt?: Date;
  /** Aborts in-flight requests (the activity's cancellation signal). */
  signal?: AbortSignal;
}

interface HeartbeatDetails {
  delivered: string[];
}

/** One or more endpoints did not accept the event; retryable (Temporal retries the activity). */
export class WebhookDeliveryError extends Error {
  constructor(
    readonly eventId: string,
    readonly failures: { endpointId: string; url: string; reason: string }[],
    endpoints: number,
  ) {
    super(
      `Webhook event ${eventId} failed for ${failures.length} of ${endpoints} endpoint(s): ` +
        failures.map((f) => `${f.endpointId} (${f.url}): ${f.reason}`).join('; '),
    );
    this.name = 'WebhookDeliveryError';
  }
}

export function signWebhookPayload(secret: string, rawBody: string, timestampSeconds: number): string {
  const digest = createHmac('sha256', secret).update(`${timestampSeconds}.${rawBody}`).digest('hex');
  return `t=${timestampSeconds},v1=${digest}`;
}

/**
 * For receivers: true when `header` carries a `v1` signature of `rawBody` under `secret` made
 * within `toleranceSeconds` of now (which bounds replays). Several `v1=` entries are allowed.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  rawBody: string | Buffer,
  toleranceSeconds = 300,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): boolean {
  if (!header) return false;
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    const name = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (name === 't' && /^\d+$/.test(value)) timestamp = Number(value);
    else if (name === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (timestamp === undefined || signatures.length === 0) return false;
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret)
    .update(`${timestamp}.`)
    .update(typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody)
    .digest();
  return signatures.some((s) => timingSafeEqual(Buffer.from(s, 'hex'), expected));
}

function describeError(err: unknown): string {
  // Duck-typed: fetch's errors come from Node's own realm, so `instanceof Error` can miss them.
  if (typeof err !== 'object' || err === null || !('message' in err)) return String(err);
  const { name, message, cause } = err as { name?: string; message: unknown; cause?: unknown };
  // fetch reports network failures as "TypeError: fetch failed" with the reason in `cause`.
  const detail =
    (cause as { code?: unknown; message?: unknown } | undefined)?.code ??
    (cause as { message?: unknown } | undefined)?.message;
  return `${name ?? 'Error'}: ${String(message)}${typeof detail === 'string' && detail ? ` (${detail})` : ''}`;
}

/** Failure messages end up in workflow histories: leave out query strings, which may hold tokens. */
function withoutQuery(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return url;
  }
}

function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // called outside an activity (a script, a test)
  }
}

function readHeartbeat(details: unknown): string[] {
  const delivered = (details as Partial<HeartbeatDetails> | undefined)?.delivered;
  return Array.isArray(delivered) ? delivered.filter((d): d is string => typeof d === 'string') : [];
}

/** The delivery itself, with the attempt-to-attempt progress passed in explicitly. */
export async function deliverWebhookEvent(
  deps: CustomerWebhookDeps,
  input: DeliverWebhookInput,
  progress: DeliveryProgress = {},
): Promise<DeliverWebhookResult> {
  const fetchImpl = deps.fetchImpl ?? fetch;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const endpoints = await withTenant(deps.orm, input.tenantId, (em) =>
    em.find(WebhookEndpoint, { enabled: true }, { orderBy: { createdAt: 'asc' } }),
  );
  const subscribed = endpoints.filter((e) => e.events.includes(input.event));
  const delivered = new Set(progress.previouslyDelivered ?? []);
  const body = JSON.stringify({
    id: input.eventId,
    type: input.event,
    createdAt: (progress.createdAt ?? new Date()).toISOString(),
    data: input.payload,
  });

  const failures: WebhookDeliveryError['failures'] = [];
  await Promise.all(
    subscribed
      .filter((endpoint) => !delivered.has(endpoint.id))
      .map(async (endpoint) => {
        const reason = await postToEndpoint(endpoint, body).catch(describeError);
        if (reason) {
          failures.push({ endpointId: endpoint.id, url: withoutQuery(endpoint.url), reason });
          return;
        }
        delivered.add(endpoint.id);
        progress.onProgress?.([...delivered]);
      }),
  );
  // A cancelled activity reports its cancellation (Temporal's CancelledFailure), not the aborted requests.
  if (progress.signal?.aborted) throw progress.signal.reason;
  if (failures.length > 0) throw new WebhookDeliveryError(input.eventId, failures, subscribed.length);
  return { delivered: subscribed.filter((e) => delivered.has(e.id)).length, endpoints: subscribed.length };

  /** Resolves to undefined when the endpoint accepted the event, else to why not. */
  async function postToEndpoint(endpoint: WebhookEndpoint, rawBody: string): Promise<string | undefined> {
    const secret = openSecret(deps.encryptionKeys, endpoint.secretCiphertext);
    const timestamp = Math.floor(Date.now() / 1000);
    const timeout = AbortSignal.timeout(timeoutMs);
    const response = await fetchImpl(endpoint.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Parley-Webhooks/1',
        [SIGNATURE_HEADER]: signWebhookPayload(secret, rawBody, timestamp),
        [EVENT_ID_HEADER]: input.eventId,
      },
      body: rawBody,
      // A redirect is a failure: following it would send signed events to a URL nobody registered.
      redirect: 'manual',
      signal: progress.signal ? AbortSignal.any([timeout, progress.signal]) : timeout,
    });
    await response.body?.cancel().catch(() => undefined);
    return response.ok ? undefined : `HTTP ${response.status}`;
  }
}

export function createCustomerWebhookActivities(deps: CustomerWebhookDeps) {
  return {
    /**
     * Sends one event to every enabled endpoint of the tenant subscribed to it. Throws a
     * retryable WebhookDeliveryError naming the endpoints that failed; on the retry, endpoints
     * recorded in the heartbeat as delivered are skipped.
     */
    async deliverWebhook(input: DeliverWebhookInput): Promise<DeliverWebhookResult> {
      const activity = currentActivity();
      const previouslyDelivered = readHeartbeat(activity?.info.heartbeatDetails);
      return deliverWebhookEvent(deps, input, {
        previouslyDelivered,
        onProgress: (delivered) => activity?.heartbeat({ delivered } satisfies HeartbeatDetails),
        // The first attempt's schedule time: the same `createdAt` on every retry.
        createdAt: activity ? new Date(activity.info.scheduledTimestampMs) : undefined,
        signal: activity?.cancellationSignal,
      });
    },
  };
}

export type CustomerWebhookActivities = ReturnType<typeof createCustomerWebhookActivities>;
