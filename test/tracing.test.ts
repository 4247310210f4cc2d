/**
 * OpenTelemetry traces across processes: with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a collector
 * peer (OTLP/HTTP), the api and worker processes (`npm run api`, `npm run worker`, configured only
 * through their environment) export spans that form one trace per request: the api's server span →
 * the Temporal client's start/update span → the workflow run or update handler (exported by the
 * worker) → each activity the workflow schedules, run in the worker or in the api's own `speak`
 * worker.
 */
import { Client, Connection } from '@temporalio/client';
import { callWorkflowId } from '../contracts/call';
import { DEMO_BOOKING_AGENT } from '../db/seed/demo-agents';
import { freePort, waitUntil } from '../lib/net';
import { namespaceForJestWorker } from './harness/state';
import { startOtlpCollector, type CollectedSpan, type OtlpCollector } from './peers/otlp-collector';
import { startParleyProcess, type ParleyProcess } from './support/process';
import { uniqueEmail } from './support/stack';

jest.setTimeout(120_000);

const NAMESPACE = namespaceForJestWorker();
const SERVER = 2;

type Proc = ParleyProcess;
const procs: Proc[] = [];

function startProcess(script: string, env: Record<string, string>): Proc {
  const proc = startParleyProcess(script, {
    TEMPORAL_NAMESPACE: NAMESPACE,
    WORKER_METRICS_PORT: '0',
    TEMPORAL_METRICS_PORT: '0',
    ...env,
  });
  procs.push(proc);
  return proc;
}

async function startApi(env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const api = startProcess('api/main.ts', { API_PORT: String(port), API_HOST: '127.0.0.1', ...env });
  const base = `http://127.0.0.1:${port}`;
  await waitUntil(
    'the api to be ready',
    async () => {
      if ((await Promise.race([api.exited, Promise.resolve('running')])) !== 'running') {
        throw new Error(`api exited:\n${api.output()}`);
      }
      return (await fetch(`${base}/health/ready`).catch(() => undefined))?.ok ?? false;
    },
    60_000,
  );
  return base;
}

async function startWorker(env: Record<string, string>): Promise<Proc> {
  const worker = startProcess('workers/main.ts', {
    WORKER_TASK_QUEUES: 'calls,integrations,billing',
    ...env,
  });
  await waitUntil(
    'the worker to poll',
    () => {
      if (worker.output().includes('failed to start')) throw new Error(worker.output());
      return Promise.resolve(worker.output().includes('worker running'));
    },
    60_000,
  );
  return worker;
}

async function call(base: string, method: string, url: string, body?: unknown, token?: string) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body: json };
}

/** The chain from `span` up to its trace's root, root first. */
function ancestry(spans: CollectedSpan[], span: CollectedSpan): CollectedSpan[] {
  const byId = new Map(spans.filter((s) => s.traceId === span.traceId).map((s) => [s.spanId, s]));
  const chain = [span];
  for (let at = span; at.parentSpanId;) {
    const parent = byId.get(at.parentSpanId);
    if (!parent) break;
    chain.unshift(parent);
    at = parent;
  }
  return chain;
}

const describeChain = (chain: CollectedSpan[]) => chain.map((s) => `${s.service}:${s.name}`);

let collector: OtlpCollector;

beforeAll(async () => {
  collector = await startOtlpCollector();
});

afterAll(async () => {
  for (const proc of procs.reverse()) await proc.stop();
  await collector?.close();
});

