/**
 * Row-level security, proven table by table against the real database: with tenant A set, the app
 * role cannot read, change, delete or create tenant B's rows in any tenant-owned table (nor B's
 * `tenants` row), and with no tenant set it sees nothing at all. Fixtures are written as the owner
 * (which bypasses RLS); every attack runs as the app role through `withTenant`, with hand-written
 * SQL that names B explicitly. The per-table tests iterate over TENANT_OWNED_TABLES, and the fixture
 * map must cover exactly that list, so a new table without a fixture fails here.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { Client as PgClient } from 'pg';
import { TENANT_OWNED_TABLES } from '../db/entities';
import { appRoleName, createAppOrm, type EntityManager, type MikroORM } from '../db/orm';
import { withTenant } from '../db/tenant-context';
import { ownerClient, testConfig } from './support/stack';

type Row = Record<string, unknown>;

interface TenantFixture {
  id: string;
  slug: string;
  /** Short unique text for values that must be unique (emails, key hashes, workflow ids). */
  tag: string;
  /** The key (see keyOf) of this tenant's fixture row in every tenant-owned table. */
  rowIds: Record<string, string>;
  /** A second contact, so a copied campaign_contacts row does not collide on (campaign_id, contact_id). */
  spareContactId: string;
}

/** Column values for one row of a table (without id and tenant_id); `variant` keeps unique columns unique. */
type RowBuilder = (t: TenantFixture, variant: number) => Row;

const phone = (): string => `+1${randomInt(2_000_000_000, 9_999_999_999)}`;
const unique = (t: TenantFixture, variant: number, what: string): string =>
  `rls-${what}-${t.tag}-${variant}-${randomUUID()}`;

/** The column naming one row: `id`, except in tables keyed by what they link or list. */
const ROW_KEYS: Record<string, string> = { contact_list_members: 'contact_id', do_not_call: 'phone_e164' };
const keyOf = (table: string): string => ROW_KEYS[table] ?? 'id';

/** One row per tenant-owned table, in dependency order (parents first). */
const FIXTURES: Record<string, RowBuilder> = {
  users: (t, v) => ({
    email: `${unique(t, v, 'user')}@example.test`,
    name: 'RLS user',
    password_hash: 'not-a-real-hash',
    role: 'viewer',
  }),
  api_keys: (t, v) => ({
    name: 'RLS key',
    prefix: 'pk_rls',
    key_hash: unique(t, v, 'key'),
    role: 'viewer',
    created_by_user_id: t.rowIds.users,
  }),
  agents: () => ({ name: 'RLS agent', draft: { nodes: [] } }),
  agent_versions: (t, v) => ({ agent_id: t.rowIds.agents, version: v + 1, definition: { nodes: [] } }),
  phone_numbers: (t) => ({ e164: phone(), label: 'RLS line', agent_id: t.rowIds.agents }),
  contacts: () => ({ phone_e164: phone(), name: 'RLS contact' }),
  contact_lists: () => ({ name: 'RLS list' }),
  contact_list_members: (t, v) => ({
    list_id: t.rowIds.contact_lists,
    contact_id: v === 0 ? t.rowIds.contacts : t.spareContactId,
  }),
  do_not_call: (_t, v) => (v === 0 ? { reason: 'RLS' } : { phone_e164: phone(), reason: 'RLS copy' }),
  calls: (t, v) => ({
    agent_id: t.rowIds.agents,
    agent_version_id: t.rowIds.agent_versions,
    contact_id: t.rowIds.contacts,
    direction: 'outbound',
    channel: 'voice',
    provider_call_sid: unique(t, v, 'sid'),
    workflow_id: unique(t, v, 'wf'),
    status: 'completed',
  }),
  call_turns: (t, v) => ({
    call_id: t.rowIds.calls,
    seq: v,
    role: 'agent',
    text: 'Hello from the RLS test.',
  }),
  campaigns: (t) => ({
    name: 'RLS campaign',
    agent_id: t.rowIds.agents,
    agent_version_id: t.rowIds.agent_versions,
    caller_number_id: t.rowIds.phone_numbers,
  }),
  campaign_contacts: (t, v) => ({
    campaign_id: t.rowIds.campaigns,
    contact_id: v === 0 ? t.rowIds.contacts : t.spareContactId,
  }),
  campaign_attempts: (t, v) => ({
    campaign_id: t.rowIds.campaigns,
    contact_id: t.rowIds.contacts,
    attempt: v + 1,
    attempt_key: unique(t, v, 'attempt'),
  }),
  integrations: (_t, v) => ({
    provider: v === 0 ? 'hubspot' : 'salesforce',
    credentials_ciphertext: 'ciphertext',
    credentials_key_id: 'key-1',
  }),
  crm_sync_records: (t, v) => ({ call_id: t.rowIds.calls, provider: v === 0 ? 'hubspot' : 'salesforce' }),
  crm_imports: (t) => ({
    provider: 'hubspot',
    source: JSON.stringify({ kind: 'hubspot_list', listId: '7' }),
    contact_list_id: t.rowIds.contact_lists,
  }),
  billing_periods: (_t, v) => ({
    period: `2026-${String(v + 1).padStart(2, '0')}`,
    period_start: '2026-01-01T00:00:00Z',
    period_end: '2026-02-01T00:00:00Z',
    plan: 'pro',
  }),
  usage_records: (t, v) => ({
    call_id: t.rowIds.calls,
    kind: `voice_seconds_${v}`,
    quantity: 42,
    period_start: new Date().toISOString(),
  }),
  webhook_endpoints: () => ({
    url: 'https://example.test/hook',
    secret_ciphertext: 'ciphertext',
    events: ['call.completed'],
  }),
  audit_log: (t) => ({ actor_type: 'system', action: 'rls.fixture', target_type: 'tenant', target_id: t.id }),
};

