/**
 * OpenTelemetry traces, on when OTEL_EXPORTER_OTLP_ENDPOINT is set: one trace follows a piece of work
 * from the api request that caused it through the Temporal client (`StartWorkflow:callWorkflow`,
 * `StartWorkflowUpdate:userTurn`, …), into the workflow (`RunWorkflow:…`, exported from the
 * worker through the interceptors' sink) and out to every activity it schedules
 * (`StartActivity:…` → `RunActivity:…` in whichever process runs it: worker, relay, api).
 *
 * The wiring is Temporal's own `@temporalio/interceptors-opentelemetry`: its client interceptor
 * puts the span context into the workflow's headers, its workflow interceptors (bundled into the
 * workflow code only when tracing is on) carry it to activities, and its activity interceptor
 * continues it in the process that runs them. Spans leave by OTLP/HTTP (JSON) in batches.
 *
 * Process-wide, as OpenTelemetry itself is: a process calls `startTracing` once at start (before
 * it connects to Temporal), and the Temporal client, the workers and the api pick it up from here.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetryWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { ClientInterceptors } from '@temporalio/client';
import type { InjectedSink, WorkerOptions } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../config';

/**
 * Bundled into the workflow code when tracing is on (workers/create-workers.ts): the interceptors'
 * workflow side, with ids that leave the workflow's random sequence alone.
 */
export const WORKFLOW_TRACING_INTERCEPTORS = require.resolve('../workflows/tracing-interceptors');

export interface Tracing {
  readonly serviceName: string;
  readonly endpoint: string;
  readonly resource: Resource;
  readonly spanProcessor: SpanProcessor;
  /** Sends what is buffered now (tests, and before exit). */
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

let active: Tracing | null = null;

/** The process's tracing, or null when OTEL_EXPORTER_OTLP_ENDPOINT is unset. */
export function activeTracing(): Tracing | null {
  return active;
}

/**
 * Starts tracing for this process when OTEL_EXPORTER_OTLP_ENDPOINT is set; null otherwise. Idempotent
 * (a second call returns the first one's tracing).
 */
export function startTracing(
  config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_SERVICE_NAME'>,
  processName: 'api' | 'worker' | 'relay' | (string & {}),
): Tracing | null {
  if (active) return active;
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return null;
  const serviceName = config.OTEL_SERVICE_NAME ?? `parley-${processName}`;
  const resource = new Resource({
    'service.name': serviceName,
    'service.namespace': 'parley',
    'service.instance.id': `${process.pid}`,
  });
  const exporter = new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` });
  const spanProcessor = new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // Global tracer provider, AsyncLocalStorage context and the W3C `traceparent` propagator.
  provider.register();
  active = {
    serviceName,
    endpoint,
    resource,
    spanProcessor,
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
      active = null;
    },
  };
  return active;
}

/** The Temporal client's interceptors: the span of a start, update or signal goes in its headers. */
export function tracingClientInterceptors(): ClientInterceptors | undefined {
  return active ? { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } : undefined;
}

/**
 * What a Worker needs for tracing: activity interceptors (a `RunActivity` span under the workflow's
 * `StartActivity`, trace ids on the activity's log lines) and the sink that exports workflow spans.
 * Empty when tracing is off. Workers that run workflows need the traced bundle too.
 */
export function tracingWorkerOptions(): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const tracing = active;
  if (!tracing) return {};
  const { export: workflowExport } = makeWorkflowExporter(tracing.spanProcessor, tracing.resource);
  const exportSpans = workflowExport.fn.bind(workflowExport);
  const exporter: InjectedSink<OpenTelemetryWorkflowExporter> = {
    export: { ...workflowExport, fn: (info, spans) => exportSpans(spanInfo(info), spans) },
  };
  return {
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter },
  };
}

/**
 * The interceptors' sink copies the workflow's whole info onto each of its spans; keep the
 * identifiers only, never its memo, search attributes (a caller's phone number) or last result.
 */
function spanInfo(info: WorkflowInfo): WorkflowInfo {
  const { workflowId, runId, workflowType, taskQueue, namespace, attempt } = info;
  return { workflowId, runId, workflowType, taskQueue, namespace, attempt } as WorkflowInfo;
}

/**
 * Express middleware: one server span per request, continuing a caller's `traceparent`, named by
 * its route pattern once routed (`POST /v1/agents/:id/test-calls`), so everything the request
 * starts in Temporal hangs under it. A no-op tracer when tracing is off.
 */
export function traceRequests(routeOf: (req: Request) => string) {
  const tracer = trace.getTracer('parley-api');
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!active) return next();
    const parent = propagation.extract(context.active(), req.headers);
    const span: Span = tracer.startSpan(
      req.method,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': req.method, 'url.path': req.path },
      },
      parent,
    );
    let ended = false;
    const end = (aborted: boolean) => {
      if (ended) return;
      ended = true;
      const route = routeOf(req);
      span.updateName(`${req.method} ${route}`);
      span.setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (aborted) span.setStatus({ code: SpanStatusCode.ERROR, message: 'client went away' });
      else if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', () => end(false));
    res.once('close', () => end(!res.writableFinished));
    context.with(trace.setSpan(parent, span), next);
  };
}

/** Marks the request's span with its tenant (called once the request is authenticated). */
export function tagRequestSpan(attributes: Record<string, string>): void {
  const span = trace.getActiveSpan();
  if (span?.isRecording()) span.setAttributes(attributes);
}
