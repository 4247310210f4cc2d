/**
 * Keeps docker-compose.yml and the Dockerfile honest without Docker: the compose file is parsed
 * (anchors and merge keys resolved as compose resolves them) and checked against the config schema,
 * package.json's scripts and the Dockerfile's stages. Pure file parsing, no network.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CONFIG_KEYS, loadConfig } from '../config';

const ROOT = path.resolve(__dirname, '..');

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string; target?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: unknown;
  ports?: (string | number | { target?: number | string; published?: number | string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as ComposeFile;
const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

/** Services that run Parley's own code, and the npm script each runs. */
const APP_SERVICES: Record<string, string> = {
  api: 'api',
  worker: 'worker',
  relay: 'relay',
  migrate: 'migrate',
  'temporal-setup': 'temporal:search-attributes',
};

/** Sample values for the variables the compose file requires from the operator (`${VAR:?...}`). */
const SAMPLE_ENV: Record<string, string> = {
  JWT_SECRET: 'sample-jwt-secret-0123456789abcdef0123456789abcdef',
  DATABASE_APP_PASSWORD: 'sample-app-password-0123456789',
  POSTGRES_PASSWORD: 'sample-owner-password',
  ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 9).toString('base64')}`,
  STREAM_TOKEN_SECRET: 'sample-stream-token-secret-0123456789abcdef',
};

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service '${name}'`);
  return found;
}

/** A service's environment as name → raw (uninterpolated) value, for either compose syntax. */
function environmentOf(name: string): Record<string, string> {
  const env = service(name).environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const eq = entry.indexOf('=');
        return eq === -1 ? [entry, ''] : [entry.slice(0, eq), entry.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(
    Object.entries(env).map(([key, value]) => [key, value === null ? '' : String(value)]),
  );
}

/**
 * Compose's interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}`, `${VAR?message}`. A missing required variable throws, as compose refuses to start.
 */
function interpolate(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (
      match,
      braced: string | undefined,
      op: string | undefined,
      arg: string | undefined,
      bare: string | undefined,
    ) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare)!;
      const current = vars[name];
      const missing = op?.startsWith(':') ? !current : current === undefined;
      if (op === ':-' || op === '-') return missing ? (arg ?? '') : current!;
      if (op === ':?' || op === '?') {
        if (missing) throw new Error(`required variable ${name} is missing a value: ${arg ?? ''}`);
        return current!;
      }
      return current ?? '';
    },
  );
}

function interpolatedEnvironment(
  name: string,
  vars: Record<string, string | undefined>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(environmentOf(name)).map(([key, value]) => [key, interpolate(value, vars)]),
  );
}

/** Published ports as { host, container } pairs, from short (`[ip:]host:container[/proto]`) or long syntax. */
function portsOf(name: string): { host: number; container: number }[] {
  return (service(name).ports ?? []).map((port) => {
    if (typeof port === 'object') return { host: Number(port.published), container: Number(port.target) };
    const parts = String(port).split('/')[0]!.split(':');
    const container = Number(parts[parts.length - 1]);
    const host = parts.length >= 2 ? Number(parts[parts.length - 2]) : NaN;
    return { host, container };
  });
}

function commandOf(name: string): string[] {
  const command = service(name).command;
  if (command === undefined) return [];
  return Array.isArray(command) ? command : command.trim().split(/\s+/);
}

function dependsOn(name: string): Record<string, string> {
  const deps = service(name).depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((dep) => [dep, 'service_started']));
  return Object.fromEntries(
    Object.entries(deps).map(([dep, spec]) => [dep, spec?.condition ?? 'service_started']),
  );
}

/** Whether some service waits for `name` with this condition. */
function dependentsWaitingFor(name: string, condition: string): boolean {
  return Object.keys(compose.services).some((other) => dependsOn(other)[name] === condition);
}

