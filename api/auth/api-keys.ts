/**
 * API keys for programs: `prk_<tenant id, 32 hex>_<secret>`. The tenant part lets the server set
 * the tenant context before looking the key up under RLS; only a SHA-256 hash is stored.
 */
import { createHash, randomBytes } from 'node:crypto';

const PATTERN = /^prk_([0-9a-f]{32})_([A-Za-z0-9_-]{40,})$/;

export function generateApiKey(tenantId: string): { key: string; prefix: string; hash: string } {
  const key = `prk_${tenantId.replace(/-/g, '')}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix: key.slice(0, 4 + 32 + 1 + 6), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function looksLikeApiKey(value: string): boolean {
  return value.startsWith('prk_');
}

/** The tenant id a key claims, or undefined when the key is malformed. */
export function tenantIdOfApiKey(key: string): string | undefined {
  const hex = PATTERN.exec(key)?.[1];
  if (!hex) return undefined;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
