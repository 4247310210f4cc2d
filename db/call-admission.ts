/**
 * Admission control for live calls (phone and browser): under a per-tenant advisory lock, count the
 * tenant's live calls and either record the new call as `ringing` or refuse it. The row is written
 * in the same transaction as the count, so a concurrent admission (another webhook, another api
 * instance) already sees it. The call workflow's own `recordCallStarted` later finds the row and
 * leaves it alone (`on conflict (id) do nothing`).
 *
 * A live call is one `ringing` or `in-progress` on the voice or web channel (text conversations
 * hold no line), started within the last five hours: no call outlives the longest allowed
 * (`maxCallDurationSeconds` ≤ 4 h), so a row left live by a workflow that was terminated by hand
 * stops holding a line. The predicate matches the partial index `calls_tenant_live_idx`.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { CallChannel, CallDirection } from '../contracts/call';

export interface NewCall {
  id: string;
  tenantId: string;
  workflowId: string;
  agentId: string;
  agentVersionId: string | null;
  direction: CallDirection;
  channel: CallChannel;
  from?: string;
  to?: string;
  providerCallSid?: string;
  /** Outbound campaign calls: who is dialled, for which campaign, under which attempt key. */
  contactId?: string;
  campaignId?: string;
  attemptKey?: string;
}

export type Admission =
  /** A new row, status `ringing`. */
  | { outcome: 'admitted' }
  /** Over the limit; with `recorded`, a `rejected` row now says so in the calls list. */
  | { outcome: 'rejected'; limit: number; live: number; recorded: boolean }
  /** The row was there already (a retried webhook): whatever was decided then stands. */
  | { outcome: 'existing'; status: string };

/**
 * Admits or refuses `call` inside the caller's tenant transaction (`withTenant`). The lock is
 * transaction-scoped, so it is released by the commit that makes the new row visible.
 */
export async function admitCall(
  em: EntityManager,
  call: NewCall,
  options: { limit: number; recordRejection: boolean },
): Promise<Admission> {
  await em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [
    `call-admission:${call.tenantId}`,
  ]);
  const [seen] = await em.execute<{ live: number; existing: string | null }[]>(
    `select (select count(*)::int from calls
              where tenant_id = ? and status in ('ringing', 'in-progress') and channel in ('voice', 'web')
                and coalesce(started_at, created_at) > now() - interval '5 hours') as live,
            (select status from calls where id = ?) as existing`,
    [call.tenantId, call.id],
  );
  if (seen?.existing) return { outcome: 'existing', status: seen.existing };
  const live = seen?.live ?? 0;
  const admitted = live < options.limit;
  if (!admitted && !options.recordRejection) {
    return { outcome: 'rejected', limit: options.limit, live, recorded: false };
  }
  await em.execute(
    `insert into calls (id, tenant_id, workflow_id, agent_id, agent_version_id, direction, channel,
       from_number, to_number, provider_call_sid, contact_id, campaign_id, attempt_key, status, disposition,
       end_reason, started_at, ended_at)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ${admitted ? 'null' : 'now()'})`,
    [
      call.id,
      call.tenantId,
      call.workflowId,
      call.agentId,
      call.agentVersionId,
      call.direction,
      call.channel,
      call.from ?? null,
      call.to ?? null,
      call.providerCallSid ?? null,
      call.contactId ?? null,
      call.campaignId ?? null,
      call.attemptKey ?? null,
      admitted ? 'ringing' : 'rejected',
      admitted ? null : 'rejected',
      admitted ? null : 'concurrency_limit',
    ],
  );
  return admitted
    ? { outcome: 'admitted' }
    : { outcome: 'rejected', limit: options.limit, live, recorded: true };
}

/** An admitted call whose workflow could not be started: it frees its line and says why. */
export async function markCallFailed(em: EntityManager, callId: string, reason: string): Promise<void> {
  await em.execute(
    `update calls set status = 'failed', disposition = 'failed', end_reason = ?, ended_at = now(), updated_at = now()
      where id = ? and status in ('ringing', 'in-progress')`,
    [reason, callId],
  );
}
