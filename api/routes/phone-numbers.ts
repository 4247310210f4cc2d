/**
 * A tenant's phone numbers and the agent each one rings. Numbers are typed the way people write
 * them, read in the tenant's default region and stored as E.164; a number routes to one tenant
 * only (global unique index), so registering one another tenant holds is a 409. Every role may
 * read; owners and admins write.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { ForeignKeyConstraintViolationException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { z } from 'zod';
import { Agent, PhoneNumber, Tenant, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { toE164 } from '../../lib/phone';
import type { ApiDeps } from '../deps';
import { AppError, ConflictError, NotFoundError } from '../errors';
import type { ApiRouter } from '../routing';
import { idParams } from '../schemas';
import { recordAudit } from '../services/audit';

export const PHONE_NUMBER_MANAGERS = ['owner', 'admin'] as const satisfies readonly Role[];

const labelSchema = z.string().trim().max(200).nullable().optional();
const agentIdSchema = z
  .uuid('must be a UUID')
  .nullable()
  .optional()
  .meta({ description: 'The agent that answers calls to this number (it must have a published version)' });

export const phoneNumberView = z.object({
  id: z.string(),
  number: z.string().meta({ description: 'E.164' }),
  label: z.string().nullable(),
  provider: z.string(),
  providerSid: z.string().nullable(),
  agentId: z.string().nullable(),
  agentName: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

function toView(p: PhoneNumber, agentName: string | null): z.infer<typeof phoneNumberView> {
  return {
    id: p.id,
    number: p.e164,
    label: p.label ?? null,
    provider: p.provider,
    providerSid: p.providerSid ?? null,
    agentId: p.agentId ?? null,
    agentName,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

const snapshot = (p: PhoneNumber) => ({
  number: p.e164,
  label: p.label ?? null,
  providerSid: p.providerSid ?? null,
  agentId: p.agentId ?? null,
});

/** An agent may take calls only once it has a published version (calls pin one). */
async function assignableAgent(em: EntityManager, agentId: string): Promise<Agent> {
  const agent = await em.findOne(Agent, { id: agentId, archivedAt: null });
  if (!agent) throw new NotFoundError('Agent', agentId);
  if (!agent.publishedVersionId) {
    throw new ConflictError(
      'AGENT_NOT_PUBLISHED',
      `Agent ${agentId} has no published version; publish it before it takes calls`,
      { agentId },
    );
  }
  return agent;
}

async function findPhoneNumber(em: EntityManager, id: string): Promise<PhoneNumber> {
  const found = await em.findOne(PhoneNumber, { id });
  if (!found) throw new NotFoundError('Phone number', id);
  return found;
}

async function agentName(em: EntityManager, agentId: string | null | undefined): Promise<string | null> {
  if (!agentId) return null;
  return (await em.findOne(Agent, { id: agentId }, { fields: ['name'] }))?.name ?? null;
}

