/** API keys for programs. The secret is shown once at creation; only its hash is stored. */
import { z } from 'zod';
import { ApiKey, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { generateApiKey } from '../auth/api-keys';
import type { ApiDeps } from '../deps';
import { NotFoundError } from '../errors';
import type { ApiRouter } from '../routing';
import { recordAudit } from '../services/audit';
import { apiKeyView, idParams, toApiKeyView } from '../schemas';
import { USER_MANAGERS } from './users';

/** Keys act for programs, never as owners (only owners and admins create keys at all). */
const KEY_ROLES = ['admin', 'designer', 'campaign_manager', 'viewer'] as const satisfies readonly Role[];

export function registerApiKeyRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/api-keys',
    summary: "List the tenant's API keys (never their secrets)",
    tag: 'api-keys',
    access: USER_MANAGERS,
    responses: { 200: { description: 'API keys', schema: z.object({ data: z.array(apiKeyView) }) } },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const keys = await em.find(ApiKey, {}, { orderBy: { createdAt: 'desc' } });
        return { body: { data: keys.map(toApiKeyView) } };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/api-keys',
    summary: 'Create an API key; the response holds the secret, shown this once',
    tag: 'api-keys',
    access: USER_MANAGERS,
    body: z.object({ name: z.string().trim().min(1).max(100), role: z.enum(KEY_ROLES).default('viewer') }),
    responses: { 201: { description: 'Created', schema: apiKeyView.extend({ key: z.string() }) } },
    handler: async ({ auth, body, req }) => {
      const generated = generateApiKey(auth.tenantId);
      return withTenant(deps.orm, auth.tenantId, async (em) => {
        const apiKey = em.create(ApiKey, {
          tenantId: auth.tenantId,
          name: body.name,
          role: body.role,
          prefix: generated.prefix,
          keyHash: generated.hash,
          createdByUserId: auth.actor.type === 'user' ? auth.actor.id : null,
        });
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'api_key.created',
            targetType: 'api_key',
            targetId: apiKey.id,
            after: { name: apiKey.name, role: apiKey.role, prefix: apiKey.prefix },
          },
          req.ip,
        );
        return { status: 201, body: { ...toApiKeyView(apiKey), key: generated.key } };
      });
    },
  });

  api.route({
    method: 'delete',
    path: '/v1/api-keys/:id',
    summary: 'Revoke an API key; it stops working at once',
    tag: 'api-keys',
    access: USER_MANAGERS,
    params: idParams,
    responses: { 200: { description: 'Revoked', schema: apiKeyView } },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const apiKey = await em.findOne(ApiKey, { id: params.id });
        if (!apiKey) throw new NotFoundError('API key', params.id);
        if (!apiKey.revokedAt) {
          apiKey.revokedAt = new Date();
          recordAudit(
            em,
            auth,
            {
              action: 'api_key.revoked',
              targetType: 'api_key',
              targetId: apiKey.id,
              before: { revoked: false },
              after: { revoked: true },
            },
            req.ip,
          );
        }
        return { body: toApiKeyView(apiKey) };
      }),
  });
}
