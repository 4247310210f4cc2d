/** The relay's network edge over real sockets on port 0: health, refused upgrades, heartbeat, draining. */
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { createLogger } from '../lib/logger';
import { createRelayServer, UpgradeRefusal } from '../realtime-relay/server';

const logger = createLogger({ LOG_LEVEL: 'silent' }, 'relay-test');

async function listen(relay: ReturnType<typeof createRelayServer>): Promise<number> {
  await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
  return (relay.server.address() as AddressInfo).port;
}

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => reject(new Error('upgrade was accepted')));
    ws.on('error', () => undefined);
  });
}

describe('relay server', () => {
  it('answers health probes with its instance id', async () => {
    const relay = createRelayServer({ instanceId: 'relay-a', maxPayloadBytes: 1024, logger });
    const port = await listen(relay);
    const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', instanceId: 'relay-a' });
    const missing = await fetch(`http://127.0.0.1:${port}/nope`);
    expect(missing.status).toBe(404);
    await relay.drain(0);
  });

  it('refuses an upgrade to an unknown path (404) and an unauthorized one (its status) before upgrading', async () => {
    const relay = createRelayServer({
      instanceId: 'relay-b',
      maxPayloadBytes: 1024,
      logger,
      routes: {
        '/secure': {
          authorize: () => {
            throw new UpgradeRefusal(401, 'bad token');
          },
          onConnection: () => undefined,
        },
      },
    });
    const port = await listen(relay);
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/nowhere`)).toBe(404);
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/secure`)).toBe(401);
    expect(relay.wss.clients.size).toBe(0);
    await relay.drain(0);
  });

  it('closes a connection whose message exceeds maxPayload with 1009', async () => {
    const relay = createRelayServer({
      instanceId: 'relay-c',
      maxPayloadBytes: 1024,
      logger,
      routes: {
        '/echo': { authorize: () => undefined, onConnection: (ws) => ws.on('message', (m) => ws.send(m)) },
      },
    });
    const port = await listen(relay);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
    await new Promise((resolve) => ws.once('open', resolve));
    const closed = new Promise<number>((resolve) => ws.once('close', resolve));
    ws.send(Buffer.alloc(4096));
    expect(await closed).toBe(1009);
    await relay.drain(0);
  });

  it('terminates a socket that stops answering pings', async () => {
    const relay = createRelayServer({
      instanceId: 'relay-d',
      maxPayloadBytes: 1024,
      heartbeatMs: 50,
      logger,
      routes: { '/echo': { authorize: () => undefined, onConnection: () => undefined } },
    });
    const port = await listen(relay);
    // autoPong off: this client behaves like a dead peer.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, { autoPong: false });
    await new Promise((resolve) => ws.once('open', resolve));
    const closed = new Promise<number>((resolve) => ws.once('close', resolve));
    expect(await closed).toBe(1006);
    await relay.drain(0);
  });

  it('while draining, refuses new streams with 503 and reports not ready, letting a live one finish', async () => {
    const relay = createRelayServer({
      instanceId: 'relay-e',
      maxPayloadBytes: 1024,
      logger,
      routes: { '/echo': { authorize: () => undefined, onConnection: () => undefined } },
    });
    const port = await listen(relay);
    const live = new WebSocket(`ws://127.0.0.1:${port}/echo`);
    await new Promise((resolve) => live.once('open', resolve));
    const draining = relay.drain(5_000);
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(503);
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/echo`)).toBe(503);
    live.close(1000, 'call ended');
    await draining;
  });
});
