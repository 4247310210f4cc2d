/**
 * `npm run worker` as a real child process, for tests that SIGKILL it: started with the given
 * environment on top of the test's, ready once it logs that it polls.
 */
import type { ChildProcess } from 'node:child_process';
import { waitUntil } from '../../lib/net';
import { startParleyProcess } from './process';

export interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<void>;
  /** Everything it printed so far (its logs, for failure messages). */
  output(): string;
}

export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const proc = startParleyProcess('workers/main.ts', env);
  const { child } = proc;
  const output = () => proc.output();
  await waitUntil(
    'the worker to poll',
    () => {
      if (child.exitCode !== null) throw new Error(`worker exited: ${output().slice(-2000)}`);
      return Promise.resolve(output().includes('worker running'));
    },
    60_000,
    100,
  );
  return { child, exited: proc.exited.then(() => undefined), output };
}

/** SIGTERM, if it still runs, and wait for it to go. */
export async function stopWorkerProcess(worker: WorkerProcess | undefined): Promise<void> {
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
    worker.child.kill('SIGTERM');
    await worker.exited;
  }
}
