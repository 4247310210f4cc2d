/** The audit log: who did what, with before/after, for admins. */
import { z } from 'zod';
import { ApiKey, AuditLogEntry, User } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import type { ApiDeps } from '../deps';
import { findNewestFirst } from '../pagination';
import type { ApiRouter } from '../routing';

const AUDIT_READERS = ['owner', 'admin'] as const;

const auditEntryView = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.object({
    type: z.string().meta({ description: 'user, api_key or system' }),
    id: z.string().nullable(),
    email: z.string().nullable().meta({ description: 'A user actor: their email (null if since deleted)' }),
    name: z.string().nullable().meta({ description: "A user's name, or an API key's name" }),
  }),
  action: z.string(),
  target: z.object({ type: z.string(), id: z.string().nullable() }),
  before: z.record(z.string(), z.unknown()).nullable(),
  after: z.record(z.string(), z.unknown()).nullable(),
  ip: z.string().nullable(),
});

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function registerAuditLogRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/audit-log',
    summary: "The tenant's audit log, newest first, with filters and cursor pagination (owner, admin)",
    tag: 'audit',
    access: AUDIT_READERS,
    query: z.object({
      action: z.string().max(100).optional().meta({ description: 'Exact action, e.g. user.created' }),
      actorId: z.string().max(100).optional(),
      targetType: z.string().max(100).optional(),
      targetId: z.string().max(200).optional(),
      from: z.iso.datetime({ offset: true }).optional().meta({ description: 'At or after (inclusive)' }),
      to: z.iso.datetime({ offset: true }).optional().meta({ description: 'Before (exclusive)' }),
      limit: z.coerce.number().int().min(1).max(200).default(50),
      cursor: z.string().max(200).optional(),
    }),
    responses: {
      200: {
        description: 'A page of audit entries',
        schema: z.object({ data: z.array(auditEntryView), nextCursor: z.string().nullable() }),
      },
      403: { description: 'INSUFFICIENT_ROLE: only owners and admins read the audit log' },
    },
    handler: async ({ auth, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const where: Record<string, unknown> = {};
        if (query.action) where.action = query.action;
        if (query.actorId) where.actorId = query.actorId;
        if (query.targetType) where.targetType = query.targetType;
        if (query.targetId) where.targetId = query.targetId;
        const { rows: page, nextCursor } = await findNewestFirst(em, AuditLogEntry, where, query);

        // Name the actors: users by email and name, API keys by name (RLS keeps both to this tenant).
        const ids = (type: string) => [
          ...new Set(
            page
              .filter((e) => e.actorType === type && e.actorId && uuidPattern.test(e.actorId))
              .map((e) => e.actorId!),
          ),
        ];
        const userIds = ids('user');
        const keyIds = ids('api_key');
        const users = userIds.length ? await em.find(User, { id: { $in: userIds } }) : [];
        const keys = keyIds.length ? await em.find(ApiKey, { id: { $in: keyIds } }) : [];
        const userById = new Map(users.map((u) => [u.id, u]));
        const keyById = new Map(keys.map((k) => [k.id, k]));

        const data = page.map((e) => {
          const user = e.actorType === 'user' && e.actorId ? userById.get(e.actorId) : undefined;
          const key = e.actorType === 'api_key' && e.actorId ? keyById.get(e.actorId) : undefined;
          return {
            id: e.id,
            at: e.createdAt.toISOString(),
            actor: {
              type: e.actorType,
              id: e.actorId ?? null,
              email: user?.email ?? null,
              name: user?.name ?? key?.name ?? null,
            },
            action: e.action,
            target: { type: e.targetType, id: e.targetId ?? null },
            before: e.before ?? null,
            after: e.after ?? null,
            ip: e.ip ?? null,
          };
        });
        return { body: { data, nextCursor } };
      }),
  });
}