export function registerPhoneNumberRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/phone-numbers',
    summary: "List the tenant's phone numbers with the agent each one rings",
    tag: 'phone-numbers',
    access: 'authenticated',
    responses: {
      200: { description: 'Phone numbers', schema: z.object({ data: z.array(phoneNumberView) }) },
    },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const numbers = await em.find(PhoneNumber, {}, { orderBy: { e164: 'asc' } });
        const agentIds = [
          ...new Set(numbers.map((n) => n.agentId).filter((id): id is string => Boolean(id))),
        ];
        const agents = agentIds.length
          ? await em.find(Agent, { id: { $in: agentIds } }, { fields: ['id', 'name'] })
          : [];
        const names = new Map(agents.map((a) => [a.id, a.name]));
        return {
          body: { data: numbers.map((n) => toView(n, n.agentId ? (names.get(n.agentId) ?? null) : null)) },
        };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/phone-numbers',
    summary: 'Register a phone number (any common format, read in the tenant’s default region)',
    tag: 'phone-numbers',
    access: PHONE_NUMBER_MANAGERS,
    body: z.object({
      number: z
        .string()
        .trim()
        .min(1, 'must not be empty')
        .max(64)
        .meta({ description: 'E.164, or national format in the tenant’s default region' }),
      label: labelSchema,
      providerSid: z
        .string()
        .regex(/^PN[0-9a-fA-F]{32}$/, 'must be a Twilio phone number SID (PN + 32 hex)')
        .optional(),
      agentId: agentIdSchema,
    }),
    responses: {
      201: { description: 'Registered', schema: phoneNumberView },
      400: { description: 'PHONE_NUMBER_INVALID: details name the field' },
      404: { description: 'AGENT_NOT_FOUND' },
      409: { description: 'PHONE_NUMBER_TAKEN (any tenant) or AGENT_NOT_PUBLISHED' },
    },
    handler: async ({ auth, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const tenant = await em.findOneOrFail(Tenant, { id: auth.tenantId });
        const e164 = toE164(body.number, tenant.defaultRegion);
        if (!e164) {
          const message = `'${body.number}' is not a valid phone number (read in region ${tenant.defaultRegion}; use +<country code> for others)`;
          throw new AppError(400, 'PHONE_NUMBER_INVALID', message, [{ path: 'body.number', message }]);
        }
        const own = await em.findOne(PhoneNumber, { e164 });
        if (own) {
          throw new ConflictError('PHONE_NUMBER_TAKEN', `${e164} is already registered in this account`, {
            number: e164,
            phoneNumberId: own.id,
          });
        }
        const agent = body.agentId ? await assignableAgent(em, body.agentId) : null;
        const phone = em.create(PhoneNumber, {
          tenantId: auth.tenantId,
          e164,
          label: body.label ?? null,
          providerSid: body.providerSid ?? null,
          agentId: agent?.id ?? null,
        });
        try {
          await em.flush();
        } catch (err) {
          // Row-level security hides other tenants' numbers, not the unique index over all of them.
          if (err instanceof UniqueConstraintViolationException) {
            throw new ConflictError('PHONE_NUMBER_TAKEN', `${e164} is registered by another account`, {
              number: e164,
            });
          }
          throw err;
        }
        recordAudit(
          em,
          auth,
          {
            action: 'phone_number.created',
            targetType: 'phone_number',
            targetId: phone.id,
            after: snapshot(phone),
          },
          req.ip,
        );
        return { status: 201, body: toView(phone, agent?.name ?? null) };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/phone-numbers/:id',
    summary: 'Get one phone number',
    tag: 'phone-numbers',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'The phone number', schema: phoneNumberView } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const phone = await findPhoneNumber(em, params.id);
        return { body: toView(phone, await agentName(em, phone.agentId)) };
      }),
  });

  api.route({
    method: 'patch',
    path: '/v1/phone-numbers/:id',
    summary:
      'Assign the number to an agent (null unassigns: callers hear it is not taking calls) or relabel it',
    tag: 'phone-numbers',
    access: PHONE_NUMBER_MANAGERS,
    params: idParams,
    body: z.object({ agentId: agentIdSchema, label: labelSchema }),
    responses: {
      200: { description: 'Updated', schema: phoneNumberView },
      404: { description: 'PHONE_NUMBER_NOT_FOUND or AGENT_NOT_FOUND' },
      409: { description: 'AGENT_NOT_PUBLISHED' },
    },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const phone = await findPhoneNumber(em, params.id);
        const before = snapshot(phone);
        if (body.agentId !== undefined) {
          phone.agentId = body.agentId === null ? null : (await assignableAgent(em, body.agentId)).id;
        }
        if (body.label !== undefined) phone.label = body.label;
        phone.updatedAt = new Date();
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'phone_number.updated',
            targetType: 'phone_number',
            targetId: phone.id,
            before,
            after: snapshot(phone),
          },
          req.ip,
        );
        return { body: toView(phone, await agentName(em, phone.agentId)) };
      }),
  });

  api.route({
    method: 'delete',
    path: '/v1/phone-numbers/:id',
    summary: 'Remove a phone number; calls to it are no longer answered',
    tag: 'phone-numbers',
    access: PHONE_NUMBER_MANAGERS,
    params: idParams,
    responses: {
      204: { description: 'Removed' },
      409: { description: 'PHONE_NUMBER_IN_USE: a campaign calls from it' },
    },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const phone = await findPhoneNumber(em, params.id);
        const before = snapshot(phone);
        em.remove(phone);
        try {
          await em.flush();
        } catch (err) {
          if (err instanceof ForeignKeyConstraintViolationException) {
            throw new ConflictError(
              'PHONE_NUMBER_IN_USE',
              `${phone.e164} is the caller number of a campaign; change the campaign first`,
              { phoneNumberId: phone.id },
            );
          }
          throw err;
        }
        recordAudit(
          em,
          auth,
          { action: 'phone_number.deleted', targetType: 'phone_number', targetId: phone.id, before },
          req.ip,
        );
        return { status: 204 };
      }),
  });
}
