/**
 * Stripe's side of Parley's billing, for tests: a recording HTTP proxy in front of stripe-mock
 * (test/peers/stripe-mock.ts; the harness exports its address as STRIPE_MOCK_URL). Point stripe-node at
 * it (`new Stripe(key, { host, port, protocol: 'http' })`); every request goes to stripe-mock unchanged
 * and its answer comes back, while the peer keeps a record of what was sent (decoded form, idempotency
 * key, API version) and can fail, stall, decline or rewrite chosen requests.
 *
 * stripe-mock is stateless: it validates parameters and answers fixtures, so nothing Parley "creates"
 * is stored (a customer created and then retrieved comes back as the fixture customer), meter events
 * are not aggregated, idempotency keys are not enforced (a repeated key is answered again, not
 * replayed). Assert on `requests`, and use `overrideNext` when a test needs an answer to say something
 * specific (an invoice `status: 'paid'`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A value of an `application/x-www-form-urlencoded` body the way Stripe nests it. */
export type StripeFormValue = string | StripeFormValue[] | { [key: string]: StripeFormValue };
export type StripeForm = { [key: string]: StripeFormValue };

export interface StripeRequest {
  method: string;
  /** Without the query: `/v1/billing/meter_events`. */
  path: string;
  /** The query string, decoded like a form (`GET /v1/invoices?customer=cus_1&expand[0]=data.lines`). */
  query: StripeForm;
  /** The form body decoded: `a[b]=1` → `{ a: { b: '1' } }`, `a[0]=x` → `{ a: ['x'] }`; `{}` for none. */
  form: StripeForm;
  /** The body as sent (a JSON body — Stripe's v2 API — is here and not in `form`). */
  rawBody: string;
  headers: http.IncomingHttpHeaders;
  idempotencyKey?: string;
  stripeVersion?: string;
  /** The status the client got (an injected one for failNext and declines). */
  status: number;
  /** Where the answer came from. */
  answeredBy: 'stripe-mock' | 'injected' | 'overridden';
  /** When the request arrived (ms since the epoch). */
  at: number;
}

export interface RequestMatch {
  /** Compared case-insensitively; any method when absent. */
  method?: string;
  /** Tested against the path without the query; any path when absent. */
  path?: RegExp;
}

export interface InjectedReply {
  status: number;
  /** JSON-encoded unless a string; defaults to Stripe's error shape for the status. */
  body?: unknown;
  /** E.g. `{ 'Stripe-Should-Retry': 'true' }`, which stripe-node obeys when it has retries left. */
  headers?: Record<string, string>;
}

export interface StripePeerOptions {
  /** stripe-mock's address, e.g. process.env.STRIPE_MOCK_URL. */
  upstream: string | undefined;
  /** Default 0: a free port. */
  port?: number;
}

interface Rule {
  match: RequestMatch;
  remaining: number;
}
interface FailRule extends Rule {
  reply: InjectedReply;
}
interface StallRule extends Rule {
  ms: number;
}
interface OverrideRule extends Rule {
  transform: (upstreamJson: unknown) => unknown;
}

const INVOICE_PAY = /^\/v1\/invoices\/[^/]+\/pay$/;

/** What Stripe answers when a card is declined (HTTP 402). */
export const CARD_DECLINED = {
  error: {
    type: 'card_error',
    code: 'card_declined',
    decline_code: 'generic_decline',
    message: 'Your card was declined.',
  },
};

/** Stripe's error body for a status, close to what the API sends; stripe-node picks its class by status. */
export function stripeErrorBody(status: number): { error: Record<string, string> } {
  if (status === 402) return CARD_DECLINED;
  if (status === 401) {
    return { error: { type: 'invalid_request_error', message: 'Invalid API Key provided: sk_test_****' } };
  }
  if (status === 403) {
    return {
      error: {
        type: 'invalid_request_error',
        message: 'The provided key does not have the required permissions.',
      },
    };
  }
  if (status === 409) {
    return {
      error: {
        type: 'invalid_request_error',
        code: 'idempotency_key_in_use',
        message: 'There is currently another in-progress request using this Idempotent Key.',
      },
    };
  }
  if (status === 429) {
    return {
      error: {
        type: 'invalid_request_error',
        code: 'rate_limit',
        message:
          'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
      },
    };
  }
  if (status >= 500) {
    return {
      error: { type: 'api_error', message: 'An unknown error occurred while processing the request.' },
    };
  }
  return { error: { type: 'invalid_request_error', message: `Injected ${status} by StripePeer.` } };
}

