/**
 * The worker's Prometheus endpoints. Its own figures (campaign dials, CRM sync failures, Node
 * process metrics) are served at `GET /metrics` on WORKER_METRICS_PORT by a small HTTP server. The
 * Temporal SDK's metrics (`temporal_*`: task slots, poll and schedule latencies, sticky cache) come
 * from SDK Core's own exporter, which `Runtime.install` binds on TEMPORAL_METRICS_PORT: a second
 * scrape target, not proxied. Metrics never stop a worker: a port already taken is logged and skipped.
 */
import http from 'node:http';
import type { Logger } from '../lib/logger';
import { serveMetrics } from '../lib/metrics';

export interface WorkerMetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves the worker registry at /metrics; undefined when port is 0 or the port is taken. */
export async function startWorkerMetricsServer(options: {
  port: number;
  host?: string;
  token?: string;
  logger: Logger;
}): Promise<WorkerMetricsServer | undefined> {
  if (options.port === 0) return undefined;
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://worker').pathname;
    if (pathname === '/metrics' && req.method === 'GET')
      return serveMetrics('worker', req, res, options.token);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        error: { code: 'ROUTE_NOT_FOUND', message: `No route for ${req.method} ${pathname}` },
      }),
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
    });
  } catch (err) {
    options.logger.warn({ err, port: options.port }, 'worker metrics server could not listen; metrics off');
    return undefined;
  }
  return {
    port: options.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
