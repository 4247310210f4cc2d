/**
 * The one configuration module. Every process parses the environment once with `loadConfig()`,
 * gets a frozen object and passes it down; nothing else reads `process.env`.
 * `.env.example` documents every variable below (a test keeps the two in step).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { WORKER_TASK_QUEUES as KNOWN_QUEUES } from '../temporal-config/task-queues';

const DEV_JWT_SECRET = 'parley-development-only-jwt-secret-do-not-deploy';
const DEV_APP_DB_PASSWORD = 'parley_app_dev_password';
/** Development-only key for credentials at rest; production must set ENCRYPTION_KEYS. */
const DEV_ENCRYPTION_KEYS = 'dev:cGFybGV5LWRldmVsb3BtZW50LW9ubHkta2V5LTMyYiE=';
/**
 * `npm start` signs-checks Twilio webhooks against this when TWILIO_AUTH_TOKEN is unset (never in
 * production), so the caller simulator can ring a local Parley without a Twilio account.
 */
export const DEV_TWILIO_AUTH_TOKEN = 'parley-development-twilio-auth-token';
const DEV_STREAM_TOKEN_SECRET = 'parley-development-only-stream-token-secret';

const port = z.coerce.number().int().min(0).max(65535);
const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();
const boolFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .optional()
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const postgresUrl = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional()
  .refine((v) => v === undefined || /^postgres(ql)?:\/\//.test(v), {
    message: 'must be a postgres:// or postgresql:// URL',
  });
