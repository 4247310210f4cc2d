/**
 * Prometheus metrics of the api process: `GET /metrics` (text exposition format; behind
 * `Authorization: Bearer <METRICS_TOKEN>` when that is set) and the request latency middleware.
 * Requests are labelled by their Express route pattern (`/v1/calls/:id`), never the raw URL, so
 * ids do not multiply the series; a request no route handled (static files, 404s) is `unmatched`.
 */
import type { Express, Request } from 'express';
import { httpRequestDuration, metricsAuthorized, metricsRegistry } from '../lib/metrics';
import type { ApiDeps } from './deps';
import { AuthenticationError } from './errors';

/** The request's Express route pattern (`/v1/calls/:id`), or `unmatched`. */
export function routeOf(req: Request): string {
  const path: unknown = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : 'unmatched';
}

export function installMetrics(app: Express, deps: ApiDeps): void {
  const registry = metricsRegistry('api');
  app.use((req, res, next) => {
    const end = httpRequestDuration.startTimer();
    res.once('finish', () => end({ method: req.method, route: routeOf(req), status: res.statusCode }));
    next();
  });
  app.get('/metrics', async (req, res) => {
    if (!metricsAuthorized(req.headers.authorization, deps.config.METRICS_TOKEN)) {
      throw new AuthenticationError(
        'AUTH_REQUIRED',
        'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>',
      );
    }
    res.set('content-type', registry.contentType).send(await registry.metrics());
  });
}
