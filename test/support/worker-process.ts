/**
 * `npm run worker` as a real child process, for tests that SIGKILL it: started with the given
 * environment on top of the test's, ready once it logs that it polls.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { waitUntil } from '../../lib/net';

const ROOT = path.resolve(__dirname, '..', '..');

export interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<void>;
  /** Everything it printed so far (its logs, for failure messages). */
  output(): string;
}

export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitUntil(
    'the worker to poll',
    () => {
      if (child.exitCode !== null) throw new Error(`worker exited: ${output.slice(-2000)}`);
      return Promise.resolve(output.includes('worker running'));
    },
    60_000,
    100,
  );
  return { child, exited, output: () => output };
}

/** SIGTERM, if it still runs, and wait for it to go. */
export async function stopWorkerProcess(worker: WorkerProcess | undefined): Promise<void> {
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
    worker.child.kill('SIGTERM');
    await worker.exited;
  }
}
