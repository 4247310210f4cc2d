/**
 * Structured logs (pino). Secrets are redacted by path so a token or password never reaches a log
 * line: a secret key anywhere in the first three levels of a logged object (`token`, `*.token`,
 * `*.*.token`), request and response headers that carry credentials, and the secret variables of a
 * config dump. pino's wildcards match one level each, hence the explicit depths.
 */
import { trace } from '@opentelemetry/api';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config';

export type { Logger };

/** Object keys whose values are secrets, wherever they appear. */
const SECRET_KEYS = [
  'password',
  'passwordHash',
  'currentPassword',
  'newPassword',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'secret',
  'clientSecret',
  'client_secret',
  'signingSecret',
  'webhookSecret',
  'apiKey',
  'api_key',
  'privateKey',
  'keyHash',
  'credentials',
  'credentialsCiphertext',
  'secretCiphertext',
  'authorization',
  'Authorization',
  'cookie',
  // Config variables holding secrets (a config dump, or one variable logged by name).
  'JWT_SECRET',
  'STREAM_TOKEN_SECRET',
  'ENCRYPTION_KEYS',
  'DATABASE_URL',
  'DATABASE_APP_URL',
  'DATABASE_APP_PASSWORD',
  'REDIS_URL',
  'TEMPORAL_API_KEY',
  'METRICS_TOKEN',
  'OPENAI_API_KEY',
  'LLM_API_KEYS',
  'TWILIO_AUTH_TOKEN',
  'STRIPE_SECRET_KEY',
  'STRIPE_WEBHOOK_SECRET',
  'SALESFORCE_CLIENT_SECRET',
];

/** Headers that carry credentials or signatures, wherever a `headers` object is logged. */
const SECRET_HEADERS = [
  'authorization',
  'Authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'proxy-authorization',
  'x-twilio-signature',
  'stripe-signature',
  'x-hubspot-signature',
  'x-hubspot-signature-v3',
  'x-parley-signature',
];

const prop = (key: string) => (/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`);

export const REDACTED_PATHS = [
  ...new Set([
    ...SECRET_KEYS.flatMap((k) => [k, `*${prop(k)}`, `*.*${prop(k)}`]),
    ...SECRET_HEADERS.flatMap((h) => [
      `headers${prop(h)}`,
      `*.headers${prop(h)}`,
      `*.*.headers${prop(h)}`,
      `req.headers${prop(h)}`,
      `res.headers${prop(h)}`,
      `err.config.headers${prop(h)}`,
      `err.request.headers${prop(h)}`,
      `err.response.config.headers${prop(h)}`,
    ]),
  ]),
];

export const REDACTED = '[redacted]';

/** A logger for one process; `destination` (default stdout) lets a test read what it writes. */
/** The active trace and span ids (lib/tracing.ts), for log lines; empty outside a recorded span. */
function traceIds(): { traceId?: string; spanId?: string } {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return {};
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

export function createLogger(
  config: Pick<Config, 'LOG_LEVEL'>,
  name: string,
  destination?: DestinationStream,
): Logger {
  const options = {
    name,
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_PATHS, censor: REDACTED },
    base: { service: name },
    // With tracing on, a line written inside a span carries its trace and span ids.
    mixin: traceIds,
  };
  return destination ? pino(options, destination) : pino(options);
}
