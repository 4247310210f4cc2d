/** `npm run temporal:cli`: finds or builds the Temporal CLI (go install) and prints where it is. */
import { loadConfigOrExit } from '../config';
import { locateTemporalCli } from './cli';

const config = loadConfigOrExit();
locateTemporalCli({ explicitPath: config.TEMPORAL_CLI_PATH, log: console.log })
  .then((cliPath) => console.log(`Temporal CLI: ${cliPath}`))
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
