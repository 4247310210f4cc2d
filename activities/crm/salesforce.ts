/**
 * Salesforce as Parley's CRM, over jsforce 3 and the REST API v62.0: contacts found by Phone or
 * MobilePhone, calls logged as completed call Tasks keyed by the external id field Parley_Call_Id__c
 * (so a retried log finds the Task it already made), and contacts imported in keyset pages (ORDER BY
 * Id, resumable from the last Id days later). Wire facts: /work/shared/protocols.md, "Salesforce".
 *
 * Sessions: an expired access token (401 INVALID_SESSION_ID) makes jsforce refresh it with the
 * refresh token (`POST <loginUrl>/services/oauth2/token`, grant_type=refresh_token) and send the
 * request again, once; the new token goes to `onTokenRefreshed` so the caller can store it. jsforce
 * alone would refresh again on every further 401 (an endless loop when the org refuses the session),
 * so the refresh function here allows one refresh per adapter call.
 *
 * jsforce's errors carry Salesforce's errorCode and message but not the HTTP status or headers, and
 * its transport retries 429/5xx on its own, ignoring Retry-After. The transport is therefore replaced
 * by one that never retries (Temporal owns retries) and remembers, per adapter call, the last response
 * it saw; `toCrmError` classifies failures from that.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  Connection,
  type Callback,
  type HttpRequest,
  type HttpRequestOptions,
  type HttpResponse,
  type Record as SalesforceRecord,
  type StreamPromise,
  type TokenResponse,
} from 'jsforce';
import Transport from 'jsforce/lib/transport';
import {
  CrmAuthError,
  CrmRateLimitedError,
  CrmValidationError,
  type CrmAdapter,
  type CrmCallLog,
  type CrmContactInput,
  type CrmImportPage,
  type CrmImportSource,
  type CrmImportedContact,
} from './types';

export const SALESFORCE_API_VERSION = '62.0';
/** The Text(64), External ID, Unique field on Task that holds Parley's call id. */
export const CALL_ID_FIELD = 'Parley_Call_Id__c';
const DEFAULT_LOGIN_URL = 'https://login.salesforce.com';
const DEFAULT_RETRY_AFTER_MS = 60_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** One REST query batch holds at most 2000 records: a page is one request. */
const MAX_PAGE_SIZE = 2000;
const SUBJECT_MAX = 255;
const DESCRIPTION_MAX = 32_000;
const MESSAGE_MAX = 1000;

export interface SalesforceCrmOptions {
  /** The org's My Domain URL, e.g. https://acme.my.salesforce.com. */
  instanceUrl: string;
  accessToken: string;
  refreshToken?: string;
  /** The connected app's consumer key and secret (needed to refresh the access token). */
  clientId?: string;
  clientSecret?: string;
  /** OAuth host, default https://login.salesforce.com (https://test.salesforce.com for sandboxes). */
  loginUrl?: string;
  /**
   * Receives each new access token. It is awaited before the adapter call that refreshed the token
   * returns; if it rejects, so does that call (after Salesforce did the work: logCall is idempotent).
   */
  /** `refreshToken` is the one to keep using: a new one when Salesforce rotated it, else the same. */
  onTokenRefreshed?: (accessToken: string, refreshToken?: string) => void | Promise<void>;
  /** Give up on a request Salesforce has not answered within this long (default 60 s). */
  requestTimeoutMs?: number;
}

/** What one adapter call saw on the wire, for error classification and the once-only refresh. */
interface CallTrace {
  /** The last HTTP response (REST or OAuth) of this call; cleared when a request fails on the network. */
  response?: { statusCode: number; headers: Record<string, string> };
  /** This call has already refreshed the session once. */
  refreshed: boolean;
  refreshFailure?: RefreshFailure;
  /** onTokenRefreshed calls to await before the adapter call returns. */
  tokenStores: Promise<void>[];
}

interface RefreshFailure {
  /** The tenant must reconnect (as opposed to a refresh that failed on the network or a 5xx). */
  final: boolean;
  reason: string;
}

const calls = new AsyncLocalStorage<CallTrace>();
/** Refresh errors by identity: jsforce rethrows the same error to calls that waited for the refresh. */
const refreshFailures = new WeakMap<object, RefreshFailure>();
/** Errors toCrmError has already produced, passed through as they are. */
const classified = new WeakSet<Error>();

/**
 * jsforce's fetch transport without its own retries (429 and 5xx would be retried five times with a
 * fixed backoff, ignoring Retry-After), with a finite timeout, and remembering each response's status
 * and headers on the current call's trace.
 */
