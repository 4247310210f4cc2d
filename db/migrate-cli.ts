/** `npm run migrate`: applies pending migrations to DATABASE_URL and provisions the app role. */
import { loadConfigOrExit } from '../config';
import { runMigrations } from './migrate';

const config = loadConfigOrExit();
runMigrations(config, console.log)
  .then(({ applied }) =>
    console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Schema is up to date.'),
  )
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
