/** Tenant users: anyone may see the team; owners and admins manage it; only owners touch owners. */
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { User, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { hashPassword } from '../auth/passwords';
import type { ApiDeps } from '../deps';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors';
import type { ApiRouter, AuthContext } from '../routing';
import { recordAudit } from '../services/audit';
import { emailSchema, idParams, passwordSchema, roleSchema, toUserView, userView } from '../schemas';

export const USER_MANAGERS = ['owner', 'admin'] as const satisfies readonly Role[];

function assertMayAssign(auth: AuthContext, role: Role) {
  if (role === 'owner' && auth.actor.role !== 'owner') {
    throw new ForbiddenError('INSUFFICIENT_ROLE', 'Only an owner can grant the owner role', {
      required: ['owner'],
      actual: auth.actor.role,
    });
  }
}

function assertMayManage(auth: AuthContext, target: User) {
  if (target.role === 'owner' && auth.actor.role !== 'owner') {
    throw new ForbiddenError('INSUFFICIENT_ROLE', 'Only an owner can change or remove an owner', {
      required: ['owner'],
      actual: auth.actor.role,
    });
  }
}

async function assertNotLastOwner(em: EntityManager, target: User) {
  if (target.role !== 'owner' || target.disabledAt) return;
  const owners = await em.count(User, { role: 'owner', disabledAt: null });
  if (owners <= 1) throw new ConflictError('LAST_OWNER', 'A tenant must keep at least one active owner');
}

async function findUser(em: EntityManager, id: string): Promise<User> {
  const user = await em.findOne(User, { id });
  if (!user) throw new NotFoundError('User', id);
  return user;
}

const snapshot = (u: User) => ({
  email: u.email,
  name: u.name,
  role: u.role,
  disabled: Boolean(u.disabledAt),
});

export function registerUserRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/users',
    summary: "List the tenant's users",
    tag: 'users',
    access: 'authenticated',
    responses: { 200: { description: 'Users', schema: z.object({ data: z.array(userView) }) } },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const users = await em.find(User, {}, { orderBy: { createdAt: 'asc' } });
        return { body: { data: users.map(toUserView) } };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/users/:id',
    summary: 'Get one user',
    tag: 'users',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'User', schema: userView } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => ({
        body: toUserView(await findUser(em, params.id)),
      })),
  });

  api.route({
    method: 'post',
    path: '/v1/users',
    summary: 'Add a user to the tenant',
    tag: 'users',
    access: USER_MANAGERS,
    body: z.object({
      email: emailSchema,
      name: z.string().trim().min(1).max(200),
      role: roleSchema,
      password: passwordSchema,
    }),
    responses: { 201: { description: 'Created', schema: userView } },
    handler: async ({ auth, body, req }) => {
      assertMayAssign(auth, body.role);
      const passwordHash = await hashPassword(body.password);
      try {
        return await withTenant(deps.orm, auth.tenantId, async (em) => {
          if (await em.count(User, { email: body.email })) {
            throw new ConflictError(
              'EMAIL_TAKEN',
              `A user with email ${body.email} already exists in this tenant`,
            );
          }
          const user = em.create(User, {
            tenantId: auth.tenantId,
            email: body.email,
            name: body.name,
            role: body.role,
            passwordHash,
          });
          await em.flush();
          recordAudit(
            em,
            auth,
            { action: 'user.created', targetType: 'user', targetId: user.id, after: snapshot(user) },
            req.ip,
          );
          return { status: 201, body: toUserView(user) };
        });
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) {
          throw new ConflictError(
            'EMAIL_TAKEN',
            `A user with email ${body.email} already exists in this tenant`,
          );
        }
        throw err;
      }
    },
  });

  api.route({
    method: 'patch',
    path: '/v1/users/:id',
    summary: "Change a user's name, role, password or disabled state",
    tag: 'users',
    access: USER_MANAGERS,
    params: idParams,
    body: z
      .object({
        name: z.string().trim().min(1).max(200).optional(),
        role: roleSchema.optional(),
        disabled: z.boolean().optional(),
        password: passwordSchema.optional(),
      })
      .refine((b) => Object.keys(b).length > 0, 'name at least one field to change'),
    responses: { 200: { description: 'Updated', schema: userView } },
    handler: async ({ auth, params, body, req }) => {
      if (body.role) assertMayAssign(auth, body.role);
      const passwordHash = body.password ? await hashPassword(body.password) : undefined;
      return withTenant(deps.orm, auth.tenantId, async (em) => {
        const user = await findUser(em, params.id);
        assertMayManage(auth, user);
        const before = snapshot(user);
        if ((body.role && body.role !== 'owner') || body.disabled === true)
          await assertNotLastOwner(em, user);
        if (body.name !== undefined) user.name = body.name;
        if (body.role !== undefined) user.role = body.role;
        if (body.disabled !== undefined)
          user.disabledAt = body.disabled ? (user.disabledAt ?? new Date()) : null;
        if (passwordHash) user.passwordHash = passwordHash;
        recordAudit(
          em,
          auth,
          {
            action: 'user.updated',
            targetType: 'user',
            targetId: user.id,
            before,
            after: { ...snapshot(user), passwordChanged: Boolean(passwordHash) },
          },
          req.ip,
        );
        return { body: toUserView(user) };
      });
    },
  });

  api.route({
    method: 'delete',
    path: '/v1/users/:id',
    summary: 'Remove a user from the tenant',
    tag: 'users',
    access: USER_MANAGERS,
    params: idParams,
    responses: { 204: { description: 'Removed' } },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const user = await findUser(em, params.id);
        assertMayManage(auth, user);
        await assertNotLastOwner(em, user);
        recordAudit(
          em,
          auth,
          { action: 'user.deleted', targetType: 'user', targetId: user.id, before: snapshot(user) },
          req.ip,
        );
        em.remove(user);
        return { status: 204 };
      }),
  });
}
