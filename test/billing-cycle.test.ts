/**
 * A billing cycle against Stripe's own stripe-mock (through a recording proxy: every request
 * Parley sent, with its form and idempotency key), with the worker as a real process.
 *
 * One tenant on the pro plan, a seeded October: usage records already reported, and more that
 * were not. The cycle is started through the API and its worker is SIGKILLed while it re-sends
 * usage; a new worker finishes it. Then: each unreported record was sent with its own id as the
 * meter event identifier (a resend after the kill carries the same identifier and key), reported
 * ones were not sent again, and the overage became one invoice item on one finalized invoice.
 * Then dunning, driven by signed Stripe webhooks: a payment failure makes the tenant past due,
 * payment retries are declined, the grace period (seconds here) runs out and the tenant's running
 * campaign is paused by billing (resume refused with 402); `invoice.paid` lifts it all. A webhook
 * with a bad signature is refused with 400 and changes nothing.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../workers/create-workers';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import Stripe from 'stripe';
import {
  billingCycleStateQuery,
  billingCycleWorkflowId,
  billingScheduleId,
  type BillingCycleState,
} from '../contracts/billing';
import { tenantProvisioningWorkflowId } from '../contracts/tenant-provisioning';
import { periodBounds, previousPeriod } from '../activities/billing';
import { withTenant } from '../db/tenant-context';
import { waitUntil } from '../lib/net';
import { STRIPE_MOCK_API_KEY } from './peers/stripe-mock';
import { StripePeer, type StripeRequest } from './peers/stripe-peer';
import { startWebhookReceiver } from './peers/webhook-receiver';
import {
  CAMPAIGN_QUEUES,
  createCampaign,
  launchCampaign,
  progressOf,
  startCampaignStack,
  testNumber,
  type CampaignStack,
} from './support/campaign-stack';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from './support/worker-process';

jest.setTimeout(300_000);

const WEBHOOK_SECRET = 'whsec_parley_billing_test_secret';
const PERIOD = '2026-10';
const ALWAYS_OPEN = Object.fromEntries(
  ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [{ start: '00:00', end: '24:00' }]]),
);

let stripePeer: StripePeer;
let stripeUrl: string;
let cs: CampaignStack;
let worker: WorkerProcess | undefined;
const stripe = new Stripe(STRIPE_MOCK_API_KEY);

function billingEnv(): Record<string, string> {
  return {
    STRIPE_SECRET_KEY: STRIPE_MOCK_API_KEY,
    STRIPE_API_BASE_URL: stripeUrl,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_PLAN_PRICES: 'free=price_free_parley,pro=price_pro_parley,enterprise=price_ent_parley',
    STRIPE_SECONDS_METER_ID: 'mtr_parley_seconds',
    BILLING_PAYMENT_RETRY_SECONDS: '1',
    BILLING_PAYMENT_RETRIES: '2',
    BILLING_GRACE_SECONDS: '4',
  };
}

async function startWorker(): Promise<WorkerProcess> {
  worker = await startWorkerProcess({
    ...billingEnv(),
    TEMPORAL_NAMESPACE: cs.stack.config.TEMPORAL_NAMESPACE,
    WORKER_TASK_QUEUES: CAMPAIGN_QUEUES.join(','),
    TWILIO_ACCOUNT_SID: cs.twilio.accountSid,
    TWILIO_AUTH_TOKEN: cs.twilio.authToken,
    TWILIO_API_BASE_URL: cs.twilio.baseUrl,
    PUBLIC_BASE_URL: cs.apiUrl,
    RELAY_PUBLIC_URL: cs.relayUrl,
  });
  return worker;
}

beforeAll(async () => {
  stripePeer = new StripePeer({ upstream: process.env.STRIPE_MOCK_URL });
  stripeUrl = (await stripePeer.start()).url;
  cs = await startCampaignStack({ worker: false, peer: { fastMedia: true }, env: billingEnv() });
  await startWorker();
  // Sign-up's provisioning gave the tenant its Stripe customer and subscription.
  await cs.stack.temporal.workflow.getHandle(tenantProvisioningWorkflowId(cs.tenant.tenantId)).result();
  await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute(`update tenants set plan = 'pro' where id = ?`, [cs.tenant.tenantId]),
  );
});

afterAll(async () => {
  await stopWorkerProcess(worker);
  await cs?.close();
  await stripePeer?.stop();
});

const cycle = () => cs.stack.temporal.workflow.getHandle(billingCycleWorkflowId(cs.tenant.tenantId, PERIOD));
const cycleState = () => cycle().query(billingCycleStateQuery);

async function waitForCycle(what: string, ok: (s: BillingCycleState) => boolean, timeoutMs = 90_000) {
  let last: BillingCycleState | undefined;
  await waitUntil(
    what,
    async () => {
      last = await cycleState().catch(() => undefined);
      return Boolean(last && ok(last));
    },
    timeoutMs,
    200,
  ).catch((err: unknown) => {
    throw new Error(
      `${(err as Error).message}; last state ${JSON.stringify(last)}\n${worker?.output().slice(-3000)}`,
    );
  });
  return last!;
}

function webhook(
  type: 'invoice.payment_failed' | 'invoice.paid',
  invoiceId: string,
  secret = WEBHOOK_SECRET,
) {
  const payload = JSON.stringify({
    id: `evt_${randomUUID().replace(/-/g, '')}`,
    object: 'event',
    type,
    api_version: '2025-10-29.clover',
    created: Math.floor(Date.now() / 1000),
    data: {
      object: {
        id: invoiceId,
        object: 'invoice',
        status: type === 'invoice.paid' ? 'paid' : 'open',
        metadata: { parley_tenant_id: cs.tenant.tenantId, parley_period: PERIOD },
      },
    },
  });
  const signature = stripe.webhooks.generateTestHeaderString({ payload, secret });
  return request(cs.stack.app)
    .post('/stripe/webhook')
    .set('content-type', 'application/json')
    .set('stripe-signature', signature)
    .send(payload);
}

async function tenantStanding(): Promise<{ billing_status: string; outbound_suspended_at: Date | null }> {
  const [row] = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute<{ billing_status: string; outbound_suspended_at: Date | null }[]>(
      `select billing_status, outbound_suspended_at from tenants where id = ?`,
      [cs.tenant.tenantId],
    ),
  );
  return row!;
}

it('a seeded month: each usage sent once by its identifier across a worker SIGKILL, the overage invoiced; dunning suspends and payment lifts', async () => {
  const tenantId = cs.tenant.tenantId;
  const [tenant] = await withTenant(cs.stack.orm, tenantId, (em) =>
    em.execute<{ time_zone: string; stripe_customer_id: string | null }[]>(
      `select time_zone, stripe_customer_id from tenants where id = ?`,
      [tenantId],
    ),
  );
  expect(tenant?.stripe_customer_id).toMatch(/^cus_/);
  // (Tenants of earlier test files in this namespace may be provisioned by this worker too.)
  const ours = (r: StripeRequest) =>
    (r.form.metadata as Record<string, string> | undefined)?.parley_tenant_id === tenantId;
  expect(
    stripePeer
      .requestsTo('POST', '/v1/customers')
      .filter(ours)
      .map((r) => r.idempotencyKey),
  ).toEqual([`customer:${tenantId}`]);
  const subscriptions = stripePeer.requestsTo('POST', '/v1/subscriptions').filter(ours);
  expect(subscriptions).toHaveLength(1);
  expect(subscriptions[0]!.form).toMatchObject({
    customer: tenant!.stripe_customer_id,
    // The campaign stack made the tenant enterprise before its provisioning ran.
    items: [{ price: 'price_ent_parley' }],
  });

  // October: 10 records Stripe already has, 80 it does not; 90 × 1,000 s = 1,500 min on a 1,000-min plan.
  const { start } = periodBounds(PERIOD, tenant!.time_zone);
  const reported: string[] = [];
  const unreported: string[] = [];
  await withTenant(cs.stack.orm, tenantId, async (em) => {
    for (let i = 0; i < 90; i++) {
      const id = randomUUID();
      const at = new Date(start.getTime() + (i + 1) * 3600_000).toISOString();
      (i < 10 ? reported : unreported).push(id);
      await em.execute(
        `insert into usage_records (id, tenant_id, kind, quantity, billable_quantity, period_start, created_at, reported_at)
         values (?, ?, 'call_seconds', 1000, 1002, ?, ?, ${i < 10 ? 'now()' : 'null'})`,
        [id, tenantId, at, at],
      );
    }
  });

  // Stripe's meter holds one record less than Parley reported (stripe-mock's fixture, overridden).
  stripePeer.overrideNext(
    { method: 'GET', path: /^\/v1\/billing\/meters\/mtr_parley_seconds\/event_summaries$/ },
    (json) => {
      const list = json as { data: Record<string, unknown>[] };
      return { ...list, data: [{ ...list.data[0], aggregated_value: 89 * 1002 }] };
    },
  );
  // Each meter event takes a moment, so the kill lands in the middle of the resend.
  stripePeer.stallAfterForward({ method: 'POST', path: /^\/v1\/billing\/meter_events$/ }, 100, 1000);
  const started = await cs.api().post('/v1/billing/cycles', { period: PERIOD });
  expect(started.status).toBe(202);
  expect(started.body.workflowId).toBe(billingCycleWorkflowId(tenantId, PERIOD));
  const again = await cs.api().post('/v1/billing/cycles', { period: PERIOD });
  expect(again.status).toBe(409);
  expect(again.body.error.code).toBe('BILLING_CYCLE_EXISTS');

  await waitUntil(
    'a few meter events',
    () => Promise.resolve(stripePeer.requestsTo('POST', '/v1/billing/meter_events').length >= 15),
    60_000,
    20,
  );
  const first = worker!;
  first.child.kill('SIGKILL');
  await first.exited;
  const sentBeforeKill = stripePeer.requestsTo('POST', '/v1/billing/meter_events').length;
  expect(sentBeforeKill).toBeLessThan(unreported.length);
  await startWorker();

  const invoiced = await waitForCycle('the overage invoiced', (s) => s.status === 'invoiced', 120_000);
  const events = stripePeer.requestsTo('POST', '/v1/billing/meter_events');
  const byIdentifier = new Map<string, typeof events>();
  for (const e of events) {
    const id = e.form.identifier as string;
    byIdentifier.set(id, [...(byIdentifier.get(id) ?? []), e]);
  }
  // Every unreported record went to Stripe under its own id; none of the reported ones did.
  expect([...byIdentifier.keys()].sort()).toEqual([...unreported].sort());
  for (const [id, sends] of byIdentifier) {
    // A resend (the one cut off by the kill) is the same event: same identifier, same key, same value.
    expect(sends.length).toBeLessThanOrEqual(2);
    expect(new Set(sends.map((s) => s.idempotencyKey))).toEqual(new Set([`usage:${id}`]));
    expect(sends.map((s) => s.form.payload)).toEqual(
      sends.map(() => ({ stripe_customer_id: tenant!.stripe_customer_id, value: '1002' })),
    );
    expect(sends[0]!.form.event_name).toBe('parley_call_seconds');
  }
  expect(events.length - byIdentifier.size).toBeLessThanOrEqual(1);

  // 90 × 1,002 s = 90,180 s; 60,000 included; 30,180 s over = 503 min × 9 ¢.
  // Compared with Stripe's meter over the tenant's month: 90 × 1,002 reported, Stripe summed 89.
  expect(invoiced.meterDiscrepancySeconds).toBe(1002);
  const summaries = stripePeer.requestsTo('GET', '/v1/billing/meters/mtr_parley_seconds/event_summaries');
  expect(summaries.map((r) => r.query)).toEqual([
    {
      customer: tenant!.stripe_customer_id,
      start_time: String(start.getTime() / 1000),
      end_time: String(periodBounds(PERIOD, tenant!.time_zone).end.getTime() / 1000),
    },
  ]);
  expect(invoiced).toMatchObject({
    usageRecords: 90,
    billableSeconds: 90_180,
    overageSeconds: 30_180,
    overageAmountCents: 503 * 9,
  });
  const items = stripePeer.requestsTo('POST', '/v1/invoiceitems');
  expect(new Set(items.map((r) => r.idempotencyKey))).toEqual(
    new Set([`overage-item:${tenantId}:${PERIOD}`]),
  );
  expect(items[0]!.form).toMatchObject({
    customer: tenant!.stripe_customer_id,
    amount: String(503 * 9),
    currency: 'usd',
  });
  expect(stripePeer.requestsTo('POST', '/v1/invoices').map((r) => r.form.metadata)).toEqual([
    { parley_tenant_id: tenantId, parley_period: PERIOD },
  ]);
  expect(stripePeer.requestsTo('POST', /^\/v1\/invoices\/[^/]+\/finalize$/)).toHaveLength(1);
  const invoiceId = invoiced.invoiceId!;
  const unsent = await withTenant(cs.stack.orm, tenantId, (em) =>
    em.execute<{ n: number }[]>(`select count(*)::int as n from usage_records where reported_at is null`),
  );
  expect(unsent[0]?.n).toBe(0);

  // A running campaign of the tenant: one contact parked for an hour after a no-answer.
  const parked = testNumber(515, 4001);
  cs.twilio.script(parked, { outcome: 'no-answer', ringMs: 100 });
  const campaign = await createCampaign(cs, {
    name: 'Dunning',
    contacts: [{ phone: parked, name: 'Parked Person' }],
    settings: {
      windows: ALWAYS_OPEN,
      retry: { 'no-answer': { maxAttempts: 3, backoffSeconds: 3600, backoffMultiplier: 1 } },
    },
  });
  await launchCampaign(cs, campaign.id);
  await waitUntil(
    'the contact to be parked',
    async () => (await progressOf(cs, campaign.id)).attempts.total >= 1,
    30_000,
  );

  // A forged webhook is refused and changes nothing.
  const forged = await webhook('invoice.payment_failed', invoiceId, 'whsec_not_the_secret');
  expect(forged.status).toBe(400);
  expect(forged.body.error.code).toBe('STRIPE_SIGNATURE_INVALID');
  const unsigned = await request(cs.stack.app)
    .post('/stripe/webhook')
    .set('content-type', 'application/json')
    .send('{}');
  expect(unsigned.status).toBe(400);
  expect(unsigned.body.error.code).toBe('STRIPE_SIGNATURE_MISSING');
  expect((await cycleState()).paymentFailures).toBe(0);
  expect((await tenantStanding()).billing_status).toBe('active');

  // The tenant's webhook endpoint hears about each step of the dunning.
  const hooks = await startWebhookReceiver();
  const endpoint = await cs.api().post('/v1/webhook-endpoints', {
    url: hooks.url(),
    events: ['billing.payment_failed', 'billing.outbound_suspended', 'billing.outbound_reinstated'],
  });
  expect(endpoint.status).toBe(201);
  hooks.secret = endpoint.body.secret;

  // The payment fails; the retries are declined too.
  stripePeer.declineInvoicePayments(true);
  const failed = await webhook('invoice.payment_failed', invoiceId);
  expect(failed.status).toBe(200);
  expect(failed.body).toMatchObject({ handled: true });
  const pastDue = await waitForCycle('past due', (s) => s.status === 'past_due');
  expect(pastDue.paymentFailures).toBe(1);
  expect((await tenantStanding()).billing_status).toBe('past_due');
  // Past due is not suspended: the campaign still runs.
  expect((await progressOf(cs, campaign.id)).status).toBe('running');

  const suspended = await waitForCycle('suspended after the grace period', (s) => s.suspended, 30_000);
  expect(suspended.paymentFailures).toBe(3); // the failure, then two declined retries
  const pays = stripePeer.requestsTo('POST', /^\/v1\/invoices\/[^/]+\/pay$/);
  expect(pays.map((p) => p.idempotencyKey)).toEqual([
    `invoice-pay:${invoiceId}:1`,
    `invoice-pay:${invoiceId}:2`,
  ]);
  expect(pays.every((p) => p.status === 402)).toBe(true);
  await waitUntil(
    'the campaign paused by billing',
    async () => (await progressOf(cs, campaign.id)).status === 'paused',
    15_000,
  );
  expect((await tenantStanding()).billing_status).toBe('suspended');
  const resume = await cs.api().post(`/v1/campaigns/${campaign.id}/resume`);
  expect(resume.status).toBe(402);
  expect(resume.body.error.code).toBe('OUTBOUND_SUSPENDED');

  // Paid: the suspension lifts and the campaign billing paused runs again.
  stripePeer.declineInvoicePayments(false);
  const paid = await webhook('invoice.paid', invoiceId);
  expect(paid.status).toBe(200);
  await waitUntil(
    'the cycle to end paid',
    async () => {
      const d = await cycle().describe();
      return d.status.name === 'COMPLETED';
    },
    30_000,
  );
  expect(await cycle().result()).toMatchObject({ status: 'paid', suspended: false });
  expect(await tenantStanding()).toEqual({ billing_status: 'active', outbound_suspended_at: null });
  expect((await progressOf(cs, campaign.id)).status).toBe('running');
  const overview = await cs.api().get('/v1/billing');
  expect(overview.body.periods[0]).toMatchObject({
    stripeMeteredSeconds: 89 * 1002,
    meterDiscrepancySeconds: 1002,
    period: PERIOD,
    status: 'paid',
    invoiceId,
    paymentFailures: 3,
  });
  const audit = await withTenant(cs.stack.orm, tenantId, (em) =>
    em.execute<{ action: string }[]>(
      `select action from audit_log where action like 'billing.%' order by created_at`,
    ),
  );
  expect(audit.map((a) => a.action)).toEqual([
    'billing.cycle_started',
    'billing.outbound_suspended',
    'billing.outbound_reinstated',
  ]);
  await cs.api().post(`/v1/campaigns/${campaign.id}/cancel`);
  await waitUntil('the dunning webhooks', () => Promise.resolve(hooks.deliveries.length >= 5), 30_000);
  await hooks.close();
  const delivered = hooks.deliveries.map((d) => (d.body as { type: string }).type);
  expect([...delivered].sort()).toEqual([
    'billing.outbound_reinstated',
    'billing.outbound_suspended',
    'billing.payment_failed',
    'billing.payment_failed',
    'billing.payment_failed',
  ]);
  expect(hooks.deliveries.every((d) => d.signatureValid)).toBe(true);
  expect(
    hooks.deliveries.find((d) => (d.body as { type: string }).type === 'billing.outbound_suspended')?.body,
  ).toMatchObject({
    data: { period: PERIOD, invoiceId, amountDueCents: 503 * 9 },
  });

  // Kept as a replay history: the cycle across the kill, dunning, suspension and its lifting.
  const history = await cycle().fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
  if (process.env.RECORD_HISTORIES)
    writeFileSync(path.join(__dirname, 'histories', 'billing-cycle-dunning.json'), historyToJSON(history));
});

it("the tenant's monthly Schedule closes the month before its run, under that month's id, never twice", async () => {
  const tenantId = cs.tenant.tenantId;
  const [tenant] = await withTenant(cs.stack.orm, tenantId, (em) =>
    em.execute<{ time_zone: string }[]>(`select time_zone from tenants where id = ?`, [tenantId]),
  );
  const expected = previousPeriod(new Date(), tenant!.time_zone);
  const schedule = cs.stack.temporal.schedule.getHandle(billingScheduleId(tenantId));
  await schedule.trigger();
  let scheduledRun: string | undefined;
  await waitUntil(
    'the scheduled run to finish',
    async () => {
      for await (const w of cs.stack.temporal.workflow.list({
        query: `TemporalScheduledById = '${billingScheduleId(tenantId)}'`,
      })) {
        if (w.status.name === 'COMPLETED') scheduledRun = w.workflowId;
      }
      return scheduledRun !== undefined;
    },
    60_000,
    250,
  );
  expect(await cs.stack.temporal.workflow.getHandle(scheduledRun!).result()).toMatchObject({
    period: expected,
  });
  const runs: string[] = [];
  for await (const w of cs.stack.temporal.workflow.list({
    query: `WorkflowId = '${billingCycleWorkflowId(tenantId, expected)}'`,
  })) {
    runs.push(w.runId);
  }
  // October was closed above: the scheduled run found it and started nothing; another month gets its cycle.
  expect(runs).toHaveLength(1);
});
