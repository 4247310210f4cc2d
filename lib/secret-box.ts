/**
 * Credentials at rest (webhook signing secrets, integration tokens): AES-256-GCM under the
 * configured key ring. The first key seals; any key in the ring opens, picked by the id written
 * into the sealed string, so secrets sealed before a key rotation keep opening afterwards.
 *
 * Format: `v1.<keyId>.<base64url iv>.<base64url ciphertext || 16-byte tag>`. The `v1.<keyId>`
 * prefix is bound as additional authenticated data, so no part of the string can be altered
 * without `openSecret` refusing it.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

/** What `config.ENCRYPTION_KEYS` holds: the first key seals, every key opens. */
export type EncryptionKeyRing = readonly EncryptionKey[];

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Key ids end up between dots in the sealed string. */
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export class SecretBoxError extends Error {
  constructor(
    readonly reason: 'NO_KEYS' | 'BAD_KEY' | 'MALFORMED' | 'UNKNOWN_KEY_ID' | 'TAMPERED',
    message: string,
  ) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

function checkKey(key: EncryptionKey): void {
  if (!KEY_ID.test(key.id)) {
    throw new SecretBoxError('BAD_KEY', `Encryption key id '${key.id}' must match ${KEY_ID.source}`);
  }
  if (key.key.length !== 32) {
    throw new SecretBoxError(
      'BAD_KEY',
      `Encryption key '${key.id}' must be 32 bytes (got ${key.key.length})`,
    );
  }
}

/** Encrypts `plaintext` with the first key of the ring. */
export function sealSecret(keys: EncryptionKeyRing, plaintext: string): string {
  const current = keys[0];
  if (!current) throw new SecretBoxError('NO_KEYS', 'No encryption key is configured (ENCRYPTION_KEYS)');
  checkKey(current);
  const header = `${VERSION}.${current.id}`;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', current.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(header, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${header}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

/** Decrypts a string made by `sealSecret` with whichever key of the ring sealed it. */
export function openSecret(keys: EncryptionKeyRing, sealed: string): string {
  const parts = sealed.split('.');
  const [version, keyId, ivText, bodyText] = parts;
  if (
    parts.length !== 4 ||
    version !== VERSION ||
    !keyId ||
    ivText === undefined ||
    bodyText === undefined ||
    !BASE64URL.test(ivText) ||
    !BASE64URL.test(bodyText)
  ) {
    throw new SecretBoxError('MALFORMED', `Not a sealed secret (expected ${VERSION}.<keyId>.<iv>.<data>)`);
  }
  const entry = keys.find((k) => k.id === keyId);
  if (!entry) {
    throw new SecretBoxError(
      'UNKNOWN_KEY_ID',
      `Secret was sealed with encryption key '${keyId}', which is not in ENCRYPTION_KEYS ` +
        `(known: ${keys.map((k) => k.id).join(', ') || 'none'})`,
    );
  }
  checkKey(entry);
  const iv = Buffer.from(ivText, 'base64url');
  const body = Buffer.from(bodyText, 'base64url');
  if (iv.length !== IV_BYTES || body.length < TAG_BYTES) {
    throw new SecretBoxError('MALFORMED', 'Sealed secret has a bad IV or is too short');
  }
  const decipher = createDecipheriv('aes-256-gcm', entry.key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(`${version}.${keyId}`, 'utf8'));
  decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    throw new SecretBoxError(
      'TAMPERED',
      `Sealed secret failed authentication with key '${keyId}' (altered, or the key's bytes changed)`,
    );
  }
}
