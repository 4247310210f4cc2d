/**
 * A campaign of a few hundred contacts across five time zones with mixed scripted outcomes runs to
 * completion: every contact reaches a final state, retries follow the policy, nobody is dialled
 * outside their own calling window (windows set around now in each contact's local time, some
 * opening later, one closing early, one never opening before the campaign ends), Do-Not-Call
 * numbers are never dialled, and the campaign never has more calls live than its concurrency.
 * Then: pause stops new dials within a second while in-flight calls finish, resume goes on, and
 * lowering the concurrency while it runs takes effect without a restart.
 */
import { WEEKDAYS, type CallingWindow, type Weekday } from '../contracts/campaign';
import { withTenant } from '../db/tenant-context';
import { sleep, waitUntil } from '../lib/net';
import type { OutboundScript } from './peers/twilio-outbound-peer';
import { addLocalWindow } from './support/local-windows';
import {
  createCampaign,
  launchCampaign,
  progressOf,
  startCampaignStack,
  testNumber,
  waitForCampaignEnd,
  type CampaignStack,
  type ContactRow,
} from './support/campaign-stack';

jest.setTimeout(400_000);

let cs: CampaignStack;

beforeAll(async () => {
  cs = await startCampaignStack({ peer: { fastMedia: true } });
});

afterAll(async () => {
  await cs?.close();
});

interface Zone {
  zone: string;
  area: number | 'tokyo';
  /** Real window, ms from the campaign's creation; null: none before the campaign ends. */
  opensIn: number | null;
  closesIn: number;
  /** Written in the CSV, or derived from the number. */
  explicit: boolean;
}

