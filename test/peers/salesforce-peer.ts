/**
 * A local stand-in for one Salesforce org, speaking the REST API v62.0 as jsforce 3 calls it: SOQL
 * queries on Organization, Contact and Task (a small evaluator: SELECT … FROM … WHERE with = != < > <=
 * >= LIKE IN, AND / OR / NOT and parentheses, ORDER BY, LIMIT), Contact creation, the Task describe,
 * and Task upserts on the external id field Parley_Call_Id__c — plus the OAuth token endpoint's
 * refresh_token grant, which is where the adapter goes when its access token stops working. The peer's
 * URL is both the instance URL and the login URL.
 *
 * Wire format as Salesforce sends it: errors `[{message, errorCode, fields?}]`, 401 INVALID_SESSION_ID
 * for a missing, unknown or expired bearer token, 18-character ids with the real key prefixes (00D
 * Organization, 003 Contact, 00T Task, 005 User) and checksum suffix, upsert answers 201 `{created:
 * true}` / 200 `{created: false}`. Wire facts: /work/shared/protocols.md, "Salesforce".
 *
 * Tests script faults with `failNext` (answer a matching request with a given reply instead) and
 * `stallAfterWrite` (handle the request, then hold its response: a write whose answer is lost).
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const SALESFORCE_PEER_API_VERSION = '62.0';
const API_BASE = `/services/data/v${SALESFORCE_PEER_API_VERSION}`;
const TOKEN_PATH = '/services/oauth2/token';
const CALL_ID_FIELD = 'Parley_Call_Id__c';

export type FieldValue = string | number | boolean | null;

/** A stored record: Id plus fields under their API names. */
export interface PeerRecord {
  Id: string;
  [field: string]: FieldValue | undefined;
}

export interface SalesforceRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  /** JSON bodies parsed, form bodies as an object (last value wins), anything else as text. */
  body: unknown;
  headers: IncomingHttpHeaders;
  /** Date.now() when the request arrived. */
  at: number;
  /** The status answered. */
  status?: number;
}

export interface RequestMatch {
  method?: string;
  /** Tested against the path (no query string). */
  path?: RegExp;
}

export interface PeerReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface SalesforcePeerOptions {
  /** Organization.Name (default "Parley Test Org"). */
  orgName?: string;
  /** The connected app's consumer key and secret the token endpoint accepts. */
  clientId?: string;
  clientSecret?: string;
  /** The refresh token the token endpoint accepts. */
  refreshToken?: string;
  /** Whether Task has the Parley_Call_Id__c external id field (default true). */
  callIdField?: boolean;
}

export interface ContactFields {
  FirstName?: string | null;
  LastName: string;
  Phone?: string | null;
  MobilePhone?: string | null;
  Email?: string | null;
}

// --- ids ---------------------------------------------------------------------------------------

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const CHECKSUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';

/** The 18-character form: three suffix characters encode which of the 15 are upper case. */
export function salesforceId18(id15: string): string {
  let suffix = '';
  for (let chunk = 0; chunk < 3; chunk += 1) {
    let flags = 0;
    for (let i = 0; i < 5; i += 1) {
      const char = id15.charAt(chunk * 5 + i);
      if (char >= 'A' && char <= 'Z') flags |= 1 << i;
    }
    suffix += CHECKSUM.charAt(flags);
  }
  return id15 + suffix;
}

/** Key prefix, pod, reserved character, nine base-62 digits: ascending with `n`, as ORDER BY Id sees it. */
function makeId(prefix: string, n: number): string {
  let digits = '';
  let rest = n;
  for (let i = 0; i < 9; i += 1) {
    digits = BASE62.charAt(rest % 62) + digits;
    rest = Math.floor(rest / 62);
  }
  return salesforceId18(`${prefix}Hp0${digits}`);
}

/** Ids compare on their case-sensitive 15-character form; a 15- or 18-character literal both match. */
function idKey(value: string): string {
  return value.slice(0, 15);
}

// --- errors --------------------------------------------------------------------------------------

function sfError(status: number, errorCode: string, message: string, fields?: string[]): PeerReply {
  return { status, body: [fields ? { message, errorCode, fields } : { message, errorCode }] };
}

class SoqlError extends Error {
  constructor(
    readonly errorCode: 'MALFORMED_QUERY' | 'INVALID_FIELD' | 'INVALID_TYPE',
    message: string,
  ) {
    super(message);
  }
}

// --- schema ---------------------------------------------------------------------------------------

interface FieldDescribe {
  name: string;
  label: string;
  type: string;
  length?: number;
  createable?: boolean;
  updateable?: boolean;
  externalId?: boolean;
  unique?: boolean;
  custom?: boolean;
  picklist?: string[];
}

