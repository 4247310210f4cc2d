/**
 * billingCycleWorkflow (`billing:<tenantId>:<YYYY-MM>`, queue `billing`): closes one tenant's month.
 *
 * 1. Reconciles: every usage record of the month that Stripe has not acknowledged is sent as a
 *    Billing Meter event (identifier = the record's id, so a resend is never counted twice).
 * 2. Totals the month and prices what went over the plan's included minutes.
 * 3. Invoices the overage (invoice item, invoice, finalize — each with its idempotency key).
 * 4. Waits for Stripe's word (the webhook signals `invoicePaid` / `invoicePaymentFailed`). On a
 *    failure it runs dunning with durable timers: the tenant is `past_due` and told through its
 *    webhook, the payment is retried at intervals, and once the grace period runs out unpaid the
 *    tenant's outbound calling is suspended (running campaigns paused). Payment lifts it.
 *
 * The Schedule's run (`billing:<tenantId>:scheduled`, no period) only works out which month closed
 * and starts the cycle under that month's id; a second start for the same month is refused by id.
 */
import {
  ParentClosePolicy,
  condition,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import {
  billingCycleStateQuery,
  billingCycleWorkflowId,
  invoicePaidSignal,
  invoicePaymentFailedSignal,
  type BillingCycleInput,
  type BillingCycleState,
} from '../contracts/billing';
import { workflowNow } from './clock';
import { customerWebhookWorkflow } from './customer-webhook-workflow';

/** Patch id: the cycle compares Stripe's meter total with Parley's (cycles before it did not). */
const COMPARE_STRIPE_METER = 'compare-stripe-meter';

const db = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
/** Stripe calls: a Stripe outage is waited out (retries for up to a day). */
const stripe = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  scheduleToCloseTimeout: '24 hours',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes' },
});
/** Campaign pauses and resumes go through the campaigns' own workflows. */
const campaigns = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

