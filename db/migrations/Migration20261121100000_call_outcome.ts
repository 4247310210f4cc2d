/** Calls keep the slots the conversation collected and why it ended, for the calls API and analysis. */
import { Migration } from '@mikro-orm/migrations';

export class Migration20261121100000_call_outcome extends Migration {
  override up(): void {
    this.addSql(`
      alter table calls
        add column slots jsonb not null default '{}',
        add column end_reason text,
        add column llm_tokens integer not null default 0;
      create index calls_tenant_agent_idx on calls (tenant_id, agent_id, created_at desc);
      create index call_turns_call_idx on call_turns (call_id, seq);`);
  }

  override down(): void {
    this.addSql('drop index if exists call_turns_call_idx; drop index if exists calls_tenant_agent_idx;');
    this.addSql('alter table calls drop column slots, drop column end_reason, drop column llm_tokens;');
  }
}