const ORGANIZATION_FIELDS: FieldDescribe[] = [
  { name: 'Id', label: 'Organization ID', type: 'id', createable: false, updateable: false },
  { name: 'Name', label: 'Name', type: 'string', length: 80 },
];

const CONTACT_FIELDS: FieldDescribe[] = [
  { name: 'Id', label: 'Contact ID', type: 'id', createable: false, updateable: false },
  { name: 'FirstName', label: 'First Name', type: 'string', length: 40 },
  { name: 'LastName', label: 'Last Name', type: 'string', length: 80 },
  { name: 'Name', label: 'Full Name', type: 'string', length: 121, createable: false, updateable: false },
  { name: 'Phone', label: 'Business Phone', type: 'phone', length: 40 },
  { name: 'MobilePhone', label: 'Mobile Phone', type: 'phone', length: 40 },
  { name: 'Email', label: 'Email', type: 'email', length: 80 },
];

const TASK_FIELDS: FieldDescribe[] = [
  { name: 'Id', label: 'Activity ID', type: 'id', createable: false, updateable: false },
  { name: 'WhoId', label: 'Name ID', type: 'reference', length: 18 },
  { name: 'Subject', label: 'Subject', type: 'combobox', length: 255 },
  { name: 'ActivityDate', label: 'Due Date Only', type: 'date' },
  {
    name: 'Status',
    label: 'Status',
    type: 'picklist',
    length: 255,
    picklist: ['Not Started', 'In Progress', 'Completed', 'Waiting on someone else', 'Deferred'],
  },
  { name: 'Priority', label: 'Priority', type: 'picklist', length: 40, picklist: ['High', 'Normal', 'Low'] },
  { name: 'Description', label: 'Description', type: 'textarea', length: 32_000 },
  { name: 'CallDurationInSeconds', label: 'Call Duration', type: 'int' },
  {
    name: 'CallType',
    label: 'Call Type',
    type: 'picklist',
    length: 40,
    picklist: ['Internal', 'Inbound', 'Outbound'],
  },
  { name: 'CallDisposition', label: 'Call Result', type: 'string', length: 255 },
  {
    name: 'TaskSubtype',
    label: 'Task Subtype',
    type: 'picklist',
    length: 40,
    updateable: false,
    picklist: ['Task', 'Email', 'ListEmail', 'Cadence', 'Call', 'LinkedIn'],
  },
];

const CALL_ID_DESCRIBE: FieldDescribe = {
  name: CALL_ID_FIELD,
  label: 'Parley Call Id',
  type: 'string',
  length: 64,
  externalId: true,
  unique: true,
  custom: true,
};

const KEY_PREFIXES: Record<string, string> = {
  Organization: '00D',
  Contact: '003',
  Task: '00T',
  User: '005',
};

// --- SOQL ----------------------------------------------------------------------------------------

type Token =
  | { kind: 'word'; text: string; at: number }
  | { kind: 'string'; value: string; at: number }
  | { kind: 'number'; value: number; at: number }
  | { kind: 'op'; text: string; at: number }
  | { kind: 'punct'; text: '(' | ')' | ','; at: number }
  | { kind: 'end'; at: number };

type Literal = string | number | boolean | null;

type Condition =
  | { kind: 'and' | 'or'; items: Condition[] }
  | { kind: 'not'; item: Condition }
  | { kind: 'compare'; field: string; op: string; value: Literal }
  | { kind: 'in'; field: string; negated: boolean; values: Literal[] };

interface SoqlQuery {
  fields: string[];
  object: string;
  where?: Condition;
  orderBy?: { field: string; descending: boolean; nullsLast: boolean };
  limit?: number;
}

const STRING_ESCAPES: Record<string, string> = {
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
  '"': '"',
  "'": "'",
  '\\': '\\',
};

function unexpected(soql: string, token: Token): SoqlError {
  const shown =
    token.kind === 'end'
      ? '<EOF>'
      : token.kind === 'string'
        ? `'${token.value}'`
        : token.kind === 'number'
          ? String(token.value)
          : token.text;
  return new SoqlError(
    'MALFORMED_QUERY',
    `\n${soql}\n${' '.repeat(token.at)}^\nERROR at Row:1:Column:${token.at + 1}\nunexpected token: ${shown}`,
  );
}

