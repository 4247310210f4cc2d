/** Access tokens (JWT, HS256) for dashboard users. Each failure mode has its own error code. */
import jwt from 'jsonwebtoken';
import { AuthenticationError } from '../errors';

const ISSUER = 'parley';
const AUDIENCE = 'parley-api';

export interface AccessTokenClaims {
  sub: string;
  tid: string;
  /**
   * The tenants whose membership the user proved with their password at sign-in (one email may
   * belong to several); switching workspace is allowed only among these.
   */
  mem?: string[];
}

export interface IssuedToken {
  token: string;
  expiresAt: string;
}

export function issueAccessToken(secret: string, ttlSeconds: number, claims: AccessTokenClaims): IssuedToken {
  const token = jwt.sign(claims.mem ? { tid: claims.tid, mem: claims.mem } : { tid: claims.tid }, secret, {
    algorithm: 'HS256',
    subject: claims.sub,
    issuer: ISSUER,
    audience: AUDIENCE,
    expiresIn: ttlSeconds,
  });
  return { token, expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString() };
}

export function verifyAccessToken(secret: string, token: string): AccessTokenClaims {
  let payload: string | jwt.JwtPayload;
  try {
    payload = jwt.verify(token, secret, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE });
  } catch (err) {
    if (err instanceof jwt.TokenExpiredError)
      throw new AuthenticationError('TOKEN_EXPIRED', 'The access token has expired; sign in again');
    throw new AuthenticationError('TOKEN_INVALID', 'The access token is invalid');
  }
  if (typeof payload === 'string' || typeof payload.sub !== 'string' || typeof payload.tid !== 'string') {
    throw new AuthenticationError('TOKEN_INVALID', 'The access token is invalid');
  }
  const mem: unknown = payload.mem;
  const proven = Array.isArray(mem) && mem.every((m) => typeof m === 'string') ? mem : undefined;
  return { sub: payload.sub, tid: payload.tid, ...(proven ? { mem: proven } : {}) };
}
