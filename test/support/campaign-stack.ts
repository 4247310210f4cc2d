/**
 * Outbound campaigns end to end for a test file: the voice stack (api on a real port, relay,
 * Temporal, PostgreSQL) with the outbound Twilio peer as Twilio, a worker for calls, campaigns and
 * the dialer (unless the test runs its own worker processes), and helpers that go through the
 * public API: a published reminder agent, a caller number, a campaign from CSV, launch, progress.
 */
import request from 'supertest';
import { campaignWorkflowId } from '../../contracts/campaign';
import { withTenant } from '../../db/tenant-context';
import { waitUntil } from '../../lib/net';
import { OutboundTwilioPeer, type OutboundTwilioPeerOptions } from '../peers/twilio-outbound-peer';
import { bearer } from './stack';
import { startVoiceStack, type VoiceStack } from './voice-stack';

export type CampaignStack = VoiceStack<OutboundTwilioPeer> & {
  /** Reminder agent: greets the contact by first name, then ends (`reminded`). */
  agentId: string;
  callerNumber: string;
  api(): ReturnType<typeof authed>;
};

function authed(app: Parameters<typeof request>[0], token: string) {
  return {
    get: (path: string) => request(app).get(path).set(bearer(token)),
    post: (path: string, body: object = {}) => request(app).post(path).set(bearer(token)).send(body),
    patch: (path: string, body: object) => request(app).patch(path).set(bearer(token)).send(body),
  };
}

export const CAMPAIGN_QUEUES = ['calls', 'campaigns', 'dialer', 'integrations', 'billing'];

export async function startCampaignStack(
  options: { peer?: OutboundTwilioPeerOptions; worker?: boolean; env?: Record<string, string> } = {},
): Promise<CampaignStack> {
  const voice = await startVoiceStack({
    twilio: new OutboundTwilioPeer(options.peer),
    queues: CAMPAIGN_QUEUES,
    worker: options.worker,
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', ...options.env },
  });
  const agentId = await voice.publishAgent('Reminder', {
    // `clinic` is a custom column of the contacts' CSV.
    greeting:
      'Hi {{contact.firstName}}, this is Parley with a reminder about your appointment at {{contact.clinic}}.',
    flow: {
      startNodeId: 'bye',
      nodes: [{ id: 'bye', type: 'end', disposition: 'reminded', message: 'Goodbye.' }],
      edges: [],
    },
  });
  const callerNumber = await voice.registerNumber(agentId);
  // Campaigns here run up to 50 calls at once: more lines than the free plan's.
  await withTenant(voice.stack.orm, voice.tenant.tenantId, (em) =>
    em.execute(`update tenants set plan = 'enterprise' where id = ?`, [voice.tenant.tenantId]),
  );
  return Object.assign(voice, {
    agentId,
    callerNumber,
    api: () => authed(voice.stack.app, voice.tenant.token),
  });
}

export interface ContactRow {
  phone: string;
  name: string;
  timeZone?: string;
  /** A custom attribute, said in the agent's greeting as `{{contact.clinic}}`. */
  clinic?: string;
}

export function contactsCsv(rows: ContactRow[]): string {
  return [
    'phone,name,time_zone,clinic',
    ...rows.map((r) => `${r.phone},${r.name},${r.timeZone ?? ''},${r.clinic ?? 'the clinic'}`),
  ].join('\n');
}

/** Creates a draft through the API from CSV rows; fails the test with the API's answer otherwise. */
export async function createCampaign(
  cs: CampaignStack,
  body: { name: string; contacts: ContactRow[]; settings?: object; endsAt?: string; startsAt?: string },
): Promise<{ id: string; importReport: { totals: Record<string, number> } }> {
  const res = await cs.api().post('/v1/campaigns', {
    name: body.name,
    agentId: cs.agentId,
    callerNumber: cs.callerNumber,
    csv: contactsCsv(body.contacts),
    settings: body.settings,
    endsAt: body.endsAt,
    startsAt: body.startsAt,
  });
  if (res.status !== 201) throw new Error(`create campaign: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; importReport: { totals: Record<string, number> } };
}

export async function launchCampaign(cs: CampaignStack, id: string, options?: object): Promise<void> {
  const res = await cs.api().post(`/v1/campaigns/${id}/launch`, options ? { options } : {});
  if (res.status !== 200 && res.status !== 202)
    throw new Error(`launch: ${res.status} ${JSON.stringify(res.body)}`);
}

export interface Progress {
  status: string;
  paused: boolean;
  done: boolean;
  inFlight: number;
  counts: Record<string, number>;
  attempts: { total: number; byOutcome: Record<string, number> };
  nextAttemptAt: string | null;
}

export async function progressOf(cs: CampaignStack, id: string): Promise<Progress> {
  const res = await cs.api().get(`/v1/campaigns/${id}/progress`);
  if (res.status !== 200) throw new Error(`progress: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Progress;
}

/** Waits until the campaign is over (completed, or canceled and its calls finished); returns its last progress. */
export async function waitForCampaignEnd(
  cs: CampaignStack,
  id: string,
  timeoutMs: number,
  onProgress?: (progress: Progress) => void,
): Promise<Progress> {
  let last: Progress | undefined;
  try {
    await waitUntil(
      `campaign ${id} to finish`,
      async () => {
        last = await progressOf(cs, id);
        onProgress?.(last);
        // `done`: the workflow has finished (a canceled campaign is `canceled` at once, done later).
        return last.done;
      },
      timeoutMs,
      250,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await campaignDiagnostics(cs, id)}`);
  }
  return last!;
}

/** Where every contact, attempt and call of a campaign stands, for a failing test's message. */
export async function campaignDiagnostics(cs: CampaignStack, id: string): Promise<string> {
  const lines: string[] = [];
  await withTenant(cs.stack.orm, cs.tenant.tenantId, async (em) => {
    const rows = await em.execute<Record<string, unknown>[]>(
      `select c.phone_e164, cc.status, cc.attempts, cc.last_outcome, cc.next_attempt_at
         from campaign_contacts cc join contacts c on c.id = cc.contact_id where cc.campaign_id = ?
        order by c.phone_e164 limit 40`,
      [id],
    );
    lines.push('contacts:', ...rows.map((r) => `  ${JSON.stringify(r)}`));
    const calls = await em.execute<Record<string, unknown>[]>(
      `select id, to_number, status, disposition, end_reason, provider_call_sid from calls
        where campaign_id = ? order by created_at limit 40`,
      [id],
    );
    lines.push('calls:', ...calls.map((r) => `  ${JSON.stringify(r)}`));
  });
  lines.push(
    'twilio creates:',
    ...cs.twilio.creates
      .slice(-40)
      .map((c) => `  ${c.status} ${c.to ?? ''} ${c.callSid ?? ''} ${c.error?.message ?? ''}`),
  );
  try {
    const described = await cs.stack.temporal.workflow.getHandle(campaignWorkflowId(id)).describe();
    lines.push(`campaign workflow: ${described.status.name}`);
    for (const a of described.raw.pendingActivities ?? []) {
      lines.push(`  pending ${a.activityType?.name} attempt ${a.attempt} ${a.lastFailure?.message ?? ''}`);
    }
  } catch (err) {
    lines.push(`campaign workflow: ${(err as Error).message}`);
  }
  return lines.join('\n');
}

/** NANP numbers libphonenumber accepts, in a given area code: +1 <area> 555 01xx… */
export function testNumber(area: number, n: number): string {
  return `+1${area}555${String(1000 + (n % 9000)).padStart(4, '0')}`;
}
