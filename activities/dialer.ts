/**
 * Places outbound calls through Twilio (`calls.create`), at most once per attempt: the call row
 * remembers that dialling began before the request goes out, so a retry after a crash (or a lost
 * answer) looks for the call Twilio already has — the newest call to that number from that caller
 * ID created since — and adopts it instead of dialling again.
 *
 * Runs on a campaign's own dialer task queue, whose server-side rate limit is the campaign's calls
 * per second; a campaign paused while this waited for its turn does not dial.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { MikroORM } from '@mikro-orm/postgresql';
import type twilio from 'twilio';
import type { PlaceOutboundCallInput, PlaceOutboundCallResult } from '../contracts/call';
import { withTenant } from '../db/tenant-context';
import { campaignDials } from '../lib/metrics';
import { asTwilioHttpError } from './telephony';

export interface DialerDeps {
  orm: MikroORM;
  twilio?: twilio.Twilio;
  /** Where Twilio reaches the api (voice, status and AMD webhooks). */
  publicBaseUrl: string;
}

/** Twilio's clock and ours may differ a little: a call created this long before we marked the dial still counts. */
const CLOCK_SKEW_MS = 60_000;

/**
 * No dial starts in the last second of a calling window: the request takes that long to reach the
 * carrier and ring, and a call that starts as the window shuts is a call outside it.
 */
const WINDOW_CLOSE_MARGIN_MS = 1_000;

/** Failure type of a dial not placed because its campaign or its calling window stopped it. */
export const CAMPAIGN_NOT_RUNNING = 'CampaignNotRunning';
export const DIAL_REJECTED = 'DialRejected';

interface CallRow {
  provider_call_sid: string | null;
  dial_started_at: Date | null;
  status: string;
  campaign_status: string | null;
}

export function createDialerActivities(deps: DialerDeps) {
  const base = deps.publicBaseUrl.replace(/\/+$/, '');
  return {
    async placeOutboundCall(
      input: PlaceOutboundCallInput & { campaignId?: string },
    ): Promise<PlaceOutboundCallResult> {
      const client = deps.twilio;
      if (!client) {
        throw ApplicationFailure.create({
          type: 'TelephonyNotConfigured',
          message:
            'Cannot place a call: Twilio is not configured (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)',
          nonRetryable: true,
        });
      }
      // Claim the dial (or find the earlier claim) in its own committed transaction.
      type Decision = 'dial' | 'resume' | 'adopt' | 'campaign_stopped' | 'window_closed';
      const claim = await withTenant(deps.orm, input.tenantId, async (em) => {
        const [found] = await em.execute<CallRow[]>(
          `select c.provider_call_sid, c.dial_started_at, c.status, k.status as campaign_status
             from calls c left join campaigns k on k.id = c.campaign_id
            where c.id = ?`,
          [input.callId],
        );
        if (!found) return undefined;
        let decision: Decision;
        if (found.provider_call_sid) decision = 'adopt';
        else if (found.dial_started_at) decision = 'resume';
        else if (found.campaign_status && found.campaign_status !== 'running') decision = 'campaign_stopped';
        else if (input.dialBefore && Date.now() >= Date.parse(input.dialBefore) - WINDOW_CLOSE_MARGIN_MS)
          decision = 'window_closed';
        else {
          await em.execute(`update calls set dial_started_at = now() where id = ?`, [input.callId]);
          decision = 'dial';
        }
        return { row: found, decision };
      });
      if (!claim) {
        throw ApplicationFailure.create({
          type: 'CallNotFound',
          message: `Call ${input.callId} has no call record; it cannot be dialled`,
          nonRetryable: true,
        });
      }
      const { row, decision } = claim;
      if (decision === 'adopt' && row.provider_call_sid) {
        campaignDials.inc({ outcome: 'adopted' });
        return { callSid: row.provider_call_sid, status: row.status, adopted: true };
      }
      if (decision === 'campaign_stopped' || decision === 'window_closed') {
        campaignDials.inc({ outcome: decision });
        throw ApplicationFailure.create({
          type: CAMPAIGN_NOT_RUNNING,
          message:
            decision === 'campaign_stopped'
              ? `Not dialled: the campaign is ${row.campaign_status}`
              : `Not dialled: the contact's calling window closed at ${input.dialBefore}`,
          nonRetryable: true,
        });
      }
      if (decision === 'resume' && row.dial_started_at) {
        // An earlier try of this activity began dialling: if Twilio has the call, it is this one.
        const since = new Date(row.dial_started_at).getTime() - CLOCK_SKEW_MS;
        const recent = await client.calls.list({ to: input.to, from: input.from, limit: 20 });
        const mine = recent
          .filter((call) => call.dateCreated && call.dateCreated.getTime() >= since)
          .sort((a, b) => b.dateCreated.getTime() - a.dateCreated.getTime())[0];
        if (mine) {
          await recordSid(input, mine.sid);
          campaignDials.inc({ outcome: 'adopted' });
          return { callSid: mine.sid, status: mine.status, adopted: true };
        }
      }
      const query = `callId=${encodeURIComponent(input.callId)}`;
      let created;
      try {
        created = await client.calls.create({
          to: input.to,
          from: input.from,
          url: `${base}/twilio/voice?${query}`,
          method: 'POST',
          statusCallback: `${base}/twilio/status?${query}`,
          statusCallbackMethod: 'POST',
          statusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
          timeout: input.ringTimeoutSeconds,
          ...(input.machineDetection
            ? {
                machineDetection: input.machineDetection,
                asyncAmd: 'true',
                asyncAmdStatusCallback: `${base}/twilio/amd?${query}`,
                asyncAmdStatusCallbackMethod: 'POST',
              }
            : {}),
        });
      } catch (err) {
        const http = asTwilioHttpError(err);
        const refused =
          http && http.status >= 400 && http.status < 500 && http.status !== 408 && http.status !== 429;
        campaignDials.inc({ outcome: refused ? 'rejected' : 'failed' });
        if (refused) {
          throw ApplicationFailure.create({
            type: DIAL_REJECTED,
            message: `Twilio refused to place the call to ${input.to}: HTTP ${http.status}, code ${http.code ?? 'none'}: ${http.message}`,
            nonRetryable: true,
            details: [{ status: http.status, code: http.code ?? null }],
          });
        }
        throw err;
      }
      await recordSid(input, created.sid);
      campaignDials.inc({ outcome: 'placed' });
      return { callSid: created.sid, status: created.status, adopted: false };
    },
  };

  async function recordSid(input: PlaceOutboundCallInput, callSid: string): Promise<void> {
    await withTenant(deps.orm, input.tenantId, (em) =>
      em.execute(
        `update calls set provider_call_sid = ?, updated_at = now() where id = ? and provider_call_sid is null`,
        [callSid, input.callId],
      ),
    );
  }
}

export type DialerActivities = ReturnType<typeof createDialerActivities>;
