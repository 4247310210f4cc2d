/**
 * Keeps the Kubernetes manifests in deploy/ honest without a cluster: every YAML document parses,
 * the kustomization lists every file, each Deployment runs a real process with probes on paths and
 * ports that process really serves (the health handlers are started here and asked), every
 * variable is one the config schema knows and the whole set parses as a production config, HPAs,
 * PDBs, Services and the Ingress point at things that exist, and the worker groups cover every
 * task queue. Also the Dockerfile's dashboard build. No cluster, no Docker.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import pino from 'pino';
import { parseAllDocuments } from 'yaml';
import type { ApiDeps } from '../api/deps';
import { registerHealthRoutes } from '../api/routes/health';
import { CONFIG_KEYS, loadConfig } from '../config';
import { freePort } from '../lib/net';
import { createRelayServer } from '../realtime-relay/server';
import { WORKER_TASK_QUEUES } from '../temporal-config/task-queues';
import { startWorkerMetricsServer, type WorkerMetricsServer } from '../workers/metrics-server';

const ROOT = path.resolve(__dirname, '..');
const DEPLOY = path.join(ROOT, 'deploy');

// --- the manifests ------------------------------------------------------------------------------

interface Probe {
  httpGet?: { path?: string; port?: number | string };
  exec?: { command?: string[] };
  tcpSocket?: { port?: number | string };
  periodSeconds?: number;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string };
    secretKeyRef?: { name: string; key: string };
  };
}

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] } } };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  restartPolicy?: string;
  volumes?: { name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }[];
}

interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    template?: { metadata?: { labels?: Record<string, string> }; spec: PodSpec };
    scaleTargetRef?: { apiVersion: string; kind: string; name: string };
    minReplicas?: number;
    maxReplicas?: number;
    metrics?: { type: string; resource?: { name: string } }[];
    ports?: { name?: string; port: number; targetPort?: number | string }[];
    rules?: {
      host?: string;
      http: { paths: { backend: { service: { name: string; port: { name?: string; number?: number } } } }[] };
    }[];
  };
  /** Which file the document came from. */
  file: string;
}

const manifestFiles = readdirSync(DEPLOY)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

const parsed = manifestFiles.map((file) => {
  const docs = parseAllDocuments(readFileSync(path.join(DEPLOY, file), 'utf8'));
  return { file, docs: Array.isArray(docs) ? docs : [docs] };
});

const resources: Resource[] = parsed.flatMap(({ file, docs }) =>
  docs
    .map((doc) => doc.toJS() as Omit<Resource, 'file'> | null)
    .filter((r): r is Omit<Resource, 'file'> => r !== null)
    .map((r) => ({ ...r, file })),
);

const kustomization = resources.find((r) => r.kind === 'Kustomization') as unknown as
  { resources?: string[]; images?: { name: string; newName?: string }[]; file: string } | undefined;
const k8s = resources.filter((r) => r.kind !== 'Kustomization');
const ofKind = (kind: string) => k8s.filter((r) => r.kind === kind);
const deployments = ofKind('Deployment');
const configMap = ofKind('ConfigMap')[0];
const secret = ofKind('Secret')[0];

// --- what the code really runs and serves ------------------------------------------------------

const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

/** The entry file an npm script runs with tsx (`tsx api/main.ts` → `api/main.ts`). */
function entryOf(script: string): string {
  const match = /^tsx\s+(\S+\.ts)$/.exec(packageJson.scripts[script] ?? '');
  if (!match) throw new Error(`package.json script '${script}' is not 'tsx <file>'`);
  return match[1]!;
}

const PROCESSES = {
  api: entryOf('api'),
  worker: entryOf('worker'),
  relay: entryOf('relay'),
  migrate: entryOf('migrate'),
  'search-attributes': entryOf('temporal:search-attributes'),
} as const;
type ProcessName = keyof typeof PROCESSES;

