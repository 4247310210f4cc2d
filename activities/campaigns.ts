/**
 * A campaign's bookkeeping in PostgreSQL, which is also its work queue: claiming the contacts that
 * are due (and inside their calling window), opening an attempt (Do-Not-Call, campaign state and the
 * tenant's line quota checked in the same transaction that records the call), recording outcomes
 * and a contact's final state. Every activity is safe to retry: claims are keyed by a token from
 * the workflow, attempts by the call id the workflow chose.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { nextCallingWindow, isTimeZone } from '../contracts/calling-windows';
import {
  attemptKey as makeAttemptKey,
  FINAL_CONTACT_STATUSES,
  type CampaignContactStatus,
  type CampaignCounts,
  type CampaignSettings,
  type CampaignStatus,
  type DialTarget,
} from '../contracts/campaign';
import { callWorkflowId } from '../contracts/call';
import { concurrentCallLimit } from '../contracts/plans';
import { admitCall } from '../db/call-admission';
import { isDoNotCall } from '../db/do-not-call';
import { withTenant } from '../db/tenant-context';

export interface CampaignActivityDeps {
  orm: MikroORM;
}

export interface ClaimContactsInput {
  tenantId: string;
  campaignId: string;
  /** Deterministic per page of a workflow run: a retried claim returns the same contacts. */
  claimToken: string;
  limit: number;
  windows: CampaignSettings['windows'];
  defaultTimeZone: string;
  endsAt?: string;
}

export interface ClaimedContact {
  contactId: string;
  attemptsMade: number;
}

export interface ClaimContactsResult {
  claimed: ClaimedContact[];
  /** Contacts still waiting (pending or scheduled), not counting those just claimed. */
  waiting: number;
  /** Earliest next_attempt_at of a scheduled contact (ISO), or null. */
  nextDueAt: string | null;
}

export type BeginAttemptResult =
  | { outcome: 'admitted'; attempt: number; attemptKey: string; target: DialTarget }
  /** On the tenant's or the campaign's Do-Not-Call list: never dialled. */
  | { outcome: 'dnc' }
  /** The campaign is paused or over: no dial now. */
  | { outcome: 'paused' }
  | { outcome: 'canceled' }
  /** The tenant is at its concurrent-call limit (or suspended): try again later. */
  | { outcome: 'quota'; retryAfterSeconds: number; reason: string };

const CLAIM_SCAN_ROUNDS = 5;

function placeholders(values: readonly unknown[]): string {
  return values.map(() => '?').join(', ');
}

interface ContactRow {
  id: string;
  tenant_id: string;
  phone_e164: string;
  name: string | null;
  email: string | null;
  time_zone: string | null;
  attributes: Record<string, unknown> | null;
}

/** `{{contact.x}}` variables: the custom attributes, then the contact's own fields over them. */
export function contactVariables(row: ContactRow): Record<string, unknown> {
  const name = row.name ?? '';
  const [firstName = '', ...rest] = name.trim().split(/\s+/);
  return {
    ...(row.attributes ?? {}),
    name,
    firstName,
    lastName: rest.join(' '),
    email: row.email ?? '',
    phone: row.phone_e164,
    timeZone: row.time_zone ?? '',
  };
}

