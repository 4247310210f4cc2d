/**
 * Sign-in by email and password. One email may belong to several tenants (a consultant in two
 * workspaces): the password is checked per membership and the caller picks a tenant or gets the first.
 */
import type { Config } from '../../config';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Tenant, User } from '../../db/entities';
import { withoutTenant, withTenant } from '../../db/tenant-context';
import { DUMMY_PASSWORD_HASH, verifyPassword } from '../auth/passwords';
import { issueAccessToken, type IssuedToken } from '../auth/tokens';
import { AuthenticationError, ForbiddenError } from '../errors';
import type { AuthContext } from '../routing';

interface Candidate {
  user_id: string;
  tenant_id: string;
  tenant_name: string;
  tenant_status: string;
  password_hash: string;
  role: string;
  disabled_at: Date | null;
}

export interface Membership {
  tenantId: string;
  tenantName: string;
  role: string;
}

export interface SignInResult extends IssuedToken {
  user: User;
  tenant: Tenant;
  memberships: Membership[];
}

function loginCandidates(orm: MikroORM, email: string): Promise<Candidate[]> {
  return withoutTenant(orm, (em) =>
    em.execute<Candidate[]>('select * from parley_login_candidates(?)', [email]),
  );
}

const toMembership = (c: Candidate): Membership => ({
  tenantId: c.tenant_id,
  tenantName: c.tenant_name,
  role: c.role,
});

/** Issues the session of `chosen`, remembering which tenants the password proved. */
async function sessionFor(
  deps: { orm: MikroORM; config: Config },
  chosen: Candidate,
  proven: Candidate[],
): Promise<SignInResult> {
  const { user, tenant } = await withTenant(deps.orm, chosen.tenant_id, async (em) => {
    const user = await em.findOneOrFail(User, { id: chosen.user_id });
    const tenant = await em.findOneOrFail(Tenant, { id: chosen.tenant_id });
    user.lastLoginAt = new Date();
    return { user, tenant };
  });
  const usable = proven.filter((c) => !c.disabled_at);
  const issued = issueAccessToken(deps.config.JWT_SECRET, deps.config.JWT_TTL_SECONDS, {
    sub: user.id,
    tid: tenant.id,
    mem: usable.map((c) => c.tenant_id),
  });
  return { ...issued, user, tenant, memberships: usable.map(toMembership) };
}

/**
 * The workspaces a signed-in user may switch to: those their password proved at sign-in that still
 * hold an enabled user with their email (a membership removed since then is gone at once).
 */
export async function membershipsOf(deps: { orm: MikroORM }, auth: AuthContext): Promise<Membership[]> {
  if (auth.actor.type !== 'user' || !auth.actor.email) return [];
  const proven = new Set(auth.memberTenantIds ?? [auth.tenantId]);
  const candidates = await loginCandidates(deps.orm, auth.actor.email);
  return candidates.filter((c) => proven.has(c.tenant_id) && !c.disabled_at).map(toMembership);
}

/** A new session in another workspace of the same user, without asking for the password again. */
export async function switchTenant(
  deps: { orm: MikroORM; config: Config },
  auth: AuthContext,
  tenantId: string,
): Promise<SignInResult> {
  if (auth.actor.type !== 'user' || !auth.actor.email) {
    throw new ForbiddenError('USER_TOKEN_REQUIRED', 'Only a signed-in user can switch workspace');
  }
  const proven = new Set(auth.memberTenantIds ?? [auth.tenantId]);
  const candidates = (await loginCandidates(deps.orm, auth.actor.email)).filter((c) =>
    proven.has(c.tenant_id),
  );
  const chosen = candidates.find((c) => c.tenant_id === tenantId && !c.disabled_at);
  if (!chosen) {
    throw new ForbiddenError('NOT_A_MEMBER', 'You are not a member of that workspace; sign in to it', {
      tenantId,
    });
  }
  return sessionFor(deps, chosen, candidates);
}

export async function signIn(
  deps: { orm: MikroORM; config: Config },
  input: { email: string; password: string; tenantId?: string },
): Promise<SignInResult> {
  const candidates = await loginCandidates(deps.orm, input.email);
  const matching: Candidate[] = [];
  for (const candidate of candidates) {
    if (await verifyPassword(input.password, candidate.password_hash)) matching.push(candidate);
  }
  if (candidates.length === 0) await verifyPassword(input.password, DUMMY_PASSWORD_HASH);
  const invalid = new AuthenticationError('INVALID_CREDENTIALS', 'The email or password is wrong');
  if (matching.length === 0) throw invalid;
  const chosen = input.tenantId
    ? matching.find((c) => c.tenant_id === input.tenantId)
    : matching.find((c) => !c.disabled_at);
  if (!chosen) throw invalid;
  if (chosen.disabled_at) throw new AuthenticationError('USER_DISABLED', 'This user has been disabled');

  return sessionFor(deps, chosen, matching);
}
