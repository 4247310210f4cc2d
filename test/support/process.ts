/**
 * A Parley entry point (`api/main.ts`, `workers/main.ts`, `realtime-relay/main.ts`) as a real child
 * process, as `npm run api|worker|relay` starts it: the test's environment (the harness's DATABASE_URL
 * and TEMPORAL_ADDRESS) with `env` on top, its output kept for assertions and failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

export interface ParleyProcess {
  child: ChildProcess;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** Everything it printed so far, stdout and stderr interleaved. */
  output(): string;
  running(): boolean;
  /** SIGTERM if it still runs, then its exit code. */
  stop(): Promise<number | null>;
}

export function startParleyProcess(script: string, env: NodeJS.ProcessEnv = {}): ParleyProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    exited,
    output: () => output,
    running,
    stop: () => {
      if (running()) child.kill('SIGTERM');
      return exited;
    },
  };
}
