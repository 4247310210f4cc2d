/**
 * An OpenTelemetry collector peer: the OTLP/HTTP trace receiver (`POST /v1/traces`) as the
 * OpenTelemetry Collector serves it, for the JSON encoding (`Content-Type: application/json`,
 * ExportTraceServiceRequest with hex trace and span ids, as the OTLP specification's JSON mapping
 * says), gzip or not. Protobuf bodies are refused with 415, as a collector configured for JSON only
 * would. It keeps every span it received, flattened with its resource's `service.name`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { waitUntil } from '../../lib/net';

type AnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
};
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: KeyValue[];
  status?: { code?: number; message?: string };
}
interface ExportTraceServiceRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { scope?: { name?: string }; spans?: OtlpSpan[] }[];
  }[];
}

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a trace's root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  service: string;
  scope: string;
  attributes: Record<string, unknown>;
  startNs: bigint;
  endNs: bigint;
  statusCode: number;
}

export interface OtlpCollector {
  /** The endpoint to give OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  endpoint: string;
  spans(): CollectedSpan[];
  /** Export requests received, and the ones refused (bad content type or body). */
  requests: { accepted: number; refused: number };
  /** Waits until the spans received so far satisfy `predicate`, and returns what it returned. */
  waitFor<T>(
    what: string,
    predicate: (spans: CollectedSpan[]) => T | undefined,
    timeoutMs?: number,
  ): Promise<T>;
  close(): Promise<void>;
}

function value(v: AnyValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  return undefined;
}

const attributes = (kvs: KeyValue[] | undefined) =>
  Object.fromEntries((kvs ?? []).map((kv) => [kv.key, value(kv.value)]));

export async function startOtlpCollector(): Promise<OtlpCollector> {
  const received: CollectedSpan[] = [];
  const requests = { accepted: 0, refused: 0 };
  const refuse = (res: http.ServerResponse, status: number, message: string) => {
    requests.refused += 1;
    res.writeHead(status, { 'content-type': 'application/json' });
    // google.rpc.Status, as OTLP/HTTP errors are; 3: INVALID_ARGUMENT.
    res.end(JSON.stringify({ code: 3, message }));
  };
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type !== 'application/json') return refuse(res, 415, `unsupported content type '${type}'`);
      let body: ExportTraceServiceRequest;
      try {
        const raw = Buffer.concat(chunks);
        const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        body = JSON.parse(text) as ExportTraceServiceRequest;
      } catch (err) {
        return refuse(res, 400, `body is not OTLP JSON: ${(err as Error).message}`);
      }
      for (const rs of body.resourceSpans ?? []) {
        const resource = attributes(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const span of ss.spans ?? []) {
            received.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: span.kind ?? 0,
              service: typeof resource['service.name'] === 'string' ? resource['service.name'] : '',
              scope: ss.scope?.name ?? '',
              attributes: attributes(span.attributes),
              startNs: BigInt(span.startTimeUnixNano),
              endNs: BigInt(span.endTimeUnixNano),
              statusCode: span.status?.code ?? 0,
            });
          }
        }
      }
      requests.accepted += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => [...received],
    requests,
    async waitFor(what, predicate, timeoutMs = 30_000) {
      let found: unknown;
      await waitUntil(
        what,
        () => {
          found = predicate([...received]);
          return Promise.resolve(found !== undefined);
        },
        timeoutMs,
        100,
      );
      return found as never;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
