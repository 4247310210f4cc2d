/**
 * Builds one Temporal worker per task queue this process serves, sharing one workflow bundle and
 * one set of activities (built from their clients here, never inside the activities).
 */
import { bundleWorkflowCode, type NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { TASK_QUEUES } from '../temporal-config/task-queues';
import { activeTracing, WORKFLOW_TRACING_INTERCEPTORS } from '../lib/tracing';
import { workerInstrumentation } from '../lib/worker-instrumentation';
import type { Logger } from '../lib/logger';
import { CampaignDialers } from './campaign-dialers';

/** Resolves to the .ts source under tsx/jest and to the compiled .js in a built image. */
export const WORKFLOWS_PATH = require.resolve('../workflows');

const cachedBundles = new Map<boolean, Promise<WorkflowBundle>>();

/**
 * The workflow bundle is built once per process (webpack takes seconds). With `traced`, it also
 * holds the OpenTelemetry workflow interceptors (lib/tracing.ts); they add no commands, so traced
 * and untraced workers replay each other's histories.
 */
export function workflowBundle(traced = false): Promise<WorkflowBundle> {
  let bundle = cachedBundles.get(traced);
  if (!bundle) {
    bundle = bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      workflowInterceptorModules: traced ? [WORKFLOW_TRACING_INTERCEPTORS] : [],
      logger: quietBundlerLogger,
    });
    cachedBundles.set(traced, bundle);
  }
  return bundle;
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`[bundler] ${message}\n`),
  error: (message: string) => process.stderr.write(`[bundler] ${message}\n`),
};

export interface CreateWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueues: readonly string[];
  activityDeps: ActivityDeps;
  logger: Logger;
  /**
   * After shutdown() (SIGTERM), how long running activities may finish before they are cancelled.
   * The SDK's default is 0: every activity in flight is cancelled at once and retried elsewhere.
   */
  shutdownGraceMs?: number;
}

/** What a process runs until shutdown: a Temporal worker, or the set of campaign dialer workers. */
export interface ProcessWorker {
  run(): Promise<void>;
  shutdown(): void;
  getState(): string;
}

/**
 * One worker per queue; serving `dialer` also serves every running campaign's rate-limited
 * `dialer.<campaignId>` queue (workers/campaign-dialers.ts).
 */
export async function createWorkers(options: CreateWorkersOptions): Promise<ProcessWorker[]> {
  const instrumentation = workerInstrumentation();
  const bundle = await workflowBundle(activeTracing() !== null);
  const activities = createActivities(options.activityDeps);
  const workers: ProcessWorker[] = await Promise.all(
    options.taskQueues.map((taskQueue) =>
      Worker.create({
        connection: options.connection,
        namespace: options.namespace,
        taskQueue,
        workflowBundle: bundle,
        activities,
        shutdownGraceTime: options.shutdownGraceMs ?? 0,
        ...instrumentation,
      }),
    ),
  );
  if (options.taskQueues.includes(TASK_QUEUES.dialer)) {
    workers.push(
      new CampaignDialers({
        connection: options.connection,
        namespace: options.namespace,
        orm: options.activityDeps.orm,
        activities: { placeOutboundCall: (input) => activities.placeOutboundCall(input) },
        logger: options.logger,
      }),
    );
  }
  return workers;
}
