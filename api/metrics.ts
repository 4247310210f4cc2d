/** Prometheus metrics of the api process (`GET /metrics`) and its HTTP latency middleware. */
import type { Express } from 'express';
import type { ApiDeps } from './deps';

export function installMetrics(_app: Express, _deps: ApiDeps): void {
  // filled in by the observability change
}