const httpUrl = z
  .string()
  .url()
  .refine((v) => /^https?:\/\//.test(v), 'must be an http(s) URL');

/** Every variable Parley reads, with its default. Keys are the environment variable names. */
export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DATA_DIR: z.string().default('.data'),

    API_HOST: z.string().default('0.0.0.0'),
    API_PORT: port.default(3000),
    /** Defaults to http://localhost:<API_PORT>. */
    PUBLIC_BASE_URL: httpUrl.optional(),
    API_BODY_LIMIT: z
      .string()
      .regex(/^\d+(b|kb|mb)$/i, 'must look like 100kb or 1mb')
      .default('1mb'),
    API_INSTANCE_ID: optionalString,
    /** Requests per client IP per window, on every route but /health* and the Twilio/Stripe webhooks; 0: off. */
    RATE_LIMIT_IP_PER_MINUTE: z.coerce.number().int().min(0).default(600),
    /** Authenticated API requests per tenant per window, across IPs and api instances; 0: off. */
    RATE_LIMIT_TENANT_PER_MINUTE: z.coerce.number().int().min(0).default(1200),
    /** The rate-limit window in seconds (the limits above count per window; 60 makes them per minute). */
    RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
    /** Shares rate-limit counters across api instances (redis://…); unset: each instance counts alone. */
    REDIS_URL: z
      .string()
      .url()
      .refine((v) => /^rediss?:\/\//.test(v), 'must be a redis:// or rediss:// URL')
      .optional(),

    RELAY_HOST: z.string().default('0.0.0.0'),
    RELAY_PORT: port.default(3001),
    /** Defaults to ws://localhost:<RELAY_PORT>. */
    RELAY_PUBLIC_URL: z
      .string()
      .url()
      .refine((v) => /^wss?:\/\//.test(v), 'must be a ws:// or wss:// URL')
      .optional(),
    RELAY_INSTANCE_ID: optionalString,
    RELAY_MAX_PAYLOAD_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(64 * 1024),
    /** Signs the `<Parameter name="token">` the api hands to Twilio and the relay verifies. */
    STREAM_TOKEN_SECRET: z
      .string()
      .min(32, 'must be at least 32 characters')
      .default(DEV_STREAM_TOKEN_SECRET),
    STREAM_TOKEN_TTL_SECONDS: z.coerce.number().int().min(5).max(3600).default(60),
    /** Where the relay writes call recordings and the api reads them; unset: <DATA_DIR>/recordings. */
    RECORDINGS_DIR: optionalString,
    /** pocketsphinx acoustic model, language model and dictionary for the local speech-to-text. */
    POCKETSPHINX_MODEL_DIR: z.string().default('/usr/share/pocketsphinx/model/en-us'),

    DATABASE_URL: postgresUrl,
    DATABASE_APP_URL: postgresUrl,
    DATABASE_APP_ROLE: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case SQL identifier')
      .default('parley_app'),
    DATABASE_APP_PASSWORD: z.string().min(12, 'must be at least 12 characters').default(DEV_APP_DB_PASSWORD),
    DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
    EMBEDDED_POSTGRES_PORT: port.default(54329),

    TEMPORAL_ADDRESS: optionalString,
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_API_KEY: optionalString,
    TEMPORAL_TLS: boolFlag,
    TEMPORAL_TLS_CERT_PATH: optionalString,
    TEMPORAL_TLS_KEY_PATH: optionalString,
    TEMPORAL_TLS_CA_PATH: optionalString,
    TEMPORAL_TLS_SERVER_NAME: optionalString,
    TEMPORAL_UI_URL: httpUrl.optional(),
    TEMPORAL_DEV_PORT: port.default(7233),
    TEMPORAL_DEV_UI_PORT: port.default(8233),
    TEMPORAL_CLI_PATH: optionalString,
    /** Port of the worker's own `/metrics` (campaign dials, CRM failures) and `/health/live|ready`; 0: off. */
    WORKER_METRICS_PORT: port.default(9464),
    /** Port of the Temporal SDK's Prometheus exporter in the worker (temporal_* series); 0: off. */
    TEMPORAL_METRICS_PORT: port.default(9465),
    /** When set, every `/metrics` (api, relay, worker) needs `Authorization: Bearer <token>`. */
    METRICS_TOKEN: optionalString,
    /**
     * OTLP/HTTP endpoint of a trace collector (e.g. http://otel-collector:4318); spans go to
     * `<endpoint>/v1/traces`. Unset: no tracing. OTEL_EXPORTER_OTLP_HEADERS is honoured too.
     */
    OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl.optional(),
    /** `service.name` of this process's spans; default parley-api, parley-worker, parley-relay. */
    OTEL_SERVICE_NAME: optionalString,
    /**
     * On SIGTERM, how long a worker lets its running activities finish before cancelling them (an
     * LLM reply, a CRM write). Under the process's 30 s shutdown bound.
     */
    WORKER_SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).max(25).default(20),
    WORKER_TASK_QUEUES: z
      .string()
      .default('calls,campaigns,dialer,integrations,billing')
      .transform((v) =>
        v
          .split(',')
          .map((q) => q.trim())
          .filter(Boolean),
      ),

    JWT_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_JWT_SECRET),
    JWT_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .max(30 * 24 * 3600)
      .default(12 * 3600),

    DEMO_SEED: boolFlag.default(true),

    OPENAI_API_KEY: optionalString,
    OPENAI_BASE_URL: httpUrl.optional(),
    LLM_API_KEYS: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const keys: Record<string, string> = {};
        for (const pair of (v ?? '')
          .split(',')
          .map((p) => p.trim())
          .filter(Boolean)) {
          const at = pair.indexOf('=');
          if (at <= 0 || at === pair.length - 1) {
            ctx.addIssue({ code: 'custom', message: 'must look like name=key,other=key2' });
            return z.NEVER;
          }
          keys[pair.slice(0, at)] = pair.slice(at + 1);
        }
        return keys;
      }),

    TWILIO_ACCOUNT_SID: z
      .string()
      .regex(/^AC[0-9a-fA-F]{32}$/, 'must be a Twilio Account SID (AC + 32 hex)')
      .optional(),
    TWILIO_AUTH_TOKEN: optionalString,
    /** Where the Twilio REST client sends requests; set only to point at a local peer. */
    TWILIO_API_BASE_URL: httpUrl.optional(),

    /** Stripe secret key (sk_live_… / sk_test_…); unset: usage is recorded but not billed. */
    STRIPE_SECRET_KEY: optionalString.refine((v) => v === undefined || /^(sk|rk)_(test|live)_/.test(v), {
      message: 'must be a Stripe secret key (sk_test_…, sk_live_…, rk_…)',
    }),
    /** Only to point the Stripe client at a local peer such as stripe-mock (http://127.0.0.1:12111). */
    STRIPE_API_BASE_URL: httpUrl.optional(),
    /** Signing secret of the Stripe webhook endpoint (whsec_…); unset: the webhook refuses every event. */
    STRIPE_WEBHOOK_SECRET: optionalString,
    /** The metered price each plan's subscription carries: free=price_…,pro=price_…,enterprise=price_…. */
    STRIPE_PLAN_PRICES: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const prices: Partial<Record<'free' | 'pro' | 'enterprise', string>> = {};
        for (const pair of (v ?? '')
          .split(',')
          .map((p) => p.trim())
          .filter(Boolean)) {
          const [plan, price] = pair.split('=');
          if ((plan !== 'free' && plan !== 'pro' && plan !== 'enterprise') || !price) {
            ctx.addIssue({
              code: 'custom',
              message: 'must look like free=price_1,pro=price_2,enterprise=price_3',
            });
            return z.NEVER;
          }
          prices[plan] = price;
        }
        return prices;
      }),
    /** Billing Meter event names: talk seconds and LLM tokens. */
    STRIPE_SECONDS_METER_EVENT: z.string().min(1).default('parley_call_seconds'),
    /** The Billing Meter of talk seconds (mtr_…): the billing cycle compares its total with Parley's. */
    STRIPE_SECONDS_METER_ID: optionalString,
    STRIPE_TOKENS_METER_EVENT: z.string().min(1).default('parley_llm_tokens'),
    /** Dunning: seconds between payment retries, how many, the grace before outbound is suspended. */
    BILLING_PAYMENT_RETRY_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .default(3 * 24 * 3600),
    BILLING_PAYMENT_RETRIES: z.coerce.number().int().min(0).max(20).default(3),
    BILLING_GRACE_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .default(7 * 24 * 3600),
    BILLING_MAX_WAIT_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .default(60 * 24 * 3600),

    /** Only to point the HubSpot client at a local peer; unset: https://api.hubapi.com. */
    HUBSPOT_API_BASE_URL: httpUrl.optional(),
    /** Salesforce connected app, used to refresh a tenant's access token when it expires. */
    SALESFORCE_CLIENT_ID: optionalString,
    SALESFORCE_CLIENT_SECRET: optionalString,
    /** Where tokens are refreshed: https://login.salesforce.com (or test.salesforce.com, or a peer). */
    SALESFORCE_LOGIN_URL: httpUrl.default('https://login.salesforce.com'),

    ENCRYPTION_KEYS: z
      .string()
      .default(DEV_ENCRYPTION_KEYS)
      .transform((v, ctx) => {
        const keys: { id: string; key: Buffer }[] = [];
        for (const pair of v
          .split(',')
          .map((p) => p.trim())
          .filter(Boolean)) {
          const [keyId, b64] = pair.split(':');
          const key = Buffer.from(b64 ?? '', 'base64');
          if (!keyId || key.length !== 32) {
            ctx.addIssue({
              code: 'custom',
              message: 'must be id:base64-of-32-bytes[,id2:…] (the first encrypts)',
            });
            return z.NEVER;
          }
          keys.push({ id: keyId, key });
        }
        if (keys.length === 0) {
          ctx.addIssue({ code: 'custom', message: 'needs at least one key' });
          return z.NEVER;
        }
        return keys;
      }),
  })
  .superRefine((c, ctx) => {
    if (c.NODE_ENV === 'production') {
      if (c.JWT_SECRET === DEV_JWT_SECRET)
        ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'must be set in production' });
      if (c.STREAM_TOKEN_SECRET === DEV_STREAM_TOKEN_SECRET)
        ctx.addIssue({ code: 'custom', path: ['STREAM_TOKEN_SECRET'], message: 'must be set in production' });
      if (c.ENCRYPTION_KEYS[0]?.id === 'dev')
        ctx.addIssue({ code: 'custom', path: ['ENCRYPTION_KEYS'], message: 'must be set in production' });
      if (c.DATABASE_APP_PASSWORD === DEV_APP_DB_PASSWORD && !c.DATABASE_APP_URL)
        ctx.addIssue({
          code: 'custom',
          path: ['DATABASE_APP_PASSWORD'],
          message: 'must be set in production (or set DATABASE_APP_URL)',
        });
    }
    if (Boolean(c.TEMPORAL_TLS_CERT_PATH) !== Boolean(c.TEMPORAL_TLS_KEY_PATH)) {
      ctx.addIssue({
        code: 'custom',
        path: [c.TEMPORAL_TLS_CERT_PATH ? 'TEMPORAL_TLS_KEY_PATH' : 'TEMPORAL_TLS_CERT_PATH'],
        message: 'mTLS needs both TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH',
      });
    }
    for (const key of ['TEMPORAL_TLS_CERT_PATH', 'TEMPORAL_TLS_KEY_PATH', 'TEMPORAL_TLS_CA_PATH'] as const) {
      const file = c[key];
      if (file && !existsSync(file))
        ctx.addIssue({ code: 'custom', path: [key], message: `file not found: ${file}` });
    }
    const unknownQueue = c.WORKER_TASK_QUEUES.find((q) => !(KNOWN_QUEUES as readonly string[]).includes(q));
    if (unknownQueue)
      ctx.addIssue({
        code: 'custom',
        path: ['WORKER_TASK_QUEUES'],
        message: `unknown task queue '${unknownQueue}' (known: ${KNOWN_QUEUES.join(', ')})`,
      });
  })
  .transform((c) => ({
    ...c,
    PUBLIC_BASE_URL: c.PUBLIC_BASE_URL ?? `http://localhost:${c.API_PORT}`,
    RELAY_PUBLIC_URL: c.RELAY_PUBLIC_URL ?? `ws://localhost:${c.RELAY_PORT}`,
    RECORDINGS_DIR: path.resolve(c.RECORDINGS_DIR ?? path.join(c.DATA_DIR, 'recordings')),
  }));

