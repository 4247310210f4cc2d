/** Handles that globalSetup leaves for globalTeardown (both run in jest's parent process). */
export interface Harness {
  stops: (() => Promise<void>)[];
}

const KEY = Symbol.for('parley.test.harness');

export function setHarness(harness: Harness): void {
  (globalThis as Record<symbol, unknown>)[KEY] = harness;
}

export function getHarness(): Harness | undefined {
  return (globalThis as Record<symbol, unknown>)[KEY] as Harness | undefined;
}

/** Registered on the test dev server besides `default`; used by tests that need a queue to themselves. */
export const ISOLATED_NAMESPACE = 'parley-isolated';

/**
 * Each jest worker process gets a namespace of its own, so one test file's in-process worker never
 * picks up another file's tasks (their activities may be configured differently).
 */
export const WORKER_NAMESPACES = ['parley-w1', 'parley-w2', 'parley-w3', 'parley-w4'];

export function namespaceForJestWorker(): string {
  const id = Number(process.env.JEST_WORKER_ID ?? '1');
  return WORKER_NAMESPACES[(id - 1) % WORKER_NAMESPACES.length]!;
}
