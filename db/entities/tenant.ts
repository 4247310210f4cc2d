import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, updatedAtColumn } from './common';

export const TENANT_STATUSES = ['provisioning', 'active', 'suspended'] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];
export const PLANS = ['free', 'pro', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];
export const BILLING_STATUSES = ['active', 'past_due', 'suspended'] as const;
export type BillingStatus = (typeof BILLING_STATUSES)[number];

export class Tenant {
  id: Opt<string> = randomUUID();
  name!: string;
  slug!: string;
  status: Opt<TenantStatus> = 'provisioning';
  plan: Opt<Plan> = 'free';
  timeZone: Opt<string> = 'UTC';
  defaultRegion: Opt<string> = 'US';
  settings: Opt<Record<string, unknown>> = {};
  stripeCustomerId?: string | null;
  stripeSubscriptionId?: string | null;
  /** past_due while an invoice is unpaid; suspended (no outbound calling) after the grace period. */
  billingStatus: Opt<BillingStatus> = 'active';
  outboundSuspendedAt?: Date | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const TenantSchema = new EntitySchema<Tenant>({
  class: Tenant,
  tableName: 'tenants',
  properties: {
    id: idColumn,
    name: { type: 'text' },
    slug: { type: 'text', unique: true },
    status: { type: 'text' },
    plan: { type: 'text' },
    timeZone: { type: 'text' },
    defaultRegion: { type: 'text' },
    settings: { type: 'json' },
    stripeCustomerId: { type: 'text', nullable: true },
    stripeSubscriptionId: { type: 'text', nullable: true },
    billingStatus: { type: 'text' },
    outboundSuspendedAt: { type: 'datetime', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});
