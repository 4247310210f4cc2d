import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_KEYS, ConfigError, loadConfig } from '../config';

const ROOT = path.resolve(__dirname, '..');

function problemsOf(env: Record<string, string>): { variable: string; message: string }[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('parses an empty environment into development defaults and freezes it', () => {
    const config = loadConfig({});
    expect(config.API_PORT).toBe(3000);
    expect(config.WORKER_TASK_QUEUES).toEqual(['calls', 'campaigns', 'dialer', 'integrations', 'billing']);
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { API_PORT: number }).API_PORT = 1;
    }).toThrow(TypeError);
  });

  it.each([
    [{ API_PORT: 'abc' }, 'API_PORT'],
    [{ API_PORT: '70000' }, 'API_PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ PUBLIC_BASE_URL: 'not a url' }, 'PUBLIC_BASE_URL'],
    [{ RELAY_PUBLIC_URL: 'http://relay' }, 'RELAY_PUBLIC_URL'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ TEMPORAL_TLS: 'maybe' }, 'TEMPORAL_TLS'],
    [{ WORKER_TASK_QUEUES: 'calls,bogus' }, 'WORKER_TASK_QUEUES'],
    [{ TEMPORAL_TLS_CERT_PATH: __filename }, 'TEMPORAL_TLS_KEY_PATH'],
    [{ TEMPORAL_TLS_CA_PATH: '/nonexistent/ca.pem' }, 'TEMPORAL_TLS_CA_PATH'],
  ])('names the bad variable in %j', (env, variable) => {
    const problems = problemsOf(env);
    expect(problems.map((p) => p.variable)).toContain(variable);
  });

  it('refuses development secrets in production, naming each', () => {
    const variables = problemsOf({ NODE_ENV: 'production' }).map((p) => p.variable);
    expect(variables).toEqual(
      expect.arrayContaining([
        'JWT_SECRET',
        'DATABASE_APP_PASSWORD',
        'ENCRYPTION_KEYS',
        'STREAM_TOKEN_SECRET',
      ]),
    );
    expect(() =>
      loadConfig({
        NODE_ENV: 'production',
        JWT_SECRET: 'x'.repeat(40),
        DATABASE_APP_URL: 'postgres://app@db/parley',
        ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
        STREAM_TOKEN_SECRET: 's'.repeat(40),
      }),
    ).not.toThrow();
  });

  it('never echoes a secret value in the error message', () => {
    try {
      loadConfig({ JWT_SECRET: 'tiny-secret', DATABASE_URL: 'mysql://user:hunter2@db' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('JWT_SECRET');
      expect((err as Error).message).not.toContain('tiny-secret');
      expect((err as Error).message).not.toContain('hunter2');
    }
  });

  it('.env.example documents every variable, and nothing else, and parses cleanly', () => {
    const text = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
    const entries = Object.fromEntries(
      text
        .split('\n')
        .filter((line) => /^[A-Z0-9_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(Object.keys(entries).sort()).toEqual([...CONFIG_KEYS].sort());
    expect(() => loadConfig(entries)).not.toThrow();
  });

  it('an entry point with a bad value exits non-zero and names the variable', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'realtime-relay/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, RELAY_PORT: 'nope' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('RELAY_PORT');
  });
});
