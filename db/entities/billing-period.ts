import { randomUUID } from 'node:crypto';
import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

export const BILLING_PERIOD_STATUSES = [
  'closing',
  'invoiced',
  'paid',
  'past_due',
  'suspended',
  'void',
] as const;
export type BillingPeriodStatus = (typeof BILLING_PERIOD_STATUSES)[number];

/** One tenant's billing month: what was metered, the overage invoiced, and how payment went. */
export class BillingPeriod {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  /** `YYYY-MM` in the tenant's time zone. */
  period!: string;
  periodStart!: Date;
  periodEnd!: Date;
  status: Opt<BillingPeriodStatus> = 'closing';
  plan!: string;
  billableSeconds: Opt<number> = 0;
  includedSeconds: Opt<number> = 0;
  overageSeconds: Opt<number> = 0;
  overageAmountCents: Opt<number> = 0;
  llmTokens: Opt<number> = 0;
  usageRecords: Opt<number> = 0;
  resentUsageRecords: Opt<number> = 0;
  /** What Stripe's meter summed for the period (when a meter id is configured). */
  stripeMeteredSeconds?: number | null;
  /** Parley's reported seconds minus Stripe's: 0 when they agree. */
  meterDiscrepancySeconds?: number | null;
  stripeInvoiceItemId?: string | null;
  stripeInvoiceId?: string | null;
  invoiceStatus?: string | null;
  paymentFailures: Opt<number> = 0;
  lastPaymentError?: string | null;
  closedAt?: Date | null;
  paidAt?: Date | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const BillingPeriodSchema = new EntitySchema<BillingPeriod>({
  class: BillingPeriod,
  tableName: 'billing_periods',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    period: { type: 'text' },
    periodStart: { type: 'datetime' },
    periodEnd: { type: 'datetime' },
    status: { type: 'text' },
    plan: { type: 'text' },
    billableSeconds: { type: new BigIntType('number') },
    includedSeconds: { type: new BigIntType('number') },
    overageSeconds: { type: new BigIntType('number') },
    overageAmountCents: { type: new BigIntType('number') },
    llmTokens: { type: new BigIntType('number') },
    usageRecords: { type: 'integer' },
    resentUsageRecords: { type: 'integer' },
    stripeMeteredSeconds: { type: new BigIntType('number'), nullable: true },
    meterDiscrepancySeconds: { type: new BigIntType('number'), nullable: true },
    stripeInvoiceItemId: { type: 'text', nullable: true },
    stripeInvoiceId: { type: 'text', nullable: true },
    invoiceStatus: { type: 'text', nullable: true },
    paymentFailures: { type: 'integer' },
    lastPaymentError: { type: 'text', nullable: true },
    closedAt: { type: 'datetime', nullable: true },
    paidAt: { type: 'datetime', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});
