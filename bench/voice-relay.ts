/**
 * The voice part of `npm run bench`, also runnable on its own: `npx tsx bench/voice-relay.ts`. What the
 * realtime relay and the turn protocol cost on this machine when speech and the LLM cost nothing: the
 * OpenAI peer of test/peers answers chat completions, transcriptions and speech at once, and the
 * agents choose `stt`/`tts` provider 'openai' and one `llm` node, so every turn goes
 * caller audio → VAD → STT (peer) → `userTurn` → workflow → `speak` on the relay → LLM (peer) →
 * TTS (peer) → μ-law frames to the caller.
 *
 * The stack, its own so that nothing else runs on it: a Temporal dev server started as `npm start`
 * starts it (DEV_SERVER_DYNAMIC_CONFIG), the api listening on a port and a worker for `calls`,
 * `integrations` and `billing` in this process, the OpenAI peer and the caller simulator in this
 * process too, the Twilio REST peer, and **the relay as its own process** (`node --import tsx
 * realtime-relay/main.ts`, configured through its environment like any deployment). PostgreSQL is
 * the caller's (bench/run.ts passes its embedded one) or an embedded one started here.
 *
 * 1. Parley's own share of a turn: caller speech → endpointing → … → first frame out, read back per
 *    turn from `GET /v1/calls/:id` (transcript[].timings). Measured from `endpointedAt`, so the
 *    endpointing silence is excluded by construction; provider time (sttMs, llmFirstTokenMs,
 *    ttsFirstMs) is subtracted per turn.
 * 2. Inbound frame processing: one 20 ms Twilio `media` message through the relay's own message
 *    handler (`twilioStreamRoute`: JSON.parse, checks, base64, μ-law decode, `CallSession.onAudio`
 *    with its VAD) on a socket that goes nowhere, no Temporal, over ≥ 100k frames of speech and
 *    silence; plus the relay's own sampled figure from GET /stats under load.
 * 3. Capacity: K concurrent simulated calls streaming in real time (silence, and a short utterance
 *    every few seconds that the agent answers), the relay's event-loop lateness (the jitter it adds to a
 *    frame), frame cost, CPU and memory per K, and the senders' own lateness so a saturated load
 *    generator is visible. The headline: the largest K whose lateness p99 stays ≤ 20 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter, setMaxListeners } from 'node:events';
import { appendFileSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import type { WebSocket } from 'ws';
import { activityDepsFromConfig, llmClientsFromConfig } from '../activities';
import { createApp } from '../api/app';
import { callIdForCallSid } from '../api/services/call-starts';
import { loadConfig, type Config } from '../config';
import type { AgentDefinitionInput } from '../contracts/agent-definition';
import { callWorkflowId } from '../contracts/call';
import { startEmbeddedPostgres } from '../db/embedded-postgres';
import { runMigrations } from '../db/migrate';
import { createAppOrm, type MikroORM } from '../db/orm';
import { createLogger } from '../lib/logger';
import { freePort, waitUntil } from '../lib/net';
import { signStreamToken, UsedTokenRegistry } from '../lib/stream-token';
import { muLawDecode, muLawEncode } from '../realtime-relay/audio/g711';
import { CallSession, DEFAULT_MEDIA_SETTINGS, type MediaTransport } from '../realtime-relay/call-session';
import { SessionRegistry } from '../realtime-relay/sessions';
import { EspeakTts } from '../realtime-relay/speech/espeak-tts';
import type { SpeechProviders } from '../realtime-relay/speech';
import { twilioStreamRoute, type StreamRouteDeps } from '../realtime-relay/twilio-media-stream';
import { locateTemporalCli } from '../temporal-config/cli';
import { DEV_SERVER_DYNAMIC_CONFIG, startDevServer, type DevServer } from '../temporal-config/dev-server';
import { CallerSimulator, type CallerTts, type SimulatedCall } from '../test/peers/caller-simulator';
import { PEER_SPEECH_MS_PER_CHAR, startOpenAiPeer, type OpenAiPeer } from '../test/peers/openai-peer';
import { TwilioPeer } from '../test/peers/twilio-peer';
import { createWorkers, type ProcessWorker } from '../workers/create-workers';
import {
  machine,
  machineCpuSeconds,
  percentile,
  procCpuSeconds,
  progress,
  summarize,
  type Summary,
} from './stats';
import { INSTANT_REPLY } from './text-turns';

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(__dirname, 'RESULTS.md');
const PEER_API_KEY = 'sk-bench-parley-voice-peer';
/** What the STT peer "hears" in every utterance; the LLM peer answers "Sure." (bench/text-turns.ts). */
const CALLER_TEXT = 'Are you open on Saturdays?';

/** The sizes of every scenario; the whole voice part is meant to stay under ~6 minutes. */
export const VOICE_RELAY_PLAN = {
  /** The caller's utterance: a voiced synthetic signal this long (the STT peer answers scripted text). */
  utteranceMs: 500,
  /** The agents' endpointing silence. */
  endpointingMs: 300,
  frames: {
    /** Twilio media messages timed one by one, spread round-robin over this many sessions. */
    total: 120_000,
    sessions: 16,
    /** Messages timed per stage for the breakdown (parse / decode / onAudio). */
    stageSamples: 20_000,
  },
  turns: {
    /** Calls in flight at once (each one turn at a time); lanes × calls × turns ≥ 200 turns. */
    lanes: 4,
    callsPerLane: 3,
    turnsPerCall: 20,
  },
  capacity: {
    levels: [10, 25, 50, 100, 150, 200, 250, 300, 350, 400],
    /** Dials in flight while a level connects its calls. */
    dialConcurrency: 10,
    /** Once every call has heard its opening: this long, then the stats are reset and the window opens. */
    settleMs: 1_000,
    /** The measured window. */
    holdMs: 10_000,
    /** After the hang-ups, workflows get this long to finish their post-call work, then are terminated. */
    finishBoundMs: 20_000,
    /** Each call says one utterance this often (phases spread evenly over the calls). */
    utterancePeriodMs: 6_000,
    /** The headline: the largest K (every smaller level included) with relay event-loop lateness p99 ≤ this. */
    jitterLimitMs: 20,
    /** design.md's goal for Parley's own share of a turn, p95: the load test reports the largest K within it. */
    overheadGoalP95Ms: 30,
    /** A level whose relay event-loop lateness p99 exceeds this, or that lost calls, ends the ladder… */
    stopLoopDelayMs: 60,
    /** …and no new level starts once the ladder has run this long. */
    budgetMs: 200_000,
  },
};

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

// ------------------------------------------------------------------------------------------------
// plumbing

/** Runs `task` for 0..n-1 with at most `concurrency` in flight. */
async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 200);

/** The peer takes one scripted chat reply per request: keep at least `n` queued, its logs empty. */
function keepPeerReplies(peer: OpenAiPeer, n: number): void {
  const missing = n - peer.remaining();
  if (missing > 0) peer.script(Array.from({ length: missing }, () => INSTANT_REPLY));
  peer.requests.length = 0;
  peer.transcriptionRequests.length = 0;
  peer.speechRequests.length = 0;
}

interface CpuSnapshot {
  at: number;
  bench: number;
  relay: number;
  temporal: number;
  postgres: number;
  machine: number;
  steal: number;
}

// ------------------------------------------------------------------------------------------------
// the caller's voice

/**
 * A short voiced signal at speech level, 8 kHz: a 200 Hz fundamental with harmonics up to 3.4 kHz
 * (amplitude 1/k, like a glottal source), a 5 Hz syllable-rate tremor and 20 ms fades, scaled to
 * -20 dBFS RMS. The relay's energy VAD sees speech; the STT peer answers scripted text anyway.
 */
export function syntheticUtterance(ms: number, sampleRate = 8000): Int16Array {
  const n = Math.round((ms * sampleRate) / 1000);
  const raw = new Float64Array(n);
  const fade = Math.round(0.02 * sampleRate);
  for (let i = 0; i < n; i++) {
    const t = i / sampleRate;
    let v = 0;
    for (let k = 1; k * 200 < 3400; k++) v += Math.sin(2 * Math.PI * 200 * k * t + k) / k;
    const tremor = 0.8 + 0.2 * Math.sin(2 * Math.PI * 5 * t);
    const envelope = Math.min(1, i / fade, (n - 1 - i) / fade);
    raw[i] = v * tremor * envelope;
  }
  const rms = Math.sqrt(raw.reduce((s, v) => s + v * v, 0) / Math.max(1, n));
  const gain = rms > 0 ? (32768 * 10 ** (-20 / 20)) / rms : 0;
  return Int16Array.from(raw, (v) => Math.max(-32768, Math.min(32767, Math.round(v * gain))));
}

/** The caller simulator's `tts`: every utterance is the same synthetic voiced signal. */
function syntheticCallerVoice(ms: number): CallerTts {
  const pcm = syntheticUtterance(ms);
  return { synthesize: () => Promise.resolve(pcm) };
}

// ------------------------------------------------------------------------------------------------
// the relay, as its own process

/**
 * The relay samples its event loop with `monitorEventLoopDelay({ resolution: 10 })`, whose histogram
 * holds the interval between two samples (an idle loop reads ≈ 10.1 ms), not the delay: lateness =
 * reading − this. The bench's own loop is sampled the same way.
 */
const LOOP_SAMPLING_MS = 10;
const lateness = (intervalMs: number) => Math.max(0, intervalMs - LOOP_SAMPLING_MS);

interface RelayStats {
  streams: number;
  framesIn: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  frameProcessingMs: { p50: number | null; p99: number | null };
  memoryRssBytes: number;
  cpuUsageMicros: { user: number; system: number };
}

interface RelayProcess {
  child: ChildProcess;
  port: number;
  instanceId: string;
  /** GET /stats on the relay's HTTP port (`reset`: start a new measurement window). */
  stats(reset: boolean): Promise<RelayStats>;
  /** Warning and error lines the relay logged, and the last few of them. */
  log: { warnings: number; errors: number; last: string[] };
  stop(): Promise<void>;
}

