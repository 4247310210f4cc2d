/**
 * HubSpot's CRM API (api.hubapi.com), locally, for tests of Parley's HubSpot adapter through the
 * real @hubspot/api-client SDK (`new Client({ accessToken, basePath: await peer.start() })`).
 * It keeps a portal in memory — contacts, calls, call→contact associations, the calls object's
 * property definitions and contact lists — and answers the paths the adapter uses with HubSpot's
 * wire formats: Bearer-token auth (401 INVALID_AUTHENTICATION), `{status:'error', message,
 * correlationId, category}` error bodies, `{total, results, paging}` searches, batch responses
 * `{status:'COMPLETE', results, startedAt, completedAt}` (207 with `errors` when some inputs fail),
 * string properties with `null` for requested-but-empty ones, and the `X-HubSpot-RateLimit-*`
 * headers on every response (a real 429 TEN_SECONDLY_ROLLING once the window is exhausted).
 * Wire facts: /work/shared/protocols.md, "HubSpot", and the SDK's codegen models.
 *
 * Paths:
 *   GET  /account-info/v3/details
 *   GET  /crm/v3/properties/calls/groups
 *   GET  /crm/v3/properties/calls/{propertyName}     POST /crm/v3/properties/calls
 *   POST /crm/v3/objects/contacts                    POST /crm/v3/objects/contacts/search
 *   POST /crm/v3/objects/contacts/batch/read
 *   POST /crm/v3/objects/calls                       POST /crm/v3/objects/calls/batch/upsert
 *   PUT  /crm/v4/objects/calls/{callId}/associations/default/contacts/{contactId}
 *   GET  /crm/v3/lists/{listId}/memberships
 *
 * Faults: `failNext` answers matching requests with a scripted reply (nothing is written),
 * `rateLimitNext` with HubSpot's 429, and `stallAfterWrite` applies a write and then holds its
 * response, so a client's timeout fires after the CRM already has the record.
 *
 * Unverified details (HubSpot does not document them; chosen to be plausible): the calls
 * object's default property group name (`callinformation`), the 409 body for a duplicate value of
 * a unique property, the 404 bodies' wording.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A CRM record as HubSpot stores it: every property value is a string. */
export interface HubSpotObject {
  id: string;
  properties: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  archived: boolean;
}

/** A property definition, as `GET /crm/v3/properties/{objectType}/{name}` shows it. */
export interface HubSpotPropertyDefinition {
  name: string;
  label: string;
  type: string;
  fieldType: string;
  groupName: string;
  description: string;
  hasUniqueValue: boolean;
  hubspotDefined: boolean;
  options: { label: string; value: string; displayOrder: number; hidden: boolean }[];
  createdAt: string;
  updatedAt: string;
}

/** A call→contact association made through the v4 default-association endpoint. */
export interface CallContactAssociation {
  callId: string;
  contactId: string;
  associationCategory: 'HUBSPOT_DEFINED';
  /** 194: call to contact (the reverse direction, contact to call, is 193). */
  associationTypeId: number;
}

export interface RecordedHubSpotRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  /** The parsed JSON body (undefined when there was none). */
  body: unknown;
  headers: IncomingHttpHeaders;
  /** Date.now() when the request arrived. */
  at: number;
  /** The status answered (set once the reply is known). */
  status?: number;
}

export interface HubSpotRequestMatch {
  method?: string;
  path?: RegExp;
}

