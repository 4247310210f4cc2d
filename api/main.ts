/** The api process (`npm run api`): REST, webhooks, docs, dashboard, and `speak` for streamed text replies. */
import os from 'node:os';
import { Runtime, Worker } from '@temporalio/worker';
import { createApiSpeakActivities, llmClientsFromConfig } from '../activities';
import { loadConfigOrExit } from '../config';
import { createAppOrm } from '../db/orm';
import { createLogger } from '../lib/logger';
import { onShutdown } from '../lib/shutdown';
import { startTracing } from '../lib/tracing';
import { workerInstrumentation } from '../lib/worker-instrumentation';
import { connectClient, connectWorker } from '../temporal-config/connection';
import { apiTaskQueue } from '../temporal-config/task-queues';
import { createApp } from './app';
import { SpeechStreams } from './speech-streams';

async function main() {
  const config = loadConfigOrExit();
  const logger = createLogger(config, 'api');
  // Before the Temporal client exists: it picks up the tracing interceptors at creation.
  const tracing = startTracing(config, 'api');
  // The SDK would shut the `speak` worker down on SIGTERM by itself, cancelling the streamed replies
  // in flight; the shutdown below stops it only once the server has finished its open requests.
  Runtime.install({ shutdownSignals: [] });
  const orm = await createAppOrm(config);
  const temporal = await connectClient(config);

  // Streamed replies: this process runs `speak` on its own queue and writes tokens to open SSE responses.
  const speechStreams = new SpeechStreams(
    apiTaskQueue(config.API_INSTANCE_ID ?? `${os.hostname()}-${process.pid}`),
  );
  const workerConnection = await connectWorker(config);
  const speakWorker = await Worker.create({
    connection: workerConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: speechStreams.taskQueue,
    activities: createApiSpeakActivities(llmClientsFromConfig(config), speechStreams.sinkFor),
    ...workerInstrumentation(),
  });
  const speakRun = speakWorker.run();

  const app = createApp({ config, orm, temporal, logger, speechStreams });
  const server = app.listen(config.API_PORT, config.API_HOST, () => {
    logger.info(
      { port: config.API_PORT, speakQueue: speechStreams.taskQueue },
      `api listening on ${config.API_HOST}:${config.API_PORT}`,
    );
  });
  server.on('error', (err) => {
    logger.fatal({ err }, 'api could not listen');
    process.exit(1);
  });
  onShutdown(logger, [
    // Stop accepting, let in-flight requests finish, then drop idle keep-alive sockets.
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    async () => {
      // The SDK may already be draining on the same signal.
      if (speakWorker.getState() === 'RUNNING') speakWorker.shutdown();
      await speakRun;
    },
    () => workerConnection.close(),
    () => temporal.connection.close(),
    () => orm.close(),
    async () => tracing?.shutdown(),
  ]);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `api failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
