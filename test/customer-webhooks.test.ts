/**
 * Customer webhooks end to end: endpoints managed through the api (real PostgreSQL under RLS),
 * events delivered over real sockets to local receivers that check the signature, and the retry
 * behaviour of the activity inside a real Temporal worker.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { Client } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import request from 'supertest';
import {
  createCustomerWebhookActivities,
  deliverWebhookEvent,
  signWebhookPayload,
  verifyWebhookSignature,
  WebhookDeliveryError,
} from '../activities/customer-webhooks';
import { createApp } from '../api/app';
import { issueAccessToken } from '../api/auth/tokens';
import { createLogger } from '../lib/logger';
import { openSecret } from '../lib/secret-box';
import { ISOLATED_NAMESPACE } from './harness/state';
import { startWebhookReceiver, type WebhookReceiver } from './peers/webhook-receiver';
import {
  ownerClient,
  signUpTenant,
  startStack,
  testConfig,
  uniqueEmail,
  type SignedUp,
  type TestStack,
  bearer,
} from './support/stack';

let stack: TestStack;
let owner: SignedUp;
let other: SignedUp;
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  stack = await startStack({ worker: true });
  [owner, other] = await Promise.all([
    signUpTenant(stack.app, 'Hooks Co'),
    signUpTenant(stack.app, 'Other Hooks Co'),
  ]);
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await stack.close();
});

async function receiver(): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver();
  receivers.push(r);
  return r;
}

/** Registers `r` as an endpoint of `tenant` and hands the receiver its secret. */
async function registerEndpoint(tenant: SignedUp, r: WebhookReceiver, extra: { enabled?: boolean } = {}) {
  const res = await request(stack.app)
    .post('/v1/webhook-endpoints')
    .set(bearer(tenant.token))
    .send({ url: r.url(), events: ['call.ended'], ...extra });
  expect(res.status).toBe(201);
  r.secret = res.body.secret;
  return res.body as { id: string; secret: string };
}

function activities() {
  return createCustomerWebhookActivities({ orm: stack.orm, encryptionKeys: stack.config.ENCRYPTION_KEYS });
}

const callEnded = (tenant: SignedUp) => ({
  tenantId: tenant.tenantId,
  event: 'call.ended' as const,
  eventId: `call.ended:${randomUUID()}`,
  payload: { callId: randomUUID(), disposition: 'completed', durationSeconds: 42 },
});