function tokenize(soql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < soql.length) {
    const char = soql.charAt(i);
    if (/\s/.test(char)) {
      i += 1;
    } else if (char === "'") {
      const at = i;
      let value = '';
      i += 1;
      for (;;) {
        if (i >= soql.length)
          throw new SoqlError('MALFORMED_QUERY', `unterminated string at column ${at + 1}`);
        const c = soql.charAt(i);
        if (c === '\\') {
          const escaped = STRING_ESCAPES[soql.charAt(i + 1)];
          if (escaped === undefined) {
            throw new SoqlError('MALFORMED_QUERY', `Invalid string literal '${soql.slice(at, i + 2)}'`);
          }
          value += escaped;
          i += 2;
        } else if (c === "'") {
          i += 1;
          break;
        } else {
          value += c;
          i += 1;
        }
      }
      tokens.push({ kind: 'string', value, at });
    } else if (/[0-9]/.test(char) || (char === '-' && /[0-9]/.test(soql.charAt(i + 1)))) {
      const match = /^-?\d+(\.\d+)?/.exec(soql.slice(i))!;
      tokens.push({ kind: 'number', value: Number(match[0]), at: i });
      i += match[0].length;
    } else if (/[A-Za-z_]/.test(char)) {
      const match = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(soql.slice(i))!;
      tokens.push({ kind: 'word', text: match[0], at: i });
      i += match[0].length;
    } else if (char === '(' || char === ')' || char === ',') {
      tokens.push({ kind: 'punct', text: char, at: i });
      i += 1;
    } else {
      const match = /^(!=|<>|<=|>=|=|<|>)/.exec(soql.slice(i));
      if (!match) throw unexpected(soql, { kind: 'op', text: char, at: i });
      tokens.push({ kind: 'op', text: match[0] === '<>' ? '!=' : match[0], at: i });
      i += match[0].length;
    }
  }
  tokens.push({ kind: 'end', at: soql.length });
  return tokens;
}

class SoqlParser {
  private readonly tokens: Token[];
  private position = 0;

  constructor(private readonly soql: string) {
    this.tokens = tokenize(soql);
  }

  parse(): SoqlQuery {
    this.keyword('SELECT');
    const fields = [this.word()];
    while (this.punct(',')) fields.push(this.word());
    this.keyword('FROM');
    const query: SoqlQuery = { fields, object: this.word() };
    if (this.isKeyword('WHERE')) {
      this.position += 1;
      query.where = this.condition();
    }
    if (this.isKeyword('ORDER')) {
      this.position += 1;
      this.keyword('BY');
      const field = this.word();
      let descending = false;
      if (this.isKeyword('ASC') || this.isKeyword('DESC')) {
        descending = this.isKeyword('DESC');
        this.position += 1;
      }
      let nullsLast = descending;
      if (this.isKeyword('NULLS')) {
        this.position += 1;
        if (!this.isKeyword('FIRST') && !this.isKeyword('LAST')) throw this.unexpected();
        nullsLast = this.isKeyword('LAST');
        this.position += 1;
      }
      query.orderBy = { field, descending, nullsLast };
    }
    if (this.isKeyword('LIMIT')) {
      this.position += 1;
      const token = this.next();
      if (token.kind !== 'number' || !Number.isInteger(token.value) || token.value < 0) {
        throw unexpected(this.soql, token);
      }
      query.limit = token.value;
    }
    if (this.peek().kind !== 'end') throw this.unexpected();
    return query;
  }

  /** Terms joined by AND or by OR; mixing both at one level needs parentheses, as in SOQL. */
  private condition(): Condition {
    const items = [this.term()];
    let joiner: 'and' | 'or' | undefined;
    while (this.isKeyword('AND') || this.isKeyword('OR')) {
      const next = this.isKeyword('AND') ? 'and' : 'or';
      if (joiner && joiner !== next) throw this.unexpected();
      joiner = next;
      this.position += 1;
      items.push(this.term());
    }
    return joiner ? { kind: joiner, items } : items[0]!;
  }

  private term(): Condition {
    if (this.isKeyword('NOT')) {
      this.position += 1;
      return { kind: 'not', item: this.term() };
    }
    if (this.punct('(')) {
      const inner = this.condition();
      if (!this.punct(')')) throw this.unexpected();
      return inner;
    }
    const field = this.word();
    if (this.isKeyword('IN') || (this.isKeyword('NOT') && this.isKeyword('IN', 1))) {
      const negated = this.isKeyword('NOT');
      this.position += negated ? 2 : 1;
      if (!this.punct('(')) throw this.unexpected();
      const values = [this.literal()];
      while (this.punct(',')) values.push(this.literal());
      if (!this.punct(')')) throw this.unexpected();
      return { kind: 'in', field, negated, values };
    }
    let op: string;
    if (this.isKeyword('LIKE')) {
      this.position += 1;
      op = 'LIKE';
    } else {
      const token = this.next();
      if (token.kind !== 'op') throw unexpected(this.soql, token);
      op = token.text;
    }
    return { kind: 'compare', field, op, value: this.literal() };
  }

  private literal(): Literal {
    const token = this.next();
    if (token.kind === 'string' || token.kind === 'number') return token.value;
    if (token.kind === 'word') {
      const word = token.text.toLowerCase();
      if (word === 'null') return null;
      if (word === 'true' || word === 'false') return word === 'true';
    }
    throw unexpected(this.soql, token);
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.position + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.position += 1;
    return token;
  }

