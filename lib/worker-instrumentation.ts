/**
 * What every Temporal Worker of Parley (worker, relay, api) is instrumented with: tracing when it is
 * on (lib/tracing.ts), and tenant, call and workflow ids on every log line about Temporal work, so a line found in the logs
 * leads to the run in the Web UI and to the call in the dashboard.
 *
 * - `activityLogContext`: an activity interceptor that lifts the ids Parley's activities take as
 *   input (`tenantId`, `callId`, `campaignId`, `contactId`, `agentId`) into the activity's log
 *   attributes; the SDK adds the workflow's (`workflowId`, `runId`, `activityType`, `taskQueue`,
 *   `attempt`) to every line the activity or the SDK writes about it ("Activity failed" included).
 * - `sdkLogFields`: the SDK logger's metadata as top-level fields of the pino line (ids first,
 *   searchable), the rest kept under `sdk`.
 */
import { trace } from '@opentelemetry/api';
import type { ActivityInterceptorsFactory, WorkerOptions } from '@temporalio/worker';
import { tracingWorkerOptions } from './tracing';

/** The ids lifted from an activity's input, in the order they read best. */
export const CONTEXT_IDS = ['tenantId', 'callId', 'campaignId', 'contactId', 'agentId'] as const;
/** The SDK's own identifiers of a workflow or activity, promoted to top-level log fields. */
const SDK_IDS = [
  'namespace',
  'taskQueue',
  'workflowType',
  'workflowId',
  'runId',
  'activityType',
  'activityId',
  'attempt',
] as const;

function contextIds(input: unknown): Record<string, string> {
  if (typeof input !== 'object' || input === null) return {};
  const ids: Record<string, string> = {};
  for (const key of CONTEXT_IDS) {
    const value = (input as Record<string, unknown>)[key];
    if (typeof value === 'string' && value) ids[key] = value;
  }
  return ids;
}

export const activityLogContext: ActivityInterceptorsFactory = () => {
  let ids: Record<string, string> = {};
  return {
    inbound: {
      execute(input, next) {
        ids = contextIds(input.args[0]);
        // Inside the tracing interceptor's `RunActivity` span (it comes first): the line's trace.
        const span = trace.getActiveSpan();
        if (span?.isRecording())
          ids = { ...ids, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
        return next(input);
      },
    },
    outbound: {
      getLogAttributes(attributes, next) {
        return next({ ...ids, ...attributes });
      },
    },
  };
};

/** Splits the SDK's log metadata into top-level id fields and the rest (under `sdk`). */
export function sdkLogFields(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!meta) return {};
  const top: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key === 'error') top.err = value;
    // The tracing interceptors' names, spelled as lib/logger.ts spells them on every other line.
    else if (key === 'trace_id' || key === 'traceId') top.traceId = value;
    else if (key === 'span_id' || key === 'spanId') top.spanId = value;
    else if (key === 'trace_flags') continue;
    else if ((CONTEXT_IDS as readonly string[]).includes(key) || (SDK_IDS as readonly string[]).includes(key))
      top[key] = value;
    else rest[key] = value;
  }
  return Object.keys(rest).length ? { ...top, sdk: rest } : top;
}

/** Spread into every `Worker.create`: the log context always, tracing's interceptors and sink when on. */
export function workerInstrumentation(): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const tracing = tracingWorkerOptions();
  return {
    ...tracing,
    interceptors: {
      ...tracing.interceptors,
      // Tracing first: its span is open when the log context reads it.
      activity: [...(tracing.interceptors?.activity ?? []), activityLogContext],
    },
  };
}
