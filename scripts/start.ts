/**
 * `npm start`: Parley on one machine. Starts PostgreSQL (embedded unless DATABASE_URL is set) and
 * the Temporal dev server (unless TEMPORAL_ADDRESS is set), migrates, starts the api, worker and
 * relay processes, seeds a demo tenant, prints where everything is, and stops it all on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import {
  absoluteDataDir,
  ConfigError,
  DEV_TWILIO_AUTH_TOKEN,
  loadConfig,
  loadConfigOrExit,
  type Config,
} from '../config';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../db/embedded-postgres';
import { runMigrations } from '../db/migrate';
import {
  DEMO_BOOKING_AGENT,
  DEMO_BOOKING_AGENT_NAME,
  LLM_RECEPTIONIST_TEMPLATE,
  LLM_RECEPTIONIST_TEMPLATE_NAME,
} from '../db/seed/demo-agents';
import { waitUntil } from '../lib/net';
import { locateTemporalCli, PROJECT_ROOT } from '../temporal-config/cli';
import { temporalUiUrl } from '../temporal-config/connection';
import { startDevServer, type DevServer } from '../temporal-config/dev-server';

const DEMO = {
  tenantName: 'Demo Co',
  name: 'Demo Admin',
  email: 'demo@parley.local',
  password: 'parley-demo-password',
};
/** Twilio's magic test number: calls to it succeed without a real line. */
const DEMO_LINE = { number: '+15005550006', label: 'Demo line' };
const PROCESSES = [
  { name: 'api', entry: 'api/main.ts', color: 36 },
  { name: 'worker', entry: 'workers/main.ts', color: 35 },
  { name: 'relay', entry: 'realtime-relay/main.ts', color: 33 },
] as const;

const say = (line: string) => process.stdout.write(`\x1b[1m[parley]\x1b[0m ${line}\n`);

/** Pretty-prints a child's pino JSON lines; anything else passes through. */
function pipeOutput(child: ChildProcess, name: string, color: number, onMessage?: (msg: string) => void) {
  const tag = `\x1b[${color}m[${name}]\x1b[0m`;
  const levels: Record<number, string> = {
    10: 'trace',
    20: 'debug',
    30: 'info',
    40: 'WARN',
    50: 'ERROR',
    60: 'FATAL',
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          const {
            level,
            msg,
            time: _t,
            pid: _p,
            hostname: _h,
            name: _n,
            service: _s,
            ...rest
          } = JSON.parse(line) as Record<string, unknown>;
          onMessage?.(String(msg));
          const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
          process.stdout.write(`${tag} ${levels[Number(level)] ?? String(level)} ${String(msg)}${extra}\n`);
        } catch {
          process.stdout.write(`${tag} ${line}\n`);
        }
      }
    });
  }
}

/**
 * The demo tenant and its agents, through the public API like any client: the deterministic booking
 * agent (published, works without an LLM), the LLM receptionist template (a draft until a
 * provider key is configured), and the demo line that rings the booking agent. Idempotent: what
 * exists is left alone.
 */