describe('with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  let base: string;
  let token: string;
  let tenantId: string;

  let worker: Proc;

  beforeAll(async () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint };
    worker = await startWorker(env);
    base = await startApi(env);
  });

  it('a sign-up is one trace: the api request → StartWorkflow → RunWorkflow in the worker → its activities', async () => {
    const signup = await call(base, 'POST', '/v1/auth/signup', {
      tenantName: 'Traced Co',
      name: 'Owner',
      email: uniqueEmail('traced'),
      password: 'correct horse battery',
    });
    expect(signup.status).toBe(201);
    token = signup.body.token as string;
    tenantId = (signup.body.tenant as { id: string }).id;

    const run = await collector.waitFor('the activation activity span of the provisioning run', (spans) =>
      spans.find(
        (s) =>
          s.name === 'RunActivity:activateTenant' && ancestry(spans, s)[0]?.name === 'POST /v1/auth/signup',
      ),
    );
    const chain = ancestry(collector.spans(), run);
    expect(describeChain(chain)).toEqual([
      'parley-api:POST /v1/auth/signup',
      'parley-api:StartWorkflow:tenantProvisioningWorkflow',
      'parley-worker:RunWorkflow:tenantProvisioningWorkflow',
      'parley-worker:StartActivity:activateTenant',
      'parley-worker:RunActivity:activateTenant',
    ]);
    const [request, start, workflow, , activity] = chain;
    expect(request).toMatchObject({
      kind: SERVER,
      attributes: { 'http.route': '/v1/auth/signup', 'http.response.status_code': 201 },
    });
    expect(start!.attributes).toMatchObject({ temporalWorkflowId: `tenant-provision:${tenantId}` });
    // The workflow's identifiers, and nothing else of its info (memo, search attributes, results).
    expect(workflow!.attributes).toEqual({
      workflowId: `tenant-provision:${tenantId}`,
      runId: expect.any(String),
      workflowType: 'tenantProvisioningWorkflow',
      taskQueue: 'billing',
      namespace: NAMESPACE,
      attempt: 1,
    });
    // One trace id throughout, and each span inside its parent's time (the clocks are one machine's).
    expect(new Set(chain.map((s) => s.traceId)).size).toBe(1);
    expect(activity!.startNs).toBeGreaterThanOrEqual(request!.startNs);
    expect(request!.endNs).toBeGreaterThanOrEqual(start!.endNs);
  });

  it('a caller turn is one trace: the api request → the userTurn update → its handler in the workflow → activities in the worker and in the api', async () => {
    const agent = await call(
      base,
      'POST',
      '/v1/agents',
      { name: 'Booking', definition: DEMO_BOOKING_AGENT },
      token,
    );
    expect(agent.status).toBe(201);
    const conversation = await call(
      base,
      'POST',
      '/v1/conversations',
      { agentId: agent.body.id, version: 'draft' },
      token,
    );
    expect(conversation.status).toBe(201);
    const callId = conversation.body.callId as string;
    const turnTrace = (route: string) =>
      collector.waitFor(`the activity spans of ${route}`, (spans) => {
        const root = spans.find(
          (s) => s.attributes['http.route'] === route && String(s.attributes['url.path']).includes(callId),
        );
        if (!root) return undefined;
        const inTrace = spans.filter((s) => s.traceId === root.traceId);
        const ran = inTrace.filter((s) => s.name.startsWith('RunActivity:'));
        const handled = inTrace.some((s) => s.name === 'HandleUpdate:userTurn');
        return handled && ran.some((s) => s.name === 'RunActivity:recordTurns')
          ? { root, inTrace, ran }
          : undefined;
      });
    const expectTurnTrace = (
      { root, inTrace, ran }: Awaited<ReturnType<typeof turnTrace>>,
      route: string,
      speakService: string,
    ) => {
      expect(root).toMatchObject({
        service: 'parley-api',
        kind: SERVER,
        name: `POST ${route}`,
        attributes: { 'http.response.status_code': 200, 'parley.tenant.id': tenantId },
      });
      // Every activity of the turn hangs under the update handler, wherever it ran.
      for (const span of ran) {
        const chain = describeChain(ancestry(inTrace, span));
        expect(chain.slice(0, 3)).toEqual([
          `parley-api:POST ${route}`,
          'parley-api:StartWorkflowUpdate:userTurn',
          'parley-worker:HandleUpdate:userTurn',
        ]);
        expect(chain.at(-2)).toBe(`parley-worker:${span.name.replace('RunActivity', 'StartActivity')}`);
      }
      expect(ran.map((s) => `${s.service}:${s.name}`)).toEqual(
        expect.arrayContaining([
          `${speakService}:RunActivity:speak`,
          'parley-worker:RunActivity:recordTurns',
        ]),
      );
    };

    // A plain turn: the reply is spoken by the worker.
    const turn = await call(
      base,
      'POST',
      `/v1/conversations/${callId}/messages`,
      { text: 'Ada Lovelace' },
      token,
    );
    expect(turn.status).toBe(200);
    const messages = '/v1/conversations/:callId/messages';
    expectTurnTrace(await turnTrace(messages), messages, 'parley-worker');

    // A streamed turn: `speak` runs in the api process that holds the caller's response open.
    const streamed = await fetch(`${base}/v1/conversations/${callId}/messages/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ text: 'tomorrow at 3pm' }),
    });
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toContain('Just to confirm');
    const stream = '/v1/conversations/:callId/messages/stream';
    expectTurnTrace(await turnTrace(stream), stream, 'parley-api');
    expect(collector.requests.refused).toBe(0);
  });

  it("a worker's log line about an activity names the tenant, the agent, the workflow and the trace", async () => {
    // A call whose agent does not exist: its first activity fails (non-retryable) and the SDK logs it.
    const callId = crypto.randomUUID();
    const agentId = crypto.randomUUID();
    const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! });
    try {
      const handle = await new Client({ connection, namespace: NAMESPACE }).workflow.start('callWorkflow', {
        taskQueue: 'calls',
        workflowId: callWorkflowId(callId),
        args: [{ callId, tenantId, agentId, agentVersionId: null, direction: 'inbound', channel: 'text' }],
      });
      await handle.result().catch(() => undefined);
    } finally {
      await connection.close();
    }
    const line = await waitUntil(
      'the worker to log the failed activity',
      () =>
        Promise.resolve(
          worker
            .output()
            .split('\n')
            .some((l) => l.includes('"Activity failed"') && l.includes(agentId)),
        ),
      30_000,
    ).then(() =>
      worker
        .output()
        .split('\n')
        .map((l) => JSON.parse(l.startsWith('{') ? l : '{}') as Record<string, unknown>)
        .find((l) => l.msg === 'Activity failed' && l.agentId === agentId),
    );
    // Top-level fields, as a log search filters on them.
    expect(line).toMatchObject({
      level: 40,
      service: 'worker',
      tenantId,
      agentId,
      workflowId: callWorkflowId(callId),
      workflowType: 'callWorkflow',
      activityType: 'loadAgentDefinition',
      taskQueue: 'calls',
      attempt: 1,
      err: expect.objectContaining({ message: `Agent ${agentId} does not exist` }),
    });
    // With tracing on, the line also carries its trace, which is the workflow's.
    expect(line!.traceId).toMatch(/^[0-9a-f]{32}$/);
    await collector.waitFor('the failed activity’s span in the same trace', (spans) =>
      spans.find((s) => s.traceId === line!.traceId && s.name === 'RunActivity:loadAgentDefinition'),
    );
  });
});
