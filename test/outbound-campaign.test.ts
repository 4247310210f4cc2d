/**
 * One small campaign through the whole outbound path with real media: the dialer places each call
 * through twilio-node against the outbound Twilio peer, the peer plays each contact's script (a
 * person who answers, a busy line that answers on the retry, a phone nobody picks up, a voicemail
 * box, a number Twilio refuses, a number on the Do-Not-Call list), the answered calls stream through
 * the relay, and every contact ends where its script says, with every attempt recorded.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { callWorkflowId } from '../contracts/call';
import { campaignContactWorkflowId, campaignWorkflowId } from '../contracts/campaign';
import { withTenant } from '../db/tenant-context';
import { workflowBundle } from '../workers/create-workers';
import {
  createCampaign,
  launchCampaign,
  progressOf,
  startCampaignStack,
  testNumber,
  waitForCampaignEnd,
  type CampaignStack,
} from './support/campaign-stack';

jest.setTimeout(180_000);

let cs: CampaignStack;

beforeAll(async () => {
  cs = await startCampaignStack();
});

afterAll(async () => {
  await cs?.close();
});

const ANSWERS = testNumber(212, 1);
const BUSY_THEN_ANSWERS = testNumber(212, 2);
const NEVER_ANSWERS = testNumber(312, 3);
const VOICEMAIL = testNumber(312, 4);
const REFUSED = testNumber(303, 5);
const ON_DNC = testNumber(303, 6);

interface ContactState {
  phone: string;
  status: string;
  attempts: number;
  last_outcome: string | null;
}

async function contactStates(campaignId: string): Promise<Record<string, ContactState>> {
  const rows = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute<ContactState[]>(
      `select c.phone_e164 as phone, cc.status, cc.attempts, cc.last_outcome
         from campaign_contacts cc join contacts c on c.id = cc.contact_id where cc.campaign_id = ?`,
      [campaignId],
    ),
  );
  return Object.fromEntries(rows.map((r) => [r.phone, r]));
}

async function contactIdOf(phone: string): Promise<string> {
  const [row] = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute<{ id: string }[]>(`select id from contacts where phone_e164 = ?`, [phone]),
  );
  return row!.id;
}

it('runs every contact to the final state its script and the retry policy give', async () => {
  cs.twilio.script(ANSWERS, { outcome: 'answer' });
  cs.twilio.script(BUSY_THEN_ANSWERS, [{ outcome: 'busy' }, { outcome: 'answer' }]);
  cs.twilio.script(NEVER_ANSWERS, { outcome: 'no-answer', ringMs: 300 });
  cs.twilio.script(VOICEMAIL, { outcome: 'voicemail', greetingMs: 800 });
  cs.twilio.script(REFUSED, {
    outcome: 'reject',
    status: 400,
    code: 21217,
    message: 'Phone number is not a valid phone number',
  });
  const dnc = await cs.api().post('/v1/do-not-call', { phone: ON_DNC, reason: 'asked not to be called' });
  expect(dnc.status).toBe(201);

  const created = await createCampaign(cs, {
    name: 'Appointment reminders',
    contacts: [
      { phone: ANSWERS, name: 'Ada Lovelace', clinic: 'Harbor Dental' },
      { phone: BUSY_THEN_ANSWERS, name: 'Grace Hopper' },
      { phone: NEVER_ANSWERS, name: 'Alan Turing' },
      { phone: VOICEMAIL, name: 'Edsger Dijkstra' },
      { phone: REFUSED, name: 'Barbara Liskov' },
      { phone: ON_DNC, name: 'Donald Knuth' },
    ],
    settings: {
      maxConcurrentCalls: 2,
      maxCallsPerSecond: 5,
      windows: Object.fromEntries(
        ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [{ start: '00:00', end: '24:00' }]]),
      ),
      retry: {
        'no-answer': { maxAttempts: 2, backoffSeconds: 1, backoffMultiplier: 1 },
        busy: { maxAttempts: 3, backoffSeconds: 1, backoffMultiplier: 2 },
        failed: { maxAttempts: 3, backoffSeconds: 1, backoffMultiplier: 1 },
        voicemail: { maxAttempts: 1, backoffSeconds: 1, backoffMultiplier: 1 },
      },
      voicemail: {
        action: 'leave_message',
        message: 'Hi {{contact.firstName}}, Parley here. Please call us back.',
      },
      ringTimeoutSeconds: 10,
    },
  });
  expect(created.importReport.totals).toMatchObject({ accepted: 6 });
  await launchCampaign(cs, created.id);
  const final = await waitForCampaignEnd(cs, created.id, 60_000);
  expect(final.status).toBe('completed');

  const states = await contactStates(created.id);
  expect(states[ANSWERS]).toMatchObject({ status: 'completed', attempts: 1, last_outcome: 'reminded' });
  expect(states[BUSY_THEN_ANSWERS]).toMatchObject({
    status: 'completed',
    attempts: 2,
    last_outcome: 'reminded',
  });
  expect(states[NEVER_ANSWERS]).toMatchObject({ status: 'no_answer', attempts: 2 });
  expect(states[VOICEMAIL]).toMatchObject({
    status: 'voicemail',
    attempts: 1,
    last_outcome: 'voicemail_left',
  });
  // Twilio refuses the number itself: retrying cannot help.
  expect(states[REFUSED]).toMatchObject({ status: 'failed', attempts: 1, last_outcome: 'dial_failed' });
  expect(states[ON_DNC]).toMatchObject({ status: 'dnc', attempts: 0 });

  // What Twilio saw: one create per attempt, none for the DNC number.
  const createsTo = (phone: string) => cs.twilio.creates.filter((c) => c.to === phone).length;
  expect(createsTo(ANSWERS)).toBe(1);
  expect(createsTo(BUSY_THEN_ANSWERS)).toBe(2);
  expect(createsTo(NEVER_ANSWERS)).toBe(2);
  expect(createsTo(VOICEMAIL)).toBe(1);
  expect(createsTo(REFUSED)).toBe(1);
  expect(createsTo(ON_DNC)).toBe(0);
  const create = cs.twilio.creates.find((c) => c.to === ANSWERS)!;
  expect(create.from).toBe(cs.callerNumber);
  expect(create.params.MachineDetection).toBe('DetectMessageEnd');
  expect(create.params.Timeout).toBe('10');
  expect(create.form.getAll('StatusCallbackEvent')).toEqual([
    'initiated',
    'ringing',
    'answered',
    'completed',
  ]);

  // The person heard the greeting with their name; the machine got the message after its beep.
  const answered = [...cs.twilio.outboundCalls.values()].find((c) => c.to === ANSWERS)!;
  expect(answered.simulated?.stats.audioMsPlayed ?? 0).toBeGreaterThan(1_000);
  const machine = [...cs.twilio.outboundCalls.values()].find((c) => c.to === VOICEMAIL)!;
  expect(machine.voicemailAudioMs ?? 0).toBeGreaterThan(1_000);

  // The calls list and each call's transcript say the same.
  const calls = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute<{ to_number: string; status: string; disposition: string; direction: string; id: string }[]>(
      `select id, to_number, status, disposition, direction from calls where campaign_id = ? order by created_at`,
      [created.id],
    ),
  );
  expect(calls.every((c) => c.direction === 'outbound')).toBe(true);
  expect(calls.filter((c) => c.to_number === BUSY_THEN_ANSWERS).map((c) => c.status)).toEqual([
    'busy',
    'completed',
  ]);
  const greeted = calls.find((c) => c.to_number === ANSWERS)!;
  const detail = await cs.api().get(`/v1/calls/${greeted.id}`);
  const agentLines = (detail.body.transcript as { role: string; text: string }[]).filter(
    (t) => t.role === 'agent',
  );
  // The contact's own fields and the CSV's custom column, as {{contact.x}} in the agent's text.
  expect(agentLines[0]?.text).toBe(
    'Hi Ada, this is Parley with a reminder about your appointment at Harbor Dental. Goodbye.',
  );
  const vm = calls.find((c) => c.to_number === VOICEMAIL)!;
  expect(vm).toMatchObject({ status: 'voicemail', disposition: 'voicemail_left' });

  // This tenant has no webhook endpoint: no call.ended delivery workflow was started for its calls.
  await expect(
    cs.stack.temporal.workflow.getHandle(`webhook:${cs.tenant.tenantId}:call.ended:${greeted.id}`).describe(),
  ).rejects.toThrow(WorkflowNotFoundError);

  // Recorded for the replay suite, which guards running campaigns and calls from workflow changes.
  const histories: [string, string][] = [
    ['campaign-mixed-outcomes.json', campaignWorkflowId(created.id)],
    [
      'campaign-contact-busy-then-answers.json',
      campaignContactWorkflowId(created.id, await contactIdOf(BUSY_THEN_ANSWERS)),
    ],
    ['call-outbound-voicemail.json', callWorkflowId(vm.id)],
  ];
  for (const [file, workflowId] of histories) {
    const history = await cs.stack.temporal.workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
    if (process.env.RECORD_HISTORIES)
      writeFileSync(path.join(__dirname, 'histories', file), historyToJSON(history));
  }

  const progress = await progressOf(cs, created.id);
  expect(progress.counts).toMatchObject({ completed: 2, no_answer: 1, voicemail: 1, failed: 1, dnc: 1 });
  expect(progress.done).toBe(true);
});
