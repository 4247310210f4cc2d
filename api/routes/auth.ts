/** Sign-up, sign-in and the caller's own identity. */
import { z } from 'zod';
import { Tenant, User } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { issueAccessToken } from '../auth/tokens';
import type { ApiDeps } from '../deps';
import { NotFoundError } from '../errors';
import type { ApiRouter } from '../routing';
import {
  emailSchema,
  passwordSchema,
  roleSchema,
  tenantView,
  toTenantView,
  toUserView,
  userView,
} from '../schemas';
import { membershipsOf, signIn, switchTenant, type SignInResult } from '../services/sign-in';
import { signUp } from '../services/tenant-signup';

const session = z.object({ token: z.string(), expiresAt: z.string(), user: userView, tenant: tenantView });
const membership = z.object({ tenantId: z.string(), tenantName: z.string(), role: roleSchema });

function toSessionView(result: SignInResult) {
  return {
    token: result.token,
    expiresAt: result.expiresAt,
    user: toUserView(result.user),
    tenant: toTenantView(result.tenant),
    memberships: result.memberships,
  };
}

export function registerAuthRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'post',
    path: '/v1/auth/signup',
    summary: 'Create a tenant and its owner; returns an access token',
    tag: 'auth',
    access: 'public',
    body: z.object({
      tenantName: z.string().trim().min(1).max(200),
      name: z.string().trim().min(1).max(200),
      email: emailSchema,
      password: passwordSchema,
      timeZone: z
        .string()
        .refine(
          (tz) => Intl.supportedValuesOf('timeZone').includes(tz) || tz === 'UTC',
          'must be an IANA time zone',
        )
        .optional(),
      defaultRegion: z
        .string()
        .regex(/^[A-Z]{2}$/, 'must be an ISO 3166 country code')
        .optional(),
    }),
    responses: { 201: { description: 'Tenant created', schema: session } },
    handler: async ({ body, req }) => {
      const { tenant, user } = await signUp(deps, body, req.ip);
      const issued = issueAccessToken(deps.config.JWT_SECRET, deps.config.JWT_TTL_SECONDS, {
        sub: user.id,
        tid: tenant.id,
      });
      return { status: 201, body: { ...issued, user: toUserView(user), tenant: toTenantView(tenant) } };
    },
  });

  api.route({
    method: 'post',
    path: '/v1/auth/login',
    summary: 'Sign in with email and password; pick a tenant when the email belongs to several',
    tag: 'auth',
    access: 'public',
    body: z.object({
      email: emailSchema,
      password: z.string().min(1).max(200),
      tenantId: z.uuid().optional(),
    }),
    responses: {
      200: {
        description: 'Signed in',
        schema: session.extend({ memberships: z.array(membership) }),
      },
    },
    handler: async ({ body }) => ({ body: toSessionView(await signIn(deps, body)) }),
  });

  api.route({
    method: 'post',
    path: '/v1/auth/switch-tenant',
    summary: "Switch to another of the user's workspaces (one their password proved at sign-in)",
    tag: 'auth',
    access: 'authenticated',
    body: z.object({ tenantId: z.uuid('must be a UUID') }),
    responses: {
      200: {
        description: 'Signed in to the other workspace',
        schema: session.extend({ memberships: z.array(membership) }),
      },
      403: { description: 'NOT_A_MEMBER, or USER_TOKEN_REQUIRED for an API key' },
    },
    handler: async ({ auth, body }) => ({
      body: toSessionView(await switchTenant(deps, auth, body.tenantId)),
    }),
  });

  api.route({
    method: 'get',
    path: '/v1/me',
    summary: 'Who is calling: the user (or API key) and the tenant',
    tag: 'auth',
    access: 'authenticated',
    responses: {
      200: {
        description: 'The caller',
        schema: z.object({
          actor: z.object({ type: z.enum(['user', 'api_key']), id: z.string(), role: roleSchema }),
          user: userView.nullable(),
          tenant: tenantView,
          memberships: z.array(membership).meta({ description: "The user's workspaces (for switching)" }),
        }),
      },
    },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const tenant = await em.findOne(Tenant, { id: auth.tenantId });
        if (!tenant) throw new NotFoundError('Tenant', auth.tenantId);
        const user = auth.actor.type === 'user' ? await em.findOne(User, { id: auth.actor.id }) : null;
        return {
          body: {
            actor: { type: auth.actor.type, id: auth.actor.id, role: auth.actor.role },
            user: user ? toUserView(user) : null,
            tenant: toTenantView(tenant),
            memberships: await membershipsOf(deps, auth),
          },
        };
      }),
  });
}