const TABLES = [...TENANT_OWNED_TABLES];
const ALL_RLS_TABLES = [...TABLES, 'tenants'];
/** The app role holds no UPDATE/DELETE on these (append-only), so such statements are refused outright. */
const APPEND_ONLY = new Set(['audit_log']);

const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`;
const insertCopySql = (table: string, placeholder: string): string =>
  `insert into ${q(table)} select * from json_populate_record(null::${q(table)}, ${placeholder}::json) returning ${keyOf(table)}`;

function newTenant(label: string): TenantFixture {
  const tag = randomUUID().slice(0, 8);
  const rowIds: Record<string, string> = Object.fromEntries(
    Object.keys(FIXTURES).map((table) => [table, table === 'do_not_call' ? phone() : randomUUID()]),
  );
  rowIds.contact_list_members = rowIds.contacts!;
  return {
    id: randomUUID(),
    slug: `rls-${label}-${tag}`,
    tag,
    rowIds,
    spareContactId: randomUUID(),
  };
}

/** Rows returned by a raw statement run by the app role. */
async function rows<T = Row>(em: EntityManager, sql: string, params: unknown[] = []): Promise<T[]> {
  return em.execute<T[] & Row[]>(sql, params);
}

async function count(em: EntityManager, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await rows<{ count: string }>(em, sql, params);
  return Number(row?.count);
}

/** Thrown on purpose to roll a `withTenant` transaction back after a successful statement. */
class Rollback extends Error {}

describe('row-level security', () => {
  const config = testConfig({ DATABASE_POOL_MAX: '1' });
  const appRole = appRoleName(config);
  const A = newTenant('a');
  const B = newTenant('b');
  /** How many rows the fixture wrote per table and tenant. */
  const inserted: Record<string, Record<string, number>> = {};
  /** B's rows (as JSON text), per table, right after the fixture was written. */
  const snapshotOfB: Record<string, string[]> = {};
  let owner: PgClient;
  let orm: MikroORM;

  async function ownerInsert(table: string, row: Row): Promise<void> {
    const columns = Object.keys(row);
    await owner.query(
      `insert into ${q(table)} (${columns.map(q).join(', ')}) values (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      Object.values(row),
    );
    const perTenant = (inserted[table] ??= {});
    const tenantId = String(row.tenant_id);
    perTenant[tenantId] = (perTenant[tenantId] ?? 0) + 1;
  }

  async function writeFixture(t: TenantFixture): Promise<void> {
    await owner.query('insert into tenants (id, name, slug, status) values ($1, $2, $3, $4)', [
      t.id,
      `RLS ${t.slug}`,
      t.slug,
      'active',
    ]);
    for (const [table, build] of Object.entries(FIXTURES)) {
      await ownerInsert(table, { [keyOf(table)]: t.rowIds[table], tenant_id: t.id, ...build(t, 0) });
      if (table === 'contacts')
        await ownerInsert(table, { id: t.spareContactId, tenant_id: t.id, ...build(t, 2) });
    }
  }

  async function rowsOfB(table: string): Promise<string[]> {
    const res = await owner.query<{ r: string }>(
      `select row_to_json(t)::text as r from ${q(table)} t where ${table === 'tenants' ? 'id' : 'tenant_id'} = $1 order by ${table === 'tenants' ? 'id' : keyOf(table)}`,
      [B.id],
    );
    return res.rows.map((r) => r.r);
  }

  /** A copy of tenant t's fixture row in `table` with a fresh key and fresh values for unique columns. */
  async function copyOf(t: TenantFixture, table: string): Promise<Row> {
    const res = await owner.query<{ r: Row }>(
      `select row_to_json(t) as r from ${q(table)} t where ${keyOf(table)} = $1`,
      [t.rowIds[table]],
    );
    const original = res.rows[0]?.r;
    if (!original) throw new Error(`no fixture row of ${t.slug} in ${table}`);
    // Tables keyed by id get a new one; the others get their new key from the builder's variant 1.
    const freshId = keyOf(table) === 'id' ? { id: randomUUID() } : {};
    return { ...original, ...FIXTURES[table]!(t, 1), ...freshId, tenant_id: t.id };
  }

  beforeAll(async () => {
    owner = await ownerClient(config);
    orm = await createAppOrm(config);
    await writeFixture(A);
    await writeFixture(B);
    for (const table of ALL_RLS_TABLES) snapshotOfB[table] = await rowsOfB(table);
  });

  afterAll(async () => {
    try {
      if (owner) await owner.query('delete from tenants where id = any($1::uuid[])', [[A.id, B.id]]);
    } finally {
      await orm?.close(true);
      await owner?.end();
    }
  });

  it('has a fixture for exactly the tables in TENANT_OWNED_TABLES', () => {
    expect(Object.keys(FIXTURES).sort()).toEqual([...TABLES].sort());
    for (const table of TABLES)
      expect(inserted[table]).toEqual({
        [A.id]: table === 'contacts' ? 2 : 1,
        [B.id]: table === 'contacts' ? 2 : 1,
      });
  });

  describe('catalog', () => {
    it('lists every table with a tenant_id column in TENANT_OWNED_TABLES', async () => {
      const res = await owner.query<{ table_name: string }>(
        `select c.table_name from information_schema.columns c
           join information_schema.tables t using (table_schema, table_name)
          where c.table_schema = current_schema() and c.column_name = 'tenant_id' and t.table_type = 'BASE TABLE'
          order by 1`,
      );
      expect(res.rows.map((r) => r.table_name).sort()).toEqual([...TABLES].sort());
    });

    it('the app role is not a superuser and cannot bypass RLS', async () => {
      const res = await owner.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
        'select rolsuper, rolbypassrls from pg_roles where rolname = $1',
        [appRole],
      );
      expect(res.rows).toEqual([{ rolsuper: false, rolbypassrls: false }]);
    });

    it.each(ALL_RLS_TABLES)(
      '%s has RLS enabled, a tenant policy, and is not owned by the app role',
      async (table) => {
        const cls = await owner.query<{
          relrowsecurity: boolean;
          owner: string;
          app_has_owner_privs: boolean;
        }>(
          `select c.relrowsecurity, pg_get_userbyid(c.relowner) as owner, pg_has_role($2, c.relowner, 'USAGE') as app_has_owner_privs
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = current_schema() and c.relname = $1 and c.relkind = 'r'`,
          [table, appRole],
        );
        expect(cls.rows).toHaveLength(1);
        expect(cls.rows[0]!.relrowsecurity).toBe(true);
        expect(cls.rows[0]!.owner).not.toBe(appRole);
        // Membership in the owner role would also exempt the app role from RLS.
        expect(cls.rows[0]!.app_has_owner_privs).toBe(false);

        const policies = await owner.query<{
          policyname: string;
          permissive: string;
          qual: string | null;
          with_check: string | null;
        }>(
          'select policyname, permissive, qual, with_check from pg_policies where schemaname = current_schema() and tablename = $1',
          [table],
        );
        expect(policies.rows.map((p) => p.policyname)).toContain('tenant_isolation');
        const column = table === 'tenants' ? 'id' : 'tenant_id';
        // Permissive policies are OR-ed: any one that does not pin the tenant would open the table.
        for (const p of policies.rows.filter((p) => p.permissive === 'PERMISSIVE')) {
          expect(p.qual).toBe(`(${column} = parley_current_tenant())`);
          expect(p.with_check ?? p.qual).toBe(`(${column} = parley_current_tenant())`);
        }
      },
    );
  });

  describe.each(TABLES)('%s', (table) => {
    const denied = APPEND_ONLY.has(table);
    const key = keyOf(table);

    it("tenant A sees its own rows and none of tenant B's", async () => {
      await withTenant(orm, A.id, async (em) => {
        expect(await count(em, `select count(*) from ${q(table)} where tenant_id = ?`, [B.id])).toBe(0);
        expect(await count(em, `select count(*) from ${q(table)} where ${key} = ?`, [B.rowIds[table]])).toBe(
          0,
        );
        expect(await count(em, `select count(*) from ${q(table)} where ${key} = ?`, [A.rowIds[table]])).toBe(
          1,
        );
        // Unfiltered, only A's rows come back (not B's, nor those of tenants other test files create).
        expect(await rows(em, `select distinct tenant_id from ${q(table)}`)).toEqual([{ tenant_id: A.id }]);
        expect(await count(em, `select count(*) from ${q(table)}`)).toBe(inserted[table]![A.id]);
      });
    });

    /** Runs `verb ... where <B's rows> returning <key>` both ways; each must touch nothing (or be refused outright). */
    async function expectBUntouched(statement: (where: string) => string) {
      const attempts = [
        () => withTenant(orm, A.id, (em) => rows(em, statement('tenant_id = ?'), [B.id])),
        () => withTenant(orm, A.id, (em) => rows(em, statement(`${key} = ?`), [B.rowIds[table]])),
      ];
      for (const attempt of attempts) {
        if (denied) await expect(attempt()).rejects.toThrow(/permission denied/);
        else expect(await attempt()).toEqual([]);
      }
    }

    it("tenant A cannot update tenant B's rows", () =>
      expectBUntouched(
        (where) => `update ${q(table)} set tenant_id = tenant_id where ${where} returning ${key}`,
      ));

    it('tenant A cannot move its own row into tenant B', async () => {
      const move = withTenant(orm, A.id, (em) =>
        rows(em, `update ${q(table)} set tenant_id = ? where ${key} = ? returning ${key}`, [
          B.id,
          A.rowIds[table],
        ]),
      );
      await expect(move).rejects.toThrow(denied ? /permission denied/ : /row-level security/);
    });

    it("tenant A cannot delete tenant B's rows", () =>
      expectBUntouched((where) => `delete from ${q(table)} where ${where} returning ${key}`));

    it('tenant A cannot insert a row for tenant B (an otherwise valid row)', async () => {
      const copy = await copyOf(B, table);
      const json = JSON.stringify(copy);

      // Control 1: the very same row is valid (constraints, foreign keys) — the owner can insert it.
      await owner.query('begin');
      try {
        const res = await owner.query(insertCopySql(table, '$1'), [json]);
        expect(res.rowCount).toBe(1);
      } finally {
        await owner.query('rollback');
      }
      // Control 2: the app role may insert into this table for its own tenant (rolled back).
      const own = JSON.stringify(await copyOf(A, table));
      await expect(
        withTenant(orm, A.id, async (em) => {
          expect(await rows(em, insertCopySql(table, '?'), [own])).toHaveLength(1);
          throw new Rollback('roll back the control insert');
        }),
      ).rejects.toBeInstanceOf(Rollback);

      // The attack: the same row as B's, inserted with A's context.
      await expect(
        withTenant(orm, A.id, (em) => rows(em, insertCopySql(table, '?'), [json])),
      ).rejects.toThrow(/row-level security/);
      const after = await owner.query(`select 1 from ${q(table)} where ${key} = $1`, [copy[key]]);
      expect(after.rowCount).toBe(0);
    });

    it('with no tenant set, the app role sees no rows at all', async () => {
      // The pool has one connection, so this runs on the very connection that just had A set.
      await withTenant(orm, A.id, (em) => rows(em, 'select 1'));
      const seen = await orm.em.fork().transactional(async (em) => ({
        setting: (
          await rows<{ t: string | null }>(em, "select current_setting('app.tenant_id', true) as t")
        )[0]?.t,
        all: await count(em, `select count(*) from ${q(table)}`),
        b: await count(em, `select count(*) from ${q(table)} where tenant_id = ?`, [B.id]),
      }));
      expect(seen.setting ?? '').toBe('');
      expect(seen).toMatchObject({ all: 0, b: 0 });
      // Outside any transaction too.
      expect(await count(orm.em.fork(), `select count(*) from ${q(table)}`)).toBe(0);
      // …although the rows exist.
      const real = await owner.query<{ count: string }>(
        `select count(*) from ${q(table)} where tenant_id = any($1::uuid[])`,
        [[A.id, B.id]],
      );
      expect(Number(real.rows[0]!.count)).toBe(inserted[table]![A.id]! + inserted[table]![B.id]!);
    });
  });

  describe('tenants', () => {
    it('tenant A sees its own tenant row and not tenant B', async () => {
      await withTenant(orm, A.id, async (em) => {
        expect(await rows(em, 'select * from tenants where id = ?', [B.id])).toEqual([]);
        expect(await rows(em, 'select * from tenants where slug = ?', [B.slug])).toEqual([]);
        expect(await rows(em, 'select id from tenants')).toEqual([{ id: A.id }]);
      });
    });

    it('tenant A cannot update or delete tenant B', async () => {
      expect(
        await withTenant(orm, A.id, (em) =>
          rows(em, "update tenants set name = 'pwned' where id = ? returning id", [B.id]),
        ),
      ).toEqual([]);
      expect(
        await withTenant(orm, A.id, (em) => rows(em, "update tenants set status = 'suspended' returning id")),
      ).toEqual([{ id: A.id }]);
      expect(
        await withTenant(orm, A.id, (em) =>
          rows(em, 'delete from tenants where id = ? returning id', [B.id]),
        ),
      ).toEqual([]);
    });

    it('tenant A cannot create another tenant or re-key its own', async () => {
      await expect(
        withTenant(orm, A.id, (em) =>
          rows(em, "insert into tenants (id, name, slug) values (?, 'x', ?) returning id", [
            randomUUID(),
            `rls-x-${A.tag}`,
          ]),
        ),
      ).rejects.toThrow(/row-level security/);
      await expect(
        withTenant(orm, A.id, (em) =>
          rows(em, 'update tenants set id = ? where id = ? returning id', [randomUUID(), A.id]),
        ),
      ).rejects.toThrow(/row-level security/);
    });

    it('with no tenant set, no tenant is visible', async () => {
      expect(await orm.em.fork().transactional((em) => count(em, 'select count(*) from tenants'))).toBe(0);
    });
  });

  describe("tenant B's data after every attack (as owner)", () => {
    it.each(ALL_RLS_TABLES)("%s: all of B's rows are present and unchanged", async (table) => {
      const now = await rowsOfB(table);
      expect(now).toHaveLength(table === 'tenants' ? 1 : inserted[table]![B.id]!);
      expect(now).toEqual(snapshotOfB[table]);
    });
  });
});
