/**
 * The tenant's Do-Not-Call list: numbers no campaign may dial, whether or not they belong to a
 * contact. Numbers are typed as people write them and stored as E.164. The dialer asks the same
 * question as `GET /v1/do-not-call/check` (db/do-not-call.ts) right before each call. Every role
 * reads; owners, admins and campaign managers add numbers; only owners and admins take one off.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { DoNotCallEntry, Tenant, type Role } from '../../db/entities';
import { doNotCallStatus } from '../../db/do-not-call';
import { withTenant } from '../../db/tenant-context';
import { toE164 } from '../../lib/phone';
import type { ApiDeps } from '../deps';
import { AppError, NotFoundError, type ErrorDetail } from '../errors';
import type { ApiRouter } from '../routing';
import { recordAudit } from '../services/audit';
import {
  CONTACT_WRITERS,
  decodeKeysetCursor,
  encodeKeysetCursor,
  phoneOrThrow,
  regionSchema,
} from './contacts';

/** Taking a number off the list lets campaigns call it again: the account's managers only. */
export const DO_NOT_CALL_REMOVERS = ['owner', 'admin'] as const satisfies readonly Role[];

const reasonSchema = z.string().trim().max(500).nullable().optional();
const phoneInput = z.string().trim().min(1, 'must not be empty').max(64);
/** In a query string an unencoded `+` arrives as a space: `?phone=+4420…` still means +44. */
const queryPhone = z
  .string()
  .transform((v) => (/^ \d/.test(v) ? `+${v.slice(1)}` : v))
  .pipe(phoneInput)
  .meta({ description: 'The number, E.164 or national in the region' });

export const doNotCallEntryView = z.object({
  phone: z.string().meta({ description: 'E.164' }),
  reason: z.string().nullable(),
  createdAt: z.string(),
});

function toView(e: DoNotCallEntry): z.infer<typeof doNotCallEntryView> {
  return { phone: e.phoneE164, reason: e.reason ?? null, createdAt: e.createdAt.toISOString() };
}

async function tenantRegion(em: EntityManager, tenantId: string): Promise<string> {
  return (await em.findOneOrFail(Tenant, { id: tenantId }, { fields: ['defaultRegion'] })).defaultRegion;
}

