/**
 * Signed tool calls over a real socket to a local tool endpoint that verifies the signature the way a
 * tenant would, and how its answers (and silences) become Temporal failure classes.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import type { ToolDefinition } from '../contracts/agent-definition';
import { createToolCallActivities, signToolRequest, verifyToolSignature } from '../activities/tool-calls';
import { startToolServer, type ToolServer } from './peers/tool-server';

const SECRET = 'tenant-signing-secret-0123456789';

let server: ToolServer;
const activities = createToolCallActivities();
const callTool = (input: Parameters<typeof activities.callTool>[0]) => activities.callTool(input);

beforeAll(async () => {
  server = await startToolServer({ secret: SECRET });
});
afterAll(() => server.close());
beforeEach(() => {
  server.calls.length = 0;
});

function tool(overrides: Partial<ToolDefinition> = {}): ToolDefinition {
  return {
    name: 'lookup_order',
    description: 'Finds an order by id',
    url: server.url,
    method: 'POST',
    parameters: { type: 'object', properties: { orderId: { type: 'string' } } },
    signingSecret: SECRET,
    timeoutMs: 2000,
    ...overrides,
  };
}

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

function expectRetryable(err: Error): void {
  expect(err).toBeInstanceOf(Error);
  expect(err instanceof ApplicationFailure && err.nonRetryable).toBe(false);
}

describe('callTool', () => {
  it('sends a signed JSON request the tool endpoint accepts, and returns its parsed answer', async () => {
    server.script([{ json: { status: 'shipped', eta: '2024-06-07' } }]);
    const before = Math.floor(Date.now() / 1000);
    const result = await callTool({
      tool: tool(),
      args: { orderId: 'A-1001' },
      callId: 'call_01HZX',
      tenantId: 'tenant-1',
      toolCallId: 'call_peer1_0',
    });

    expect(result).toEqual({
      ok: true,
      status: 200,
      body: { status: 'shipped', eta: '2024-06-07' },
      durationMs: expect.any(Number),
    });
    const [call] = server.calls;
    expect(call!.signatureValid).toBe(true);
    expect(call!.method).toBe('POST');
    expect(call!.body).toEqual({
      tool: 'lookup_order',
      arguments: { orderId: 'A-1001' },
      callId: 'call_01HZX',
      toolCallId: 'call_peer1_0',
    });
    expect(call!.headers['content-type']).toBe('application/json');
    expect(call!.headers['idempotency-key']).toBe('call_01HZX:call_peer1_0');
    const timestamp = Number(call!.headers['x-parley-timestamp']);
    expect(timestamp).toBeGreaterThanOrEqual(before);
    expect(timestamp).toBeLessThanOrEqual(before + 5);
    expect(call!.headers['x-parley-signature']).toBe(signToolRequest(SECRET, timestamp, call!.rawBody));
    expect(call!.headers['x-parley-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
  });

  it('derives the idempotency key from business ids, the same on every attempt', async () => {
    server.script([{ json: { ok: 1 } }, { json: { ok: 2 } }]);
    const input = { tool: tool({ method: 'PUT' }), args: {}, callId: 'call_42', tenantId: 'tenant-1' };
    await callTool(input);
    await callTool(input);
    expect(server.calls.map((c) => c.headers['idempotency-key'])).toEqual([
      'call_42:lookup_order',
      'call_42:lookup_order',
    ]);
    expect(server.calls.map((c) => c.method)).toEqual(['PUT', 'PUT']);
    expect(server.calls[0]!.body).not.toHaveProperty('toolCallId');
  });

  it('returns a non-JSON 2xx body as text', async () => {
    server.script([{ text: 'accepted' }]);
    const result = await callTool({ tool: tool(), args: {}, callId: 'c', tenantId: 't' });
    expect(result).toMatchObject({ ok: true, status: 200, body: 'accepted' });
  });

  it('is refused by the endpoint when signed with the wrong secret (401 → ToolRejected)', async () => {
    const err = await failureOf(
      callTool({
        tool: tool({ signingSecret: 'an-old-rotated-secret-000000' }),
        args: {},
        callId: 'c',
        tenantId: 't',
      }),
    );
    expect(server.calls[0]!.signatureValid).toBe(false);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'ToolRejected', nonRetryable: true });
    expect((err as ApplicationFailure).details?.[0]).toMatchObject({
      status: 401,
      body: { error: 'invalid signature' },
    });
  });

  it('gives up after tool.timeoutMs with a retryable error', async () => {
    server.script([{ json: { late: true }, delayMs: 1500 }]);
    const started = performance.now();
    const err = await failureOf(
      callTool({ tool: tool({ timeoutMs: 150 }), args: {}, callId: 'c', tenantId: 't' }),
    );
    expectRetryable(err);
    expect(err.message).toMatch(/lookup_order.*timed out after 150 ms/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('turns a 4xx into a non-retryable ToolRejected that records the status and body', async () => {
    server.script([{ status: 422, json: { error: 'unknown orderId', orderId: 'Z-9' } }]);
    const err = await failureOf(
      callTool({ tool: tool(), args: { orderId: 'Z-9' }, callId: 'call_7', tenantId: 'tenant-1' }),
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure).toMatchObject({ type: 'ToolRejected', nonRetryable: true });
    expect(failure.message).toMatch(/lookup_order.*422/);
    expect(failure.details?.[0]).toMatchObject({
      tool: 'lookup_order',
      status: 422,
      body: { error: 'unknown orderId', orderId: 'Z-9' },
      callId: 'call_7',
      tenantId: 'tenant-1',
    });
  });

  it('truncates a large refusal body to 2 KB', async () => {
    server.script([{ status: 400, text: `bad request: ${'x'.repeat(10_000)}` }]);
    const err = await failureOf(callTool({ tool: tool(), args: {}, callId: 'c', tenantId: 't' }));
    const body = (err as ApplicationFailure).details?.[0] as { body: string };
    expect(typeof body.body).toBe('string');
    expect(Buffer.byteLength(body.body)).toBeLessThan(2048 + 64);
    expect(body.body).toMatch(/^bad request: x+… \[truncated, 10013 bytes\]$/);
  });

  it('does not follow a redirect with the signed body', async () => {
    server.script([{ status: 302, headers: { Location: 'http://169.254.169.254/latest' }, text: '' }]);
    const err = await failureOf(callTool({ tool: tool(), args: {}, callId: 'c', tenantId: 't' }));
    expect(err).toMatchObject({ type: 'ToolRejected', nonRetryable: true });
    expect(server.calls).toHaveLength(1);
  });

  it.each([500, 503, 429])('leaves a %i as a plain, retryable error', async (status) => {
    server.script([{ status, json: { error: 'busy' } }]);
    const err = await failureOf(callTool({ tool: tool(), args: {}, callId: 'c', tenantId: 't' }));
    expectRetryable(err);
    expect(err.message).toContain(String(status));
  });

  it('leaves a refused connection as a plain, retryable error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await failureOf(
      callTool({
        tool: tool({ url: `http://127.0.0.1:${port}/tool` }),
        args: {},
        callId: 'c',
        tenantId: 't',
      }),
    );
    expectRetryable(err);
    expect(err.message).toMatch(/lookup_order.*failed/);
  });
});

describe('verifyToolSignature', () => {
  const body = '{"tool":"lookup_order","arguments":{},"callId":"c"}';
  const now = 1_717_000_000;
  const header = signToolRequest(SECRET, now, body);

  it('accepts the signature Parley sends, also among several (secret rotation)', () => {
    expect(verifyToolSignature(SECRET, String(now), body, header, 300, now)).toBe(true);
    expect(verifyToolSignature(SECRET, now, body, `v1=${'0'.repeat(64)}, ${header}`, 300, now)).toBe(true);
  });

  it('rejects another secret, a changed body, a stale or future timestamp and garbage', () => {
    expect(verifyToolSignature('another-secret-0123456789', now, body, header, 300, now)).toBe(false);
    expect(verifyToolSignature(SECRET, now, body.replace('lookup', 'cancel'), header, 300, now)).toBe(false);
    expect(verifyToolSignature(SECRET, now + 1, body, header, 300, now)).toBe(false);
    expect(verifyToolSignature(SECRET, now, body, header, 300, now + 301)).toBe(false);
    expect(verifyToolSignature(SECRET, now, body, header, 300, now - 301)).toBe(false);
    expect(verifyToolSignature(SECRET, now, body, undefined, 300, now)).toBe(false);
    expect(verifyToolSignature(SECRET, undefined, body, header, 300, now)).toBe(false);
    expect(verifyToolSignature(SECRET, 'soon', body, header, 300, now)).toBe(false);
    expect(verifyToolSignature(SECRET, now, body, 'v1=zz', 300, now)).toBe(false);
    expect(verifyToolSignature(SECRET, now, body, header.replace('v1=', 'v0='), 300, now)).toBe(false);
  });
});
