/**
 * Billing: the tenant's plan, its limits and this month's usage (`GET /v1/billing`), usage per
 * day for the dashboard's chart, its closed periods and invoices, a manual start of a period's
 * billing cycle for operators; and Stripe's webhook (`POST /stripe/webhook`): the signature is
 * verified over the raw body before anything is read, and invoice events signal the period's
 * `billingCycleWorkflow`.
 */
import express, { type Router } from 'express';
import { WorkflowIdReusePolicy, WorkflowNotFoundError } from '@temporalio/client';
import Stripe from 'stripe';
import { z } from 'zod';
import {
  BILLING_CYCLE_WORKFLOW,
  BILLING_PERIOD_KEY,
  BILLING_QUEUE,
  billingCycleWorkflowId,
  invoicePaidSignal,
  invoicePaymentFailedSignal,
  type BillingCycleInput,
} from '../../contracts/billing';
import { periodBounds } from '../../activities/billing';
import { planLimits } from '../../contracts/plans';
import { BillingPeriod, Tenant, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import type { ApiDeps } from '../deps';
import { AppError, ConflictError, ServiceUnavailableError } from '../errors';
import type { ApiRouter } from '../routing';
import { recordAudit } from '../services/audit';

const BILLING_ADMINS = ['owner', 'admin'] as const satisfies readonly Role[];
/** Stripe sends events up to a few hundred kB; anything far larger is not Stripe. */
const STRIPE_WEBHOOK_BODY_LIMIT = '1mb';

const periodView = z.object({
  period: z.string(),
  periodStart: z.string(),
  periodEnd: z.string(),
  status: z.string(),
  plan: z.string(),
  billableSeconds: z.number(),
  includedSeconds: z.number(),
  overageSeconds: z.number(),
  overageAmountCents: z.number(),
  llmTokens: z.number(),
  usageRecords: z.number(),
  resentUsageRecords: z.number(),
  stripeMeteredSeconds: z.number().nullable(),
  meterDiscrepancySeconds: z.number().nullable(),
  invoiceId: z.string().nullable(),
  invoiceStatus: z.string().nullable(),
  paymentFailures: z.number(),
  lastPaymentError: z.string().nullable(),
  paidAt: z.string().nullable(),
});

function toPeriodView(p: BillingPeriod): z.infer<typeof periodView> {
  return {
    period: p.period,
    periodStart: p.periodStart.toISOString(),
    periodEnd: p.periodEnd.toISOString(),
    status: p.status,
    plan: p.plan,
    billableSeconds: Number(p.billableSeconds),
    includedSeconds: Number(p.includedSeconds),
    overageSeconds: Number(p.overageSeconds),
    overageAmountCents: Number(p.overageAmountCents),
    llmTokens: Number(p.llmTokens),
    usageRecords: p.usageRecords,
    resentUsageRecords: p.resentUsageRecords,
    stripeMeteredSeconds: p.stripeMeteredSeconds ?? null,
    meterDiscrepancySeconds: p.meterDiscrepancySeconds ?? null,
    invoiceId: p.stripeInvoiceId ?? null,
    invoiceStatus: p.invoiceStatus ?? null,
    paymentFailures: p.paymentFailures,
    lastPaymentError: p.lastPaymentError ?? null,
    paidAt: p.paidAt?.toISOString() ?? null,
  };
}

export function registerBillingRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/billing',
    summary:
      "The plan and its limits, billing standing, this month's usage (tenant time zone) and the closed periods with their invoices",
    tag: 'billing',
    access: 'authenticated',
    responses: {
      200: {
        description: 'Billing overview',
        schema: z.object({ plan: z.string(), billingStatus: z.string(), periods: z.array(periodView) }),
      },
    },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const tenant = await em.findOneOrFail(Tenant, { id: auth.tenantId });
        const [usage] = await em.execute<
          { seconds: string | null; tokens: string | null; calls: number; since: Date }[]
        >(
          `select sum(case when kind = 'call_seconds' then coalesce(billable_quantity, quantity) end) as seconds,
                  sum(case when kind = 'llm_tokens' then quantity end) as tokens,
                  count(distinct call_id)::int as calls,
                  date_trunc('month', now() at time zone ?) at time zone ? as since
             from usage_records
            where period_start >= date_trunc('month', now() at time zone ?) at time zone ?`,
          [tenant.timeZone, tenant.timeZone, tenant.timeZone, tenant.timeZone],
        );
        const limits = planLimits(tenant.plan);
        const periods = await em.find(BillingPeriod, {}, { orderBy: { period: 'desc' }, limit: 24 });
        const seconds = Number(usage?.seconds ?? 0);
        return {
          body: {
            plan: tenant.plan,
            limits,
            billingStatus: tenant.billingStatus,
            outboundSuspendedAt: tenant.outboundSuspendedAt?.toISOString() ?? null,
            stripeCustomerId: tenant.stripeCustomerId ?? null,
            currentPeriod: {
              since: usage?.since ? new Date(usage.since).toISOString() : null,
              calls: usage?.calls ?? 0,
              billableSeconds: seconds,
              includedSeconds: limits.includedMinutes * 60,
              remainingSeconds: Math.max(0, limits.includedMinutes * 60 - seconds),
              llmTokens: Number(usage?.tokens ?? 0),
            },
            periods: periods.map(toPeriodView),
          },
        };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/billing/usage',
    summary: 'Billable seconds, calls and LLM tokens per day (tenant time zone), for the usage chart',
    tag: 'billing',
    access: 'authenticated',
    query: z.object({ days: z.coerce.number().int().min(1).max(366).default(31) }),
    responses: { 200: { description: 'One entry per day with usage' } },
    handler: async ({ auth, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const tenant = await em.findOneOrFail(Tenant, { id: auth.tenantId });
        const rows = await em.execute<
          { day: string; seconds: string | null; tokens: string | null; calls: number }[]
        >(
          `select to_char(period_start at time zone ?, 'YYYY-MM-DD') as day,
                  sum(case when kind = 'call_seconds' then coalesce(billable_quantity, quantity) end) as seconds,
                  sum(case when kind = 'llm_tokens' then quantity end) as tokens,
                  count(distinct call_id)::int as calls
             from usage_records where period_start >= now() - make_interval(days => ?)
            group by 1 order by 1`,
          [tenant.timeZone, query.days],
        );
        return {
          body: {
            timeZone: tenant.timeZone,
            data: rows.map((r) => ({
              day: r.day,
              calls: r.calls,
              billableSeconds: Number(r.seconds ?? 0),
              llmTokens: Number(r.tokens ?? 0),
            })),
          },
        };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/billing/cycles',
    summary:
      "Close a month now (operators; the monthly Schedule does this on the 1st): starts that period's billing cycle, once",
    tag: 'billing',
    access: BILLING_ADMINS,
    body: z.object({ period: z.string().regex(BILLING_PERIOD_KEY, 'must be YYYY-MM') }).strict(),
    responses: {
      202: { description: 'Started', schema: z.object({ workflowId: z.string(), period: z.string() }) },
      409: { description: 'BILLING_CYCLE_EXISTS: this month already has its cycle' },
      422: { description: 'BILLING_PERIOD_NOT_CLOSED: the month has not ended yet' },
    },
    handler: async ({ auth, body, req }) => {
      const tenant = await withTenant(deps.orm, auth.tenantId, (em) =>
        em.findOneOrFail(Tenant, { id: auth.tenantId }),
      );
      // A month closes once it is over in the tenant's time zone.
      if (periodBounds(body.period, tenant.timeZone).end.getTime() > Date.now()) {
        throw new AppError(422, 'BILLING_PERIOD_NOT_CLOSED', `${body.period} has not ended yet`, {
          period: body.period,
        });
      }
      const workflowId = billingCycleWorkflowId(auth.tenantId, body.period);
      const input: BillingCycleInput = { tenantId: auth.tenantId, period: body.period };
      try {
        await deps.temporal.workflow.start(BILLING_CYCLE_WORKFLOW, {
          workflowId,
          taskQueue: BILLING_QUEUE,
          args: [input],
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        });
      } catch (err) {
        if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError') {
          throw new ConflictError('BILLING_CYCLE_EXISTS', `${body.period} already has its billing cycle`, {
            workflowId,
          });
        }
        throw new ServiceUnavailableError(
          'TEMPORAL_UNAVAILABLE',
          'The billing cycle could not be started',
          err,
        );
      }
      await withTenant(deps.orm, auth.tenantId, async (em) => {
        recordAudit(
          em,
          auth,
          {
            action: 'billing.cycle_started',
            targetType: 'billing_period',
            targetId: body.period,
            after: { workflowId },
          },
          req.ip,
        );
        await em.flush();
      });
      return { status: 202, body: { workflowId, period: body.period } };
    },
  });
}

