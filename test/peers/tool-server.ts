/**
 * A tenant's tool endpoint on a real socket (port 0): checks the Parley signature the way a tenant
 * would (`verifyToolSignature`, 401 when it does not match), records every request and answers
 * scripted statuses and bodies, optionally after a delay.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyToolSignature } from '../../activities/tool-calls';

export interface ToolServerCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** Parsed JSON, or the raw text when it is not JSON. */
  body: unknown;
  signatureValid: boolean;
}

export interface ToolServerReply {
  status?: number;
  /** Sent as JSON; `text` sends a plain body instead. */
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
  delayMs?: number;
}

export type ToolServerScriptEntry = ToolServerReply | ((call: ToolServerCall) => ToolServerReply);

export interface ToolServer {
  /** `http://127.0.0.1:<port>/tool`; any path is served. */
  url: string;
  /** Every request, signed correctly or not, in arrival order. */
  calls: ToolServerCall[];
  script(entries: ToolServerScriptEntry[]): void;
  close(): Promise<void>;
}

export async function startToolServer(options: {
  secret: string;
  toleranceSeconds?: number;
}): Promise<ToolServer> {
  const queue: ToolServerScriptEntry[] = [];
  const calls: ToolServerCall[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const timestamp = req.headers['x-parley-timestamp'];
      const signature = req.headers['x-parley-signature'];
      const signatureValid = verifyToolSignature(
        options.secret,
        typeof timestamp === 'string' ? timestamp : undefined,
        rawBody,
        typeof signature === 'string' ? signature : undefined,
        options.toleranceSeconds,
      );
      let body: unknown = rawBody;
      try {
        body = JSON.parse(rawBody);
      } catch {
        // Recorded as text.
      }
      const call: ToolServerCall = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        rawBody,
        body,
        signatureValid,
      };
      calls.push(call);

      if (!signatureValid) {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'invalid signature' }));
        return;
      }
      const next = queue.shift();
      const reply: ToolServerReply =
        next === undefined
          ? { status: 500, json: { error: `tool-server: no scripted reply for call #${calls.length}` } }
          : typeof next === 'function'
            ? next(call)
            : next;
      const send = () => {
        if (res.destroyed) return;
        if (reply.text !== undefined) {
          res.writeHead(reply.status ?? 200, { 'Content-Type': 'text/plain', ...reply.headers });
          res.end(reply.text);
        } else {
          res.writeHead(reply.status ?? 200, { 'Content-Type': 'application/json', ...reply.headers });
          res.end(JSON.stringify(reply.json ?? null));
        }
      };
      if (reply.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send();
        }, reply.delayMs);
        timers.add(timer);
      } else {
        send();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/tool`,
    calls,
    script(entries) {
      queue.push(...entries);
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
