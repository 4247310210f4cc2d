/**
 * A customer's webhook endpoint, locally: records every delivery, checks its Parley-Signature
 * with the secret it was given, and can be told to fail the next N deliveries with a 500.
 * A delivery with a bad signature is answered 400 (and recorded), as a careful receiver would.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  EVENT_ID_HEADER,
  SIGNATURE_HEADER,
  verifyWebhookSignature,
} from '../../activities/customer-webhooks';

export interface ReceivedDelivery {
  path: string;
  headers: http.IncomingHttpHeaders;
  rawBody: string;
  body: unknown;
  eventId: string | undefined;
  signature: string | undefined;
  /** Checked against `receiver.secret`; undefined when no secret was set. */
  signatureValid: boolean | undefined;
  /** What the receiver answered. */
  status: number;
}

export class WebhookReceiver {
  /** The endpoint's signing secret (as returned once by POST /v1/webhook-endpoints). */
  secret: string | undefined;
  readonly deliveries: ReceivedDelivery[] = [];
  private failuresLeft = 0;
  private failureStatus = 500;
  private readonly server: http.Server;
  private port = 0;

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const rawBody = Buffer.concat(chunks).toString('utf8');
        const header = (name: string) => {
          const value = req.headers[name.toLowerCase()];
          return Array.isArray(value) ? value[0] : value;
        };
        const signature = header(SIGNATURE_HEADER);
        const signatureValid =
          this.secret === undefined ? undefined : verifyWebhookSignature(this.secret, signature, rawBody);
        let status = 200;
        if (signatureValid === false) status = 400;
        else if (this.failuresLeft > 0) {
          this.failuresLeft -= 1;
          status = this.failureStatus;
        }
        let body: unknown;
        try {
          body = JSON.parse(rawBody);
        } catch {
          body = undefined;
        }
        this.deliveries.push({
          path: req.url ?? '/',
          headers: req.headers,
          rawBody,
          body,
          eventId: header(EVENT_ID_HEADER),
          signature,
          signatureValid,
          status,
        });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status === 200 ? 'ok' : 'no');
      });
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The URL to register, e.g. `http://127.0.0.1:PORT/hooks/parley` (still known after close). */
  url(path = '/hooks/parley'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The next `count` deliveries are answered with `status` (default 500). */
  failNext(count: number, status = 500): void {
    this.failuresLeft = count;
    this.failureStatus = status;
  }

  /** Deliveries that were accepted (2xx). */
  get accepted(): ReceivedDelivery[] {
    return this.deliveries.filter((d) => d.status >= 200 && d.status < 300);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export async function startWebhookReceiver(secret?: string): Promise<WebhookReceiver> {
  const receiver = await new WebhookReceiver().listen();
  receiver.secret = secret;
  return receiver;
}
