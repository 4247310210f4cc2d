/**
 * MikroORM setup. The app connects as the non-owner role (so row-level security binds it);
 * migrations connect as the owner. Both use the same entities and migration list.
 */
import { MikroORM, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { parse as parseConnectionString } from 'pg-connection-string';
import type { Config } from '../config';
import { requireSetting } from '../config';
import { ENTITY_SCHEMAS } from './entities';
import { Migration20261121000000_initial } from './migrations/Migration20261121000000_initial';
import { Migration20261121100000_call_outcome } from './migrations/Migration20261121100000_call_outcome';
import { Migration20261122000000_voice } from './migrations/Migration20261122000000_voice';
import { Migration20261123000000_campaigns } from './migrations/Migration20261123000000_campaigns';
import { Migration20261124000000_crm_billing } from './migrations/Migration20261124000000_crm_billing';

export { MikroORM };
export type { EntityManager } from '@mikro-orm/postgresql';

export const MIGRATIONS = [
  { name: 'Migration20261121000000_initial', class: Migration20261121000000_initial },
  { name: 'Migration20261121100000_call_outcome', class: Migration20261121100000_call_outcome },
  { name: 'Migration20261122000000_voice', class: Migration20261122000000_voice },
  { name: 'Migration20261123000000_campaigns', class: Migration20261123000000_campaigns },
  { name: 'Migration20261124000000_crm_billing', class: Migration20261124000000_crm_billing },
];

/**
 * TLS from the URL's query string (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), read the way
 * node-postgres reads it for a plain client: MikroORM builds its pool from the URL's host, port,
 * credentials and database only, so without this `?sslmode=verify-full` would be dropped silently
 * and the pool would connect in clear text.
 */
export function tlsFromUrl(clientUrl: string): Pick<Options, 'driverOptions'> {
  const { ssl } = parseConnectionString(clientUrl);
  return ssl === undefined ? {} : { driverOptions: { connection: { ssl } } };
}

export function ormOptions(clientUrl: string, poolMax: number): Options {
  return {
    clientUrl,
    ...tlsFromUrl(clientUrl),
    entities: ENTITY_SCHEMAS,
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: true },
    pool: { min: 0, max: poolMax },
    migrations: {
      tableName: 'mikro_orm_migrations',
      migrationsList: MIGRATIONS,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
    // Our own logger carries request context; MikroORM's debug logging would print SQL params.
    debug: false,
    allowGlobalContext: false,
    forceUtcTimezone: true,
  };
}

/** The owner connection string (migrations, role management). */
export function adminDatabaseUrl(config: Config): string {
  return requireSetting(config, 'DATABASE_URL', 'to reach PostgreSQL (npm start provides an embedded one)');
}

/** The app role's connection string: DATABASE_APP_URL, or DATABASE_URL with the app role's credentials. */
export function appDatabaseUrl(config: Config): string {
  if (config.DATABASE_APP_URL) return config.DATABASE_APP_URL;
  const url = new URL(adminDatabaseUrl(config));
  url.username = config.DATABASE_APP_ROLE;
  url.password = config.DATABASE_APP_PASSWORD;
  return url.toString();
}

export function appRoleName(config: Config): string {
  return config.DATABASE_APP_URL
    ? decodeURIComponent(new URL(config.DATABASE_APP_URL).username)
    : config.DATABASE_APP_ROLE;
}

/** The ORM every process uses for its work: app role, RLS enforced. */
export function createAppOrm(config: Config): Promise<MikroORM> {
  return MikroORM.init(ormOptions(appDatabaseUrl(config), config.DATABASE_POOL_MAX));
}
