/**
 * HubSpot behind Parley's CrmAdapter, over the official SDK (@hubspot/api-client 13): contacts by
 * phone, call logging made idempotent by a unique calls property (`parley_call_id`, created by
 * testConnection) and a batch upsert keyed on it, and list imports (list memberships, then a batch
 * read of the members). Every failure leaves through one mapping onto the CRM error classes, so
 * the crm-sync activities can apply Temporal's retry rules.
 *
 * The SDK's own retries are off (`numberOfApiCallRetries: 0`: its RetryDecorator is only installed
 * for a positive count, and there is no Bottleneck limiter without `limiterOptions`): Temporal
 * retries, with the wait HubSpot asks for.
 */
import { Client } from '@hubspot/api-client';
import { FilterOperatorEnum } from '@hubspot/api-client/lib/codegen/crm/contacts';
import {
  PropertyCreateFieldTypeEnum,
  PropertyCreateTypeEnum,
} from '@hubspot/api-client/lib/codegen/crm/properties';
import {
  CrmAuthError,
  CrmRateLimitedError,
  CrmValidationError,
  type CrmAdapter,
  type CrmCallLog,
  type CrmContactInput,
  type CrmImportedContact,
  type CrmImportPage,
  type CrmImportSource,
} from './types';

export interface HubSpotCrmOptions {
  /** A private-app token (or an OAuth access token) of the tenant's portal. */
  accessToken: string;
  /** API origin; default https://api.hubapi.com (tests point it at a local peer). */
  basePath?: string;
}

/** The unique calls property that makes a call log idempotent. */
export const CALL_ID_PROPERTY = 'parley_call_id';
/** The calls object's built-in property group; any existing group is used when it is absent. */
const PREFERRED_CALL_PROPERTY_GROUP = 'callinformation';
const CONTACT_IMPORT_PROPERTIES = ['phone', 'mobilephone', 'firstname', 'lastname', 'email'];
/** List memberships allow 250 per page, a contacts batch read 100. */
const MAX_IMPORT_PAGE = 100;
/** HubSpot's default burst window, when a TEN_SECONDLY_ROLLING 429 lacks the interval header. */
const DEFAULT_ROLLING_WINDOW_MS = 10_000;
/** Client errors that no retry can fix; anything else (408, 423 LOCKED, 5xx, …) is transient. */
const FINAL_STATUSES = new Set([400, 404, 405, 409, 410, 413, 415, 422]);

const CALL_STATUS: Record<string, string> = {
  completed: 'COMPLETED',
  'no-answer': 'NO_ANSWER',
  busy: 'BUSY',
  failed: 'FAILED',
  canceled: 'CANCELED',
  cancelled: 'CANCELED',
  'in-progress': 'IN_PROGRESS',
  ringing: 'IN_PROGRESS',
  queued: 'QUEUED',
};

/** Parley's call status as HubSpot's `hs_call_status` option (COMPLETED when there is none). */
export function hubSpotCallStatus(status: string): string {
  return CALL_STATUS[status.trim().toLowerCase()] ?? 'COMPLETED';
}

/**
 * An HTTP failure as the SDK reports it: its generated `ApiException` (one class per API module,
 * so it is recognised by shape) carries `code`, the deserialized `body` and the response `headers`
 * (lower-cased names). The body is HubSpot's JSON as sent (the generated processors ask for an
 * `Error` model their serializer does not know, so nothing is filtered out), `policyName` included;
 * a body that is not JSON or text makes the SDK throw a plain Error without the status.
 */
interface HttpFailure {
  code: number;
  body: unknown;
  headers: Record<string, string>;
}

/** The same shape for `client.apiRequest`, which resolves with the raw response whatever its status. */
class HubSpotHttpFailure extends Error implements HttpFailure {
  constructor(
    readonly code: number,
    readonly body: unknown,
    readonly headers: Record<string, string>,
  ) {
    super(`HubSpot answered ${code}`);
    this.name = 'HubSpotHttpFailure';
  }
}

interface HubSpotErrorBody {
  message?: string;
  category?: string;
  correlationId?: string;
  policyName?: string;
}

function isHttpFailure(err: unknown): err is HttpFailure {
  if (typeof err !== 'object' || err === null) return false;
  const { code, headers } = err as Partial<HttpFailure>;
  return typeof code === 'number' && code >= 100 && code <= 599 && typeof headers === 'object';
}

function errorBody(body: unknown): HubSpotErrorBody {
  if (typeof body !== 'object' || body === null) return {};
  const { message, category, correlationId, policyName } = body as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  return {
    message: text(message),
    category: text(category),
    correlationId: text(correlationId),
    policyName: text(policyName),
  };
}

