/** Stops what globalSetup started, last started first. */
import { getHarness } from './state';

export default async function globalTeardown(): Promise<void> {
  const harness = getHarness();
  for (const stop of [...(harness?.stops ?? [])].reverse()) {
    await stop().catch((err: unknown) =>
      process.stderr.write(`[test harness] stop failed: ${String(err)}\n`),
    );
  }
}
