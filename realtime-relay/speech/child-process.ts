/**
 * Runs a local speech engine (pocketsphinx, espeak-ng) as a child process: arguments as an argv array
 * (no shell, so nothing in them is interpreted), input on stdin, output collected, and the child
 * killed when the caller aborts or a guard timeout expires, so a hung engine cannot pile up.
 */
import { spawn } from 'node:child_process';

export interface RunOptions {
  input?: string | Buffer;
  signal?: AbortSignal;
  timeoutMs: number;
}

export interface RunResult {
  /** Exit code, or null when a signal ended the process. */
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export class EngineTimeoutError extends Error {
  constructor(binary: string, timeoutMs: number) {
    super(`${binary} did not finish within ${timeoutMs} ms`);
    this.name = 'EngineTimeoutError';
  }
}

/** The error a cancelled request rejects with: the signal's reason (an AbortError by default). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException(typeof reason === 'string' ? reason : 'This operation was aborted', 'AbortError');
}

export function runProcess(binary: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(abortReason(opts.signal));
      return;
    }
    const child = spawn(binary, args); // all three stdio streams piped; no shell
    const stdout: Buffer[] = [];
    let stderr = '';
    // Set when we end the child ourselves: the promise then rejects with it once the child has exited.
    let failure: { error: Error } | undefined;
    let settled = false;

    const kill = (error: Error) => {
      if (failure || settled) return;
      failure = { error };
      child.kill('SIGKILL');
    };
    const onAbort = () => kill(abortReason(opts.signal!));
    const timer = setTimeout(() => kill(new EngineTimeoutError(binary, opts.timeoutMs)), opts.timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };

    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      // Only the tail matters for an error message; keep memory bounded.
      stderr = (stderr + chunk.toString('utf8')).slice(-4_000);
    });
    child.on('error', (err) => {
      if (settled) return;
      finish();
      reject(failure ? failure.error : err);
    });
    // A killed child may leave its pipes open in grandchildren: settle on exit, not on close.
    child.on('exit', () => {
      if (!failure || settled) return;
      finish();
      reject(failure.error);
    });
    child.on('close', (code) => {
      if (settled || failure) return;
      finish();
      resolve({ code, stdout: Buffer.concat(stdout), stderr });
    });
    // An engine that exits early (a bad voice) closes stdin: its exit code tells, not EPIPE.
    child.stdin.on('error', () => undefined);
    if (opts.input === undefined) child.stdin.end();
    else child.stdin.end(opts.input);
  });
}
