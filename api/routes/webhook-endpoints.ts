/**
 * A tenant's webhook endpoints. The signing secret is generated here, returned once at creation
 * and stored only sealed (lib/secret-box); listings never include it.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { WEBHOOK_EVENTS } from '../../activities/customer-webhooks';
import { WebhookEndpoint, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { sealSecret } from '../../lib/secret-box';
import type { ApiDeps } from '../deps';
import { NotFoundError } from '../errors';
import type { ApiRouter } from '../routing';
import { idParams } from '../schemas';
import { recordAudit } from '../services/audit';

export const WEBHOOK_MANAGERS = ['owner', 'admin'] as const satisfies readonly Role[];

/** Plain http only reaches a developer's own machine, and never in production. */
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export const webhookEndpointView = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENTS)),
  enabled: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

function toWebhookEndpointView(e: WebhookEndpoint): z.infer<typeof webhookEndpointView> {
  return {
    id: e.id,
    url: e.url,
    events: e.events as z.infer<typeof webhookEndpointView>['events'],
    enabled: e.enabled,
    createdAt: e.createdAt.toISOString(),
    updatedAt: e.updatedAt.toISOString(),
  };
}

function webhookUrl(allowLocalHttp: boolean) {
  return z
    .string()
    .trim()
    .max(2048)
    .describe(allowLocalHttp ? 'https URL (http allowed for localhost / 127.0.0.1)' : 'https URL')
    .superRefine((value, ctx) => {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be an absolute URL' });
        return;
      }
      const localHttp = url.protocol === 'http:' && LOCAL_HOSTS.has(url.hostname);
      if (url.protocol !== 'https:' && !(allowLocalHttp && localHttp)) {
        ctx.addIssue({
          code: 'custom',
          message: allowLocalHttp
            ? 'must be an https URL (http only for localhost or 127.0.0.1)'
            : 'must be an https URL',
        });
      }
      if (url.username || url.password) {
        ctx.addIssue({ code: 'custom', message: 'must not contain credentials' });
      }
    });
}

/** `whsec_` + 32 random bytes; the whole string is the HMAC key. */
function generateSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export function registerWebhookEndpointRoutes(api: ApiRouter, deps: ApiDeps): void {
  const createBody = z.object({
    url: webhookUrl(deps.config.NODE_ENV !== 'production'),
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1, 'must name at least one event')
      .transform((events) => [...new Set(events)]),
    enabled: z.boolean().default(true),
  });

  api.route({
    method: 'get',
    path: '/v1/webhook-endpoints',
    summary: "List the tenant's webhook endpoints (never their secrets)",
    tag: 'webhooks',
    access: WEBHOOK_MANAGERS,
    responses: {
      200: { description: 'Webhook endpoints', schema: z.object({ data: z.array(webhookEndpointView) }) },
    },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const endpoints = await em.find(WebhookEndpoint, {}, { orderBy: { createdAt: 'asc' } });
        return { body: { data: endpoints.map(toWebhookEndpointView) } };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/webhook-endpoints',
    summary: 'Register a webhook endpoint; the response holds its signing secret, shown this once',
    tag: 'webhooks',
    access: WEBHOOK_MANAGERS,
    body: createBody,
    responses: {
      201: { description: 'Created', schema: webhookEndpointView.extend({ secret: z.string() }) },
    },
    handler: async ({ auth, body, req }) => {
      const secret = generateSigningSecret();
      const secretCiphertext = sealSecret(deps.config.ENCRYPTION_KEYS, secret);
      return withTenant(deps.orm, auth.tenantId, async (em) => {
        const endpoint = em.create(WebhookEndpoint, {
          tenantId: auth.tenantId,
          url: body.url,
          events: body.events,
          enabled: body.enabled,
          secretCiphertext,
        });
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'webhook_endpoint.created',
            targetType: 'webhook_endpoint',
            targetId: endpoint.id,
            after: { url: endpoint.url, events: endpoint.events, enabled: endpoint.enabled },
          },
          req.ip,
        );
        return { status: 201, body: { ...toWebhookEndpointView(endpoint), secret } };
      });
    },
  });

  api.route({
    method: 'delete',
    path: '/v1/webhook-endpoints/:id',
    summary: 'Remove a webhook endpoint; no further events are sent to it',
    tag: 'webhooks',
    access: WEBHOOK_MANAGERS,
    params: idParams,
    responses: { 204: { description: 'Removed' } },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const endpoint = await em.findOne(WebhookEndpoint, { id: params.id });
        if (!endpoint) throw new NotFoundError('Webhook endpoint', params.id);
        recordAudit(
          em,
          auth,
          {
            action: 'webhook_endpoint.deleted',
            targetType: 'webhook_endpoint',
            targetId: endpoint.id,
            before: { url: endpoint.url, events: endpoint.events, enabled: endpoint.enabled },
          },
          req.ip,
        );
        em.remove(endpoint);
        return { status: 204 };
      }),
  });
}