type FormContainer = StripeForm | StripeFormValue[];

function readSlot(container: FormContainer, slot: string): StripeFormValue | undefined {
  return Array.isArray(container) ? container[Number(slot)] : container[slot];
}

function writeSlot(container: FormContainer, slot: string, value: StripeFormValue): void {
  if (Array.isArray(container)) container[Number(slot)] = value;
  else container[slot] = value;
}

/** Decodes Stripe's bracket encoding (stripe-node's `stringifyRequestData`, and qs's `a[]=x`). */
export function decodeStripeForm(encoded: string): StripeForm {
  const root: StripeForm = {};
  for (const [key, value] of new URLSearchParams(encoded)) {
    const open = key.indexOf('[');
    const segments =
      open <= 0
        ? [key]
        : [key.slice(0, open), ...Array.from(key.slice(open).matchAll(/\[([^\]]*)\]/g), (m) => m[1]!)];
    if (segments.some((s) => s === '__proto__' || s === 'constructor' || s === 'prototype')) continue;
    let container: FormContainer = root;
    for (const [i, segment] of segments.entries()) {
      const slot = Array.isArray(container) && segment === '' ? String(container.length) : segment;
      const next = segments[i + 1];
      if (next === undefined) {
        writeSlot(container, slot, value);
        break;
      }
      const existing = readSlot(container, slot);
      if (typeof existing === 'object') {
        container = existing;
        continue;
      }
      const created: FormContainer = next === '' || /^\d+$/.test(next) ? [] : {};
      writeSlot(container, slot, created);
      container = created;
    }
  }
  return root;
}

function matches(match: RequestMatch, method: string, path: string): boolean {
  return (!match.method || match.method.toUpperCase() === method) && (!match.path || match.path.test(path));
}