class TracedTransport extends Transport {
  constructor(private readonly timeoutMs: number) {
    super();
  }

  override httpRequest(request: HttpRequest, options: HttpRequestOptions = {}): StreamPromise<HttpResponse> {
    const trace = calls.getStore();
    const pending = super.httpRequest(request, {
      ...options,
      timeout: this.timeoutMs,
      retry: { ...options.retry, maxRetries: 0, methods: [] },
    });
    // Registered before jsforce awaits the response, so the trace is current when jsforce throws.
    pending.then(
      ({ statusCode, headers }) => {
        if (trace) trace.response = { statusCode, headers };
      },
      () => {
        if (trace) trace.response = undefined;
      },
    );
    return pending;
  }
}

/** A Salesforce error as jsforce's HttpApiError carries it. */
interface SalesforceApiError {
  errorCode: string;
  message: string;
}

function asApiError(err: unknown): SalesforceApiError | undefined {
  if (!(err instanceof Error)) return undefined;
  const { errorCode, data } = err as Error & { errorCode?: unknown; data?: unknown };
  if (typeof errorCode !== 'string') return undefined;
  if (errorCode === 'MULTIPLE_API_ERRORS' && Array.isArray(data)) {
    const errors = data as Partial<SalesforceApiError>[];
    return {
      errorCode: errors.find((e) => typeof e.errorCode === 'string')?.errorCode ?? errorCode,
      message: errors.map((e) => `${e.errorCode ?? 'ERROR'}: ${e.message ?? ''}`).join('; '),
    };
  }
  return { errorCode, message: err.message };
}

/** A SOQL string literal's content: backslash, quote and control characters escaped. */
export function soqlString(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/'/g, "\\'")
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t');
}

/** Retry-After in seconds or as an HTTP date; Salesforce's daily limit sends none (wait a minute). */
function retryAfterMs(headers: Record<string, string> | undefined): number {
  const value = headers?.['retry-after']?.trim();
  if (value) {
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
    const at = Date.parse(value);
    if (!Number.isNaN(at)) return Math.max(0, at - Date.now());
  }
  return DEFAULT_RETRY_AFTER_MS;
}

/**
 * The tenant's import filter, checked to be one bare condition: paging (ORDER BY Id, LIMIT, the
 * cursor) is Parley's, and an unbalanced parenthesis could escape the `(…) AND Id > cursor` wrapper.
 */
function checkImportFilter(where: string): string {
  const refuse = (why: string): never => {
    throw new CrmValidationError(
      'salesforce',
      400,
      `The import filter must be a plain SOQL WHERE condition on Contact: ${why}`,
    );
  };
  const clause = where.trim();
  if (clause.includes(';')) refuse('";" is not allowed');
  const literals = /'(?:\\.|[^'\\])*'/g;
  const outside = clause.replace(literals, "''");
  if (outside.replace(/''/g, '').includes("'")) refuse('a string literal is not closed');
  if (/\bLIMIT\b|\bOFFSET\b|\bORDER\s+BY\b/i.test(outside)) {
    refuse('leave out LIMIT, OFFSET and ORDER BY (Parley pages through the contacts itself)');
  }
  let depth = 0;
  for (const char of outside) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (depth < 0) break;
  }
  if (depth !== 0) refuse('parentheses do not balance');
  return clause;
}

function activityDate(endedAt: string): string {
  const ended = new Date(endedAt);
  if (Number.isNaN(ended.getTime())) throw new RangeError(`call log endedAt is not a date: ${endedAt}`);
  return ended.toISOString().slice(0, 10);
}

function callDescription(log: CrmCallLog): string {
  const facts = [
    `Status: ${log.status}`,
    `Disposition: ${log.disposition}`,
    log.agentName ? `Agent: ${log.agentName}` : undefined,
    `Direction: ${log.direction}`,
    `Contact number: ${log.contactPhone}`,
    `Parley number: ${log.parleyNumber}`,
    `Started: ${log.startedAt}`,
    `Ended: ${log.endedAt}`,
    log.callUrl ? `Call in Parley: ${log.callUrl}` : undefined,
  ].filter((line): line is string => line !== undefined);
  const summary = log.summary?.trim();
  const text = summary ? `${summary}\n\n${facts.join('\n')}` : facts.join('\n');
  return text.slice(0, DESCRIPTION_MAX);
}

