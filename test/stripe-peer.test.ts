/**
 * The Stripe peer billing tests use: stripe-node → StripePeer (recording proxy) → stripe-mock (started
 * once by the harness, STRIPE_MOCK_URL).
 *
 * What stripe-mock does NOT do (it is stateless): it stores nothing — a created customer or meter
 * event is answered from a fixture (its id and most fields are the fixture's, not what was sent;
 * a few fields such as `event_name`, `identifier`, `timestamp` are echoed), a retrieve returns the
 * fixture whatever was created, meter events are not aggregated into usage, invoices do not move
 * through states, idempotency keys are not enforced or replayed, and no webhooks are sent. So tests
 * assert on `peer.requests` (what Parley sent, with which idempotency key), and shape an answer with
 * `overrideNext` when a branch depends on what Stripe says.
 */
import Stripe from 'stripe';
import { decodeStripeForm, StripePeer } from './peers/stripe-peer';
import { freePort } from '../lib/net';
import { GoToolNotFoundError } from '../lib/go-tool';
import { locateStripeMock, startStripeMock, STRIPE_MOCK_API_KEY } from './peers/stripe-mock';

let peer: StripePeer;
let stripe: Stripe;

beforeAll(async () => {
  peer = new StripePeer({ upstream: process.env.STRIPE_MOCK_URL });
  const { host, port } = await peer.start();
  stripe = new Stripe(STRIPE_MOCK_API_KEY, { host, port, protocol: 'http', maxNetworkRetries: 0 });
});

afterEach(() => peer.reset());

afterAll(async () => {
  await peer.stop();
});

it('forwards to stripe-mock and records a meter event with its nested payload, identifier and idempotency key', async () => {
  const customer = await stripe.customers.create(
    { email: 'billing@tenant.example', metadata: { tenant_id: 'ten_1' } },
    { idempotencyKey: 'tenant:ten_1:customer' },
  );
  expect(customer.object).toBe('customer');

  const timestamp = Math.floor(Date.now() / 1000);
  const event = await stripe.billing.meterEvents.create(
    {
      event_name: 'call_minutes',
      payload: { stripe_customer_id: customer.id, value: '42' },
      identifier: 'usage:call_123',
      timestamp,
    },
    { idempotencyKey: 'usage:call_123' },
  );
  // Echoed by stripe-mock; the payload in its answer is the fixture's, not ours.
  expect(event).toMatchObject({ object: 'billing.meter_event', identifier: 'usage:call_123', timestamp });

  expect(peer.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
    'POST /v1/customers 200',
    'POST /v1/billing/meter_events 200',
  ]);
  const [createCustomer] = peer.requestsTo('POST', '/v1/customers');
  expect(createCustomer!.form).toEqual({ email: 'billing@tenant.example', metadata: { tenant_id: 'ten_1' } });
  expect(createCustomer!.idempotencyKey).toBe('tenant:ten_1:customer');

  const [meterEvent] = peer.requestsTo('post', /^\/v1\/billing\/meter_events$/);
  expect(meterEvent!.form).toEqual({
    event_name: 'call_minutes',
    payload: { stripe_customer_id: customer.id, value: '42' },
    identifier: 'usage:call_123',
    timestamp: String(timestamp),
  });
  expect(meterEvent!.idempotencyKey).toBe('usage:call_123');
  expect(meterEvent!.stripeVersion).toBeTruthy();
  expect(meterEvent!.headers.authorization).toBe(`Bearer ${STRIPE_MOCK_API_KEY}`);
  expect(meterEvent!.answeredBy).toBe('stripe-mock');
});

it('records a GET query decoded like a form', async () => {
  const list = await stripe.customers.list({ limit: 3, email: 'a@b.example' });
  expect(list.object).toBe('list');
  const [request] = peer.requestsTo('GET', '/v1/customers');
  expect(request!.query).toEqual({ limit: '3', email: 'a@b.example' });
  expect(request!.form).toEqual({});
});

