/**
 * `?sslmode=` on DATABASE_URL / DATABASE_APP_URL reaches the app's connection pool (MikroORM builds
 * its pool from the URL's parts and would otherwise drop the query string). The harness's PostgreSQL
 * has no TLS, so a URL that demands TLS must fail to connect, naming that, and one that disables it
 * must connect: either outcome would be the same if the setting were ignored.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { createAppOrm, ormOptions } from '../db/orm';
import { testConfig } from './support/stack';

const withQuery = (url: string, query: string) => `${url}${url.includes('?') ? '&' : '?'}${query}`;

it('sslmode=verify-full on DATABASE_APP_URL makes the pool ask for TLS (refused by a server without it)', async () => {
  const config = testConfig();
  const appUrl = withQuery(
    `postgres://${config.DATABASE_APP_ROLE}:${config.DATABASE_APP_PASSWORD}@${new URL(config.DATABASE_URL!).host}${new URL(config.DATABASE_URL!).pathname}`,
    'sslmode=verify-full',
  );
  // MikroORM connects at start-up: the process would stop there, naming the reason.
  await expect(createAppOrm({ ...config, DATABASE_APP_URL: appUrl })).rejects.toThrow(/does not support SSL/);
});

it('sslmode=disable connects in clear text; no sslmode leaves the driver default', async () => {
  const config = testConfig();
  for (const url of [withQuery(config.DATABASE_URL!, 'sslmode=disable'), config.DATABASE_URL!]) {
    const orm = await MikroORM.init(ormOptions(url, 1));
    try {
      const [row] = await orm.em
        .fork()
        .execute<{ ssl: boolean }[]>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      expect(row).toEqual({ ssl: false });
    } finally {
      await orm.close(true);
    }
  }
});

it('reads sslmode, sslrootcert and no-verify as node-postgres does', () => {
  expect(ormOptions('postgres://u:p@db.example.com/parley', 1).driverOptions).toBeUndefined();
  expect(ormOptions('postgres://u:p@db.example.com/parley?sslmode=disable', 1).driverOptions).toEqual({
    connection: { ssl: false },
  });
  expect(ormOptions('postgres://u:p@db.example.com/parley?sslmode=no-verify', 1).driverOptions).toEqual({
    connection: { ssl: { rejectUnauthorized: false } },
  });
  expect(() => ormOptions('postgres://u:p@db.example.com/parley?sslrootcert=/nonexistent/ca.pem', 1)).toThrow(
    /nonexistent\/ca\.pem/,
  );
});
