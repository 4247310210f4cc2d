/**
 * The api's security middleware: helmet's headers with a CSP the dashboard and Swagger UI load under,
 * and the per-IP and per-tenant rate limits (429 RATE_LIMITED with Retry-After), in memory and
 * shared through Redis, failing open when Redis is down.
 */
import type { Express } from 'express';
import request from 'supertest';
import { createApp } from '../api/app';
import { closeSecurity } from '../api/security';
import { createLogger } from '../lib/logger';
import { bearer, signUpTenant, startStack, testConfig, type TestStack } from './support/stack';

const WINDOW_SECONDS = 3;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for a fresh fixed window, so a short burst is counted in one window. */
async function startOfWindow(): Promise<void> {
  const windowMs = WINDOW_SECONDS * 1000;
  await sleep(windowMs - (Date.now() % windowMs) + 20);
}

let counter = 0;
/** A client address of its own (TEST-NET-3), through X-Forwarded-For from the trusted loopback. */
function newIp(): string {
  counter += 1;
  return `203.0.113.${(process.pid + counter) % 250}`;
}

function expectRateLimited(res: request.Response, scope: 'ip' | 'tenant', limit: number) {
  expect(res.status).toBe(429);
  expect(res.body.error).toMatchObject({ code: 'RATE_LIMITED', details: { limit, scope } });
  expect(typeof res.body.error.message).toBe('string');
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
  expect(res.headers['ratelimit-limit']).toBe(String(limit));
  expect(res.headers['ratelimit-remaining']).toBe('0');
}

let stack: TestStack;
const extraApps: Express[] = [];

beforeAll(async () => {
  stack = await startStack({
    env: {
      RATE_LIMIT_IP_PER_MINUTE: '3',
      RATE_LIMIT_TENANT_PER_MINUTE: '0',
      RATE_LIMIT_WINDOW_SECONDS: String(WINDOW_SECONDS),
      RELAY_PUBLIC_URL: 'wss://relay.example.test:8443',
    },
  });
});

afterAll(async () => {
  for (const app of extraApps) await closeSecurity(app);
  await closeSecurity(stack?.app);
  await stack?.close();
});

/** Another api app over the stack's ORM and Temporal, with its own config (its own counters). */
function appWith(env: Record<string, string>): Express {
  const config = testConfig(env);
  const app = createApp({
    config,
    orm: stack.orm,
    temporal: stack.temporal,
    logger: createLogger(config, 'test'),
  });
  extraApps.push(app);
  return app;
}