export async function billingCycleWorkflow(input: BillingCycleInput): Promise<BillingCycleState> {
  const state: BillingCycleState = {
    tenantId: input.tenantId,
    period: input.period,
    status: 'closing',
    usageRecords: 0,
    resentUsageRecords: 0,
    billableSeconds: 0,
    overageSeconds: 0,
    overageAmountCents: 0,
    paymentFailures: 0,
    suspended: false,
  };
  setHandler(billingCycleStateQuery, () => state);

  const opened = await db.openBillingPeriod({
    tenantId: input.tenantId,
    period: input.period,
    scheduledAt: workflowInfo().startTime.toISOString(),
  });
  state.period = opened.period;

  if (!input.period) {
    // A scheduled run: the month's own cycle does the work, once, whoever starts it.
    try {
      await startChild(billingCycleWorkflow, {
        workflowId: billingCycleWorkflowId(input.tenantId, opened.period),
        args: [{ tenantId: input.tenantId, period: opened.period }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    return state;
  }
  if (opened.status === 'paid' || opened.status === 'void') {
    state.status = opened.status;
    return state;
  }

  let paid = false;
  const failures: { invoiceId: string; message: string }[] = [];
  // Stripe delivers an event at least once: each counts once.
  const seenEvents = new Set<string>();
  const fresh = (eventId: string) => !seenEvents.has(eventId) && Boolean(seenEvents.add(eventId));
  setHandler(invoicePaidSignal, (event) => {
    if (fresh(event.eventId) && (!state.invoiceId || event.invoiceId === state.invoiceId)) paid = true;
  });
  setHandler(invoicePaymentFailedSignal, (event) => {
    if (fresh(event.eventId) && (!state.invoiceId || event.invoiceId === state.invoiceId))
      failures.push(event);
  });

  // 1. Reconcile what Stripe has been told.
  for (;;) {
    const page = await stripe.reportUnreportedUsage({
      tenantId: input.tenantId,
      periodStart: opened.periodStart,
      periodEnd: opened.periodEnd,
    });
    state.resentUsageRecords += page.sent;
    if (!page.remaining) break;
  }
  // 2. Total the month.
  const totals = await db.summarizeBillingPeriod({
    tenantId: input.tenantId,
    period: opened.period,
    periodStart: opened.periodStart,
    periodEnd: opened.periodEnd,
    plan: opened.plan,
    resent: state.resentUsageRecords,
  });
  Object.assign(state, {
    usageRecords: totals.usageRecords,
    billableSeconds: totals.billableSeconds,
    overageSeconds: totals.overageSeconds,
    overageAmountCents: totals.overageAmountCents,
  });
  // And the other way: does Stripe's meter hold what Parley reported?
  if (patched(COMPARE_STRIPE_METER)) {
    const meter = await stripe.compareWithStripeMeter({
      tenantId: input.tenantId,
      period: opened.period,
      periodStart: opened.periodStart,
      periodEnd: opened.periodEnd,
    });
    if (meter.compared) state.meterDiscrepancySeconds = meter.discrepancySeconds;
  }
  // 3. Invoice the overage (nothing over the plan, or no Stripe customer: nothing to charge).
  if (totals.overageAmountCents <= 0 || !opened.stripeCustomerId) {
    state.status = 'paid';
    await db.saveBillingStanding({ tenantId: input.tenantId, period: opened.period, status: 'paid' });
    return state;
  }
  const invoice = await stripe.invoiceOverage({
    tenantId: input.tenantId,
    period: opened.period,
    periodStart: opened.periodStart,
    periodEnd: opened.periodEnd,
    overageSeconds: totals.overageSeconds,
    overageAmountCents: totals.overageAmountCents,
  });
  state.invoiceId = invoice.invoiceId;
  state.status = invoice.status === 'paid' ? 'paid' : 'invoiced';
  paid ||= invoice.status === 'paid';

  // 4. Wait for payment; dun on failure.
  const policy = await db.billingPolicy();
  const deadline = workflowNow() + policy.maxWaitSeconds * 1000;
  const notify = (
    event: 'billing.payment_failed' | 'billing.outbound_suspended' | 'billing.outbound_reinstated',
    n = 0,
  ) =>
    startChild(customerWebhookWorkflow, {
      workflowId: `webhook:${input.tenantId}:${event}:${opened.period}:${n}`,
      taskQueue: 'integrations',
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [
        {
          tenantId: input.tenantId,
          event,
          eventId: `${event}:${input.tenantId}:${opened.period}:${n}`,
          payload: {
            period: opened.period,
            invoiceId: state.invoiceId,
            amountDueCents: totals.overageAmountCents,
            paymentFailures: state.paymentFailures,
          },
        },
      ],
    });

  await condition(() => paid || failures.length > 0, Math.max(1, deadline - workflowNow()));
  if (!paid && failures.length > 0) {
    // The query shows a standing once it is stored.
    await db.saveBillingStanding({
      tenantId: input.tenantId,
      period: opened.period,
      status: 'past_due',
      paymentFailures: failures.length,
      lastPaymentError: failures[failures.length - 1]?.message,
      tenantBillingStatus: 'past_due',
    });
    state.paymentFailures = failures.length;
    state.status = 'past_due';
    await notify('billing.payment_failed');
    const graceEnds = workflowNow() + policy.graceSeconds * 1000;
    let retries = 0;
    let nextRetryAt = workflowNow() + policy.retryIntervalSeconds * 1000;
    while (!paid) {
      const wakeAt = Math.min(
        retries < policy.maxRetries ? nextRetryAt : Infinity,
        state.suspended ? Infinity : graceEnds,
        deadline,
      );
      if (await condition(() => paid, Math.max(1, wakeAt - workflowNow()))) break;
      const now = workflowNow();
      if (now >= deadline) break;
      if (!state.suspended && now >= graceEnds) {
        await campaigns.suspendOutboundCalling({ tenantId: input.tenantId, period: opened.period });
        state.suspended = true;
        state.status = 'suspended';
        await notify('billing.outbound_suspended');
      }
      if (retries < policy.maxRetries && now >= nextRetryAt) {
        retries += 1;
        const attempt = await stripe.retryInvoicePayment({
          tenantId: input.tenantId,
          invoiceId: invoice.invoiceId,
          attempt: retries,
        });
        nextRetryAt = workflowNow() + policy.retryIntervalSeconds * 1000;
        if (attempt.paid) {
          paid = true;
          break;
        }
        state.paymentFailures += 1;
        await db.saveBillingStanding({
          tenantId: input.tenantId,
          period: opened.period,
          status: state.status,
          paymentFailures: state.paymentFailures,
          lastPaymentError: attempt.message,
        });
        await notify('billing.payment_failed', retries);
      }
    }
  }
  if (!paid) {
    // Waited as long as allowed: the invoice stays open in Stripe; the period keeps its standing.
    return state;
  }
  const wasRestricted = state.status === 'past_due' || state.suspended;
  state.status = 'paid';
  if (wasRestricted) {
    await campaigns.liftOutboundSuspension({ tenantId: input.tenantId, period: opened.period });
    if (state.suspended) await notify('billing.outbound_reinstated');
    state.suspended = false;
  }
  await db.saveBillingStanding({ tenantId: input.tenantId, period: opened.period, status: 'paid' });
  return state;
}
