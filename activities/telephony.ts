/**
 * Live-call control through Twilio's REST API: transfer a caller to a human, hang up. Both are
 * safe to retry: a transfer re-sends the same TwiML, and a hang-up of a call that has already
 * ended counts as done.
 */
import { ApplicationFailure } from '@temporalio/activity';
import twilio from 'twilio';
import type TwilioRequestClient from 'twilio/lib/base/RequestClient';

export interface TwilioSettings {
  accountSid: string;
  authToken: string;
  /** Where requests go instead of https://*.twilio.com; only for a local peer in tests and dev. */
  apiBaseUrl?: string;
  /** Per-request timeout; the SDK's default is 30 s, longer than a transfer should wait. */
  timeoutMs?: number;
}

/** Points any `https://<product>.twilio.com/...` URI at `base`, keeping path and query. */
export function rewriteTwilioUri(uri: string, base: URL): string {
  const target = new URL(uri);
  if (target.hostname !== 'twilio.com' && !target.hostname.endsWith('.twilio.com')) return uri;
  const prefix = base.pathname.replace(/\/+$/, '');
  return `${base.origin}${prefix}${target.pathname}${target.search}`;
}

/**
 * twilio-node has every host hard-coded; its documented extension point is the `httpClient`, so
 * this one rewrites each request's URI before the stock client sends it.
 */
class RedirectingRequestClient extends twilio.RequestClient {
  constructor(
    private readonly base: URL,
    options: TwilioRequestClient.RequestClientOptions,
  ) {
    super(options);
  }

  override request<TData>(opts: TwilioRequestClient.RequestOptions<TData>) {
    return super.request<TData>({ ...opts, uri: rewriteTwilioUri(opts.uri, this.base) });
  }
}

export function createTwilioClient(settings: TwilioSettings): twilio.Twilio {
  const timeout = settings.timeoutMs ?? 15_000;
  const httpClient = settings.apiBaseUrl
    ? new RedirectingRequestClient(new URL(settings.apiBaseUrl), { timeout })
    : new twilio.RequestClient({ timeout });
  // `env: {}` keeps the SDK from filling in credentials from process.env behind our back.
  return twilio(settings.accountSid, settings.authToken, { httpClient, env: {} });
}

export interface TelephonyDeps {
  /** Absent when TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are not configured. */
  twilio?: twilio.Twilio;
}

export interface TransferCallInput {
  callSid: string;
  /** E.164 number (or SIP URI) the caller is bridged to. */
  to: string;
  /** Spoken to the caller before dialling. */
  message?: string;
  /** Number shown to the person answering; Twilio's default is the caller's own number. */
  callerId?: string;
}

const CALL_SID = /^CA[0-9a-fA-F]{32}$/;
/** Twilio's "Call is not in-progress. Cannot redirect." — the call has already ended. */
const CALL_NOT_IN_PROGRESS = 21220;
/** Twilio's "The requested resource … was not found". */
const RESOURCE_NOT_FOUND = 20404;

interface TwilioHttpError extends Error {
  status: number;
  code?: number;
  moreInfo?: string;
}

/** RestException (legacy error bodies) and TwilioServiceException (RFC 9457) both carry these. */
export function asTwilioHttpError(err: unknown): TwilioHttpError | undefined {
  if (err instanceof twilio.RestException) return err;
  if (err instanceof Error && typeof (err as Partial<TwilioHttpError>).status === 'number') {
    return err as TwilioHttpError;
  }
  return undefined;
}

function requireClient(deps: TelephonyDeps, operation: string): twilio.Twilio {
  if (!deps.twilio) {
    throw ApplicationFailure.create({
      type: 'TelephonyNotConfigured',
      message: `Cannot ${operation}: Twilio is not configured (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)`,
      nonRetryable: true,
    });
  }
  return deps.twilio;
}

function requireCallSid(callSid: string): void {
  // The SID becomes part of the request path: refuse anything that is not one.
  if (!CALL_SID.test(callSid)) {
    throw ApplicationFailure.create({
      type: 'InvalidCallSid',
      message: `'${callSid}' is not a Twilio Call SID (CA + 32 hex)`,
      nonRetryable: true,
    });
  }
}

/**
 * 4xx (except 408/429) will fail the same way on every attempt: non-retryable, with Twilio's code.
 * 5xx, 408, 429 and network errors are rethrown as they are, for Temporal to retry.
 */
function classifyTwilioFailure(operation: string, callSid: string, err: unknown): never {
  const http = asTwilioHttpError(err);
  if (http && http.status >= 400 && http.status < 500 && http.status !== 408 && http.status !== 429) {
    throw ApplicationFailure.create({
      type: 'TwilioRequestRejected',
      message: `Twilio refused to ${operation} call ${callSid}: HTTP ${http.status}, code ${http.code ?? 'none'}: ${http.message}`,
      nonRetryable: true,
      details: [{ status: http.status, code: http.code ?? null, moreInfo: http.moreInfo ?? null }],
      cause: http,
    });
  }
  throw err;
}

export function createTelephonyActivities(deps: TelephonyDeps) {
  return {
    /** Says `message` (if any), then bridges the live call to `to`. */
    async transferCall(input: TransferCallInput): Promise<{ status: string }> {
      const client = requireClient(deps, 'transfer a call');
      requireCallSid(input.callSid);
      if (!input.to.trim()) {
        throw ApplicationFailure.create({
          type: 'InvalidTransferTarget',
          message: 'transferCall needs a number to dial',
          nonRetryable: true,
        });
      }
      const response = new twilio.twiml.VoiceResponse();
      if (input.message) response.say(input.message);
      response.dial(input.callerId ? { callerId: input.callerId } : {}, input.to.trim());
      try {
        const call = await client.calls(input.callSid).update({ twiml: response.toString() });
        return { status: call.status };
      } catch (err) {
        classifyTwilioFailure('transfer', input.callSid, err);
      }
    },

    /**
     * Twilio's view of a call, for when its callbacks went missing: status, who answered, duration.
     * A call Twilio does not know is reported as `unknown`.
     */
    async fetchCallStatus(input: {
      callSid: string;
    }): Promise<{ status: string; answeredBy: string | null; durationSeconds: number | null }> {
      const client = requireClient(deps, 'look up a call');
      requireCallSid(input.callSid);
      try {
        const call = await client.calls(input.callSid).fetch();
        return {
          status: call.status,
          answeredBy: call.answeredBy ?? null,
          durationSeconds: call.duration ? Number(call.duration) : null,
        };
      } catch (err) {
        const http = asTwilioHttpError(err);
        if (http && (http.status === 404 || http.code === RESOURCE_NOT_FOUND)) {
          return { status: 'unknown', answeredBy: null, durationSeconds: null };
        }
        classifyTwilioFailure('look up', input.callSid, err);
      }
    },

    /** Ends the call. A call Twilio no longer has, or that has already ended, counts as hung up. */
    async hangUpCall(input: { callSid: string }): Promise<{ status: string }> {
      const client = requireClient(deps, 'hang up a call');
      requireCallSid(input.callSid);
      try {
        const call = await client.calls(input.callSid).update({ status: 'completed' });
        return { status: call.status };
      } catch (err) {
        const http = asTwilioHttpError(err);
        if (
          http &&
          (http.status === 404 || http.code === RESOURCE_NOT_FOUND || http.code === CALL_NOT_IN_PROGRESS)
        ) {
          return { status: 'completed' };
        }
        classifyTwilioFailure('hang up', input.callSid, err);
      }
    },
  };
}

export type TelephonyActivities = ReturnType<typeof createTelephonyActivities>;