describe('security headers', () => {
  it('sends a CSP the dashboard works under, and the other helmet headers, on / and /docs', async () => {
    const ip = newIp();
    for (const path of ['/', '/docs/']) {
      const res = await request(stack.app).get(path).set('x-forwarded-for', ip).set('accept', 'text/html');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      const csp = res.headers['content-security-policy'] as string;
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("object-src 'none'");
      // The dashboard's AudioWorklet module and recordings are blob: URLs; its calls use the relay.
      expect(csp).toMatch(/script-src 'self' blob:/);
      expect(csp).toMatch(/media-src 'self' blob:/);
      expect(csp).toMatch(/connect-src 'self' wss:\/\/relay\.example\.test:8443/);
      // Swagger UI's page has inline <style> blocks.
      expect(csp).toMatch(/style-src 'self' 'unsafe-inline'/);
      expect(csp).not.toContain('upgrade-insecure-requests');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('sends them on JSON API responses and errors too', async () => {
    const res = await request(stack.app).get('/v1/me').set('x-forwarded-for', newIp());
    expect(res.status).toBe(401);
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});

describe('per-IP rate limit', () => {
  it('refuses the request over the limit with 429, Retry-After and RATE_LIMITED, then resets', async () => {
    const ip = newIp();
    const other = newIp();
    await startOfWindow();
    for (let i = 0; i < 3; i += 1) {
      const ok = await request(stack.app).get('/openapi.json').set('x-forwarded-for', ip);
      expect(ok.status).toBe(200);
      expect(ok.headers['ratelimit-limit']).toBe('3');
      expect(ok.headers['ratelimit-remaining']).toBe(String(2 - i));
    }
    const refused = await request(stack.app).get('/openapi.json').set('x-forwarded-for', ip);
    expectRateLimited(refused, 'ip', 3);
    // Refused whatever the route, public or not.
    expectRateLimited(await request(stack.app).get('/v1/me').set('x-forwarded-for', ip), 'ip', 3);
    // Another client is not affected.
    expect((await request(stack.app).get('/openapi.json').set('x-forwarded-for', other)).status).toBe(200);

    await sleep(Number(refused.headers['retry-after']) * 1000 + 50);
    const again = await request(stack.app).get('/openapi.json').set('x-forwarded-for', ip);
    expect(again.status).toBe(200);
    expect(again.headers['ratelimit-remaining']).toBe('2');
  });

  it('never counts health probes or the signed Twilio and Stripe webhooks', async () => {
    const ip = newIp();
    await startOfWindow();
    for (let i = 0; i < 6; i += 1) {
      expect((await request(stack.app).get('/health/live').set('x-forwarded-for', ip)).status).toBe(200);
      // Unsigned: refused by the webhook's own check, never by the rate limit.
      const twilio = await request(stack.app)
        .post('/twilio/status')
        .set('x-forwarded-for', ip)
        .type('form')
        .send({ CallSid: 'CA00000000000000000000000000000000', CallStatus: 'completed' });
      expect(twilio.status).not.toBe(429);
      const stripe = await request(stack.app)
        .post('/stripe/webhook')
        .set('x-forwarded-for', ip)
        .set('content-type', 'application/json')
        .send('{}');
      expect(stripe.status).not.toBe(429);
    }
    // The same client's API requests still have their whole allowance.
    const first = await request(stack.app).get('/openapi.json').set('x-forwarded-for', ip);
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-remaining']).toBe('2');
  });

  it('is off when set to 0', async () => {
    const app = appWith({ RATE_LIMIT_IP_PER_MINUTE: '0', RATE_LIMIT_TENANT_PER_MINUTE: '0' });
    const ip = newIp();
    for (let i = 0; i < 8; i += 1) {
      const res = await request(app).get('/openapi.json').set('x-forwarded-for', ip);
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-limit']).toBeUndefined();
    }
  });
});

describe('per-tenant rate limit', () => {
  const tenantEnv = {
    RATE_LIMIT_IP_PER_MINUTE: '0',
    RATE_LIMIT_TENANT_PER_MINUTE: '3',
    RATE_LIMIT_WINDOW_SECONDS: String(WINDOW_SECONDS),
  };

  it("counts one tenant's authenticated requests across IPs, and leaves another tenant alone", async () => {
    const app = appWith(tenantEnv);
    const acme = await signUpTenant(app, 'Acme');
    const globex = await signUpTenant(app, 'Globex');
    await startOfWindow();
    for (let i = 0; i < 3; i += 1) {
      const res = await request(app).get('/v1/me').set(bearer(acme.token)).set('x-forwarded-for', newIp());
      expect(res.status).toBe(200);
    }
    const refused = await request(app).get('/v1/me').set(bearer(acme.token)).set('x-forwarded-for', newIp());
    expectRateLimited(refused, 'tenant', 3);

    const other = await request(app).get('/v1/me').set(bearer(globex.token)).set('x-forwarded-for', newIp());
    expect(other.status).toBe(200);
    expect(other.headers['ratelimit-remaining']).toBe('2');
    // Public routes carry no tenant: sign-in still works for everyone.
    const login = await request(app)
      .post('/v1/auth/login')
      .send({ email: acme.email, password: acme.password });
    expect(login.status).toBe(200);
  });

  it("shares one tenant's counter between two api instances through Redis", async () => {
    const env = { ...tenantEnv, REDIS_URL: 'redis://127.0.0.1:6379' };
    const first = appWith(env);
    const second = appWith(env);
    const tenant = await signUpTenant(first, 'Shared');
    await startOfWindow();
    const statuses: number[] = [];
    for (const app of [first, second, first, second]) {
      const res = await request(app).get('/v1/me').set(bearer(tenant.token)).set('x-forwarded-for', newIp());
      statuses.push(res.status);
      if (res.status === 429) expectRateLimited(res, 'tenant', 3);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('serves requests when Redis is unreachable (fails open)', async () => {
    const app = appWith({
      RATE_LIMIT_IP_PER_MINUTE: '1',
      RATE_LIMIT_TENANT_PER_MINUTE: '1',
      REDIS_URL: 'redis://127.0.0.1:6390',
    });
    const tenant = await signUpTenant(app, 'No Redis');
    const ip = newIp();
    for (let i = 0; i < 4; i += 1) {
      const res = await request(app).get('/v1/me').set(bearer(tenant.token)).set('x-forwarded-for', ip);
      expect(res.status).toBe(200);
    }
  });
});