async function seedDemo(apiUrl: string): Promise<string[]> {
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`${apiUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    return { ok: res.ok, status: res.status, json };
  };
  const done: string[] = [];
  let session = await call('POST', '/v1/auth/login', { email: DEMO.email, password: DEMO.password });
  if (!session.ok) {
    session = await call('POST', '/v1/auth/signup', DEMO);
    if (!session.ok)
      throw new Error(`seeding the demo tenant failed: ${session.status} ${JSON.stringify(session.json)}`);
    done.push('demo tenant');
  }
  const token = session.json.token as string;
  const agents = (await call('GET', '/v1/agents', undefined, token)).json.data as {
    id: string;
    name: string;
  }[];
  const agentIds = new Map(agents.map((a) => [a.name, a.id]));
  const seeds = [
    { name: DEMO_BOOKING_AGENT_NAME, definition: DEMO_BOOKING_AGENT, publish: true },
    { name: LLM_RECEPTIONIST_TEMPLATE_NAME, definition: LLM_RECEPTIONIST_TEMPLATE, publish: false },
  ];
  for (const seed of seeds) {
    if (agentIds.has(seed.name)) continue;
    const created = await call('POST', '/v1/agents', { name: seed.name, definition: seed.definition }, token);
    if (!created.ok) throw new Error(`seeding agent '${seed.name}' failed: ${JSON.stringify(created.json)}`);
    if (seed.publish) await call('POST', `/v1/agents/${String(created.json.id)}/publish`, {}, token);
    agentIds.set(seed.name, String(created.json.id));
    done.push(`agent '${seed.name}'`);
  }

  // The demo line rings the booking agent; a number routes to one tenant only, so another tenant
  // of this database may hold it already.
  const numbers = (await call('GET', '/v1/phone-numbers', undefined, token)).json.data as {
    number: string;
  }[];
  if (!numbers.some((n) => n.number === DEMO_LINE.number)) {
    const line = await call(
      'POST',
      '/v1/phone-numbers',
      { ...DEMO_LINE, agentId: agentIds.get(DEMO_BOOKING_AGENT_NAME) },
      token,
    );
    const code = (line.json.error as { code?: string } | undefined)?.code;
    if (line.ok) done.push(`phone number ${DEMO_LINE.number} → '${DEMO_BOOKING_AGENT_NAME}'`);
    else if (code === 'PHONE_NUMBER_TAKEN')
      say(`demo line ${DEMO_LINE.number} is registered by another tenant; not seeding it`);
    else throw new Error(`seeding the demo line failed: ${line.status} ${JSON.stringify(line.json)}`);
  }
  return done;
}

async function main() {
  const baseConfig = loadConfigOrExit();
  const dataDir = absoluteDataDir(baseConfig);
  const children: ChildProcess[] = [];
  let postgres: EmbeddedPostgres | undefined;
  let temporal: DevServer | undefined;
  let stopping = false;

  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping…');
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    await temporal?.stop().catch((err: unknown) => say(`temporal stop: ${String(err)}`));
    await postgres?.stop().catch((err: unknown) => say(`postgres stop: ${String(err)}`));
    say('stopped.');
    process.exit(code);
  };
  process.once('exit', () => children.forEach((child) => child.exitCode === null && child.kill('SIGKILL')));
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  try {
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (!baseConfig.DATABASE_URL) {
      postgres = await startEmbeddedPostgres({
        dataDir: path.join(dataDir, 'postgres'),
        port: baseConfig.EMBEDDED_POSTGRES_PORT,
        log: say,
      });
      env.DATABASE_URL = postgres.url;
    }
    if (!baseConfig.TEMPORAL_ADDRESS) {
      const cliPath = await locateTemporalCli({ explicitPath: baseConfig.TEMPORAL_CLI_PATH, log: say });
      temporal = await startDevServer({
        cliPath,
        port: baseConfig.TEMPORAL_DEV_PORT,
        uiPort: baseConfig.TEMPORAL_DEV_UI_PORT,
        namespace: baseConfig.TEMPORAL_NAMESPACE,
        dbFile: path.join(dataDir, 'temporal.sqlite'),
        log: say,
      });
      env.TEMPORAL_ADDRESS = temporal.address;
    }
    if (!baseConfig.TWILIO_AUTH_TOKEN && baseConfig.NODE_ENV !== 'production') {
      // Webhooks are always signature-checked; locally, against a development token that the
      // caller simulator (`npm run simulate-call`) signs with too.
      env.TWILIO_AUTH_TOKEN = DEV_TWILIO_AUTH_TOKEN;
      say('Twilio webhooks accept the development auth token (set TWILIO_AUTH_TOKEN for a real account)');
    }
    const config: Config = loadConfig(env);
    const { applied } = await runMigrations(config, say);
    say(applied.length ? `database migrated (${applied.length} migration(s))` : 'database schema up to date');

    let workerRunning = false;
    for (const proc of PROCESSES) {
      const child = spawn(process.execPath, ['--import', 'tsx', proc.entry], {
        cwd: PROJECT_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      pipeOutput(child, proc.name, proc.color, (msg) => {
        if (proc.name === 'worker' && msg === 'worker running') workerRunning = true;
      });
      child.once('exit', (code, signal) => {
        if (stopping) return;
        say(`${proc.name} exited unexpectedly (${signal ?? `code ${code}`}); stopping everything`);
        void stopAll(1);
      });
      children.push(child);
    }

    const apiUrl = `http://127.0.0.1:${config.API_PORT}`;
    // The worker bundles its workflows first (seconds); the demo seed needs it polling.
    await waitUntil('the worker to poll its task queues', () => Promise.resolve(workerRunning), 120_000, 200);
    await waitUntil(
      'the api to report ready',
      async () => (await fetch(`${apiUrl}/health/ready`)).ok,
      120_000,
      300,
    );
    if (config.DEMO_SEED) {
      const seeded = await seedDemo(apiUrl);
      say(seeded.length ? `seeded: ${seeded.join(', ')}` : 'demo tenant and agents already present');
    }

    const publicUrl = config.PUBLIC_BASE_URL.replace(/\/$/, '');
    say('');
    say('Parley is running.');
    say(`  Dashboard       ${publicUrl}/`);
    say(`  API docs        ${publicUrl}/docs`);
    say(`  Health          ${publicUrl}/health/ready`);
    say(`  Temporal UI     ${temporalUiUrl(config)}`);
    say(`  Relay           ${config.RELAY_PUBLIC_URL}`);
    say(`  Twilio webhook  ${publicUrl}/twilio/voice (voice), ${publicUrl}/twilio/status (status)`);
    if (config.DEMO_SEED) say(`  Demo sign-in    ${DEMO.email} / ${DEMO.password}`);
    say('Press Ctrl-C to stop.');
  } catch (err) {
    say(
      err instanceof ConfigError
        ? err.message
        : `start-up failed: ${err instanceof Error ? err.message : String(err)}`,
    );
    await stopAll(1);
  }
}

/**
 * A terminal's Ctrl-C signals the whole foreground process group at once, which would stop
 * PostgreSQL and Temporal while the api and worker still drain. So the launcher re-runs itself in
 * a session of its own and forwards only the signal; the inner launcher stops things in order.
 */
function runDetached(): void {
  const inner = spawn(process.execPath, [...process.execArgv, __filename], {
    env: { ...process.env, PARLEY_LAUNCHER_INNER: '1' },
    stdio: 'inherit',
    detached: true,
  });
  const forward = (signal: NodeJS.Signals) => inner.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  inner.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (process.env.PARLEY_LAUNCHER_INNER) void main();
else runDetached();