describe('webhook endpoint api', () => {
  it('shows the signing secret once, never lists it, and stores it only sealed', async () => {
    const created = await request(stack.app)
      .post('/v1/webhook-endpoints')
      .set(bearer(owner.token))
      .send({ url: 'https://hooks.example.com/parley?src=1', events: ['call.ended', 'call.ended'] });
    expect(created.status).toBe(201);
    const secret: string = created.body.secret;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created.body).toMatchObject({
      url: 'https://hooks.example.com/parley?src=1',
      events: ['call.ended'],
      enabled: true,
    });

    const listed = await request(stack.app).get('/v1/webhook-endpoints').set(bearer(owner.token));
    expect(listed.status).toBe(200);
    const item = listed.body.data.find((e: { id: string }) => e.id === created.body.id);
    expect(item).toEqual({
      id: created.body.id,
      url: 'https://hooks.example.com/parley?src=1',
      events: ['call.ended'],
      enabled: true,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(JSON.stringify(listed.body)).not.toContain(secret.slice(6));

    const db = await ownerClient(stack.config);
    try {
      const { rows } = await db.query<{ secret_ciphertext: string }>(
        'select secret_ciphertext from webhook_endpoints where id = $1',
        [created.body.id],
      );
      const stored = rows[0]!.secret_ciphertext;
      expect(stored).toMatch(/^v1\./);
      expect(stored).not.toContain(secret.slice(6));
      expect(openSecret(stack.config.ENCRYPTION_KEYS, stored)).toBe(secret);

      const audit = await db.query<{ action: string; actor_id: string; after: unknown }>(
        'select action, actor_id, after from audit_log where target_id = $1',
        [created.body.id],
      );
      expect(audit.rows).toEqual([
        {
          action: 'webhook_endpoint.created',
          actor_id: owner.userId,
          after: { url: 'https://hooks.example.com/parley?src=1', events: ['call.ended'], enabled: true },
        },
      ]);
    } finally {
      await db.end();
    }
  });

  it('refuses viewers (403) on every route', async () => {
    const email = uniqueEmail('viewer');
    const password = 'a long enough password';
    const added = await request(stack.app)
      .post('/v1/users')
      .set(bearer(owner.token))
      .send({ email, name: 'Vi', role: 'viewer', password });
    expect(added.status).toBe(201);
    const login = await request(stack.app).post('/v1/auth/login').send({ email, password });
    const token: string = login.body.token;
    for (const res of [
      await request(stack.app).get('/v1/webhook-endpoints').set(bearer(token)),
      await request(stack.app)
        .post('/v1/webhook-endpoints')
        .set(bearer(token))
        .send({ url: 'https://x.example.com', events: ['call.ended'] }),
      await request(stack.app).delete(`/v1/webhook-endpoints/${randomUUID()}`).set(bearer(token)),
    ]) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('INSUFFICIENT_ROLE');
    }
  });

  it('a bad URL or event list: 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'http://hooks.example.com/x', events: ['call.ended'] }, 'body.url'],
      [{ url: 'ftp://127.0.0.1/x', events: ['call.ended'] }, 'body.url'],
      [{ url: 'not a url', events: ['call.ended'] }, 'body.url'],
      [{ url: 'https://user:pw@hooks.example.com/x', events: ['call.ended'] }, 'body.url'],
      [{ events: ['call.ended'] }, 'body.url'],
      [{ url: 'https://hooks.example.com/x', events: [] }, 'body.events'],
      [{ url: 'https://hooks.example.com/x', events: ['call.started'] }, 'body.events.0'],
    ];
    for (const [body, field] of cases) {
      const res = await request(stack.app).post('/v1/webhook-endpoints').set(bearer(owner.token)).send(body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(field);
    }
    // Plain http is for a developer's own machine.
    for (const url of ['http://localhost:8080/hook', 'http://127.0.0.1:9/hook']) {
      const res = await request(stack.app)
        .post('/v1/webhook-endpoints')
        .set(bearer(other.token))
        .send({ url, events: ['call.ended'], enabled: false });
      expect(res.status).toBe(201);
    }
  });

  it('in production, http is refused even for localhost', async () => {
    const jwtSecret = randomBytes(32).toString('hex');
    const config = testConfig({
      NODE_ENV: 'production',
      JWT_SECRET: jwtSecret,
      ENCRYPTION_KEYS: `prod1:${randomBytes(32).toString('base64')}`,
      DATABASE_APP_PASSWORD: 'a-production-password',
      STREAM_TOKEN_SECRET: randomBytes(32).toString('hex'),
    });
    const app = createApp({
      config,
      orm: stack.orm,
      temporal: stack.temporal,
      logger: createLogger(config, 'test'),
    });
    const { token } = issueAccessToken(jwtSecret, 600, { sub: owner.userId, tid: owner.tenantId });
    const local = await request(app)
      .post('/v1/webhook-endpoints')
      .set(bearer(token))
      .send({ url: 'http://localhost:8080/hook', events: ['call.ended'] });
    expect(local.status).toBe(400);
    expect(local.body.error.details[0]).toMatchObject({ path: 'body.url', message: 'must be an https URL' });
    const secure = await request(app)
      .post('/v1/webhook-endpoints')
      .set(bearer(token))
      .send({ url: 'https://hooks.example.com/prod', events: ['call.ended'] });
    expect(secure.status).toBe(201);
    await request(app).delete(`/v1/webhook-endpoints/${secure.body.id}`).set(bearer(token)).expect(204);
  });

  it("deletes (audited); another tenant's endpoint is 404 WEBHOOK_ENDPOINT_NOT_FOUND and untouched", async () => {
    const created = await request(stack.app)
      .post('/v1/webhook-endpoints')
      .set(bearer(owner.token))
      .send({ url: 'https://hooks.example.com/delete-me', events: ['call.ended'] });
    const id: string = created.body.id;

    const foreign = await request(stack.app).delete(`/v1/webhook-endpoints/${id}`).set(bearer(other.token));
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('WEBHOOK_ENDPOINT_NOT_FOUND');
    const otherList = await request(stack.app).get('/v1/webhook-endpoints').set(bearer(other.token));
    expect(otherList.body.data.map((e: { id: string }) => e.id)).not.toContain(id);

    const del = await request(stack.app).delete(`/v1/webhook-endpoints/${id}`).set(bearer(owner.token));
    expect(del.status).toBe(204);
    const again = await request(stack.app).delete(`/v1/webhook-endpoints/${id}`).set(bearer(owner.token));
    expect(again.status).toBe(404);
    const list = await request(stack.app).get('/v1/webhook-endpoints').set(bearer(owner.token));
    expect(list.body.data.map((e: { id: string }) => e.id)).not.toContain(id);

    const db = await ownerClient(stack.config);
    try {
      const { rows } = await db.query<{ action: string; before: unknown }>(
        'select action, before from audit_log where target_id = $1 order by created_at',
        [id],
      );
      expect(rows.map((r) => r.action)).toEqual(['webhook_endpoint.created', 'webhook_endpoint.deleted']);
      expect(rows[1]!.before).toMatchObject({ url: 'https://hooks.example.com/delete-me' });
    } finally {
      await db.end();
    }
  });
});

