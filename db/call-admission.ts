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
 *
 * The plan's quotas are checked in the same place: a plan without overage (free) takes no call
 * once its included minutes of the month (in the tenant's zone) are used, and a tenant whose
 * outbound calling billing suspended places no outbound call.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { CallChannel, CallDirection } from '../contracts/call';
import { planLimits } from '../contracts/plans';

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

/** Why a call was refused: lines in use, the month's included minutes used up, or billing suspension. */
export type AdmissionRefusal = 'concurrency_limit' | 'minutes_exhausted' | 'billing_suspended';

export type Admission =
  /** A new row, status `ringing`. */
  | { outcome: 'admitted' }
  /** Refused; with `recorded`, a `rejected` row now says so (and why) in the calls list. */
  | { outcome: 'rejected'; reason: AdmissionRefusal; limit: number; live: number; recorded: boolean }
  /** The row was there already (a retried webhook): whatever was decided then stands. */
  | { outcome: 'existing'; status: string; endReason: string | null };

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
  const [seen] = await em.execute<{ live: number; existing: string | null; end_reason: string | null }[]>(
    `select (select count(*)::int from calls
              where tenant_id = ? and status in ('ringing', 'in-progress') and channel in ('voice', 'web')
                and coalesce(started_at, created_at) > now() - interval '5 hours') as live,
            (select status from calls where id = ?) as existing,
            (select end_reason from calls where id = ?) as end_reason`,
    [call.tenantId, call.id, call.id],
  );
  if (seen?.existing) return { outcome: 'existing', status: seen.existing, endReason: seen.end_reason };
  const live = seen?.live ?? 0;
  const refusal: AdmissionRefusal | undefined =
    (await quotaRefusal(em, call.tenantId, call.direction)) ??
    (live < options.limit ? undefined : 'concurrency_limit');
  const admitted = refusal === undefined;
  if (refusal && !options.recordRejection) {
    return { outcome: 'rejected', reason: refusal, limit: options.limit, live, recorded: false };
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
      refusal ?? null,
    ],
  );
  return refusal
    ? { outcome: 'rejected', reason: refusal, limit: options.limit, live, recorded: true }
    : { outcome: 'admitted' };
}

/** The plan's quota or the billing standing, if either forbids a new call now. */
async function quotaRefusal(
  em: EntityManager,
  tenantId: string,
  direction: CallDirection,
): Promise<AdmissionRefusal | undefined> {
  const [tenant] = await em.execute<{ plan: string; billing_status: string; time_zone: string }[]>(
    `select plan, billing_status, time_zone from tenants where id = ?`,
    [tenantId],
  );
  if (!tenant) return undefined;
  if (direction === 'outbound' && tenant.billing_status === 'suspended') return 'billing_suspended';
  const limits = planLimits(tenant.plan);
  if (limits.overageCentsPerMinute !== null) return undefined;
  const [used] = await em.execute<{ seconds: string | null }[]>(
    `select sum(coalesce(billable_quantity, quantity)) as seconds from usage_records
      where tenant_id = ? and kind = 'call_seconds'
        and period_start >= (date_trunc('month', now() at time zone ?) at time zone ?)`,
    [tenantId, tenant.time_zone, tenant.time_zone],
  );
  return Number(used?.seconds ?? 0) >= limits.includedMinutes * 60 ? 'minutes_exhausted' : undefined;
}

/** An admitted call whose workflow could not be started: it frees its line and says why. */
export async function markCallFailed(em: EntityManager, callId: string, reason: string): Promise<void> {
  await em.execute(
    `update calls set status = 'failed', disposition = 'failed', end_reason = ?, ended_at = now(), updated_at = now()
      where id = ? and status in ('ringing', 'in-progress')`,
    [reason, callId],
  );
}