function processOf(container: Container): ProcessName {
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  // The image's entry points, run by node directly so SIGTERM reaches the process that drains.
  expect(argv.slice(0, 3)).toEqual(['node', '--import', 'tsx']);
  expect(argv).toHaveLength(4);
  const found = (Object.keys(PROCESSES) as ProcessName[]).find((name) => PROCESSES[name] === argv[3]);
  if (!found) throw new Error(`${container.name} runs ${argv.join(' ')}, not a Parley entry point`);
  expect(existsSync(path.join(ROOT, argv[3]!))).toBe(true);
  return found;
}

/** Sample operator values for the Secret template (which holds none). */
const SAMPLE_SECRETS: Record<string, string> = {
  DATABASE_URL: 'postgres://parley_owner:owner-password@db.example.internal:5432/parley',
  DATABASE_APP_PASSWORD: 'sample-app-password-0123456789',
  JWT_SECRET: 'sample-jwt-secret-0123456789abcdef0123456789abcdef',
  STREAM_TOKEN_SECRET: 'sample-stream-token-secret-0123456789abcdef',
  ENCRYPTION_KEYS: `k2:${Buffer.alloc(32, 7).toString('base64')},k1:${Buffer.alloc(32, 9).toString('base64')}`,
  TEMPORAL_API_KEY: 'sample-temporal-cloud-api-key',
};

/** The environment a container sees: envFrom in order, then env (which wins), as Kubernetes does. */
function environmentOf(
  container: Container,
  podName: string,
  secrets = SAMPLE_SECRETS,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, configMapNamed(from.configMapRef.name).data);
    if (from.secretRef) {
      secretNamed(from.secretRef.name);
      Object.assign(env, secrets);
    }
  }
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    else if (entry.valueFrom?.fieldRef) {
      expect(entry.valueFrom.fieldRef.fieldPath).toBe('metadata.name');
      env[entry.name] = podName;
    } else if (entry.valueFrom?.configMapKeyRef) {
      const ref = entry.valueFrom.configMapKeyRef;
      const value = configMapNamed(ref.name).data?.[ref.key];
      expect(value).toBeDefined();
      env[entry.name] = value!;
    } else if (entry.valueFrom?.secretKeyRef) {
      const ref = entry.valueFrom.secretKeyRef;
      expect(Object.keys(secretNamed(ref.name).stringData ?? {})).toContain(ref.key);
      env[entry.name] = secrets[ref.key] ?? '';
    }
  }
  return env;
}

function configMapNamed(name: string): Resource {
  const found = ofKind('ConfigMap').find((r) => r.metadata.name === name);
  if (!found) throw new Error(`no ConfigMap '${name}' in deploy/`);
  return found;
}

function secretNamed(name: string): Resource {
  const found = ofKind('Secret').find((r) => r.metadata.name === name);
  if (!found) throw new Error(`no Secret '${name}' in deploy/`);
  return found;
}

function containerPort(container: Container, port: number | string | undefined): number {
  if (typeof port === 'number') return port;
  const named = container.ports?.find((p) => p.name === port);
  if (!named) throw new Error(`${container.name} has no port named '${String(port)}'`);
  return named.containerPort;
}

const podsOf = (deployment: Resource) => deployment.spec!.template!.spec;
const mainContainer = (deployment: Resource) => podsOf(deployment).containers[0]!;
const deploymentsRunning = (name: ProcessName) =>
  deployments.filter((d) => processOf(mainContainer(d)) === name);

/** Bound of lib/shutdown.ts (its default, or the one the process passes), in seconds. */
function shutdownBoundSeconds(entry: string): number {
  const main = readFileSync(path.join(ROOT, entry), 'utf8');
  const explicit = /onShutdown\([\s\S]*?\]\s*,\s*([\d_]+)\s*,?\s*\)/.exec(main);
  const fallback = /timeoutMs\s*=\s*([\d_]+)/.exec(readFileSync(path.join(ROOT, 'lib/shutdown.ts'), 'utf8'));
  const ms = (explicit ?? fallback)![1]!.replace(/_/g, '');
  return Number(ms) / 1000;
}

function preStopSleepSeconds(container: Container): number {
  const command = container.lifecycle?.preStop?.exec?.command;
  if (!command) return 0;
  expect(command[0]).toBe('sleep');
  return Number(command[1]);
}