function header(headers: Record<string, string>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/** `Retry-After` in seconds or as an HTTP date, in ms from now. */
function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.ceil(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function msUntilNextUtcMidnight(now: number): number {
  const date = new Date(now);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 1) - now;
}

/**
 * The policy of a 429: its `policyName`, else read from HubSpot's message ("You have reached
 * your ten_secondly_rolling limit." → TEN_SECONDLY_ROLLING), should a body come without it.
 */
function rateLimitPolicy(body: HubSpotErrorBody): string | undefined {
  if (body.policyName) return body.policyName.toUpperCase();
  const named = /reached your (\w+) limit/i.exec(body.message ?? '');
  return named?.[1]?.toUpperCase();
}

function waitForPolicy(policy: string | undefined, headers: Record<string, string>, now: number): number {
  switch (policy) {
    case 'SECONDLY':
      return 1000;
    case 'DAILY':
      return msUntilNextUtcMidnight(now);
    default: {
      const interval = Number(header(headers, 'x-hubspot-ratelimit-interval-milliseconds'));
      return Number.isFinite(interval) && interval > 0 ? interval : DEFAULT_ROLLING_WINDOW_MS;
    }
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function isoOrRaw(value: string): string {
  const at = Date.parse(value);
  return Number.isNaN(at) ? value : new Date(at).toISOString();
}

function nonEmpty(value: string | null | undefined): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** The entries that have a value (HubSpot would store an explicit empty one). */
function definedOnly(value: Record<string, string | undefined>): Record<string, string> {
  const defined: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) if (entry !== undefined) defined[key] = entry;
  return defined;
}

/** The call's properties on HubSpot's calls object. */
function callProperties(log: CrmCallLog): Record<string, string> {
  const inbound = log.direction === 'inbound';
  const rows: [string, string | undefined][] = [
    ['Disposition', log.disposition],
    ['Summary', log.summary],
    ['Agent', log.agentName],
  ];
  const paragraphs = rows
    .filter((row): row is [string, string] => nonEmpty(row[1]) !== undefined)
    .map(([label, value]) => `<p><strong>${label}:</strong> ${escapeHtml(value)}</p>`);
  if (log.callUrl) {
    paragraphs.push(`<p><a href="${escapeHtml(log.callUrl)}">Open the call in Parley</a></p>`);
  }
  return {
    hs_timestamp: isoOrRaw(log.endedAt),
    hs_call_title: `Parley call — ${log.disposition}`,
    hs_call_body: paragraphs.join(''),
    hs_call_duration: String(Math.max(0, Math.round(log.durationSeconds * 1000))),
    hs_call_status: hubSpotCallStatus(log.status),
    hs_call_direction: inbound ? 'INBOUND' : 'OUTBOUND',
    hs_call_from_number: inbound ? log.contactPhone : log.parleyNumber,
    hs_call_to_number: inbound ? log.parleyNumber : log.contactPhone,
    [CALL_ID_PROPERTY]: log.callId,
  };
}

export class HubSpotCrm implements CrmAdapter {
  readonly provider = 'hubspot' as const;
  private readonly client: Client;
  private readonly contacts: Client['crm']['contacts'];
  private readonly calls: Client['crm']['objects']['calls'];
  private readonly properties: Client['crm']['properties'];
  private readonly associations: Client['crm']['associations']['v4'];
  private readonly lists: Client['crm']['lists'];
  private readonly accessToken: string;
  private callIdPropertyReady: Promise<void> | undefined;

  constructor(opts: HubSpotCrmOptions) {
    this.accessToken = opts.accessToken;
    this.client = new Client({
      accessToken: opts.accessToken,
      basePath: opts.basePath,
      numberOfApiCallRetries: 0,
    });
    // The SDK keeps its retry/limiter decorators in a process-wide singleton, reset by every
    // `new Client` and applied when an API object is first built. Building ours now pins them to
    // this client's settings (none), whatever clients are made later.
    const { crm } = this.client;
    this.contacts = crm.contacts;
    this.calls = crm.objects.calls;
    this.properties = crm.properties;
    this.associations = crm.associations.v4;
    this.lists = crm.lists;
  }

  async testConnection(): Promise<{ account: string }> {
    const details = await this.request('read the account details', async () => {
      const response = await this.client.apiRequest({ method: 'GET', path: '/account-info/v3/details' });
      const body: unknown = await response.json().catch(() => undefined);
      if (!response.ok) {
        throw new HubSpotHttpFailure(response.status, body, Object.fromEntries(response.headers));
      }
      return body as { portalId?: number | string };
    });
    if (details.portalId === undefined) {
      throw new Error('HubSpot account details came back without a portalId');
    }
    this.callIdPropertyReady = undefined;
    await this.ensureCallIdProperty();
    return { account: `HubSpot portal ${details.portalId}` };
  }

  async findContactByPhone(phone: string): Promise<{ id: string } | null> {
    const page = await this.request('search contacts by phone', () =>
      this.contacts.searchApi.doSearch({
        filterGroups: ['phone', 'mobilephone'].map((propertyName) => ({
          filters: [{ propertyName, operator: FilterOperatorEnum.Eq, value: phone }],
        })),
        properties: ['phone', 'mobilephone'],
        limit: 1,
      }),
    );
    const found = page.results[0];
    return found ? { id: found.id } : null;
  }

  async createContact(input: CrmContactInput): Promise<{ id: string }> {
    const properties = definedOnly({
      phone: input.phone,
      firstname: nonEmpty(input.firstName),
      lastname: nonEmpty(input.lastName),
      email: nonEmpty(input.email),
    });
    try {
      const contact = await this.contacts.basicApi.create({ properties, associations: [] });
      return { id: contact.id };
    } catch (err) {
      // "Contact already exists. Existing ID: 123" (same email): that contact is the one we want.
      const existing =
        isHttpFailure(err) && err.code === 409
          ? /Existing ID: (\d+)/.exec(errorBody(err.body).message ?? '')
          : null;
      if (existing?.[1]) return { id: existing[1] };
      throw this.toCrmError(err, 'create a contact');
    }
  }

  async logCall(log: CrmCallLog, contactId: string | null): Promise<{ id: string; created: boolean }> {
    const upsert = () =>
      this.calls.batchApi.upsert({
        inputs: [{ idProperty: CALL_ID_PROPERTY, id: log.callId, properties: callProperties(log) }],
      });
    let result: Awaited<ReturnType<typeof upsert>>;
    try {
      result = await upsert();
    } catch (err) {
      // The unique property may be missing (a portal that never ran testConnection, or deleted it):
      // HubSpot then refuses the idProperty with a 400. Make it and try once more.
      if (!(isHttpFailure(err) && err.code === 400) || (await this.callIdPropertyExists())) {
        throw this.toCrmError(err, 'log the call');
      }
      this.callIdPropertyReady = undefined;
      await this.ensureCallIdProperty();
      result = await this.request('log the call', upsert);
    }
    const failed = 'errors' in result ? result.errors?.[0] : undefined;
    const record = result.results[0];
    if (!record) {
      if (failed) throw new CrmValidationError('hubspot', 207, this.redact(failed.message), failed.category);
      throw new Error('HubSpot answered the call upsert without a record');
    }
    if (contactId !== null) {
      await this.request('associate the call with its contact', () =>
        this.associations.basicApi.createDefault('calls', record.id, 'contacts', contactId),
      );
    }
    return { id: record.id, created: record._new };
  }

  async listContacts(
    source: CrmImportSource,
    cursor: string | undefined,
    pageSize: number,
  ): Promise<CrmImportPage> {
    if (source.kind !== 'hubspot_list') {
      throw new CrmValidationError(
        'hubspot',
        400,
        'A HubSpot connection imports from a HubSpot list, not a SOQL query',
      );
    }
    const limit = Math.min(MAX_IMPORT_PAGE, Math.max(1, Math.floor(pageSize)));
    const members = await this.request('read the list members', () =>
      this.lists.membershipsApi.getPage(source.listId, cursor, undefined, limit),
    );
    const nextCursor = nonEmpty(members.paging?.next?.after);
    const ids = members.results.map((m) => m.recordId);
    if (ids.length === 0) return { contacts: [], nextCursor };
    const read = await this.request('read the list contacts', () =>
      this.contacts.batchApi.read({
        inputs: ids.map((id) => ({ id })),
        properties: CONTACT_IMPORT_PROPERTIES,
        propertiesWithHistory: [],
      }),
    );
    // Members deleted since they joined the list come back as batch errors: skipped.
    const byId = new Map(read.results.map((contact) => [contact.id, contact.properties]));
    const contacts = ids.flatMap((id): CrmImportedContact[] => {
      const properties = byId.get(id);
      if (!properties) return [];
      const fields = definedOnly({
        phone: nonEmpty(properties.phone) ?? nonEmpty(properties.mobilephone),
        firstName: nonEmpty(properties.firstname),
        lastName: nonEmpty(properties.lastname),
        email: nonEmpty(properties.email),
      });
      return [{ externalId: id, ...fields }];
    });
    return { contacts, nextCursor };
  }

  /** Once per adapter (testConnection starts over): the unique `parley_call_id` property on calls. */
  private ensureCallIdProperty(): Promise<void> {
    this.callIdPropertyReady ??= this.createCallIdPropertyIfMissing().catch((err: unknown) => {
      this.callIdPropertyReady = undefined;
      throw err;
    });
    return this.callIdPropertyReady;
  }

  private async createCallIdPropertyIfMissing(): Promise<void> {
    const existing = await this.request('read the parley_call_id property', async () => {
      try {
        return await this.properties.coreApi.getByName('calls', CALL_ID_PROPERTY);
      } catch (err) {
        if (isHttpFailure(err) && err.code === 404) return null;
        throw err;
      }
    });
    if (existing) {
      if (!existing.hasUniqueValue || existing.type !== 'string') {
        throw new CrmValidationError(
          'hubspot',
          409,
          `The calls property ${CALL_ID_PROPERTY} exists but is not a unique single-line text property, so calls cannot be logged exactly once. Delete it in HubSpot (Settings → Properties → Calls) and test the connection again.`,
        );
      }
      return;
    }
    const groups = await this.request('read the call property groups', () =>
      this.properties.groupsApi.getAll('calls'),
    );
    const live = groups.results.filter((g) => !g.archived).map((g) => g.name);
    const groupName = live.includes(PREFERRED_CALL_PROPERTY_GROUP)
      ? PREFERRED_CALL_PROPERTY_GROUP
      : (live[0] ?? PREFERRED_CALL_PROPERTY_GROUP);
    await this.request('create the parley_call_id property', async () => {
      try {
        await this.properties.coreApi.create('calls', {
          name: CALL_ID_PROPERTY,
          label: 'Parley call id',
          description:
            'Set by Parley: the id of the Parley call this record logs. Keeps each call logged once.',
          type: PropertyCreateTypeEnum.String,
          fieldType: PropertyCreateFieldTypeEnum.Text,
          groupName,
          hasUniqueValue: true,
          formField: false,
        });
      } catch (err) {
        // Another worker created it first.
        if (isHttpFailure(err) && err.code === 409) return;
        throw err;
      }
    });
  }

  private async callIdPropertyExists(): Promise<boolean> {
    try {
      await this.properties.coreApi.getByName('calls', CALL_ID_PROPERTY);
      return true;
    } catch (err) {
      if (isHttpFailure(err) && err.code === 404) return false;
      throw this.toCrmError(err, 'read the parley_call_id property');
    }
  }

  /** Runs one HubSpot exchange; whatever it throws leaves as a CRM error. */
  private async request<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw this.toCrmError(err, action);
    }
  }

  /**
   * The one mapping of HubSpot failures: 429 → CrmRateLimitedError (Retry-After, else the policy's
   * window), 401/403 → CrmAuthError, final 4xx → CrmValidationError, the rest (5xx, network,
   * unparsable answers) → a plain Error that Temporal retries. The token never reaches a message.
   */
  private toCrmError(err: unknown, action: string): Error {
    if (
      err instanceof CrmRateLimitedError ||
      err instanceof CrmValidationError ||
      err instanceof CrmAuthError
    ) {
      return err;
    }
    if (!isHttpFailure(err)) {
      const reason = err instanceof Error ? err.message : String(err);
      return new Error(this.redact(`HubSpot request failed (${action}): ${reason}`));
    }
    const status = err.code;
    const body = errorBody(err.body);
    const message = this.redact(body.message ?? 'no message');
    const trace = body.correlationId ? ` [correlationId ${body.correlationId}]` : '';
    if (status === 429) {
      const now = Date.now();
      const policy = rateLimitPolicy(body);
      const wait =
        retryAfterMs(header(err.headers, 'retry-after'), now) ?? waitForPolicy(policy, err.headers, now);
      return new CrmRateLimitedError(
        'hubspot',
        wait,
        policy,
        `HubSpot rate limit reached (${policy ?? 'unknown policy'}) while trying to ${action}; retry in ${wait} ms${trace}`,
      );
    }
    if (status === 401 || status === 403) {
      const category = body.category ? ` ${body.category}` : '';
      return new CrmAuthError(
        'hubspot',
        `HubSpot refused the credentials (${status}${category}): ${message}${trace}`,
      );
    }
    if (FINAL_STATUSES.has(status)) return new CrmValidationError('hubspot', status, message, body.category);
    return new Error(`HubSpot answered ${status} when trying to ${action}: ${message}${trace}`);
  }

  private redact(text: string): string {
    return this.accessToken ? text.split(this.accessToken).join('[access token]') : text;
  }
}
