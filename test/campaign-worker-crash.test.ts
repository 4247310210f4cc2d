/**
 * Crash test: a campaign survives its worker process being SIGKILLed several times — once while a
 * dial is inside Twilio's `calls.create` (the peer holds the answer back, so the kill lands after
 * Twilio has the call and before Parley has its CallSid) — and restarted. The campaign completes,
 * every contact reaches its final state, and Twilio received exactly one `calls.create` per attempt:
 * the retried dial found the call it had already placed instead of dialling again.
 *
 * The worker is a real `npm run worker` process (calls, campaigns, dialer queues) in this jest
 * worker's namespace; the api and the relay run in-process and are never killed.
 */
import { withTenant } from '../db/tenant-context';
import { sleep, waitUntil } from '../lib/net';
import {
  CAMPAIGN_QUEUES,
  campaignDiagnostics,
  createCampaign,
  launchCampaign,
  startCampaignStack,
  testNumber,
  waitForCampaignEnd,
  type CampaignStack,
  type ContactRow,
} from './support/campaign-stack';
import type { OutboundScript } from './peers/twilio-outbound-peer';
import { startWorkerProcess, stopWorkerProcess, type WorkerProcess } from './support/worker-process';

// Recovery waits on Temporal's timeouts: a dead worker's sticky queue and workflow tasks (10 s),
// activities in flight (10-20 s); a worker process starts in 5-10 s.
jest.setTimeout(420_000);

let cs: CampaignStack;
const timeline: string[] = [];
const t0 = Date.now();
const mark = (what: string) => timeline.push(`+${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);

let current: WorkerProcess | undefined;

async function startWorker(): Promise<WorkerProcess> {
  const worker = await startWorkerProcess({
    TEMPORAL_NAMESPACE: cs.stack.config.TEMPORAL_NAMESPACE,
    WORKER_TASK_QUEUES: CAMPAIGN_QUEUES.join(','),
    TWILIO_ACCOUNT_SID: cs.twilio.accountSid,
    TWILIO_AUTH_TOKEN: cs.twilio.authToken,
    TWILIO_API_BASE_URL: cs.twilio.baseUrl,
    PUBLIC_BASE_URL: cs.apiUrl,
    RELAY_PUBLIC_URL: cs.relayUrl,
  });
  mark(`worker ${worker.child.pid} polling`);
  current = worker;
  return worker;
}

async function killHard(worker: WorkerProcess, why: string): Promise<void> {
  worker.child.kill('SIGKILL');
  await worker.exited;
  mark(`worker ${worker.child.pid} SIGKILLed ${why}`);
}

beforeAll(async () => {
  // Twilio answers calls.create 400 ms after it has recorded the call: a kill in between is the
  // dialler's worst case (the call exists, its CallSid is not written down).
  cs = await startCampaignStack({ worker: false, peer: { fastMedia: true, createDelayMs: 400 } });
});

afterAll(async () => {
  await stopWorkerProcess(current);
  await cs?.close();
});

it('completes after repeated SIGKILLs of its worker, with exactly one calls.create per attempt', async () => {
  const scripts: OutboundScript[][] = [
    [{ outcome: 'answer' }],
    [{ outcome: 'busy' }, { outcome: 'answer' }],
    [{ outcome: 'no-answer', ringMs: 300 }],
    [{ outcome: 'answer', ringMs: 800 }],
  ];
  const contacts: ContactRow[] = [];
  for (let i = 0; i < 80; i += 1) {
    const phone = testNumber(646, 7000 + i);
    contacts.push({ phone, name: `Crash ${i}`, timeZone: 'America/New_York' });
    cs.twilio.script(phone, scripts[i % scripts.length]!);
  }
  let worker = await startWorker();
  const created = await createCampaign(cs, {
    name: 'Crash test',
    contacts,
    settings: {
      windows: Object.fromEntries(
        ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [{ start: '00:00', end: '24:00' }]]),
      ),
      maxConcurrentCalls: 8,
      maxCallsPerSecond: 10,
      retry: {
        'no-answer': { maxAttempts: 2, backoffSeconds: 1, backoffMultiplier: 1 },
        busy: { maxAttempts: 2, backoffSeconds: 1, backoffMultiplier: 1 },
      },
      ringTimeoutSeconds: 5,
    },
  });
  // Small pages and few per run: the campaign continues as new many times, across the kills too.
  await launchCampaign(cs, created.id, { pageSize: 5, pagesPerRun: 4 });
  mark('launched');

  try {
    for (const after of [8, 40, 90]) {
      await waitUntil(
        `${after} dials`,
        () => Promise.resolve(cs.twilio.creates.length >= after),
        180_000,
        20,
      );
      // Kill while a create is in flight: the peer has recorded it and holds its answer back.
      const seen = cs.twilio.creates.length;
      await waitUntil('a dial in flight', () => Promise.resolve(cs.twilio.creates.length > seen), 60_000, 2);
      await killHard(worker, `with ${cs.twilio.creates.length} dials made, one in flight`);
      await sleep(1_500);
      worker = await startWorker();
    }
    await waitForCampaignEnd(cs, created.id, 300_000);
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\n${timeline.join('\n')}\n${await campaignDiagnostics(cs, created.id)}\n` +
        `worker output (tail):\n${worker.output().slice(-3000)}`,
    );
  }
  mark('campaign completed');

  // Every attempt dialled once: one create per call id (the id travels in the create's Url).
  const createsPerCall = new Map<string, number>();
  for (const create of cs.twilio.creates) {
    const callId = new URL(create.url ?? 'http://x/').searchParams.get('callId') ?? 'none';
    createsPerCall.set(callId, (createsPerCall.get(callId) ?? 0) + 1);
  }
  const repeated = [...createsPerCall].filter(([, n]) => n > 1);
  expect(repeated).toEqual([]);
  const attempts = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute<{ call_id: string; outcome: string | null; attempt_key: string }[]>(
      `select call_id, outcome, attempt_key from campaign_attempts where campaign_id = ?`,
      [created.id],
    ),
  );
  const dialled = attempts.filter((a) => a.outcome && !a.outcome.startsWith('not_dialed'));
  expect(attempts.every((a) => a.outcome !== null)).toBe(true);
  expect(new Set(dialled.map((a) => a.call_id))).toEqual(new Set(createsPerCall.keys()));
  expect(new Set(attempts.map((a) => a.attempt_key)).size).toBe(attempts.length);
  // At least one retried dial had to ask Twilio whether its call existed (the kill mid-create).
  expect(cs.twilio.requestsTo(/\/Calls\.json$/, 'GET').length).toBeGreaterThan(0);

  // It continued as new several times, each run picking up the contacts in flight.
  let runs = 0;
  for await (const _run of cs.stack.temporal.workflow.list({
    query: `WorkflowId = "campaign:${created.id}"`,
  }))
    runs += 1;
  expect(runs).toBeGreaterThan(3);

  const states = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute<{ status: string; n: number }[]>(
      `select status, count(*)::int as n from campaign_contacts where campaign_id = ? group by status`,
      [created.id],
    ),
  );
  const counts = Object.fromEntries(states.map((s) => [s.status, s.n]));
  expect(counts).toEqual({ completed: 60, no_answer: 20 });
});