it('decodes Stripe bracket encoding into nested objects and arrays', () => {
  expect(
    decodeStripeForm(
      'items[0][price]=price_1&items[0][quantity]=2&items[1][price]=price_2&expand[0]=a&expand[1]=b' +
        '&metadata[call_id]=call%201&tags[]=x&tags[]=y&empty=&__proto__[polluted]=1',
    ),
  ).toEqual({
    items: [{ price: 'price_1', quantity: '2' }, { price: 'price_2' }],
    expand: ['a', 'b'],
    metadata: { call_id: 'call 1' },
    tags: ['x', 'y'],
    empty: '',
  });
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

it('failNext answers with an injected Stripe error that the SDK raises as its error class', async () => {
  peer.failNext({ method: 'POST', path: /^\/v1\/billing\/meter_events$/ }, { status: 500 });
  const apiError = await stripe.billing.meterEvents
    .create({ event_name: 'call_minutes', payload: { stripe_customer_id: 'cus_1', value: '1' } })
    .catch((err: unknown) => err);
  expect(apiError).toBeInstanceOf(Stripe.errors.StripeAPIError);
  expect((apiError as Stripe.errors.StripeAPIError).statusCode).toBe(500);

  peer.failNext(
    { path: /^\/v1\/customers$/ },
    {
      status: 402,
      body: { error: { type: 'card_error', code: 'expired_card', message: 'Your card has expired.' } },
    },
  );
  const cardError = await stripe.customers.create({ email: 'x@y.example' }).catch((err: unknown) => err);
  expect(cardError).toBeInstanceOf(Stripe.errors.StripeCardError);
  expect((cardError as Stripe.errors.StripeCardError).code).toBe('expired_card');
  expect((cardError as Stripe.errors.StripeCardError).message).toBe('Your card has expired.');

  // Used up: the next one reaches stripe-mock again.
  await expect(stripe.customers.create({ email: 'x@y.example' })).resolves.toMatchObject({
    object: 'customer',
  });
  expect(peer.requests.map((r) => [r.status, r.answeredBy])).toEqual([
    [500, 'injected'],
    [402, 'injected'],
    [200, 'stripe-mock'],
  ]);
});

it('stallAfterForward lets stripe-mock act, records the request, then holds the answer', async () => {
  peer.stallAfterForward({ method: 'POST', path: /meter_events/ }, 1_500);
  const started = Date.now();
  // The client gives up first, as an activity's startToCloseTimeout would: Stripe has it all the same.
  const timedOut = await stripe.billing.meterEvents
    .create(
      {
        event_name: 'call_minutes',
        payload: { stripe_customer_id: 'cus_1', value: '3' },
        identifier: 'usage:c9',
      },
      { idempotencyKey: 'usage:c9', timeout: 300 },
    )
    .catch((err: unknown) => err);
  expect(timedOut).toBeInstanceOf(Stripe.errors.StripeConnectionError);
  expect(Date.now() - started).toBeLessThan(1_400);
  expect(peer.requestsTo('POST', '/v1/billing/meter_events')).toEqual([
    expect.objectContaining({ status: 200, idempotencyKey: 'usage:c9' }),
  ]);

  peer.stallAfterForward({ path: /^\/v1\/customers$/ }, 400);
  const slowStart = Date.now();
  await expect(stripe.customers.create({ email: 'slow@y.example' })).resolves.toMatchObject({
    object: 'customer',
  });
  expect(Date.now() - slowStart).toBeGreaterThanOrEqual(380);
});

it('declineInvoicePayments makes invoices.pay fail with card_declined while on', async () => {
  peer.declineInvoicePayments(true);
  const declined = await stripe.invoices.pay('in_123').catch((err: unknown) => err);
  expect(declined).toBeInstanceOf(Stripe.errors.StripeCardError);
  expect(declined).toMatchObject({ code: 'card_declined', decline_code: 'generic_decline', statusCode: 402 });
  // Other calls pass through.
  await expect(stripe.invoices.retrieve('in_123')).resolves.toMatchObject({ object: 'invoice' });

  peer.declineInvoicePayments(false);
  await expect(stripe.invoices.pay('in_123')).resolves.toMatchObject({ object: 'invoice' });
  expect(peer.requestsTo('POST', /^\/v1\/invoices\/[^/]+\/pay$/).map((r) => r.status)).toEqual([402, 200]);
});

it('overrideNext rewrites what stripe-mock answered', async () => {
  peer.overrideNext({ method: 'GET', path: /^\/v1\/invoices\// }, (invoice) => ({
    ...(invoice as object),
    status: 'paid',
    amount_paid: 4200,
  }));
  const invoice = await stripe.invoices.retrieve('in_456');
  expect(invoice).toMatchObject({ object: 'invoice', status: 'paid', amount_paid: 4200 });
  expect(peer.requests[0]!.answeredBy).toBe('overridden');
  // Only the next one.
  const again = await stripe.invoices.retrieve('in_456');
  expect(again.amount_paid).not.toBe(4200);
});

it('webhook signatures round-trip with this SDK version, and a wrong secret is refused', () => {
  const secret = 'whsec_parley_test';
  const payload = JSON.stringify({
    id: 'evt_1',
    object: 'event',
    type: 'invoice.payment_failed',
    data: { object: { id: 'in_1', object: 'invoice' } },
  });
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
  const event = stripe.webhooks.constructEvent(payload, header, secret);
  expect(event).toMatchObject({ id: 'evt_1', type: 'invoice.payment_failed' });

  expect(() => stripe.webhooks.constructEvent(payload, header, 'whsec_wrong')).toThrow(
    Stripe.errors.StripeSignatureVerificationError,
  );
  expect(() => stripe.webhooks.constructEvent(`${payload} `, header, secret)).toThrow(
    Stripe.errors.StripeSignatureVerificationError,
  );
});

it('a stripe-mock that cannot start fails at once with its reason', async () => {
  const started = Date.now();
  const exited = await startStripeMock({ binary: '/bin/false', port: await freePort() }).catch(
    (e: unknown) => e,
  );
  expect((exited as Error).message).toMatch(
    /did not start on http:\/\/127\.0\.0\.1:\d+: it exited with code 1/,
  );
  const missing = await startStripeMock({ binary: '/nonexistent/stripe-mock', port: await freePort() }).catch(
    (e: unknown) => e,
  );
  expect((missing as Error).message).toMatch(/could not start: spawn \/nonexistent\/stripe-mock ENOENT/);
  expect(Date.now() - started).toBeLessThan(5_000);
});

it('refuses a STRIPE_MOCK_PATH that is not an executable, saying how to install the pinned version', async () => {
  const before = process.env.STRIPE_MOCK_PATH;
  process.env.STRIPE_MOCK_PATH = '/nonexistent/stripe-mock';
  try {
    const err = await locateStripeMock(() => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GoToolNotFoundError);
    expect((err as Error).message).toContain(
      'STRIPE_MOCK_PATH=/nonexistent/stripe-mock is not an executable',
    );
    expect((err as Error).message).toContain('go install github.com/stripe/stripe-mock@v0.203.0');
  } finally {
    if (before === undefined) delete process.env.STRIPE_MOCK_PATH;
    else process.env.STRIPE_MOCK_PATH = before;
  }
});
