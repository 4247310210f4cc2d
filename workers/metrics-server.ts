/**
 * The worker's HTTP server on WORKER_METRICS_PORT: Prometheus `GET /metrics` and the health probes.
 *
 * - `GET /metrics`: its own figures (campaign dials, CRM sync failures, Node process metrics);
 *   needs `Authorization: Bearer <METRICS_TOKEN>` when that is set. The Temporal SDK's metrics
 *   (`temporal_*`: task slots, poll and schedule latencies, sticky cache) come from SDK Core's own
 *   exporter, which `Runtime.install` binds on TEMPORAL_METRICS_PORT: a second scrape target, not
 *   proxied.
 * - `GET /health/live`: 200 while the process answers. A Temporal Worker that fails makes the
 *   process exit non-zero (workers/main.ts awaits every run()), so liveness needs no more.
 * - `GET /health/ready`: 200 only when every Temporal Worker of the process is `RUNNING` (polling);
 *   503 while starting (the server listens before the workers exist: `setWorkers` hands them over
 *   later), while draining after SIGTERM, or once one has failed. The body names each task queue's
 *   worker state. No token: probes carry none, and the bodies hold no figures.
 *
 * A port already taken is logged and the worker runs without this server (metrics and health off),
 * as two workers on one host without their own ports do. Probes that depend on it are still sound:
 * in Kubernetes (and compose) each pod has its own network, so the port is free unless something is
 * badly wrong, and then the failing probes say so. WORKER_METRICS_PORT=0 turns the server off.
 */
import http from 'node:http';
import type { Logger } from '../lib/logger';
import { serveMetrics } from '../lib/metrics';
import type { ProcessWorker } from './create-workers';

/** The process's workers by the task queue (or queue family) each serves. */
export type NamedWorkers = Readonly<Record<string, Pick<ProcessWorker, 'getState'>>>;

export interface WorkerMetricsServer {
  port: number;
  /** Readiness follows these workers' states from now on. */
  setWorkers(workers: NamedWorkers): void;
  close(): Promise<void>;
}

export type WorkerReadiness = 'ok' | 'starting' | 'draining' | 'failed';

/** Readiness of a set of workers: ok when all are RUNNING; else the worst state among them. */
export function workerReadiness(workers: NamedWorkers | undefined): {
  status: WorkerReadiness;
  workers: Record<string, string>;
} {
  const states = Object.fromEntries(Object.entries(workers ?? {}).map(([q, w]) => [q, w.getState()]));
  const all = Object.values(states);
  let status: WorkerReadiness;
  if (workers === undefined || all.length === 0) status = 'starting';
  else if (all.every((s) => s === 'RUNNING')) status = 'ok';
  else if (all.includes('FAILED')) status = 'failed';
  else if (all.includes('INITIALIZED')) status = 'starting';
  else status = 'draining'; // STOPPING, DRAINING, DRAINED, STOPPED
  return { status, workers: states };
}

function json(res: http.ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** Serves /metrics and /health/*; undefined when port is 0 or the port is taken. */
export async function startWorkerMetricsServer(options: {
  port: number;
  host?: string;
  token?: string;
  logger: Logger;
}): Promise<WorkerMetricsServer | undefined> {
  if (options.port === 0) return undefined;
  let workers: NamedWorkers | undefined;
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://worker').pathname;
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (pathname === '/metrics' && req.method === 'GET')
      return serveMetrics('worker', req, res, options.token);
    if (pathname === '/health/live' && get)
      return json(res, 200, { status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
    if (pathname === '/health/ready' && get) {
      const readiness = workerReadiness(workers);
      return json(res, readiness.status === 'ok' ? 200 : 503, readiness);
    }
    json(res, 404, {
      error: { code: 'ROUTE_NOT_FOUND', message: `No route for ${req.method} ${pathname}` },
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
    });
  } catch (err) {
    options.logger.warn(
      { err, port: options.port },
      'worker metrics server could not listen; metrics and health endpoints off',
    );
    return undefined;
  }
  return {
    port: options.port,
    setWorkers: (named) => {
      workers = named;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
