/**
 * A local stand-in for Twilio's REST API (api.twilio.com/2010-04-01), speaking its wire format:
 * form-encoded requests with HTTP Basic auth (AccountSid:AuthToken), snake_case call resources,
 * and error bodies `{code, message, more_info, status}`. Point the SDK at it with
 * `createTwilioClient({ …, apiBaseUrl: peer.baseUrl })`.
 *
 * Routes live in a table (`peer.route(method, pattern, handler)`), so more of the API (creating
 * calls with `POST …/Calls.json`, say) can be added by a subclass or a test without touching the
 * existing ones.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type TwilioCallStatus =
  'queued' | 'ringing' | 'in-progress' | 'completed' | 'busy' | 'failed' | 'no-answer' | 'canceled';

export const TERMINAL_CALL_STATUSES: readonly TwilioCallStatus[] = [
  'completed',
  'busy',
  'failed',
  'no-answer',
  'canceled',
];

export interface PeerCall {
  sid: string;
  accountSid: string;
  from: string;
  to: string;
  status: TwilioCallStatus;
  direction: 'inbound' | 'outbound-api' | 'outbound-dial';
  dateCreated: Date;
  dateUpdated: Date;
  startTime: Date | null;
  endTime: Date | null;
  parentCallSid: string | null;
  /** The last TwiML or URL the call was redirected to through an update. */
  twiml?: string;
  url?: string;
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** Form parameters, last value wins (`form` keeps repeated ones, e.g. StatusCallbackEvent). */
  params: Record<string, string>;
  form: URLSearchParams;
  /** The Basic-auth user name sent, if any. */
  username?: string;
  /** The status the peer answered with. */
  status?: number;
}

export interface PeerReply {
  status: number;
  body: unknown;
}

export interface RouteContext {
  request: RecordedRequest;
  /** Named groups of the route pattern, e.g. `{ accountSid, callSid }`. */
  match: Record<string, string>;
}

export type RouteHandler = (context: RouteContext) => PeerReply | Promise<PeerReply>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: RouteHandler;
}

export interface TwilioPeerOptions {
  accountSid?: string;
  authToken?: string;
}

/** Twilio renders dates in RFC 2822 with a numeric zone. */
export function twilioDate(date: Date | null): string | null {
  return date ? date.toUTCString().replace('GMT', '+0000') : null;
}

export function randomSid(prefix: string): string {
  return `${prefix}${randomBytes(16).toString('hex')}`;
}

export function twilioError(status: number, code: number, message: string): PeerReply {
  return {
    status,
    body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
  };
}

export class TwilioPeer {
  readonly accountSid: string;
  readonly authToken: string;
  readonly requests: RecordedRequest[] = [];
  readonly calls = new Map<string, PeerCall>();
  protected readonly routes: Route[] = [];
  private readonly server: http.Server;
  private scriptedFailures: PeerReply[] = [];

  constructor(options: TwilioPeerOptions = {}) {
    this.accountSid = options.accountSid ?? randomSid('AC');
    this.authToken = options.authToken ?? randomBytes(16).toString('hex');
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
    this.route(
      'POST',
      /^\/2010-04-01\/Accounts\/(?<accountSid>[^/]+)\/Calls\/(?<callSid>[^/]+)\.json$/,
      (context) => this.updateCall(context),
    );
    this.route(
      'GET',
      /^\/2010-04-01\/Accounts\/(?<accountSid>[^/]+)\/Calls\/(?<callSid>[^/]+)\.json$/,
      ({ match }) => {
        const call = this.calls.get(match.callSid ?? '');
        return call ? { status: 200, body: this.callJson(call) } : this.notFound(match);
      },
    );
  }

