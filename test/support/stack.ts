/**
 * What a test file needs from the real stack started by the harness: config, the app-role ORM,
 * a Temporal client, a worker with the real activities, and the api app for supertest.
 */
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Express } from 'express';
import request from 'supertest';
import { Client as PgClient } from 'pg';
import { createApp } from '../../api/app';
import { loadConfig, type Config } from '../../config';
import { createAppOrm, type MikroORM } from '../../db/orm';
import { createLogger } from '../../lib/logger';
import { namespaceForJestWorker } from '../harness/state';
import { activityDepsFromConfig, createApiSpeakActivities, llmClientsFromConfig } from '../../activities';
import { SpeechStreams } from '../../api/speech-streams';
import { createWorkers, type ProcessWorker } from '../../workers/create-workers';

// The SDK's own INFO lines (worker state changes) drown test output; keep errors.
try {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
} catch {
  // Already installed by an earlier test file in this jest worker process.
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    // Tests send many requests from one IP and tenant: limits far above any test's traffic
    // (test/api-security.test.ts passes low ones through `env`).
    RATE_LIMIT_IP_PER_MINUTE: '1000000',
    RATE_LIMIT_TENANT_PER_MINUTE: '1000000',
    ...process.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    TEMPORAL_NAMESPACE: namespaceForJestWorker(),
    ...overrides,
  });
}

/** A connection as the database owner, for test fixtures that must bypass RLS. */
export async function ownerClient(config: Config = testConfig()): Promise<PgClient> {
  const client = new PgClient({ connectionString: config.DATABASE_URL });
  await client.connect();
  return client;
}

export interface TestStack {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  app: Express;
  worker?: ProcessWorker;
  close(): Promise<void>;
}

/** The api app wired to the real ORM and Temporal; with `worker: true` also runs a worker for `queues`. */
export async function startStack(
  options: {
    worker?: boolean;
    queues?: string[];
    env?: Record<string, string>;
    /** Also run the api's own `speak` worker, as api/main.ts does, for streamed (SSE) replies. */
    speech?: boolean;
  } = {},
): Promise<TestStack> {
  const config = testConfig(options.env);
  const logger = createLogger(config, 'test');
  const orm = await createAppOrm(config);
  // Retries as in production, except once the stack is closing: a call cut off by close() must not
  // come back on a timer to a shut channel (that would fail whichever test file runs next).
  let closing = false;
  const retry = defaultGrpcRetryOptions();
  const connection = await Connection.connect({
    address: config.TEMPORAL_ADDRESS as string,
    interceptors: [
      makeGrpcRetryInterceptor({
        ...retry,
        retryableDecider: (attempt, status) => !closing && retry.retryableDecider(attempt, status),
      }),
    ],
  });
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const speechStreams = options.speech
    ? new SpeechStreams(`api.test-${process.pid}-${Date.now()}`)
    : undefined;
  const app = createApp({ config, orm, temporal, logger, speechStreams });
  let worker: ProcessWorker | undefined;
  let workerRuns: Promise<void>[] = [];
  let allWorkers: ProcessWorker[] = [];
  let workerConnection: NativeConnection | undefined;
  if (options.worker) {
    workerConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS as string });
    const workers = await createWorkers({
      connection: workerConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueues: options.queues ?? ['billing'],
      activityDeps: activityDepsFromConfig(config, orm),
      logger,
    });
    if (speechStreams) {
      workers.push(
        await Worker.create({
          connection: workerConnection,
          namespace: config.TEMPORAL_NAMESPACE,
          taskQueue: speechStreams.taskQueue,
          activities: createApiSpeakActivities(llmClientsFromConfig(config), speechStreams.sinkFor),
        }),
      );
    }
    worker = workers[0];
    workerRuns = workers.map((w) => w.run());
    allWorkers = workers;
  }
  return {
    config,
    orm,
    temporal,
    app,
    worker,
    async close() {
      for (const w of allWorkers) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.all(workerRuns);
      await workerConnection?.close();
      closing = true;
      await connection.close();
      await orm.close();
    },
  };
}

let counter = 0;
export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}.${process.pid}.${Date.now()}.${counter}@example.test`;
}

export interface SignedUp {
  token: string;
  tenantId: string;
  userId: string;
  email: string;
  password: string;
}

export async function signUpTenant(app: Express, tenantName = 'Acme'): Promise<SignedUp> {
  const email = uniqueEmail('owner');
  const password = 'correct horse battery';
  const res = await request(app).post('/v1/auth/signup').send({ tenantName, name: 'Owner', email, password });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { token: res.body.token, tenantId: res.body.tenant.id, userId: res.body.user.id, email, password };
}

/** The Authorization header for a JWT or an API key. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