/** Status of GET path on a server listening on 127.0.0.1:port. */
async function statusOf(port: number, probePath: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}${probePath}`)).status;
}

// --- tests --------------------------------------------------------------------------------------

describe('deploy/ files', () => {
  it.each(manifestFiles)('%s parses as YAML without errors or warnings', (file) => {
    const { docs } = parsed.find((p) => p.file === file)!;
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) {
      expect(doc.errors.map(String)).toEqual([]);
      expect(doc.warnings.map(String)).toEqual([]);
    }
  });

  it('is a kustomization listing every manifest, and nothing that does not exist', () => {
    expect(kustomization?.file).toBe('kustomization.yaml');
    const listed = [...(kustomization?.resources ?? [])].sort();
    expect(listed).toEqual(manifestFiles.filter((f) => f !== 'kustomization.yaml'));
  });

  it('gives every resource a kind, a name and the parley namespace', () => {
    const namespace = ofKind('Namespace');
    expect(namespace.map((n) => n.metadata.name)).toEqual(['parley']);
    for (const r of k8s) {
      expect(r.apiVersion).toEqual(expect.any(String));
      expect(r.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (r.kind !== 'Namespace')
        expect(`${r.kind}/${r.metadata.name} ${r.metadata.namespace}`).toBe(
          `${r.kind}/${r.metadata.name} parley`,
        );
    }
    const ids = k8s.map((r) => `${r.kind}/${r.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('runs no Temporal server: Temporal is reached through TEMPORAL_ADDRESS', () => {
    const images = k8s.flatMap((r) => r.spec?.template?.spec.containers.map((c) => c.image) ?? []);
    expect(images.filter((image) => /temporal/i.test(image ?? ''))).toEqual([]);
    expect(configMap?.data?.TEMPORAL_ADDRESS).toMatch(/^[^:/\s]+:\d+$/);
  });

  it('runs the one image kustomize renames, for every container', () => {
    const names = (kustomization?.images ?? []).map((i) => i.name);
    for (const r of k8s) {
      for (const c of r.spec?.template?.spec.containers ?? []) expect(names).toContain(c.image);
    }
  });
});

describe('configuration', () => {
  it('sets only variables the config schema knows (ConfigMap, Secret and each container)', () => {
    const known = CONFIG_KEYS as string[];
    const names = [
      ...Object.keys(configMap?.data ?? {}),
      ...Object.keys(secret?.stringData ?? {}),
      ...Object.keys(secret?.data ?? {}),
      ...k8s.flatMap(
        (r) => r.spec?.template?.spec.containers.flatMap((c) => (c.env ?? []).map((e) => e.name)) ?? [],
      ),
    ];
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((n) => !known.includes(n))).toEqual([]);
  });

  it('keeps secrets out of the ConfigMap and real values out of the Secret template', () => {
    const secretLike = /SECRET|PASSWORD|API_KEY|AUTH_TOKEN|ENCRYPTION_KEYS|DATABASE_(APP_)?URL/;
    expect(Object.keys(configMap?.data ?? {}).filter((k) => secretLike.test(k))).toEqual([]);
    expect(secret?.data).toBeUndefined();
    for (const [key, value] of Object.entries(secret?.stringData ?? {}))
      expect(`${key}=${value}`).toBe(`${key}=`);
    for (const key of [
      'DATABASE_URL',
      'DATABASE_APP_PASSWORD',
      'JWT_SECRET',
      'STREAM_TOKEN_SECRET',
      'ENCRYPTION_KEYS',
    ])
      expect(Object.keys(secret?.stringData ?? {})).toContain(key);
  });

  it('refuses to start on the unfilled template, naming the variables', () => {
    const empty = Object.fromEntries(Object.keys(secret?.stringData ?? {}).map((k) => [k, '']));
    const env = environmentOf(mainContainer(deploymentsRunning('api')[0]!), 'parley-api-0', empty);
    expect(() => loadConfig(env)).toThrow(/JWT_SECRET[\s\S]*STREAM_TOKEN_SECRET[\s\S]*ENCRYPTION_KEYS/);
  });

  it.each(['api', 'relay', 'worker', 'migrate', 'search-attributes'] as ProcessName[])(
    'every %s container parses as a production config once the secrets are filled in',
    (name) => {
      const pods = [...deployments, ...ofKind('Job')].filter(
        (r) => processOf(r.spec!.template!.spec.containers[0]!) === name,
      );
      expect(pods.length).toBeGreaterThan(0);
      for (const pod of pods) {
        const config = loadConfig(
          environmentOf(pod.spec!.template!.spec.containers[0]!, `${pod.metadata.name}-x1`),
        );
        expect(config.NODE_ENV).toBe('production');
        expect(config.DEMO_SEED).toBe(false);
        expect(config.TEMPORAL_ADDRESS).toBe(configMap?.data?.TEMPORAL_ADDRESS);
      }
    },
  );

  it('names each api and relay pod its own task queue (instance id = pod name)', () => {
    for (const [name, key] of [
      ['api', 'API_INSTANCE_ID'],
      ['relay', 'RELAY_INSTANCE_ID'],
    ] as const) {
      for (const d of deploymentsRunning(name)) {
        const config = loadConfig(environmentOf(mainContainer(d), 'pod-a'));
        expect(config[key]).toBe('pod-a');
      }
    }
  });
});

