/** GDPR: export and erase one contact's data (see api/services/privacy.ts for what erase keeps). */
import { z } from 'zod';
import { withTenant } from '../../db/tenant-context';
import type { ApiDeps } from '../deps';
import type { ApiRouter } from '../routing';
import { idParams } from '../schemas';
import { recordAudit } from '../services/audit';
import { eraseContact, exportContact } from '../services/privacy';

const PRIVACY_OFFICERS = ['owner', 'admin'] as const;

export function registerPrivacyRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/contacts/:id/export',
    summary:
      'Everything held about one contact (GDPR access): the contact, its lists, campaigns and attempts, every call to or from its number with transcript, slots and analysis, CRM sync records and recording links',
    tag: 'privacy',
    access: PRIVACY_OFFICERS,
    params: idParams,
    responses: {
      200: { description: 'One JSON document' },
      403: { description: 'INSUFFICIENT_ROLE' },
      404: { description: 'CONTACT_NOT_FOUND (also for an erased contact or another tenant’s)' },
    },
    handler: async ({ auth, params, req, res }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const { document, counts } = await exportContact(em, params.id);
        recordAudit(
          em,
          auth,
          { action: 'contact.exported', targetType: 'contact', targetId: params.id, after: { ...counts } },
          req.ip,
        );
        res.setHeader('content-disposition', `attachment; filename="contact-${params.id}.json"`);
        return { body: document };
      }),
  });

  api.route({
    method: 'delete',
    path: '/v1/contacts/:id/personal-data',
    summary:
      "Erase one contact's personal data (GDPR erasure) in one transaction: the contact and its list and campaign rows are deleted; its calls stay for usage and billing with numbers, slots, summary, analysis and transcript redacted; recordings are deleted from disk. A second erase answers 404",
    tag: 'privacy',
    access: PRIVACY_OFFICERS,
    params: idParams,
    responses: {
      200: {
        description: 'Erased: what was erased, counted, and the CRM records to erase in the CRM too',
        schema: z.object({
          erased: z.literal(true),
          counts: z.record(z.string(), z.union([z.number(), z.boolean()])),
          crmRecords: z.array(
            z.object({
              provider: z.string(),
              externalId: z.string().nullable(),
              contactExternalId: z.string().nullable(),
            }),
          ),
        }),
      },
      403: { description: 'INSUFFICIENT_ROLE' },
      404: { description: 'CONTACT_NOT_FOUND: no such contact in this tenant, or already erased' },
    },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const result = await eraseContact(em, params.id, deps.config.RECORDINGS_DIR);
        recordAudit(
          em,
          auth,
          {
            action: 'contact.erased',
            targetType: 'contact',
            targetId: params.id,
            after: { ...result.counts },
          },
          req.ip,
        );
        return { body: { erased: true as const, ...result } };
      }),
  });
}
