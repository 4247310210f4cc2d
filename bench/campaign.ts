/**
 * The outbound-campaign part of `npm run bench`, also runnable on its own: `npx tsx bench/campaign.ts`
 * (sizes from CAMPAIGN_BENCH_CONTACTS, CAMPAIGN_BENCH_CPS, CAMPAIGN_BENCH_CONCURRENCY). One campaign of
 * many contacts against the peers — instant answers, short scripted calls — measures what the campaign
 * machinery itself sustains: dials per second against the configured cap (the server-side rate limit
 * of the campaign's `dialer.<id>` queue), the scheduling error against the calling windows, the history
 * each workflow keeps, and the worker's memory and CPU.
 *
 * Its own stack, every Parley process a process of its own so that each one's CPU and memory are its
 * alone (read from /proc): a Temporal CLI dev server in memory started as `npm start` starts it
 * (DEV_SERVER_DYNAMIC_CONFIG: one partition per task queue, so the rate limit is exact), the api
 * (`api/main.ts`, listening on a port for Twilio's webhooks), ONE worker (`workers/main.ts`) for
 * calls, campaigns, dialer, integrations and billing, and the relay (`realtime-relay/main.ts`).
 * PostgreSQL is the caller's (bench/run.ts passes its embedded one) or an embedded one started here.
 * This process holds only the peers: the outbound Twilio peer with instant media (its caller
 * simulator connects to the relay like Twilio) and the OpenAI peer as the agent's TTS.
 *
 * The campaign is created through the API from a CSV (the import is timed), its calling windows are
 * set so that every zone's window opens at one instant T_open a few seconds after the launch, and it
 * runs to the end; the figures come from the peer's record of every `calls.create`, /proc samples
 * taken every second, the task queues' backlogs, the progress API and Temporal's visibility.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import { loadConfig } from '../config';
import type { AgentDefinitionInput } from '../contracts/agent-definition';
import { ALWAYS_OPEN, insideCallingWindow } from '../contracts/calling-windows';
import { callWorkflowId } from '../contracts/call';
import {
  campaignContactWorkflowId,
  campaignDialerQueue,
  campaignWorkflowId,
  type CallingWindow,
  type CampaignContactStatus,
  type Weekday,
} from '../contracts/campaign';
import { startEmbeddedPostgres } from '../db/embedded-postgres';
import { runMigrations } from '../db/migrate';
import { freePort, sleep, waitUntil } from '../lib/net';
import { locateTemporalCli } from '../temporal-config/cli';
import { DEV_SERVER_DYNAMIC_CONFIG, startDevServer, type DevServer } from '../temporal-config/dev-server';
import { startOpenAiPeer, type OpenAiPeer } from '../test/peers/openai-peer';
import { OutboundTwilioPeer, type OutboundScript } from '../test/peers/twilio-outbound-peer';
import { addLocalWindow } from '../test/support/local-windows';
import { machine, machineCpuSeconds, percentile, procCpuSeconds, progress, rssBytes } from './stats';

const ROOT = path.resolve(__dirname, '..');
/**
 * How long the windows stay open. They are one weekly table for every zone, so a zone also sees the
 * others' local windows shifted by whole hours: New York's contacts see Chicago's window an hour
 * early. Under an hour (less the lead before T_open), no shifted copy covers the launch.
 */
const WINDOW_MS = 54 * 60_000;
/** With no dial for this long (counted from T_open) the campaign is canceled, a problem. */
const STALL_MS = 5 * 60_000;
/** Past this after T_open the campaign is canceled and the run reported as a problem. */
const MAX_CAMPAIGN_MS = 3 * 3_600_000;
const RESULTS = path.join(__dirname, 'RESULTS.md');
const PEER_API_KEY = 'sk-bench-parley-campaign-peer';
const WORKER_QUEUES = ['calls', 'campaigns', 'dialer', 'integrations', 'billing'];

// ------------------------------------------------------------------------------------------------
// the plan

export interface CampaignBenchPlan {
  contacts: number;
  /** The campaign's maxCallsPerSecond: the cap under test. */
  callsPerSecond: number;
  /** The campaign's maxConcurrentCalls. */
  concurrency: number;
}

/** Four US zones, two area codes each; numbers +1 <area> 555 1000…9999 (valid for libphonenumber). */
const ZONES = [
  { zone: 'America/New_York', areas: [212, 646] },
  { zone: 'America/Chicago', areas: [312, 773] },
  { zone: 'America/Denver', areas: [303, 720] },
  { zone: 'America/Los_Angeles', areas: [213, 310] },
] as const;
const MAX_CONTACTS = ZONES.length * 2 * 9000;

const ANSWER: OutboundScript = { outcome: 'answer', ringMs: 50, amdDelayMs: 50 };

/** What each contact's phone does, by share of the list, and how the contact must end. */
const KINDS: {
  label: string;
  share: number;
  script: OutboundScript[];
  status: CampaignContactStatus;
  dials: number;
}[] = [
  {
    label: 'answers (rings 50 ms, AMD says human after 50 ms)',
    share: 12,
    script: [ANSWER],
    status: 'completed',
    dials: 1,
  },
  {
    label: 'busy, answers the retry',
    share: 3,
    script: [{ outcome: 'busy' }, ANSWER],
    status: 'completed',
    dials: 2,
  },
  {
    label: 'no answer (rings 100 ms), twice',
    share: 3,
    script: [{ outcome: 'no-answer', ringMs: 100 }],
    status: 'no_answer',
    dials: 2,
  },
  {
    label: 'voicemail (AMD says machine after 100 ms), hung up on',
    share: 2,
    script: [{ outcome: 'voicemail', greetingMs: 100 }],
    status: 'voicemail',
    dials: 1,
  },
];
/** Kind of the contact at each position of a cycle of 20. */
const KIND_CYCLE = KINDS.flatMap((k, i) => Array.from({ length: k.share }, () => i));

const RETRY = {
  'no-answer': { maxAttempts: 2, backoffSeconds: 1, backoffMultiplier: 1 },
  busy: { maxAttempts: 2, backoffSeconds: 1, backoffMultiplier: 1 },
  failed: { maxAttempts: 1, backoffSeconds: 1, backoffMultiplier: 1 },
  voicemail: { maxAttempts: 1, backoffSeconds: 1, backoffMultiplier: 1 },
};

/** The bench agent: greets the contact by name and ends the call (campaign-stack.ts's reminder), spoken by the TTS peer. */
const BENCH_CAMPAIGN_AGENT: AgentDefinitionInput = {
  greeting: 'Hi {{contact.firstName}}, a reminder of your appointment tomorrow.',
  voice: { provider: 'openai', voiceId: 'alloy' },
  stt: { provider: 'openai' },
  tts: { provider: 'openai' },
  flow: {
    startNodeId: 'bye',
    nodes: [{ id: 'bye', type: 'end', disposition: 'reminded', message: 'Goodbye.' }],
    edges: [],
  },
};

export function campaignBenchPlan(env: NodeJS.ProcessEnv = process.env): CampaignBenchPlan {
  const read = (name: string, fallback: number, valid: (n: number) => boolean, rule: string): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    if (!valid(value)) throw new Error(`${name}=${raw}: ${rule}`);
    return value;
  };
  return {
    contacts: read(
      'CAMPAIGN_BENCH_CONTACTS',
      10_000,
      (n) => Number.isInteger(n) && n >= 20 && n <= MAX_CONTACTS,
      `must be an integer from 20 to ${MAX_CONTACTS}`,
    ),
    callsPerSecond: read(
      'CAMPAIGN_BENCH_CPS',
      20,
      (n) => n > 0 && n <= 50,
      'must be more than 0 and at most 50 (the API’s limit)',
    ),
    concurrency: read(
      'CAMPAIGN_BENCH_CONCURRENCY',
      100,
      (n) => Number.isInteger(n) && n >= 1 && n <= 1000,
      'must be an integer from 1 to 1000',
    ),
  };
}

interface BenchContact {
  phone: string;
  name: string;
  zone: number;
  kind: number;
}

