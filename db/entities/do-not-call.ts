import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, tenantIdColumn } from './common';

/** A number the tenant must never dial, whether or not it belongs to a contact. */
export class DoNotCallEntry {
  tenantId!: string;
  phoneE164!: string;
  reason?: string | null;
  createdAt!: Opt<Date>;
}

export const DoNotCallEntrySchema = new EntitySchema<DoNotCallEntry>({
  class: DoNotCallEntry,
  tableName: 'do_not_call',
  properties: {
    tenantId: { ...tenantIdColumn, primary: true },
    phoneE164: { type: 'text', primary: true },
    reason: { type: 'text', nullable: true },
    createdAt: createdAtColumn,
  },
});