export interface HubSpotFaultReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface HubSpotPeerOptions {
  /** The private-app token requests must carry as `Authorization: Bearer …`. */
  accessToken: string;
  portalId?: number;
  /** `X-HubSpot-RateLimit-Max`: requests per interval (HubSpot: 190 per 10 s for private apps on Pro). */
  rateLimitMax?: number;
  /** `X-HubSpot-RateLimit-Interval-Milliseconds` (HubSpot: 10000). */
  rateLimitIntervalMs?: number;
  /** `X-HubSpot-RateLimit-Daily` (HubSpot: 625,000 on Pro). */
  dailyLimit?: number;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface RouteContext {
  request: RecordedHubSpotRequest;
  match: Record<string, string>;
}

interface Route {
  method: string;
  pattern: RegExp;
  handler: (context: RouteContext) => Reply;
}

interface Fault {
  match: HubSpotRequestMatch;
  reply: HubSpotFaultReply;
  left: number;
}

interface Stall {
  match: HubSpotRequestMatch;
  ms: number;
  left: number;
}

interface PropertyError {
  isValid: false;
  message: string;
  error: string;
  name: string;
  localizedErrorMessage: string;
}

export const UNIQUE_CALL_ID_PROPERTY = 'parley_call_id';
const CALL_TO_CONTACT = 194;
const CONTACT_TO_CALL = 193;
const SYSTEM_PROPERTIES = ['createdate', 'hs_object_id', 'lastmodifieddate'];
const CALL_SYSTEM_PROPERTIES = ['hs_createdate', 'hs_object_id', 'hs_lastmodifieddate'];
const DEFAULT_CONTACT_PROPERTIES = [
  'createdate',
  'email',
  'firstname',
  'hs_object_id',
  'lastmodifieddate',
  'lastname',
];
const CONTACT_PROPERTIES = new Set([
  'email',
  'firstname',
  'lastname',
  'phone',
  'mobilephone',
  'company',
  'jobtitle',
  'website',
  'address',
  'city',
  'state',
  'zip',
  'country',
  'lifecyclestage',
  'hs_lead_status',
  'hubspot_owner_id',
]);
/** HubSpot's documented options of the calls enumerations. */
const CALL_STATUSES = [
  'BUSY',
  'CALLING_CRM_USER',
  'CANCELED',
  'COMPLETED',
  'CONNECTING',
  'FAILED',
  'IN_PROGRESS',
  'NO_ANSWER',
  'QUEUED',
  'RINGING',
];
const CALL_DIRECTIONS = ['INBOUND', 'OUTBOUND'];
const CALL_PROPERTIES = new Set([
  'hs_timestamp',
  'hs_call_title',
  'hs_call_body',
  'hs_call_duration',
  'hs_call_status',
  'hs_call_direction',
  'hs_call_from_number',
  'hs_call_to_number',
  'hs_call_disposition',
  'hs_call_recording_url',
  'hubspot_owner_id',
]);
const CALL_PROPERTY_GROUPS = [
  { name: 'callinformation', label: 'Call information', displayOrder: -1, archived: false },
];
const SEARCH_MAX_LIMIT = 200;
const BATCH_MAX_INPUTS = 100;
const MEMBERSHIPS_MAX_LIMIT = 250;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function errorBody(
  message: string,
  category: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { status: 'error', message, correlationId: randomUUID(), category, ...extra };
}

function error(status: number, message: string, category: string, extra?: Record<string, unknown>): Reply {
  return { status, body: errorBody(message, category, extra) };
}

function invalidProperties(errors: PropertyError[]): Reply {
  return error(400, `Property values were not valid: ${JSON.stringify(errors)}`, 'VALIDATION_ERROR', {
    errors: errors.map((e) => ({ message: e.message, code: e.error, context: { propertyName: [e.name] } })),
  });
}

function propertyError(name: string, error: string, message: string): PropertyError {
  return { isValid: false, message, error, name, localizedErrorMessage: message };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** HubSpot's `after` cursors are opaque strings; these encode an offset. */
function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(after: string | undefined): number | null {
  if (after === undefined || after === '') return 0;
  const decoded = /^o:(\d+)$/.exec(Buffer.from(after, 'base64url').toString('utf8'));
  return decoded ? Number(decoded[1]) : null;
}

function matches(match: HubSpotRequestMatch, request: RecordedHubSpotRequest): boolean {
  if (match.method && match.method.toUpperCase() !== request.method) return false;
  return match.path ? match.path.test(request.path) : true;
}

export class HubSpotPeer {
  readonly accessToken: string;
  readonly portalId: number;
  readonly requests: RecordedHubSpotRequest[] = [];
  readonly rateLimitMax: number;
  readonly rateLimitIntervalMs: number;
  readonly dailyLimit: number;
  private readonly contactStore = new Map<string, HubSpotObject>();
  private readonly callStore = new Map<string, HubSpotObject>();
  private readonly associationStore: CallContactAssociation[] = [];
  private readonly callProperties = new Map<string, HubSpotPropertyDefinition>();
  private readonly lists = new Map<string, string[]>();
  private readonly routes: Route[] = [];
  private faults: Fault[] = [];
  private stalls: Stall[] = [];
  private readonly windowStarts: number[] = [];
  private dailyCount = 0;
  private nextContactId = 12_001;
  private nextCallId = 48_001;
  private readonly pendingStalls = new Set<NodeJS.Timeout>();
  private readonly server: http.Server;

  constructor(options: HubSpotPeerOptions) {
    this.accessToken = options.accessToken;
    this.portalId = options.portalId ?? 24_681_357;
    this.rateLimitMax = options.rateLimitMax ?? 190;
    this.rateLimitIntervalMs = options.rateLimitIntervalMs ?? 10_000;
    this.dailyLimit = options.dailyLimit ?? 625_000;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json;charset=utf-8' });
        res.end(JSON.stringify(errorBody(String(err), 'INTERNAL_ERROR')));
      });
    });
    this.route('GET', /^\/account-info\/v3\/details$/, () => this.accountDetails());
    this.route('GET', /^\/crm\/v3\/properties\/calls\/groups$/, () => ({
      status: 200,
      body: { results: CALL_PROPERTY_GROUPS },
    }));
    this.route('GET', /^\/crm\/v3\/properties\/calls\/(?<name>[^/]+)$/, ({ match }) =>
      this.getCallProperty(match),
    );
    this.route('POST', /^\/crm\/v3\/properties\/calls$/, ({ request }) =>
      this.createCallProperty(request.body),
    );
    this.route('POST', /^\/crm\/v3\/objects\/contacts$/, ({ request }) => this.createContact(request.body));
    this.route('POST', /^\/crm\/v3\/objects\/contacts\/search$/, ({ request }) =>
      this.searchContacts(request.body),
    );
    this.route('POST', /^\/crm\/v3\/objects\/contacts\/batch\/read$/, ({ request }) =>
      this.batchReadContacts(request.body),
    );
    this.route('POST', /^\/crm\/v3\/objects\/calls$/, ({ request }) => this.createCall(request.body));
    this.route('POST', /^\/crm\/v3\/objects\/calls\/batch\/upsert$/, ({ request }) =>
      this.upsertCalls(request.body),
    );
    this.route(
      'PUT',
      /^\/crm\/v4\/objects\/calls\/(?<callId>[^/]+)\/associations\/default\/contacts\/(?<contactId>[^/]+)$/,
      ({ match }) => this.associateDefault(match),
    );
    this.route('GET', /^\/crm\/v3\/lists\/(?<listId>[^/]+)\/memberships$/, ({ request, match }) =>
      this.listMemberships(match, request.query),
    );
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  /** Listens on 127.0.0.1 at a free port; resolves the base path to give the SDK. */
  async start(): Promise<string> {
    if (!this.server.listening) {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return this.basePath;
  }

  get basePath(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    for (const timer of this.pendingStalls) clearTimeout(timer);
    this.pendingStalls.clear();
    if (!this.server.listening) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- state for tests ---------------------------------------------------------------------------

  get contacts(): HubSpotObject[] {
    return [...this.contactStore.values()];
  }

  get calls(): HubSpotObject[] {
    return [...this.callStore.values()];
  }

  get associations(): CallContactAssociation[] {
    return [...this.associationStore];
  }

  /** Custom properties defined on the calls object (parley_call_id once the adapter made it). */
  get callPropertyDefinitions(): HubSpotPropertyDefinition[] {
    return [...this.callProperties.values()];
  }

  contact(id: string): HubSpotObject | undefined {
    return this.contactStore.get(id);
  }

  call(id: string): HubSpotObject | undefined {
    return this.callStore.get(id);
  }

  /** The call whose parley_call_id is `callId`. */
  callByParleyId(callId: string): HubSpotObject | undefined {
    return this.calls.find((c) => c.properties[UNIQUE_CALL_ID_PROPERTY] === callId);
  }

  /** Adds a contact as if a HubSpot user had created it; returns it (its id is HubSpot's). */
  addContact(properties: Record<string, string>): HubSpotObject {
    const now = new Date();
    const id = String(this.nextContactId++);
    const contact: HubSpotObject = {
      id,
      properties: {
        ...properties,
        hs_object_id: id,
        createdate: now.toISOString(),
        lastmodifieddate: now.toISOString(),
      },
      createdAt: now,
      updatedAt: now,
      archived: false,
    };
    this.contactStore.set(id, contact);
    return contact;
  }

  /** Defines a calls property, as if created in HubSpot's settings (e.g. a non-unique parley_call_id). */
  defineCallProperty(
    definition: Pick<HubSpotPropertyDefinition, 'name'> & Partial<HubSpotPropertyDefinition>,
  ): HubSpotPropertyDefinition {
    const now = new Date().toISOString();
    const full: HubSpotPropertyDefinition = {
      label: definition.name,
      type: 'string',
      fieldType: 'text',
      groupName: 'callinformation',
      description: '',
      hasUniqueValue: false,
      hubspotDefined: false,
      options: [],
      createdAt: now,
      updatedAt: now,
      ...definition,
    };
    this.callProperties.set(full.name, full);
    return full;
  }

  /** A contact list (ILS) with these members, in membership order. */
  addList(listId: string, contactIds: string[]): void {
    this.lists.set(listId, [...contactIds]);
  }

  /** Requests to one path, optionally one method. */
  requestsTo(path: RegExp, method?: string): RecordedHubSpotRequest[] {
    return this.requests.filter((r) => matches({ method, path }, r));
  }

  // --- fault injection ---------------------------------------------------------------------------

  /** The next `times` matching requests get `reply` instead (nothing is written). */
  failNext(match: HubSpotRequestMatch, reply: HubSpotFaultReply, times = 1): void {
    this.faults.push({ match, reply, left: times });
  }

  /** The next `times` requests (any path) get HubSpot's 429 for `policyName`. */
  rateLimitNext(times = 1, policyName = 'TEN_SECONDLY_ROLLING', retryAfterSeconds?: number): void {
    const reply = this.rateLimitReply(policyName);
    if (retryAfterSeconds !== undefined)
      reply.headers = { ...reply.headers, 'Retry-After': String(retryAfterSeconds) };
    this.failNext({}, { status: reply.status, body: reply.body, headers: reply.headers }, times);
  }

  /** The next `times` matching requests are applied, then answered only after `ms`. */
  stallAfterWrite(match: HubSpotRequestMatch, ms: number, times = 1): void {
    this.stalls.push({ match, ms, left: times });
  }

  // --- request handling ---------------------------------------------------------------------------

  private route(method: string, pattern: RegExp, handler: (context: RouteContext) => Reply): void {
    this.routes.push({ method, pattern, handler });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const target = new URL(req.url ?? '/', 'http://peer');
    const recorded: RecordedHubSpotRequest = {
      method: req.method ?? 'GET',
      path: target.pathname,
      query: Object.fromEntries(target.searchParams.entries()),
      body: undefined,
      headers: req.headers,
      at: Date.now(),
    };
    this.requests.push(recorded);
    let reply: Reply;
    if (raw !== '') {
      try {
        recorded.body = JSON.parse(raw);
      } catch {
        reply = error(400, 'Invalid input JSON on line 1', 'VALIDATION_ERROR');
      }
    }
    reply ??= this.dispatch(req, recorded);
    recorded.status = reply.status;
    const stall = this.takeStall(recorded, reply);
    if (stall > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.pendingStalls.delete(timer);
          resolve();
        }, stall);
        this.pendingStalls.add(timer);
      });
    }
    if (res.destroyed) return;
    res.writeHead(reply.status, {
      'content-type': 'application/json;charset=utf-8',
      ...this.rateLimitHeaders(),
      ...reply.headers,
    });
    res.end(reply.body === undefined ? undefined : JSON.stringify(reply.body));
  }

  private dispatch(req: IncomingMessage, request: RecordedHubSpotRequest): Reply {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== this.accessToken) {
      return error(
        401,
        'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
        'INVALID_AUTHENTICATION',
      );
    }
    const fault = this.faults.find((f) => f.left > 0 && matches(f.match, request));
    if (fault) {
      fault.left -= 1;
      this.faults = this.faults.filter((f) => f.left > 0);
      return { status: fault.reply.status, body: fault.reply.body, headers: fault.reply.headers };
    }
    if (this.countAgainstWindow() > this.rateLimitMax) return this.rateLimitReply('TEN_SECONDLY_ROLLING');
    for (const route of this.routes) {
      if (route.method !== request.method) continue;
      const found = route.pattern.exec(request.path);
      if (found) return route.handler({ request, match: { ...found.groups } });
    }
    return { status: 404, body: errorBody('resource not found', 'OBJECT_NOT_FOUND') };
  }

  /** The stall (ms) for a request that was applied (2xx); 0 when none matches. */
  private takeStall(request: RecordedHubSpotRequest, reply: Reply): number {
    if (reply.status < 200 || reply.status > 299) return 0;
    const stall = this.stalls.find((s) => s.left > 0 && matches(s.match, request));
    if (!stall) return 0;
    stall.left -= 1;
    this.stalls = this.stalls.filter((s) => s.left > 0);
    return stall.ms;
  }

  private countAgainstWindow(): number {
    const now = Date.now();
    while (this.windowStarts.length > 0 && this.windowStarts[0]! <= now - this.rateLimitIntervalMs) {
      this.windowStarts.shift();
    }
    this.windowStarts.push(now);
    this.dailyCount += 1;
    return this.windowStarts.length;
  }

  private rateLimitHeaders(): Record<string, string> {
    const now = Date.now();
    const used = this.windowStarts.filter((t) => t > now - this.rateLimitIntervalMs).length;
    return {
      'X-HubSpot-RateLimit-Max': String(this.rateLimitMax),
      'X-HubSpot-RateLimit-Remaining': String(Math.max(0, this.rateLimitMax - used)),
      'X-HubSpot-RateLimit-Interval-Milliseconds': String(this.rateLimitIntervalMs),
      'X-HubSpot-RateLimit-Daily': String(this.dailyLimit),
      'X-HubSpot-RateLimit-Daily-Remaining': String(Math.max(0, this.dailyLimit - this.dailyCount)),
    };
  }

  /** HubSpot's 429: `You have reached your <policy> limit.` with the policy's name. */
  private rateLimitReply(policyName: string): Reply {
    return {
      status: 429,
      body: {
        status: 'error',
        message: `You have reached your ${policyName.toLowerCase()} limit.`,
        errorType: 'RATE_LIMIT',
        correlationId: randomUUID(),
        policyName,
      },
      headers: { 'X-HubSpot-RateLimit-Remaining': '0' },
    };
  }

  // --- account and properties ---------------------------------------------------------------------

  private accountDetails(): Reply {
    return {
      status: 200,
      body: {
        portalId: this.portalId,
        accountType: 'STANDARD',
        timeZone: 'US/Eastern',
        companyCurrency: 'USD',
        additionalCurrencies: [],
        utcOffset: '-05:00',
        utcOffsetMilliseconds: -18_000_000,
        uiDomain: 'app.hubspot.com',
        dataHostingLocation: 'na1',
      },
    };
  }

  private getCallProperty(match: Record<string, string>): Reply {
    const name = decodeURIComponent(match.name ?? '');
    const property = this.callProperties.get(name);
    if (!property)
      return error(404, `Unable to find property ${name} on object type calls`, 'OBJECT_NOT_FOUND');
    return { status: 200, body: property };
  }

  private createCallProperty(body: unknown): Reply {
    if (!isRecord(body))
      return error(400, 'Invalid input JSON: expected a property definition', 'VALIDATION_ERROR');
    const missing = ['name', 'label', 'type', 'fieldType', 'groupName'].filter(
      (k) => typeof body[k] !== 'string',
    );
    if (missing.length > 0) {
      return error(400, `Missing required field(s): ${missing.join(', ')}`, 'VALIDATION_ERROR');
    }
    const name = body.name as string;
    if (!/^[a-z][a-z0-9_]*$/.test(name)) {
      return error(
        400,
        `Property name ${name} is invalid: use lowercase letters, digits and _`,
        'VALIDATION_ERROR',
      );
    }
    if (this.callProperties.has(name) || CALL_PROPERTIES.has(name)) {
      return error(409, `Property named '${name}' already exists.`, 'OBJECT_ALREADY_EXISTS');
    }
    if (!CALL_PROPERTY_GROUPS.some((g) => g.name === body.groupName)) {
      return error(
        400,
        `Property group ${String(body.groupName)} does not exist for object type calls`,
        'VALIDATION_ERROR',
      );
    }
    const property = this.defineCallProperty({
      name,
      label: body.label as string,
      type: body.type as string,
      fieldType: body.fieldType as string,
      groupName: body.groupName as string,
      description: typeof body.description === 'string' ? body.description : '',
      hasUniqueValue: body.hasUniqueValue === true,
    });
    return { status: 201, body: property };
  }

  // --- contacts ------------------------------------------------------------------------------------

  private createContact(body: unknown): Reply {
    if (!isRecord(body) || !isRecord(body.properties)) {
      return error(400, 'Invalid input JSON: properties are required', 'VALIDATION_ERROR');
    }
    const properties = body.properties;
    const errors: PropertyError[] = [];
    for (const [name, value] of Object.entries(properties)) {
      if (!CONTACT_PROPERTIES.has(name)) {
        errors.push(propertyError(name, 'PROPERTY_DOESNT_EXIST', `Property "${name}" does not exist`));
      } else if (typeof value !== 'string') {
        errors.push(propertyError(name, 'INVALID_STRING', `${JSON.stringify(value)} is not a valid string`));
      } else if (name === 'email' && !EMAIL.test(value)) {
        errors.push(propertyError(name, 'INVALID_EMAIL', `Email address ${value} is invalid`));
      }
    }
    if (errors.length > 0) return invalidProperties(errors);
    const email = typeof properties.email === 'string' ? properties.email.toLowerCase() : undefined;
    const existing = email
      ? this.contacts.find((c) => c.properties.email?.toLowerCase() === email)
      : undefined;
    if (existing) {
      return error(409, `Contact already exists. Existing ID: ${existing.id}`, 'CONFLICT');
    }
    const contact = this.addContact(properties as Record<string, string>);
    return { status: 201, body: this.objectJson(contact, Object.keys(properties), 'contacts') };
  }

  private searchContacts(body: unknown): Reply {
    if (!isRecord(body))
      return error(400, 'Invalid input JSON: expected a search request', 'VALIDATION_ERROR');
    const limit = body.limit === undefined ? 10 : Number(body.limit);
    if (!Number.isInteger(limit) || limit < 0 || limit > SEARCH_MAX_LIMIT) {
      return error(400, `limit must be between 0 and ${SEARCH_MAX_LIMIT}`, 'VALIDATION_ERROR');
    }
    const offset = body.after === undefined ? 0 : Number(body.after);
    if (!Number.isInteger(offset) || offset < 0)
      return error(400, 'after must be a number', 'VALIDATION_ERROR');
    const groups = Array.isArray(body.filterGroups) ? (body.filterGroups as unknown[]) : [];
    if (groups.length > 5) return error(400, 'Maximum of 5 filterGroups allowed', 'VALIDATION_ERROR');
    const filterGroups: { propertyName: string; operator: string; value?: string; values?: string[] }[][] =
      [];
    for (const group of groups) {
      const filters = isRecord(group) && Array.isArray(group.filters) ? (group.filters as unknown[]) : [];
      const parsed = [];
      for (const filter of filters) {
        if (
          !isRecord(filter) ||
          typeof filter.propertyName !== 'string' ||
          typeof filter.operator !== 'string'
        ) {
          return error(400, 'Each filter needs a propertyName and an operator', 'VALIDATION_ERROR');
        }
        parsed.push({
          propertyName: filter.propertyName,
          operator: filter.operator,
          value: typeof filter.value === 'string' ? filter.value : undefined,
          values: Array.isArray(filter.values) ? filter.values.map(String) : undefined,
        });
      }
      filterGroups.push(parsed);
    }
    const hits = this.contacts
      .filter((c) => !c.archived)
      .filter((c) => filterGroups.length === 0 || filterGroups.some((g) => g.every((f) => this.test(c, f))))
      .sort((a, b) => Number(a.id) - Number(b.id));
    const page = hits.slice(offset, offset + limit);
    const requested = Array.isArray(body.properties) ? body.properties.map(String) : [];
    const next = offset + limit < hits.length ? { next: { after: String(offset + limit) } } : undefined;
    return {
      status: 200,
      body: {
        total: hits.length,
        results: page.map((c) => this.objectJson(c, requested, 'contacts')),
        ...(next ? { paging: next } : {}),
      },
    };
  }

  /** One search filter; string comparisons are case-insensitive, as HubSpot's are. */
  private test(
    object: HubSpotObject,
    filter: { propertyName: string; operator: string; value?: string; values?: string[] },
  ): boolean {
    const actual = object.properties[filter.propertyName];
    const same = (v: string | undefined) =>
      actual !== undefined && v !== undefined && actual.toLowerCase() === v.toLowerCase();
    switch (filter.operator) {
      case 'EQ':
        return same(filter.value);
      case 'NEQ':
        return !same(filter.value);
      case 'IN':
        return (filter.values ?? []).some(same);
      case 'HAS_PROPERTY':
        return actual !== undefined && actual !== '';
      case 'NOT_HAS_PROPERTY':
        return actual === undefined || actual === '';
      default:
        return false;
    }
  }

  private batchReadContacts(body: unknown): Reply {
    if (!isRecord(body) || !Array.isArray(body.inputs)) {
      return error(400, 'Invalid input JSON: inputs are required', 'VALIDATION_ERROR');
    }
    if (body.inputs.length > BATCH_MAX_INPUTS) {
      return error(400, `Batch input limit is ${BATCH_MAX_INPUTS} inputs`, 'VALIDATION_ERROR');
    }
    const startedAt = new Date().toISOString();
    const ids = body.inputs.map((input) => (isRecord(input) ? String(input.id) : ''));
    const requested = Array.isArray(body.properties) ? body.properties.map(String) : [];
    const found = ids
      .map((id) => this.contactStore.get(id))
      .filter((c): c is HubSpotObject => !!c && !c.archived);
    const missing = ids.filter((id) => !found.some((c) => c.id === id));
    const results = found.map((c) => this.objectJson(c, requested, 'contacts'));
    const completedAt = new Date().toISOString();
    if (missing.length === 0)
      return { status: 200, body: { status: 'COMPLETE', results, startedAt, completedAt } };
    return {
      status: 207,
      body: {
        status: 'COMPLETE',
        results,
        numErrors: 1,
        errors: [
          {
            status: 'error',
            category: 'OBJECT_NOT_FOUND',
            message:
              'Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.',
            context: { ids: missing },
          },
        ],
        startedAt,
        completedAt,
      },
    };
  }

  // --- calls ------------------------------------------------------------------------------------

  /** Property errors of a call write; `creating` also requires hs_timestamp. */
  private validateCall(properties: Record<string, unknown>, creating: boolean): PropertyError[] {
    const errors: PropertyError[] = [];
    for (const [name, value] of Object.entries(properties)) {
      if (!CALL_PROPERTIES.has(name) && !this.callProperties.has(name)) {
        errors.push(propertyError(name, 'PROPERTY_DOESNT_EXIST', `Property "${name}" does not exist`));
      } else if (typeof value !== 'string') {
        errors.push(propertyError(name, 'INVALID_STRING', `${JSON.stringify(value)} is not a valid string`));
      } else if (name === 'hs_call_status' && !CALL_STATUSES.includes(value)) {
        errors.push(
          propertyError(
            name,
            'INVALID_OPTION',
            `${value} was not one of the allowed options: ${CALL_STATUSES.join(', ')}`,
          ),
        );
      } else if (name === 'hs_call_direction' && !CALL_DIRECTIONS.includes(value)) {
        errors.push(
          propertyError(
            name,
            'INVALID_OPTION',
            `${value} was not one of the allowed options: ${CALL_DIRECTIONS.join(', ')}`,
          ),
        );
      } else if (name === 'hs_call_duration' && !/^\d+$/.test(value)) {
        errors.push(propertyError(name, 'INVALID_INTEGER', `${value} is not a valid integer`));
      } else if (name === 'hs_timestamp' && !/^\d+$/.test(value) && Number.isNaN(Date.parse(value))) {
        errors.push(propertyError(name, 'INVALID_DATE', `${value} is not a valid datetime`));
      }
    }
    if (creating && typeof properties.hs_timestamp !== 'string') {
      errors.push(propertyError('hs_timestamp', 'REQUIRED_PROPERTY', 'hs_timestamp is required'));
    }
    return errors;
  }

  /** The call already holding `value` in a unique property, other than `exceptId`. */
  private uniqueClash(
    properties: Record<string, unknown>,
    exceptId?: string,
  ): { name: string; owner: string } | null {
    for (const definition of this.callProperties.values()) {
      if (!definition.hasUniqueValue) continue;
      const value = properties[definition.name];
      if (typeof value !== 'string') continue;
      const owner = this.calls.find((c) => c.id !== exceptId && c.properties[definition.name] === value);
      if (owner) return { name: definition.name, owner: owner.id };
    }
    return null;
  }

  private writeCall(existing: HubSpotObject | undefined, properties: Record<string, string>): HubSpotObject {
    const now = new Date();
    if (existing) {
      Object.assign(existing.properties, properties, { hs_lastmodifieddate: now.toISOString() });
      existing.updatedAt = now;
      return existing;
    }
    const id = String(this.nextCallId++);
    const call: HubSpotObject = {
      id,
      properties: {
        ...properties,
        hs_object_id: id,
        hs_createdate: now.toISOString(),
        hs_lastmodifieddate: now.toISOString(),
      },
      createdAt: now,
      updatedAt: now,
      archived: false,
    };
    this.callStore.set(id, call);
    return call;
  }

  /** `POST /crm/v3/objects/calls {properties, associations}`: a plain create (unique values enforced). */
  private createCall(body: unknown): Reply {
    if (!isRecord(body) || !isRecord(body.properties)) {
      return error(400, 'Invalid input JSON: properties are required', 'VALIDATION_ERROR');
    }
    const errors = this.validateCall(body.properties, true);
    if (errors.length > 0) return invalidProperties(errors);
    const clash = this.uniqueClash(body.properties);
    if (clash) {
      return error(
        409,
        `A call with the value of ${clash.name} already exists. Existing ID: ${clash.owner}`,
        'CONFLICT',
      );
    }
    const associations = Array.isArray(body.associations) ? (body.associations as unknown[]) : [];
    const contactIds: string[] = [];
    for (const association of associations) {
      const to = isRecord(association) && isRecord(association.to) ? String(association.to.id) : '';
      const types = isRecord(association) && Array.isArray(association.types) ? association.types : [];
      const toContact = types.some((t) => isRecord(t) && t.associationTypeId === CALL_TO_CONTACT);
      if (!toContact)
        return error(400, 'Only call→contact associations (194) are supported here', 'VALIDATION_ERROR');
      if (!this.contactStore.has(to))
        return error(400, `No contact with id ${to} exists`, 'VALIDATION_ERROR');
      contactIds.push(to);
    }
    const call = this.writeCall(undefined, body.properties as Record<string, string>);
    for (const contactId of contactIds) this.associate(call.id, contactId);
    return { status: 201, body: this.objectJson(call, Object.keys(body.properties), 'calls') };
  }

  /** `POST /crm/v3/objects/calls/batch/upsert`: create or update by a unique `idProperty`. */
  private upsertCalls(body: unknown): Reply {
    if (!isRecord(body) || !Array.isArray(body.inputs) || body.inputs.length === 0) {
      return error(400, 'Invalid input JSON: inputs are required', 'VALIDATION_ERROR');
    }
    if (body.inputs.length > BATCH_MAX_INPUTS) {
      return error(400, `Batch input limit is ${BATCH_MAX_INPUTS} inputs`, 'VALIDATION_ERROR');
    }
    const startedAt = new Date().toISOString();
    const plan: { existing?: HubSpotObject; properties: Record<string, string> }[] = [];
    const seen = new Set<string>();
    for (const input of body.inputs as unknown[]) {
      if (!isRecord(input) || typeof input.id !== 'string' || !isRecord(input.properties)) {
        return error(400, 'Each input needs an id and properties', 'VALIDATION_ERROR');
      }
      const idProperty = typeof input.idProperty === 'string' ? input.idProperty : undefined;
      const definition = idProperty ? this.callProperties.get(idProperty) : undefined;
      if (!idProperty || !definition?.hasUniqueValue) {
        return error(
          400,
          `idProperty ${idProperty ?? '(missing)'} is not a unique-value property of calls; upsert needs one`,
          'VALIDATION_ERROR',
        );
      }
      if (seen.has(`${idProperty}:${input.id}`)) {
        return error(400, `Duplicate id found in batch input: ${input.id}`, 'VALIDATION_ERROR');
      }
      seen.add(`${idProperty}:${input.id}`);
      const existing = this.calls.find((c) => c.properties[idProperty] === input.id);
      const properties = { ...input.properties, [idProperty]: input.id };
      const errors = this.validateCall(properties, !existing);
      if (errors.length > 0) return invalidProperties(errors);
      const clash = this.uniqueClash(properties, existing?.id);
      if (clash) {
        return error(
          409,
          `A call with the value of ${clash.name} already exists. Existing ID: ${clash.owner}`,
          'CONFLICT',
        );
      }
      plan.push({ existing, properties: properties as Record<string, string> });
    }
    const results = plan.map(({ existing, properties }) => {
      const call = this.writeCall(existing, properties);
      return { ...this.objectJson(call, Object.keys(properties), 'calls'), new: !existing };
    });
    return {
      status: 200,
      body: { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() },
    };
  }

  private associate(callId: string, contactId: string): void {
    const exists = this.associationStore.some((a) => a.callId === callId && a.contactId === contactId);
    if (!exists) {
      this.associationStore.push({
        callId,
        contactId,
        associationCategory: 'HUBSPOT_DEFINED',
        associationTypeId: CALL_TO_CONTACT,
      });
    }
  }

  /** `PUT /crm/v4/objects/calls/{id}/associations/default/contacts/{id}`: idempotent. */
  private associateDefault(match: Record<string, string>): Reply {
    const callId = match.callId ?? '';
    const contactId = match.contactId ?? '';
    if (!this.callStore.has(callId))
      return error(404, `No call with id ${callId} exists`, 'OBJECT_NOT_FOUND');
    if (!this.contactStore.has(contactId)) {
      return error(404, `No contact with id ${contactId} exists`, 'OBJECT_NOT_FOUND');
    }
    const startedAt = new Date().toISOString();
    this.associate(callId, contactId);
    return {
      status: 200,
      body: {
        status: 'COMPLETE',
        results: [
          {
            from: { id: callId },
            to: { id: contactId },
            associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: CALL_TO_CONTACT },
          },
          {
            from: { id: contactId },
            to: { id: callId },
            associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: CONTACT_TO_CALL },
          },
        ],
        startedAt,
        completedAt: new Date().toISOString(),
      },
    };
  }

  // --- lists ----------------------------------------------------------------------------------------

  private listMemberships(match: Record<string, string>, query: Record<string, string>): Reply {
    const listId = match.listId ?? '';
    const members = this.lists.get(listId);
    if (!members) return error(404, `List ${listId} does not exist.`, 'OBJECT_NOT_FOUND');
    const limit = query.limit === undefined ? 100 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MEMBERSHIPS_MAX_LIMIT) {
      return error(400, `limit must be between 1 and ${MEMBERSHIPS_MAX_LIMIT}`, 'VALIDATION_ERROR');
    }
    const offset = decodeCursor(query.after);
    if (offset === null) return error(400, `Invalid after cursor: ${query.after}`, 'VALIDATION_ERROR');
    const page = members.slice(offset, offset + limit);
    const more = offset + limit < members.length;
    return {
      status: 200,
      body: {
        results: page.map((recordId) => ({ recordId, membershipTimestamp: new Date().toISOString() })),
        total: members.length,
        ...(more ? { paging: { next: { after: encodeCursor(offset + limit) } } } : {}),
      },
    };
  }

  // --- rendering --------------------------------------------------------------------------------------

  /**
   * A record as HubSpot renders it: the requested properties (null when empty) plus the system ones;
   * contacts without a property list get HubSpot's default set.
   */
  private objectJson(
    object: HubSpotObject,
    requested: string[],
    kind: 'contacts' | 'calls',
  ): Record<string, unknown> {
    const system = kind === 'contacts' ? SYSTEM_PROPERTIES : CALL_SYSTEM_PROPERTIES;
    const names = new Set([
      ...(requested.length > 0 || kind === 'calls' ? requested : DEFAULT_CONTACT_PROPERTIES),
      ...system,
    ]);
    const properties: Record<string, string | null> = {};
    for (const name of [...names].sort()) properties[name] = object.properties[name] ?? null;
    return {
      id: object.id,
      properties,
      createdAt: object.createdAt.toISOString(),
      updatedAt: object.updatedAt.toISOString(),
      archived: object.archived,
    };
  }
}