describe('Deployments', () => {
  it('run the api, the relay and the workers', () => {
    expect(deploymentsRunning('api')).toHaveLength(1);
    expect(deploymentsRunning('relay')).toHaveLength(1);
    expect(deploymentsRunning('worker').length).toBeGreaterThan(0);
    for (const d of deployments) {
      expect(d.spec?.selector?.matchLabels).toBeDefined();
      expect(d.spec?.template?.metadata?.labels).toMatchObject(d.spec!.selector!.matchLabels!);
    }
  });

  it('split the workers into groups that together serve every task queue exactly once', () => {
    const served = deploymentsRunning('worker').flatMap((d) => [
      ...loadConfig(environmentOf(mainContainer(d), d.metadata.name)).WORKER_TASK_QUEUES,
    ]);
    expect([...served].sort()).toEqual([...WORKER_TASK_QUEUES].sort());
  });

  describe('api', () => {
    const deployment = () => deploymentsRunning('api')[0]!;
    let port: number;
    let server: ReturnType<express.Express['listen']>;
    let postgresUp = true;

    beforeAll(async () => {
      // The real health routes, with PostgreSQL and Temporal stubbed.
      const deps = {
        orm: {
          em: {
            fork: () => ({
              execute: () => (postgresUp ? Promise.resolve([]) : Promise.reject(new Error('down'))),
            }),
          },
        },
        temporal: { connection: { workflowService: { getSystemInfo: () => Promise.resolve({}) } } },
      } as unknown as ApiDeps;
      const app = express();
      const router = express.Router();
      registerHealthRoutes(router, deps, 'test');
      app.use(router);
      server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    it("probes the api's port: API_PORT from the config", () => {
      const c = mainContainer(deployment());
      const config = loadConfig(environmentOf(c, 'p'));
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
        expect(probe?.httpGet).toBeDefined();
        expect(containerPort(c, probe!.httpGet!.port)).toBe(config.API_PORT);
      }
    });

    it('readiness is the dependency check (503 when PostgreSQL is down), liveness is not', async () => {
      const c = mainContainer(deployment());
      const ready = c.readinessProbe!.httpGet!.path!;
      const live = c.livenessProbe!.httpGet!.path!;
      postgresUp = true;
      expect(await statusOf(port, ready)).toBe(200);
      expect(await statusOf(port, live)).toBe(200);
      expect(await statusOf(port, c.startupProbe!.httpGet!.path!)).toBe(200);
      postgresUp = false;
      expect(await statusOf(port, ready)).toBe(503);
      expect(await statusOf(port, live)).toBe(200);
      postgresUp = true;
    });
  });

  describe('relay', () => {
    const deployment = () => deploymentsRunning('relay')[0]!;
    let port: number;
    let relay: ReturnType<typeof createRelayServer>;
    let drained = false;

    beforeAll(async () => {
      relay = createRelayServer({
        instanceId: 'probe-test',
        maxPayloadBytes: 65536,
        logger: pino({ level: 'silent' }),
      });
      relay.server.listen(0, '127.0.0.1');
      await new Promise((resolve) => relay.server.once('listening', resolve));
      port = (relay.server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      if (!drained) await relay.drain(0);
    });

    it("probes the relay's port: RELAY_PORT from the config", () => {
      const c = mainContainer(deployment());
      const config = loadConfig(environmentOf(c, 'p'));
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
        expect(probe?.httpGet).toBeDefined();
        expect(containerPort(c, probe!.httpGet!.port)).toBe(config.RELAY_PORT);
      }
    });

    it('readiness turns 503 once draining (the pod leaves the Service), liveness stays 200', async () => {
      const c = mainContainer(deployment());
      expect(await statusOf(port, c.readinessProbe!.httpGet!.path!)).toBe(200);
      expect(await statusOf(port, c.livenessProbe!.httpGet!.path!)).toBe(200);
      expect(await statusOf(port, c.startupProbe!.httpGet!.path!)).toBe(200);
      // A live stream keeps drain() waiting, as a call in progress does during SIGTERM.
      const call = { close: () => relay.wss.clients.delete(call as never), terminate() {}, ping() {} };
      relay.wss.clients.add(call as never);
      const draining = relay.drain(5_000);
      drained = true;
      expect(await statusOf(port, c.readinessProbe!.httpGet!.path!)).toBe(503);
      expect(await statusOf(port, c.livenessProbe!.httpGet!.path!)).toBe(200);
      call.close();
      await draining;
    });
  });

  describe('workers', () => {
    let port: number;
    let server: WorkerMetricsServer;
    // Fake Temporal Workers whose state the test sets, handed to the real health server.
    const states: Record<string, string> = {};
    const fakeWorker = (taskQueue: string) => ({ getState: () => states[taskQueue]! });

    beforeAll(async () => {
      port = await freePort();
      // With a token, as in production: /metrics needs it, the probes carry none.
      server = (await startWorkerMetricsServer({
        port,
        host: '127.0.0.1',
        token: 'probe-test-metrics-token-0123456789',
        logger: pino({ level: 'silent' }),
      }))!;
      expect(server).toBeDefined();
    });
    afterAll(() => server?.close());

    it("probes the worker's health server: WORKER_METRICS_PORT from the config", () => {
      for (const d of deploymentsRunning('worker')) {
        const c = mainContainer(d);
        const config = loadConfig(environmentOf(c, d.metadata.name));
        expect(config.WORKER_METRICS_PORT).toBeGreaterThan(0);
        // Its ports are the metrics ports (its own, which serves health too, and the SDK's).
        expect((c.ports ?? []).map((p) => p.containerPort).sort()).toEqual(
          [config.WORKER_METRICS_PORT, config.TEMPORAL_METRICS_PORT].filter((p) => p > 0).sort(),
        );
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
          expect(probe?.httpGet).toBeDefined();
          expect(probe?.exec).toBeUndefined();
          expect(containerPort(c, probe!.httpGet!.port)).toBe(config.WORKER_METRICS_PORT);
        }
      }
    });

    it('readiness is 200 only while every Temporal Worker is RUNNING; liveness stays 200', async () => {
      let first = true;
      for (const d of deploymentsRunning('worker')) {
        const c = mainContainer(d);
        const ready = c.readinessProbe!.httpGet!.path!;
        const live = [c.livenessProbe!.httpGet!.path!, c.startupProbe!.httpGet!.path!];
        const queues = [...loadConfig(environmentOf(c, d.metadata.name)).WORKER_TASK_QUEUES];
        const expectLive = async () => {
          for (const p of live) expect(`${p} ${await statusOf(port, p)}`).toBe(`${p} 200`);
        };
        const readiness = async () => {
          const res = await fetch(`http://127.0.0.1:${port}${ready}`);
          return { status: res.status, body: (await res.json()) as Record<string, unknown> };
        };

        if (first) {
          // Starting: the server listens before the workers exist (setWorkers not called yet).
          expect(await readiness()).toEqual({ status: 503, body: { status: 'starting', workers: {} } });
          await expectLive();
          first = false;
        }

        for (const q of queues) states[q] = 'INITIALIZED';
        server.setWorkers(Object.fromEntries(queues.map((q) => [q, fakeWorker(q)])));
        expect((await readiness()).status).toBe(503);

        for (const q of queues) states[q] = 'RUNNING';
        expect(await readiness()).toEqual({
          status: 200,
          body: { status: 'ok', workers: Object.fromEntries(queues.map((q) => [q, 'RUNNING'])) },
        });
        await expectLive();

        // One worker of the pod drains (SIGTERM), stops or fails: the body names it.
        for (const [state, status] of [
          ['STOPPING', 'draining'],
          ['DRAINING', 'draining'],
          ['STOPPED', 'draining'],
          ['FAILED', 'failed'],
        ]) {
          states[queues[0]!] = state!;
          const { status: code, body } = await readiness();
          expect(code).toBe(503);
          expect(body).toMatchObject({ status, workers: { [queues[0]!]: state } });
          await expectLive();
        }
      }
    });

    it('health needs no token, /metrics does', async () => {
      expect(await statusOf(port, '/health/live')).toBe(200);
      expect(await statusOf(port, '/metrics')).toBe(401);
    });
  });

  it('give every process the time its graceful shutdown takes before SIGKILL', () => {
    for (const d of deployments) {
      const c = mainContainer(d);
      // preStop sleep, then SIGTERM and the process's shutdown bound, plus a margin.
      const needed = preStopSleepSeconds(c) + shutdownBoundSeconds(PROCESSES[processOf(c)]) + 5;
      const grace = podsOf(d).terminationGracePeriodSeconds ?? 30;
      expect({ deployment: d.metadata.name, enough: grace >= needed }).toEqual({
        deployment: d.metadata.name,
        enough: true,
      });
    }
    // The relay lets calls end for 20 s inside a 30 s bound.
    expect(shutdownBoundSeconds(PROCESSES.relay)).toBe(30);
  });

  it('mount only volumes they declare, and the recordings claim exists', () => {
    const claims = ofKind('PersistentVolumeClaim').map((c) => c.metadata.name);
    for (const d of deployments) {
      const pod = podsOf(d);
      const volumes = (pod.volumes ?? []).map((v) => v.name);
      for (const mount of mainContainer(d).volumeMounts ?? []) expect(volumes).toContain(mount.name);
      for (const v of pod.volumes ?? [])
        if (v.persistentVolumeClaim) expect(claims).toContain(v.persistentVolumeClaim.claimName);
    }
    // The relay writes recordings and the api serves them: both mount the shared volume there.
    for (const name of ['api', 'relay'] as const) {
      const c = mainContainer(deploymentsRunning(name)[0]!);
      const dir = loadConfig(environmentOf(c, 'p')).RECORDINGS_DIR;
      expect(c.volumeMounts?.map((m) => m.mountPath)).toContain(dir);
    }
  });
});

