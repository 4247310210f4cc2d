import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn } from './common';

/** Metered usage; its id is the Stripe meter event `identifier`, so a re-send never double-bills. */
export class UsageRecord {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  callId?: string | null;
  kind!: string;
  quantity!: number;
  /** `quantity` rounded up to the plan's billing increment: what Stripe is sent. */
  billableQuantity?: number | null;
  llmTokens: Opt<number> = 0;
  periodStart!: Date;
  reportedAt?: Date | null;
  createdAt!: Opt<Date>;
}

export const UsageRecordSchema = new EntitySchema<UsageRecord>({
  class: UsageRecord,
  tableName: 'usage_records',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    callId: { type: 'uuid', nullable: true },
    kind: { type: 'text' },
    quantity: { type: 'integer' },
    billableQuantity: { type: 'integer', nullable: true },
    llmTokens: { type: 'integer' },
    periodStart: { type: 'datetime' },
    reportedAt: { type: 'datetime', nullable: true },
    createdAt: createdAtColumn,
  },
});