/** Zones in blocks of 20 (so every zone gets every kind), kinds cycling within a block. */
function benchContacts(n: number): BenchContact[] {
  const perZone = ZONES.map(() => 0);
  return Array.from({ length: n }, (_, i) => {
    const zone = Math.floor(i / KIND_CYCLE.length) % ZONES.length;
    const serial = perZone[zone]!;
    perZone[zone] = serial + 1;
    const areas = ZONES[zone]!.areas;
    const area = areas[serial % areas.length]!;
    const local = 1000 + Math.floor(serial / areas.length);
    return {
      phone: `+1${area}555${local}`,
      name: `Contact ${i}`,
      zone,
      kind: KIND_CYCLE[i % KIND_CYCLE.length]!,
    };
  });
}

function contactsCsv(contacts: BenchContact[]): string {
  return ['phone,name,time_zone', ...contacts.map((c) => `${c.phone},${c.name},${ZONES[c.zone]!.zone}`)].join(
    '\n',
  );
}

// ------------------------------------------------------------------------------------------------
// calling windows: one real interval as local windows of every zone

/**
 * The real interval [from, to) (whole seconds, under an hour) as each zone's local windows, split at
 * local midnight. The windows are one weekly table for every contact, so each zone also sees the
 * others' windows — an hour or more away from its own, outside the run.
 */
function windowsFor(from: number, to: number): Partial<Record<Weekday, CallingWindow[]>> {
  const windows: Partial<Record<Weekday, CallingWindow[]>> = {};
  for (const { zone } of ZONES) addLocalWindow(windows, zone, from, to);
  return windows;
}

// ------------------------------------------------------------------------------------------------
// processes

interface ProcessLog {
  warnings: number;
  errors: number;
  last: string[];
}

interface ParleyProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  log: ProcessLog;
  /** Date.now() when a line containing `text` was first seen. */
  seen(text: string): number | undefined;
  stop(): Promise<void>;
}

/** `node --import tsx <script>` configured by its environment alone, as a deployment runs it. */
async function spawnParley(opts: {
  name: string;
  script: string;
  env: NodeJS.ProcessEnv;
  /** Ready when a line contains this… */
  readyLine?: string;
  /** …or when this answers true. */
  ready?: () => Promise<boolean>;
  watch?: string[];
  log: (line: string) => void;
}): Promise<ParleyProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, opts.script)], {
    cwd: ROOT,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const log: ProcessLog = { warnings: 0, errors: 0, last: [] };
  const marks = new Map<string, number>();
  const watched = [...(opts.watch ?? []), ...(opts.readyLine ? [opts.readyLine] : [])];
  let tail = '';
  let partial = '';
  const onOutput = (chunk: Buffer) => {
    const text = chunk.toString();
    tail = (tail + text).slice(-4000);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      for (const w of watched) if (!marks.has(w) && line.includes(w)) marks.set(w, Date.now());
      // pino's JSON lines (40 warn, 50 error, 60 fatal) and the SDK's "[WARN] …" / "[ERROR] …".
      const pino = /"level":(\d+)/.exec(line)?.[1];
      const sdk = /^\S*\s*\[(WARN|ERROR)\]/.exec(line)?.[1];
      const level = pino !== undefined ? Number(pino) : sdk === 'WARN' ? 40 : sdk === 'ERROR' ? 50 : 0;
      // Activity-only workers (the relay's, the campaign dialers) say so at start: expected.
      if (level < 40 || line.includes('No workflows registered')) continue;
      if (level === 40) log.warnings++;
      else log.errors++;
      log.last = [...log.last, line.slice(0, 300)].slice(-5);
    }
  };
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);
  const proc: ParleyProcess = {
    name: opts.name,
    child,
    pid: child.pid ?? -1,
    log,
    seen: (text) => marks.get(text),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      await gone;
      clearTimeout(timer);
      process.off('exit', killOnExit);
    },
  };
  try {
    await waitUntil(
      `the ${opts.name} process to be ready`,
      async () => {
        if (child.exitCode !== null)
          throw new Error(`the ${opts.name} exited with ${child.exitCode}:\n${tail}`);
        if (opts.readyLine && marks.has(opts.readyLine)) return true;
        return opts.ready ? await opts.ready() : false;
      },
      120_000,
      200,
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  opts.log(`${opts.name} process ${child.pid} ready`);
  return proc;
}

// ------------------------------------------------------------------------------------------------
// /proc

/**
 * This bench's PostgreSQL: the postmaster named in its data directory's postmaster.pid and its
 * children (the backends). Without the directory: every `postgres` process on the machine.
 */
function postgresPids(dataDir: string | undefined): ((pid: number, comm: string) => boolean) | undefined {
  if (!dataDir) return undefined;
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  const pids = new Set([postmaster]);
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) pids.add(pid);
    } catch {
      // gone meanwhile
    }
  }
  return (pid) => pids.has(pid);
}

const PROCESSES = ['worker', 'api', 'relay', 'temporal', 'postgres', 'bench'] as const;
type ProcessName = (typeof PROCESSES)[number];

interface Sample {
  /** Date.now() */
  at: number;
  /** Cumulative CPU seconds. */
  cpu: Record<ProcessName, number>;
  machine: number;
  steal: number;
  rss: Partial<Record<ProcessName, number>>;
  /** Approximate backlogs: dials waiting on the dialer queue, workflow tasks on calls / campaigns. */
  backlog: { dialer: number; calls: number; campaigns: number };
  /** Contacts in flight (the campaign's query through the progress API). */
  inFlight: number;
  /** Calls live at the peer (created, not yet ended). */
  liveCalls: number;
  dials: number;
}

// ------------------------------------------------------------------------------------------------
// the stack

interface CampaignBenchStack {
  temporalServer: DevServer;
  temporal: Client;
  twilio: OutboundTwilioPeer;
  speechPeer: OpenAiPeer;
  worker: ParleyProcess;
  api: ParleyProcess;
  relay: ParleyProcess;
  apiUrl: string;
  owner: PgClient;
  close(): Promise<void>;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 300);