it('runs a few hundred contacts with mixed outcomes to completion, each dialled only inside its window', async () => {
  const PER_ZONE = 60;
  const zones: Zone[] = [
    { zone: 'America/New_York', area: 212, opensIn: 0, closesIn: 600_000, explicit: false },
    { zone: 'America/Chicago', area: 312, opensIn: 20_000, closesIn: 600_000, explicit: false },
    { zone: 'America/Denver', area: 303, opensIn: 0, closesIn: 15_000, explicit: true },
    { zone: 'America/Los_Angeles', area: 213, opensIn: 30_000, closesIn: 600_000, explicit: true },
    { zone: 'Asia/Tokyo', area: 'tokyo', opensIn: null, closesIn: 0, explicit: true },
  ];
  const t0 = Math.ceil(Date.now() / 1000) * 1000;
  const windows: Partial<Record<Weekday, CallingWindow[]>> = {};
  for (const z of zones)
    if (z.opensIn !== null) addLocalWindow(windows, z.zone, t0 + z.opensIn, t0 + z.closesIn);

  // Scripts by position: what each contact's phone does on each attempt.
  const scripts: OutboundScript[][] = [
    [{ outcome: 'answer' }],
    [{ outcome: 'answer' }],
    [{ outcome: 'answer' }],
    [{ outcome: 'no-answer', ringMs: 200 }],
    [{ outcome: 'busy' }, { outcome: 'answer' }],
    [{ outcome: 'busy' }],
    [{ outcome: 'voicemail', greetingMs: 100 }],
    [{ outcome: 'failed' }, { outcome: 'answer' }],
    [{ outcome: 'reject' }],
    [{ outcome: 'answer' }], // on the Do-Not-Call list
  ];
  /** Final state and dials for each script if the window stays open. */
  const expected: { status: string; dials: number }[] = [
    { status: 'completed', dials: 1 },
    { status: 'completed', dials: 1 },
    { status: 'completed', dials: 1 },
    { status: 'no_answer', dials: 2 },
    { status: 'completed', dials: 2 },
    { status: 'busy', dials: 3 },
    { status: 'voicemail', dials: 1 },
    { status: 'completed', dials: 2 },
    { status: 'failed', dials: 1 },
    { status: 'dnc', dials: 0 },
  ];
  const contacts: (ContactRow & { zone: Zone; kind: number })[] = [];
  for (const z of zones) {
    for (let i = 0; i < PER_ZONE; i += 1) {
      const n = contacts.length;
      const phone =
        z.area === 'tokyo' ? `+8135550${String(1000 + n).padStart(4, '0')}` : testNumber(z.area, n);
      contacts.push({
        phone,
        name: `Contact ${n}`,
        timeZone: z.explicit ? z.zone : undefined,
        zone: z,
        kind: n % scripts.length,
      });
    }
  }
  for (const c of contacts) cs.twilio.script(c.phone, scripts[c.kind]!);
  const dnc = contacts.filter((c) => c.kind === 9).map((c) => c.phone);
  const listed = await cs.api().post('/v1/do-not-call', { phones: dnc, reason: 'opted out' });
  expect(listed.status).toBe(201);

  const concurrency = 12;
  const created = await createCampaign(cs, {
    name: 'Five time zones',
    contacts,
    endsAt: new Date(t0 + 660_000).toISOString(),
    settings: {
      windows,
      maxConcurrentCalls: concurrency,
      maxCallsPerSecond: 20,
      retry: {
        'no-answer': { maxAttempts: 2, backoffSeconds: 1, backoffMultiplier: 1 },
        busy: { maxAttempts: 3, backoffSeconds: 1, backoffMultiplier: 1.5 },
        failed: { maxAttempts: 2, backoffSeconds: 1, backoffMultiplier: 1 },
        voicemail: { maxAttempts: 1, backoffSeconds: 1, backoffMultiplier: 1 },
      },
      voicemail: { action: 'hangup' },
      ringTimeoutSeconds: 5,
    },
  });
  expect(created.importReport.totals).toMatchObject({ accepted: contacts.length });
  cs.twilio.resetMaxLiveCalls();
  await launchCampaign(cs, created.id);
  let maxInFlight = 0;
  const final = await waitForCampaignEnd(cs, created.id, 300_000, (p) => {
    maxInFlight = Math.max(maxInFlight, p.inFlight);
  });
  expect(final.status).toBe('completed');

  const rows = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute<{ phone: string; status: string; attempts: number; time_zone: string | null }[]>(
      `select c.phone_e164 as phone, cc.status, cc.attempts, c.time_zone
         from campaign_contacts cc join contacts c on c.id = cc.contact_id where cc.campaign_id = ?`,
      [created.id],
    ),
  );
  const byPhone = new Map(rows.map((r) => [r.phone, r]));
  expect(rows).toHaveLength(contacts.length);
  const createsTo = new Map<string, number[]>();
  for (const create of cs.twilio.creates) {
    if (create.to) createsTo.set(create.to, [...(createsTo.get(create.to) ?? []), create.time]);
  }

  const problems: string[] = [];
  for (const c of contacts) {
    const row = byPhone.get(c.phone)!;
    const dials = createsTo.get(c.phone) ?? [];
    // The zone came from the CSV or from the number's area code.
    if (row.time_zone !== c.zone.zone) problems.push(`${c.phone}: time zone ${row.time_zone}`);
    // Never outside the contact's own window.
    for (const at of dials) {
      const open = c.zone.opensIn === null ? Infinity : t0 + c.zone.opensIn;
      const close = t0 + c.zone.closesIn;
      if (at < open || at >= close)
        problems.push(`${c.phone}: dialled at +${at - t0} ms, window [${open - t0}, ${close - t0})`);
    }
    const want = expected[c.kind]!;
    if (c.zone.opensIn === null) {
      if (row.status !== 'expired' || dials.length > 0)
        problems.push(`${c.phone}: ${row.status} with ${dials.length} dials (window never opens)`);
      continue;
    }
    if (c.zone.zone === 'America/Denver' && row.status === 'expired') {
      // The window closed before this contact was done: fewer dials than its script, never more.
      if (dials.length > want.dials) problems.push(`${c.phone}: ${dials.length} dials before expiring`);
      continue;
    }
    if (row.status !== want.status || dials.length !== want.dials || row.attempts !== want.dials) {
      problems.push(
        `${c.phone} (script ${c.kind}): ${row.status}, ${dials.length} dials, ${row.attempts} attempts; want ${want.status}, ${want.dials}`,
      );
    }
  }
  expect(problems).toEqual([]);
  for (const phone of dnc) expect(createsTo.get(phone)).toBeUndefined();
  // Denver's window was open for 15 s only: some of its contacts were reached, the rest expired.
  const denver = contacts
    .filter((c) => c.zone.zone === 'America/Denver')
    .map((c) => byPhone.get(c.phone)!.status);
  expect(denver.filter((s) => s === 'expired').length).toBeGreaterThan(0);
  expect(denver.filter((s) => s !== 'expired').length).toBeGreaterThan(0);
  // The sliding window filled up to the concurrency and held: never more calls live than that.
  expect(maxInFlight).toBe(concurrency);
  expect(cs.twilio.maxLiveCalls).toBeLessThanOrEqual(concurrency);
  // Counts by the API match the table; one attempt row per dial.
  const progress = await progressOf(cs, created.id);
  expect(progress.counts.total).toBe(contacts.length);
  expect(progress.attempts.total).toBe(
    cs.twilio.creates.filter((c) => contacts.some((k) => k.phone === c.to)).length,
  );
});

