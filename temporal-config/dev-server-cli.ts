/** `npm run temporal:dev`: just the Temporal dev server with Parley's settings, until Ctrl-C. */
import path from 'node:path';
import { absoluteDataDir, loadConfigOrExit } from '../config';
import { locateTemporalCli } from './cli';
import { startDevServer } from './dev-server';

async function main() {
  const config = loadConfigOrExit();
  const cliPath = await locateTemporalCli({ explicitPath: config.TEMPORAL_CLI_PATH, log: console.log });
  const server = await startDevServer({
    cliPath,
    port: config.TEMPORAL_DEV_PORT,
    uiPort: config.TEMPORAL_DEV_UI_PORT,
    namespace: config.TEMPORAL_NAMESPACE,
    dbFile: path.join(absoluteDataDir(config), 'temporal.sqlite'),
    log: console.log,
  });
  const shutdown = () => void server.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