describe('scaling and disruption', () => {
  const deploymentNames = () => deployments.map((d) => d.metadata.name);

  it('HPAs target Deployments that exist', () => {
    const hpas = ofKind('HorizontalPodAutoscaler');
    expect(hpas.length).toBeGreaterThan(0);
    for (const hpa of hpas) {
      expect(hpa.apiVersion).toBe('autoscaling/v2');
      expect(hpa.spec?.scaleTargetRef).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment' });
      expect(deploymentNames()).toContain(hpa.spec!.scaleTargetRef!.name);
      expect(hpa.spec!.minReplicas!).toBeLessThanOrEqual(hpa.spec!.maxReplicas!);
    }
  });

  it('scale the relay and every worker group on CPU', () => {
    const hpas = ofKind('HorizontalPodAutoscaler');
    for (const d of [...deploymentsRunning('relay'), ...deploymentsRunning('worker')]) {
      const hpa = hpas.find((h) => h.spec?.scaleTargetRef?.name === d.metadata.name);
      expect(hpa?.spec?.metrics?.map((m) => m.resource?.name)).toContain('cpu');
    }
  });

  it('give every Deployment a PodDisruptionBudget selecting its pods', () => {
    const pdbs = ofKind('PodDisruptionBudget');
    for (const d of deployments) {
      const labels = d.spec!.template!.metadata!.labels!;
      const matching = pdbs.filter((p) =>
        Object.entries(p.spec?.selector?.matchLabels ?? { none: 'none' }).every(([k, v]) => labels[k] === v),
      );
      expect(`${d.metadata.name}: ${matching.length}`).toBe(`${d.metadata.name}: 1`);
    }
  });
});

