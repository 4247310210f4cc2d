/** The worker process (`npm run worker`): hosts workflows and activities for WORKER_TASK_QUEUES. */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { loadConfigOrExit } from '../config';
import { activityDepsFromConfig } from '../activities';
import { createAppOrm } from '../db/orm';
import { createLogger } from '../lib/logger';
import { onShutdown } from '../lib/shutdown';
import { startTracing } from '../lib/tracing';
import { sdkLogFields } from '../lib/worker-instrumentation';
import { connectWorker } from '../temporal-config/connection';
import { createWorkers } from './create-workers';
import { startWorkerMetricsServer } from './metrics-server';

async function main() {
  const config = loadConfigOrExit();
  const logger = createLogger(config, 'worker');
  const tracing = startTracing(config, 'worker');
  // The SDK's own logs go through pino; its INFO lines (every state change) only when debugging.
  const sdkLevel: LogLevel = config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' ? 'DEBUG' : 'WARN';
  const sdkLogger = new DefaultLogger(sdkLevel, (entry) => {
    const level = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : 'debug';
    logger[level](sdkLogFields(entry.meta), entry.message);
  });
  // Runtime.install: once per process, before any connection or Worker. The SDK's own metrics
  // (temporal_*) get Core's Prometheus exporter on TEMPORAL_METRICS_PORT; it throws when the port is
  // taken, and the worker then runs without it rather than not at all.
  let temporalMetricsPort: number | null = config.TEMPORAL_METRICS_PORT || null;
  try {
    Runtime.install({
      logger: sdkLogger,
      ...(temporalMetricsPort
        ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `0.0.0.0:${temporalMetricsPort}` } } } }
        : {}),
    });
  } catch (err) {
    if (!temporalMetricsPort) throw err;
    logger.warn({ err, port: temporalMetricsPort }, 'Temporal SDK metrics exporter could not start; off');
    temporalMetricsPort = null;
    Runtime.install({ logger: sdkLogger });
  }
  const metricsServer = await startWorkerMetricsServer({
    port: config.WORKER_METRICS_PORT,
    token: config.METRICS_TOKEN,
    logger,
  });
  const orm = await createAppOrm(config);
  const connection = await connectWorker(config);
  const workers = await createWorkers({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueues: config.WORKER_TASK_QUEUES,
    activityDeps: activityDepsFromConfig(config, orm),
    logger,
    shutdownGraceMs: config.WORKER_SHUTDOWN_GRACE_SECONDS * 1000,
  });
  const running = workers.map((worker) => worker.run());
  // /health/ready follows them: one Worker per queue, in order; then, serving `dialer`, the
  // campaign dialers (workers/create-workers.ts).
  metricsServer?.setWorkers(
    Object.fromEntries(
      workers.map((worker, i) => [config.WORKER_TASK_QUEUES[i] ?? 'dialer.<campaignId>', worker]),
    ),
  );
  logger.info(
    {
      taskQueues: config.WORKER_TASK_QUEUES,
      metricsPort: metricsServer?.port ?? null,
      temporalMetricsPort,
      tracing: tracing ? tracing.endpoint : 'off',
    },
    'worker running',
  );
  onShutdown(logger, [
    async () => {
      // shutdown() stops polling and lets in-flight tasks finish; run() resolves when drained.
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await Promise.all(running);
    },
    () => connection.close(),
    () => orm.close(),
    async () => metricsServer?.close(),
    async () => tracing?.shutdown(),
  ]);
  await Promise.all(running);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `worker failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
