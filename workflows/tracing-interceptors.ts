/**
 * OpenTelemetry's workflow interceptors (`@temporalio/interceptors-opentelemetry`), bundled into the
 * workflow code only when tracing is on (lib/tracing.ts, workers/create-workers.ts).
 *
 * Their own tracer makes span and trace ids with `Math.random`, which inside a workflow is the
 * run's seeded generator — the one `uuid4()` draws from. Every span would then move the campaign
 * workflow's call ids (`uuid4()`), so a run recorded with tracing off would not replay with it on
 * (and the reverse): its child workflow ids would differ. These interceptors use a tracer whose ids
 * come from the run id and a counter instead, leaving the workflow's random sequence untouched.
 */
// First: it gives the workflow sandbox the globals OpenTelemetry's modules read as they load
// (`performance`, `window`), before sdk-trace-base below is evaluated.
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/span-exporter';
import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** Ids made so far, per run. */
const counters = new Map<string, number>();

/** FNV-1a, 64 bits. */
function fnv1a64(text: string): bigint {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash;
}

/** `length` hex digits from the run id and this run's next counter value: unique, never all zero. */
function nextId(length: number): string {
  const { runId } = workflowInfo();
  const n = (counters.get(runId) ?? 0) + 1;
  counters.set(runId, n);
  let hex = '';
  for (let part = 0; hex.length < length; part += 1) {
    hex += fnv1a64(`${runId}:${n}:${part}`).toString(16).padStart(16, '0');
  }
  hex = hex.slice(0, length);
  return /^0+$/.test(hex) ? `${hex.slice(0, -1)}1` : hex;
}

const runIdGenerator: IdGenerator = {
  generateTraceId: () => nextId(32),
  generateSpanId: () => nextId(16),
};

let tracer: ReturnType<BasicTracerProvider['getTracer']> | undefined;

/** Spans leave through the interceptors' own sink exporter, as theirs do; the context is theirs too. */
function runIdTracer() {
  tracer ??= new BasicTracerProvider({
    idGenerator: runIdGenerator,
    spanProcessors: [new SimpleSpanProcessor(new SpanExporter())],
  }).getTracer('@temporalio/interceptor-workflow');
  return tracer;
}

class InboundInterceptor extends OpenTelemetryInboundInterceptor {
  protected override readonly tracer = runIdTracer();
}

class OutboundInterceptor extends OpenTelemetryOutboundInterceptor {
  protected override readonly tracer = runIdTracer();
}

class InternalsInterceptor extends OpenTelemetryInternalsInterceptor {
  override dispose(...args: Parameters<OpenTelemetryInternalsInterceptor['dispose']>): Promise<void> {
    counters.delete(workflowInfo().runId);
    return super.dispose(...args);
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new InboundInterceptor()],
  outbound: [new OutboundInterceptor()],
  internals: [new InternalsInterceptor()],
});