export type ConfigInput = z.input<typeof configSchema>;
export type Config = Readonly<z.output<typeof configSchema>>;
export type ConfigKey = keyof z.input<typeof configSchema>;

/** The names of every variable, for `.env.example` and docker-compose checks. */
export const CONFIG_KEYS = Object.keys(configSchema.in.shape) as ConfigKey[];

/** Variables whose values never appear in an error message (they may hold credentials). */
const SECRET_NAMES = /SECRET|PASSWORD|API_KEY|AUTH_TOKEN|ENCRYPTION_KEYS|DATABASE_(APP_)?URL|REDIS_URL/;

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n')}\n` +
        'See .env.example for every variable and its meaning.',
    );
    this.name = 'ConfigError';
  }
}

/** Parses the given environment (defaults to process.env plus a local .env file) into a frozen config. */
export function loadConfig(env: NodeJS.ProcessEnv = readProcessEnv()): Config {
  const picked: Record<string, string | undefined> = {};
  // An empty variable means unset, as in `.env.example`'s blank lines.
  for (const key of CONFIG_KEYS) picked[key] = env[key] === '' ? undefined : env[key];
  const parsed = configSchema.safeParse(picked);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? '(config)');
        const raw = picked[variable];
        const shown = raw === undefined ? 'unset' : `got '${SECRET_NAMES.test(variable) ? '***' : raw}'`;
        return { variable, message: `${issue.message} (${shown})` };
      }),
    );
  }
  return Object.freeze({
    ...parsed.data,
    WORKER_TASK_QUEUES: Object.freeze([...parsed.data.WORKER_TASK_QUEUES]),
    LLM_API_KEYS: Object.freeze({ ...parsed.data.LLM_API_KEYS }),
    ENCRYPTION_KEYS: Object.freeze([...parsed.data.ENCRYPTION_KEYS]),
  }) as Config;
}

function readProcessEnv(): NodeJS.ProcessEnv {
  const dotenv = path.resolve('.env');
  if (existsSync(dotenv)) process.loadEnvFile(dotenv);
  return process.env;
}

/** Entry points call this: a bad config prints the named variables and exits non-zero. */
export function loadConfigOrExit(env?: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

/** Fails with a named variable when a process needs something the schema leaves optional. */
export function requireSetting<K extends keyof Config>(
  config: Config,
  key: K,
  why: string,
): NonNullable<Config[K]> {
  const value = config[key];
  if (value === undefined || value === null || value === '') {
    throw new ConfigError([{ variable: key, message: `is required ${why} (unset)` }]);
  }
  return value;
}

export function absoluteDataDir(config: Config): string {
  return path.resolve(config.DATA_DIR);
}
