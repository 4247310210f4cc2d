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
