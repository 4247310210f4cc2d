/**
 * No secret reaches a log line. The api runs with a logger at debug level whose output this test
 * reads, while real code paths log: sign-up and a failed sign-in (passwords), authenticated
 * requests (bearer tokens), a HubSpot connect with a wrong token and one to an unreachable HubSpot
 * (the access token), a config that does not parse (secret variables), and a config dump, errors
 * carrying request headers, and rows with credentials logged as objects (redaction by path).
 */
import type { Express } from 'express';
import request from 'supertest';
import { createApp } from '../api/app';
import { CONFIG_KEYS, ConfigError, loadConfig } from '../config';
import { createLogger, REDACTED, REDACTED_PATHS, type Logger } from '../lib/logger';
import { HubSpotPeer } from './peers/hubspot-peer';
import { bearer, signUpTenant, startStack, type TestStack } from './support/stack';

/** Config variables whose values are secrets (names as config/index.ts masks them in errors). */
const SECRET_VARIABLE =
  /SECRET|PASSWORD|API_KEY|AUTH_TOKEN|_TOKEN$|ENCRYPTION_KEYS|LLM_API_KEYS|DATABASE_(APP_)?URL|REDIS_URL/;

const ENCRYPTION_KEY_B64 = Buffer.from('k'.repeat(32)).toString('base64');
const SECRETS = {
  JWT_SECRET: 'jwt-secret-value-0123456789-abcdefghijkl',
  STREAM_TOKEN_SECRET: 'stream-secret-value-0123456789-abcdefghij',
  ENCRYPTION_KEYS: `k1:${ENCRYPTION_KEY_B64}`,
  DATABASE_URL: 'postgres://owner:db-owner-pw-9876@127.0.0.1:5432/parley',
  DATABASE_APP_URL: 'postgres://parley_app:db-app-pw-9876@127.0.0.1:5432/parley',
  DATABASE_APP_PASSWORD: 'db-app-password-value-123',
  REDIS_URL: 'redis://:redis-pw-5555@127.0.0.1:6379',
  TEMPORAL_API_KEY: 'temporal-api-key-value-777',
  METRICS_TOKEN: 'metrics-token-value-888',
  OPENAI_API_KEY: 'sk-openai-key-value-999',
  LLM_API_KEYS: 'groq=gsk-llm-key-value-111',
  TWILIO_AUTH_TOKEN: 'twilio-auth-token-value-222',
  STRIPE_SECRET_KEY: 'sk_test_stripe-secret-value-333',
  STRIPE_WEBHOOK_SECRET: 'whsec_stripe-webhook-value-444',
  SALESFORCE_CLIENT_SECRET: 'salesforce-client-secret-555',
};
/** What may not appear in any line: the values as given, and the pieces a URL or list hides them in. */
const SECRET_FRAGMENTS = [
  ...Object.values(SECRETS),
  ENCRYPTION_KEY_B64,
  'db-owner-pw-9876',
  'db-app-pw-9876',
  'redis-pw-5555',
  'gsk-llm-key-value-111',
];

const HUBSPOT_TOKEN = 'pat-na1-11111111-aaaa-bbbb-cccc-000000000001';
const WRONG_HUBSPOT_TOKEN = 'pat-na1-99999999-dead-beef-cafe-000000000002';
const PASSWORD = 'correct horse battery';
const WRONG_PASSWORD = 'wrong-password-value-4242';

let stack: TestStack;
let hubspot: HubSpotPeer;
const lines: string[] = [];

function captureLogger(): Logger {
  return createLogger({ LOG_LEVEL: 'debug' }, 'redaction-test', {
    write: (line: string) => {
      lines.push(line);
    },
  });
}

function appWith(logger: Logger, overrides: Record<string, unknown> = {}): Express {
  return createApp({
    config: { ...stack.config, ...overrides },
    orm: stack.orm,
    temporal: stack.temporal,
    logger,
  });
}

function expectNoSecret(output: string, secrets: string[]): void {
  for (const secret of secrets) {
    if (output.includes(secret)) throw new Error(`a log line holds the secret '${secret}':\n${output}`);
  }
}

beforeAll(async () => {
  hubspot = new HubSpotPeer({ accessToken: HUBSPOT_TOKEN });
  const hubspotUrl = await hubspot.start();
  stack = await startStack({ env: { HUBSPOT_API_BASE_URL: hubspotUrl } });
});
afterAll(async () => {
  await stack?.close();
  await hubspot?.stop();
});
beforeEach(() => {
  lines.length = 0;
});