describe('Services and Ingress', () => {
  it('Services select Deployments and target ports their containers declare', () => {
    const services = ofKind('Service');
    expect(services.length).toBeGreaterThanOrEqual(2);
    for (const svc of services) {
      const selector = svc.spec!.selector as Record<string, string>;
      const target = deployments.find((d) =>
        Object.entries(selector).every(([k, v]) => d.spec?.template?.metadata?.labels?.[k] === v),
      );
      expect(target).toBeDefined();
      for (const port of svc.spec?.ports ?? [])
        containerPort(mainContainer(target!), port.targetPort ?? port.port);
    }
  });

  it('routes the public hosts to the api and relay Services, with a long idle timeout for calls', () => {
    const [ingress] = ofKind('Ingress');
    expect(ingress).toBeDefined();
    const backends = ingress!.spec!.rules!.flatMap((r) => r.http.paths.map((p) => p.backend.service));
    const services = ofKind('Service');
    for (const backend of backends) {
      const svc = services.find((s) => s.metadata.name === backend.name);
      expect(svc).toBeDefined();
      expect(svc!.spec!.ports!.map((p) => p.name)).toContain(backend.port.name);
    }
    const api = services.find(
      (s) => s.spec?.selector?.['app.kubernetes.io/name'] === deploymentsRunning('api')[0]!.metadata.name,
    );
    const relay = services.find(
      (s) => s.spec?.selector?.['app.kubernetes.io/name'] === deploymentsRunning('relay')[0]!.metadata.name,
    );
    expect(backends.map((b) => b.name)).toEqual(
      expect.arrayContaining([api!.metadata.name, relay!.metadata.name]),
    );
    // The hosts are the ones Parley hands out (PUBLIC_BASE_URL, RELAY_PUBLIC_URL).
    const hosts = ingress!.spec!.rules!.map((r) => r.host);
    expect(hosts).toContain(new URL(configMap!.data!.PUBLIC_BASE_URL!).host);
    expect(hosts).toContain(new URL(configMap!.data!.RELAY_PUBLIC_URL!).host);
    const annotations = (ingress!.metadata as { annotations?: Record<string, string> }).annotations ?? {};
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(
      3600,
    );
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(
      3600,
    );
  });
});

