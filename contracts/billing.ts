/**
 * Contract of billing: `billingCycleWorkflow` (`billing:<tenantId>:<YYYY-MM>`, queue `billing`)
 * closes one tenant's month — meters what Stripe has not received, invoices the overage, and runs
 * dunning when the payment fails. A Temporal Schedule per tenant (`billing-schedule:<tenantId>`,
 * monthly in the tenant's time zone) starts it; the Stripe webhook signals it.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { TASK_QUEUES } from '../temporal-config/task-queues';

export const BILLING_CYCLE_WORKFLOW = 'billingCycleWorkflow';
export const BILLING_QUEUE = TASK_QUEUES.billing;

/** `YYYY-MM`, in the tenant's time zone. */
export type BillingPeriodKey = string;
export const BILLING_PERIOD_KEY = /^\d{4}-(0[1-9]|1[0-2])$/;

export function billingCycleWorkflowId(tenantId: string, period: BillingPeriodKey): string {
  return `billing:${tenantId}:${period}`;
}

export function billingScheduleId(tenantId: string): string {
  return `billing-schedule:${tenantId}`;
}

/** The run a Schedule starts: it names no period and closes the month before its scheduled time. */
export function scheduledBillingWorkflowId(tenantId: string): string {
  return `billing:${tenantId}:scheduled`;
}

export interface BillingCycleInput {
  tenantId: string;
  /** The month to close; absent (a scheduled run): the month before the run, in the tenant's zone. */
  period?: BillingPeriodKey;
}

/** How an unpaid invoice is chased; read from configuration when the cycle starts. */
export interface DunningPolicy {
  /** Seconds between payment retries after a failure. */
  retryIntervalSeconds: number;
  /** Retries of the payment before waiting only for the tenant to pay. */
  maxRetries: number;
  /** Seconds after the first failure before outbound campaigns are suspended. */
  graceSeconds: number;
  /** How long the cycle waits for payment in all before it ends with the invoice still open. */
  maxWaitSeconds: number;
}

export type BillingCycleStatus = 'closing' | 'invoiced' | 'paid' | 'past_due' | 'suspended' | 'void';

export interface BillingCycleState {
  tenantId: string;
  period?: BillingPeriodKey;
  status: BillingCycleStatus;
  usageRecords: number;
  resentUsageRecords: number;
  billableSeconds: number;
  overageSeconds: number;
  overageAmountCents: number;
  /** Parley's reported seconds minus what Stripe's meter summed (absent: not compared). */
  meterDiscrepancySeconds?: number;
  invoiceId?: string;
  paymentFailures: number;
  suspended: boolean;
}

/** Stripe said `invoice.payment_failed` (the webhook, signature verified, signals this). */
export const invoicePaymentFailedSignal =
  defineSignal<[{ invoiceId: string; eventId: string; message: string }]>('invoicePaymentFailed');
/** Stripe said `invoice.paid`. */
export const invoicePaidSignal = defineSignal<[{ invoiceId: string; eventId: string }]>('invoicePaid');
export const billingCycleStateQuery = defineQuery<BillingCycleState>('billingCycleState');
