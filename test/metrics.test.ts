/**
 * Prometheus `/metrics` of the three processes, as a scraper sees them: the api's request latency
 * by route pattern (never raw ids), the relay's live calls, turn latency by stage and inbound frame
 * jitter after a real phone call, the worker's dial and CRM failure counters as their activity code
 * runs, and the Temporal SDK's own exporter in a spawned worker process (Runtime.install is
 * process-global, so never in this jest process).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import request from 'supertest';
import WebSocket from 'ws';
import type twilio from 'twilio';
import { createDialerActivities } from '../activities/dialer';
import { createCrmSyncActivities, type CrmSyncDeps } from '../activities/crm-sync';
import { createApp } from '../api/app';
import { callWorkflowId } from '../contracts/call';
import { DEMO_BOOKING_AGENT } from '../db/seed/demo-agents';
import { createLogger } from '../lib/logger';
import { waitUntil } from '../lib/net';
import { metricsRegistry } from '../lib/metrics';
import { ISOLATED_NAMESPACE } from './harness/state';
import { bearer } from './support/stack';
import { startVoiceStack, type VoiceStack } from './support/voice-stack';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from './support/worker-process';

jest.setTimeout(120_000);

let voice: VoiceStack;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  voice = await startVoiceStack();
});
afterAll(async () => {
  await stopWorkerProcess(worker);
  await voice?.close();
});

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

async function scrape(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

/** The value of one series (name plus every label given), summed over the labels not given. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) {
      total = (total ?? 0) + Number(m[3]);
    }
  }
  return total;
}

/**
 * A port below Linux's ephemeral range (32768+) that is free now: ports from `freePort()` are also
 * handed to outgoing connections, and the worker's exporters bind 0.0.0.0 a moment later.
 */
async function listenablePort(): Promise<number> {
  const portIsFree = (port: number) =>
    new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '0.0.0.0', () => probe.close(() => resolve(true)));
    });
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (await portIsFree(port)) return port;
  }
}

const relayMetricsUrl = () => `${voice.relayUrl.replace(/^ws/, 'http')}/metrics`;

describe('api GET /metrics', () => {
  it('reports request latency by route pattern and status, without raw ids, plus process metrics', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) {
      const res = await request(voice.stack.app).get(`/v1/calls/${id}`).set(bearer(voice.tenant.token));
      expect(res.status).toBe(404);
    }
    const res = await request(voice.stack.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.text;
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(
      sample(text, 'http_request_duration_seconds_count', {
        method: 'GET',
        route: '/v1/calls/:id',
        status: '404',
        process: 'api',
      }),
    ).toBeGreaterThanOrEqual(3);
    for (const id of ids) expect(text).not.toContain(id);
    expect(text).not.toMatch(UUID);
    expect(text).toMatch(/^parley_process_cpu_seconds_total\{process="api"\} /m);
  });

  it('requires the bearer token when METRICS_TOKEN is set', async () => {
    const app = createApp({
      config: { ...voice.stack.config, METRICS_TOKEN: 'scrape-token-0123456789' },
      orm: voice.stack.orm,
      temporal: voice.stack.temporal,
      logger: createLogger(voice.stack.config, 'api'),
    });
    const refused = await request(app).get('/metrics');
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('AUTH_REQUIRED');
    expect((await request(app).get('/metrics').set('authorization', 'Bearer wrong')).status).toBe(401);
    const ok = await request(app).get('/metrics').set('authorization', 'Bearer scrape-token-0123456789');
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('http_request_duration_seconds');
  });
});