/** Takes one use of the first rule that matches, or undefined. */
function take<R extends Rule>(rules: R[], method: string, path: string): R | undefined {
  const index = rules.findIndex((rule) => matches(rule.match, method, path));
  if (index < 0) return undefined;
  const rule = rules[index]!;
  rule.remaining -= 1;
  if (rule.remaining <= 0) rules.splice(index, 1);
  return rule;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

export class StripePeer {
  readonly requests: StripeRequest[] = [];
  private readonly upstream: URL;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly server: http.Server;
  private failRules: FailRule[] = [];
  private stallRules: StallRule[] = [];
  private overrideRules: OverrideRule[] = [];
  private decliningInvoicePayments = false;
  private readonly stalls = new Set<{ timer: NodeJS.Timeout; release: () => void }>();
  private requestedPort: number;

  constructor(options: StripePeerOptions) {
    if (!options.upstream) {
      throw new Error(
        "StripePeer needs stripe-mock's address (STRIPE_MOCK_URL), which test/harness/global-setup.ts " +
          'exports; outside jest, run `npm run stripe-mock` and start it with `-http-addr 127.0.0.1:<port>`.',
      );
    }
    this.upstream = new URL(options.upstream);
    this.requestedPort = options.port ?? 0;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(502, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: { type: 'api_error', message: `StripePeer: ${String(err)}` } }));
        } else res.destroy();
      });
    });
  }

  async start(): Promise<{ host: string; port: number; url: string }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.requestedPort, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const { port } = this.server.address() as AddressInfo;
    this.requestedPort = port;
    return { host: '127.0.0.1', port, url: `http://127.0.0.1:${port}` };
  }

  async stop(): Promise<void> {
    for (const stall of this.stalls) {
      clearTimeout(stall.timer);
      stall.release();
    }
    this.stalls.clear();
    const wasListening = this.server.listening;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    this.agent.destroy();
    if (wasListening) await closed;
  }

  /** Forgets the record and every pending rule (for a peer shared by several tests). */
  reset(): void {
    this.requests.length = 0;
    this.failRules = [];
    this.stallRules = [];
    this.overrideRules = [];
    this.decliningInvoicePayments = false;
  }

  /** The recorded requests with this method whose path matches. */
  requestsTo(method: string, path: RegExp | string): StripeRequest[] {
    return this.requests.filter(
      (r) =>
        r.method === method.toUpperCase() && (typeof path === 'string' ? r.path === path : path.test(r.path)),
    );
  }

  /** The next `times` matching requests get `reply` without reaching stripe-mock. */
  failNext(match: RequestMatch, reply: InjectedReply, times = 1): void {
    if (times > 0) this.failRules.push({ match, reply, remaining: times });
  }

  /**
   * The next `times` matching requests reach stripe-mock (Stripe has acted on them) but their answer is
   * held for `ms`: the client's timeout, or an activity's, fires first when it is shorter.
   */
  stallAfterForward(match: RequestMatch, ms: number, times = 1): void {
    if (times > 0) this.stallRules.push({ match, ms, remaining: times });
  }

  /** While on, `POST /v1/invoices/:id/pay` answers 402 card_declined (not forwarded). */
  declineInvoicePayments(on: boolean): void {
    this.decliningInvoicePayments = on;
  }

  /** The next `times` matching answers from stripe-mock are rewritten: `transform(json)` is sent instead. */
  overrideNext(match: RequestMatch, transform: (upstreamJson: unknown) => unknown, times = 1): void {
    if (times > 0) this.overrideRules.push({ match, transform, remaining: times });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://peer');
    const rawBody = body.toString('utf8');
    const isForm = (header(req, 'content-type') ?? '').startsWith('application/x-www-form-urlencoded');
    const record: StripeRequest = {
      method,
      path: url.pathname,
      query: decodeStripeForm(url.search.slice(1)),
      form: isForm ? decodeStripeForm(rawBody) : {},
      rawBody,
      headers: req.headers,
      idempotencyKey: header(req, 'idempotency-key'),
      stripeVersion: header(req, 'stripe-version'),
      status: 0,
      answeredBy: 'stripe-mock',
      at,
    };

    const failure =
      take(this.failRules, method, url.pathname)?.reply ??
      (this.decliningInvoicePayments && method === 'POST' && INVOICE_PAY.test(url.pathname)
        ? { status: 402, body: CARD_DECLINED }
        : undefined);
    if (failure) {
      record.status = failure.status;
      record.answeredBy = 'injected';
      this.requests.push(record);
      const payload = failure.body ?? stripeErrorBody(failure.status);
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      res.writeHead(failure.status, {
        'Content-Type': 'application/json',
        'Request-Id': `req_peer_${this.requests.length}`,
        ...failure.headers,
      });
      res.end(text);
      return;
    }

    let answer: Awaited<ReturnType<StripePeer['forward']>>;
    try {
      answer = await this.forward(req, method, body);
    } catch (err) {
      record.status = 502;
      this.requests.push(record);
      res.writeHead(502, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({ error: { type: 'api_error', message: `StripePeer: stripe-mock: ${String(err)}` } }),
      );
      return;
    }
    let responseBody = answer.body;
    const override = take(this.overrideRules, method, url.pathname);
    if (override) {
      const json: unknown = JSON.parse(answer.body.toString('utf8'));
      responseBody = Buffer.from(JSON.stringify(override.transform(json)));
      record.answeredBy = 'overridden';
    }
    record.status = answer.status;
    this.requests.push(record);

    const stall = take(this.stallRules, method, url.pathname);
    if (stall) await this.hold(stall.ms);
    if (res.destroyed) return;
    res.writeHead(answer.status, { ...answer.headers, 'content-length': String(responseBody.length) });
    res.end(responseBody);
  }

  private forward(
    req: http.IncomingMessage,
    method: string,
    body: Buffer,
  ): Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }> {
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: this.upstream.host };
    return new Promise((resolve, reject) => {
      const upstream = http.request(
        {
          protocol: this.upstream.protocol,
          hostname: this.upstream.hostname,
          port: this.upstream.port,
          method,
          path: req.url,
          headers,
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const kept: http.OutgoingHttpHeaders = {};
            for (const [name, value] of Object.entries(res.headers)) {
              if (!HOP_BY_HOP.has(name) && value !== undefined) kept[name] = value;
            }
            resolve({ status: res.statusCode ?? 502, headers: kept, body: Buffer.concat(chunks) });
          });
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });
  }

  private hold(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const stall = {
        timer: setTimeout(() => {
          this.stalls.delete(stall);
          resolve();
        }, ms),
        release: resolve,
      };
      this.stalls.add(stall);
    });
  }
}
