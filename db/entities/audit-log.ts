import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn } from './common';

export type ActorType = 'user' | 'api_key' | 'system';

/** Who did what to which thing, with the state before and after. Append-only. */
export class AuditLogEntry {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  actorType!: ActorType;
  actorId?: string | null;
  action!: string;
  targetType!: string;
  targetId?: string | null;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  ip?: string | null;
  createdAt!: Opt<Date>;
}

export const AuditLogEntrySchema = new EntitySchema<AuditLogEntry>({
  class: AuditLogEntry,
  tableName: 'audit_log',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    actorType: { type: 'text' },
    actorId: { type: 'text', nullable: true },
    action: { type: 'text' },
    targetType: { type: 'text' },
    targetId: { type: 'text', nullable: true },
    before: { type: 'json', nullable: true },
    after: { type: 'json', nullable: true },
    ip: { type: 'text', nullable: true },
    createdAt: createdAtColumn,
  },
});
