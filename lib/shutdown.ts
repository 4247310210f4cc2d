/** Runs clean-up steps once on SIGINT/SIGTERM, in order, then exits; a second signal forces exit. */
import type { Logger } from './logger';

export function onShutdown(logger: Logger, steps: (() => Promise<unknown>)[], timeoutMs = 30_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, timeoutMs);
    force.unref();
    void (async () => {
      let code = 0;
      for (const step of steps) {
        try {
          await step();
        } catch (err) {
          code = 1;
          logger.error({ err }, 'shutdown step failed');
        }
      }
      process.exit(code);
    })();
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