describe('log redaction', () => {
  it('keeps passwords and bearer tokens out of the api request logs at debug level', async () => {
    const app = appWith(captureLogger());
    const tenant = await signUpTenant(app, 'Redaction Co');
    expect(tenant.password).toBe(PASSWORD);
    const failed = await request(app)
      .post('/v1/auth/login')
      .send({ email: tenant.email, password: WRONG_PASSWORD });
    expect(failed.status).toBe(401);
    const signedIn = await request(app)
      .post('/v1/auth/login')
      .send({ email: tenant.email, password: PASSWORD });
    expect(signedIn.status).toBe(200);
    const users = await request(app).get('/v1/users').set(bearer(tenant.token));
    expect(users.status).toBe(200);
    const key = await request(app)
      .post('/v1/api-keys')
      .set(bearer(tenant.token))
      .send({ name: 'ci', role: 'viewer' });
    expect(key.status).toBe(201);
    const withKey = await request(app).get('/v1/users').set(bearer(key.body.key));
    expect(withKey.status).toBe(200);

    // The request logger ran for each of them.
    const output = lines.join('');
    expect(lines.filter((l) => /"msg":"request"/.test(l)).length).toBeGreaterThanOrEqual(5);
    expect(output).toContain('/v1/auth/login');
    expectNoSecret(output, [PASSWORD, WRONG_PASSWORD, tenant.token, signedIn.body.token, key.body.key]);
    // An authenticated request's line names its route pattern and its tenant; a public one, no tenant.
    const requestLines = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'request');
    expect(requestLines.filter((l) => l.route === '/v1/users')).toEqual([
      expect.objectContaining({ method: 'GET', status: 200, tenantId: tenant.tenantId }),
      expect.objectContaining({ method: 'GET', status: 200, tenantId: tenant.tenantId }),
    ]);
    expect(requestLines.find((l) => l.route === '/v1/auth/login')).not.toHaveProperty('tenantId');
  });

  it('keeps a CRM access token out of the logs when HubSpot refuses it or cannot be reached', async () => {
    const app = appWith(captureLogger());
    const tenant = await signUpTenant(app, 'CRM Redaction Co');
    const refused = await request(app)
      .put('/v1/integrations/hubspot')
      .set(bearer(tenant.token))
      .send({ accessToken: WRONG_HUBSPOT_TOKEN });
    expect(refused.status).toBe(422);
    const connected = await request(app)
      .put('/v1/integrations/hubspot')
      .set(bearer(tenant.token))
      .send({ accessToken: HUBSPOT_TOKEN });
    expect(connected.status).toBe(200);

    // A HubSpot that does not answer: the api logs the 5xx with its cause.
    const unreachable = appWith(captureLogger(), { HUBSPOT_API_BASE_URL: 'http://127.0.0.1:9' });
    const down = await request(unreachable)
      .put('/v1/integrations/hubspot')
      .set(bearer(tenant.token))
      .send({ accessToken: HUBSPOT_TOKEN });
    expect(down.status).toBeGreaterThanOrEqual(500);
    const output = lines.join('');
    expect(lines.some((l) => /"level":40/.test(l) && l.includes('/v1/integrations/hubspot'))).toBe(true);
    expectNoSecret(output, [WRONG_HUBSPOT_TOKEN, HUBSPOT_TOKEN, tenant.token]);
  });

  it('keeps secret variables out of a config error and a config dump', () => {
    const logger = captureLogger();
    const base = { ...process.env, ...SECRETS };
    let configError: unknown;
    try {
      loadConfig({ ...base, STRIPE_SECRET_KEY: 'not-a-stripe-key-value-666', JWT_SECRET: 'short-jwt-777' });
    } catch (err) {
      configError = err;
    }
    expect(configError).toBeInstanceOf(ConfigError);
    logger.error({ err: configError }, (configError as Error).message);

    const config = loadConfig(base);
    logger.info({ config }, 'configuration');
    logger.debug({ settings: { env: config } }, 'nested configuration');
    const output = lines.join('');
    expect(output).toContain('STRIPE_SECRET_KEY');
    expect(output).toContain(`"JWT_SECRET":"${REDACTED}"`);
    expectNoSecret(output, [...SECRET_FRAGMENTS, 'not-a-stripe-key-value-666', 'short-jwt-777']);
    // The encryption key as the bytes a Buffer logs as.
    expect(output).not.toContain(JSON.stringify([...Buffer.from('k'.repeat(32))]).slice(1, -1));
  });

  it('redacts every secret config variable by name, so a new one cannot slip through unnoticed', () => {
    const secretVariables = CONFIG_KEYS.filter((k) => SECRET_VARIABLE.test(k));
    expect(secretVariables).toEqual(expect.arrayContaining(Object.keys(SECRETS)));
    for (const name of secretVariables) {
      expect(REDACTED_PATHS).toEqual(expect.arrayContaining([name, `*.${name}`, `*.*.${name}`]));
    }
  });

  it('redacts credentials in headers, errors and rows logged as objects, at any of three levels', () => {
    const logger = captureLogger();
    const secrets = [
      'Bearer header-token-1',
      'session=cookie-value-2',
      'password-value-3',
      'access-token-4',
      'refresh-token-5',
      'api-key-6',
      'signing-secret-7',
      'twilio-signature-8',
      'client-secret-9',
      'ciphertext-10',
    ];
    logger.debug(
      { req: { method: 'GET', headers: { authorization: secrets[0], cookie: secrets[1], host: 'api' } } },
      'incoming',
    );
    logger.warn(
      {
        err: Object.assign(new Error('request failed with status 401'), {
          config: { url: 'https://api.hubapi.com', headers: { Authorization: secrets[0] } },
        }),
      },
      'crm call failed',
    );
    logger.info({ user: { email: 'a@b.test', password: secrets[2], passwordHash: 'hash' } }, 'user');
    logger.info(
      {
        integration: {
          provider: 'salesforce',
          credentialsCiphertext: secrets[9],
          credentials: { accessToken: secrets[3], refreshToken: secrets[4] },
        },
      },
      'integration',
    );
    logger.info({ body: { crm: { apiKey: secrets[5], clientSecret: secrets[8] } } }, 'three levels');
    logger.info({ endpoint: { url: 'https://hooks.test', signingSecret: secrets[6] } }, 'webhook endpoint');
    logger.info({ webhook: { headers: { 'x-twilio-signature': secrets[7] } } }, 'twilio webhook');
    logger.info({ token: secrets[3], accessToken: secrets[3], refreshToken: secrets[4] }, 'top level');

    const output = lines.join('');
    expect(lines).toHaveLength(8);
    expect(output).toContain('a@b.test');
    expect(output).toContain('request failed with status 401');
    expectNoSecret(output, secrets);
  });
});
