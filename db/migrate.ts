/**
 * Brings a database to the current schema as the owner, then makes sure the app role exists,
 * cannot bypass RLS, and holds exactly the grants it needs.
 */
import { Client } from 'pg';
import type { Config } from '../config';
import { MikroORM } from '@mikro-orm/postgresql';
import { adminDatabaseUrl, appRoleName, ormOptions } from './orm';

export interface MigrationResult {
  applied: string[];
}

/** The narrow lookups that run before a tenant is known; the app role may execute these and nothing else. */
export const SECURITY_DEFINER_FUNCTIONS = [
  'parley_login_candidates(text)',
  'parley_phone_route(text)',
  'parley_call_by_provider_sid(text)',
  'parley_call_by_id(uuid)',
  'parley_dialing_campaigns()',
  'parley_billing_period_by_invoice(text)',
] as const;

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export async function ensureAppRole(
  adminUrl: string,
  role: string,
  password: string | undefined,
): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_roles where rolname = $1', [role]);
    if (password !== undefined) {
      const verb = exists.rowCount ? 'alter' : 'create';
      // Parameters cannot bind in utility statements; the literal is escaped by the server helper.
      const literal = await client.query<{ q: string }>('select quote_literal($1) as q', [password]);
      await client.query(
        `${verb} role ${quoteIdent(role)} login nosuperuser nobypassrls nocreatedb nocreaterole password ${literal.rows[0]?.q ?? "''"}`,
      );
    } else if (!exists.rowCount) {
      throw new Error(`Database role '${role}' (from DATABASE_APP_URL) does not exist; create it first.`);
    }
    const r = quoteIdent(role);
    await client.query(`grant usage on schema public to ${r}`);
    await client.query(`grant select, insert, update, delete on all tables in schema public to ${r}`);
    await client.query(`revoke update, delete on audit_log from ${r}`);
    await client.query(`revoke all on mikro_orm_migrations from ${r}`);
    await client.query(`grant usage, select on all sequences in schema public to ${r}`);
    for (const fn of SECURITY_DEFINER_FUNCTIONS)
      await client.query(`grant execute on function ${fn} to ${r}`);
  } finally {
    await client.end();
  }
}

export async function runMigrations(
  config: Config,
  log: (line: string) => void = () => undefined,
): Promise<MigrationResult> {
  const adminUrl = adminDatabaseUrl(config);
  const orm = await MikroORM.init(ormOptions(adminUrl, 2));
  let applied: string[] = [];
  try {
    const migrator = orm.getMigrator();
    const pending = await migrator.getPendingMigrations();
    if (pending.length) {
      log(`Applying ${pending.length} migration(s): ${pending.map((m) => m.name).join(', ')}`);
      applied = (await migrator.up()).map((m) => m.name);
    }
  } finally {
    await orm.close(true);
  }
  await ensureAppRole(
    adminUrl,
    appRoleName(config),
    config.DATABASE_APP_URL ? undefined : config.DATABASE_APP_PASSWORD,
  );
  return { applied };
}
