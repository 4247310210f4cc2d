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
import { AuthenticationError } from '../errors';

interface Candidate {
  user_id: string;
  tenant_id: string;
  tenant_name: string;
  tenant_status: string;
  password_hash: string;
  role: string;
  disabled_at: Date | null;
}

export interface SignInResult extends IssuedToken {
  user: User;
  tenant: Tenant;
  memberships: { tenantId: string; tenantName: string; role: string }[];
}

export async function signIn(
  deps: { orm: MikroORM; config: Config },
  input: { email: string; password: string; tenantId?: string },
): Promise<SignInResult> {
  const candidates = await withoutTenant(deps.orm, (em) =>
    em.execute<Candidate[]>('select * from parley_login_candidates(?)', [input.email]),
  );
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

  const { user, tenant } = await withTenant(deps.orm, chosen.tenant_id, async (em) => {
    const user = await em.findOneOrFail(User, { id: chosen.user_id });
    const tenant = await em.findOneOrFail(Tenant, { id: chosen.tenant_id });
    user.lastLoginAt = new Date();
    return { user, tenant };
  });
  const issued = issueAccessToken(deps.config.JWT_SECRET, deps.config.JWT_TTL_SECONDS, {
    sub: user.id,
    tid: tenant.id,
  });
  return {
    ...issued,
    user,
    tenant,
    memberships: matching
      .filter((c) => !c.disabled_at)
      .map((c) => ({ tenantId: c.tenant_id, tenantName: c.tenant_name, role: c.role })),
  };
}
