/** The api process (`npm run api`): REST, webhooks, docs, dashboard. */
import { loadConfigOrExit } from '../config';
import { createAppOrm } from '../db/orm';
import { createLogger } from '../lib/logger';
import { onShutdown } from '../lib/shutdown';
import { connectClient } from '../temporal-config/connection';
import { createApp } from './app';

async function main() {
  const config = loadConfigOrExit();
  const logger = createLogger(config, 'api');
  const orm = await createAppOrm(config);
  const temporal = await connectClient(config);
  const app = createApp({ config, orm, temporal, logger });
  const server = app.listen(config.API_PORT, config.API_HOST, () => {
    logger.info({ port: config.API_PORT }, `api listening on ${config.API_HOST}:${config.API_PORT}`);
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
    () => temporal.connection.close(),
    () => orm.close(),
  ]);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `api failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