describe('signatures', () => {
  it('verifies t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")> within the tolerance only', () => {
    const secret = 'whsec_test';
    const body = '{"id":"evt_1"}';
    const header = signWebhookPayload(secret, body, 1_700_000_000);
    const hex = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
    expect(header).toBe(`t=1700000000,v1=${hex}`);
    expect(verifyWebhookSignature(secret, header, body, 300, 1_700_000_100)).toBe(true);
    expect(verifyWebhookSignature(secret, header, Buffer.from(body), 300, 1_700_000_100)).toBe(true);
    // A rotated secret: any matching v1 entry will do.
    expect(
      verifyWebhookSignature(secret, `t=1700000000,v1=${'0'.repeat(64)},v1=${hex}`, body, 300, 1_700_000_000),
    ).toBe(true);
    expect(verifyWebhookSignature('whsec_other', header, body, 300, 1_700_000_100)).toBe(false);
    expect(verifyWebhookSignature(secret, header, '{"id":"evt_2"}', 300, 1_700_000_100)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, 300, 1_700_000_301)).toBe(false);
    for (const bad of [undefined, '', 'v1=abc', `t=1700000000`, `t=abc,v1=${hex}`]) {
      expect(verifyWebhookSignature(secret, bad, body, 300, 1_700_000_000)).toBe(false);
    }
  });
});

