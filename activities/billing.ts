/**
 * Billing's side effects, through Stripe's SDK: the tenant's customer and metered subscription,
 * usage as Billing Meter events, the overage invoice of a closed month, payment retries; and in
 * Parley's database the billing period, the tenant's billing standing and the campaigns that
 * standing pauses.
 *
 * Exactly once, whatever the retries: a meter event's `identifier` is the usage record's id (Stripe
 * drops a second event with the same identifier), and every other request carries an idempotency
 * key derived from business ids (`invoice:<tenantId>:<period>`, …), never a random one.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { MikroORM } from '@mikro-orm/postgresql';
import Stripe from 'stripe';
import type { Config } from '../config';
import {
  BILLING_CYCLE_WORKFLOW,
  BILLING_PERIOD_KEY,
  BILLING_QUEUE,
  billingScheduleId,
  scheduledBillingWorkflowId,
  type BillingCycleStatus,
  type DunningPolicy,
} from '../contracts/billing';
import { campaignWorkflowId, pauseCampaignUpdate, resumeCampaignUpdate } from '../contracts/campaign';
import { billableSeconds, periodCharges, planLimits } from '../contracts/plans';
import { wallTimeIn, zonedTimeToInstant } from '../contracts/zoned-time';
import type { Plan } from '../db/entities';
import { withTenant } from '../db/tenant-context';

export interface BillingSettings {
  secondsMeterEvent: string;
  /** The talk-seconds meter's id, to read back what Stripe summed. */
  secondsMeterId?: string;
  tokensMeterEvent: string;
  planPrices: Partial<Record<Plan, string>>;
  dunning: DunningPolicy;
}

export interface BillingDeps {
  orm: MikroORM;
  /** Absent when STRIPE_SECRET_KEY is unset: usage is recorded, nothing is sent. */
  stripe?: Stripe;
  billing: BillingSettings;
}