export function registerDoNotCallRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/do-not-call',
    summary: 'List the Do-Not-Call numbers, newest first, with cursor pagination',
    tag: 'do-not-call',
    access: 'authenticated',
    query: z.object({
      search: z.string().trim().max(64).optional().meta({ description: 'Digits the number contains' }),
      limit: z.coerce.number().int().min(1).max(500).default(100),
      cursor: z.string().max(200).optional(),
    }),
    responses: {
      200: {
        description: 'A page of numbers',
        schema: z.object({ data: z.array(doNotCallEntryView), nextCursor: z.string().nullable() }),
      },
    },
    handler: async ({ auth, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const where: string[] = [];
        const params: unknown[] = [];
        const digits = query.search?.replace(/\D/g, '');
        if (digits) {
          where.push('d.phone_e164 like ?');
          params.push(`%${digits}%`);
        }
        if (query.cursor) {
          const c = decodeKeysetCursor(query.cursor, (k) => /^\+\d{7,15}$/.test(k));
          where.push('(d.created_at, d.phone_e164) < (?::timestamptz, ?)');
          params.push(c.createdAt, c.key);
        }
        const rows = await em.execute<(Record<string, unknown> & { cursor_at: string })[]>(
          `select d.*, d.created_at::text as cursor_at from do_not_call d
            ${where.length ? `where ${where.join(' and ')}` : ''}
            order by d.created_at desc, d.phone_e164 desc limit ?`,
          [...params, query.limit + 1],
        );
        const page = rows.slice(0, query.limit);
        const last = page[page.length - 1];
        const nextCursor =
          rows.length > query.limit && last
            ? encodeKeysetCursor(last.cursor_at, String(last.phone_e164))
            : null;
        return { body: { data: page.map((row) => toView(em.map(DoNotCallEntry, row))), nextCursor } };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/do-not-call',
    summary:
      'Add numbers to the Do-Not-Call list (`phone` or up to 1000 `phones`); numbers already on it keep their reason',
    tag: 'do-not-call',
    access: CONTACT_WRITERS,
    body: z
      .object({
        phone: phoneInput.optional(),
        phones: z.array(phoneInput).min(1).max(1000).optional(),
        reason: reasonSchema,
        region: regionSchema.optional(),
      })
      .refine((b) => (b.phone === undefined) !== (b.phones === undefined), {
        message: 'give either phone or phones',
        path: ['phones'],
      }),
    responses: {
      201: {
        description: 'The entries for the numbers given (new and already listed)',
        schema: z.object({
          data: z.array(doNotCallEntryView),
          added: z.number().int(),
          alreadyListed: z.number().int(),
        }),
      },
      422: { description: 'PHONE_NUMBER_INVALID: details name every number that is not one (nothing added)' },
    },
    handler: async ({ auth, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const region = body.region ?? (await tenantRegion(em, auth.tenantId));
        const inputs = body.phones ?? [body.phone as string];
        const problems: ErrorDetail[] = [];
        const phones = new Set<string>();
        inputs.forEach((input, index) => {
          const e164 = toE164(input, region);
          if (e164) phones.add(e164);
          else {
            problems.push({
              path: body.phones ? `body.phones.${index}` : 'body.phone',
              message: `'${input}' is not a valid phone number for region ${region}`,
            });
          }
        });
        if (problems.length) {
          const summary = problems.map((p) => p.message).join('; ');
          throw new AppError(422, 'PHONE_NUMBER_INVALID', summary, problems);
        }
        const list = [...phones];
        const added = await em.execute<{ phone_e164: string }[]>(
          `insert into do_not_call (tenant_id, phone_e164, reason)
           select ?::uuid, phone, ? from jsonb_array_elements_text(?::jsonb) as phone
           on conflict (tenant_id, phone_e164) do nothing
           returning phone_e164`,
          [auth.tenantId, body.reason ?? null, JSON.stringify(list)],
        );
        for (const a of added) {
          recordAudit(
            em,
            auth,
            {
              action: 'do_not_call.added',
              targetType: 'do_not_call',
              targetId: a.phone_e164,
              after: { phone: a.phone_e164, reason: body.reason ?? null },
            },
            req.ip,
          );
        }
        const entries = await em.find(
          DoNotCallEntry,
          { phoneE164: { $in: list } },
          { orderBy: { phoneE164: 'asc' } },
        );
        return {
          status: 201,
          body: { data: entries.map(toView), added: added.length, alreadyListed: list.length - added.length },
        };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/do-not-call/check',
    summary:
      'Whether a number may not be called: on the Do-Not-Call list, or a contact flagged doNotCall (what the dialer checks)',
    tag: 'do-not-call',
    access: 'authenticated',
    query: z.object({ phone: queryPhone, region: regionSchema.optional() }),
    responses: {
      200: {
        description: 'The verdict and its sources',
        schema: z.object({
          phone: z.string(),
          doNotCall: z.boolean(),
          listed: z.boolean().meta({ description: 'On the Do-Not-Call list' }),
          reason: z.string().nullable(),
          listedAt: z.string().nullable(),
          contactIds: z
            .array(z.string())
            .meta({ description: 'Contacts with this number flagged doNotCall' }),
        }),
      },
      422: { description: 'PHONE_NUMBER_INVALID' },
    },
    handler: async ({ auth, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const region = query.region ?? (await tenantRegion(em, auth.tenantId));
        const phone = phoneOrThrow(query.phone, region, 'query.phone');
        const status = await doNotCallStatus(em, phone);
        return {
          body: {
            phone,
            doNotCall: status.doNotCall,
            listed: status.listed,
            reason: status.reason,
            listedAt: status.listedAt?.toISOString() ?? null,
            contactIds: status.contactIds,
          },
        };
      }),
  });

  api.route({
    method: 'delete',
    path: '/v1/do-not-call/:phone',
    summary:
      'Take a number off the Do-Not-Call list (E.164, URL-encoded: %2B14155550100). A contact flagged doNotCall stays flagged',
    tag: 'do-not-call',
    access: DO_NOT_CALL_REMOVERS,
    params: z.object({ phone: phoneInput }),
    query: z.object({ region: regionSchema.optional() }),
    responses: {
      204: { description: 'Removed' },
      404: { description: 'DO_NOT_CALL_ENTRY_NOT_FOUND' },
      422: { description: 'PHONE_NUMBER_INVALID' },
    },
    handler: async ({ auth, params, query, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const region = query.region ?? (await tenantRegion(em, auth.tenantId));
        const phone = phoneOrThrow(params.phone, region, 'params.phone');
        const entry = await em.findOne(DoNotCallEntry, { phoneE164: phone });
        if (!entry) throw new NotFoundError('Do-not-call entry', phone);
        const before = { phone, reason: entry.reason ?? null };
        em.remove(entry);
        await em.flush();
        recordAudit(
          em,
          auth,
          { action: 'do_not_call.removed', targetType: 'do_not_call', targetId: phone, before },
          req.ip,
        );
        return { status: 204 };
      }),
  });
}
