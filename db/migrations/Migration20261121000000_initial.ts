/**
 * Initial schema: every table, tenant-scoped composite foreign keys (a row can only point at rows
 * of its own tenant), row-level security on every tenant-owned table, and the one narrow
 * SECURITY DEFINER lookup that sign-in needs before a tenant is known.
 */
import { Migration } from '@mikro-orm/migrations';

const TENANT_OWNED = [
  'users',
  'api_keys',
  'agents',
  'agent_versions',
  'phone_numbers',
  'contacts',
  'calls',
  'call_turns',
  'campaigns',
  'campaign_contacts',
  'integrations',
  'crm_sync_records',
  'usage_records',
  'webhook_endpoints',
  'audit_log',
];

export class Migration20261121000000_initial extends Migration {
  override up(): void {
    this.addSql(`
      create function parley_current_tenant() returns uuid
        language sql stable
        as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;`);

    this.addSql(`
      create table tenants (
        id uuid primary key default gen_random_uuid(),
        name text not null check (length(name) between 1 and 200),
        slug text not null unique,
        status text not null default 'provisioning' check (status in ('provisioning','active','suspended')),
        plan text not null default 'free' check (plan in ('free','pro','enterprise')),
        time_zone text not null default 'UTC',
        default_region text not null default 'US',
        settings jsonb not null default '{}',
        stripe_customer_id text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );`);

    this.addSql(`
      create table users (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        email text not null,
        name text not null,
        password_hash text not null,
        role text not null check (role in ('owner','admin','designer','campaign_manager','viewer')),
        disabled_at timestamptz,
        last_login_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, id)
      );
      create unique index users_tenant_email_unique on users (tenant_id, lower(email));
      create index users_email_idx on users (lower(email));`);

    this.addSql(`
      create table api_keys (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        name text not null,
        prefix text not null,
        key_hash text not null unique,
        role text not null check (role in ('owner','admin','designer','campaign_manager','viewer')),
        created_by_user_id uuid,
        last_used_at timestamptz,
        revoked_at timestamptz,
        created_at timestamptz not null default now(),
        foreign key (tenant_id, created_by_user_id) references users (tenant_id, id) on delete set null (created_by_user_id)
      );`);

    this.addSql(`
      create table agents (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        name text not null,
        description text,
        draft jsonb not null default '{}',
        published_version_id uuid,
        archived_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, id)
      );
      create table agent_versions (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        agent_id uuid not null,
        version integer not null check (version > 0),
        definition jsonb not null,
        published_by_user_id uuid,
        created_at timestamptz not null default now(),
        unique (tenant_id, id),
        unique (agent_id, version),
        foreign key (tenant_id, agent_id) references agents (tenant_id, id) on delete cascade
      );
      alter table agents add foreign key (tenant_id, published_version_id)
        references agent_versions (tenant_id, id) on delete set null (published_version_id) deferrable initially deferred;`);

    this.addSql(`
      create table phone_numbers (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        e164 text not null unique check (e164 ~ '^\\+[1-9][0-9]{6,14}$'),
        provider text not null default 'twilio',
        provider_sid text,
        label text,
        agent_id uuid,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, id),
        foreign key (tenant_id, agent_id) references agents (tenant_id, id) on delete set null (agent_id)
      );`);

    this.addSql(`
      create table contacts (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        phone_e164 text not null check (phone_e164 ~ '^\\+[1-9][0-9]{6,14}$'),
        name text,
        email text,
        time_zone text,
        attributes jsonb not null default '{}',
        do_not_call boolean not null default false,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, id),
        unique (tenant_id, phone_e164)
      );`);

    this.addSql(`
      create table campaigns (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        name text not null,
        agent_id uuid not null,
        agent_version_id uuid,
        caller_number_id uuid,
        status text not null default 'draft',
        settings jsonb not null default '{}',
        starts_at timestamptz,
        ends_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, id),
        foreign key (tenant_id, agent_id) references agents (tenant_id, id),
        foreign key (tenant_id, agent_version_id) references agent_versions (tenant_id, id),
        foreign key (tenant_id, caller_number_id) references phone_numbers (tenant_id, id)
      );
      create table campaign_contacts (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        campaign_id uuid not null,
        contact_id uuid not null,
        status text not null default 'pending',
        attempts integer not null default 0,
        last_outcome text,
        next_attempt_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (campaign_id, contact_id),
        foreign key (tenant_id, campaign_id) references campaigns (tenant_id, id) on delete cascade,
        foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
      );
      create index campaign_contacts_progress_idx on campaign_contacts (campaign_id, status);`);

    this.addSql(`
      create table calls (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        agent_id uuid,
        agent_version_id uuid,
        campaign_id uuid,
        contact_id uuid,
        direction text not null check (direction in ('inbound','outbound')),
        channel text not null check (channel in ('voice','text','web')),
        from_number text,
        to_number text,
        provider_call_sid text unique,
        workflow_id text not null unique,
        status text not null,
        disposition text,
        started_at timestamptz,
        answered_at timestamptz,
        ended_at timestamptz,
        duration_seconds integer,
        summary text,
        analysis jsonb,
        crm_sync_status text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, id),
        foreign key (tenant_id, agent_id) references agents (tenant_id, id) on delete set null (agent_id),
        foreign key (tenant_id, agent_version_id) references agent_versions (tenant_id, id),
        foreign key (tenant_id, campaign_id) references campaigns (tenant_id, id) on delete set null (campaign_id),
        foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete set null (contact_id)
      );
      create index calls_tenant_created_idx on calls (tenant_id, created_at desc);
      create table call_turns (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        call_id uuid not null,
        seq integer not null,
        role text not null check (role in ('caller','agent','system','tool')),
        text text not null,
        heard_text text,
        interrupted boolean not null default false,
        node_id text,
        timings jsonb,
        created_at timestamptz not null default now(),
        unique (call_id, seq),
        foreign key (tenant_id, call_id) references calls (tenant_id, id) on delete cascade
      );`);

    this.addSql(`
      create table integrations (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        provider text not null check (provider in ('hubspot','salesforce')),
        status text not null default 'connected',
        credentials_ciphertext text not null,
        credentials_key_id text not null,
        settings jsonb not null default '{}',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, provider)
      );
      create table crm_sync_records (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        call_id uuid not null,
        provider text not null check (provider in ('hubspot','salesforce')),
        status text not null default 'pending',
        external_id text,
        error text,
        attempts integer not null default 0,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (call_id, provider),
        foreign key (tenant_id, call_id) references calls (tenant_id, id) on delete cascade
      );`);

    this.addSql(`
      create table usage_records (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        call_id uuid,
        kind text not null,
        quantity integer not null check (quantity >= 0),
        llm_tokens integer not null default 0,
        period_start timestamptz not null,
        reported_at timestamptz,
        created_at timestamptz not null default now(),
        unique (call_id, kind),
        foreign key (tenant_id, call_id) references calls (tenant_id, id) on delete set null (call_id)
      );
      create index usage_records_unreported_idx on usage_records (tenant_id, period_start) where reported_at is null;
      create table webhook_endpoints (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        url text not null,
        secret_ciphertext text not null,
        events text[] not null default '{}',
        enabled boolean not null default true,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create table audit_log (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        actor_type text not null check (actor_type in ('user','api_key','system')),
        actor_id text,
        action text not null,
        target_type text not null,
        target_id text,
        before jsonb,
        after jsonb,
        ip text,
        created_at timestamptz not null default now()
      );
      create index audit_log_tenant_created_idx on audit_log (tenant_id, created_at desc);`);

    // Row-level security. The app role does not own these tables, so the policies bind it;
    // with no tenant set, parley_current_tenant() is null and nothing matches.
    this.addSql(`
      alter table tenants enable row level security;
      create policy tenant_isolation on tenants
        using (id = parley_current_tenant()) with check (id = parley_current_tenant());`);
    for (const table of TENANT_OWNED) {
      this.addSql(`
        alter table ${table} enable row level security;
        create policy tenant_isolation on ${table}
          using (tenant_id = parley_current_tenant()) with check (tenant_id = parley_current_tenant());`);
    }

    // Sign-in happens before a tenant is known: this returns only what a password check needs.
    this.addSql(`
      create function parley_login_candidates(p_email text)
        returns table (user_id uuid, tenant_id uuid, tenant_name text, tenant_status text,
                       password_hash text, role text, disabled_at timestamptz)
        language sql stable security definer set search_path = public, pg_temp
        as $$
          select u.id, u.tenant_id, t.name, t.status, u.password_hash, u.role, u.disabled_at
          from users u join tenants t on t.id = u.tenant_id
          where lower(u.email) = lower(p_email)
          order by u.created_at
        $$;
      revoke all on function parley_login_candidates(text) from public;`);
  }

  override down(): void {
    this.addSql('drop function if exists parley_login_candidates(text);');
    for (const table of [...TENANT_OWNED].reverse()) this.addSql(`drop table if exists ${table} cascade;`);
    this.addSql('drop table if exists tenants cascade;');
    this.addSql('drop function if exists parley_current_tenant();');
  }
}
