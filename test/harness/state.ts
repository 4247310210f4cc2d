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