async function spawnRelay(opts: {
  temporalAddress: string;
  peer: OpenAiPeer;
  streamTokenSecret: string;
  log: (line: string) => void;
}): Promise<RelayProcess> {
  const port = await freePort();
  const instanceId = `bench-relay-${process.pid}`;
  // A minimal environment: the relay reads its configuration from it and from nothing else.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    TEMPORAL_ADDRESS: opts.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    RELAY_HOST: '127.0.0.1',
    RELAY_PORT: String(port),
    RELAY_INSTANCE_ID: instanceId,
    STREAM_TOKEN_SECRET: opts.streamTokenSecret,
    OPENAI_API_KEY: PEER_API_KEY,
    OPENAI_BASE_URL: opts.peer.baseUrl,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'realtime-relay/main.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const log = { warnings: 0, errors: 0, last: [] as string[] };
  let tail = '';
  let partial = '';
  const onOutput = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? ''; // an unfinished line waits for the next chunk
    for (const line of lines) {
      // pino's JSON lines (40 warn, 50 error, 60 fatal) and the Temporal SDK's "[WARN] …" / "[ERROR] …".
      const pino = /"level":(\d+)/.exec(line)?.[1];
      const sdk = /^\S*\s*\[(WARN|ERROR)\]/.exec(line)?.[1];
      const level = pino !== undefined ? Number(pino) : sdk === 'WARN' ? 40 : sdk === 'ERROR' ? 50 : 0;
      // An activity-only worker (the relay's) says so at start: expected, not a problem.
      if (level < 40 || line.includes('No workflows registered')) continue;
      if (level === 40) log.warnings++;
      else log.errors++;
      log.last = [...log.last, line.slice(0, 300)].slice(-5);
    }
  };
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);
  const base = `http://127.0.0.1:${port}`;
  await waitUntil(
    'the relay process to listen',
    async () => {
      if (child.exitCode !== null) throw new Error(`the relay exited with ${child.exitCode}:\n${tail}`);
      const res = await fetch(`${base}/health/ready`).catch(() => undefined);
      return res?.ok ?? false;
    },
    60_000,
    200,
  );
  opts.log(`relay process ${child.pid} listening on ${base} (queue relay.${instanceId})`);
  return {
    child,
    port,
    instanceId,
    log,
    async stats(reset) {
      const res = await fetch(`${base}/stats${reset ? '?reset=1' : ''}`);
      if (!res.ok) throw new Error(`relay /stats: ${res.status}`);
      return (await res.json()) as RelayStats;
    },
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
}

// ------------------------------------------------------------------------------------------------
// the stack

interface VoiceBenchStack {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  temporalServer: DevServer;
  apiUrl: string;
  peer: OpenAiPeer;
  relay: RelayProcess;
  simulator: CallerSimulator;
  /** Owner connection (bypasses row-level security) for fixtures and read-backs. */
  owner: PgClient;
  token: string;
  tenantId: string;
  /** The phone number routed to the bench agent. */
  number: string;
  close(): Promise<void>;
}

/**
 * The bench agent: one `llm` node that answers every question (each turn streams one completion),
 * OpenAI speech both ways, the plan's endpointing, a one-word greeting, no reprompts while the
 * capacity run's callers are quiet between utterances.
 */
const BENCH_VOICE_AGENT: AgentDefinitionInput = {
  persona: { systemPrompt: 'You are the front desk of a small business. Answer in one short sentence.' },
  greeting: 'Hi.',
  voice: { provider: 'openai', voiceId: 'alloy' },
  stt: { provider: 'openai' },
  tts: { provider: 'openai' },
  llm: { model: 'bench', apiKeyRef: 'default' },
  endpointing: { silenceMs: VOICE_RELAY_PLAN.endpointingMs },
  noInputTimeoutSeconds: 120,
  flow: {
    startNodeId: 'chat',
    nodes: [
      {
        id: 'chat',
        type: 'llm',
        goal: "Answer the caller's questions. Call complete_step with outcome 'done' when they say goodbye.",
        outcomes: ['done'],
        maxTurns: 100,
      },
      { id: 'done', type: 'end', disposition: 'done', message: 'Goodbye!' },
    ],
    edges: [{ id: 'on_done', source: 'chat', target: 'done', when: { kind: 'outcome', equals: 'done' } }],
  },
};

