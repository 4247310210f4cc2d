/**
 * `npm run bench`: what Parley's own layers cost on this machine, measured over real sockets
 * against a real PostgreSQL (embedded) and a real Temporal dev server. Appends the figures to
 * bench/RESULTS.md.
 *
 * - health/ready: the api's readiness probe (one Postgres query + one Temporal RPC).
 * - GET /v1/me with a JWT: token check + one tenant-scoped transaction (set_config + two selects).
 * - the same with an API key: hash + tenant-scoped lookup.
 * - sign-up: two tenant-scoped writes + tenantProvisioningWorkflow round trip (start, activity, result).
 * - withTenant vs a bare query: the price of setting the tenant per transaction.
 * - POST /twilio/voice (bench/voice-webhook.ts): a signed inbound call answered with TwiML (number
 *   lookup, admission transaction, callWorkflow start).
 * - text turns (bench/text-turns.ts): the `userTurn` round trip, deterministic and with an instant
 *   LLM peer, through the client and the api, where its time goes, and how many concurrent text
 *   conversations the one worker sustains. Appended as a second section.
 * - voice (bench/voice-relay.ts, on its own Temporal dev server and a relay process): Parley's share
 *   of a phone turn, inbound frame cost, concurrent calls per relay. Appended as a third section.
 * - outbound campaign (bench/campaign.ts, on its own Temporal dev server with the api, worker and relay
 *   as processes): dials per second against the cap, calling-window error, history size, worker
 *   memory, for CAMPAIGN_BENCH_CONTACTS contacts (default 10,000). Appended as a fourth section.
 */