async function startStack(opts: {
  databaseUrl: string;
  cliPath: string;
  log: (line: string) => void;
}): Promise<CampaignBenchStack> {
  const { log } = opts;
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => log(`cleanup: ${errorText(err)}`));
  };
  try {
    const speechPeer = await startOpenAiPeer({ apiKey: PEER_API_KEY });
    closers.push(() => speechPeer.close());
    const twilio = await new OutboundTwilioPeer({ fastMedia: true, defaultScript: ANSWER }).listen();
    closers.push(() => twilio.close());
    // The dev server as `npm start` runs it (in memory): DEV_SERVER_DYNAMIC_CONFIG included.
    const temporalServer = await startDevServer({
      cliPath: opts.cliPath,
      port: await freePort(),
      headless: true,
      log,
    });
    closers.push(() => temporalServer.stop());
    const connection = await Connection.connect({ address: temporalServer.address });
    closers.push(() => connection.close());
    const temporal = new Client({ connection });

    const [apiPort, relayPort] = [await freePort(), await freePort()];
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const relayUrl = `ws://127.0.0.1:${relayPort}`;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      DATABASE_URL: opts.databaseUrl,
      TEMPORAL_ADDRESS: temporalServer.address,
      TEMPORAL_NAMESPACE: 'default',
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_API_BASE_URL: twilio.baseUrl,
      PUBLIC_BASE_URL: apiUrl,
      RELAY_PUBLIC_URL: relayUrl,
      STREAM_TOKEN_SECRET: randomBytes(24).toString('hex'),
    };
    await runMigrations(loadConfig({ ...env, LOG_LEVEL: 'silent' }));
    const owner = new PgClient({ connectionString: opts.databaseUrl });
    await owner.connect();
    closers.push(() => owner.end());

    log('starting the worker, api and relay processes');
    const started = await Promise.allSettled([
      spawnParley({
        name: 'worker',
        script: 'workers/main.ts',
        // Info: its start line, and the dialer's "dialing for campaign"; nothing per call.
        env: { ...env, LOG_LEVEL: 'info', WORKER_TASK_QUEUES: WORKER_QUEUES.join(',') },
        readyLine: 'worker running',
        watch: ['dialing for campaign'],
        log,
      }),
      spawnParley({
        name: 'api',
        script: 'api/main.ts',
        env: { ...env, API_HOST: '127.0.0.1', API_PORT: String(apiPort) },
        ready: async () => (await fetch(`${apiUrl}/health/ready`).catch(() => undefined))?.ok ?? false,
        log,
      }),
      spawnParley({
        name: 'relay',
        script: 'realtime-relay/main.ts',
        env: {
          ...env,
          RELAY_HOST: '127.0.0.1',
          RELAY_PORT: String(relayPort),
          RELAY_INSTANCE_ID: `bench-campaign-relay-${process.pid}`,
          OPENAI_API_KEY: PEER_API_KEY,
          OPENAI_BASE_URL: speechPeer.baseUrl,
        },
        ready: async () =>
          (await fetch(`http://127.0.0.1:${relayPort}/health/ready`).catch(() => undefined))?.ok ?? false,
        log,
      }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') closers.push(() => s.value.stop());
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [worker, api, relay] = started.map((s) => (s as PromiseFulfilledResult<ParleyProcess>).value) as [
      ParleyProcess,
      ParleyProcess,
      ParleyProcess,
    ];
    return { temporalServer, temporal, twilio, speechPeer, worker, api, relay, apiUrl, owner, close };
  } catch (err) {
    await close();
    throw err;
  }
}

// ------------------------------------------------------------------------------------------------
// the run

export interface CampaignBenchOptions {
  databaseUrl: string;
  /** PostgreSQL's data directory: its postmaster.pid names the processes whose CPU is PostgreSQL's. */
  postgresDataDir?: string;
  cliPath: string;
  log: (line: string) => void;
  /** Default: from the environment (campaignBenchPlan). */
  plan?: CampaignBenchPlan;
}

export interface Dist {
  n: number;
  min: number;
  p5: number;
  p50: number;
  p95: number;
  max: number;
}

function dist(values: number[]): Dist {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0] ?? NaN,
    p5: percentile(sorted, 5),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

interface HistoryRow {
  workflowId: string;
  runId: string;
  events: number;
  bytes: number;
}

/** One run of the campaign workflow, read from its history. */
interface CampaignRun extends HistoryRow {
  startedAt: number;
  durationMs: number;
  /** Workflow tasks failed, by cause (e.g. UNHANDLED_COMMAND: a signal came in while the run tried to close). */
  taskFailures: Record<string, number>;
  taskTimeouts: number;
  /** From its CONTINUE_AS_NEW_AT_EVENTS-th event to its end, ms (null: the run stayed under it). */
  pastThresholdMs: number | null;
  /** Dials per second meanwhile (null: the run stayed under it). */
  pastThresholdDialRate: number | null;
}

/** workflows/campaign-workflow.ts continues as new once a run's history passes this many events. */
const CONTINUE_AS_NEW_AT_EVENTS = 4_000;

/** Epoch ms of a protobuf Timestamp (seconds may be a Long). */
function timestampMs(
  ts: { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined,
): number {
  if (!ts) return NaN;
  return Number(String(ts.seconds ?? 0)) * 1000 + (ts.nanos ?? 0) / 1e6;
}

export interface CampaignBenchResults {
  plan: CampaignBenchPlan;
  expectedDials: number;
  kinds: { label: string; contacts: number; status: CampaignContactStatus; dials: number }[];
  import: { rows: number; accepted: number; ms: number };
  /** The launch request, and how long before T_open it ended (negative: after). */
  launch: { ms: number; marginMs: number; dialerServingAfterMs: number | null };
  windowMs: number;
  /** When the windows were widened to the whole week (ms after T_open), or null. */
  widenedAfterMs: number | null;
  dials: {
    total: number;
    /** First → last dial. */
    spanMs: number;
    steady: { fromMs: number; toMs: number; dials: number; rate: number };
    perSecond: Dist;
    per10s: Dist;
    busiestSecond: number;
    maxLiveCalls: number;
  };
  inFlight: Dist;
  liveCalls: Dist;
  /** The first dial's path, ms after T_open: its contact's workflow started, its call's, calls.create. */
  firstDial: { contactStartedMs: number; callStartedMs: number; createdMs: number } | null;
  backlog: { dialer: Dist; calls: Dist; campaigns: Dist };
  /** CPU cores used over the steady phase, and CPU seconds per 1,000 dials over the whole campaign. */
  cpu: {
    steadyCores: Record<ProcessName | 'machine' | 'other' | 'steal', number>;
    perThousandDials: Record<ProcessName, number>;
    postgresScope: 'this cluster' | 'every postgres process on the machine';
  };
  memory: {
    workerIdle: number;
    worker: Dist;
    workerEnd: number;
    end: Partial<Record<ProcessName, number>>;
  };
  zones: { zone: string; contacts: number; dials: number; firstDialAfterOpenMs: number }[];
  dialsBeforeOpen: number;
  dialsOutsideWindows: number;
  history: {
    /** Oldest run first. */
    campaignRuns: CampaignRun[];
    contact: Dist & { bytesMax: number };
    call: Dist & { bytesMax: number };
  };
  end: {
    status: string;
    done: boolean;
    counts: Record<string, number>;
    expectedCounts: Record<string, number>;
    attempts: { total: number; byOutcome: Record<string, number> };
    repeatedCreates: number;
    refusedCreates: number;
    callbacksNot2xx: number;
    /** T_open → the progress API said completed. */
    campaignMs: number;
    lastDialToCompletedMs: number;
  };
  logs: Record<'worker' | 'api' | 'relay', ProcessLog>;
  problems: string[];
  elapsedMs: number;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface ProgressView {
  status: string;
  done: boolean;
  inFlight: number;
  counts: Record<string, number>;
  attempts: { total: number; byOutcome: Record<string, number> };
}

export async function runCampaignBench(opts: CampaignBenchOptions): Promise<CampaignBenchResults> {
  const started = Date.now();
  const plan = opts.plan ?? campaignBenchPlan();
  const contacts = benchContacts(plan.contacts);
  const expectedDials = contacts.reduce((sum, c) => sum + KINDS[c.kind]!.dials, 0);
  opts.log(
    `campaign: ${plan.contacts} contacts (${expectedDials} dials expected), cap ${plan.callsPerSecond}/s, ` +
      `${plan.concurrency} at once (≈ ${Math.ceil(expectedDials / plan.callsPerSecond / 60)} min at the cap)`,
  );
  const stack = await startStack(opts);
  try {
    return await runCampaign(stack, plan, contacts, expectedDials, opts, started);
  } finally {
    await stack.close();
  }
}

async function runCampaign(
  stack: CampaignBenchStack,
  plan: CampaignBenchPlan,
  contacts: BenchContact[],
  expectedDials: number,
  opts: CampaignBenchOptions,
  started: number,
): Promise<CampaignBenchResults> {
  const { log } = opts;
  const { twilio, temporal } = stack;
  const problems: string[] = [];
  /** The bench user's JWT, once signed up. */
  const session: { token?: string } = {};
  const api = async (method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown): Promise<Json> => {
    const res = await fetch(`${stack.apiUrl}${url}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(session.token ? { authorization: `Bearer ${session.token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 500)}`);
    return JSON.parse(text) as Json;
  };

  // A tenant on the enterprise plan, its agent and caller number, through the public API.
  const signup = await api('POST', '/v1/auth/signup', {
    tenantName: 'Campaign bench',
    name: 'Bench',
    email: `campaign-bench-${Date.now()}@example.test`,
    password: 'bench-password-1',
  });
  session.token = signup.token as string;
  const tenantId = signup.tenant.id as string;
  const agent = await api('POST', '/v1/agents', { name: 'Reminder', definition: BENCH_CAMPAIGN_AGENT });
  await api('POST', `/v1/agents/${agent.id}/publish`, {});
  const callerNumber = `+1415555${String(Date.now()).slice(-4)}`;
  await api('POST', '/v1/phone-numbers', { number: callerNumber, agentId: agent.id });
  await stack.owner.query(
    `update tenants set plan = 'enterprise',
            settings = case when $2::int > 200 then settings || jsonb_build_object('maxConcurrentCalls', $2::int)
                            else settings end
      where id = $1`,
    [tenantId, plan.concurrency],
  );
  for (const c of contacts) twilio.script(c.phone, KINDS[c.kind]!.script);

  // The draft, its contacts imported from the CSV in the same request.
  const csv = contactsCsv(contacts);
  const importStarted = performance.now();
  const created = await api('POST', '/v1/campaigns', {
    name: 'Campaign bench',
    agentId: agent.id,
    callerNumber,
    csv,
    settings: {
      windows: ALWAYS_OPEN,
      defaultTimeZone: 'America/New_York',
      maxConcurrentCalls: plan.concurrency,
      maxCallsPerSecond: plan.callsPerSecond,
      retry: RETRY,
      voicemail: { action: 'hangup' },
      ringTimeoutSeconds: 5,
      machineDetection: true,
    },
  });
  const importMs = performance.now() - importStarted;
  const campaignId = created.id as string;
  const accepted = Number(created.importReport?.totals?.accepted ?? NaN);
  if (accepted !== contacts.length) {
    problems.push(
      `the import accepted ${accepted} of ${contacts.length} rows: ${JSON.stringify(created.importReport?.totals)}`,
    );
  }
  log(`imported ${contacts.length} contacts in ${(importMs / 1000).toFixed(1)} s`);

  // Sampling: /proc every second, the queues' backlogs, the progress API (which queries the workflow).
  const dialerQueue = campaignDialerQueue(campaignId);
  const { TaskQueueType, TaskQueueKind } = proto.api.enums.v1;
  const backlogOf = async (name: string, type: proto.api.enums.v1.TaskQueueType): Promise<number> => {
    try {
      const res = await temporal.withDeadline(Date.now() + 800, () =>
        temporal.workflowService.describeTaskQueue({
          namespace: 'default',
          taskQueue: { name, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
          taskQueueType: type,
          reportStats: true,
        }),
      );
      const count = res.stats?.approximateBacklogCount;
      return count === null || count === undefined ? NaN : Number(count.toString());
    } catch {
      return NaN;
    }
  };
  const temporalPid = stack.temporalServer.child.pid;
  const postgresScope = postgresPids(opts.postgresDataDir)
    ? ('this cluster' as const)
    : ('every postgres process on the machine' as const);
  const cpuNow = (): Pick<Sample, 'cpu' | 'machine' | 'steal' | 'rss'> => {
    const own = process.cpuUsage();
    const pg = postgresPids(opts.postgresDataDir) ?? ((_: number, comm: string) => comm === 'postgres');
    const m = machineCpuSeconds();
    return {
      cpu: {
        worker: procCpuSeconds((pid) => pid === stack.worker.pid),
        api: procCpuSeconds((pid) => pid === stack.api.pid),
        relay: procCpuSeconds((pid) => pid === stack.relay.pid),
        temporal: procCpuSeconds((pid) => pid === temporalPid),
        postgres: procCpuSeconds(pg),
        bench: (own.user + own.system) / 1e6,
      },
      machine: m.busy,
      steal: m.steal,
      rss: {
        worker: rssBytes(stack.worker.pid),
        api: rssBytes(stack.api.pid),
        relay: rssBytes(stack.relay.pid),
        temporal: rssBytes(temporalPid),
        bench: process.memoryUsage.rss(),
      },
    };
  };
  const samples: Sample[] = [];
  let lastProgress: ProgressView | undefined;
  let sampling = true;
  let shown = 0;
  const sampler = (async () => {
    while (sampling) {
      const t0 = Date.now();
      const [view, dialer, calls, campaigns] = await Promise.all([
        api('GET', `/v1/campaigns/${campaignId}/progress`).then(
          (v) => v as unknown as ProgressView,
          () => undefined,
        ),
        backlogOf(dialerQueue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        backlogOf('calls', TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        backlogOf('campaigns', TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
      ]);
      if (view) lastProgress = view;
      const dials = twilio.creates.length;
      samples.push({
        at: Date.now(),
        ...cpuNow(),
        backlog: { dialer, calls, campaigns },
        inFlight: view?.inFlight ?? NaN,
        liveCalls: twilio.liveCalls,
        dials,
      });
      const tenAgo = samples[Math.max(0, samples.length - 11)]!;
      const rate =
        samples.length > 1 ? ((dials - tenAgo.dials) * 1000) / Math.max(1, Date.now() - tenAgo.at) : 0;
      // Redrawn when it moves (without a terminal, stats.progress prints every tenth).
      if (dials > 0 && dials !== shown) {
        shown = dials;
        progress(`dials, ${rate.toFixed(1)}/s now`, Math.min(dials, expectedDials), expectedDials);
      }
      // The speech peer keeps every request; nothing here reads them.
      stack.speechPeer.speechRequests.length = 0;
      await sleep(Math.max(0, 1000 - (Date.now() - t0)));
    }
  })();

  try {
    await sleep(2_000);
    const idle = cpuNow();
    // Every zone's window opens at T_open, a few seconds after the launch ends, on a whole second.
    const leadMs = 5_000 + plan.contacts / 5;
    const tOpen = Math.ceil((Date.now() + leadMs) / 1000) * 1000;
    const tClose = tOpen + WINDOW_MS;
    const windows = windowsFor(tOpen, tClose);
    await api('PATCH', `/v1/campaigns/${campaignId}`, { settings: { windows } });
    twilio.resetMaxLiveCalls();
    const launchStarted = Date.now();
    await api('POST', `/v1/campaigns/${campaignId}/launch`, {});
    const launchEnded = Date.now();
    if (launchEnded > tOpen)
      problems.push(`the launch ended ${launchEnded - tOpen} ms after the windows opened`);
    log(
      `launched; windows open in ${((tOpen - Date.now()) / 1000).toFixed(1)} s, close ${WINDOW_MS / 60_000} min later`,
    );

    // Until the campaign is over. A campaign still running a minute before its windows close gets
    // them widened to the whole week (an edit while running), so that a slow machine still finishes.
    let completedAt: number | undefined;
    let widenedAt: number | undefined;
    let lastDialSeen = { dials: 0, at: Date.now() };
    let lastDescribe = 0;
    while (completedAt === undefined) {
      await sleep(250);
      const now = Date.now();
      if (twilio.creates.length !== lastDialSeen.dials)
        lastDialSeen = { dials: twilio.creates.length, at: now };
      // The workflow itself, every few seconds: terminated (a history limit) or failed is the end too.
      const ended =
        now - lastDescribe < 3_000
          ? undefined
          : await temporal.workflow
              .getHandle(campaignWorkflowId(campaignId))
              .describe()
              .then(
                (d) => (['RUNNING', 'COMPLETED', 'CONTINUED_AS_NEW'].includes(d.status.name) ? undefined : d),
                () => undefined,
              );
      if (now - lastDescribe >= 3_000) lastDescribe = now;
      if (lastProgress?.done && lastProgress.status !== 'running') completedAt = samples.at(-1)?.at ?? now;
      else if (ended) {
        const events = (await temporal.workflow.getHandle(ended.workflowId, ended.runId).fetchHistory())
          .events;
        const reason = events?.at(-1)?.workflowExecutionTerminatedEventAttributes?.reason;
        problems.push(
          `the campaign workflow run ${ended.runId} ended ${ended.status.name} after ${ended.historyLength} events` +
            (reason ? ` (${reason})` : ''),
        );
        completedAt = now;
      } else if (now - Math.max(lastDialSeen.at, tOpen) > STALL_MS) {
        problems.push(
          `no dial for ${STALL_MS / 60_000} min with the campaign ${lastProgress?.status ?? '?'}`,
        );
        await api('POST', `/v1/campaigns/${campaignId}/cancel`, {}).catch((err: unknown) =>
          problems.push(`cancel: ${errorText(err)}`),
        );
        completedAt = now;
      } else if (widenedAt === undefined && now > tClose - 60_000) {
        widenedAt = Date.now();
        await api('PATCH', `/v1/campaigns/${campaignId}`, { settings: { windows: ALWAYS_OPEN } });
        log('the windows close in a minute: widened to the whole week');
      } else if (Date.now() > tOpen + MAX_CAMPAIGN_MS) {
        problems.push(
          `the campaign was not over ${MAX_CAMPAIGN_MS / 3_600_000} h after its windows opened (${lastProgress?.status ?? 'no progress'})`,
        );
        await api('POST', `/v1/campaigns/${campaignId}/cancel`, {}).catch((err: unknown) =>
          problems.push(`cancel: ${errorText(err)}`),
        );
        completedAt = Date.now();
      }
    }
    sampling = false;
    await sampler;
    progress('dials', expectedDials, expectedDials);
    const final = (await api('GET', `/v1/campaigns/${campaignId}/progress`)) as unknown as ProgressView;
    log(`campaign ${final.status} after ${((completedAt - tOpen) / 1000).toFixed(0)} s; reading histories`);

    // ---- dials
    const creates = [...twilio.creates];
    const times = creates.map((c) => c.time).sort((a, b) => a - b);
    const n = times.length;
    const i0 = n >= 40 ? Math.floor(n * 0.05) : 0;
    const i1 = n >= 40 ? Math.floor(n * 0.9) : Math.max(0, n - 1);
    const from = times[i0] ?? tOpen;
    const to = times[i1] ?? tOpen;
    const buckets = (sizeMs: number): number[] => {
      const count = Math.floor((to - from) / sizeMs);
      const b = Array.from({ length: count }, () => 0);
      for (const t of times) {
        const k = Math.floor((t - from) / sizeMs);
        if (t >= from && k < count) b[k] = b[k]! + 1;
      }
      return b;
    };
    let busiestSecond = 0;
    for (let i = 0, j = 0; j < n; j++) {
      while (times[j]! - times[i]! >= 1000) i++;
      busiestSecond = Math.max(busiestSecond, j - i + 1);
    }
    const inSteady = samples.filter((s) => s.at >= from && s.at <= to);
    const sampleAtOrBefore = (t: number) => [...samples].reverse().find((s) => s.at <= t) ?? samples[0]!;
    const sampleAtOrAfter = (t: number) => samples.find((s) => s.at >= t) ?? samples.at(-1)!;
    const a = sampleAtOrBefore(from);
    const b = sampleAtOrAfter(to);
    const seconds = Math.max(1e-9, (b.at - a.at) / 1000);
    const steadyCores = Object.fromEntries(
      PROCESSES.map((p) => [p, (b.cpu[p] - a.cpu[p]) / seconds]),
    ) as Record<ProcessName, number>;
    const machineCores = (b.machine - a.machine) / seconds;
    const launchSample = sampleAtOrBefore(launchStarted);
    const endSample = samples.at(-1)!;
    const perThousandDials = Object.fromEntries(
      PROCESSES.map((p) => [p, ((endSample.cpu[p] - launchSample.cpu[p]) / Math.max(1, n)) * 1000]),
    ) as Record<ProcessName, number>;
    const running = samples.filter((s) => s.at >= launchStarted);

    // ---- windows
    const byPhone = new Map(contacts.map((c) => [c.phone, c]));
    const zoneTimes = ZONES.map(() => [] as number[]);
    let dialsOutsideWindows = 0;
    for (const c of creates) {
      const contact = c.to ? byPhone.get(c.to) : undefined;
      if (!contact) {
        problems.push(`calls.create to ${c.to ?? '(none)'}, not a contact of the campaign`);
        continue;
      }
      zoneTimes[contact.zone]!.push(c.time);
      const widened = widenedAt !== undefined && c.time >= widenedAt;
      if (!widened && !insideCallingWindow(c.time, ZONES[contact.zone]!.zone, windows)) dialsOutsideWindows++;
    }
    const dialsBeforeOpen = times.filter((t) => t < tOpen).length;
    if (dialsBeforeOpen > 0) problems.push(`${dialsBeforeOpen} dials before the windows opened`);
    if (dialsOutsideWindows > 0) problems.push(`${dialsOutsideWindows} dials outside the contact's window`);

    // ---- end to end
    const expectedCounts: Record<string, number> = {};
    for (const c of contacts) {
      const s = KINDS[c.kind]!.status;
      expectedCounts[s] = (expectedCounts[s] ?? 0) + 1;
    }
    if (final.status !== 'completed') problems.push(`the campaign ended ${final.status}`);
    if (!final.done) problems.push('the progress API does not say done');
    for (const s of ['pending', 'in_progress', 'scheduled'])
      if ((final.counts[s] ?? 0) > 0) problems.push(`${final.counts[s]} contacts left ${s}`);
    for (const [s, want] of Object.entries(expectedCounts))
      if ((final.counts[s] ?? 0) !== want)
        problems.push(`${final.counts[s] ?? 0} contacts ${s}, expected ${want}`);
    const perCall = new Map<string, number>();
    for (const c of creates) {
      const callId = new URL(c.url ?? 'http://x/').searchParams.get('callId') ?? '(none)';
      perCall.set(callId, (perCall.get(callId) ?? 0) + 1);
    }
    const repeatedCreates = [...perCall.values()].filter((k) => k > 1).length;
    if (repeatedCreates > 0) problems.push(`${repeatedCreates} attempts with more than one calls.create`);
    if (perCall.has('(none)')) problems.push(`${perCall.get('(none)')} calls.create without a callId`);
    const refusedCreates = creates.filter((c) => c.status !== 201).length;
    if (refusedCreates > 0) problems.push(`${refusedCreates} calls.create refused by the peer`);
    if (n !== expectedDials) problems.push(`${n} dials, the scripts make ${expectedDials}`);
    if (final.attempts.total !== n) problems.push(`${final.attempts.total} attempts recorded for ${n} dials`);
    const rows = await stack.owner.query<{ phone: string; status: string; attempts: number }>(
      `select c.phone_e164 as phone, cc.status, cc.attempts
         from campaign_contacts cc join contacts c on c.id = cc.contact_id where cc.campaign_id = $1`,
      [campaignId],
    );
    const dialsTo = new Map<string, number>();
    for (const c of creates) if (c.to) dialsTo.set(c.to, (dialsTo.get(c.to) ?? 0) + 1);
    const wrong = rows.rows.filter((r) => {
      const kind = KINDS[byPhone.get(r.phone)?.kind ?? -1];
      return (
        !kind || r.status !== kind.status || r.attempts !== kind.dials || dialsTo.get(r.phone) !== kind.dials
      );
    });
    if (wrong.length > 0) {
      problems.push(
        `${wrong.length} contacts not as their script says, e.g. ` +
          wrong
            .slice(0, 3)
            .map((r) => `${r.phone}: ${r.status}, ${r.attempts} attempts, ${dialsTo.get(r.phone) ?? 0} dials`)
            .join('; '),
      );
    }
    const callbacksNot2xx = twilio.callbacks.filter((c) => c.status < 200 || c.status >= 300).length;

    // The first dial's path from the window's opening: contact workflow, call workflow, calls.create.
    let firstDial: CampaignBenchResults['firstDial'] = null;
    const earliest = [...creates].sort((x, y) => x.time - y.time)[0];
    const earliestCallId = new URL(earliest?.url ?? 'http://x/').searchParams.get('callId');
    if (earliest && earliestCallId) {
      try {
        const [attempt] = (
          await stack.owner.query<{ contact_id: string }>(
            `select contact_id from campaign_attempts where call_id = $1`,
            [earliestCallId],
          )
        ).rows;
        const contactRun = await temporal.workflow
          .getHandle(campaignContactWorkflowId(campaignId, attempt!.contact_id))
          .describe();
        const callRun = await temporal.workflow.getHandle(callWorkflowId(earliestCallId)).describe();
        firstDial = {
          contactStartedMs: contactRun.startTime.getTime() - tOpen,
          callStartedMs: callRun.startTime.getTime() - tOpen,
          createdMs: earliest.time - tOpen,
        };
      } catch (err) {
        log(`the first dial's path: ${errorText(err)}`);
      }
    }

    // ---- histories
    const list = async (query: string): Promise<HistoryRow[]> => {
      const out: HistoryRow[] = [];
      for await (const info of temporal.workflow.list({ query })) {
        out.push({
          workflowId: info.workflowId,
          runId: info.runId,
          events: info.historyLength,
          bytes: info.historySize ?? NaN,
        });
      }
      return out;
    };
    const { EventType, WorkflowTaskFailedCause } = proto.api.enums.v1;
    const campaignRuns: CampaignRun[] = [];
    for (const run of await list(`WorkflowId = "${campaignWorkflowId(campaignId)}"`)) {
      const events =
        (await temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events ?? [];
      const taskFailures: Record<string, number> = {};
      let taskTimeouts = 0;
      for (const e of events) {
        if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) {
          const cause = WorkflowTaskFailedCause[e.workflowTaskFailedEventAttributes?.cause ?? 0] ?? 'unknown';
          const name = cause.replace('WORKFLOW_TASK_FAILED_CAUSE_', '');
          taskFailures[name] = (taskFailures[name] ?? 0) + 1;
        } else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT) taskTimeouts++;
      }
      const first = timestampMs(events[0]?.eventTime);
      const last = timestampMs(events.at(-1)?.eventTime);
      const threshold = events[CONTINUE_AS_NEW_AT_EVENTS - 1];
      const passedAt = threshold ? timestampMs(threshold.eventTime) : NaN;
      campaignRuns.push({
        ...run,
        startedAt: first,
        durationMs: last - first,
        taskFailures,
        taskTimeouts,
        pastThresholdMs: threshold ? last - passedAt : null,
        pastThresholdDialRate: threshold
          ? (times.filter((t) => t >= passedAt && t < last).length * 1000) / Math.max(1, last - passedAt)
          : null,
      });
    }
    campaignRuns.sort((x, y) => x.startedAt - y.startedAt);
    const contactRuns = await list(`WorkflowType = "campaignContactWorkflow"`);
    const callRuns = await list(`WorkflowType = "callWorkflow"`);
    const withBytes = (runs: HistoryRow[]) => ({
      ...dist(runs.map((r) => r.events)),
      bytesMax: Math.max(...runs.map((r) => r.bytes)),
    });

    const lastDial = times[n - 1] ?? tOpen;
    return {
      plan,
      expectedDials,
      kinds: KINDS.map((k, i) => ({
        label: k.label,
        contacts: contacts.filter((c) => c.kind === i).length,
        status: k.status,
        dials: k.dials,
      })),
      import: { rows: contacts.length, accepted, ms: importMs },
      launch: {
        ms: launchEnded - launchStarted,
        marginMs: tOpen - launchEnded,
        dialerServingAfterMs: ((t) => (t === undefined ? null : t - launchStarted))(
          stack.worker.seen('dialing for campaign'),
        ),
      },
      windowMs: WINDOW_MS,
      widenedAfterMs: widenedAt === undefined ? null : widenedAt - tOpen,
      dials: {
        total: n,
        spanMs: n > 0 ? lastDial - times[0]! : 0,
        steady: {
          fromMs: from - tOpen,
          toMs: to - tOpen,
          dials: i1 - i0,
          rate: (i1 - i0) / Math.max(1e-9, (to - from) / 1000),
        },
        perSecond: dist(buckets(1000)),
        per10s: dist(buckets(10_000).map((k) => k / 10)),
        busiestSecond,
        maxLiveCalls: twilio.maxLiveCalls,
      },
      inFlight: dist(inSteady.map((s) => s.inFlight)),
      liveCalls: dist(inSteady.map((s) => s.liveCalls)),
      firstDial,
      backlog: {
        dialer: dist(inSteady.map((s) => s.backlog.dialer)),
        calls: dist(inSteady.map((s) => s.backlog.calls)),
        campaigns: dist(inSteady.map((s) => s.backlog.campaigns)),
      },
      cpu: {
        steadyCores: {
          ...steadyCores,
          machine: machineCores,
          other: machineCores - PROCESSES.reduce((sum, p) => sum + steadyCores[p], 0),
          steal: (b.steal - a.steal) / seconds,
        },
        perThousandDials,
        postgresScope,
      },
      memory: {
        workerIdle: idle.rss.worker ?? NaN,
        worker: dist(running.map((s) => s.rss.worker ?? NaN)),
        workerEnd: endSample.rss.worker ?? NaN,
        end: endSample.rss,
      },
      zones: ZONES.map((z, i) => ({
        zone: z.zone,
        contacts: contacts.filter((c) => c.zone === i).length,
        dials: zoneTimes[i]!.length,
        firstDialAfterOpenMs: zoneTimes[i]!.length ? Math.min(...zoneTimes[i]!) - tOpen : NaN,
      })),
      dialsBeforeOpen,
      dialsOutsideWindows,
      history: { campaignRuns, contact: withBytes(contactRuns), call: withBytes(callRuns) },
      end: {
        status: final.status,
        done: final.done,
        counts: final.counts,
        expectedCounts,
        attempts: final.attempts,
        repeatedCreates,
        refusedCreates,
        callbacksNot2xx,
        campaignMs: completedAt - tOpen,
        lastDialToCompletedMs: completedAt - lastDial,
      },
      logs: { worker: stack.worker.log, api: stack.api.log, relay: stack.relay.log },
      problems,
      elapsedMs: Date.now() - started,
    };
  } finally {
    sampling = false;
    await sampler;
  }
}

// ------------------------------------------------------------------------------------------------
// its section of RESULTS.md

const f = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
const mib = (bytes: number | undefined) => f((bytes ?? NaN) / 2 ** 20, 0);
const s1 = (ms: number) => f(ms / 1000, 1);

/** Where the dial rate is decided, from the steady phase's figures. */
/** The Parley stack's own processes (the bench process is the load generator). */
const STACK: readonly ProcessName[] = ['worker', 'api', 'relay', 'temporal', 'postgres'];

/** CPU seconds the stack spends per dial, and the dial rate the machine's cores could carry at that cost. */
function stackCost(r: CampaignBenchResults): { perDial: number; ceiling: number } {
  const perDial = STACK.reduce((sum, p) => sum + r.cpu.perThousandDials[p], 0) / 1000;
  return { perDial, ceiling: os.cpus().length / Math.max(1e-9, perDial) };
}

function whereItSaturates(r: CampaignBenchResults): string {
  const cap = r.plan.callsPerSecond;
  const ratio = r.dials.steady.rate / cap;
  const c = r.cpu.steadyCores;
  const cores = os.cpus().length;
  const ranked = PROCESSES.map((p) => [p, c[p]] as const).sort((x, y) => y[1] - x[1]);
  const top = ranked
    .slice(0, 3)
    .map(([p, v]) => `${p} ${f(v, 2)}`)
    .join(', ');
  if (ratio >= 0.95) {
    return (
      `**The cap binds**: ${f(ratio, 2)} of it sustained, dial tasks waiting for the server-side rate limiter of ` +
      `\`dialer.<campaignId>\` (backlog p50 ${f(r.backlog.dialer.p50, 0)}, max ${f(r.backlog.dialer.max, 0)}), ` +
      `and the machine had ${f(cores - c.machine, 2)} of ${cores} cores to spare (busiest: ${top} cores).`
    );
  }
  const why: string[] = [];
  const cost = stackCost(r);
  if (cost.ceiling < cap) {
    why.push(
      `the stack spends ${f(cost.perDial, 2)} CPU s per dial (Temporal ${f(r.cpu.perThousandDials.temporal / 1000, 2)}, worker ${f(r.cpu.perThousandDials.worker / 1000, 2)}), so ${cores} cores carry at most ≈ ${f(cost.ceiling, 1)} dials/s even with nothing else running`,
    );
  }
  if (c.machine >= 0.9 * cores) {
    why.push(
      `the machine’s CPU is used up (${f(c.machine, 2)} of ${cores} cores busy, ${f(c.other, 2)} of them by processes outside the bench; busiest: ${top})`,
    );
  }
  if (c.worker >= 0.9)
    why.push(
      `the worker process uses ${f(c.worker, 2)} cores (its workflows and activities share one JavaScript thread)`,
    );
  if (r.inFlight.p50 >= 0.95 * r.plan.concurrency) {
    why.push(
      `the concurrency: ${f(r.inFlight.p50, 0)} of ${r.plan.concurrency} contacts in flight (p50), each holding its slot ≈ ${f(r.plan.concurrency / Math.max(1e-9, r.dials.steady.rate), 1)} s per dial`,
    );
  }
  if (r.backlog.calls.p50 > 5 || r.backlog.campaigns.p50 > 5) {
    why.push(
      `workflow tasks queue up for the worker (backlog p50: calls ${f(r.backlog.calls.p50, 0)}, campaigns ${f(r.backlog.campaigns.p50, 0)})`,
    );
  }
  if (r.backlog.dialer.p50 < 1)
    why.push('the dialer queue is mostly empty: dials are not produced as fast as the cap lets them out');
  return (
    `**Below the cap** (${f(ratio, 2)} of it). ` +
    (why.length
      ? `Evidence: ${why.join('; ')}.`
      : `No single saturated resource stands out (busiest: ${top} cores).`)
  );
}

export function campaignSection(r: CampaignBenchResults, machineLine: string, date: string): string {
  const { plan, dials: d } = r;
  const cap = plan.callsPerSecond;
  const ratio = d.steady.rate / cap;
  const c = r.cpu.steadyCores;
  const rateTable = [
    '| dials per second | value | / cap |',
    '|---|---:|---:|',
    `| **steady phase** (${s1(d.steady.fromMs)} → ${s1(d.steady.toMs)} s after T_open: 5th → 90th percentile of dial times, ${d.steady.dials} dials) | **${f(d.steady.rate, 2)}** | **${f(ratio, 2)}** |`,
    `| per second in the steady phase: p5 / p50 / p95 / max (${d.perSecond.n} s) | ${f(d.perSecond.p5, 0)} / ${f(d.perSecond.p50, 0)} / ${f(d.perSecond.p95, 0)} / ${f(d.perSecond.max, 0)} | ${f(d.perSecond.p50 / cap, 2)} (p50) |`,
    `| per 10-s bucket in the steady phase: min / p50 / max (${d.per10s.n} buckets) | ${f(d.per10s.min)} / ${f(d.per10s.p50)} / ${f(d.per10s.max)} | ${f(d.per10s.min / cap, 2)} – ${f(d.per10s.max / cap, 2)} |`,
    `| busiest second of the run (sliding 1-s window) | ${d.busiestSecond} | ${f(d.busiestSecond / cap, 2)} |`,
    `| whole run: ${d.total} dials from the first to the last (${s1(d.spanMs)} s) | ${f(d.total / Math.max(1e-9, d.spanMs / 1000), 2)} | ${f(d.total / Math.max(1e-9, d.spanMs / 1000) / cap, 2)} |`,
  ].join('\n');
  const cpuRow = (name: string, p: ProcessName) =>
    `| ${name} | ${f(c[p] * 100, 0)} | ${f(r.cpu.perThousandDials[p], 1)} | ${mib(r.memory.end[p])} |`;
  const cpuTable = [
    '| process | CPU % in the steady phase (100 = one core) | CPU s per 1,000 dials (launch → end) | RSS at the end, MiB |',
    '|---|---:|---:|---:|',
    cpuRow('worker (`workers/main.ts`: calls, campaigns, dialer, integrations, billing)', 'worker'),
    cpuRow('api (`api/main.ts`: Twilio webhooks, progress)', 'api'),
    cpuRow('relay (`realtime-relay/main.ts`: media streams, `speak`)', 'relay'),
    cpuRow('Temporal dev server', 'temporal'),
    `| PostgreSQL (${r.cpu.postgresScope}) | ${f(c.postgres * 100, 0)} | ${f(r.cpu.perThousandDials.postgres, 1)} | – |`,
    cpuRow('bench process (Twilio and OpenAI peers, caller simulator)', 'bench'),
    `| machine busy (of ${os.cpus().length} cores) / other processes / stolen | ${f(c.machine * 100, 0)} / ${f(c.other * 100, 0)} / ${f(c.steal * 100, 0)} | | |`,
  ].join('\n');
  const zoneTable = [
    '| zone | contacts | dials | first dial − window opening, ms |',
    '|---|---:|---:|---:|',
    ...r.zones.map((z) => `| ${z.zone} | ${z.contacts} | ${z.dials} | ${f(z.firstDialAfterOpenMs, 0)} |`),
  ].join('\n');
  const h = r.history;
  const runs = dist(h.campaignRuns.map((x) => x.events));
  const historyTable = [
    '| workflow | executions | events p50 | events max | history bytes max |',
    '|---|---:|---:|---:|---:|',
    `| \`campaignWorkflow\`, one row per run (continue-as-new) | ${h.campaignRuns.length} runs | ${f(runs.p50, 0)} | ${f(runs.max, 0)} | ${f(Math.max(...h.campaignRuns.map((x) => x.bytes)), 0)} |`,
    `| \`campaignContactWorkflow\` | ${h.contact.n} | ${f(h.contact.p50, 0)} | ${f(h.contact.max, 0)} | ${f(h.contact.bytesMax, 0)} |`,
    `| \`callWorkflow\` (outbound) | ${h.call.n} | ${f(h.call.p50, 0)} | ${f(h.call.max, 0)} | ${f(h.call.bytesMax, 0)} |`,
  ].join('\n');
  const counts = Object.entries(r.end.counts)
    .filter(([k, v]) => v > 0 && k !== 'total')
    .map(
      ([k, v]) =>
        `${k} ${v}${r.end.expectedCounts[k] !== undefined ? ` (expected ${r.end.expectedCounts[k]})` : ''}`,
    )
    .join(', ');
  const attempts = Object.entries(r.end.attempts.byOutcome)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const m = r.memory;
  const logLine = (name: 'worker' | 'api' | 'relay') =>
    `${name} ${r.logs[name].warnings} warnings / ${r.logs[name].errors} errors`;
  const lastLogs = (['worker', 'api', 'relay'] as const).flatMap((p) =>
    r.logs[p].last.map((l) => `${p}: ${l}`),
  );
  const zonesFirst = r.zones.map((z) => z.firstDialAfterOpenMs).filter(Number.isFinite);
  const campaignEvents = h.campaignRuns.reduce((sum, x) => sum + x.events, 0);
  const over = h.campaignRuns.filter((x) => x.pastThresholdMs !== null);
  const failures: Record<string, number> = {};
  for (const x of h.campaignRuns)
    for (const [cause, k] of Object.entries(x.taskFailures)) failures[cause] = (failures[cause] ?? 0) + k;
  const timeouts = h.campaignRuns.reduce((sum, x) => sum + x.taskTimeouts, 0);
  const failureText =
    Object.entries(failures)
      .map(([cause, k]) => `${k} ${cause}`)
      .join(', ') || 'none';
  return [
    `## ${date} — outbound campaign: ${plan.contacts} contacts, dials per second against the cap, calling windows, history, worker memory`,
    '',
    `- Machine: ${machineLine}`,
    '- Command: `npm run bench` (its campaign part; alone: `npx tsx bench/campaign.ts`, which appends only this section; ' +
      'sizes from `CAMPAIGN_BENCH_CONTACTS`, `CAMPAIGN_BENCH_CPS`, `CAMPAIGN_BENCH_CONCURRENCY`). ' +
      `Its own stack: a Temporal CLI dev server in memory (\`--dynamic-config-value ${DEV_SERVER_DYNAMIC_CONFIG.join(' ')}\`: one partition per task queue, so the dialer queue’s rate limit is exact), ` +
      'embedded PostgreSQL (`bench/run.ts`’s, or its own when run alone), and **the api, one worker and the relay each as its own process** ' +
      '(`node --import tsx …/main.ts`, configured by environment; CPU and RSS from /proc per process). The bench process holds only the peers: ' +
      'the outbound Twilio peer with instant media (`fastMedia`: every `calls.create` recorded with its time; its caller simulator opens the Media Stream to the relay and hears the agent at once) and the OpenAI peer as the agent’s TTS. ' +
      `This part took ${f(r.elapsedMs / 60_000, 1)} min.`,
    `- Campaign: ${plan.contacts} contacts from a CSV in the create request, four zones (America/New_York, Chicago, Denver, Los_Angeles; explicit \`time_zone\`, two area codes each), ` +
      `cap **${cap} dials/s** (\`maxCallsPerSecond\`), **${plan.concurrency} at once** (\`maxConcurrentCalls\`; tenant on the enterprise plan), production page size and continue-as-new threshold. ` +
      `Scripts: ${r.kinds.map((k) => `${k.contacts} ${k.label} (→ ${k.status}, ${k.dials} dial${k.dials > 1 ? 's' : ''})`).join('; ')}; ` +
      `retries after 1 s, machine detection on, voicemail hung up on. ${r.expectedDials} dials expected. ` +
      'Agent: a greeting with the contact’s first name, then `end` with “Goodbye.”.',
    `- Windows: every zone’s window opens at one instant T_open, ${s1(r.launch.marginMs)} s after the launch request returned, and stays open ${f(r.windowMs / 60_000, 0)} min (local windows of each zone computed from the same real interval)` +
      (r.widenedAfterMs === null
        ? '.'
        : `; the campaign was not done a minute before they closed, so ${s1(r.widenedAfterMs)} s after T_open they were widened to the whole week (a running edit).`),
    `- Import: ${r.import.accepted} of ${r.import.rows} rows accepted; the create request (checks, CSV import, draft) took ${s1(r.import.ms)} s = **${f(r.import.rows / Math.max(1e-9, r.import.ms / 1000), 0)} rows/s**. ` +
      `Launch (contacts copied into the campaign, workflow started): ${f(r.launch.ms, 0)} ms; the worker served \`dialer.<id>\` ${r.launch.dialerServingAfterMs === null ? '(not seen)' : `${s1(r.launch.dialerServingAfterMs)} s`} after the launch began.`,
    '',
    '### Dial rate against the cap',
    '',
    rateTable,
    '',
    `- Concurrency ${plan.concurrency}: live calls at the peer max **${d.maxLiveCalls}**, p50 ${f(r.liveCalls.p50, 0)} in the steady phase; contacts in flight (the campaign’s query, every second) p50 ${f(r.inFlight.p50, 0)}, max ${f(r.inFlight.max, 0)}. ` +
      `By Little’s law a dial holds a contact slot ≈ ${f(r.inFlight.p50 / Math.max(1e-9, d.steady.rate), 1)} s, of which its call is live at the peer ≈ ${f(r.liveCalls.p50 / Math.max(1e-9, d.steady.rate), 1)} s ` +
      '(the rest: the contact’s and the call’s workflow steps before the dial and after the hang-up up to the call’s outcome signal — post-call analysis and usage no longer hold the slot — plus the 1 s retry backoffs, during which a contact keeps its slot).',
    `- CPU cost: the stack (worker, api, relay, Temporal, PostgreSQL) spent **${f(stackCost(r).perDial, 3)} CPU s per dial** over the campaign; at that cost the machine’s ${os.cpus().length} cores could carry ≈ ${f(stackCost(r).ceiling, 1)} dials/s with nothing else running.`,
    `- Backlogs in the steady phase (DescribeTaskQueue \`reportStats\`, every second; p50 / max): dial activities waiting on \`dialer.<id>\` ${f(r.backlog.dialer.p50, 0)} / ${f(r.backlog.dialer.max, 0)}; ` +
      `workflow tasks on \`calls\` ${f(r.backlog.calls.p50, 0)} / ${f(r.backlog.calls.max, 0)}, on \`campaigns\` ${f(r.backlog.campaigns.p50, 0)} / ${f(r.backlog.campaigns.max, 0)}.`,
    `- ${whereItSaturates(r)}`,
    '',
    cpuTable,
    '',
    '### Calling windows',
    '',
    zoneTable,
    '',
    `- Dials before T_open: **${r.dialsBeforeOpen}**; dials outside the contact’s own window (checked per dial with \`insideCallingWindow\`): **${r.dialsOutsideWindows}**.`,
    ...(r.firstDial
      ? [
          `- The first dial’s path after T_open: its contact’s workflow started at +${f(r.firstDial.contactStartedMs, 0)} ms (the campaign’s timer, a claim, \`startChild\`), ` +
            `its call’s workflow at +${f(r.firstDial.callStartedMs, 0)} ms (\`loadDialTarget\`, \`beginCampaignAttempt\`), \`calls.create\` at +${f(r.firstDial.createdMs, 0)} ms ` +
            '(`loadAgentDefinition`, `recordCallStarted`, `placeOutboundCall` on the dialer queue): every step starts only when the window opens.',
        ]
      : []),
    '',
    '### History size',
    '',
    historyTable,
    '',
    `- The campaign continued as new ${h.campaignRuns.length - 1} times; ${campaignEvents} events in all, ≈ ${f(campaignEvents / plan.contacts, 1)} per contact. ` +
      `Events per run, oldest first: ${h.campaignRuns.map((x) => x.events).join(', ')}. ` +
      `Runs that passed the workflow’s ${CONTINUE_AS_NEW_AT_EVENTS}-event threshold: ${over.length}` +
      (over.length
        ? ` (${over.map((x) => `${s1(x.pastThresholdMs ?? NaN)} s past it, to ${x.events} events, dialling ${f(x.pastThresholdDialRate, 1)}/s meanwhile`).join('; ')})`
        : '') +
      `. Workflow tasks of the campaign’s runs that failed: ${failureText}; timed out: ${timeouts}.`,
    '',
    '### Worker memory and end to end',
    '',
    `- Worker RSS: ${mib(m.workerIdle)} MiB idle before the launch; during the campaign p50 **${mib(m.worker.p50)}** MiB, max **${mib(m.worker.max)}** MiB; ${mib(m.workerEnd)} MiB at the end. ` +
      `Worker CPU: **${f(r.cpu.perThousandDials.worker, 1)} s per 1,000 dials**.`,
    `- Campaign ${r.end.status}${r.end.done ? '' : ' (not done)'} ${s1(r.end.campaignMs)} s after T_open (${s1(r.end.lastDialToCompletedMs)} s after its last dial). Contacts: ${counts}. ` +
      `Attempts: ${r.end.attempts.total} (${attempts}); calls.create: ${d.total}, attempts with more than one: **${r.end.repeatedCreates}**, refused: ${r.end.refusedCreates}; ` +
      `status/AMD callbacks answered other than 2xx: ${r.end.callbacksNot2xx}. Logs: ${logLine('worker')}, ${logLine('api')}, ${logLine('relay')}.`,
    ...lastLogs.slice(-3).map((l) => `  - \`${l.replace(/`/g, "'").slice(0, 240)}\``),
    `- **Problems: ${r.problems.length === 0 ? 'none' : r.problems.join('; ')}.**`,
    '',
    `Reading: the campaign sustained ${f(d.steady.rate, 1)} dials/s against a cap of ${cap} (${f(ratio, 2)}), its busiest second ${d.busiestSecond}; ` +
      `${ratio >= 0.95 ? 'the server-side rate limit of the dialer queue is what paced it' : 'something before the rate limiter paced it (see the evidence above)'}. ` +
      `Every zone’s first dial came ${f(Math.min(...zonesFirst), 0)}–${f(Math.max(...zonesFirst), 0)} ms after its window opened and ${r.dialsBeforeOpen + r.dialsOutsideWindows === 0 ? 'no dial fell outside a window' : `${r.dialsBeforeOpen + r.dialsOutsideWindows} dials fell outside their window`}. ` +
      `The campaign workflow’s runs reached at most ${f(runs.max, 0)} events (${f(runs.max / CONTINUE_AS_NEW_AT_EVENTS, 2)}× its continue-as-new threshold), a contact’s workflow keeps ≈ ${f(h.contact.p50, 0)} and a call’s ≈ ${f(h.call.p50, 0)}; ` +
      `the worker’s memory stayed within ${mib(m.worker.min)}–${mib(m.worker.max)} MiB and a call costs it ≈ ${f(r.cpu.perThousandDials.worker, 0)} ms of CPU.`,
    '',
  ].join('\n');
}

// ------------------------------------------------------------------------------------------------
// on its own: `npx tsx bench/campaign.ts`

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const plan = campaignBenchPlan(); // a malformed variable stops here, before anything starts
  const startedAt = new Date().toISOString();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-campaign-'));
  chmodSync(dataDir, 0o755); // as root, embedded-postgres runs initdb as 'postgres'
  let problems = 0;
  try {
    const cliPath = await locateTemporalCli({ log });
    const pgDir = path.join(dataDir, 'pg');
    const pg = await startEmbeddedPostgres({ dataDir: pgDir, port: await freePort(), log });
    try {
      const results = await runCampaignBench({
        databaseUrl: pg.url,
        postgresDataDir: pgDir,
        cliPath,
        log,
        plan,
      });
      problems = results.problems.length;
      // Alone, it may run several times a day: the heading carries the start time too.
      const section = campaignSection(
        results,
        machine(),
        `${startedAt.slice(0, 10)} ${startedAt.slice(11, 16)} UTC`,
      );
      appendFileSync(RESULTS, `${section}\n`);
      process.stdout.write(`\n${section}\n`);
    } finally {
      await pg.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  if (problems > 0) throw new Error(`the campaign bench found ${problems} problem(s); see its section`);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