  /** Listens on 127.0.0.1 at a free port. */
  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    return this;
  }

  /** True once `listen()` has bound a port. */
  get listening(): boolean {
    return this.server.listening;
  }

  get baseUrl(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Adds a route; later routes with the same method and path take precedence. */
  route(method: string, pattern: RegExp, handler: RouteHandler): void {
    this.routes.unshift({ method: method.toUpperCase(), pattern, handler });
  }

  /** Registers a call the peer knows about (as if Twilio had connected it). */
  addCall(callSid: string, call: Partial<Omit<PeerCall, 'sid'>> & Pick<PeerCall, 'from' | 'to'>): PeerCall {
    const now = new Date();
    const record: PeerCall = {
      sid: callSid,
      accountSid: this.accountSid,
      status: 'in-progress',
      direction: 'inbound',
      dateCreated: now,
      dateUpdated: now,
      startTime: now,
      endTime: null,
      parentCallSid: null,
      ...call,
    };
    this.calls.set(callSid, record);
    return record;
  }

  /** The next `times` requests (any route) are answered with `reply` instead, e.g. a 503. */
  failNext(reply: PeerReply, times = 1): void {
    for (let i = 0; i < times; i += 1) this.scriptedFailures.push(reply);
  }

  /** Requests to one route, e.g. `peer.requestsTo(/\/Calls\/CA…\.json$/)`. */
  requestsTo(path: RegExp | string, method = 'POST'): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)),
    );
  }

  /** A call resource exactly as Twilio's JSON shows it. */
  callJson(call: PeerCall): Record<string, unknown> {
    const uri = `/2010-04-01/Accounts/${call.accountSid}/Calls/${call.sid}`;
    const duration =
      call.startTime && call.endTime
        ? String(Math.round((call.endTime.getTime() - call.startTime.getTime()) / 1000))
        : null;
    return {
      sid: call.sid,
      date_created: twilioDate(call.dateCreated),
      date_updated: twilioDate(call.dateUpdated),
      parent_call_sid: call.parentCallSid,
      account_sid: call.accountSid,
      to: call.to,
      to_formatted: call.to,
      from: call.from,
      from_formatted: call.from,
      phone_number_sid: null,
      status: call.status,
      start_time: twilioDate(call.startTime),
      end_time: twilioDate(call.endTime),
      duration,
      price: null,
      price_unit: 'USD',
      direction: call.direction,
      answered_by: null,
      api_version: '2010-04-01',
      forwarded_from: null,
      group_sid: null,
      caller_name: null,
      queue_time: '0',
      trunk_sid: null,
      uri: `${uri}.json`,
      subresource_uris: {
        notifications: `${uri}/Notifications.json`,
        recordings: `${uri}/Recordings.json`,
        payments: `${uri}/Payments.json`,
        events: `${uri}/Events.json`,
        siprec: `${uri}/Siprec.json`,
        streams: `${uri}/Streams.json`,
        transcriptions: `${uri}/Transcriptions.json`,
        user_defined_message_subscriptions: `${uri}/UserDefinedMessageSubscriptions.json`,
        user_defined_messages: `${uri}/UserDefinedMessages.json`,
      },
    };
  }

  notFound(match: Record<string, string>, path?: string): PeerReply {
    const resource = path ?? `/2010-04-01/Accounts/${match.accountSid}/Calls/${match.callSid}.json`;
    return twilioError(404, 20404, `The requested resource ${resource} was not found`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** `POST …/Calls/{CallSid}.json`: redirect a live call (Twiml, Url) or end it (Status). */
  protected updateCall({ request, match }: RouteContext): PeerReply {
    const call = this.calls.get(match.callSid ?? '');
    if (!call || call.accountSid !== match.accountSid) return this.notFound(match);
    const { Twiml: twiml, Url: url, Status: status } = request.params;
    if (status !== undefined && status !== 'completed' && status !== 'canceled') {
      return twilioError(400, 21218, `Invalid value '${status}' for Status: must be canceled or completed`);
    }
    if (TERMINAL_CALL_STATUSES.includes(call.status)) {
      return twilioError(400, 21220, 'Call is not in-progress. Cannot redirect.');
    }
    const now = new Date();
    if (status) {
      const notAnswered = call.status === 'queued' || call.status === 'ringing';
      // Twilio cancels a call that has not been answered; `canceled` leaves an answered one alone.
      if (notAnswered) call.status = 'canceled';
      else if (status === 'completed') call.status = 'completed';
      if (TERMINAL_CALL_STATUSES.includes(call.status)) call.endTime = now;
    } else if (twiml !== undefined) {
      call.twiml = twiml;
    } else if (url !== undefined) {
      call.url = url;
    }
    call.dateUpdated = now;
    return { status: 200, body: this.callJson(call) };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = new URL(req.url ?? '/', 'http://peer');
    const form = new URLSearchParams(
      /application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')
        ? Buffer.concat(chunks).toString('utf8')
        : '',
    );
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: target.pathname,
      query: target.searchParams,
      headers: req.headers,
      params: Object.fromEntries(form.entries()),
      form,
    };
    this.requests.push(recorded);
    const reply = await this.dispatch(req, recorded);
    recorded.status = reply.status;
    res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(reply.body));
  }

  private async dispatch(req: IncomingMessage, recorded: RecordedRequest): Promise<PeerReply> {
    const credentials = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [username, password] = credentials
      ? Buffer.from(credentials, 'base64').toString('utf8').split(/:(.*)/s)
      : [];
    recorded.username = username;
    if (username !== this.accountSid || password !== this.authToken) {
      return twilioError(401, 20003, 'Authenticate');
    }
    const scripted = this.scriptedFailures.shift();
    if (scripted) return scripted;
    for (const route of this.routes) {
      if (route.method !== recorded.method) continue;
      const found = route.pattern.exec(recorded.path);
      if (found) return route.handler({ request: recorded, match: { ...found.groups } });
    }
    return twilioError(404, 20404, `The requested resource ${recorded.path} was not found`);
  }
}

export async function startTwilioPeer(options: TwilioPeerOptions = {}): Promise<TwilioPeer> {
  return new TwilioPeer(options).listen();
}