import { appendFileSync, chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { activityDepsFromConfig } from '../activities';
import { createApp } from '../api/app';
import { loadConfig } from '../config';
import { startEmbeddedPostgres } from '../db/embedded-postgres';
import { runMigrations } from '../db/migrate';
import { createAppOrm } from '../db/orm';
import { withTenant } from '../db/tenant-context';
import { createLogger } from '../lib/logger';
import { freePort } from '../lib/net';
import { locateTemporalCli } from '../temporal-config/cli';
import { startDevServer } from '../temporal-config/dev-server';
import { createWorkers } from '../workers/create-workers';
import { startOpenAiPeer } from '../test/peers/openai-peer';
import { campaignBenchPlan, campaignSection, runCampaignBench } from './campaign';
import { machine, measure, type Summary } from './stats';
import { runTextTurnScenarios, textTurnsSection } from './text-turns';
import { runVoiceRelayBench, voiceRelaySection } from './voice-relay';
import { measureVoiceWebhook } from './voice-webhook';

const RESULTS = path.join(__dirname, 'RESULTS.md');
const ms = (v: number) => v.toFixed(2);
const PEER_API_KEY = 'sk-bench-parley-peer';

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
  chmodSync(dataDir, 0o755);
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const campaignPlan = campaignBenchPlan(); // a malformed CAMPAIGN_BENCH_* stops here, not an hour in
  const cliPath = await locateTemporalCli({ log });
  // The LLM the text scenarios talk to: local, instant, scripted per request (bench/text-turns.ts).
  const peer = await startOpenAiPeer({ apiKey: PEER_API_KEY });
  const [pg, temporalServer] = await Promise.all([
    startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port: await freePort(), log }),
    // The CLI's own defaults, as every recorded baseline; the tuned comparison runs in text-turns.ts.
    startDevServer({
      cliPath,
      port: await freePort(),
      headless: true,
      fastSqlite: false,
      dynamicConfig: [],
      log,
    }),
  ]);
  const config = loadConfig({
    DATABASE_URL: pg.url,
    TEMPORAL_ADDRESS: temporalServer.address,
    LOG_LEVEL: 'silent',
    OPENAI_BASE_URL: peer.baseUrl,
    OPENAI_API_KEY: PEER_API_KEY,
    TWILIO_AUTH_TOKEN: 'bench-twilio-auth-token',
  });
  await runMigrations(config);
  const orm = await createAppOrm(config);
  const connection = await Connection.connect({ address: temporalServer.address });
  const temporal = new Client({ connection });
  const workerConnection = await NativeConnection.connect({ address: temporalServer.address });
  // One worker process (this one) for every queue a text conversation touches.
  const activityDeps = activityDepsFromConfig(config, orm);
  const logger = createLogger(config, 'bench');
  const workers = await createWorkers({
    connection: workerConnection,
    namespace: 'default',
    taskQueues: ['billing', 'calls', 'integrations'],
    activityDeps,
    logger,
  });
  const workerRuns = Promise.all(workers.map((w) => w.run()));
  const server = createApp({ config, orm, temporal, logger }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const post = async (url: string, body: unknown, token?: string) => {
    const res = await fetch(`${base}${url}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const get = async (url: string, token?: string) => {
    const res = await fetch(`${base}${url}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (!res.ok) throw new Error(`${url}: ${res.status}`);
    await res.arrayBuffer();
  };

  const rows: [string, Summary][] = [];
  try {
    // Warm-up: JIT, connection pools, the workflow bundle.
    const owner = await post('/v1/auth/signup', {
      tenantName: 'Bench',
      name: 'B',
      email: 'bench@example.test',
      password: 'bench-password-1',
    });
    const token = owner.token as string;
    const key = (await post('/v1/api-keys', { name: 'bench', role: 'viewer' }, token)).key as string;
    for (let i = 0; i < 50; i++) await get('/v1/me', token);

    rows.push([
      'GET /health/ready, 1 at a time',
      await measure('health/ready ×500', 500, 1, () => get('/health/ready')),
    ]);
    rows.push([
      'GET /v1/me (JWT), 1 at a time',
      await measure('me (JWT) ×1000', 1000, 1, () => get('/v1/me', token)),
    ]);
    rows.push([
      'GET /v1/me (JWT), 16 in flight',
      await measure('me (JWT) ×2000 c16', 2000, 16, () => get('/v1/me', token)),
    ]);
    rows.push([
      'GET /v1/me (API key), 1 at a time',
      await measure('me (API key) ×1000', 1000, 1, () => get('/v1/me', key)),
    ]);
    rows.push([
      'POST /v1/auth/signup + provisioning workflow, 1 at a time',
      await measure('signup ×60', 60, 1, async (i) => {
        await post('/v1/auth/signup', {
          tenantName: `T${i}`,
          name: 'N',
          email: `b${i}@example.test`,
          password: 'bench-password-1',
        });
      }),
    ]);
    const tenantId = owner.tenant.id as string;
    const bare = await measure('bare select ×2000', 2000, 1, async () => {
      await orm.em.fork().execute('select 1');
    });
    const scoped = await measure('withTenant select ×2000', 2000, 1, async () => {
      await withTenant(orm, tenantId, (em) => em.execute('select count(*) from users'));
    });
    rows.push(['bare `select 1` (pool)', bare], ['withTenant: begin, set_config, select, commit', scoped]);
    const webhook = await measureVoiceWebhook({
      base,
      config,
      token,
      tenantId,
      userId: owner.user.id as string,
      orm,
      temporal,
      calls: 200,
      spacingMs: 150,
    });
    rows.push(
      ['POST /twilio/voice, inbound (route, admission, workflow start), back to back', webhook.backToBack],
      ['POST /twilio/voice, inbound, one call every 150 ms (pause not timed)', webhook.spaced],
    );

    const table = [
      '| scenario | n | p50 ms | p95 ms | p99 ms | max ms | per s |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        ([name, s]) =>
          `| ${name} | ${s.n} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${ms(s.max)} | ${s.perSecond.toFixed(0)} |`,
      ),
    ].join('\n');
    const ratio = (scoped.p50 / bare.p50).toFixed(2);
    const concurrencyGain = (rows[2]![1].perSecond / rows[1]![1].perSecond).toFixed(2);
    const text = await runTextTurnScenarios({
      base,
      token,
      tenantId,
      userId: owner.user.id as string,
      orm,
      temporal,
      temporalPid: temporalServer.child.pid,
      peer,
      log,
      config,
      cliPath,
      scratchDir: dataDir,
      activityDeps,
      logger,
    });
    const voiceRelay = await runVoiceRelayBench({ databaseUrl: pg.url, cliPath, log });
    const campaign = await runCampaignBench({
      databaseUrl: pg.url,
      postgresDataDir: path.join(dataDir, 'pg'),
      cliPath,
      log,
      plan: campaignPlan,
    });

    const date = new Date().toISOString().slice(0, 10);
    const entry = [
      `## ${date} — api and provisioning baseline`,
      '',
      `- Machine: ${machine()}`,
      '- Command: `npm run bench` (embedded PostgreSQL 18, Temporal CLI 1.5.1 dev server with SQLite, api in-process over HTTP on 127.0.0.1)',
      '',
      table,
      '',
      `- Ratios: withTenant / bare query p50 = ${ratio}×; /v1/me throughput at 16 in flight / at 1 = ${concurrencyGain}×.`,
      '',
    ].join('\n');
    const textEntry = textTurnsSection(text, machine(), date);
    const voiceEntry = voiceRelaySection(voiceRelay, machine(), date);
    const campaignEntry = campaignSection(campaign, machine(), date);
    if (!existsSync(RESULTS))
      writeFileSync(RESULTS, '# Benchmark results\n\nEach run of `npm run bench` appends a section.\n\n');
    appendFileSync(RESULTS, `${entry}\n${textEntry}\n${voiceEntry}\n${campaignEntry}\n`);
    process.stdout.write(`\n${entry}\n${textEntry}\n${voiceEntry}\n${campaignEntry}\n`);
  } finally {
    server.close();
    for (const w of workers) w.shutdown();
    await workerRuns;
    await workerConnection.close();
    await connection.close();
    await orm.close();
    await temporalServer.stop();
    await pg.stop();
    await peer.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
