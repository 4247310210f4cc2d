/**
 * Prometheus metrics shared by the three processes (prom-client). Each process role has its own
 * registry, so a test that runs the api, the relay and a worker in one Node process still serves
 * each its own figures at its own `/metrics`; every series carries a `process` label (api, relay,
 * worker) and Node's default metrics are prefixed `parley_`.
 *
 * The metric objects are module singletons (prom-client refuses a name twice in one registry), so
 * recording one is a plain `inc`/`observe`: no allocation on the relay's per-frame path.
 */
import type http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type MetricsRole = 'api' | 'relay' | 'worker';

const registries: Record<MetricsRole, Registry> = {
  api: new Registry(),
  relay: new Registry(),
  worker: new Registry(),
};
for (const [role, registry] of Object.entries(registries)) registry.setDefaultLabels({ process: role });
const defaultsOn = new Set<MetricsRole>();

/** The role's registry; the first call that serves it also turns on Node's process metrics. */
export function metricsRegistry(role: MetricsRole, withDefaults = true): Registry {
  const registry = registries[role];
  if (withDefaults && !defaultsOn.has(role)) {
    defaultsOn.add(role);
    collectDefaultMetrics({ register: registry, prefix: 'parley_' });
  }
  return registry;
}

/** True when no token is configured, or the request carries `Authorization: Bearer <token>`. */
export function metricsAuthorized(authorization: string | undefined, token: string | undefined): boolean {
  if (!token) return true;
  const given = Buffer.from(/^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim() ?? '');
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/**
 * Answers a plain `http` request with the role's registry in the text exposition format (the
 * relay's and the worker's servers); 401 without the bearer token when one is configured.
 */
export function serveMetrics(
  role: MetricsRole,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  token?: string,
): void {
  if (!metricsAuthorized(req.headers.authorization, token)) {
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
    res.end(JSON.stringify({ error: { code: 'AUTH_REQUIRED', message: 'metrics need the bearer token' } }));
    return;
  }
  const registry = metricsRegistry(role);
  registry.metrics().then(
    (body) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(body);
    },
    (err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`metrics failed: ${String(err)}`);
    },
  );
}

// --- api ------------------------------------------------------------------------------------------

export const httpRequestDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'API request duration by method, Express route pattern and status code',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registries.api],
});

// --- relay ----------------------------------------------------------------------------------------

export const activeCalls = new Gauge({
  name: 'parley_active_calls',
  help: 'Live media sessions held by this relay, by channel (voice: Twilio, web: browser)',
  labelNames: ['channel'] as const,
  registers: [registries.relay],
});
// Both channels are listed at 0 from the start, so the series exist before the first call.
activeCalls.set({ channel: 'voice' }, 0);
activeCalls.set({ channel: 'web' }, 0);

export const TURN_STAGES = [
  'stt',
  'update_to_speak',
  'llm_first_token',
  'endpointed_to_first_frame',
] as const;
export type TurnStage = (typeof TURN_STAGES)[number];

export const turnLatency = new Histogram({
  name: 'parley_turn_latency_seconds',
  help: "Latency of one stage of a turn: stt (caller's speech to transcript), update_to_speak, llm_first_token, endpointed_to_first_frame",
  labelNames: ['stage'] as const,
  buckets: [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
  registers: [registries.relay],
});

export const frameJitter = new Histogram({
  name: 'parley_relay_frame_jitter_seconds',
  help: "Inbound media frames: |inter-arrival time - the frame's duration (20 ms)|",
  buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
  registers: [registries.relay],
});

export const streamsOpened = new Counter({
  name: 'parley_relay_streams_opened_total',
  help: 'Media stream WebSockets accepted, by endpoint',
  labelNames: ['route'] as const,
  registers: [registries.relay],
});

export const streamsRefused = new Counter({
  name: 'parley_relay_streams_refused_total',
  help: 'Media stream upgrades refused, by endpoint (unknown for an unregistered path) and HTTP status',
  labelNames: ['route', 'status'] as const,
  registers: [registries.relay],
});

// --- worker ---------------------------------------------------------------------------------------

export const campaignDials = new Counter({
  name: 'parley_campaign_dials_total',
  help: 'placeOutboundCall attempts by outcome: placed, adopted, campaign_stopped, window_closed, rejected, failed',
  labelNames: ['outcome'] as const,
  registers: [registries.worker],
});

export const crmSyncFailures = new Counter({
  name: 'parley_crm_sync_failures_total',
  help: "Calls whose CRM sync failed for good, by provider and failure code (the activity's failure type)",
  labelNames: ['provider', 'code'] as const,
  registers: [registries.worker],
});