describe('deliverWebhook', () => {
  it("signs and sends the event to the tenant's enabled endpoints only, with the event id header", async () => {
    const tenant = await signUpTenant(stack.app, 'Deliver Co');
    const [live, disabled, foreign] = await Promise.all([receiver(), receiver(), receiver()]);
    await registerEndpoint(tenant, live);
    await registerEndpoint(tenant, disabled, { enabled: false });
    await registerEndpoint(other, foreign);

    const input = callEnded(tenant);
    const before = Math.floor(Date.now() / 1000);
    expect(await activities().deliverWebhook(input)).toEqual({ delivered: 1, endpoints: 1 });

    expect(disabled.deliveries).toHaveLength(0);
    expect(foreign.deliveries).toHaveLength(0);
    const [delivery] = live.deliveries;
    expect(live.deliveries).toHaveLength(1);
    expect(delivery).toMatchObject({
      path: '/hooks/parley',
      status: 200,
      signatureValid: true,
      eventId: input.eventId,
    });
    expect(delivery!.headers['content-type']).toBe('application/json');
    expect(delivery!.body).toEqual({
      id: input.eventId,
      type: 'call.ended',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      data: input.payload,
    });
    // Checked independently of verifyWebhookSignature.
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(delivery!.signature!)!;
    expect(Number(t)).toBeGreaterThanOrEqual(before);
    expect(v1).toBe(createHmac('sha256', live.secret!).update(`${t}.${delivery!.rawBody}`).digest('hex'));
  });

  it('a tenant with no subscribed endpoint: nothing to do', async () => {
    const tenant = await signUpTenant(stack.app, 'Quiet Co');
    expect(await activities().deliverWebhook(callEnded(tenant))).toEqual({ delivered: 0, endpoints: 0 });
  });

  it('a failing endpoint makes it throw a retryable error naming it; a retry skips endpoints already served', async () => {
    const tenant = await signUpTenant(stack.app, 'Flaky Co');
    const [healthy, flaky, gone] = await Promise.all([receiver(), receiver(), receiver()]);
    const healthyEndpoint = await registerEndpoint(tenant, healthy);
    const flakyEndpoint = await registerEndpoint(tenant, flaky);
    const goneEndpoint = await registerEndpoint(tenant, gone);
    flaky.failNext(1);
    await gone.close();
    receivers.splice(receivers.indexOf(gone), 1);

    const input = callEnded(tenant);
    const progress: string[][] = [];
    const deps = { orm: stack.orm, encryptionKeys: stack.config.ENCRYPTION_KEYS, timeoutMs: 2_000 };
    const err = await deliverWebhookEvent(deps, input, { onProgress: (d) => progress.push(d) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WebhookDeliveryError);
    expect(err).not.toBeInstanceOf(ApplicationFailure); // Temporal retries plain errors
    const failure = err as WebhookDeliveryError;
    expect(failure.message).toContain(`failed for 2 of 3 endpoint(s)`);
    expect(failure.failures).toEqual(
      expect.arrayContaining([
        { endpointId: flakyEndpoint.id, url: flaky.url(), reason: 'HTTP 500' },
        { endpointId: goneEndpoint.id, url: gone.url(), reason: expect.stringContaining('ECONNREFUSED') },
      ]),
    );
    expect(progress).toEqual([[healthyEndpoint.id]]);
    expect(healthy.accepted).toHaveLength(1);

    // The next attempt, given what the heartbeat recorded: only the endpoints still owed the event.
    const retried = await deliverWebhookEvent(deps, input, { previouslyDelivered: progress.at(-1) }).catch(
      (e: unknown) => e as WebhookDeliveryError,
    );
    expect(retried).toBeInstanceOf(WebhookDeliveryError);
    expect((retried as WebhookDeliveryError).failures.map((f) => f.endpointId)).toEqual([goneEndpoint.id]);
    expect(healthy.deliveries).toHaveLength(1);
    expect(flaky.deliveries.map((d) => d.status)).toEqual([500, 200]);
    expect(flaky.deliveries[0]!.eventId).toBe(flaky.deliveries[1]!.eventId);

    // With the dead endpoint disabled, the event counts as delivered to everyone subscribed.
    await request(stack.app)
      .delete(`/v1/webhook-endpoints/${goneEndpoint.id}`)
      .set(bearer(tenant.token))
      .expect(204);
    expect(
      await deliverWebhookEvent(deps, input, { previouslyDelivered: [healthyEndpoint.id, flakyEndpoint.id] }),
    ).toEqual({ delivered: 2, endpoints: 2 });
    expect(healthy.deliveries).toHaveLength(1);
    expect(flaky.deliveries).toHaveLength(2);
  });

  it('inside a real Temporal worker, the retry re-sends only to the endpoint that failed', async () => {
    const tenant = await signUpTenant(stack.app, 'Temporal Hooks Co');
    const [healthy, flaky] = await Promise.all([receiver(), receiver()]);
    await registerEndpoint(tenant, healthy);
    await registerEndpoint(tenant, flaky);
    flaky.failNext(1);

    const taskQueue = `customer-webhooks-test-${process.pid}-${Date.now()}`;
    const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS as string });
    const worker = await Worker.create({
      connection,
      namespace: ISOLATED_NAMESPACE,
      taskQueue,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: path.resolve(__dirname, '../workflows/customer-webhook-workflow.ts'),
        logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
      }),
      activities: activities(),
    });
    const client = new Client({ connection: stack.temporal.connection, namespace: ISOLATED_NAMESPACE });
    const input = callEnded(tenant);
    try {
      const result = await worker.runUntil(
        client.workflow.execute('customerWebhookWorkflow', {
          taskQueue,
          workflowId: `webhook:${input.eventId}`,
          args: [input],
        }),
      );
      expect(result).toEqual({ delivered: 2, endpoints: 2 });
    } finally {
      await connection.close();
    }
    expect(healthy.deliveries.map((d) => d.status)).toEqual([200]);
    expect(flaky.deliveries.map((d) => d.status)).toEqual([500, 200]);
    // The same event on both attempts: same id and the same body, only the signature time moves.
    expect(flaky.deliveries[1]!.eventId).toBe(input.eventId);
    expect(flaky.deliveries[1]!.rawBody).toBe(flaky.deliveries[0]!.rawBody);
    expect(flaky.deliveries[1]!.rawBody).toBe(healthy.deliveries[0]!.rawBody);
  }, 90_000);
});