/** The Dockerfile's stages: name (lower-case, or the index) → its instruction lines. */
function dockerfileStages(text: string): Map<string, string[]> {
  const stages = new Map<string, string[]>();
  let current: string[] | undefined;
  // Join backslash continuations so every instruction is one line.
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      current = [];
      stages.set((from[1] ?? String(stages.size)).toLowerCase(), current);
    }
    current?.push(line);
  }
  return stages;
}

describe('docker-compose.yml', () => {
  it('defines the whole stack', () => {
    for (const name of [
      'postgres',
      'redis',
      'temporal',
      'temporal-ui',
      'api',
      'worker',
      'relay',
      'migrate',
      'temporal-setup',
    ]) {
      expect(Object.keys(compose.services)).toContain(name);
    }
  });

  it.each([
    ['api', 3000, 3000],
    ['relay', 3001, 3001],
    ['temporal', 7233, 7233],
    ['temporal-ui', 8233, 8080],
  ])('%s publishes port %i', (name, host, container) => {
    expect(portsOf(name)).toContainEqual({ host, container });
  });

  it('publishes the api and relay on the ports their config listens on', () => {
    const vars = { ...SAMPLE_ENV };
    const apiConfig = loadConfig(interpolatedEnvironment('api', vars));
    const relayConfig = loadConfig(interpolatedEnvironment('relay', vars));
    expect(portsOf('api').map((p) => p.container)).toContain(apiConfig.API_PORT);
    expect(portsOf('relay').map((p) => p.container)).toContain(relayConfig.RELAY_PORT);
  });

  describe.each(Object.entries(APP_SERVICES))('%s', (name, script) => {
    it('is built from the Dockerfile in the repository root, runtime stage', () => {
      const build = service(name).build;
      expect(build).toBeDefined();
      const spec = typeof build === 'string' ? { context: build } : (build ?? {});
      expect(path.resolve(ROOT, spec.context ?? '.')).toBe(ROOT);
      expect(path.resolve(ROOT, spec.context ?? '.', spec.dockerfile ?? 'Dockerfile')).toBe(
        path.join(ROOT, 'Dockerfile'),
      );
      if (spec.target !== undefined) expect(spec.target).toBe('runtime');
    });

    it(`runs \`npm run ${script}\`, a script package.json defines`, () => {
      expect(commandOf(name)).toEqual(['npm', 'run', script]);
      expect(packageJson.scripts[script]).toEqual(expect.any(String));
    });

    it('sets only variables the config schema knows, and no env_file', () => {
      expect(service(name).env_file).toBeUndefined();
      const names = Object.keys(environmentOf(name));
      expect(names.length).toBeGreaterThan(0);
      const unknown = names.filter((key) => !(CONFIG_KEYS as string[]).includes(key));
      expect(unknown).toEqual([]);
    });

    it('parses as a production config once the operator supplies the secrets', () => {
      const env = interpolatedEnvironment(name, { ...SAMPLE_ENV });
      expect(env.NODE_ENV).toBe('production');
      expect(() => loadConfig(env)).not.toThrow();
    });
  });

  it('every service that builds Parley is checked above', () => {
    const built = Object.entries(compose.services)
      .filter(([, svc]) => svc.build !== undefined)
      .map(([name]) => name);
    expect(built.sort()).toEqual(Object.keys(APP_SERVICES).sort());
  });

  describe('api configuration', () => {
    it('parses with loadConfig as production, connecting to the compose services', () => {
      const config = loadConfig(interpolatedEnvironment('api', { ...SAMPLE_ENV }));
      expect(config.NODE_ENV).toBe('production');
      expect(config.JWT_SECRET).toBe(SAMPLE_ENV.JWT_SECRET);
      expect(config.DATABASE_URL).toMatch(/@postgres:5432\//);
      expect(config.TEMPORAL_ADDRESS).toBe('temporal:7233');
      expect(config.DEMO_SEED).toBe(false);
    });

    it('takes every secret from a required interpolation, never a literal or a default', () => {
      const env = environmentOf('api');
      const secrets = Object.keys(env).filter((key) => /SECRET|PASSWORD|API_KEY|ENCRYPTION_KEYS/.test(key));
      expect(secrets).toEqual(
        expect.arrayContaining(['JWT_SECRET', 'DATABASE_APP_PASSWORD', 'ENCRYPTION_KEYS']),
      );
      for (const key of secrets) expect(env[key]).toMatch(/^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$/);
    });

    it('refuses to start without the secrets, as compose would', () => {
      expect(() => interpolatedEnvironment('api', {})).toThrow(/JWT_SECRET|DATABASE_APP_PASSWORD/);
      const { JWT_SECRET: _jwt, ...withoutJwt } = SAMPLE_ENV;
      expect(() => interpolatedEnvironment('api', withoutJwt)).toThrow(/JWT_SECRET/);
      const { DATABASE_APP_PASSWORD: _pw, ...withoutAppPassword } = SAMPLE_ENV;
      expect(() => interpolatedEnvironment('api', withoutAppPassword)).toThrow(/DATABASE_APP_PASSWORD/);
    });
  });

  it('runs Temporal on PostgreSQL persistence, after PostgreSQL is healthy', () => {
    const env = environmentOf('temporal');
    expect(env.DB).toBe('postgres12');
    expect(env.POSTGRES_SEEDS).toBe('postgres');
    expect(dependsOn('temporal')).toMatchObject({ postgres: 'service_healthy' });
    expect(environmentOf('temporal-ui').TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('migrates before the app starts', () => {
    expect(dependsOn('migrate')).toMatchObject({ postgres: 'service_healthy' });
    expect(dependsOn('api')).toMatchObject({ migrate: 'service_completed_successfully' });
    expect(dependsOn('worker')).toMatchObject({ migrate: 'service_completed_successfully' });
    expect(Object.keys(dependsOn('api'))).toContain('temporal');
    expect(Object.keys(dependsOn('temporal-setup'))).toContain('temporal');
  });

  describe('health checks', () => {
    /** The port each long-running Parley process serves /health/ready on, from its config. */
    const HEALTH_PORTS = {
      api: 'API_PORT',
      relay: 'RELAY_PORT',
      worker: 'WORKER_METRICS_PORT',
    } as const;
    const healthcheckText = (name: string) => {
      const test = service(name).healthcheck?.test;
      return Array.isArray(test) ? test.join(' ') : String(test ?? '');
    };

    it.each(Object.entries(HEALTH_PORTS))(
      "%s's health check asks /health/ready on the port its config listens on (%s)",
      (name, key) => {
        expect(service(name).healthcheck?.disable).toBeUndefined();
        const config = loadConfig(interpolatedEnvironment(name, { ...SAMPLE_ENV }));
        expect(config[key]).toBeGreaterThan(0);
        const urls = [...healthcheckText(name).matchAll(/https?:\/\/[^'"\s)]+/g)].map((m) => new URL(m[0]));
        expect(urls.map((u) => `${u.hostname}:${u.port}${u.pathname}`)).toEqual([
          `127.0.0.1:${config[key]}/health/ready`,
        ]);
      },
    );

    it("the dependencies' health checks ask the address Parley connects to", () => {
      const config = loadConfig(interpolatedEnvironment('api', { ...SAMPLE_ENV }));
      // pg_isready and redis-cli ask their server's default port, inside its own container.
      const db = new URL(config.DATABASE_URL!);
      expect(db.hostname).toBe('postgres');
      expect(Number(db.port || 5432)).toBe(5432);
      expect(healthcheckText('postgres')).toMatch(/^CMD-SHELL pg_isready -U parley -d parley$/);
      const redis = new URL(config.REDIS_URL!);
      expect(redis.hostname).toBe('redis');
      expect(Number(redis.port || 6379)).toBe(6379);
      expect(healthcheckText('redis')).toBe('CMD redis-cli ping');
      expect(healthcheckText('temporal')).toContain(`--address ${config.TEMPORAL_ADDRESS}`);
    });

    it('only the one-shot jobs, and no Parley service, go without a health check', () => {
      for (const [name, svc] of Object.entries(compose.services)) {
        const checked = svc.healthcheck?.disable !== true && healthcheckText(name) !== '';
        const oneShot = dependentsWaitingFor(name, 'service_completed_successfully');
        // A Parley service without its own test would inherit the image's api HEALTHCHECK.
        if (svc.build !== undefined) expect(`${name}: ${checked || oneShot}`).toBe(`${name}: true`);
        if (svc.healthcheck?.disable) expect(`${name} one-shot: ${oneShot}`).toBe(`${name} one-shot: true`);
      }
    });

    it('services others wait on as healthy have a health check', () => {
      for (const name of Object.keys(compose.services)) {
        for (const [dep, condition] of Object.entries(dependsOn(name))) {
          if (condition !== 'service_healthy') continue;
          expect(`${name} → ${dep}: ${healthcheckText(dep) !== ''}`).toBe(`${name} → ${dep}: true`);
        }
      }
    });
  });

  describe('redis', () => {
    it('runs redis:7-alpine, and the api shares its rate limits there once it is healthy', () => {
      expect(service('redis').image).toBe('redis:7-alpine');
      const config = loadConfig(interpolatedEnvironment('api', { ...SAMPLE_ENV }));
      const url = new URL(config.REDIS_URL!);
      expect(url.protocol).toBe('redis:');
      // The host is the compose service, on Redis's port.
      expect(Object.keys(compose.services)).toContain(url.hostname);
      expect(url.hostname).toBe('redis');
      expect(Number(url.port || 6379)).toBe(6379);
      expect(dependsOn('api')).toMatchObject({ redis: 'service_healthy' });
    });
  });

  it('leaves METRICS_TOKEN and OTEL_EXPORTER_OTLP_ENDPOINT unset unless the operator sets them', () => {
    for (const name of Object.keys(APP_SERVICES)) {
      const unset = loadConfig(interpolatedEnvironment(name, { ...SAMPLE_ENV }));
      expect(unset.METRICS_TOKEN).toBeUndefined();
      expect(unset.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
      const set = loadConfig(
        interpolatedEnvironment(name, {
          ...SAMPLE_ENV,
          METRICS_TOKEN: 'scrape-token-0123456789',
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318',
        }),
      );
      expect(set.METRICS_TOKEN).toBe('scrape-token-0123456789');
      expect(set.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318');
    }
  });
});

describe('Dockerfile', () => {
  const file = path.join(ROOT, 'Dockerfile');
  const stages = existsSync(file)
    ? dockerfileStages(readFileSync(file, 'utf8'))
    : new Map<string, string[]>();

  it('exists in the repository root with a runtime stage', () => {
    expect(existsSync(file)).toBe(true);
    expect([...stages.keys()]).toContain('runtime');
  });

  it('runs the runtime stage as a non-root user', () => {
    const users = (stages.get('runtime') ?? []).filter((line) => /^USER\s/i.test(line));
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1]!.split(/\s+/)[1]!.split(':')[0]!;
    expect(['root', '0']).not.toContain(user);
  });

  it('defaults to the api and exposes the api and relay ports', () => {
    const runtime = (stages.get('runtime') ?? []).join('\n');
    expect(runtime).toMatch(/^CMD \["npm",\s*"run",\s*"api"\]$/m);
    expect(runtime).toMatch(/^EXPOSE\s.*\b3000\b/m);
    expect(runtime).toMatch(/^EXPOSE\s.*\b3001\b/m);
    expect(runtime).toMatch(/^HEALTHCHECK\s.*\/health\/live/m);
  });
});
