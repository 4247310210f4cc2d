/**
 * Stream tokens: the api signs one per call and hands it to Twilio as a TwiML `<Parameter>` (or to
 * the dashboard for a browser test call); the relay verifies it before it attaches a media stream to
 * a call. HMAC-SHA256 over the claims, base64url, with an expiry; the relay also refuses a token it
 * has already accepted (single use), so a captured token cannot attach a second stream.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

export interface StreamTokenClaims {
  v: 1;
  /** calls.id */
  callId: string;
  tenantId: string;
  /** `call:<CallSid>` or `call:<uuid>` */
  workflowId: string;
  channel: 'voice' | 'web';
  callSid?: string;
  /** Unique per token, for single use. */
  jti: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export type StreamTokenProblem = 'malformed' | 'bad_signature' | 'expired' | 'replayed';

export class StreamTokenError extends Error {
  constructor(
    readonly problem: StreamTokenProblem,
    message: string,
  ) {
    super(message);
    this.name = 'StreamTokenError';
  }
}

function mac(secret: string, body: string): Buffer {
  return createHmac('sha256', secret).update(`parley-stream.${body}`).digest();
}

export function signStreamToken(
  secret: string,
  claims: Omit<StreamTokenClaims, 'v' | 'jti' | 'exp'>,
  ttlSeconds: number,
  nowMs = Date.now(),
): { token: string; claims: StreamTokenClaims } {
  const full: StreamTokenClaims = {
    v: 1,
    ...claims,
    jti: randomUUID(),
    exp: Math.floor(nowMs / 1000) + ttlSeconds,
  };
  const body = Buffer.from(JSON.stringify(full)).toString('base64url');
  return { token: `${body}.${mac(secret, body).toString('base64url')}`, claims: full };
}

export function verifyStreamToken(secret: string, token: unknown, nowMs = Date.now()): StreamTokenClaims {
  if (typeof token !== 'string' || token.length > 4096 || !/^[\w-]+\.[\w-]+$/.test(token)) {
    throw new StreamTokenError('malformed', 'stream token is missing or malformed');
  }
  const [body, signature] = token.split('.') as [string, string];
  const expected = mac(secret, body);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new StreamTokenError('bad_signature', 'stream token signature does not match');
  }
  let claims: StreamTokenClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as StreamTokenClaims;
  } catch {
    throw new StreamTokenError('malformed', 'stream token body is not JSON');
  }
  if (claims?.v !== 1 || typeof claims.callId !== 'string' || typeof claims.exp !== 'number') {
    throw new StreamTokenError('malformed', 'stream token claims are incomplete');
  }
  if (claims.exp * 1000 <= nowMs) {
    throw new StreamTokenError(
      'expired',
      `stream token expired at ${new Date(claims.exp * 1000).toISOString()}`,
    );
  }
  return claims;
}

/** Remembers accepted token ids until they expire, so each token attaches one stream only. */
export class UsedTokenRegistry {
  private readonly used = new Map<string, number>();

  /** Throws `replayed` when the token was already used; otherwise records it. */
  claim(claims: StreamTokenClaims, nowMs = Date.now()): void {
    for (const [jti, exp] of this.used) if (exp * 1000 <= nowMs) this.used.delete(jti);
    if (this.used.has(claims.jti)) {
      throw new StreamTokenError('replayed', 'stream token was already used');
    }
    this.used.set(claims.jti, claims.exp);
  }
}