  private unexpected(): SoqlError {
    return unexpected(this.soql, this.peek());
  }

  private isKeyword(keyword: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token.kind === 'word' && token.text.toUpperCase() === keyword;
  }

  private keyword(keyword: string): void {
    if (!this.isKeyword(keyword)) throw this.unexpected();
    this.position += 1;
  }

  private word(): string {
    const token = this.next();
    if (token.kind !== 'word') throw unexpected(this.soql, token);
    return token.text;
  }

  private punct(text: '(' | ')' | ','): boolean {
    const token = this.peek();
    if (token.kind === 'punct' && token.text === text) {
      this.position += 1;
      return true;
    }
    return false;
  }
}

function likePattern(pattern: string): RegExp {
  const body = [...pattern]
    .map((c) => (c === '%' ? '.*' : c === '_' ? '.' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'is');
}

/** SOQL ordering: ids by their case-sensitive 15 characters, text case-insensitively, numbers as numbers. */
function compareValues(a: FieldValue | undefined, b: Literal, isId: boolean): number | undefined {
  if (a === null || a === undefined || b === null) return undefined;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' || typeof b === 'boolean') return a === b ? 0 : undefined;
  const [x, y] = isId
    ? [idKey(String(a)), idKey(String(b))]
    : [String(a).toLowerCase(), String(b).toLowerCase()];
  return x < y ? -1 : x > y ? 1 : 0;
}

// --- the peer --------------------------------------------------------------------------------------

interface Scripted<T> {
  match: RequestMatch;
  value: T;
  remaining: number;
}

export class SalesforcePeer {
  readonly orgName: string;
  readonly organizationId: string;
  readonly userId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Every request, in arrival order (scripted failures included). */
  readonly requests: SalesforceRequest[] = [];
  readonly contacts: PeerRecord[] = [];
  readonly tasks: PeerRecord[] = [];
  /** Successful refresh_token grants. */
  tokenRefreshes = 0;
  /** Whether Task has the Parley_Call_Id__c external id field; may be changed between requests. */
  callIdField: boolean;

  private currentRefreshToken: string;
  /** Each refresh retires the refresh token it used and hands out a new one (the org's rotation policy). */
  rotateRefreshTokens = false;
  private refreshTokenRevoked = false;
  private currentAccessToken: string;
  private readonly validTokens = new Set<string>();
  private readonly failures: Scripted<PeerReply>[] = [];
  private readonly stalls: Scripted<number>[] = [];
  private readonly closing = new AbortController();
  private readonly server: http.Server;
  private nextNumber = randomInt(1_000_000, 100_000_000);
  private apiCalls = 0;

  constructor(options: SalesforcePeerOptions = {}) {
    this.orgName = options.orgName ?? 'Parley Test Org';
    this.organizationId = this.newId('Organization');
    this.userId = this.newId('User');
    this.clientId = options.clientId ?? `3MVG9${randomBytes(30).toString('base64url')}`;
    this.clientSecret = options.clientSecret ?? randomBytes(32).toString('hex').toUpperCase();
    this.currentRefreshToken = options.refreshToken ?? `5Aep861${randomBytes(40).toString('base64url')}`;
    this.callIdField = options.callIdField ?? true;
    this.currentAccessToken = this.issueAccessToken();
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
    });
  }

  /** Listens on 127.0.0.1 at a free port; resolves with the URL (instance URL and login URL alike). */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    return this.url;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** The access token most recently issued (valid unless expired since). */
  get accessToken(): string {
    return this.currentAccessToken;
  }

  /** The refresh token the token endpoint accepts (unless revoked). */
  get refreshToken(): string {
    return this.currentRefreshToken;
  }

  /** The SOQL of every query request, in order. */
  get queries(): string[] {
    return this.requests.filter((r) => r.path === `${API_BASE}/query`).map((r) => r.query.get('q') ?? '');
  }

  /** Requests matching method and path. */
  requestsTo(match: RequestMatch): SalesforceRequest[] {
    return this.requests.filter((r) => this.matches(match, r));
  }

  /** A contact the org already has; Name is derived as Salesforce does. */
  addContact(fields: ContactFields): PeerRecord {
    const contact: PeerRecord = {
      Id: this.newId('Contact'),
      FirstName: fields.FirstName ?? null,
      LastName: fields.LastName,
      Phone: fields.Phone ?? null,
      MobilePhone: fields.MobilePhone ?? null,
      Email: fields.Email ?? null,
    };
    contact.Name = [contact.FirstName, contact.LastName].filter(Boolean).join(' ');
    this.contacts.push(contact);
    return contact;
  }

  /** Every access token issued so far stops working; the refresh token still gets a new one. */
  expireAccessToken(): void {
    this.validTokens.clear();
  }

  /** The refresh token stops working too (invalid_grant), as when a user revokes the app. */
  revokeRefreshToken(): void {
    this.refreshTokenRevoked = true;
  }

  /** The user authorizes the app again (a new OAuth grant): the refresh token works again, with a new session. */
  reauthorize(): string {
    this.refreshTokenRevoked = false;
    return this.issueAccessToken();
  }

  /** The next `times` requests matching `match` get `reply` instead (REST ones only once authenticated). */
  failNext(match: RequestMatch, reply: PeerReply, times = 1): void {
    this.failures.push({ match, value: reply, remaining: times });
  }

  /** The next `times` requests matching `match` are handled (a write is applied), then answered `ms` later. */
  stallAfterWrite(match: RequestMatch, ms: number, times = 1): void {
    this.stalls.push({ match, value: ms, remaining: times });
  }

  async stop(): Promise<void> {
    this.closing.abort();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- plumbing ---------------------------------------------------------------------------------

  private newId(type: keyof typeof KEY_PREFIXES): string {
    this.nextNumber += 1;
    return makeId(KEY_PREFIXES[type]!, this.nextNumber);
  }

  private issueAccessToken(): string {
    const token = `${idKey(this.organizationId)}!AQ${randomBytes(72).toString('base64url')}`;
    this.validTokens.add(token);
    this.currentAccessToken = token;
    return token;
  }

  private matches(match: RequestMatch, request: SalesforceRequest): boolean {
    if (match.method && match.method.toUpperCase() !== request.method) return false;
    return !match.path || match.path.test(request.path);
  }

  private take<T>(list: Scripted<T>[], request: SalesforceRequest): T | undefined {
    const index = list.findIndex((s) => this.matches(s.match, request));
    const scripted = list[index];
    if (!scripted) return undefined;
    scripted.remaining -= 1;
    if (scripted.remaining <= 0) list.splice(index, 1);
    return scripted.value;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const target = new URL(req.url ?? '/', 'http://peer');
    const contentType = req.headers['content-type'] ?? '';
    let body: unknown = raw === '' ? undefined : raw;
    if (raw !== '' && /application\/json/.test(contentType)) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    } else if (/application\/x-www-form-urlencoded/.test(contentType)) {
      body = Object.fromEntries(new URLSearchParams(raw).entries());
    }
    const request: SalesforceRequest = {
      method: req.method ?? 'GET',
      path: target.pathname,
      query: target.searchParams,
      body,
      headers: req.headers,
      at: Date.now(),
    };
    this.requests.push(request);

    const reply = this.dispatch(request, req.headers.authorization);
    request.status = reply.status;
    const stallMs = this.take(this.stalls, request);
    if (stallMs !== undefined) {
      try {
        await sleep(stallMs, undefined, { signal: this.closing.signal });
      } catch {
        res.destroy();
        return;
      }
    }
    const headers: Record<string, string> = { ...reply.headers };
    if (request.path.startsWith('/services/data/')) {
      this.apiCalls += 1;
      headers['Sforce-Limit-Info'] ??= `api-usage=${this.apiCalls}/15000`;
    }
    if (reply.status === 204 || reply.body === undefined) {
      res.writeHead(reply.status, headers);
      res.end();
      return;
    }
    headers['Content-Type'] ??= 'application/json;charset=UTF-8';
    res.writeHead(reply.status, headers);
    res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
  }

  private dispatch(request: SalesforceRequest, authorization: string | undefined): PeerReply {
    if (request.path === TOKEN_PATH) {
      return this.take(this.failures, request) ?? this.token(request);
    }
    const bearer = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    if (!bearer || !this.validTokens.has(bearer)) {
      const reply = sfError(401, 'INVALID_SESSION_ID', 'Session expired or invalid');
      return { ...reply, headers: { 'WWW-Authenticate': 'Token' } };
    }
    const scripted = this.take(this.failures, request);
    if (scripted) return scripted;
    return this.route(request);
  }

  private route(request: SalesforceRequest): PeerReply {
    const { method, path } = request;
    if (!path.startsWith(`${API_BASE}/`)) {
      return sfError(404, 'NOT_FOUND', 'The requested resource does not exist');
    }
    const rest = path.slice(API_BASE.length);
    if (method === 'GET' && rest === '/query') return this.query(request.query.get('q') ?? '');
    let match = /^\/sobjects\/(?<type>[^/]+)\/describe$/.exec(rest);
    if (method === 'GET' && match) return this.describe(match.groups!.type!);
    match = /^\/sobjects\/(?<type>[^/]+)$/.exec(rest);
    if (method === 'POST' && match) return this.create(match.groups!.type!, request.body);
    match = /^\/sobjects\/(?<type>[^/]+)\/(?<field>[^/]+)\/(?<value>[^/]+)$/.exec(rest);
    if (method === 'PATCH' && match) {
      const { type, field, value } = match.groups!;
      return this.upsert(type!, field!, decodeURIComponent(value!), request.body);
    }
    return sfError(404, 'NOT_FOUND', 'The requested resource does not exist');
  }

  // --- OAuth ----------------------------------------------------------------------------------------

  private token(request: SalesforceRequest): PeerReply {
    const oauthError = (error: string, description: string): PeerReply => ({
      status: 400,
      body: { error, error_description: description },
    });
    if (request.method !== 'POST') return oauthError('invalid_request', 'must use HTTP POST');
    const form = (typeof request.body === 'object' && request.body ? request.body : {}) as Record<
      string,
      string
    >;
    if (form.grant_type !== 'refresh_token')
      return oauthError('unsupported_grant_type', 'grant type not supported');
    if (form.client_id !== this.clientId) return oauthError('invalid_client_id', 'client identifier invalid');
    if (form.client_secret !== this.clientSecret)
      return oauthError('invalid_client', 'invalid client credentials');
    if (form.refresh_token !== this.currentRefreshToken || this.refreshTokenRevoked) {
      return oauthError('invalid_grant', 'expired access/refresh token');
    }
    this.tokenRefreshes += 1;
    const accessToken = this.issueAccessToken();
    const rotated = this.rotateRefreshTokens ? `5Aep861${randomBytes(40).toString('base64url')}` : undefined;
    if (rotated) this.currentRefreshToken = rotated;
    const id = `${this.url}/id/${this.organizationId}/${this.userId}`;
    const issuedAt = String(Date.now());
    return {
      status: 200,
      body: {
        access_token: accessToken,
        signature: createHmac('sha256', this.clientSecret)
          .update(id + issuedAt)
          .digest('base64'),
        scope: 'refresh_token api',
        instance_url: this.url,
        id,
        token_type: 'Bearer',
        issued_at: issuedAt,
        ...(rotated ? { refresh_token: rotated } : {}),
      },
    };
  }

  // --- sObjects ---------------------------------------------------------------------------------------

  private fieldsOf(type: string): FieldDescribe[] | undefined {
    switch (type.toLowerCase()) {
      case 'organization':
        return ORGANIZATION_FIELDS;
      case 'contact':
        return CONTACT_FIELDS;
      case 'task':
        return this.callIdField ? [...TASK_FIELDS, CALL_ID_DESCRIBE] : TASK_FIELDS;
      default:
        return undefined;
    }
  }

  private recordsOf(type: string): PeerRecord[] {
    switch (type) {
      case 'Organization':
        return [{ Id: this.organizationId, Name: this.orgName }];
      case 'Contact':
        return this.contacts;
      default:
        return this.tasks;
    }
  }

  private canonicalType(type: string): string | undefined {
    return Object.keys(KEY_PREFIXES).find((t) => t !== 'User' && t.toLowerCase() === type.toLowerCase());
  }

  private describe(type: string): PeerReply {
    const name = this.canonicalType(type);
    const fields = name && this.fieldsOf(name);
    if (!name || !fields) return sfError(404, 'NOT_FOUND', 'The requested resource does not exist');
    return {
      status: 200,
      body: {
        name,
        label: name,
        keyPrefix: KEY_PREFIXES[name],
        custom: false,
        createable: name !== 'Organization',
        updateable: true,
        queryable: true,
        urls: {
          sobject: `${API_BASE}/sobjects/${name}`,
          describe: `${API_BASE}/sobjects/${name}/describe`,
          rowTemplate: `${API_BASE}/sobjects/${name}/{ID}`,
        },
        childRelationships: [],
        recordTypeInfos: [],
        fields: fields.map((f) => ({
          name: f.name,
          label: f.label,
          type: f.type,
          length: f.length ?? 0,
          custom: f.custom ?? false,
          externalId: f.externalId ?? false,
          unique: f.unique ?? false,
          idLookup: f.type === 'id' || (f.externalId ?? false),
          createable: f.createable ?? true,
          updateable: f.updateable ?? true,
          nillable: f.type !== 'id' && f.name !== 'LastName',
          picklistValues: (f.picklist ?? []).map((value) => ({ value, label: value, active: true })),
        })),
      },
    };
  }

  /** Checks a create/update body against the schema; undefined when it is fine. */
  private invalidFields(
    type: string,
    body: Record<string, unknown>,
    creating: boolean,
  ): PeerReply | undefined {
    const fields = this.fieldsOf(type) ?? [];
    for (const [name, value] of Object.entries(body)) {
      const field = fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
      if (!field || field.createable === false) {
        return sfError(400, 'INVALID_FIELD', `No such column '${name}' on sobject of type ${type}`);
      }
      if (!creating && field.updateable === false) {
        return sfError(
          400,
          'INVALID_FIELD_FOR_INSERT_UPDATE',
          `Unable to create/update fields: ${field.name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
          [field.name],
        );
      }
      if (value === null || value === undefined) continue;
      const shown = typeof value === 'string' ? value : JSON.stringify(value);
      if (field.type === 'int' && !Number.isInteger(value)) {
        return sfError(
          400,
          'JSON_PARSER_ERROR',
          `Cannot deserialize instance of int from ${shown} or request may be missing a required field`,
        );
      }
      if (field.type === 'date' && !(typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value))) {
        return sfError(
          400,
          'JSON_PARSER_ERROR',
          `Cannot deserialize instance of date from VALUE_STRING value ${shown} or request may be missing a required field`,
        );
      }
      if (field.picklist && !field.picklist.includes(shown)) {
        return sfError(
          400,
          'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST',
          `${field.label}: bad value for restricted picklist field: ${shown}`,
          [field.name],
        );
      }
      if (field.length && typeof value === 'string' && value.length > field.length) {
        return sfError(
          400,
          'STRING_TOO_LONG',
          `${field.label}: data value too large: ${value.slice(0, 40)} (max length=${field.length})`,
          [field.name],
        );
      }
      if (field.type === 'email' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(shown)) {
        return sfError(400, 'INVALID_EMAIL_ADDRESS', `Email: invalid email address: ${shown}`, [field.name]);
      }
      if (field.name === 'WhoId' && !this.contacts.some((c) => idKey(c.Id) === idKey(shown))) {
        return sfError(400, 'FIELD_INTEGRITY_EXCEPTION', `Name ID: id value of incorrect type: ${shown}`, [
          field.name,
        ]);
      }
    }
    return undefined;
  }

  /** Field names as the schema spells them, ids in their 18-character form. */
  private canonicalFields(type: string, body: Record<string, unknown>): Record<string, FieldValue> {
    const fields = this.fieldsOf(type) ?? [];
    const out: Record<string, FieldValue> = {};
    for (const [name, value] of Object.entries(body)) {
      const field = fields.find((f) => f.name.toLowerCase() === name.toLowerCase())!;
      const stored = (value ?? null) as FieldValue;
      out[field.name] =
        field.type === 'reference' && typeof stored === 'string' && stored.length === 15
          ? salesforceId18(stored)
          : stored;
    }
    return out;
  }

  private create(type: string, body: unknown): PeerReply {
    const name = this.canonicalType(type);
    if (name !== 'Contact' && name !== 'Task') {
      return sfError(404, 'NOT_FOUND', 'The requested resource does not exist');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return sfError(400, 'JSON_PARSER_ERROR', 'The request body must be a JSON object');
    }
    const fields = body as Record<string, unknown>;
    const invalid = this.invalidFields(name, fields, true);
    if (invalid) return invalid;
    const values = this.canonicalFields(name, fields);
    if (name === 'Contact') {
      if (typeof values.LastName !== 'string' || values.LastName.trim() === '') {
        return sfError(400, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [LastName]', [
          'LastName',
        ]);
      }
      const contact = this.addContact({
        FirstName: values.FirstName as string | null | undefined,
        LastName: values.LastName,
        Phone: values.Phone as string | null | undefined,
        MobilePhone: values.MobilePhone as string | null | undefined,
        Email: values.Email as string | null | undefined,
      });
      return { status: 201, body: { id: contact.Id, success: true, errors: [] } };
    }
    const task = this.insertTask(values);
    return { status: 201, body: { id: task.Id, success: true, errors: [] } };
  }

  private insertTask(values: Record<string, FieldValue>): PeerRecord {
    // Every field is there, null when not set, as a query would show it.
    const blank = Object.fromEntries((this.fieldsOf('Task') ?? []).map((f) => [f.name, null]));
    const task: PeerRecord = {
      ...blank,
      Status: 'Not Started',
      Priority: 'Normal',
      ...values,
      Id: this.newId('Task'),
    };
    this.tasks.push(task);
    return task;
  }

  /** `PATCH …/sobjects/Task/<external id field>/<value>`: 201 created, 200 updated. */
  private upsert(type: string, fieldName: string, value: string, body: unknown): PeerReply {
    const name = this.canonicalType(type);
    const field = name
      ? this.fieldsOf(name)?.find((f) => f.name.toLowerCase() === fieldName.toLowerCase())
      : undefined;
    if (name !== 'Task' || !field?.externalId) {
      return sfError(
        404,
        'NOT_FOUND',
        `Provided external ID field does not exist or is not accessible: ${fieldName}`,
      );
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return sfError(400, 'JSON_PARSER_ERROR', 'The request body must be a JSON object');
    }
    if (field.length && value.length > field.length) {
      return sfError(
        400,
        'STRING_TOO_LONG',
        `${field.label}: data value too large: ${value.slice(0, 40)} (max length=${field.length})`,
        [field.name],
      );
    }
    const fields = { ...(body as Record<string, unknown>) };
    for (const key of Object.keys(fields))
      if (key.toLowerCase() === field.name.toLowerCase()) delete fields[key];
    const existing = this.tasks.find((t) => t[field.name] === value);
    const invalid = this.invalidFields(name, fields, !existing);
    if (invalid) return invalid;
    const values = this.canonicalFields(name, fields);
    if (existing) {
      Object.assign(existing, values);
      return { status: 200, body: { id: existing.Id, success: true, errors: [], created: false } };
    }
    const task = this.insertTask({ ...values, [field.name]: value });
    return { status: 201, body: { id: task.Id, success: true, errors: [], created: true } };
  }

  // --- SOQL -----------------------------------------------------------------------------------------

  private query(soql: string): PeerReply {
    try {
      const parsed = new SoqlParser(soql).parse();
      const type = this.canonicalType(parsed.object);
      if (!type) {
        throw new SoqlError(
          'INVALID_TYPE',
          `sObject type '${parsed.object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`,
        );
      }
      const fields = this.fieldsOf(type)!;
      const column = (name: string): string => {
        const field = fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
        if (!field) {
          throw new SoqlError(
            'INVALID_FIELD',
            `No such column '${name}' on entity '${type}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`,
          );
        }
        return field.name;
      };
      const selected = parsed.fields.map(column);
      const where = parsed.where ? this.resolve(parsed.where, column) : undefined;
      let records = this.recordsOf(type).filter((r) => !where || this.evaluate(where, r));
      if (parsed.orderBy) {
        const { descending, nullsLast } = parsed.orderBy;
        const by = column(parsed.orderBy.field);
        records = [...records].sort((a, b) => {
          const x = a[by];
          const y = b[by];
          if (x === null || x === undefined || y === null || y === undefined) {
            const nullX = x === null || x === undefined;
            const nullY = y === null || y === undefined;
            if (nullX === nullY) return 0;
            return nullX === nullsLast ? 1 : -1;
          }
          const order = compareValues(x, y, by === 'Id') ?? 0;
          return descending ? -order : order;
        });
      }
      if (parsed.limit !== undefined) records = records.slice(0, parsed.limit);
      return {
        status: 200,
        body: {
          totalSize: records.length,
          done: true,
          records: records.map((r) => ({
            attributes: { type, url: `${API_BASE}/sobjects/${type}/${r.Id}` },
            ...Object.fromEntries(selected.map((f) => [f, r[f] ?? null])),
          })),
        },
      };
    } catch (err) {
      if (err instanceof SoqlError) return sfError(400, err.errorCode, err.message);
      throw err;
    }
  }

  /** Field names checked against the schema and canonicalised once, before any record is read. */
  private resolve(condition: Condition, column: (name: string) => string): Condition {
    switch (condition.kind) {
      case 'and':
      case 'or':
        return { kind: condition.kind, items: condition.items.map((c) => this.resolve(c, column)) };
      case 'not':
        return { kind: 'not', item: this.resolve(condition.item, column) };
      default:
        return { ...condition, field: column(condition.field) };
    }
  }

  private evaluate(condition: Condition, record: PeerRecord): boolean {
    switch (condition.kind) {
      case 'and':
        return condition.items.every((c) => this.evaluate(c, record));
      case 'or':
        return condition.items.some((c) => this.evaluate(c, record));
      case 'not':
        return !this.evaluate(condition.item, record);
      case 'in': {
        const found = condition.values.some((v) =>
          this.equals(record[condition.field], v, condition.field === 'Id'),
        );
        return condition.negated ? !found : found;
      }
      case 'compare': {
        const actual = record[condition.field];
        const isId = condition.field === 'Id' || condition.field === 'WhoId';
        const { op, value } = condition;
        if (op === '=') return this.equals(actual, value, isId);
        if (op === '!=') return !this.equals(actual, value, isId);
        if (op === 'LIKE') {
          return typeof actual === 'string' && typeof value === 'string' && likePattern(value).test(actual);
        }
        const order = compareValues(actual, value, isId);
        if (order === undefined) return false;
        if (op === '<') return order < 0;
        if (op === '>') return order > 0;
        if (op === '<=') return order <= 0;
        return order >= 0;
      }
    }
  }

  private equals(actual: FieldValue | undefined, value: Literal, isId: boolean): boolean {
    if (value === null) return actual === null || actual === undefined;
    return compareValues(actual, value, isId) === 0;
  }
}
