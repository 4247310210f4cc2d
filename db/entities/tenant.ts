import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, updatedAtColumn } from './common';

export const TENANT_STATUSES = ['provisioning', 'active', 'suspended'] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];
export const PLANS = ['free', 'pro', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];

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
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});
