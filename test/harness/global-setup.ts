/**
 * Starts what the tests need, once per `npm test`: PostgreSQL (a fresh database on DATABASE_URL's
 * server, or an embedded server in a temporary folder) migrated to the current schema, a
 * Temporal dev server (in memory, headless) from the existing CLI binary, and stripe-mock (Stripe's
 * stateless local peer, STRIPE_MOCK_URL; tests put a StripePeer in front of it). Test files find them
 * through process.env, which jest hands to its workers.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { loadConfig } from '../../config';
import { startEmbeddedPostgres } from '../../db/embedded-postgres';
import { runMigrations } from '../../db/migrate';
import { freePort } from '../../lib/net';
import { locateTemporalCli } from '../../temporal-config/cli';
import { startDevServer } from '../../temporal-config/dev-server';
import { locateStripeMock, startStripeMock } from '../peers/stripe-mock';
import { ISOLATED_NAMESPACE, setHarness, WORKER_NAMESPACES, type Harness } from './state';

const log = (line: string) => process.stderr.write(`[test harness] ${line}\n`);

async function createScratchDatabase(serverUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `parley_test_${Date.now()}_${process.pid}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [name],
      );
      await c.query(`drop database if exists ${name}`);
      await c.end();
    },
  };
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const harness: Harness = { stops: [] };
  setHarness(harness);
  process.env.NODE_ENV = 'test';
  process.env.LOG_LEVEL ??= 'silent';

  const temporalPromise = (async () => {
    const cliPath = await locateTemporalCli({ explicitPath: process.env.TEMPORAL_CLI_PATH, log });
    // A second namespace lets a test own its task queues with no other test's worker polling them.
    const server = await startDevServer({
      cliPath,
      port: await freePort(),
      httpPort: await freePort(),
      headless: true,
      namespace: ISOLATED_NAMESPACE,
      extraNamespaces: WORKER_NAMESPACES,
      log,
    });
    harness.stops.push(() => server.stop());
    return server.address;
  })();

  const postgresPromise = (async () => {
    if (process.env.DATABASE_URL) {
      const scratch = await createScratchDatabase(process.env.DATABASE_URL);
      harness.stops.push(scratch.drop);
      log(`using a scratch database on DATABASE_URL's server`);
      return scratch.url;
    }
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-test-pg-'));
    // As root, embedded-postgres runs initdb as a 'postgres' user, which must reach this folder.
    chmodSync(dataDir, 0o755);
    const pg = await startEmbeddedPostgres({
      dataDir: path.join(dataDir, 'data'),
      port: await freePort(),
      log,
    });
    harness.stops.push(async () => {
      await pg.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });
    return pg.url;
  })();

  const stripeMockPromise = (async () => {
    const binary = await locateStripeMock(log);
    const stripeMock = await startStripeMock({ binary, port: await freePort() });
    harness.stops.push(() => stripeMock.stop());
    return stripeMock.url;
  })();

  const [temporalAddress, databaseUrl, stripeMockUrl] = await Promise.all([
    temporalPromise,
    postgresPromise,
    stripeMockPromise,
  ]);
  process.env.TEMPORAL_ADDRESS = temporalAddress;
  process.env.DATABASE_URL = databaseUrl;
  process.env.STRIPE_MOCK_URL = stripeMockUrl;
  await runMigrations(loadConfig(process.env));
  log(`PostgreSQL, Temporal and stripe-mock ready in ${Date.now() - started} ms`);
}
