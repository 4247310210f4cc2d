/** The relay process (`npm run relay`): holds live audio sockets; speaks on queue relay.<instanceId>. */
import os from 'node:os';
import { Runtime } from '@temporalio/worker';
import OpenAI from 'openai';
import { llmClientsFromConfig } from '../activities';
import { loadConfigOrExit } from '../config';
import { createLogger } from '../lib/logger';
import { onShutdown } from '../lib/shutdown';
import { startTracing } from '../lib/tracing';
import { connectClient, connectWorker } from '../temporal-config/connection';
import { createRelay } from './relay';

async function main() {
  const config = loadConfigOrExit();
  const logger = createLogger(config, 'relay');
  const tracing = startTracing(config, 'relay');
  const instanceId = config.RELAY_INSTANCE_ID ?? `${os.hostname()}-${process.pid}`;
  // Before any connection: by default the SDK shuts every Worker down on SIGTERM itself, which
  // cancels holdMedia/speak and stops polling `speak` at once, hanging up every live call. The drain
  // below (relay.stop) stops the worker only once the calls are over or the bound has passed.
  Runtime.install({ shutdownSignals: [] });
  const temporal = await connectClient(config);
  const workerConnection = await connectWorker(config);
  const relay = await createRelay({
    config,
    logger,
    instanceId,
    temporal,
    workerConnection,
    llmClients: llmClientsFromConfig(config),
    openai: config.OPENAI_API_KEY
      ? new OpenAI({ apiKey: config.OPENAI_API_KEY, baseURL: config.OPENAI_BASE_URL })
      : undefined,
  });
  try {
    await relay.listen(config.RELAY_PORT, config.RELAY_HOST);
  } catch (err) {
    logger.fatal({ err }, 'relay could not listen');
    process.exit(1);
  }
  logger.info(
    { instanceId, port: config.RELAY_PORT, taskQueue: relay.taskQueue },
    `relay listening on ${config.RELAY_HOST}:${config.RELAY_PORT}`,
  );
  onShutdown(
    logger,
    [
      () => relay.stop(20_000),
      () => workerConnection.close(),
      () => temporal.connection.close(),
      async () => tracing?.shutdown(),
    ],
    30_000,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `relay failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
