/** The worker process (`npm run worker`): hosts workflows and activities for WORKER_TASK_QUEUES. */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { loadConfigOrExit } from '../config';
import { activityDepsFromConfig } from '../activities';
import { createAppOrm } from '../db/orm';
import { createLogger } from '../lib/logger';
import { onShutdown } from '../lib/shutdown';
import { connectWorker } from '../temporal-config/connection';
import { createWorkers } from './create-workers';

async function main() {
  const config = loadConfigOrExit();
  const logger = createLogger(config, 'worker');
  // The SDK's own logs go through pino; its INFO lines (every state change) only when debugging.
  const sdkLevel: LogLevel = config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' ? 'DEBUG' : 'WARN';
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, (entry) => {
      const level = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : 'debug';
      logger[level]({ sdk: entry.meta }, entry.message);
    }),
  });
  const orm = await createAppOrm(config);
  const connection = await connectWorker(config);
  const workers = await createWorkers({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueues: config.WORKER_TASK_QUEUES,
    activityDeps: activityDepsFromConfig(config, orm),
    logger,
  });
  const running = workers.map((worker) => worker.run());
  logger.info({ taskQueues: config.WORKER_TASK_QUEUES }, 'worker running');
  onShutdown(logger, [
    async () => {
      // shutdown() stops polling and lets in-flight tasks finish; run() resolves when drained.
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await Promise.all(running);
    },
    () => connection.close(),
    () => orm.close(),
  ]);
  await Promise.all(running);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `worker failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