async function startStack(opts: {
  databaseUrl: string;
  cliPath: string;
  log: (line: string) => void;
}): Promise<VoiceBenchStack> {
  const { log } = opts;
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => log(`cleanup: ${errorText(err)}`));
  };
  try {
    const peer = await startOpenAiPeer({ apiKey: PEER_API_KEY });
    closers.push(() => peer.close());
    peer.defaultTranscription = CALLER_TEXT;
    const twilio = await new TwilioPeer().listen();
    closers.push(() => twilio.close());
    // The dev server as `npm start` runs it (in memory): DEV_SERVER_DYNAMIC_CONFIG included.
    const temporalServer = await startDevServer({
      cliPath: opts.cliPath,
      port: await freePort(),
      headless: true,
      log,
    });
    closers.push(() => temporalServer.stop());
    const streamTokenSecret = randomBytes(24).toString('hex');
    const relay = await spawnRelay({ temporalAddress: temporalServer.address, peer, streamTokenSecret, log });
    closers.push(() => relay.stop());

    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const config = loadConfig({
      DATABASE_URL: opts.databaseUrl,
      TEMPORAL_ADDRESS: temporalServer.address,
      LOG_LEVEL: 'silent',
      OPENAI_BASE_URL: peer.baseUrl,
      OPENAI_API_KEY: PEER_API_KEY,
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_API_BASE_URL: twilio.baseUrl,
      PUBLIC_BASE_URL: apiUrl,
      RELAY_PUBLIC_URL: `ws://127.0.0.1:${relay.port}`,
      STREAM_TOKEN_SECRET: streamTokenSecret,
      // Hundreds of calls start at once; the api and the activities share this pool.
      DATABASE_POOL_MAX: '30',
    });
    await runMigrations(config);
    const orm = await createAppOrm(config);
    closers.push(() => orm.close());
    const connection = await Connection.connect({ address: temporalServer.address });
    closers.push(() => connection.close());
    const temporal = new Client({ connection });
    const workerConnection = await NativeConnection.connect({ address: temporalServer.address });
    closers.push(() => workerConnection.close());
    const logger = createLogger(config, 'bench');
    const workers: ProcessWorker[] = await createWorkers({
      connection: workerConnection,
      namespace: 'default',
      taskQueues: ['calls', 'integrations', 'billing'],
      activityDeps: activityDepsFromConfig(config, orm),
      logger,
    });
    const runs = Promise.all(workers.map((w) => w.run()));
    closers.push(async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await runs;
    });
    const server: http.Server = createApp({ config, orm, temporal, logger }).listen(apiPort, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const owner = new PgClient({ connectionString: opts.databaseUrl });
    await owner.connect();
    closers.push(() => owner.end());

    // A tenant, its agent and number, through the public API as a user would set them up.
    const api = async (method: 'POST', url: string, body: unknown, token?: string): Promise<Json> => {
      const res = await fetch(`${apiUrl}${url}`, {
        method,
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
      return JSON.parse(text) as Json;
    };
    const signup = await api('POST', '/v1/auth/signup', {
      tenantName: 'Voice bench',
      name: 'Bench',
      email: `voice-bench-${Date.now()}@example.test`,
      password: 'bench-password-1',
    });
    const token = signup.token as string;
    const tenantId = signup.tenant.id as string;
    const agent = await api(
      'POST',
      '/v1/agents',
      { name: 'Voice bench', definition: BENCH_VOICE_AGENT },
      token,
    );
    await api('POST', `/v1/agents/${agent.id}/publish`, {}, token);
    const number = `+1415555${String(Date.now()).slice(-4)}`;
    await api('POST', '/v1/phone-numbers', { number, agentId: agent.id }, token);
    // Every benched call must be admitted: the enterprise plan (overage, so the month's included
    // minutes do not stop the ladder; the free plan's 60 would, a few levels in) and no line limit.
    await owner.query(
      `update tenants set plan = 'enterprise', settings = settings || '{"maxConcurrentCalls": 100000}'::jsonb
        where id = $1`,
      [tenantId],
    );
    const simulator = new CallerSimulator({
      apiBaseUrl: apiUrl,
      authToken: twilio.authToken,
      accountSid: twilio.accountSid,
      tts: syntheticCallerVoice(VOICE_RELAY_PLAN.utteranceMs),
    });
    return {
      config,
      orm,
      temporal,
      temporalServer,
      apiUrl,
      peer,
      relay,
      simulator,
      owner,
      token,
      tenantId,
      number,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

const handleOf = (stack: VoiceBenchStack, call: SimulatedCall): WorkflowHandle =>
  stack.temporal.workflow.getHandle(callWorkflowId(call.callSid));

// ------------------------------------------------------------------------------------------------
// 2. inbound frame processing, in-process, no Temporal

export interface FrameBenchResult {
  frames: number;
  sessions: number;
  /** Where the caller audio came from. */
  audio: string;
  /** Share of the frames inside an utterance (the rest is line silence). */
  speechShare: number;
  /** Utterances the VAD ended and handed to the (fake) STT. */
  utterances: number;
  /** One `media` message through the relay's handler, in µs. */
  perFrameUs: Summary;
  /** Medians of the stages, timed separately, µs. */
  stagesUs: { parse: number; decode: number; onAudio: number };
}

/** A socket that goes nowhere, with what `twilioStreamRoute` reads from a `ws` WebSocket. */
class NullSocket extends EventEmitter {
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readyState = 1;
  send(): void {}
  close(): void {
    this.readyState = 3;
  }
}

/** The media message Twilio sends for one 20 ms frame, as the bytes `ws` hands to the handler. */
function mediaMessage(streamSid: string, sequence: number, chunk: number, payload: Buffer): Buffer {
  return Buffer.from(
    JSON.stringify({
      event: 'media',
      sequenceNumber: String(sequence),
      media: {
        track: 'inbound',
        chunk: String(chunk),
        timestamp: String(chunk * 20),
        payload: payload.toString('base64'),
      },
      streamSid,
    }),
  );
}

/**
 * Caller audio for the frame bench: espeak-ng sentences (a synthetic voice if espeak-ng cannot run)
 * separated by 1.8–3 s of line silence with a little noise (≈ -65 dBFS), as μ-law, 8 kHz.
 */
async function frameBenchAudio(): Promise<{ mulaw: Buffer; speechFrames: Set<number>; source: string }> {
  const sentences = [
    'Hi, I would like to book an appointment for tomorrow afternoon.',
    'Yes, three o clock works for me.',
    'Can you tell me where you are located?',
    'No, that is all. Thank you, goodbye.',
  ];
  let speech: Int16Array[];
  let source = 'espeak-ng sentences';
  try {
    const tts = new EspeakTts();
    speech = [];
    for (const text of sentences)
      speech.push(await tts.synthesize({ text, voiceId: 'en-us', language: 'en-US' }));
  } catch {
    source = 'a synthetic voiced signal (espeak-ng could not run)';
    speech = [1500, 900, 1300, 1100].map((ms) => syntheticUtterance(ms));
  }
  const silences = [1800, 3000, 2200, 2600];
  const parts: Int16Array[] = [];
  const speechFrames = new Set<number>();
  let samples = 0;
  speech.forEach((utterance, i) => {
    const first = Math.floor(samples / 160);
    parts.push(utterance);
    samples += utterance.length;
    for (let f = first; f < Math.ceil(samples / 160); f++) speechFrames.add(f);
    const silence = new Int16Array((silences[i]! * 8000) / 1000);
    parts.push(silence);
    samples += silence.length;
  });
  const pcm = new Int16Array(samples - (samples % 160));
  let at = 0;
  for (const p of parts) {
    pcm.set(p.subarray(0, Math.min(p.length, pcm.length - at)), at);
    at += p.length;
    if (at >= pcm.length) break;
  }
  // Line noise: a deterministic LCG, ±12 LSB.
  let seed = 12345;
  for (let i = 0; i < pcm.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    pcm[i] = Math.max(-32768, Math.min(32767, pcm[i]! + ((seed >> 16) % 25) - 12));
  }
  return { mulaw: muLawEncode(pcm), speechFrames, source };
}

/** Frames per session sent untimed before the measurement (≈ 10 s of audio each). */
const WARM_UP_FRAMES_PER_SESSION = 500;

export async function benchFrameProcessing(
  plan = VOICE_RELAY_PLAN.frames,
  log: (line: string) => void = () => undefined,
): Promise<FrameBenchResult> {
  const { mulaw, speechFrames, source } = await frameBenchAudio();
  const timelineFrames = Math.floor(mulaw.length / 160);
  const frameAt = (i: number) => mulaw.subarray((i % timelineFrames) * 160, ((i % timelineFrames) + 1) * 160);
  let utterances = 0;
  // Fake dependencies: the relay's code path up to the (asynchronous) STT and `userTurn` submission.
  const noop = () => Promise.resolve(undefined);
  const temporal = {
    workflow: {
      getHandle: () => ({
        signal: noop,
        startUpdate: () => Promise.resolve({ result: () => Promise.resolve({ ended: false }) }),
      }),
    },
  } as unknown as Client;
  const speech: SpeechProviders = {
    stt: () => ({
      name: 'bench',
      transcribe: () => {
        utterances++;
        return Promise.resolve({ text: 'hello', provider: 'bench', grammar: false });
      },
    }),
    tts: () => ({ name: 'bench', synthesize: () => Promise.resolve(new Int16Array(0)) }),
  };
  const tokenSecret = randomBytes(24).toString('hex');
  const deps: StreamRouteDeps = {
    instanceId: 'bench',
    temporal,
    speech,
    llmClients: llmClientsFromConfig(loadConfig({ LOG_LEVEL: 'silent' })),
    recordingsDir: os.tmpdir(),
    logger: createLogger({ LOG_LEVEL: 'silent' }, 'bench-relay'),
    sessions: new SessionRegistry('bench'),
    tokenSecret,
    usedTokens: new UsedTokenRegistry(),
    startTimeoutMs: 60_000,
  };
  const settings = {
    ...DEFAULT_MEDIA_SETTINGS,
    stt: { provider: 'openai' as const },
    tts: { provider: 'openai' as const },
    endpointingMs: VOICE_RELAY_PLAN.endpointingMs,
  };
  const route = twilioStreamRoute(deps);
  const streams = Array.from({ length: plan.sessions }, (_, s) => {
    const socket = new NullSocket();
    route.onConnection(
      socket as unknown as WebSocket,
      {
        socket: { remoteAddress: '127.0.0.1' },
      } as unknown as http.IncomingMessage,
    );
    const callSid = `CA${randomBytes(16).toString('hex')}`;
    const callId = `00000000-0000-4000-8000-${String(s).padStart(12, '0')}`;
    const { token } = signStreamToken(
      tokenSecret,
      { callId, tenantId: callId, workflowId: callWorkflowId(callSid), channel: 'voice', callSid },
      600,
    );
    const streamSid = `MZ${randomBytes(16).toString('hex')}`;
    const send = (message: unknown) => socket.emit('message', Buffer.from(JSON.stringify(message)), false);
    send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    send({
      event: 'start',
      sequenceNumber: '1',
      streamSid,
      start: {
        streamSid,
        callSid,
        tracks: ['inbound'],
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        customParameters: { token },
      },
    });
    deps.sessions.get(callId)!.applySettings(settings);
    // Each session starts at another point of the timeline, as calls are never in step.
    const offset = Math.floor((s * timelineFrames) / plan.sessions);
    return { socket, send, streamSid, offset, sequence: 1 };
  });

  // Warm-up, untimed: the first frames pay for JIT compilation, once per relay process.
  const warmUp = WARM_UP_FRAMES_PER_SESSION;
  const perSession = Math.ceil(plan.total / plan.sessions);
  const samples: number[] = [];
  let voiced = 0;
  for (let i = 0; i < warmUp + perSession; i++) {
    for (const stream of streams) {
      const index = stream.offset + i;
      const message = mediaMessage(stream.streamSid, ++stream.sequence, i + 1, frameAt(index));
      const t0 = performance.now();
      stream.socket.emit('message', message, false);
      const us = (performance.now() - t0) * 1000;
      if (i < warmUp) continue;
      samples.push(us);
      if (speechFrames.has(index % timelineFrames)) voiced++;
    }
    // Every second of audio, let the asynchronous work (STT, update submission) run, as a live relay does.
    if (i % 50 === 49) {
      await new Promise((resolve) => setImmediate(resolve));
      if (samples.length > 0) {
        progress(
          `frame processing ×${perSession * plan.sessions}`,
          samples.length,
          perSession * plan.sessions,
        );
      }
    }
  }
  for (const stream of streams) {
    stream.send({
      event: 'stop',
      streamSid: stream.streamSid,
      sequenceNumber: String(++stream.sequence),
      stop: {},
    });
  }

  // The stages on their own, on the same audio: parse, base64 + μ-law decode, then a CallSession fed
  // decoded frames directly (its transport a no-op).
  const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
  const messages = Array.from({ length: plan.stageSamples }, (_, i) =>
    mediaMessage('MZbench', i + 2, i + 1, frameAt(i)),
  );
  const time = (fn: (i: number) => void) => {
    const t: number[] = [];
    for (let i = 0; i < messages.length; i++) {
      const t0 = performance.now();
      fn(i);
      t.push((performance.now() - t0) * 1000);
    }
    return percentile(
      t.sort((a, b) => a - b),
      50,
    );
  };
  const parsed = messages.map((m) => JSON.parse(m.toString()) as { media: { payload: string } });
  const parse = time((i) => JSON.parse(messages[i]!.toString()));
  const decode = time((i) => {
    const payload = parsed[i]!.media.payload;
    if (BASE64.test(payload)) muLawDecode(Buffer.from(payload, 'base64'));
  });
  const transport: MediaTransport = {
    channel: 'voice',
    sendAudio() {},
    sendMark() {},
    clear() {},
    close() {},
  };
  const session = new CallSession(
    {
      v: 1,
      callId: 'bench',
      tenantId: 'bench',
      workflowId: 'call:bench',
      channel: 'voice',
      jti: 'bench',
      exp: Math.floor(Date.now() / 1000) + 600,
    },
    transport,
    deps,
  );
  session.applySettings(settings);
  const pcmFrames = Array.from({ length: plan.stageSamples }, (_, i) => muLawDecode(frameAt(i)));
  const onAudio = time((i) => session.onAudio(pcmFrames[i]!));
  session.end('stop');
  await new Promise((resolve) => setImmediate(resolve));
  log(`frame bench: ${samples.length} frames, ${utterances} utterances handed to STT`);

  return {
    frames: samples.length,
    sessions: plan.sessions,
    audio: source,
    speechShare: voiced / samples.length,
    utterances,
    perFrameUs: summarize(samples, 1),
    stagesUs: { parse, decode, onAudio },
  };
}

// ------------------------------------------------------------------------------------------------
// 1. Parley's own share of a turn

/** One agent reply to a caller turn, from its transcript entry's timings (epoch ms, the relay's clock). */
interface TurnTimings {
  endpointedToFirstFrame: number;
  speechEndToFirstFrame: number;
  stt: number;
  updateToSpeak: number;
  llmFirstToken: number;
  ttsFirst: number;
  /** endpointed → first frame − (stt + LLM first token + TTS first audio). */
  share: number;
  /** share − update→speak: what the relay itself adds around the providers. */
  relay: number;
  /** The relay's pieces of it. */
  endpointedToStt: number;
  sttToUpdate: number;
  firstTokenToTts: number;
  ttsToFirstFrame: number;
}

/** The workflow's part of one turn (`userTurn` sent → `speak` started), from the call's history. */
interface WorkflowTimings {
  /** Relay's update RPC → the server → the worker picks up the workflow task. */
  updateToTaskStarted: number;
  /** The workflow task in the worker (engine step, `speak` scheduled) and its completion RPC. */
  taskRun: number;
  /** `speak` scheduled → started: history's transfer queue → matching → the relay's poller. */
  activityDispatch: number;
  /** Activity started → `speak` started in the relay's session. */
  activityToSpeak: number;
}

export interface TurnsResult {
  calls: number;
  turns: number;
  lanes: number;
  summaries: Record<keyof TurnTimings, Summary>;
  /** The workflow share split by the history's events (turns whose events were all found). */
  workflow: Record<keyof WorkflowTimings, Summary>;
  /** As the caller hears it: last utterance frame sent → first agent audio played (simulator clock). */
  callerHeard: Summary;
  /** Event-loop lateness p99 of this process (worker, api, peers, callers) while the turns ran. */
  benchLoopLateP99Ms: number;
  wallMs: number;
}

function turnTimings(t: Record<string, number | undefined>): TurnTimings | undefined {
  const need = [
    'endpointedAt',
    'speechEndAt',
    'sttStartedAt',
    'sttFinalAt',
    'updateSentAt',
    'speakStartedAt',
    'llmFirstTokenAt',
    'ttsFirstAudioAt',
    'ttsFirstMs',
    'firstFrameAt',
  ] as const;
  if (need.some((k) => typeof t[k] !== 'number')) return undefined;
  const v = (k: (typeof need)[number]) => t[k]!;
  const endpointedToFirstFrame = v('firstFrameAt') - v('endpointedAt');
  const stt = v('sttFinalAt') - v('sttStartedAt');
  const updateToSpeak = v('speakStartedAt') - v('updateSentAt');
  const llmFirstToken = v('llmFirstTokenAt') - v('speakStartedAt');
  const ttsFirst = v('ttsFirstMs');
  const share = endpointedToFirstFrame - stt - llmFirstToken - ttsFirst;
  return {
    endpointedToFirstFrame,
    speechEndToFirstFrame: v('firstFrameAt') - v('speechEndAt'),
    stt,
    updateToSpeak,
    llmFirstToken,
    ttsFirst,
    share,
    relay: share - updateToSpeak,
    endpointedToStt: v('sttStartedAt') - v('endpointedAt'),
    sttToUpdate: v('updateSentAt') - v('sttFinalAt'),
    // TTS of the first sentence started at ttsFirstAudioAt − ttsFirstMs.
    firstTokenToTts: v('ttsFirstAudioAt') - v('ttsFirstMs') - v('llmFirstTokenAt'),
    ttsToFirstFrame: v('firstFrameAt') - v('ttsFirstAudioAt'),
  };
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const eventMs = (e: HistoryEvent): number => {
  const t = e.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : NaN;
};

/**
 * Per `userTurn` of a call (by turn id): when the workflow task that accepted it started and completed,
 * and when the `speak` it scheduled was scheduled and started — all on the server's clock, which is
 * this machine's, as the relay's timestamps are.
 */
async function historyTimes(
  stack: VoiceBenchStack,
  callSid: string,
): Promise<Map<number, { taskStarted: number; taskCompleted: number; scheduled: number; started?: number }>> {
  const history = await stack.temporal.workflow.getHandle(callWorkflowId(callSid)).fetchHistory();
  const out = new Map<
    number,
    { taskStarted: number; taskCompleted: number; scheduled: number; started?: number }
  >();
  const bySchedule = new Map<string, number>();
  let taskStarted = NaN;
  let taskCompleted = NaN;
  let acceptedTurn: number | undefined;
  for (const e of history.events ?? []) {
    if (e.workflowTaskStartedEventAttributes) taskStarted = eventMs(e);
    if (e.workflowTaskCompletedEventAttributes) taskCompleted = eventMs(e);
    const accepted = e.workflowExecutionUpdateAcceptedEventAttributes;
    if (accepted) {
      const id = accepted.acceptedRequest?.meta?.updateId ?? '';
      const turnId = Number(/^turn:.+:(\d+)$/.exec(id)?.[1]);
      acceptedTurn = Number.isInteger(turnId) ? turnId : undefined;
    }
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === 'speak' && acceptedTurn !== undefined) {
      // The first `speak` after an accepted turn is that turn's reply.
      out.set(acceptedTurn, { taskStarted, taskCompleted, scheduled: eventMs(e) });
      bySchedule.set(String(e.eventId), acceptedTurn);
      acceptedTurn = undefined;
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const turnId = bySchedule.get(String(started.scheduledEventId));
      const entry = turnId === undefined ? undefined : out.get(turnId);
      if (entry) entry.started = eventMs(e);
    }
  }
  return out;
}

/** Ends a call as the caller would and waits for its workflow (post-call work included). */
async function hangUpAndFinish(stack: VoiceBenchStack, call: SimulatedCall): Promise<void> {
  await call.hangup();
  await Promise.race([
    handleOf(stack, call).result(),
    sleep(60_000).then(() => {
      throw new Error(`call ${call.callSid} did not finish within 60 s of the hang-up`);
    }),
  ]);
}

/** The greeting and the llm node's opening line are two replies: wait until both have played. */
const OPENING_QUIET_MS = 1_000;
/** A reply to a caller turn is one sentence, sent at once: its playback ends, then 100 ms of quiet. */
const REPLY_QUIET_MS = 100;

export async function measureTurns(
  stack: VoiceBenchStack,
  plan = VOICE_RELAY_PLAN.turns,
): Promise<TurnsResult> {
  const total = plan.lanes * plan.callsPerLane * plan.turnsPerCall;
  keepPeerReplies(stack.peer, total + plan.lanes * plan.callsPerLane * 3 + 50);
  const label = `voice turns ×${total}`;
  const callSids: string[] = [];
  const callerHeard: number[] = [];
  let done = 0;
  const started = performance.now();
  /** One call: the opening, `turns` caller turns each answered and heard to the end, the hang-up. */
  const converse = async (from: string, turns: number, onTurn: (heardAfterMs: number) => void) => {
    const call = await stack.simulator.dial({ from, to: stack.number });
    await call.waitForAgentTurn({ timeoutMs: 30_000, quietMs: OPENING_QUIET_MS });
    for (let t = 0; t < turns; t++) {
      const said = await call.say(CALLER_TEXT);
      const heard = await call.waitForAgentTurn({ timeoutMs: 30_000, quietMs: REPLY_QUIET_MS });
      onTurn(heard.startedAt - said.endedAt);
    }
    await hangUpAndFinish(stack, call);
    return call.callSid;
  };
  // Warm-up (not measured): JIT, pools, the workflow bundle, the relay's worker.
  await converse('+14155550100', 5, () => undefined);
  // This process hosts the worker, the api, the peers and the callers: how late its loop ran.
  const benchLoop = monitorEventLoopDelay({ resolution: LOOP_SAMPLING_MS });
  benchLoop.enable();
  await Promise.all(
    Array.from({ length: plan.lanes }, async (_, lane) => {
      await sleep(lane * 330); // lanes out of step, so their turns do not coincide by construction
      for (let c = 0; c < plan.callsPerLane; c++) {
        const from = `+1415555${String(100 + lane).padStart(4, '0')}`;
        const callSid = await converse(from, plan.turnsPerCall, (ms) => {
          callerHeard.push(ms);
          progress(label, ++done, total);
        });
        callSids.push(callSid);
      }
    }),
  );
  const wallMs = performance.now() - started;
  benchLoop.disable();

  // The timings as the calls API shows them, and the workflow's events of the same turns.
  const turns: TurnTimings[] = [];
  const workflow: WorkflowTimings[] = [];
  const incomplete: string[] = [];
  for (const callSid of callSids) {
    const res = await fetch(`${stack.apiUrl}/v1/calls/${callIdForCallSid(callSid)}`, {
      headers: { authorization: `Bearer ${stack.token}` },
    });
    if (!res.ok) throw new Error(`GET /v1/calls for ${callSid}: ${res.status} ${await res.text()}`);
    const record = (await res.json()) as {
      transcript: { role: string; text: string; timings: Record<string, number> | null }[];
    };
    const history = await historyTimes(stack, callSid);
    for (const entry of record.transcript) {
      if (entry.role !== 'agent' || entry.timings?.endpointedAt === undefined) continue;
      const t = turnTimings(entry.timings);
      if (!t) {
        incomplete.push(JSON.stringify(entry));
        continue;
      }
      turns.push(t);
      const h = history.get(entry.timings.turnId ?? NaN);
      if (h?.started !== undefined) {
        workflow.push({
          updateToTaskStarted: h.taskStarted - entry.timings.updateSentAt!,
          taskRun: h.taskCompleted - h.taskStarted,
          activityDispatch: h.started - h.scheduled,
          activityToSpeak: entry.timings.speakStartedAt! - h.started,
        });
      }
    }
  }
  if (turns.length < total) {
    throw new Error(
      `only ${turns.length} of ${total} agent replies carry every timing stage` +
        (incomplete.length ? `; first incomplete: ${incomplete[0]}` : ''),
    );
  }
  const summaries = <T extends object>(rows: T[]) =>
    Object.fromEntries(
      (Object.keys(rows[0] ?? {}) as (keyof T)[]).map((k) => [
        k,
        summarize(
          rows.map((r) => Number(r[k])),
          wallMs,
        ),
      ]),
    ) as Record<keyof T, Summary>;
  return {
    calls: callSids.length,
    turns: turns.length,
    lanes: plan.lanes,
    summaries: summaries(turns),
    workflow: summaries(workflow),
    callerHeard: summarize(callerHeard, wallMs),
    benchLoopLateP99Ms: lateness(benchLoop.percentile(99) / 1e6),
    wallMs,
  };
}

// ------------------------------------------------------------------------------------------------
// 3. capacity: K concurrent calls on the relay process

export interface CapacityLevel {
  calls: number;
  connected: number;
  dialErrors: number;
  firstError?: string;
  /** Connected calls that had not heard their opening a minute after the last dial, and why one of them. */
  unopened: number;
  unopenedDetail?: string;
  /** Calls whose stream closed before the level was over (the relay or the workflow let go). */
  dropped: number;
  /** Time to dial and connect all of them. */
  connectMs: number;
  /** Hang-ups → every workflow over and the relay empty; `terminated`: workflows cut off at the bound. */
  teardownMs: number;
  terminated: number;
  windowMs: number;
  relay: {
    streams: number;
    /** Event-loop lateness (/stats `eventLoopDelayMs` − the 10 ms sampling interval): the jitter it adds. */
    lateP50Ms: number;
    lateP99Ms: number;
    lateMaxMs: number;
    /** `eventLoopDelayMs.p99` as /stats reports it. */
    statsDelayP99Ms: number;
    frameP50Ms: number | null;
    frameP99Ms: number | null;
    /** Share of one core (user + system, all of its threads). */
    cpuCores: number;
    rssBytes: number;
    framesIn: number;
    /** All of the relay's CPU in the window / caller frames it received: the all-in cost of a frame. */
    cpuUsPerFrame: number;
  };
  senders: { lateP50Ms: number; lateP99Ms: number; lateMaxMs: number; frames: number };
  bench: { cpuCores: number; loopLateP99Ms: number };
  /** `other`: machine busy − the four processes (the kernel's loopback networking, anything else running). */
  cores: { temporal: number; postgres: number; machine: number; other: number; steal: number };
  utterances: number;
  /** Utterances of the level (until the window's end) that never reached the STT peer. */
  sttMissing: number;
  /** Agent replies whose first frame went out in the window, and their endpointed → first frame. */
  turnsAnswered: number;
  turnP50Ms: number;
  turnP95Ms: number;
  turnP99Ms: number;
  /** Parley's own share of those turns (endpointed → first frame − provider time), where fully timed. */
  overhead: { n: number; p50Ms: number; p95Ms: number; p99Ms: number };
  /** The bench process's RSS at the window's end (worker, api, peers and callers). */
  benchRssBytes: number;
}

export interface CapacityResult {
  levels: CapacityLevel[];
  /** The largest K such that it and every smaller level kept relay event-loop lateness p99 ≤ the limit. */
  holds: number;
  /** The same with the raw /stats figure (which includes the 10 ms sampling interval). */
  holdsByStatsFigure: number;
  stoppedBecause?: string;
  idleRelayRssBytes: number;
  elapsedMs: number;
}

/** The opening a caller hears: the greeting and the llm node's first line, as the speech peer renders them. */
const OPENING_AUDIO_MS = ('Hi.'.length + 'Sure.'.length) * PEER_SPEECH_MS_PER_CHAR;

/**
 * Keeps a call talking: once it has heard its opening, an utterance every `periodMs` (the first after
 * `offsetMs`), until stopped. Not before the opening: until the workflow's `holdMedia` reaches the relay,
 * a session runs on default media settings (local STT, 700 ms endpointing) — see the reading below.
 */
function talk(
  call: SimulatedCall,
  offsetMs: number,
  periodMs: number,
  stop: AbortSignal,
  counter: { n: number },
) {
  return (async () => {
    try {
      while (call.stats.audioMsReceived < OPENING_AUDIO_MS) await sleep(100, undefined, { signal: stop });
      await sleep(offsetMs, undefined, { signal: stop });
      while (!stop.aborted) {
        const said = await call.say(CALLER_TEXT);
        counter.n++;
        await sleep(Math.max(0, periodMs - said.ms), undefined, { signal: stop });
      }
    } catch {
      // Stopped, or the stream closed: the level's bookkeeping counts dropped calls.
    }
  })();
}

function cpuNow(stack: VoiceBenchStack, relayMicros: number): CpuSnapshot {
  const own = process.cpuUsage();
  const temporalPid = stack.temporalServer.child.pid;
  const machineCpu = machineCpuSeconds();
  return {
    at: performance.now(),
    bench: (own.user + own.system) / 1e6,
    relay: relayMicros / 1e6,
    temporal: temporalPid ? procCpuSeconds((pid) => pid === temporalPid) : NaN,
    postgres: procCpuSeconds((_, comm) => comm === 'postgres'),
    machine: machineCpu.busy,
    steal: machineCpu.steal,
  };
}

/** What a call's workflow is waiting on, in a few words: its pending activities and status. */
async function waitingOn(stack: VoiceBenchStack, call: SimulatedCall): Promise<string> {
  try {
    const description = await handleOf(stack, call).describe();
    const pending = (description.raw.pendingActivities ?? []).map(
      (a) => `${a.activityType?.name ?? '?'} (attempt ${a.attempt ?? 1}, ${a.state ?? '?'})`,
    );
    const task = description.raw.pendingWorkflowTask ? 'a workflow task pending' : 'no workflow task pending';
    return `its workflow ${description.status.name}, ${task}, activities: ${pending.join(', ') || 'none'}`;
  } catch (err) {
    // No workflow: the webhook refused the call; its row says why.
    const { rows } = await stack.owner.query<{ status: string; end_reason: string | null }>(
      'select status, end_reason from calls where id = $1',
      [callIdForCallSid(call.callSid)],
    );
    const row = rows[0];
    return row
      ? `no workflow; the call ${row.status}: ${row.end_reason ?? 'no reason'}`
      : `its workflow could not be described: ${errorText(err)}`;
  }
}

async function capacityLevel(
  stack: VoiceBenchStack,
  k: number,
  plan: typeof VOICE_RELAY_PLAN.capacity,
): Promise<CapacityLevel> {
  // Per call: the opening line, up to three turns, the post-call analysis.
  keepPeerReplies(stack.peer, k * 6 + 50);
  const calls: SimulatedCall[] = [];
  const talkers: Promise<void>[] = [];
  const stop = new AbortController();
  setMaxListeners(Infinity, stop.signal); // every talker's sleep listens to it
  const counter = { n: 0 };
  let dialErrors = 0;
  let firstError: string | undefined;
  const dialStarted = performance.now();
  await pool(k, plan.dialConcurrency, async (i) => {
    try {
      const call = await stack.simulator.dial({
        from: `+1415556${String(i).padStart(4, '0')}`,
        to: stack.number,
      });
      calls.push(call);
      // Phases spread evenly over the period, so utterances arrive at a steady rate.
      talkers.push(
        talk(
          call,
          ((i * 0.618034) % 1) * plan.utterancePeriodMs,
          plan.utterancePeriodMs,
          stop.signal,
          counter,
        ),
      );
    } catch (err) {
      dialErrors++;
      firstError ??= errorText(err);
    }
    progress(`${k} calls: connecting`, calls.length + dialErrors, k);
  });
  const connectMs = performance.now() - dialStarted;
  // Every call greeted and opened (or already answered), then a moment more: the window sees steady state.
  const unheard = () => calls.filter((c) => c.stats.audioMsReceived < OPENING_AUDIO_MS);
  const openingHeard = await waitUntil(
    `${k} calls to hear their opening`,
    () => Promise.resolve(unheard().length === 0),
    60_000,
    100,
  ).then(
    () => true,
    () => false,
  );
  // A level whose calls were not all greeted within a minute is past saturation: it is measured all
  // the same (the callers keep streaming), reported with what the first such call's workflow waits on.
  const unopened = openingHeard ? 0 : unheard().length;
  const unopenedDetail = openingHeard ? undefined : await waitingOn(stack, unheard()[0]!);
  await sleep(plan.settleMs);
  let open = true;
  const closedEarly = new Set<string>();
  for (const call of calls) void call.closed.then(() => open && closedEarly.add(call.callSid));

  // Reset twice: the first read's own cost (it sorts every session's samples) stays out of the window.
  await stack.relay.stats(true);
  await sleep(200);
  const s0 = await stack.relay.stats(true);
  const cpu0 = cpuNow(stack, s0.cpuUsageMicros.user + s0.cpuUsageMicros.system);
  const lateFrom = calls.map((c) => c.stats.lastFrameLateMs.length);
  const utterancesFrom = counter.n;
  const benchLoop = monitorEventLoopDelay({ resolution: 10 });
  benchLoop.enable();
  const windowStart = Date.now();
  await sleep(plan.holdMs);
  const s1 = await stack.relay.stats(true);
  const windowEnd = Date.now();
  const cpu1 = cpuNow(stack, s1.cpuUsageMicros.user + s1.cpuUsageMicros.system);
  benchLoop.disable();
  const late = calls.flatMap((c, i) => c.stats.lastFrameLateMs.slice(lateFrom[i])).sort((a, b) => a - b);
  const utterances = counter.n - utterancesFrom;
  // Every utterance of the level so far should have reached the STT peer (the agent's provider) by the
  // time its endpointing and transcription are over; any missing went to another engine, or nowhere.
  const levelUtterances = counter.n;
  await sleep(VOICE_RELAY_PLAN.endpointingMs + 300);
  const sttMissing = Math.max(0, levelUtterances - stack.peer.transcriptionRequests.length);

  // Replies whose first frame went out in the window, as recorded with the calls' turns.
  const benchRssBytes = process.memoryUsage().rss;
  const { rows } = await stack.owner.query<{ timings: Record<string, number | undefined> }>(
    `select timings
       from call_turns
      where call_id = any($1::uuid[]) and role = 'agent' and timings ? 'endpointedAt' and timings ? 'firstFrameAt'`,
    [calls.map((c) => callIdForCallSid(c.callSid))],
  );
  const inWindow = rows
    .map((r) => r.timings)
    .filter((t) => t.firstFrameAt! >= windowStart && t.firstFrameAt! <= windowEnd);
  const turnMs = inWindow.map((t) => t.firstFrameAt! - t.endpointedAt!).sort((a, b) => a - b);
  const overheadMs = inWindow
    .map((t) => turnTimings(t)?.share)
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => a - b);

  // Teardown (not measured): every caller hangs up as on a phone (stop, then the status callback), the
  // workflows finish their post-call work; whatever is still running after a bound is terminated.
  open = false;
  stop.abort();
  const teardownStarted = performance.now();
  await pool(calls.length, 16, (i) => calls[i]!.hangup().catch(() => undefined));
  await Promise.all(talkers);
  const deadline = Date.now() + plan.finishBoundMs;
  let terminated = 0;
  await pool(calls.length, 32, async (i) => {
    const handle = handleOf(stack, calls[i]!);
    const finished = await Promise.race([
      handle.result().then(
        () => true,
        () => true, // failed or terminated: over all the same
      ),
      sleep(Math.max(0, deadline - Date.now())).then(() => false),
    ]);
    if (!finished) {
      terminated++;
      await handle.terminate('bench: level over').catch(() => undefined);
    }
  });
  await waitUntil(
    'the relay to hold no stream',
    async () => (await stack.relay.stats(false)).streams === 0,
    60_000,
    250,
  );
  const teardownMs = performance.now() - teardownStarted;

  const wallS = (cpu1.at - cpu0.at) / 1000;
  // Clamped: a PostgreSQL backend that exits takes its CPU time out of the /proc sum.
  const cores = (key: keyof CpuSnapshot) => Math.max(0, (cpu1[key] - cpu0[key]) / wallS);
  const framesIn = s1.framesIn - s0.framesIn;
  const relayCpuUs = (cpu1.relay - cpu0.relay) * 1e6;
  const known = cores('bench') + cores('relay') + cores('temporal') + cores('postgres');
  return {
    calls: k,
    connected: calls.length,
    unopened,
    unopenedDetail,
    dialErrors,
    firstError,
    dropped: closedEarly.size,
    connectMs,
    teardownMs,
    terminated,
    windowMs: wallS * 1000,
    relay: {
      streams: s1.streams,
      lateP50Ms: lateness(s1.eventLoopDelayMs.p50),
      lateP99Ms: lateness(s1.eventLoopDelayMs.p99),
      lateMaxMs: lateness(s1.eventLoopDelayMs.max),
      statsDelayP99Ms: s1.eventLoopDelayMs.p99,
      frameP50Ms: s1.frameProcessingMs.p50,
      frameP99Ms: s1.frameProcessingMs.p99,
      cpuCores: cores('relay'),
      rssBytes: s1.memoryRssBytes,
      framesIn,
      cpuUsPerFrame: framesIn > 0 ? relayCpuUs / framesIn : NaN,
    },
    senders: {
      lateP50Ms: percentile(late, 50),
      lateP99Ms: percentile(late, 99),
      lateMaxMs: late.at(-1) ?? NaN,
      frames: late.length,
    },
    bench: { cpuCores: cores('bench'), loopLateP99Ms: lateness(benchLoop.percentile(99) / 1e6) },
    cores: {
      temporal: cores('temporal'),
      postgres: cores('postgres'),
      machine: cores('machine'),
      other: Math.max(0, cores('machine') - known),
      steal: cores('steal'),
    },
    utterances,
    sttMissing,
    turnsAnswered: turnMs.length,
    turnP50Ms: percentile(turnMs, 50),
    turnP95Ms: percentile(turnMs, 95),
    turnP99Ms: percentile(turnMs, 99),
    overhead: {
      n: overheadMs.length,
      p50Ms: percentile(overheadMs, 50),
      p95Ms: percentile(overheadMs, 95),
      p99Ms: percentile(overheadMs, 99),
    },
    benchRssBytes,
  };
}

export async function measureCapacity(
  stack: VoiceBenchStack,
  log: (line: string) => void,
  plan = VOICE_RELAY_PLAN.capacity,
): Promise<CapacityResult> {
  const started = performance.now();
  // The idle relay's memory: what the calls add is measured against it.
  await waitUntil(
    'the relay to hold no stream',
    async () => (await stack.relay.stats(false)).streams === 0,
    60_000,
    250,
  );
  const idleRelayRssBytes = (await stack.relay.stats(true)).memoryRssBytes;
  const levels: CapacityLevel[] = [];
  let stoppedBecause: string | undefined;
  for (const k of plan.levels) {
    if (performance.now() - started > plan.budgetMs) {
      stoppedBecause = `time budget of ${plan.budgetMs / 1000} s used before ${k} calls`;
      break;
    }
    const level = await capacityLevel(stack, k, plan);
    levels.push(level);
    log(
      `${k} calls: relay loop lateness p99 ${level.relay.lateP99Ms.toFixed(1)} ms, relay ${(level.relay.cpuCores * 100).toFixed(0)} % CPU, ` +
        `senders late p99 ${level.senders.lateP99Ms.toFixed(1)} ms, machine ${level.cores.machine.toFixed(2)} cores busy, ` +
        `${level.turnsAnswered}/${level.utterances} turns answered`,
    );
    if (level.unopened > 0) {
      stoppedBecause = `at ${k} calls ${level.unopened} were not greeted within 60 s (${level.unopenedDetail})`;
      break;
    }
    if (level.dialErrors > 0 || level.dropped > 0) {
      stoppedBecause = `at ${k} calls ${level.dialErrors} dials failed and ${level.dropped} streams dropped${level.firstError ? ` (first: ${level.firstError})` : ''}`;
      break;
    }
    if (level.relay.lateP99Ms > plan.stopLoopDelayMs) {
      stoppedBecause = `relay event-loop lateness p99 ${level.relay.lateP99Ms.toFixed(0)} ms > ${plan.stopLoopDelayMs} ms at ${k} calls`;
      break;
    }
  }
  let holds = 0;
  for (const level of levels) {
    if (
      level.relay.lateP99Ms > plan.jitterLimitMs ||
      level.dialErrors > 0 ||
      level.dropped > 0 ||
      level.unopened > 0
    )
      break;
    holds = level.calls;
  }
  let holdsByStatsFigure = 0;
  for (const level of levels) {
    if (level.relay.statsDelayP99Ms > plan.jitterLimitMs || level.dialErrors > 0 || level.dropped > 0) break;
    holdsByStatsFigure = level.calls;
  }
  return {
    levels,
    holds,
    holdsByStatsFigure,
    stoppedBecause,
    idleRelayRssBytes,
    elapsedMs: performance.now() - started,
  };
}

// ------------------------------------------------------------------------------------------------
// all of it

export interface VoiceRelayResults {
  frames: FrameBenchResult;
  turns: TurnsResult;
  capacity: CapacityResult;
  relayLog: RelayProcess['log'];
  elapsedMs: number;
}

export interface VoiceRelayBenchOptions {
  /** Owner (superuser) URL of a PostgreSQL to use; migrations are applied. */
  databaseUrl: string;
  /** The Temporal CLI (temporal-config/cli.ts `locateTemporalCli`). */
  cliPath: string;
  log: (line: string) => void;
}

export async function runVoiceRelayBench(opts: VoiceRelayBenchOptions): Promise<VoiceRelayResults> {
  const started = performance.now();
  const { log } = opts;
  log('voice: frame processing (in-process), then a relay process, turns and the capacity ladder (≈ 5 min)');
  // No stack yet: nothing else runs while frames are timed.
  const frames = await benchFrameProcessing(VOICE_RELAY_PLAN.frames, log);
  const stack = await startStack(opts);
  try {
    const turns = await measureTurns(stack);
    const capacity = await measureCapacity(stack, log);
    return { frames, turns, capacity, relayLog: stack.relay.log, elapsedMs: performance.now() - started };
  } finally {
    await stack.close();
  }
}

// ------------------------------------------------------------------------------------------------
// its section of RESULTS.md

/** Levels where processes outside the bench used more than this many cores are marked disturbed. */
const DISTURBED_CORES = 0.25;

/** Least-squares line through the points: y ≈ intercept + slope·x (NaN with fewer than two distinct x). */
function leastSquares(points: [number, number][]): { slope: number; intercept: number } {
  const n = points.length;
  const meanX = points.reduce((a, [x]) => a + x, 0) / n;
  const meanY = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - meanX) ** 2, 0);
  const slope = sxx > 0 ? points.reduce((a, [x, y]) => a + (x - meanX) * (y - meanY), 0) / sxx : NaN;
  return { slope, intercept: meanY - slope * meanX };
}

const f = (v: number | null, digits = 2) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const row = (name: string, s: Summary, unit = 1) =>
  `| ${name} | ${s.n} | ${f(s.p50 * unit)} | ${f(s.p95 * unit)} | ${f(s.p99 * unit)} | ${f(s.max * unit)} |`;

export function voiceRelaySection(r: VoiceRelayResults, machineLine: string, date: string): string {
  const { frames: fr, turns: t, capacity: c } = r;
  const s = t.summaries;
  const w: Partial<TurnsResult['workflow']> = t.workflow;
  const plan = VOICE_RELAY_PLAN;
  const turnTable = [
    '| per turn (agent replies to a caller turn) | n | p50 ms | p95 ms | p99 ms | max ms |',
    '|---|---:|---:|---:|---:|---:|',
    row(
      '**Parley’s own share**: endpointed → first frame − (STT + LLM first token + TTS first audio)',
      s.share,
    ),
    row('… the workflow: `userTurn` sent → `speak` started in the relay', s.updateToSpeak),
    ...(w.updateToTaskStarted
      ? [
          row('…… update RPC → its workflow task started in the worker', w.updateToTaskStarted),
          row('…… the workflow task (engine step, `speak` scheduled)', w.taskRun!),
          row('…… `speak` scheduled → started (transfer queue, matching, relay’s poll)', w.activityDispatch!),
          row('…… activity started → `speak` started in the call’s session', w.activityToSpeak!),
        ]
      : []),
    row('… the relay around the providers (share − workflow)', s.relay),
    row('…… endpointed → STT request started', s.endpointedToStt),
    row('…… STT final → `userTurn` sent', s.sttToUpdate),
    row('…… LLM first token → TTS of the first sentence started', s.firstTokenToTts),
    row('…… TTS first audio → first frame sent', s.ttsToFirstFrame),
    row('provider: STT (`sttMs`)', s.stt),
    row('provider: LLM first token (`speak` started → first token)', s.llmFirstToken),
    row('provider: TTS first audio (`ttsFirstMs`)', s.ttsFirst),
    row('endpointed → first frame (all of it)', s.endpointedToFirstFrame),
    row(`speech end → first frame (adds the ${plan.endpointingMs} ms endpointing)`, s.speechEndToFirstFrame),
    row('caller-perceived: last utterance frame sent → first agent audio played (simulator)', t.callerHeard),
  ].join('\n');

  const frameTable = [
    '| inbound `media` message (20 ms of μ-law) | n | p50 µs | p95 µs | p99 µs | max µs |',
    '|---|---:|---:|---:|---:|---:|',
    row(
      'relay handler: JSON.parse → checks → base64 → μ-law decode → `CallSession.onAudio` (VAD)',
      fr.perFrameUs,
    ),
  ].join('\n');

  const mib = (b: number) => (b / 2 ** 20).toFixed(0);
  const kib = (b: number) => (b / 1024).toFixed(0);
  // Levels during which processes outside the bench took a noticeable share of the machine.
  const disturbed = c.levels.filter((l) => l.cores.other > DISTURBED_CORES);
  const clean = c.levels.filter((l) => l.cores.other <= DISTURBED_CORES && l.dropped === 0);
  // Memory per call: the slope of the relay's RSS over the levels (the idle relay at 0 calls); one
  // level's RSS moves by megabytes with the garbage collector's timing, too much for a ratio.
  const memory = leastSquares([
    [0, c.idleRelayRssBytes],
    ...c.levels.map((l): [number, number] => [l.connected, l.relay.rssBytes]),
  ]);
  // CPU: fixed share + a share per call, over the undisturbed levels; per frame = per call / 50 frames a second.
  const cpu = leastSquares(clean.map((l): [number, number] => [l.connected, l.relay.cpuCores]));
  const capacityTable = [
    '| calls | connect / teardown s | relay loop lateness p50 / **p99** / max ms (/stats p99) | relay frame p50 / p99 µs | relay CPU % | relay µs CPU per frame | relay RSS MiB | ' +
      'senders late p50 / p99 / max ms | bench process: cores / loop lateness p99 ms | Temporal cores | PostgreSQL cores | machine busy cores (other) / stolen | turns answered / utterances (STT not via peer) | turn p50 / p95 ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...c.levels.map(
      (l) =>
        `| ${l.calls}${l.connected < l.calls ? ` (${l.connected} connected)` : ''}${l.dropped ? `, ${l.dropped} dropped` : ''} | ${f(l.connectMs / 1000, 1)} / ${f(l.teardownMs / 1000, 1)}${l.terminated ? ` (${l.terminated} terminated)` : ''} | ` +
        `${f(l.relay.lateP50Ms, 1)} / **${f(l.relay.lateP99Ms, 1)}** / ${f(l.relay.lateMaxMs, 1)} (${f(l.relay.statsDelayP99Ms, 1)}) | ` +
        `${f(l.relay.frameP50Ms === null ? null : l.relay.frameP50Ms * 1000, 0)} / ${f(l.relay.frameP99Ms === null ? null : l.relay.frameP99Ms * 1000, 0)} | ` +
        `${f(l.relay.cpuCores * 100, 0)} | ${f(l.relay.cpuUsPerFrame, 1)} | ${mib(l.relay.rssBytes)} | ` +
        `${f(l.senders.lateP50Ms, 1)} / ${f(l.senders.lateP99Ms, 1)} / ${f(l.senders.lateMaxMs, 1)} | ` +
        `${f(l.bench.cpuCores)} / ${f(l.bench.loopLateP99Ms, 1)} | ${f(l.cores.temporal)} | ${f(l.cores.postgres)} | ` +
        `${f(l.cores.machine)} (${f(l.cores.other)}) / ${f(l.cores.steal)} | ${l.turnsAnswered} / ${l.utterances} (${l.sttMissing}) | ${f(l.turnP50Ms, 0)} / ${f(l.turnP95Ms, 0)} |`,
    ),
  ].join('\n');

  // The whole stack under load: what a call costs end to end, and where the turns stop being quick.
  const cpuCount = os.cpus().length;
  const stackCpu = leastSquares(clean.map((l): [number, number] => [l.connected, l.cores.machine]));
  const benchMemory = leastSquares(c.levels.map((l): [number, number] => [l.connected, l.benchRssBytes]));
  const withinGoal = (l: CapacityLevel) =>
    l.dropped === 0 &&
    l.unopened === 0 &&
    l.connected === l.calls &&
    l.overhead.n > 0 &&
    l.overhead.p95Ms <= plan.capacity.overheadGoalP95Ms;
  const overheadHolds = c.levels.findIndex((l) => !withinGoal(l));
  const overheadHeld =
    (overheadHolds === -1 ? c.levels : c.levels.slice(0, overheadHolds)).at(-1)?.calls ?? 0;
  const overheadOver = overheadHolds === -1 ? undefined : c.levels[overheadHolds];
  const machineFull = c.levels.find((l) => l.cores.machine >= 0.9 * cpuCount);
  const loadTable = [
    '| calls | held to the end (dropped) | turns answered / utterances | **turn overhead** p50 / **p95** / p99 ms (n) | endpointed → first frame p50 / p95 / p99 ms | machine busy, cores of ' +
      `${cpuCount} | stack CPU per call, % of a core | relay RSS MiB | bench process RSS MiB |`,
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...c.levels.map(
      (l) =>
        `| ${l.calls} | ${l.connected - l.dropped} (${l.dropped})${l.unopened ? `, ${l.unopened} never greeted` : ''} | ${l.turnsAnswered} / ${l.utterances} | ` +
        `${f(l.overhead.p50Ms, 0)} / **${f(l.overhead.p95Ms, 0)}** / ${f(l.overhead.p99Ms, 0)} (${l.overhead.n}) | ` +
        `${f(l.turnP50Ms, 0)} / ${f(l.turnP95Ms, 0)} / ${f(l.turnP99Ms, 0)} | ${f(l.cores.machine)} | ` +
        `${f((l.cores.machine / Math.max(1, l.connected)) * 100, 1)} | ${mib(l.relay.rssBytes)} | ${mib(l.benchRssBytes)} |`,
    ),
  ].join('\n');

  const p = (x: number, of: number) => `${((x / of) * 100).toFixed(0)} %`;
  const last = c.levels.at(-1);
  const firstOver = c.levels.find((l) => l.relay.lateP99Ms > plan.capacity.jitterLimitMs);
  const stages = fr.stagesUs;
  const stageSum = stages.parse + stages.decode + stages.onAudio;
  return [
    `## ${date} — voice: the relay’s share of a turn, inbound frame cost, concurrent calls`,
    '',
    `- Machine: ${machineLine}`,
    '- Command: `npm run bench` (its voice part; alone: `npx tsx bench/voice-relay.ts`, which appends only this section). ' +
      `Its own stack: a Temporal CLI dev server in memory started as \`npm start\` starts it (\`--dynamic-config-value ${DEV_SERVER_DYNAMIC_CONFIG.join(' ')}\`; ` +
      'the CLI defaults add ≈ 40 ms per transfer-queue hop, see the text-turn section, and a voice turn has one before `speak` starts), ' +
      'embedded PostgreSQL (`bench/run.ts`’s, or its own when run alone), the api (Twilio webhooks, calls API) and one worker for `calls`, `integrations`, `billing` in the bench process, ' +
      '**the relay as its own process** (`node --import tsx realtime-relay/main.ts`, configured by environment), the OpenAI peer ' +
      '(chat, transcriptions, speech — all answered at once) and the caller simulator in the bench process. ' +
      `The voice part took ${(r.elapsedMs / 60_000).toFixed(1)} min.`,
    `- Agent: one \`llm\` node (model \`bench\`; the peer streams "Sure."), \`stt\`/\`tts\` provider \`openai\` (the relay’s OpenAI client points at the peer), ` +
      `endpointing ${plan.endpointingMs} ms, barge-in after 250 ms. The caller’s utterance: ${plan.utteranceMs} ms of a synthetic voiced signal ` +
      '(200 Hz fundamental, harmonics to 3.4 kHz, −20 dBFS RMS) sent in real-time 20 ms μ-law frames; the STT peer answers "' +
      `${CALLER_TEXT}" whatever it hears.`,
    '',
    `### Parley’s own share of a turn`,
    '',
    `${t.turns} turns in ${t.calls} calls of ${plan.turns.turnsPerCall} turns (after a warm-up call), ${t.lanes} calls in flight at a time, ` +
      'each call one turn at a time (speak, wait for the reply to finish playing, speak again). Per turn, from the agent reply’s ' +
      '`transcript[].timings` in `GET /v1/calls/:id` (epoch ms taken in the relay, so every figure has ±1 ms of rounding and a ' +
      'difference of several up to ±2 ms). The clock starts at `endpointedAt`, when the VAD has heard the endpointing silence: that ' +
      'silence is configured waiting, not overhead, and is excluded by construction. Provider time = `sttMs` + `llmFirstTokenMs` ' +
      '(`speak` started → first token) + `ttsFirstMs`, each including the client side of its request (SDK, WAV/multipart encoding, ' +
      'resampling the 24 kHz PCM), so the share is if anything under-counted by those.',
    '',
    turnTable,
    '',
    `- This process (the worker, the api, the peers, the callers) ran its event loop at most ${f(t.benchLoopLateP99Ms, 1)} ms late (p99) ` +
      `while the turns ran; ${(t.wallMs / 1000).toFixed(0)} s for the turns, warm-up included.`,
    '',
    `### Inbound frame processing`,
    '',
    `${fr.frames} Twilio \`media\` messages (20 ms, 160 bytes of μ-law, base64 in JSON, as \`ws\` hands them over) through the relay’s own ` +
      `message handler (\`twilioStreamRoute\`) on ${fr.sessions} sessions round-robin, in this process, the socket a no-op and Temporal, ` +
      `STT and TTS fakes (the asynchronous STT/\`userTurn\` submission runs between batches, untimed). Audio: ${fr.audio} separated by ` +
      `1.8–3 s of line silence with ≈ −65 dBFS noise, ${p(fr.speechShare, 1)} of the frames speech; the VAD ended ${fr.utterances} utterances. ` +
      'Not included: `ws`’s own frame decoding before the handler (the capacity table’s “µs CPU per frame” has everything).',
    '',
    frameTable,
    '',
    `- Stages, timed separately on ${plan.frames.stageSamples} frames (p50): JSON.parse of the message ${f(stages.parse)} µs ` +
      `(${p(stages.parse, stageSum)}), base64 check + decode + μ-law → PCM16 ${f(stages.decode)} µs (${p(stages.decode, stageSum)}), ` +
      `\`CallSession.onAudio\` (pre-roll/utterance buffering, energy VAD, the 1-in-10 cost sample) ${f(stages.onAudio)} µs (${p(stages.onAudio, stageSum)}).`,
    '',
    `### Concurrent calls on the relay process`,
    '',
    `Levels of K calls, fresh calls per level: dialled ${plan.capacity.dialConcurrency} at a time (signed webhook → TwiML → stream → ` +
      `greeting and the llm node's opening line), every call's opening heard plus ${plan.capacity.settleMs / 1000} s, then the relay’s \`GET /stats?reset=1\` opens a ${plan.capacity.holdMs / 1000} s window ` +
      `read at its end. Every call streams 20 ms frames in real time all along (silence, and one ${plan.utteranceMs} ms ` +
      `utterance every ${plan.capacity.utterancePeriodMs / 1000} s, phases spread evenly) and the agent answers every utterance through the ` +
      'instant peers. Between levels every caller hangs up (`stop`, then the status callback) and the level’s workflows finish their ' +
      `post-call work before the next level starts (bounded at ${plan.capacity.finishBoundMs / 1000} s, then terminated). ` +
      'Relay loop lateness: how late the relay’s event loop gets to work that is due — a frame that has arrived waits at least ' +
      'this long, so it is the jitter the relay adds; it is /stats’ `eventLoopDelayMs` minus its 10 ms sampling interval ' +
      '(`monitorEventLoopDelay` records the interval between two samples: an idle loop reads ≈ 10.1 ms), the raw /stats p99 in ' +
      'parentheses. Relay frame p50/p99: its own sample of `onAudio` (every 10th frame). CPU: the relay’s ' +
      '`process.cpuUsage()` (every thread, the Temporal worker core included; 100 % = one core), /proc for the others; “other” = ' +
      'machine busy − these four processes (the kernel’s softirq work for the loopback traffic counts there ' +
      `too; levels where it exceeds ${DISTURBED_CORES} core are marked disturbed); “stolen”: CPU time the hypervisor gave to ` +
      'other guests (the VM itself ran slower). Senders late: how late the simulated Twilio sent its frames against the 20 ms clock ' +
      '(load generator saturation, not the relay). Turn p50/p95: endpointed → first frame of the replies sent in the window. ' +
      '“STT not via peer”: utterances of the level that never reached the STT peer, the agent’s provider (0: all transcribed as configured).',
    '',
    capacityTable,
    '',
    `- **Holds: ${c.holds} concurrent calls** with relay event-loop lateness (frame jitter) p99 ≤ ${plan.capacity.jitterLimitMs} ms ` +
      `(that level and every smaller one; by the raw /stats figure, ${c.holdsByStatsFigure})` +
      (firstOver
        ? `; first over: ${firstOver.calls} calls at ${f(firstOver.relay.lateP99Ms, 1)} ms`
        : `; every level tried stayed under it (up to ${last?.calls ?? 0})`) +
      (c.stoppedBecause ? `; the ladder stopped: ${c.stoppedBecause}.` : '.'),
    ...(disturbed.length
      ? [
          `- **Disturbed**: other processes on the machine used ${disturbed.map((l) => `${f(l.cores.other)} cores at ${l.calls} calls`).join(', ')} ` +
            '(“other” column): those levels understate what the relay holds.',
        ]
      : []),
    ...(clean.length < 2
      ? []
      : [
          `- Relay CPU over the undisturbed levels (least squares): ≈ ${f(cpu.intercept * 100, 1)} % of a core with no call, ` +
            `+ ${f(cpu.slope * 100, 2)} % per call, i.e. ≈ ${f((cpu.slope * 1e6) / 50, 0)} µs of CPU per inbound frame with everything a call brings ` +
            '(socket, `ws`, the handler, the turns’ STT/LLM/TTS requests, `speak`, the Temporal worker). Its JavaScript runs on one thread: ' +
            `at that rate one core is used up near ${f((1 - cpu.intercept) / Math.max(1e-9, cpu.slope), 0)} calls (an extrapolation; lateness grows well before).`,
        ]),
    `- Memory: idle relay RSS ${mib(c.idleRelayRssBytes)} MiB, ≈ ${kib(memory.slope)} KiB more per call (least-squares slope over the levels). Relay log over the whole run: ${r.relayLog.warnings} warnings, ${r.relayLog.errors} errors.`,
    `- Ratios (p50): workflow / Parley’s share = ${f(s.updateToSpeak.p50 / Math.max(1e-9, s.share.p50))}; Parley’s share / endpointed → first frame = ` +
      `${f(s.share.p50 / Math.max(1e-9, s.endpointedToFirstFrame.p50))}; frame handler p99 / 20 ms frame = ${f(fr.perFrameUs.p99 / 20_000, 4)}.`,
    '',
    '### The whole stack under load',
    '',
    'The same levels, read as a load test of the whole path: each call enters as a signed Twilio webhook (`POST /twilio/voice` → TwiML), ' +
      'its call workflow starts, the simulated Twilio opens the media stream on the relay process, and every utterance goes VAD → STT peer → ' +
      '`userTurn` update → workflow → `speak` on the relay → LLM and TTS peers → μ-law frames back. Turn overhead: Parley’s own share of each ' +
      'reply sent in the window (endpointed → first frame − STT − LLM first token − TTS first audio, as in the first table). ' +
      'Stack CPU: everything on the machine (relay, worker, api, Temporal, PostgreSQL, and the peers and callers in the bench process) over the window.',
    '',
    loadTable,
    '',
    `- **Calls held with turn overhead p95 ≤ ${plan.capacity.overheadGoalP95Ms} ms** (design.md’s goal; every call connected and none dropped): ` +
      `**${overheadHeld}**` +
      (overheadOver
        ? `; first past it: ${overheadOver.calls} calls (overhead p95 ${f(overheadOver.overhead.p95Ms, 0)} ms, ${overheadOver.dropped} dropped, ${overheadOver.calls - overheadOver.connected} not connected).`
        : `; every level tried stayed within it (up to ${last?.calls ?? 0}).`),
    `- **Where it saturates**: ` +
      (machineFull
        ? `the machine’s ${cpuCount} cores are ≥ 90 % busy from ${machineFull.calls} calls on (${f(machineFull.cores.machine)} cores)`
        : `the machine’s ${cpuCount} cores stayed under 90 % busy at every level (${f(last?.cores.machine ?? 0)} at ${last?.calls ?? 0} calls)`) +
      `; the relay’s event loop passes ${plan.capacity.jitterLimitMs} ms of lateness ` +
      (firstOver ? `at ${firstOver.calls} calls` : 'at no level tried') +
      '. With everything on one machine the limit is shared CPU, not any one process: see the CPU columns above.',
    ...(clean.length < 2
      ? []
      : [
          `- CPU per call, whole stack (least squares over the undisturbed levels): ≈ ${f(stackCpu.slope * 100, 1)} % of a core per call ` +
            `on top of ${f(stackCpu.intercept)} cores with no call, so ${cpuCount} cores would carry ≈ ` +
            `${f((cpuCount - stackCpu.intercept) / Math.max(1e-9, stackCpu.slope), 0)} calls at full use.`,
        ]),
    `- Memory per call: relay ≈ ${kib(memory.slope)} KiB; bench process (worker, api, peers, callers) ≈ ${kib(benchMemory.slope)} KiB (least-squares slopes over the levels).`,
    '',
  ].join('\n');
}

// ------------------------------------------------------------------------------------------------
// on its own: `npx tsx bench/voice-relay.ts`

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const startedAt = new Date().toISOString();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-voice-'));
  chmodSync(dataDir, 0o755); // as root, embedded-postgres runs initdb as 'postgres'
  try {
    const cliPath = await locateTemporalCli({ log });
    const pg = await startEmbeddedPostgres({
      dataDir: path.join(dataDir, 'pg'),
      port: await freePort(),
      log,
    });
    try {
      const results = await runVoiceRelayBench({ databaseUrl: pg.url, cliPath, log });
      // Alone, it may run several times a day: the heading carries the start time too.
      const section = voiceRelaySection(
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
