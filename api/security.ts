/**
 * Security middleware of the api: headers (helmet, with a Content-Security-Policy the dashboard and
 * Swagger UI work under) and rate limits per client IP (every request) and per tenant (authenticated
 * API requests). Counters live in memory, or in Redis when `REDIS_URL` is set.
 */
import type { Express, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { createRateLimitStore, RateLimiter, type RateLimitDecision } from '../lib/rate-limit';
import type { Config } from '../config';
import type { ApiDeps } from './deps';
import { TooManyRequestsError } from './errors';
import { onAuthenticated } from './routing';

/** Signed webhooks (a carrier's burst must not be refused) and health probes skip the per-IP limit. */
const IP_EXEMPT = /^\/(twilio|stripe|health)(\/|$)/;

const closers = new WeakMap<Express, () => Promise<void>>();

export function installSecurity(app: Express, deps: ApiDeps): void {
  const { config, logger } = deps;
  app.use(
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: cspDirectives(config) },
      frameguard: { action: 'deny' },
    }),
  );

  const windowMs = config.RATE_LIMIT_WINDOW_SECONDS * 1000;
  const ipLimit = config.RATE_LIMIT_IP_PER_MINUTE;
  const tenantLimit = config.RATE_LIMIT_TENANT_PER_MINUTE;
  if (ipLimit === 0 && tenantLimit === 0) return;
  const store = createRateLimitStore(config.REDIS_URL, logger);
  closers.set(app, () => store.close());

  if (ipLimit > 0) {
    const perIp = new RateLimiter(store, { name: 'ip', limit: ipLimit, windowMs });
    const limitIp: RequestHandler = (req, res, next) => {
      if (IP_EXEMPT.test(req.path)) return next();
      perIp
        .consume(req.ip ?? req.socket.remoteAddress ?? 'unknown')
        .then((decision) => enforce(res, decision, 'ip'))
        .then(() => next(), next);
    };
    app.use(limitIp);
  }
  if (tenantLimit > 0) {
    const perTenant = new RateLimiter(store, { name: 'tenant', limit: tenantLimit, windowMs });
    onAuthenticated(app, async (auth, _req, res) => {
      enforce(res, await perTenant.consume(auth.tenantId), 'tenant');
    });
  }
}

/** Stops the app's rate-limit store (its Redis connection); for tests and shutdown. */
export async function closeSecurity(app: Express): Promise<void> {
  await closers.get(app)?.();
  closers.delete(app);
}

/**
 * Sets the RateLimit-* headers of the request's tightest limit so far, and refuses it over the limit.
 * An uncounted request (Redis down: fail open) passes without headers.
 */
function enforce(res: Response, decision: RateLimitDecision | undefined, scope: 'ip' | 'tenant'): void {
  if (!decision) return;
  const shown = Number(res.getHeader('RateLimit-Remaining'));
  if (!decision.allowed || Number.isNaN(shown) || decision.remaining <= shown) {
    res.setHeader('RateLimit-Limit', String(decision.limit));
    res.setHeader('RateLimit-Remaining', String(decision.remaining));
    res.setHeader('RateLimit-Reset', String(decision.resetSeconds));
  }
  if (decision.allowed) return;
  res.setHeader('Retry-After', String(decision.resetSeconds));
  throw new TooManyRequestsError(
    'RATE_LIMITED',
    scope === 'ip'
      ? `Too many requests from this address: at most ${decision.limit} per window; retry in ${decision.resetSeconds}s`
      : `Too many requests for this workspace: at most ${decision.limit} per window; retry in ${decision.resetSeconds}s`,
    { limit: decision.limit, scope },
  );
}

/**
 * Same-origin scripts and styles (Swagger UI adds inline <style>; React sets style attributes),
 * `blob:` for the dashboard's AudioWorklet module and its recording playback, and WebSockets to the
 * relay. No framing, plugins or foreign form targets.
 */
function cspDirectives(config: Config): Record<string, string[]> {
  const relay = new URL(config.RELAY_PUBLIC_URL);
  return {
    'default-src': ["'self'"],
    'base-uri': ["'self'"],
    'script-src': ["'self'", 'blob:'],
    'worker-src': ["'self'", 'blob:'],
    'style-src': ["'self'", "'unsafe-inline'"],
    'img-src': ["'self'", 'data:', 'blob:'],
    'font-src': ["'self'", 'data:'],
    'media-src': ["'self'", 'blob:'],
    'connect-src': ["'self'", `${relay.protocol}//${relay.host}`],
    'object-src': ["'none'"],
    'frame-ancestors': ["'none'"],
    'form-action': ["'self'"],
    'script-src-attr': ["'none'"],
  };
}