/** The Stripe client Parley uses, optionally pointed at a local peer (stripe-mock) by URL. */
export function createStripeClient(secretKey: string, apiBaseUrl?: string): Stripe {
  const base = apiBaseUrl ? new URL(apiBaseUrl) : undefined;
  return new Stripe(secretKey, {
    // Temporal retries the activity; the SDK's own retries would only hide where time went.
    maxNetworkRetries: 0,
    timeout: 20_000,
    appInfo: { name: 'Parley' },
    ...(base
      ? {
          host: base.hostname,
          port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)),
          protocol: base.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
}

export function billingSettingsFrom(config: Config): BillingSettings {
  return {
    secondsMeterEvent: config.STRIPE_SECONDS_METER_EVENT,
    secondsMeterId: config.STRIPE_SECONDS_METER_ID,
    tokensMeterEvent: config.STRIPE_TOKENS_METER_EVENT,
    planPrices: config.STRIPE_PLAN_PRICES,
    dunning: {
      retryIntervalSeconds: config.BILLING_PAYMENT_RETRY_SECONDS,
      maxRetries: config.BILLING_PAYMENT_RETRIES,
      graceSeconds: config.BILLING_GRACE_SECONDS,
      maxWaitSeconds: config.BILLING_MAX_WAIT_SECONDS,
    },
  };
}

/** `YYYY-MM` and its bounds as instants: midnight of the 1st in the tenant's zone to the next 1st. */
export function periodBounds(period: string, timeZone: string): { start: Date; end: Date } {
  const [year, month] = period.split('-').map(Number) as [number, number];
  const next = month === 12 ? { year: year + 1, month: 1 } : { year, month: month + 1 };
  return {
    start: new Date(monthStart(year, month, timeZone)),
    end: new Date(monthStart(next.year, next.month, timeZone)),
  };
}

/**
 * The first instant of the month in the zone: its local midnight, or — where clocks jumped over
 * midnight on the 1st (America/Asuncion, October 2017 and 2023) — the first instant after the gap.
 */
function monthStart(year: number, month: number, timeZone: string): number {
  let instant = zonedTimeToInstant({ year, month, day: 1, hour: 0, minute: 0, second: 0 }, timeZone);
  for (let step = 0; step < 16 && wallTimeIn(new Date(instant), timeZone).month !== month; step++) {
    instant += 15 * 60_000;
  }
  return instant;
}

/** The month before `instant` in the zone: what a run scheduled on the 1st closes. */
export function previousPeriod(instant: Date, timeZone: string): string {
  const wall = wallTimeIn(instant, timeZone);
  const year = wall.month === 1 ? wall.year - 1 : wall.year;
  const month = wall.month === 1 ? 12 : wall.month - 1;
  return `${year}-${String(month).padStart(2, '0')}`;
}

/** Stripe's error as Temporal should treat it: a decline or a refusal is final, an outage is retried. */
function stripeFailure(err: unknown, what: string): Error {
  if (err instanceof Stripe.errors.StripeCardError) {
    return ApplicationFailure.create({
      type: 'StripeCardError',
      message: `${what}: ${err.message}`,
      nonRetryable: true,
      details: [{ code: err.code ?? null, declineCode: err.decline_code ?? null }],
    });
  }
  if (
    err instanceof Stripe.errors.StripeInvalidRequestError ||
    err instanceof Stripe.errors.StripeAuthenticationError
  ) {
    return ApplicationFailure.create({
      type: 'StripeRequestRefused',
      message: `${what}: ${err.message}`,
      nonRetryable: true,
      details: [{ code: err.code ?? null, status: err.statusCode ?? null }],
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`${what}: ${message}`);
}

/** Meter event timestamps must lie within Stripe's past 35 days (and not in the future). */
function meterTimestamp(at: Date | string, now: number): number {
  const earliest = now - 34 * 24 * 3600_000;
  return Math.floor(Math.min(now, Math.max(earliest, new Date(at).getTime())) / 1000);
}

interface UsageRow {
  id: string;
  kind: string;
  quantity: number;
  billable_quantity: number | null;
  /** Text or Date, depending on the driver's parsers. */
  created_at: Date | string;
}

export function createBillingActivities(deps: BillingDeps) {
  const { orm, stripe, billing } = deps;

  async function tenantRow(tenantId: string) {
    const [tenant] = await withTenant(orm, tenantId, (em) =>
      em.execute<
        {
          id: string;
          name: string;
          plan: Plan;
          time_zone: string;
          stripe_customer_id: string | null;
          stripe_subscription_id: string | null;
          billing_status: string;
        }[]
      >(
        `select id, name, plan, time_zone, stripe_customer_id, stripe_subscription_id, billing_status
           from tenants where id = ?`,
        [tenantId],
      ),
    );
    if (!tenant) {
      throw ApplicationFailure.create({
        type: 'TenantNotFound',
        message: `Tenant ${tenantId} does not exist`,
        nonRetryable: true,
      });
    }
    return tenant;
  }

  /** Sends one usage record as a meter event and marks it reported. */
  async function sendUsage(tenantId: string, customerId: string, row: UsageRow, plan: Plan): Promise<void> {
    const value =
      row.kind === 'call_seconds'
        ? (row.billable_quantity ?? billableSeconds(plan, row.quantity))
        : row.quantity;
    if (stripe && value > 0) {
      try {
        await stripe.billing.meterEvents.create(
          {
            event_name: row.kind === 'call_seconds' ? billing.secondsMeterEvent : billing.tokensMeterEvent,
            identifier: row.id,
            timestamp: meterTimestamp(row.created_at, Date.now()),
            payload: { stripe_customer_id: customerId, value: String(value) },
          },
          { idempotencyKey: `usage:${row.id}` },
        );
      } catch (err) {
        // Stripe already holds an event with this identifier: it was sent before, which is the goal.
        if (!(err instanceof Stripe.errors.StripeInvalidRequestError && /identifier/i.test(err.message))) {
          throw stripeFailure(err, `meter event for usage ${row.id}`);
        }
      }
    }
    await withTenant(orm, tenantId, (em) =>
      em.execute(
        `update usage_records set reported_at = now(), billable_quantity = ? where id = ? and reported_at is null`,
        [row.kind === 'call_seconds' ? value : row.quantity, row.id],
      ),
    );
  }

  return {
    /**
     * The tenant's Stripe customer and its subscription to the plan's metered price, created once
     * (idempotency keys from the tenant id) and remembered on the tenant.
     */
    async ensureStripeCustomer(input: {
      tenantId: string;
    }): Promise<{ customerId?: string; subscriptionId?: string; skipped?: string }> {
      if (!stripe) return { skipped: 'Stripe is not configured (STRIPE_SECRET_KEY)' };
      const tenant = await tenantRow(input.tenantId);
      let customerId = tenant.stripe_customer_id;
      try {
        if (!customerId) {
          const customer = await stripe.customers.create(
            { name: tenant.name, metadata: { parley_tenant_id: tenant.id } },
            { idempotencyKey: `customer:${tenant.id}` },
          );
          customerId = customer.id;
          await withTenant(orm, tenant.id, (em) =>
            em.execute(`update tenants set stripe_customer_id = ?, updated_at = now() where id = ?`, [
              customerId,
              tenant.id,
            ]),
          );
        }
        let subscriptionId = tenant.stripe_subscription_id;
        const price = billing.planPrices[tenant.plan];
        if (!subscriptionId && price) {
          const subscription = await stripe.subscriptions.create(
            {
              customer: customerId,
              items: [{ price }],
              metadata: { parley_tenant_id: tenant.id, parley_plan: tenant.plan },
            },
            { idempotencyKey: `subscription:${tenant.id}:${tenant.plan}` },
          );
          subscriptionId = subscription.id;
          await withTenant(orm, tenant.id, (em) =>
            em.execute(`update tenants set stripe_subscription_id = ?, updated_at = now() where id = ?`, [
              subscriptionId,
              tenant.id,
            ]),
          );
        }
        return { customerId, ...(subscriptionId ? { subscriptionId } : {}) };
      } catch (err) {
        throw stripeFailure(err, 'Stripe customer');
      }
    },

    /**
     * The tenant's monthly Schedule: on the 1st at 00:00 in the tenant's zone it starts the run that
     * closes the month before. Already there: left as it is.
     */
    async ensureBillingSchedule(input: {
      tenantId: string;
    }): Promise<{ scheduleId: string; created: boolean }> {
      const tenant = await tenantRow(input.tenantId);
      const scheduleId = billingScheduleId(tenant.id);
      try {
        await Context.current().client.schedule.create({
          scheduleId,
          spec: { calendars: [{ dayOfMonth: 1, hour: 0, minute: 0 }], timezone: tenant.time_zone },
          action: {
            type: 'startWorkflow',
            workflowType: BILLING_CYCLE_WORKFLOW,
            workflowId: scheduledBillingWorkflowId(tenant.id),
            taskQueue: BILLING_QUEUE,
            args: [{ tenantId: tenant.id }],
          },
          policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '7 days' },
          memo: { tenantId: tenant.id },
        });
        return { scheduleId, created: true };
      } catch (err) {
        if (err instanceof ScheduleAlreadyRunning) return { scheduleId, created: false };
        throw err;
      }
    },

    /** The dunning policy in force (read once per cycle, so a replay sees the same one). */
    billingPolicy(): Promise<DunningPolicy> {
      return Promise.resolve(billing.dunning);
    },

    /**
     * Opens (or finds) the period's row: `period`, or the month before `scheduledAt` in the
     * tenant's zone for a scheduled run.
     */
    async openBillingPeriod(input: { tenantId: string; period?: string; scheduledAt: string }): Promise<{
      period: string;
      periodStart: string;
      periodEnd: string;
      plan: Plan;
      status: BillingCycleStatus;
      stripeCustomerId: string | null;
    }> {
      const tenant = await tenantRow(input.tenantId);
      const period = input.period ?? previousPeriod(new Date(input.scheduledAt), tenant.time_zone);
      if (!BILLING_PERIOD_KEY.test(period)) {
        throw ApplicationFailure.create({
          type: 'BadBillingPeriod',
          message: `'${period}' is not YYYY-MM`,
          nonRetryable: true,
        });
      }
      const { start, end } = periodBounds(period, tenant.time_zone);
      const [row] = await withTenant(orm, tenant.id, (em) =>
        em.execute<{ status: BillingCycleStatus; plan: Plan }[]>(
          `insert into billing_periods (tenant_id, period, period_start, period_end, plan)
           values (?, ?, ?, ?, ?)
           on conflict (tenant_id, period) do update set updated_at = now()
           returning status, plan`,
          [tenant.id, period, start, end, tenant.plan],
        ),
      );
      return {
        period,
        periodStart: start.toISOString(),
        periodEnd: end.toISOString(),
        plan: row?.plan ?? tenant.plan,
        status: row?.status ?? 'closing',
        stripeCustomerId: tenant.stripe_customer_id,
      };
    },

    /**
     * Reconciliation: sends every usage record of the period that Stripe has not acknowledged, a
     * page at a time, and says how many it sent. Records reported before are not touched; a record
     * sent by an attempt that died before marking it goes again with the same identifier.
     */
    async reportUnreportedUsage(input: {
      tenantId: string;
      periodStart: string;
      periodEnd: string;
      limit?: number;
    }): Promise<{ sent: number; remaining: boolean }> {
      // Without Stripe nothing is sent, and nothing is marked sent: it goes once Stripe is set up.
      if (!stripe) return { sent: 0, remaining: false };
      const tenant = await tenantRow(input.tenantId);
      if (!tenant.stripe_customer_id) {
        throw ApplicationFailure.create({
          type: 'NoStripeCustomer',
          message: `Tenant ${tenant.id} has no Stripe customer yet`,
          nonRetryable: true,
        });
      }
      const limit = input.limit ?? 200;
      const rows = await withTenant(orm, tenant.id, (em) =>
        em.execute<UsageRow[]>(
          `select id, kind, quantity, billable_quantity, created_at from usage_records
            where reported_at is null and period_start >= ? and period_start < ?
            order by created_at, id limit ?`,
          [input.periodStart, input.periodEnd, limit + 1],
        ),
      );
      const page = rows.slice(0, limit);
      let sent = 0;
      for (const row of page) {
        await sendUsage(tenant.id, tenant.stripe_customer_id, row, tenant.plan);
        sent += 1;
        Context.current().heartbeat({ sent });
      }
      return { sent, remaining: rows.length > limit };
    },

    /** Reports one call's usage right after the call (best effort: the cycle's reconciliation catches up). */
    async meterCallUsage(input: { tenantId: string; callId: string }): Promise<{ sent: number }> {
      const tenant = await tenantRow(input.tenantId);
      if (!stripe || !tenant.stripe_customer_id) return { sent: 0 };
      const rows = await withTenant(orm, tenant.id, (em) =>
        em.execute<UsageRow[]>(
          `select id, kind, quantity, billable_quantity, created_at from usage_records
            where call_id = ? and reported_at is null`,
          [input.callId],
        ),
      );
      for (const row of rows) await sendUsage(tenant.id, tenant.stripe_customer_id, row, tenant.plan);
      return { sent: rows.length };
    },

    /** Totals the period's usage and what it costs beyond the plan; stores them on the period. */
    async summarizeBillingPeriod(input: {
      tenantId: string;
      period: string;
      periodStart: string;
      periodEnd: string;
      plan: Plan;
      resent: number;
    }): Promise<{
      billableSeconds: number;
      overageSeconds: number;
      overageAmountCents: number;
      usageRecords: number;
      llmTokens: number;
    }> {
      const increment = planLimits(input.plan).billingIncrementSeconds;
      return withTenant(orm, input.tenantId, async (em) => {
        const [sum] = await em.execute<{ seconds: string | null; tokens: string | null; records: number }[]>(
          // A record not yet rounded (never sent) is rounded here, to the plan's increment.
          `select sum(case when kind = 'call_seconds'
                           then coalesce(billable_quantity, ceil(quantity::numeric / ?) * ?) else 0 end) as seconds,
                  sum(case when kind = 'llm_tokens' then quantity else 0 end) as tokens,
                  count(*)::int as records
             from usage_records where period_start >= ? and period_start < ?`,
          [increment, increment, input.periodStart, input.periodEnd],
        );
        const seconds = Number(sum?.seconds ?? 0);
        const charges = periodCharges(input.plan, seconds);
        const totals = {
          billableSeconds: seconds,
          overageSeconds: charges.overageSeconds,
          overageAmountCents: charges.overageAmountCents,
          usageRecords: sum?.records ?? 0,
          llmTokens: Number(sum?.tokens ?? 0),
        };
        await em.execute(
          `update billing_periods set billable_seconds = ?, included_seconds = ?, overage_seconds = ?,
             overage_amount_cents = ?, llm_tokens = ?, usage_records = ?,
             resent_usage_records = greatest(resent_usage_records, ?), closed_at = coalesce(closed_at, now()),
             updated_at = now()
           where period = ?`,
          [
            seconds,
            charges.includedSeconds,
            charges.overageSeconds,
            charges.overageAmountCents,
            totals.llmTokens,
            totals.usageRecords,
            input.resent,
            input.period,
          ],
        );
        return totals;
      });
    },

    /**
     * Reconciliation the other way: what Stripe's talk-seconds meter summed for the customer over
     * the period against the seconds Parley reported. A difference is kept on the period (and
     * logged by the caller) for an operator: re-sending cannot fix it, since Stripe drops a repeated
     * identifier and an older event may be outside its window.
     */
    async compareWithStripeMeter(input: {
      tenantId: string;
      period: string;
      periodStart: string;
      periodEnd: string;
    }): Promise<
      | { compared: false; reason: string }
      | { compared: true; parleySeconds: number; stripeSeconds: number; discrepancySeconds: number }
    > {
      if (!stripe || !billing.secondsMeterId)
        return { compared: false, reason: 'no Stripe meter id configured' };
      const tenant = await tenantRow(input.tenantId);
      if (!tenant.stripe_customer_id) return { compared: false, reason: 'no Stripe customer' };
      let stripeSeconds = 0;
      try {
        for await (const summary of stripe.billing.meters.listEventSummaries(billing.secondsMeterId, {
          customer: tenant.stripe_customer_id,
          start_time: Math.floor(Date.parse(input.periodStart) / 1000),
          end_time: Math.floor(Date.parse(input.periodEnd) / 1000),
        })) {
          stripeSeconds += summary.aggregated_value;
        }
      } catch (err) {
        throw stripeFailure(err, `meter summary ${input.period}`);
      }
      return withTenant(orm, tenant.id, async (em) => {
        const [sum] = await em.execute<{ seconds: string | null }[]>(
          `select sum(billable_quantity) as seconds from usage_records
            where kind = 'call_seconds' and reported_at is not null and period_start >= ? and period_start < ?`,
          [input.periodStart, input.periodEnd],
        );
        const parleySeconds = Number(sum?.seconds ?? 0);
        const discrepancySeconds = parleySeconds - stripeSeconds;
        await em.execute(
          `update billing_periods set stripe_metered_seconds = ?, meter_discrepancy_seconds = ?, updated_at = now()
            where period = ?`,
          [stripeSeconds, discrepancySeconds, input.period],
        );
        return { compared: true, parleySeconds, stripeSeconds, discrepancySeconds };
      });
    },

    /**
     * The overage as an invoice item on its own invoice, finalized so Stripe charges it. Each step
     * has its idempotency key, so a retry after any of them creates nothing twice.
     */
    async invoiceOverage(input: {
      tenantId: string;
      period: string;
      periodStart: string;
      periodEnd: string;
      overageSeconds: number;
      overageAmountCents: number;
    }): Promise<{ invoiceId: string; invoiceItemId: string; status: string }> {
      const tenant = await tenantRow(input.tenantId);
      if (!stripe || !tenant.stripe_customer_id) {
        throw ApplicationFailure.create({
          type: 'NoStripeCustomer',
          message: 'Stripe is not set up for this tenant',
          nonRetryable: true,
        });
      }
      const key = `${tenant.id}:${input.period}`;
      const metadata = { parley_tenant_id: tenant.id, parley_period: input.period };
      try {
        const item = await stripe.invoiceItems.create(
          {
            customer: tenant.stripe_customer_id,
            amount: input.overageAmountCents,
            currency: 'usd',
            description: `Parley call minutes over the plan, ${input.period}: ${Math.ceil(input.overageSeconds / 60)} min`,
            period: {
              start: Math.floor(Date.parse(input.periodStart) / 1000),
              end: Math.floor(Date.parse(input.periodEnd) / 1000),
            },
            metadata,
          },
          { idempotencyKey: `overage-item:${key}` },
        );
        const invoice = await stripe.invoices.create(
          {
            customer: tenant.stripe_customer_id,
            collection_method: 'charge_automatically',
            auto_advance: false,
            pending_invoice_items_behavior: 'include',
            description: `Parley overage ${input.period}`,
            metadata,
          },
          { idempotencyKey: `invoice:${key}` },
        );
        const finalized = await stripe.invoices.finalizeInvoice(
          invoice.id,
          {},
          { idempotencyKey: `invoice-finalize:${key}` },
        );
        await withTenant(orm, tenant.id, (em) =>
          em.execute(
            `update billing_periods set stripe_invoice_item_id = ?, stripe_invoice_id = ?, invoice_status = ?,
               status = 'invoiced', updated_at = now() where period = ?`,
            [item.id, finalized.id, finalized.status ?? 'open', input.period],
          ),
        );
        return { invoiceId: finalized.id, invoiceItemId: item.id, status: finalized.status ?? 'open' };
      } catch (err) {
        throw stripeFailure(err, `overage invoice ${input.period}`);
      }
    },

    /** Asks Stripe to charge the invoice again. A decline is an answer, not an error. */
    async retryInvoicePayment(input: {
      tenantId: string;
      invoiceId: string;
      attempt: number;
    }): Promise<{ paid: boolean; message?: string }> {
      if (!stripe) return { paid: false, message: 'Stripe is not configured' };
      try {
        const invoice = await stripe.invoices.pay(
          input.invoiceId,
          {},
          { idempotencyKey: `invoice-pay:${input.invoiceId}:${input.attempt}` },
        );
        return {
          paid: invoice.status === 'paid',
          ...(invoice.status === 'paid' ? {} : { message: `invoice is ${invoice.status}` }),
        };
      } catch (err) {
        if (err instanceof Stripe.errors.StripeCardError) return { paid: false, message: err.message };
        throw stripeFailure(err, `payment of ${input.invoiceId}`);
      }
    },

    /** Writes the period's and the tenant's billing standing. */
    async saveBillingStanding(input: {
      tenantId: string;
      period: string;
      status: BillingCycleStatus;
      paymentFailures?: number;
      lastPaymentError?: string;
      tenantBillingStatus?: 'active' | 'past_due';
    }): Promise<void> {
      await withTenant(orm, input.tenantId, async (em) => {
        await em.execute(
          `update billing_periods set status = ?, payment_failures = coalesce(?, payment_failures),
             last_payment_error = coalesce(?, last_payment_error),
             paid_at = case when ? = 'paid' then coalesce(paid_at, now()) else paid_at end, updated_at = now()
           where period = ?`,
          [
            input.status,
            input.paymentFailures ?? null,
            input.lastPaymentError ?? null,
            input.status,
            input.period,
          ],
        );
        if (input.tenantBillingStatus && input.tenantBillingStatus !== 'active') {
          await em.execute(
            `update tenants set billing_status = ?, updated_at = now() where id = ? and billing_status = 'active'`,
            [input.tenantBillingStatus, input.tenantId],
          );
        }
      });
    },

    /**
     * The grace period ran out unpaid: no more outbound calling. The tenant is marked suspended (the
     * dialer and campaign launch check it) and every running campaign is paused by billing.
     */
    async suspendOutboundCalling(input: {
      tenantId: string;
      period: string;
    }): Promise<{ campaignsPaused: number }> {
      const running = await withTenant(orm, input.tenantId, async (em) => {
        await em.execute(
          `update tenants set billing_status = 'suspended', outbound_suspended_at = coalesce(outbound_suspended_at, now()),
             updated_at = now() where id = ?`,
          [input.tenantId],
        );
        await em.execute(
          `update billing_periods set status = 'suspended', updated_at = now() where period = ?`,
          [input.period],
        );
        await em.execute(
          `insert into audit_log (tenant_id, actor_type, action, target_type, target_id, after)
           values (?, 'system', 'billing.outbound_suspended', 'tenant', ?, ?::jsonb)`,
          [input.tenantId, input.tenantId, JSON.stringify({ period: input.period })],
        );
        return em.execute<{ id: string }[]>(`select id from campaigns where status = 'running'`);
      });
      let paused = 0;
      for (const campaign of running) {
        try {
          await Context.current()
            .client.workflow.getHandle(campaignWorkflowId(campaign.id))
            .executeUpdate(pauseCampaignUpdate);
          paused += 1;
        } catch {
          // Finished meanwhile: nothing to pause.
          continue;
        }
        await withTenant(orm, input.tenantId, (em) =>
          em.execute(`update campaigns set paused_by = 'billing', updated_at = now() where id = ?`, [
            campaign.id,
          ]),
        );
      }
      return { campaignsPaused: paused };
    },

    /** Paid: outbound calling is allowed again and the campaigns billing paused resume. */
    async liftOutboundSuspension(input: {
      tenantId: string;
      period: string;
    }): Promise<{ campaignsResumed: number }> {
      const paused = await withTenant(orm, input.tenantId, async (em) => {
        const [before] = await em.execute<{ billing_status: string }[]>(
          `select billing_status from tenants where id = ?`,
          [input.tenantId],
        );
        await em.execute(
          `update tenants set billing_status = 'active', outbound_suspended_at = null, updated_at = now() where id = ?`,
          [input.tenantId],
        );
        if (before?.billing_status === 'suspended') {
          await em.execute(
            `insert into audit_log (tenant_id, actor_type, action, target_type, target_id, after)
             values (?, 'system', 'billing.outbound_reinstated', 'tenant', ?, ?::jsonb)`,
            [input.tenantId, input.tenantId, JSON.stringify({ period: input.period })],
          );
        }
        return em.execute<{ id: string }[]>(
          `select id from campaigns where status = 'paused' and paused_by = 'billing'`,
        );
      });
      let resumed = 0;
      for (const campaign of paused) {
        try {
          await Context.current()
            .client.workflow.getHandle(campaignWorkflowId(campaign.id))
            .executeUpdate(resumeCampaignUpdate);
          resumed += 1;
        } catch {
          continue;
        }
        await withTenant(orm, input.tenantId, (em) =>
          em.execute(`update campaigns set paused_by = null, updated_at = now() where id = ?`, [campaign.id]),
        );
      }
      return { campaignsResumed: resumed };
    },
  };
}

export type BillingActivities = ReturnType<typeof createBillingActivities>;