it('pause stops new dials within a second while in-flight calls finish; resume goes on; lower concurrency applies at once', async () => {
  const contacts: ContactRow[] = [];
  for (let i = 0; i < 40; i += 1) {
    const phone = testNumber(617, 5000 + i); // Boston
    contacts.push({ phone, name: `Caller ${i}`, timeZone: 'America/New_York' });
    // Each call rings a while, so calls are in flight when the campaign is paused.
    cs.twilio.script(phone, { outcome: 'answer', ringMs: 1_500 });
  }
  const created = await createCampaign(cs, {
    name: 'Pause and resume',
    contacts,
    settings: {
      windows: Object.fromEntries(WEEKDAYS.map((d) => [d, [{ start: '00:00', end: '24:00' }]])),
      maxConcurrentCalls: 6,
      maxCallsPerSecond: 10,
    },
  });
  const createsBefore = cs.twilio.creates.length;
  const ours = () => cs.twilio.creates.slice(createsBefore);
  cs.twilio.resetMaxLiveCalls();
  await launchCampaign(cs, created.id);
  await waitUntil('a few calls placed', () => Promise.resolve(ours().length >= 8), 60_000, 50);

  const paused = await cs.api().post(`/v1/campaigns/${created.id}/pause`);
  expect(paused.status).toBe(200);
  const pausedAt = Date.now();
  expect(paused.body.paused).toBe(true);
  const liveAtPause = cs.twilio.liveCalls;
  expect(liveAtPause).toBeGreaterThan(0);
  // In-flight calls finish; nothing new is dialled once the pause has taken hold.
  await waitUntil('in-flight calls to finish', () => Promise.resolve(cs.twilio.liveCalls === 0), 60_000, 50);
  await sleep(3_000);
  const late = ours().filter((c) => c.time > pausedAt + 1_000);
  expect(late).toEqual([]);
  const whilePaused = await progressOf(cs, created.id);
  expect(whilePaused.status).toBe('paused');
  expect(whilePaused.counts.completed).toBeGreaterThanOrEqual(liveAtPause);
  const dialledBeforeResume = ours().length;

  const resumed = await cs.api().post(`/v1/campaigns/${created.id}/resume`);
  expect(resumed.status).toBe(200);
  await waitUntil(
    'dialling to resume',
    () => Promise.resolve(ours().length > dialledBeforeResume),
    30_000,
    50,
  );
  expect(cs.twilio.maxLiveCalls).toBeLessThanOrEqual(6);

  // Lower the concurrency while it runs: once the calls over the new limit are done, at most 2.
  const edited = await cs.api().patch(`/v1/campaigns/${created.id}`, { settings: { maxConcurrentCalls: 2 } });
  expect(edited.status).toBe(200);
  await waitUntil(
    'calls over the new limit to finish',
    () => Promise.resolve(cs.twilio.liveCalls <= 2),
    30_000,
    50,
  );
  cs.twilio.resetMaxLiveCalls();
  const final = await waitForCampaignEnd(cs, created.id, 180_000);
  expect(final.status).toBe('completed');
  expect(cs.twilio.maxLiveCalls).toBeLessThanOrEqual(2);
  expect(final.counts.completed).toBe(40);
  // Nothing was dialled twice: pausing never lost or repeated a contact.
  expect(new Set(ours().map((c) => c.to)).size).toBe(40);
  expect(ours()).toHaveLength(40);
});

it('cancel lets in-flight calls finish, dials nobody else, and closes every waiting contact as canceled', async () => {
  const contacts: ContactRow[] = [];
  for (let i = 0; i < 20; i += 1) {
    const phone = testNumber(617, 6000 + i);
    contacts.push({ phone, name: `Cancel ${i}`, timeZone: 'America/New_York' });
    cs.twilio.script(phone, { outcome: 'answer', ringMs: 1_500 });
  }
  const created = await createCampaign(cs, {
    name: 'Cancel midway',
    contacts,
    settings: {
      windows: Object.fromEntries(WEEKDAYS.map((d) => [d, [{ start: '00:00', end: '24:00' }]])),
      maxConcurrentCalls: 3,
      maxCallsPerSecond: 10,
    },
  });
  const createsBefore = cs.twilio.creates.length;
  const ours = () => cs.twilio.creates.slice(createsBefore);
  await launchCampaign(cs, created.id);
  await waitUntil('three calls placed', () => Promise.resolve(ours().length >= 3), 60_000, 50);
  const canceled = await cs.api().post(`/v1/campaigns/${created.id}/cancel`);
  expect(canceled.status).toBe(200);
  const canceledAt = Date.now();
  const final = await waitForCampaignEnd(cs, created.id, 60_000);
  expect(final.status).toBe('canceled');
  expect(ours().filter((c) => c.time > canceledAt + 1_000)).toEqual([]);
  // The calls under way when it was canceled were finished, not cut off.
  const dialled = ours().length;
  expect(final.counts.completed).toBe(dialled);
  expect(final.counts.canceled).toBe(20 - dialled);
  expect(final.inFlight).toBe(0);
  // Canceling twice is refused: the campaign is over.
  expect((await cs.api().post(`/v1/campaigns/${created.id}/cancel`)).status).toBe(409);
});
