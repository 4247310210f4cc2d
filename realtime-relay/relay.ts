/**
 * The relay, assembled: the network edge (health, Twilio Media Streams at /twilio/stream, browser
 * test calls at /web/stream) and an activity worker on relay.<instanceId> that runs `speak`,
 * `holdMedia` and `releaseMedia` for the calls this process holds. `main.ts` runs it as a process;
 * tests run it in-process against the same Temporal server.
 */
import { workerInstrumentation } from '../lib/worker-instrumentation';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type OpenAI from 'openai';
import type { LlmClients } from '../activities/llm';
import type { Config } from '../config';
import type { Logger } from '../lib/logger';
import { UsedTokenRegistry } from '../lib/stream-token';
import { relayTaskQueue } from '../temporal-config/task-queues';
import { createRelayActivities } from './activities';
import type { SpeechProviders } from './call-session';
import { createRelayServer } from './server';
import { SessionRegistry } from './sessions';
import { createSpeechProviders } from './speech';
import { CLOSE_CODES, twilioStreamRoute, type StreamRouteDeps } from './twilio-media-stream';
import { webStreamRoute } from './web-stream';

export interface RelayOptions {
  config: Config;
  logger: Logger;
  instanceId: string;
  temporal: Client;
  workerConnection: NativeConnection;
  llmClients: LlmClients;
  /** Cloud speech, when an OpenAI key is configured. */
  openai?: OpenAI;
  /** Tests and benchmarks swap the engines. */
  speech?: SpeechProviders;
  heartbeatMs?: number;
  startTimeoutMs?: number;
}

export async function createRelay(options: RelayOptions) {
  const { config, logger, instanceId } = options;
  const sessions = new SessionRegistry(instanceId);
  const routeDeps: StreamRouteDeps = {
    instanceId,
    temporal: options.temporal,
    speech:
      options.speech ??
      createSpeechProviders({ pocketsphinxModelDir: config.POCKETSPHINX_MODEL_DIR, openai: options.openai }),
    llmClients: options.llmClients,
    recordingsDir: config.RECORDINGS_DIR,
    logger,
    sessions,
    tokenSecret: config.STREAM_TOKEN_SECRET,
    usedTokens: new UsedTokenRegistry(),
    startTimeoutMs: options.startTimeoutMs,
  };
  // How late this process gets to its work: a frame waits at least this long to be handled.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const stats = (reset: boolean) => {
    const live = sessions.live();
    // Bounded work whatever the number of calls: the latest samples, at most ~20k in all.
    const perSession = Math.max(10, Math.ceil(20_000 / Math.max(1, live.length)));
    const costs = live.flatMap((s) => s.frameCostMs.slice(-perSession)).sort((a, b) => a - b);
    const pick = (q: number) =>
      costs.length ? costs[Math.min(costs.length - 1, Math.floor(q * costs.length))] : null;
    const figures = {
      instanceId,
      streams: live.length,
      framesIn: live.reduce((n, s) => n + s.stats.framesIn, 0),
      malformed: live.reduce((n, s) => n + s.stats.malformed, 0),
      /** Node's histogram as reported: each value includes the 10 ms sampling interval. */
      eventLoopDelayMs: {
        p50: loopDelay.percentile(50) / 1e6,
        p99: loopDelay.percentile(99) / 1e6,
        max: loopDelay.max / 1e6,
      },
      frameProcessingMs: { p50: pick(0.5), p99: pick(0.99) },
      memoryRssBytes: process.memoryUsage().rss,
      cpuUsageMicros: process.cpuUsage(),
    };
    if (reset) {
      loopDelay.reset();
      for (const s of live) s.frameCostMs.length = 0;
    }
    return figures;
  };
  const edge = createRelayServer({
    stats,
    metricsToken: config.METRICS_TOKEN,
    instanceId,
    maxPayloadBytes: config.RELAY_MAX_PAYLOAD_BYTES,
    heartbeatMs: options.heartbeatMs,
    logger,
    routes: { '/twilio/stream': twilioStreamRoute(routeDeps), '/web/stream': webStreamRoute(routeDeps) },
  });
  const taskQueue = relayTaskQueue(instanceId);
  const worker = await Worker.create({
    connection: options.workerConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    activities: createRelayActivities(sessions),
    // Every live call holds one activity (holdMedia) and sometimes a second (speak).
    maxConcurrentActivityTaskExecutions: 2_000,
    maxCachedWorkflows: 0,
    ...workerInstrumentation(),
  });
  let running: Promise<void> | undefined;

  return {
    instanceId,
    taskQueue,
    sessions,
    server: edge.server,
    listen(port: number, host: string): Promise<number> {
      running ??= worker.run();
      return new Promise((resolve, reject) => {
        edge.server.once('error', reject);
        edge.server.listen(port, host, () => {
          const address = edge.server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    /** Stops taking streams, lets live calls finish (bounded), then stops the worker. */
    async stop(boundMs: number): Promise<void> {
      // Calls still live at the bound end as cut by the shutdown (holdMedia fails them), before
      // their sockets close: a close seen first would pass for the caller hanging up.
      await edge.drain(boundMs, () => {
        for (const session of sessions.live()) session.end('relay_shutdown');
      });
      for (const session of sessions.live()) {
        session.transport.close(CLOSE_CODES.goingAway, 'relay shutting down');
        session.end('relay_shutdown');
      }
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      loopDelay.disable();
    },
  };
}

export type Relay = Awaited<ReturnType<typeof createRelay>>;
