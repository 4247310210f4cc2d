/**
 * Outbound campaigns: contact lists, the per-tenant Do-Not-Call list, every dial attempt of a
 * campaign, and what the dialer needs to find running campaigns before a tenant is known.
 *
 * campaign_contacts is the campaign's work queue: the campaign workflow claims due rows in pages
 * (status `pending`, or `scheduled` with `next_attempt_at` reached) under a claim token derived from
 * its run, so a retried claim returns the same rows and no contact is ever handed out twice.
 */
import { Migration } from '@mikro-orm/migrations';

const NEW_TENANT_OWNED = ['contact_lists', 'contact_list_members', 'do_not_call', 'campaign_attempts'];

export class Migration20261123000000_campaigns extends Migration {
  override up(): void {
    this.addSql(`
      create table contact_lists (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        name text not null check (length(name) between 1 and 200),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, id)
      );
      create table contact_list_members (
        tenant_id uuid not null references tenants(id) on delete cascade,
        list_id uuid not null,
        contact_id uuid not null,
        created_at timestamptz not null default now(),
        primary key (list_id, contact_id),
        foreign key (tenant_id, list_id) references contact_lists (tenant_id, id) on delete cascade,
        foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
      );
      create index contact_list_members_contact_idx on contact_list_members (contact_id);
      -- Contacts are listed newest first, page by page (cursor on created_at, id).
      create index contacts_tenant_created_idx on contacts (tenant_id, created_at desc, id desc);
      create table do_not_call (
        tenant_id uuid not null references tenants(id) on delete cascade,
        phone_e164 text not null check (phone_e164 ~ '^\\+[1-9][0-9]{6,14}$'),
        reason text,
        created_at timestamptz not null default now(),
        primary key (tenant_id, phone_e164)
      );`);

    this.addSql(`
      alter table campaigns
        add column contact_list_id uuid,
        add column launched_at timestamptz,
        add column finished_at timestamptz,
        add column summary jsonb,
        add foreign key (tenant_id, contact_list_id) references contact_lists (tenant_id, id) on delete set null (contact_list_id),
        add constraint campaigns_status_check
          check (status in ('draft','running','paused','completed','canceled','failed'));
      alter table campaign_contacts
        add column claim_token text,
        add column last_call_id uuid,
        add column final_at timestamptz,
        add constraint campaign_contacts_status_check
          check (status in ('pending','in_progress','scheduled','completed','voicemail','no_answer',
                            'busy','failed','dnc','canceled','expired'));
      create index campaign_contacts_due_idx on campaign_contacts (campaign_id, next_attempt_at)
        where status in ('pending', 'scheduled');
      create index campaign_contacts_claim_idx on campaign_contacts (campaign_id, claim_token)
        where claim_token is not null;
      create table campaign_attempts (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        campaign_id uuid not null,
        contact_id uuid not null,
        attempt integer not null check (attempt >= 1),
        attempt_key text not null unique,
        call_id uuid,
        outcome text,
        reason text,
        scheduled_for timestamptz,
        started_at timestamptz not null default now(),
        ended_at timestamptz,
        unique (campaign_id, contact_id, attempt),
        foreign key (tenant_id, campaign_id) references campaigns (tenant_id, id) on delete cascade,
        foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
      );
      alter table calls add column attempt_key text unique, add column dial_started_at timestamptz,
        add column answered_by text;`);

    for (const table of NEW_TENANT_OWNED) {
      this.addSql(`
        alter table ${table} enable row level security;
        create policy tenant_isolation on ${table}
          using (tenant_id = parley_current_tenant()) with check (tenant_id = parley_current_tenant());`);
    }

    // Callbacks that carry Parley's own call id (outbound calls: the id is in the callback URLs, so
    // an answer that races the CallSid being recorded still finds its call).
    this.addSql(`
      create function parley_call_by_id(p_id uuid)
        returns table (tenant_id uuid, call_id uuid, workflow_id text, status text, provider_call_sid text)
        language sql stable security definer set search_path = public, pg_temp
        as $$
          select c.tenant_id, c.id, c.workflow_id, c.status, c.provider_call_sid
          from calls c
          where c.id = p_id
        $$;
      revoke all on function parley_call_by_id(uuid) from public;`);

    // The dialer serves one rate-limited task queue per running campaign: it lists them across tenants.
    this.addSql(`
      create function parley_dialing_campaigns()
        returns table (campaign_id uuid, tenant_id uuid, max_calls_per_second double precision)
        language sql stable security definer set search_path = public, pg_temp
        as $$
          select c.id, c.tenant_id, coalesce((c.settings->>'maxCallsPerSecond')::double precision, 1)
          from campaigns c
          where c.status in ('running', 'paused')
        $$;
      revoke all on function parley_dialing_campaigns() from public;`);
  }

  override down(): void {
    this.addSql('drop function if exists parley_dialing_campaigns();');
    this.addSql('drop function if exists parley_call_by_id(uuid);');
    this.addSql(
      'alter table calls drop column attempt_key, drop column dial_started_at, drop column answered_by;',
    );
    this.addSql('drop table if exists campaign_attempts;');
    this.addSql(`
      drop index if exists campaign_contacts_claim_idx;
      drop index if exists campaign_contacts_due_idx;
      alter table campaign_contacts drop constraint campaign_contacts_status_check,
        drop column claim_token, drop column last_call_id, drop column final_at;
      alter table campaigns drop constraint campaigns_status_check,
        drop column contact_list_id, drop column launched_at, drop column finished_at, drop column summary;`);
    this.addSql('drop table if exists do_not_call;');
    this.addSql('drop index if exists contacts_tenant_created_idx;');
    this.addSql('drop table if exists contact_list_members;');
    this.addSql('drop table if exists contact_lists;');
  }
}