/** Salesforce returns null for empty fields. */
function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export class SalesforceCrm implements CrmAdapter {
  readonly provider = 'salesforce' as const;
  private readonly conn: Connection;
  private readonly timeoutMs: number;
  /** Every access token this adapter has held, so none can leak into an error message. */
  private readonly tokens = new Set<string>();

  constructor(private readonly options: SalesforceCrmOptions) {
    if (options.refreshToken && !options.clientId) {
      throw new Error('SalesforceCrm: refreshing the access token needs the connected app clientId');
    }
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const loginUrl = (options.loginUrl ?? DEFAULT_LOGIN_URL).replace(/\/+$/, '');
    this.conn = new Connection({
      instanceUrl: options.instanceUrl.replace(/\/+$/, ''),
      accessToken: options.accessToken,
      refreshToken: options.refreshToken,
      loginUrl,
      oauth2: { clientId: options.clientId, clientSecret: options.clientSecret, loginUrl },
      version: SALESFORCE_API_VERSION,
      refreshFn: (conn, callback) => this.refreshSession(conn, callback),
    });
    // jsforce exposes its transports as fields; both the REST and the OAuth one are replaced.
    this.conn._transport = new TracedTransport(this.timeoutMs);
    this.conn.oauth2._transport = new TracedTransport(this.timeoutMs);
    this.tokens.add(options.accessToken);
    this.conn.on('refresh', (accessToken: string) => this.tokenRefreshed(accessToken));
  }

  async testConnection(): Promise<{ account: string }> {
    return this.run('test the connection', async () => {
      const org = await this.conn.query<SalesforceRecord>('SELECT Id, Name FROM Organization LIMIT 1');
      const name = text(org.records[0]?.Name);
      const task = await this.conn.sobject('Task').describe();
      const field = task.fields.find((f) => f.name.toLowerCase() === CALL_ID_FIELD.toLowerCase());
      if (!field?.externalId) {
        throw new CrmValidationError(
          'salesforce',
          400,
          `Task has no external id field ${CALL_ID_FIELD}: create a Text(64) field, External ID, Unique, on Task`,
        );
      }
      return { account: name ? `Salesforce org ${name}` : 'Salesforce org' };
    });
  }

  async findContactByPhone(phone: string): Promise<{ id: string } | null> {
    return this.run('find the contact', async () => {
      const value = soqlString(phone);
      const result = await this.conn.query<SalesforceRecord>(
        `SELECT Id, Name FROM Contact WHERE Phone = '${value}' OR MobilePhone = '${value}' LIMIT 1`,
      );
      const id = text(result.records[0]?.Id);
      return id ? { id } : null;
    });
  }

  async createContact(input: CrmContactInput): Promise<{ id: string }> {
    return this.run('create the contact', async () => {
      const result = await this.conn.sobject('Contact').create({
        Phone: text(input.phone),
        FirstName: text(input.firstName?.trim()),
        // Salesforce requires LastName; the number is the one name a caller always has.
        LastName: text(input.lastName?.trim()) ?? text(input.phone.trim()),
        Email: text(input.email?.trim()),
      });
      if (!result.success) {
        const [first] = result.errors;
        throw new CrmValidationError(
          'salesforce',
          400,
          first?.message ?? 'Contact not created',
          first?.errorCode,
        );
      }
      return { id: result.id };
    });
  }

  async logCall(log: CrmCallLog, contactId: string | null): Promise<{ id: string; created: boolean }> {
    const record = {
      // Encoded here because jsforce puts the value into the URL path as is.
      [CALL_ID_FIELD]: encodeURIComponent(log.callId),
      Subject: `Call: ${log.disposition}`.slice(0, SUBJECT_MAX),
      WhoId: contactId ?? undefined,
      CallDurationInSeconds: Math.max(0, Math.round(log.durationSeconds)),
      CallType: log.direction === 'inbound' ? 'Inbound' : 'Outbound',
      CallDisposition: log.disposition.slice(0, SUBJECT_MAX),
      Description: callDescription(log),
      TaskSubtype: 'Call',
      Status: 'Completed',
      ActivityDate: activityDate(log.endedAt),
    };
    return this.run('log the call', async (trace) => {
      // TaskSubtype can be set only on create, so a Task that exists is returned, not updated.
      const existing = await this.findTaskId(log.callId);
      if (existing) return { id: existing, created: false };
      try {
        // PATCH …/sobjects/Task/Parley_Call_Id__c/<callId>: 201 created, 200 updated (v46+), 204 updated.
        const result = await this.conn.sobject('Task').upsert(record, CALL_ID_FIELD);
        if (!result.success) {
          const [first] = result.errors;
          throw new CrmValidationError(
            'salesforce',
            400,
            first?.message ?? 'Task not saved',
            first?.errorCode,
          );
        }
        const id = result.id ?? (await this.findTaskId(log.callId));
        if (!id)
          throw new Error(`Salesforce upserted the call's Task but returned no id (call ${log.callId})`);
        return { id, created: result.created ?? false };
      } catch (err) {
        const failure = this.toCrmError(err, trace, 'log the call');
        // Another attempt created the Task between our query and our upsert, which then became an
        // update that sets TaskSubtype: the Task exists, and it is the one to return.
        if (
          failure instanceof CrmValidationError &&
          failure.providerCode === 'INVALID_FIELD_FOR_INSERT_UPDATE'
        ) {
          const id = await this.findTaskId(log.callId);
          if (id) return { id, created: false };
        }
        throw failure;
      }
    });
  }

  async listContacts(
    source: CrmImportSource,
    cursor: string | undefined,
    pageSize: number,
  ): Promise<CrmImportPage> {
    if (source.kind !== 'salesforce_soql') {
      throw new CrmValidationError(
        'salesforce',
        400,
        'A HubSpot list cannot be imported from Salesforce: give a SOQL WHERE condition on Contact',
      );
    }
    if (!Number.isInteger(pageSize) || pageSize < 1)
      throw new RangeError(`pageSize must be a positive integer`);
    if (cursor !== undefined && !/^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/.test(cursor)) {
      throw new CrmValidationError('salesforce', 400, 'The import cursor is not a Salesforce record id');
    }
    const where = checkImportFilter(source.where);
    const size = Math.min(pageSize, MAX_PAGE_SIZE);
    const conditions = [where ? `(${where})` : undefined, cursor ? `Id > '${cursor}'` : undefined].filter(
      (condition): condition is string => condition !== undefined,
    );
    const soql =
      'SELECT Id, FirstName, LastName, Phone, MobilePhone, Email FROM Contact' +
      (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '') +
      ` ORDER BY Id LIMIT ${size}`;
    return this.run('list contacts', async () => {
      const result = await this.conn.query<SalesforceRecord>(soql);
      const contacts = result.records.map((r): CrmImportedContact => ({
        externalId: String(r.Id),
        phone: text(r.Phone) ?? text(r.MobilePhone),
        firstName: text(r.FirstName),
        lastName: text(r.LastName),
        email: text(r.Email),
      }));
      const last = contacts.at(-1);
      return contacts.length === size && last ? { contacts, nextCursor: last.externalId } : { contacts };
    });
  }

  private async findTaskId(callId: string): Promise<string | undefined> {
    const result = await this.conn.query<SalesforceRecord>(
      `SELECT Id FROM Task WHERE ${CALL_ID_FIELD} = '${soqlString(callId)}' LIMIT 1`,
    );
    return text(result.records[0]?.Id);
  }

  /** Runs one adapter call with its own trace; every failure leaves as a classified error. */
  private async run<T>(action: string, work: (trace: CallTrace) => Promise<T>): Promise<T> {
    const trace: CallTrace = { refreshed: false, tokenStores: [] };
    let result: T;
    try {
      result = await calls.run(trace, () => work(trace));
    } catch (err) {
      await Promise.allSettled(trace.tokenStores);
      throw this.toCrmError(err, trace, action);
    }
    await Promise.all(trace.tokenStores);
    return result;
  }

  /** jsforce's refresh function: one refresh per adapter call, through the OAuth token endpoint. */
  private refreshSession(conn: Connection, callback: Callback<string, TokenResponse>): void {
    const trace = calls.getStore();
    this.requestNewToken(conn, trace).then(
      (token) => {
        callback(undefined, token.access_token, token);
      },
      (err: Error) => {
        callback(err);
      },
    );
  }

  private async requestNewToken(conn: Connection, trace: CallTrace | undefined): Promise<TokenResponse> {
    const fail = (error: Error, failure: RefreshFailure): Error => {
      if (trace) trace.refreshFailure = failure;
      refreshFailures.set(error, failure);
      return error;
    };
    if (trace?.refreshed) {
      const reason = 'Salesforce rejected the session again right after a token refresh (INVALID_SESSION_ID)';
      throw fail(new Error(reason), { final: true, reason });
    }
    if (trace) trace.refreshed = true;
    if (!conn.refreshToken) {
      const reason = 'The Salesforce session expired and no refresh token is stored';
      throw fail(new Error(reason), { final: true, reason });
    }
    try {
      const token = await conn.oauth2.refreshToken(conn.refreshToken);
      conn._establish({
        instanceUrl: token.instance_url,
        accessToken: token.access_token,
        refreshToken: (token as TokenResponse & { refresh_token?: string }).refresh_token,
      });
      return token;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const status = trace?.response?.statusCode;
      // The token endpoint answers 400 invalid_grant (revoked/expired refresh token), invalid_client…
      if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
        throw fail(error, {
          final: true,
          reason: `Salesforce refused the token refresh (${error.name}: ${error.message})`,
        });
      }
      const how = status === undefined ? error.message : `HTTP ${status}`;
      throw fail(error, { final: false, reason: `Salesforce token refresh failed (${how})` });
    }
  }

  private tokenRefreshed(accessToken: string): void {
    this.tokens.add(accessToken);
    const store = this.options.onTokenRefreshed;
    if (!store) return;
    // jsforce has already taken a rotated refresh token (`_establish`), or kept the old one.
    const refreshToken = this.conn.refreshToken ?? undefined;
    const stored = Promise.resolve().then(() => store(accessToken, refreshToken));
    const trace = calls.getStore();
    if (trace) trace.tokenStores.push(stored);
    else stored.catch(() => undefined);
  }

  /** Removes every credential this adapter knows from a text bound for an error message. */
  private redact(message: string): string {
    const secrets = [
      ...this.tokens,
      this.conn.accessToken,
      this.conn.refreshToken,
      this.options.refreshToken,
    ];
    if (this.options.clientSecret) secrets.push(this.options.clientSecret);
    let clean = message;
    for (const secret of secrets) {
      if (secret && secret.length >= 8) clean = clean.split(secret).join('[redacted]');
    }
    return clean.length > MESSAGE_MAX ? `${clean.slice(0, MESSAGE_MAX)}…` : clean;
  }

  /**
   * The one place failures are classified: 429 or REQUEST_LIMIT_EXCEEDED → CrmRateLimitedError; a
   * session refused even after a refresh, or a refused refresh → CrmAuthError; other 3xx/4xx →
   * CrmValidationError; 5xx, network and timeouts → plain errors, which Temporal retries.
   */
  private toCrmError(err: unknown, trace: CallTrace | undefined, action: string): Error {
    if (
      err instanceof CrmRateLimitedError ||
      err instanceof CrmValidationError ||
      err instanceof CrmAuthError ||
      err instanceof RangeError ||
      (err instanceof Error && classified.has(err))
    ) {
      return err;
    }
    let error: Error;
    const refresh =
      trace?.refreshFailure ?? (typeof err === 'object' && err ? refreshFailures.get(err) : undefined);
    const apiError = asApiError(err);
    const response = trace?.response;
    const status = response && response.statusCode >= 300 ? response.statusCode : undefined;
    if (refresh) {
      const reason = this.redact(refresh.reason);
      error = refresh.final
        ? new CrmAuthError('salesforce', `${reason}: reconnect Salesforce`)
        : new Error(`${reason} while trying to ${action}`);
    } else if (!apiError) {
      const cause = err instanceof Error ? err : new Error(String(err));
      error =
        cause.name === 'AbortError'
          ? new Error(`Salesforce did not answer within ${this.timeoutMs} ms (${action})`)
          : new Error(this.redact(`Salesforce request failed (${action}): ${cause.message}`), { cause });
    } else if (status === 429 || apiError.errorCode === 'REQUEST_LIMIT_EXCEEDED') {
      error = new CrmRateLimitedError(
        'salesforce',
        retryAfterMs(response?.headers),
        apiError.errorCode,
        this.redact(`Salesforce rate limit (${status ?? 403} ${apiError.errorCode}): ${apiError.message}`),
      );
    } else if (status === 401 || apiError.errorCode === 'INVALID_SESSION_ID') {
      error = new CrmAuthError(
        'salesforce',
        `Salesforce refused the session (${apiError.errorCode}): reconnect Salesforce`,
      );
    } else if (status === undefined || status >= 500 || status === 408) {
      error = new Error(
        this.redact(
          `Salesforce answered HTTP ${status ?? '(unknown)'} ${apiError.errorCode} (${action}): ${apiError.message}`,
        ),
      );
    } else {
      error = new CrmValidationError('salesforce', status, this.redact(apiError.message), apiError.errorCode);
    }
    classified.add(error);
    return error;
  }
}
