/** `npm run temporal:search-attributes`: registers the custom search attributes on TEMPORAL_ADDRESS. */
import { Connection } from '@temporalio/client';
import { loadConfigOrExit } from '../config';
import { clientConnectionOptions } from './connection';
import { ensureSearchAttributes } from './register-search-attributes';

async function main() {
  const config = loadConfigOrExit();
  const connection = await Connection.connect(clientConnectionOptions(config));
  try {
    const added = await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
    console.log(
      added.length ? `Registered: ${added.join(', ')}` : 'All search attributes already registered.',
    );
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