export function createCampaignActivities({ orm }: CampaignActivityDeps) {
  return {
    /**
     * Hands out up to `limit` contacts that are due and inside their calling window, marking them
     * `in_progress` under the claim token. Due contacts whose window is closed are rescheduled to
     * its opening (or end `expired` when it opens after the campaign ends), without being claimed.
     */
    async claimCampaignContacts(input: ClaimContactsInput): Promise<ClaimContactsResult> {
      return withTenant(orm, input.tenantId, async (em) => {
        const already = await em.execute<{ contact_id: string; attempts: number }[]>(
          `select contact_id, attempts from campaign_contacts
            where campaign_id = ? and claim_token = ? and status = 'in_progress'`,
          [input.campaignId, input.claimToken],
        );
        const claimed: ClaimedContact[] = already.map((r) => ({
          contactId: r.contact_id,
          attemptsMade: r.attempts,
        }));
        const now = Date.now();
        const endsAt = input.endsAt ? Date.parse(input.endsAt) : undefined;
        for (let round = 0; already.length === 0 && round < CLAIM_SCAN_ROUNDS; round += 1) {
          const want = input.limit - claimed.length;
          if (want <= 0) break;
          const due = await em.execute<
            { id: string; contact_id: string; attempts: number; time_zone: string | null }[]
          >(
            `select cc.id, cc.contact_id, cc.attempts, c.time_zone
               from campaign_contacts cc
               join contacts c on c.tenant_id = cc.tenant_id and c.id = cc.contact_id
              where cc.campaign_id = ?
                and (cc.status = 'pending' or (cc.status = 'scheduled' and cc.next_attempt_at <= now()))
              order by cc.next_attempt_at asc nulls first, cc.id
              limit ?
              for update of cc skip locked`,
            [input.campaignId, Math.max(want * 2, 20)],
          );
          if (due.length === 0) break;
          const take: string[] = [];
          const expire: string[] = [];
          const later = new Map<number, string[]>();
          for (const row of due) {
            const zone = row.time_zone && isTimeZone(row.time_zone) ? row.time_zone : input.defaultTimeZone;
            const span = nextCallingWindow(now, zone, input.windows);
            if (!span || (endsAt !== undefined && span.opensAt >= endsAt)) expire.push(row.id);
            else if (span.opensAt > now)
              later.set(span.opensAt, [...(later.get(span.opensAt) ?? []), row.id]);
            else if (take.length < want) {
              take.push(row.id);
              claimed.push({ contactId: row.contact_id, attemptsMade: row.attempts });
            }
          }
          if (take.length > 0) {
            await em.execute(
              `update campaign_contacts set status = 'in_progress', claim_token = ?, updated_at = now()
                where id in (${placeholders(take)})`,
              [input.claimToken, ...take],
            );
          }
          if (expire.length > 0) {
            await em.execute(
              `update campaign_contacts
                  set status = 'expired', last_outcome = coalesce(last_outcome, 'window_never_opened'),
                      next_attempt_at = null, final_at = now(), updated_at = now()
                where id in (${placeholders(expire)})`,
              expire,
            );
          }
          for (const [opensAt, ids] of later) {
            await em.execute(
              `update campaign_contacts set status = 'scheduled', next_attempt_at = ?, updated_at = now()
                where id in (${placeholders(ids)})`,
              [new Date(opensAt).toISOString(), ...ids],
            );
          }
        }
        const [open] = await em.execute<{ waiting: number; next_due_at: Date | null }[]>(
          `select count(*)::int as waiting,
                  min(next_attempt_at) filter (where status = 'scheduled') as next_due_at
             from campaign_contacts where campaign_id = ? and status in ('pending', 'scheduled')`,
          [input.campaignId],
        );
        return {
          claimed,
          waiting: open?.waiting ?? 0,
          nextDueAt: open?.next_due_at ? new Date(open.next_due_at).toISOString() : null,
        };
      });
    },

    /** The contact as the campaign dials it (null when it has been deleted meanwhile). */
    async loadDialTarget(input: { tenantId: string; contactId: string }): Promise<DialTarget | null> {
      return withTenant(orm, input.tenantId, async (em) => {
        const [contact] = await em.execute<ContactRow[]>(
          `select id, tenant_id, phone_e164, name, email, time_zone, attributes from contacts where id = ?`,
          [input.contactId],
        );
        return contact
          ? {
              contactId: contact.id,
              phone: contact.phone_e164,
              timeZone: contact.time_zone,
              variables: contactVariables(contact),
            }
          : null;
      });
    },

    /**
     * Opens attempt `callId` of a contact: the campaign must still be running, the number must not
     * be on a Do-Not-Call list, and the tenant must have a free line; then the call row (outbound,
     * `ringing`) and the attempt row are written in the same transaction as the line count.
     * Repeating it with the same call id returns the attempt it opened.
     */
    async beginCampaignAttempt(input: {
      tenantId: string;
      campaignId: string;
      contactId: string;
      callId: string;
      agentId: string;
      agentVersionId: string;
      callerId: string;
    }): Promise<BeginAttemptResult> {
      return withTenant(orm, input.tenantId, async (em) => {
        const [contact] = await em.execute<ContactRow[]>(
          `select id, tenant_id, phone_e164, name, email, time_zone, attributes from contacts where id = ?`,
          [input.contactId],
        );
        if (!contact) return { outcome: 'canceled' };
        const target: DialTarget = {
          contactId: contact.id,
          phone: contact.phone_e164,
          timeZone: contact.time_zone,
          variables: contactVariables(contact),
        };
        const [existing] = await em.execute<{ attempt: number; attempt_key: string }[]>(
          `select attempt, attempt_key from campaign_attempts where call_id = ?`,
          [input.callId],
        );
        if (existing) {
          return { outcome: 'admitted', attempt: existing.attempt, attemptKey: existing.attempt_key, target };
        }
        const [campaign] = await em.execute<{ status: CampaignStatus }[]>(
          `select status from campaigns where id = ?`,
          [input.campaignId],
        );
        if (!campaign || campaign.status !== 'running') {
          return { outcome: campaign?.status === 'paused' ? 'paused' : 'canceled' };
        }
        if (await isDoNotCall(em, contact.phone_e164)) return { outcome: 'dnc' };
        const [tenant] = await em.execute<
          { status: string; plan: string; settings: Record<string, unknown> | null; billing_status: string }[]
        >(`select status, plan, settings, billing_status from tenants where id = ?`, [input.tenantId]);
        if (tenant?.billing_status === 'suspended') {
          return {
            outcome: 'quota',
            retryAfterSeconds: 300,
            reason: 'outbound calling is suspended for an unpaid invoice',
          };
        }
        if (!tenant || tenant.status !== 'active') {
          return {
            outcome: 'quota',
            retryAfterSeconds: 60,
            reason: `the tenant is ${tenant?.status ?? 'gone'}`,
          };
        }
        const [next] = await em.execute<{ attempt: number }[]>(
          `select coalesce(max(attempt), 0) + 1 as attempt from campaign_attempts
            where campaign_id = ? and contact_id = ?`,
          [input.campaignId, input.contactId],
        );
        const attempt = next?.attempt ?? 1;
        const key = makeAttemptKey(input.campaignId, input.contactId, attempt);
        const limit = concurrentCallLimit(tenant.plan, tenant.settings);
        const admission = await admitCall(
          em,
          {
            id: input.callId,
            tenantId: input.tenantId,
            workflowId: callWorkflowId(input.callId),
            agentId: input.agentId,
            agentVersionId: input.agentVersionId,
            direction: 'outbound',
            channel: 'voice',
            from: input.callerId,
            to: contact.phone_e164,
            contactId: input.contactId,
            campaignId: input.campaignId,
            attemptKey: key,
          },
          { limit, recordRejection: false },
        );
        if (admission.outcome === 'rejected') {
          return {
            outcome: 'quota',
            // Lines free up within seconds; minutes and billing take an upgrade or a payment.
            retryAfterSeconds: admission.reason === 'concurrency_limit' ? 5 : 300,
            reason:
              admission.reason === 'concurrency_limit'
                ? `the tenant has ${admission.live} of ${admission.limit} lines in use`
                : admission.reason === 'minutes_exhausted'
                  ? "the plan's included minutes for the month are used up"
                  : 'outbound calling is suspended for an unpaid invoice',
          };
        }
        await em.execute(
          `insert into campaign_attempts (tenant_id, campaign_id, contact_id, attempt, attempt_key, call_id)
           values (?, ?, ?, ?, ?, ?) on conflict (attempt_key) do nothing`,
          [input.tenantId, input.campaignId, input.contactId, attempt, key, input.callId],
        );
        await em.execute(
          `update campaign_contacts set last_call_id = ?, updated_at = now()
            where campaign_id = ? and contact_id = ?`,
          [input.callId, input.campaignId, input.contactId],
        );
        return { outcome: 'admitted', attempt, attemptKey: key, target };
      });
    },

    /** The outcome of one attempt (the call's final status, or why it was never dialled). */
    async recordAttemptOutcome(input: {
      tenantId: string;
      callId: string;
      outcome: string;
      reason?: string;
      dialed: boolean;
    }): Promise<void> {
      await withTenant(orm, input.tenantId, (em) =>
        em.execute(
          `update campaign_attempts set outcome = ?, reason = ?, ended_at = coalesce(ended_at, now())
            where call_id = ?`,
          [input.dialed ? input.outcome : `not_dialed:${input.outcome}`, input.reason ?? null, input.callId],
        ),
      );
    },

    /** Where a contact stands when its workflow ends: final, parked until a time, or back to pending. */
    async finishCampaignContact(input: {
      tenantId: string;
      campaignId: string;
      contactId: string;
      status: CampaignContactStatus;
      attempts: number;
      lastOutcome?: string;
      nextAttemptAt?: string;
    }): Promise<void> {
      const final = FINAL_CONTACT_STATUSES.includes(input.status);
      await withTenant(orm, input.tenantId, (em) =>
        em.execute(
          `update campaign_contacts
              set status = ?, attempts = ?, last_outcome = coalesce(?, last_outcome), next_attempt_at = ?,
                  claim_token = null, final_at = ${final ? 'now()' : 'null'}, updated_at = now()
            where campaign_id = ? and contact_id = ?`,
          [
            input.status,
            input.attempts,
            input.lastOutcome ?? null,
            input.nextAttemptAt ?? null,
            input.campaignId,
            input.contactId,
          ],
        ),
      );
    },

    /** Contacts not yet handed out end with `status` (a canceled campaign, or one past its end). */
    async closeWaitingContacts(input: {
      tenantId: string;
      campaignId: string;
      status: 'canceled' | 'expired';
    }): Promise<number> {
      return withTenant(orm, input.tenantId, async (em) => {
        const rows = await em.execute<{ id: string }[]>(
          `update campaign_contacts set status = ?, next_attempt_at = null, final_at = now(), updated_at = now()
            where campaign_id = ? and status in ('pending', 'scheduled') returning id`,
          [input.status, input.campaignId],
        );
        return rows.length;
      });
    },

    /** The campaign row follows the workflow: status, settings after an edit, the final summary. */
    async saveCampaignState(input: {
      tenantId: string;
      campaignId: string;
      status?: CampaignStatus;
      settings?: CampaignSettings;
      summary?: unknown;
    }): Promise<void> {
      const final = input.status === 'completed' || input.status === 'canceled' || input.status === 'failed';
      await withTenant(orm, input.tenantId, (em) =>
        em.execute(
          `update campaigns
              set status = coalesce(?, status), settings = coalesce(?::jsonb, settings),
                  summary = coalesce(?::jsonb, summary),
                  finished_at = ${final ? 'coalesce(finished_at, now())' : 'finished_at'}, updated_at = now()
            where id = ?`,
          [
            input.status ?? null,
            input.settings ? JSON.stringify(input.settings) : null,
            input.summary === undefined ? null : JSON.stringify(input.summary),
            input.campaignId,
          ],
        ),
      );
    },

    /** Contacts per state and attempts made, from the tables (the summary's figures). */
    async campaignCounts(input: { tenantId: string; campaignId: string }): Promise<CampaignCounts> {
      return withTenant(orm, input.tenantId, async (em) => {
        const rows = await em.execute<{ status: CampaignContactStatus; n: number }[]>(
          `select status, count(*)::int as n from campaign_contacts where campaign_id = ? group by status`,
          [input.campaignId],
        );
        const [attempts] = await em.execute<{ n: number }[]>(
          `select count(*)::int as n from campaign_attempts
            where campaign_id = ? and outcome is not null and outcome not like 'not_dialed:%'`,
          [input.campaignId],
        );
        const counts: CampaignCounts = { attempts: attempts?.n ?? 0 };
        for (const row of rows) counts[row.status] = row.n;
        return counts;
      });
    },
  };
}

export type CampaignActivities = ReturnType<typeof createCampaignActivities>;
