/**
 * Each process runs alone, as in production (`npm run api|worker|relay`), against the harness's
 * PostgreSQL and Temporal; each stops cleanly on SIGTERM; a missing setting stops it naming the variable.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { freePort, waitUntil } from '../lib/net';
import { ISOLATED_NAMESPACE } from './harness/state';
import { startParleyProcess } from './support/process';
import { ownerClient } from './support/stack';

const ROOT = path.resolve(__dirname, '..');

const startProcess = startParleyProcess;

it('npm run api serves ready on its own and exits 0 on SIGTERM', async () => {
  const port = await freePort();
  const api = startProcess('api/main.ts', { API_PORT: String(port), API_HOST: '127.0.0.1' });
  await waitUntil(
    'the api to be ready',
    async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok,
    60_000,
  );
  api.child.kill('SIGTERM');
  expect(await api.exited).toBe(0);
  expect(api.output()).toContain('shutting down');
});

it('npm run relay serves health on its own and exits 0 on SIGTERM', async () => {
  const port = await freePort();
  const relay = startProcess('realtime-relay/main.ts', {
    RELAY_PORT: String(port),
    RELAY_HOST: '127.0.0.1',
    RELAY_INSTANCE_ID: 'solo',
  });
  await waitUntil(
    'the relay to be ready',
    async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok,
    30_000,
  );
  expect(await (await fetch(`http://127.0.0.1:${port}/health/live`)).json()).toMatchObject({
    instanceId: 'solo',
  });
  relay.child.kill('SIGTERM');
  expect(await relay.exited).toBe(0);
});

it('npm run worker runs provisioning work on its own queue list, is ready while polling and drains on SIGTERM', async () => {
  const healthPort = await freePort();
  const worker = startProcess('workers/main.ts', {
    WORKER_TASK_QUEUES: 'billing',
    TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE,
    WORKER_METRICS_PORT: String(healthPort),
    TEMPORAL_METRICS_PORT: '0',
  });
  const ready = async () => {
    const res = await fetch(`http://127.0.0.1:${healthPort}/health/ready`);
    return { status: res.status, body: (await res.json()) as { status: string; workers: object } };
  };
  const fail = (err: Error) => {
    throw new Error(`${err.message}\n${worker.output()}`);
  };
  // The health server listens first; readiness is 503 until the Temporal Worker polls.
  let first: Awaited<ReturnType<typeof ready>> | undefined;
  await waitUntil(
    'the worker health server to answer',
    async () => (first = await ready().catch(() => undefined)) !== undefined,
    30_000,
    50,
  ).catch(fail);
  expect(first).toEqual({ status: 503, body: { status: 'starting', workers: {} } });
  expect((await fetch(`http://127.0.0.1:${healthPort}/health/live`)).status).toBe(200);
  await waitUntil('the worker to be ready', async () => (await ready()).status === 200, 30_000).catch(fail);
  expect(await ready()).toEqual({ status: 200, body: { status: 'ok', workers: { billing: 'RUNNING' } } });
  expect(worker.output()).toContain('worker running');
  // A tenant left in `provisioning` is activated by this process's real activity.
  const owner = await ownerClient();
  const tenantId = crypto.randomUUID();
  try {
    await owner.query(
      `insert into tenants (id, name, slug, status) values ($1, 'Solo', $2, 'provisioning')`,
      [tenantId, `solo-${tenantId}`],
    );
    const { Connection, Client } = await import('@temporalio/client');
    const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS as string });
    try {
      const handle = await new Client({ connection, namespace: ISOLATED_NAMESPACE }).workflow.start(
        'tenantProvisioningWorkflow',
        {
          taskQueue: 'billing',
          workflowId: `tenant-provision:${tenantId}`,
          args: [{ tenantId, ownerUserId: tenantId }],
        },
      );
      expect(await handle.result()).toMatchObject({ status: 'active', activatedNow: true });
      // The namespace is this test's alone; the history still names the worker that ran the activity.
      const history = await handle.fetchHistory();
      const started = history.events?.find((e) => e.activityTaskStartedEventAttributes);
      expect(started?.activityTaskStartedEventAttributes?.identity).toMatch(
        new RegExp(`^${worker.child.pid}@`),
      );
    } finally {
      await connection.close();
    }
    const { rows } = await owner.query('select status from tenants where id = $1', [tenantId]);
    expect(rows[0].status).toBe('active');
  } finally {
    await owner.query('delete from tenants where id = $1', [tenantId]);
    await owner.end();
  }
  // Draining: readiness answers 503 (never 200 again) until the server closes just before exit.
  worker.child.kill('SIGTERM');
  const afterSigterm: string[] = [];
  let exited = false;
  void worker.exited.then(() => (exited = true));
  while (!exited) {
    const answer = await ready().catch(() => undefined);
    if (!answer) break;
    afterSigterm.push(`${answer.status} ${answer.body.status}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(await worker.exited).toBe(0);
  // A request racing the signal may still see 200; from the first 503 on, none does.
  const drainingFrom = afterSigterm.indexOf('503 draining');
  expect(drainingFrom).toBeGreaterThanOrEqual(0);
  expect(afterSigterm.slice(0, drainingFrom).every((a) => a === '200 ok')).toBe(true);
  expect(afterSigterm.slice(drainingFrom).every((a) => a === '503 draining')).toBe(true);
});

it('a process missing its database setting refuses to start, naming DATABASE_URL', () => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(result.status).not.toBe(0);
  expect(result.stderr).toContain('DATABASE_URL');
});