describe('relay GET /metrics', () => {
  let callId: string;

  it('counts live calls, turn latency by stage, frame jitter and streams opened and refused', async () => {
    const before = await scrape(relayMetricsUrl());
    expect(before).toContain('# TYPE parley_active_calls gauge');
    const liveBefore = sample(before, 'parley_active_calls', { channel: 'voice' }) ?? 0;
    const openedBefore =
      sample(before, 'parley_relay_streams_opened_total', { route: '/twilio/stream' }) ?? 0;

    const agentId = await voice.publishAgent('Metrics', DEMO_BOOKING_AGENT);
    const number = await voice.registerNumber(agentId);
    const call = await voice.simulator.dial({ from: '+15557650000', to: number });
    expect(call.outcome).toBe('stream');
    await call.waitForAgentTurn({ timeoutMs: 30_000 });

    const during = await scrape(relayMetricsUrl());
    expect(sample(during, 'parley_active_calls', { channel: 'voice', process: 'relay' })).toBe(
      liveBefore + 1,
    );
    expect(sample(during, 'parley_relay_streams_opened_total', { route: '/twilio/stream' })).toBe(
      openedBefore + 1,
    );

    await call.say('my name is alex');
    await call.waitForAgentTurn({ timeoutMs: 30_000 });
    const desc = await voice.stack.temporal.workflow.getHandle(callWorkflowId(call.callSid)).fetchHistory();
    const input = desc.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    callId = (JSON.parse(Buffer.from(input as Uint8Array).toString('utf8')) as { callId: string }).callId;
    await call.hangup();

    await waitUntil(
      'the relay to drop the call',
      async () =>
        sample(await scrape(relayMetricsUrl()), 'parley_active_calls', { channel: 'voice' }) === liveBefore,
      15_000,
      100,
    );
    const after = await scrape(relayMetricsUrl());
    // The caller's turn went through STT, the workflow and the reply: every stage has a sample.
    for (const stage of ['stt', 'update_to_speak', 'endpointed_to_first_frame']) {
      expect(sample(after, 'parley_turn_latency_seconds_count', { stage })).toBeGreaterThanOrEqual(1);
      expect(sample(after, 'parley_turn_latency_seconds_sum', { stage })).toBeGreaterThan(0);
    }
    // Real-time 20 ms frames for seconds: hundreds of jitter samples, mostly within 20 ms.
    const frames = sample(after, 'parley_relay_frame_jitter_seconds_count') ?? 0;
    expect(frames).toBeGreaterThan(100);
    expect(sample(after, 'parley_relay_frame_jitter_seconds_bucket', { le: '0.02' })).toBeGreaterThan(
      frames / 2,
    );
    expect(after).not.toContain(callId);
    expect(after).not.toContain(call.callSid);
    expect(after).toMatch(/^parley_process_resident_memory_bytes\{process="relay"\} /m);

    // A stream to a path nobody serves is refused and counted, under a bounded label.
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${voice.relayUrl}/nope/${randomUUID()}`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(refused).toBe(404);
    const final = await scrape(relayMetricsUrl());
    expect(sample(final, 'parley_relay_streams_refused_total', { route: 'unknown', status: '404' })).toBe(1);
    expect(final).not.toMatch(UUID);
  });

  it('counts dials by outcome and final CRM sync failures when the activity code runs', async () => {
    expect(callId).toBeDefined();
    const registry = metricsRegistry('worker');
    const read = async (name: string, labels: Record<string, string>) =>
      sample(await registry.getSingleMetricAsString(name), name, labels) ?? 0;

    const adoptedBefore = await read('parley_campaign_dials_total', { outcome: 'adopted' });
    const dialer = createDialerActivities({
      orm: voice.stack.orm,
      // The call already has its Twilio sid: the dialer adopts it and never calls Twilio.
      twilio: {} as twilio.Twilio,
      publicBaseUrl: voice.stack.config.PUBLIC_BASE_URL,
    });
    const placed = await dialer.placeOutboundCall({
      tenantId: voice.tenant.tenantId,
      callId,
      attemptKey: 'metrics-1',
      to: '+15557650000',
      from: '+15550001111',
      ringTimeoutSeconds: 30,
      machineDetection: null,
    });
    expect(placed.adopted).toBe(true);
    expect(await read('parley_campaign_dials_total', { outcome: 'adopted' })).toBe(adoptedBefore + 1);

    const crm = createCrmSyncActivities({
      orm: voice.stack.orm,
      encryptionKeys: voice.stack.config.ENCRYPTION_KEYS,
      crm: {} as CrmSyncDeps['crm'],
      publicBaseUrl: voice.stack.config.PUBLIC_BASE_URL,
    });
    const failures = { provider: 'hubspot', code: 'CrmValidationError' };
    const failedBefore = await read('parley_crm_sync_failures_total', failures);
    await crm.recordCrmSync({
      tenantId: voice.tenant.tenantId,
      callId,
      provider: 'hubspot',
      result: { status: 'pending' },
    });
    await crm.recordCrmSync({
      tenantId: voice.tenant.tenantId,
      callId,
      provider: 'hubspot',
      result: { status: 'failed', error: 'property does not exist' },
      errorCode: 'CrmValidationError',
    });
    expect(await read('parley_crm_sync_failures_total', failures)).toBe(failedBefore + 1);
  });
});

describe('worker process metrics', () => {
  it("serves its own /metrics and the Temporal SDK's temporal_ series on their ports", async () => {
    const metricsPort = await listenablePort();
    let temporalPort = await listenablePort();
    while (temporalPort === metricsPort) temporalPort = await listenablePort();
    const env = {
      TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE,
      WORKER_TASK_QUEUES: 'billing',
      WORKER_METRICS_PORT: String(metricsPort),
      TEMPORAL_METRICS_PORT: String(temporalPort),
      METRICS_TOKEN: 'worker-scrape-token-0123456789',
    };
    worker = await startWorkerProcess(env);
    expect(worker.output()).toContain(`"temporalMetricsPort":${temporalPort}`);

    const own = `http://127.0.0.1:${metricsPort}/metrics`;
    expect((await fetch(own)).status).toBe(401);
    const text = await scrape(own, { authorization: 'Bearer worker-scrape-token-0123456789' });
    expect(text).toContain('# TYPE parley_campaign_dials_total counter');
    expect(text).toContain('# TYPE parley_crm_sync_failures_total counter');
    expect(text).toMatch(/^parley_process_cpu_seconds_total\{process="worker"\} /m);

    let sdk = '';
    await waitUntil(
      'the Temporal SDK exporter to report its worker',
      async () => {
        const res = await fetch(`http://127.0.0.1:${temporalPort}/metrics`).catch(() => undefined);
        sdk = res?.ok ? await res.text() : '';
        return /^temporal_\w+\{[^}]*task_queue="billing"/m.test(sdk);
      },
      30_000,
      250,
    );
    expect(sdk).toMatch(/^temporal_\w+/m);

    // A second worker on the same host and ports still runs, its metrics off (and said so).
    const second = await startWorkerProcess(env);
    try {
      expect(second.output()).toContain('"metricsPort":null,"temporalMetricsPort":null');
      expect(second.output()).toContain('Temporal SDK metrics exporter could not start');
    } finally {
      await stopWorkerProcess(second);
    }
  });
});
