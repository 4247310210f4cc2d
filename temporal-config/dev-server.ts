/**
 * Runs `temporal server start-dev` as a child process: SQLite file (or in memory), Web UI, the
 * namespace and Parley's search attributes registered, and waits until it answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { waitUntil } from '../lib/net';
import { devServerSearchAttributeFlags } from './search-attributes';

export interface DevServerOptions {
  cliPath: string;
  port: number;
  /** Web UI port; omit (or set headless) for no UI. */
  uiPort?: number;
  headless?: boolean;
  httpPort?: number;
  namespace?: string;
  /** More namespaces to register (tests give each jest worker its own). */
  extraNamespaces?: string[];
  /** SQLite file; omit for an in-memory server. */
  dbFile?: string;
  /** Trade durability for speed (tests). */
  fastSqlite?: boolean;
  /** `--dynamic-config-value` entries; default DEV_SERVER_DYNAMIC_CONFIG. */
  dynamicConfig?: readonly string[];
  ip?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  log?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The dev server's history service reads its transfer queue at most 20 times a second per shard,
 * and it has one shard: every activity and every workflow task after one waits 30-45 ms for that
 * poll, so a text turn took 200 ms of which Parley's own work was a few (bench/RESULTS.md). A
 * higher rate brings a turn to ~40 ms on one machine.
 *
 * One partition per task queue: a queue's server-side rate limit (the campaign dialers' calls per
 * second) is split evenly across its partitions, which makes a low rate bursty and uneven; one
 * server process gains nothing from more partitions.
 */
export const DEV_SERVER_DYNAMIC_CONFIG: readonly string[] = [
  'history.transferProcessorMaxPollRPS=1000',
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
];

export function devServerArgs(options: DevServerOptions): string[] {
  const ip = options.ip ?? '127.0.0.1';
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(options.port),
    '--log-level',
    options.logLevel ?? 'warn',
  ];
  if (options.headless || options.uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(options.uiPort), '--ui-ip', ip);
  if (options.httpPort !== undefined) args.push('--http-port', String(options.httpPort));
  for (const namespace of [options.namespace, ...(options.extraNamespaces ?? [])]) {
    if (namespace && namespace !== 'default') args.push('--namespace', namespace);
  }
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.fastSqlite)
    args.push('--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=OFF');
  for (const value of options.dynamicConfig ?? DEV_SERVER_DYNAMIC_CONFIG)
    args.push('--dynamic-config-value', value);
  args.push(...devServerSearchAttributeFlags());
  return args;
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const log = options.log ?? (() => undefined);
  if (options.dbFile) mkdirSync(path.dirname(options.dbFile), { recursive: true });
  const ip = options.ip ?? '127.0.0.1';
  const address = `${ip}:${options.port}`;
  // Own process group, so a terminal Ctrl-C does not stop it before the processes that use it.
  const child = spawn(options.cliPath, devServerArgs(options), {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // Rejects if the server dies (or cannot be spawned at all) before it is ready.
  let diedEarly: (err: Error) => void = () => undefined;
  const died = new Promise<never>((_, reject) => {
    diedEarly = reject;
  });
  died.catch(() => undefined);
  const onExit = (code: number | null) => diedEarly(new Error(`it exited with code ${code}:\n${output}`));
  const onError = (err: Error) => diedEarly(new Error(`it could not start: ${err.message}`));
  child.once('exit', onExit);
  child.once('error', onError);

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  };

  // Once the server has died (or answered), nothing polls it any more: no timer outlives the start.
  const polling = new AbortController();
  try {
    const ready = waitUntil(
      `the Temporal dev server on ${address}`,
      async () => {
        const connection = await Connection.connect({ address, connectTimeout: 1000 });
        try {
          await connection.workflowService.describeNamespace({ namespace: options.namespace ?? 'default' });
          return true;
        } finally {
          await connection.close();
        }
      },
      options.startTimeoutMs ?? 60_000,
      250,
      polling.signal,
    );
    ready.catch(() => undefined);
    await Promise.race([ready, died]);
  } catch (err) {
    await stop();
    throw new Error(`The Temporal dev server (${options.cliPath}) did not start: ${(err as Error).message}`);
  } finally {
    polling.abort();
    child.off('exit', onExit);
    child.off('error', onError);
  }
  const uiUrl =
    options.headless || options.uiPort === undefined ? undefined : `http://localhost:${options.uiPort}`;
  log(`Temporal dev server ready on ${address}${uiUrl ? `, Web UI ${uiUrl}` : ''}`);
  return { address, uiUrl, child, stop };
}
