/**
 * Turns a request's credentials into an AuthContext: a user's JWT or an API key, both checked
 * against the database under the tenant they name (a disabled user or revoked key stops at once).
 */
import type { Request } from 'express';
import type { MikroORM } from '@mikro-orm/postgresql';
import { ApiKey, User } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { AuthenticationError } from '../errors';
import type { AuthContext, Authenticate } from '../routing';
import { hashApiKey, looksLikeApiKey, tenantIdOfApiKey } from './api-keys';
import { verifyAccessToken } from './tokens';

const LAST_USED_RESOLUTION_MS = 60_000;

function credentialOf(req: Request): string | undefined {
  const header = req.get('authorization');
  if (header) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match?.[1])
      throw new AuthenticationError('TOKEN_INVALID', "The Authorization header must be 'Bearer <token>'");
    return match[1].trim();
  }
  return req.get('x-api-key')?.trim() || undefined;
}

export function createAuthenticator(deps: { orm: MikroORM; jwtSecret: string }): Authenticate {
  const byApiKey = async (key: string): Promise<AuthContext> => {
    const tenantId = tenantIdOfApiKey(key);
    if (!tenantId) throw new AuthenticationError('API_KEY_INVALID', 'The API key is malformed');
    return withTenant(deps.orm, tenantId, async (em) => {
      const apiKey = await em.findOne(ApiKey, { keyHash: hashApiKey(key) });
      if (!apiKey) throw new AuthenticationError('API_KEY_INVALID', 'The API key is not valid');
      if (apiKey.revokedAt) throw new AuthenticationError('API_KEY_REVOKED', 'The API key has been revoked');
      if (!apiKey.lastUsedAt || Date.now() - apiKey.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
        apiKey.lastUsedAt = new Date();
      }
      return { tenantId, actor: { type: 'api_key', id: apiKey.id, role: apiKey.role } };
    });
  };

  const byToken = async (token: string): Promise<AuthContext> => {
    const claims = verifyAccessToken(deps.jwtSecret, token);
    return withTenant(deps.orm, claims.tid, async (em) => {
      const user = await em.findOne(User, { id: claims.sub });
      if (!user) throw new AuthenticationError('TOKEN_INVALID', 'The user of this token no longer exists');
      if (user.disabledAt) throw new AuthenticationError('USER_DISABLED', 'This user has been disabled');
      return {
        tenantId: claims.tid,
        actor: { type: 'user', id: user.id, role: user.role, email: user.email },
        ...(claims.mem ? { memberTenantIds: claims.mem } : {}),
      };
    });
  };

  return async (req) => {
    const credential = credentialOf(req);
    if (!credential) {
      throw new AuthenticationError(
        'AUTH_REQUIRED',
        'Sign in: send Authorization: Bearer <access token or API key>',
      );
    }
    return looksLikeApiKey(credential) ? byApiKey(credential) : byToken(credential);
  };
}
