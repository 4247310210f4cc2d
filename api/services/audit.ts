/** Appends an audit entry inside the caller's tenant transaction, so the entry and the change commit together. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditLogEntry } from '../../db/entities';
import type { AuthContext } from '../routing';

export interface AuditEvent {
  action: string;
  targetType: string;
  targetId?: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
}

export function recordAudit(em: EntityManager, auth: AuthContext, event: AuditEvent, ip?: string): void {
  em.create(AuditLogEntry, {
    tenantId: auth.tenantId,
    actorType: auth.actor.type,
    actorId: auth.actor.id,
    action: event.action,
    targetType: event.targetType,
    targetId: event.targetId ?? null,
    before: event.before ?? null,
    after: event.after ?? null,
    ip: ip ?? null,
  });
}
