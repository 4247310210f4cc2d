/**
 * Phone calls: where a call's recording lives, an index for counting a tenant's live calls at
 * admission, and the two narrow SECURITY DEFINER lookups Twilio's webhooks need before a tenant is
 * known (which tenant owns a dialled number; which call a CallSid belongs to). Like
 * parley_login_candidates, each returns only the columns its caller needs, and only the app role
 * may execute it (granted in db/migrate.ts).
 *
 * phone_numbers.e164 is already globally unique (constraint phone_numbers_e164_key, initial
 * migration): a number routes to one tenant only.
 */
import { Migration } from '@mikro-orm/migrations';

export class Migration20261122000000_voice extends Migration {
  override up(): void {
    this.addSql(`
      alter table calls
        add column recording_path text,
        add column recording_seconds double precision check (recording_seconds >= 0);
      create index calls_tenant_live_idx on calls (tenant_id) where status in ('ringing', 'in-progress');`);

    // The inbound voice webhook: number → tenant, its plan and settings, and the agent's published
    // version (null when the agent is archived or unpublished), in one round trip.
    this.addSql(`
      create function parley_phone_route(p_e164 text)
        returns table (tenant_id uuid, tenant_status text, tenant_plan text, tenant_settings jsonb,
                       tenant_time_zone text, phone_number_id uuid, agent_id uuid, agent_version_id uuid)
        language sql stable security definer set search_path = public, pg_temp
        as $$
          select t.id, t.status, t.plan, t.settings, t.time_zone, p.id, a.id, a.published_version_id
          from phone_numbers p
          join tenants t on t.id = p.tenant_id
          left join agents a on a.tenant_id = p.tenant_id and a.id = p.agent_id and a.archived_at is null
          where p.e164 = p_e164
        $$;
      revoke all on function parley_phone_route(text) from public;`);

    // Outbound calls answered, and any callback that names a CallSid.
    this.addSql(`
      create function parley_call_by_provider_sid(p_sid text)
        returns table (tenant_id uuid, call_id uuid, workflow_id text, status text)
        language sql stable security definer set search_path = public, pg_temp
        as $$
          select c.tenant_id, c.id, c.workflow_id, c.status
          from calls c
          where c.provider_call_sid = p_sid
        $$;
      revoke all on function parley_call_by_provider_sid(text) from public;`);
  }

  override down(): void {
    this.addSql('drop function if exists parley_call_by_provider_sid(text);');
    this.addSql('drop function if exists parley_phone_route(text);');
    this.addSql('drop index if exists calls_tenant_live_idx;');
    this.addSql('alter table calls drop column recording_path, drop column recording_seconds;');
  }
}
