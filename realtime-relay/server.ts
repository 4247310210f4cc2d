/**
 * The relay's network edge: an HTTP server for health probes and a `ws` server for media streams.
 * Upgrades are authenticated and routed in `server.on('upgrade')` before `handleUpgrade`; a
 * ping/pong heartbeat terminates dead sockets. Stream handlers (Twilio Media Streams, browser test
 * calls) register a path here; a path nobody registered is refused with 404 before any upgrade.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../lib/logger';
import { serveMetrics, streamsOpened, streamsRefused } from '../lib/metrics';

export interface StreamRoute {
  /** Authenticates the upgrade request; throw an `UpgradeRefusal` to refuse it. */
  authorize(req: http.IncomingMessage): Promise<void> | void;
  onConnection(socket: WebSocket, req: http.IncomingMessage): void;
}

export class UpgradeRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RelayServerOptions {
  instanceId: string;
  maxPayloadBytes: number;
  heartbeatMs?: number;
  logger: Logger;
  routes?: Record<string, StreamRoute>;
  /** Live figures served at GET /stats (streams held, event-loop delay, frame cost). */
  stats?: (reset: boolean) => Record<string, unknown>;
  /** When set, GET /metrics (Prometheus) needs `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

function refuse(socket: Duplex, status: number, message: string) {
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${message}`,
  );
}

export function createRelayServer(options: RelayServerOptions) {
  const routes = options.routes ?? {};
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes });
  const alive = new WeakMap<WebSocket, boolean>();
  let accepting = true;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname === '/health/live' || url.pathname === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', instanceId: options.instanceId, streams: wss.clients.size }));
    } else if (url.pathname === '/stats' && options.stats) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(options.stats(url.searchParams.get('reset') === '1')));
    } else if (url.pathname === '/metrics' && req.method === 'GET') {
      serveMetrics('relay', req, res, options.metricsToken);
    } else if (url.pathname === '/health/ready') {
      res.writeHead(accepting ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: accepting ? 'ok' : 'draining', instanceId: options.instanceId }));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: { code: 'ROUTE_NOT_FOUND', message: `No route for ${req.method} ${url.pathname}` },
        }),
      );
    }
  });

  server.on('upgrade', (req, socket, head) => {
    const pathname = new URL(req.url ?? '/', 'http://relay').pathname;
    const route = routes[pathname];
    const refuseStream = (status: number, message: string) => {
      streamsRefused.inc({ route: route ? pathname : 'unknown', status });
      refuse(socket, status, message);
    };
    if (!accepting) return refuseStream(503, 'relay is draining');
    if (!route) return refuseStream(404, `no stream endpoint at ${pathname}`);
    Promise.resolve()
      .then(() => route.authorize(req))
      .then(() => {
        wss.handleUpgrade(req, socket, head, (ws) => {
          alive.set(ws, true);
          ws.on('pong', () => alive.set(ws, true));
          // ws closes the socket itself (e.g. 1009 over maxPayload); without a listener the error would crash the process.
          ws.on('error', (err: Error & { code?: string }) =>
            options.logger.warn(
              { path: pathname, code: err.code, reason: err.message },
              'stream socket error',
            ),
          );
          streamsOpened.inc({ route: pathname });
          route.onConnection(ws, req);
        });
      })
      .catch((err: unknown) => {
        const status = err instanceof UpgradeRefusal ? err.status : 500;
        options.logger.warn({ path: pathname, status, reason: String(err) }, 'stream upgrade refused');
        refuseStream(status, err instanceof UpgradeRefusal ? err.message : 'internal error');
      });
  });

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.get(ws)) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, options.heartbeatMs ?? 15_000);
  heartbeat.unref();

  return {
    server,
    wss,
    /**
     * Stops taking new streams; live ones continue until they end or the bound passes. At the
     * bound, `atBound` runs before the remaining sockets are closed (1001).
     */
    async drain(boundMs: number, atBound?: () => void): Promise<void> {
      accepting = false;
      const deadline = Date.now() + boundMs;
      while (wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (wss.clients.size > 0) atBound?.();
      for (const ws of wss.clients) ws.close(1001, 'relay shutting down');
      clearInterval(heartbeat);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