interface InvoiceEventObject {
  id?: string;
  metadata?: Record<string, string> | null;
  last_finalization_error?: { message?: string } | null;
}

/**
 * `POST /stripe/webhook`: raw body, `Stripe-Signature` verified with STRIPE_WEBHOOK_SECRET (400
 * STRIPE_SIGNATURE_INVALID, nothing read or done otherwise). `invoice.payment_failed` and
 * `invoice.paid` signal the period's billing cycle; other events are acknowledged and ignored.
 */
export function createStripeWebhookRouter(deps: ApiDeps): Router {
  const router = express.Router();
  const verifier = new Stripe(deps.config.STRIPE_SECRET_KEY ?? 'sk_test_unused_for_signature_checks');
  router.post(
    '/webhook',
    express.raw({ type: () => true, limit: STRIPE_WEBHOOK_BODY_LIMIT }),
    async (req, res, next) => {
      try {
        const secret = deps.config.STRIPE_WEBHOOK_SECRET;
        if (!secret) {
          throw new ServiceUnavailableError(
            'STRIPE_WEBHOOK_NOT_CONFIGURED',
            'STRIPE_WEBHOOK_SECRET is not set',
          );
        }
        const signature = req.get('stripe-signature');
        if (!signature)
          throw new AppError(400, 'STRIPE_SIGNATURE_MISSING', 'The Stripe-Signature header is missing');
        let event: Stripe.Event;
        try {
          event = verifier.webhooks.constructEvent(
            Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
            signature,
            secret,
          );
        } catch (err) {
          throw new AppError(
            400,
            'STRIPE_SIGNATURE_INVALID',
            'The Stripe-Signature does not match this body',
            {
              reason: err instanceof Error ? err.message : String(err),
            },
          );
        }
        if (event.type !== 'invoice.payment_failed' && event.type !== 'invoice.paid') {
          res.status(200).json({ received: true, handled: false });
          return;
        }
        const invoice = event.data.object as InvoiceEventObject;
        const invoiceId = invoice.id ?? '';
        let tenantId = invoice.metadata?.parley_tenant_id;
        let period = invoice.metadata?.parley_period;
        if (!tenantId || !period) {
          const [found] = await deps.orm.em
            .fork()
            .execute<{ tenant_id: string; period: string }[]>(
              'select * from parley_billing_period_by_invoice(?)',
              [invoiceId],
            );
          tenantId = found?.tenant_id;
          period = found?.period;
        }
        if (!tenantId || !period || !BILLING_PERIOD_KEY.test(period)) {
          // Not one of Parley's period invoices (e.g. the subscription's own): nothing to do.
          res.status(200).json({ received: true, handled: false });
          return;
        }
        const handle = deps.temporal.workflow.getHandle(billingCycleWorkflowId(tenantId, period));
        try {
          if (event.type === 'invoice.paid') {
            await handle.signal(invoicePaidSignal, { invoiceId, eventId: event.id });
          } else {
            await handle.signal(invoicePaymentFailedSignal, {
              invoiceId,
              eventId: event.id,
              message: invoice.last_finalization_error?.message ?? 'payment failed',
            });
          }
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) {
            res
              .status(200)
              .json({ received: true, handled: false, reason: 'no open billing cycle for this invoice' });
            return;
          }
          // Stripe retries a webhook that failed: let it, rather than lose the event.
          throw new ServiceUnavailableError(
            'TEMPORAL_UNAVAILABLE',
            'The billing cycle could not be signalled',
            err,
          );
        }
        deps.logger.info({ tenantId, period, type: event.type, eventId: event.id }, 'stripe invoice event');
        res.status(200).json({ received: true, handled: true });
      } catch (err) {
        next(err);
      }
    },
  );
  return router;
}
