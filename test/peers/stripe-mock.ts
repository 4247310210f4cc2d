/**
 * stripe-mock, Stripe's official local peer (/work/shared/protocols.md, "Stripe"): finds or builds the
 * pinned binary and runs one on a port of 127.0.0.1 for the tests. It is stateless — it answers each
 * request from its bundled fixtures, validating parameters against Stripe's OpenAPI spec — so tests
 * assert on what Parley sent (StripePeer's record), not on objects stored in it.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { locateGoTool } from '../../lib/go-tool';
import { sleep } from '../../lib/net';

export const STRIPE_MOCK_MODULE = 'github.com/stripe/stripe-mock@v0.203.0';

/** stripe-mock answers only requests that carry a test-mode secret key. */
export const STRIPE_MOCK_API_KEY = 'sk_test_parley';

/** STRIPE_MOCK_PATH (when set and not empty), `.tools/bin`, PATH, or a `go install` build. */
export function locateStripeMock(log?: (line: string) => void): Promise<string> {
  return locateGoTool({
    name: 'stripe-mock',
    module: STRIPE_MOCK_MODULE,
    explicitPath: process.env.STRIPE_MOCK_PATH || undefined,
    explicitPathVariable: 'STRIPE_MOCK_PATH',
    log,
  });
}

export interface StripeMockOptions {
  binary: string;
  port: number;
  /** How long it may take to answer its first request (default 20 s). */
  startTimeoutMs?: number;
}

export interface RunningStripeMock {
  /** `http://127.0.0.1:<port>` */
  url: string;
  stop(): Promise<void>;
}

export async function startStripeMock(options: StripeMockOptions): Promise<RunningStripeMock> {
  const url = `http://127.0.0.1:${options.port}`;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  // `-http-addr` alone does not turn off its default HTTPS listener on 12112 (v0.203.0 enables HTTPS
  // unless -http, -http-port or -port is given), so a second stripe-mock on the machine would make it
  // exit: bind HTTPS to a port of the system's choosing instead. Nothing uses it.
  const args = ['-http-addr', `127.0.0.1:${options.port}`, '-https-addr', '127.0.0.1:0'];
  const child = spawn(options.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // It logs every request; keep the last lines to explain a failure, and never let a pipe fill up.
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `it exited with ${code === null ? `signal ${signal}` : `code ${code}`}`;
      resolve();
    });
  });
  child.once('error', (err) => {
    exited = `it could not start: ${err.message}`;
  });

  const stop = async () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exitedPromise;
    clearTimeout(killer);
  };

  const deadline = Date.now() + startTimeoutMs;
  let lastError = 'no answer';
  for (;;) {
    try {
      if (await answers(options.port)) break;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (exited || Date.now() > deadline) {
      await stop();
      const reason = exited ?? `no answer within ${startTimeoutMs} ms (${lastError})`;
      throw new Error(`stripe-mock (${options.binary}) did not start on ${url}: ${reason}\n${output.trim()}`);
    }
    await sleep(100);
  }
  return { url, stop };
}

/** One request on a connection of its own, so nothing is left open in the process that started it. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/customers?limit=1',
        headers: { Authorization: `Bearer ${STRIPE_MOCK_API_KEY}` },
        agent: false,
        timeout: 2_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}
