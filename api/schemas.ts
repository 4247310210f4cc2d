/** Shapes the API returns, shared by handlers and the OpenAPI document. */
import { z } from 'zod';
import { ROLES, type ApiKey, type Tenant, type User } from '../db/entities';

export const roleSchema = z.enum(ROLES);
export const idParams = z.object({ id: z.uuid('must be a UUID') });
export const emailSchema = z
  .email('must be an email address')
  .max(254)
  .transform((e) => e.toLowerCase());
export const passwordSchema = z.string().min(10, 'must be at least 10 characters').max(200);

export const userView = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  role: roleSchema,
  disabled: z.boolean(),
  lastLoginAt: z.string().nullable(),
  createdAt: z.string(),
});
export const tenantView = z.object({
  id: z.string(),
  name: z.string(),
  slug: z.string(),
  status: z.string(),
  plan: z.string(),
  timeZone: z.string(),
  defaultRegion: z.string(),
});
export const apiKeyView = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  role: roleSchema,
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  createdAt: z.string(),
});

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function toUserView(u: User): z.infer<typeof userView> {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    disabled: Boolean(u.disabledAt),
    lastLoginAt: iso(u.lastLoginAt),
    createdAt: u.createdAt.toISOString(),
  };
}

export function toTenantView(t: Tenant): z.infer<typeof tenantView> {
  return {
    id: t.id,
    name: t.name,
    slug: t.slug,
    status: t.status,
    plan: t.plan,
    timeZone: t.timeZone,
    defaultRegion: t.defaultRegion,
  };
}

export function toApiKeyView(k: ApiKey): z.infer<typeof apiKeyView> {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    role: k.role,
    lastUsedAt: iso(k.lastUsedAt),
    revokedAt: iso(k.revokedAt),
    createdAt: k.createdAt.toISOString(),
  };
}