describe('Jobs', () => {
  it.each([
    ['migrate', 'migrate'],
    ['search-attributes', 'temporal:search-attributes'],
  ] as const)('%s runs `npm run %s` as a one-shot Job', (name, script) => {
    expect(PROCESSES[name]).toBe(entryOf(script));
    const jobs = ofKind('Job').filter((j) => processOf(j.spec!.template!.spec.containers[0]!) === name);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.spec!.template!.spec.restartPolicy).toBe('Never');
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\r?\n/g, ' ');
  const runtime = text.slice(text.search(/^FROM\s+\S+\s+AS\s+runtime/im));

  it('builds the dashboard the api serves into the image', () => {
    expect(packageJson.scripts['build:dashboard']).toEqual(expect.any(String));
    expect(text).toMatch(/^RUN .*npm run build:dashboard/m);
    expect(runtime).toMatch(/^COPY --from=build .*\/app\/dashboard\/dist \.\/dashboard\/dist$/m);
  });

  it('keeps dev and test dependencies (Vite, Playwright, jest) out of the runtime stage', () => {
    expect(text).toMatch(/npm prune --omit=dev/);
    // The runtime takes node_modules only from the pruned build stage, never the full deps stage.
    const copies = runtime.split('\n').filter((l) => /^COPY --from=/.test(l));
    for (const line of copies) expect(line).toMatch(/^COPY --from=build /);
    expect(runtime).not.toMatch(/playwright|chromium/i);
  });
});
