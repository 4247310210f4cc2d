/** AES-256-GCM sealing of credentials at rest, with key rotation. */
import { randomBytes } from 'node:crypto';
import { openSecret, sealSecret, SecretBoxError, type EncryptionKey } from '../lib/secret-box';

const key = (id: string): EncryptionKey => ({ id, key: randomBytes(32) });

describe('secret box', () => {
  const k2024 = key('k2024');
  const k2025 = key('k2025');

  it('round-trips, in the v1.<keyId>.<iv>.<data> format, with a fresh IV each time', () => {
    const plaintext = 'whsec_ünïcode and spaces';
    const sealed = sealSecret([k2024], plaintext);
    expect(sealed).toMatch(/^v1\.k2024\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('whsec');
    expect(openSecret([k2024], sealed)).toBe(plaintext);
    expect(sealSecret([k2024], plaintext)).not.toBe(sealed);
    expect(openSecret([k2024], sealSecret([k2024], ''))).toBe('');
  });

  it('after rotation, seals with the new first key and still opens what the old key sealed', () => {
    const old = sealSecret([k2024], 'sealed before rotation');
    const rotated = [k2025, k2024];
    expect(openSecret(rotated, old)).toBe('sealed before rotation');
    const fresh = sealSecret(rotated, 'sealed after rotation');
    expect(fresh.startsWith('v1.k2025.')).toBe(true);
    expect(openSecret(rotated, fresh)).toBe('sealed after rotation');
  });

  it('refuses a secret sealed with a key no longer configured, naming the key id', () => {
    const old = sealSecret([k2024], 'x');
    expect(() => openSecret([k2025], old)).toThrow(SecretBoxError);
    expect(() => openSecret([k2025], old)).toThrow(/'k2024'.*known: k2025/);
  });

  it('detects tampering with the data, the IV, or the key id', () => {
    const sealed = sealSecret([k2024, k2025], 'do not touch');
    const [v, id, iv, data] = sealed.split('.') as [string, string, string, string];
    const flip = (b64: string, at: number) => {
      const bytes = Buffer.from(b64, 'base64url');
      bytes[at] = bytes[at]! ^ 1;
      return bytes.toString('base64url');
    };
    const attempts = [
      `${v}.${id}.${iv}.${flip(data, 0)}`,
      `${v}.${id}.${iv}.${flip(data, Buffer.from(data, 'base64url').length - 1)}`,
      `${v}.${id}.${flip(iv, 3)}.${data}`,
      `${v}.k2025.${iv}.${data}`,
    ];
    for (const tampered of attempts) {
      expect(() => openSecret([k2024, k2025], tampered)).toThrow(/failed authentication/);
    }
    // A key whose bytes changed under the same id is caught the same way.
    expect(() => openSecret([{ id: 'k2024', key: randomBytes(32) }], sealed)).toThrow(
      /failed authentication/,
    );
  });

  it('rejects malformed input and unusable keys with clear errors', () => {
    for (const bad of [
      '',
      'plaintext',
      'v2.k2024.aaa.bbb',
      'v1.k2024.aaa',
      'v1.k2024.a+b.c/d',
      'v1.k2024.AAAA.AAAA',
    ]) {
      expect(() => openSecret([k2024], bad)).toThrow(SecretBoxError);
    }
    expect(() => sealSecret([], 'x')).toThrow(/No encryption key/);
    expect(() => sealSecret([{ id: 'a.b', key: randomBytes(32) }], 'x')).toThrow(/key id 'a.b'/);
    expect(() => sealSecret([{ id: 'short', key: randomBytes(16) }], 'x')).toThrow(/32 bytes/);
  });
});
