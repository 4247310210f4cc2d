/**
 * CRM sync and billing: what each integration last did, every call's sync per provider (with the
 * provider's message when it refused), CRM imports checkpointed page by page, and the billing side —
 * one row per tenant and period (what was metered, the overage, the invoice, dunning), the Stripe
 * subscription, and the tenant's billing standing that gates outbound calling.
 */
import { Migration } from '@mikro-orm/migrations';

const NEW_TENANT_OWNED = ['crm_imports', 'billing_periods'];

export class Migration20261124000000_crm_billing extends Migration {
  override up(): void {
    this.addSql(`
      alter table integrations
        add column account text,
        add column last_tested_at timestamptz,
        add column last_error text,
        add constraint integrations_status_check check (status in ('connected', 'error', 'disconnected'));
      alter table crm_sync_records
        add column contact_external_id text,
        add column contact_created boolean not null default false,
        add column error_code text,
        add column synced_at timestamptz,
        add constraint crm_sync_records_status_check check (status in ('pending', 'synced', 'failed', 'skipped'));
      create index crm_sync_records_failed_idx on crm_sync_records (tenant_id, updated_at desc)
        where status = 'failed';
      create table crm_imports (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        provider text not null check (provider in ('hubspot', 'salesforce')),
        source jsonb not null,
        contact_list_id uuid not null,
        status text not null default 'running' check (status in ('running', 'completed', 'failed')),
        cursor text,
        pages integer not null default 0,
        imported integer not null default 0,
        duplicates integer not null default 0,
        invalid integer not null default 0,
        error text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        finished_at timestamptz,
        foreign key (tenant_id, contact_list_id) references contact_lists (tenant_id, id) on delete cascade
      );`);

    this.addSql(`
      alter table tenants
        add column stripe_subscription_id text,
        add column billing_status text not null default 'active'
          check (billing_status in ('active', 'past_due', 'suspended')),
        add column outbound_suspended_at timestamptz;
      alter table campaigns add column paused_by text;
      alter table usage_records add column billable_quantity integer;
      create table billing_periods (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references tenants(id) on delete cascade,
        period text not null check (period ~ '^[0-9]{4}-[0-9]{2}$'),
        period_start timestamptz not null,
        period_end timestamptz not null,
        status text not null default 'closing'
          check (status in ('closing', 'invoiced', 'paid', 'past_due', 'suspended', 'void')),
        plan text not null,
        billable_seconds bigint not null default 0,
        included_seconds bigint not null default 0,
        overage_seconds bigint not null default 0,
        overage_amount_cents bigint not null default 0,
        llm_tokens bigint not null default 0,
        usage_records integer not null default 0,
        resent_usage_records integer not null default 0,
        stripe_metered_seconds bigint,
        meter_discrepancy_seconds bigint,
        stripe_invoice_item_id text,
        stripe_invoice_id text,
        invoice_status text,
        payment_failures integer not null default 0,
        last_payment_error text,
        closed_at timestamptz,
        paid_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, period)
      );`);

    for (const table of NEW_TENANT_OWNED) {
      this.addSql(`
        alter table ${table} enable row level security;
        create policy tenant_isolation on ${table}
          using (tenant_id = parley_current_tenant()) with check (tenant_id = parley_current_tenant());`);
    }

    // A Stripe webhook names an invoice before Parley knows its tenant.
    this.addSql(`
      create function parley_billing_period_by_invoice(p_invoice_id text)
        returns table (tenant_id uuid, period text)
        language sql stable security definer set search_path = public, pg_temp
        as $$
          select b.tenant_id, b.period from billing_periods b where b.stripe_invoice_id = p_invoice_id
        $$;
      revoke all on function parley_billing_period_by_invoice(text) from public;`);
  }

  override down(): void {
    this.addSql('drop function if exists parley_billing_period_by_invoice(text);');
    this.addSql('drop table if exists billing_periods;');
    this.addSql('alter table usage_records drop column billable_quantity;');
    this.addSql('alter table campaigns drop column paused_by;');
    this.addSql(
      'alter table tenants drop column stripe_subscription_id, drop column billing_status, drop column outbound_suspended_at;',
    );
    this.addSql('drop table if exists crm_imports;');
    this.addSql(`
      drop index if exists crm_sync_records_failed_idx;
      alter table crm_sync_records drop constraint crm_sync_records_status_check,
        drop column contact_external_id, drop column contact_created, drop column error_code, drop column synced_at;
      alter table integrations drop constraint integrations_status_check,
        drop column account, drop column last_tested_at, drop column last_error;`);
  }
}
