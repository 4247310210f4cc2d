/**
 * The relay under abuse and failure: refused stream tokens (bad, forged, expired, replayed, none in
 * time) close the socket with a code; a flood of malformed frames neither crashes the relay nor
 * harms the call it arrives on or any other; a relay process killed mid-call leaves the call
 * `failed` with the reason (heartbeat timeout), never stuck in progress.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import WebSocket from 'ws';
import request from 'supertest';
import { CALL_QUEUE, CALL_WORKFLOW, callWorkflowId } from '../contracts/call';
import { freePort, waitUntil } from '../lib/net';
import { signStreamToken } from '../lib/stream-token';
import { CallerSimulator } from './peers/caller-simulator';
import { bearer } from './support/stack';
import { startVoiceStack, type VoiceStack } from './support/voice-stack';

jest.setTimeout(120_000);

let voice: VoiceStack;
let yesNoAgent: string;

const YES_NO_AGENT = {
  greeting:
    'Hello, this is the robustness line. I will keep talking for a little while so that there is ' +
    'time for mischief on the wire while I speak.',
  flow: {
    startNodeId: 'ask',
    nodes: [
      {
        id: 'ask',
        type: 'collect' as const,
        slot: 'ok',
        slotType: 'yes_no' as const,
        prompt: 'Are you still there?',
      },
      { id: 'done', type: 'end' as const, disposition: 'still_there', message: 'Good. Goodbye!' },
    ],
    edges: [{ id: 'e1', source: 'ask', target: 'done' }],
  },
};

beforeAll(async () => {
  voice = await startVoiceStack({ startTimeoutMs: 1_000 });
  yesNoAgent = await voice.publishAgent('Robust', YES_NO_AGENT);
});
afterAll(() => voice?.close());

/** Opens a raw Twilio-style stream and sends `connected` + `start` with the given token. */
function rawStream(token: string | undefined, url = `${voice.relayUrl}/twilio/stream`) {
  const ws = new WebSocket(url);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  ws.on('open', () => {
    ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    if (token === undefined) return;
    ws.send(
      JSON.stringify({
        event: 'start',
        sequenceNumber: '1',
        streamSid: 'MZ00000000000000000000000000000000',
        start: {
          accountSid: voice.simulator.accountSid,
          streamSid: 'MZ00000000000000000000000000000000',
          callSid: 'CA00000000000000000000000000000000',
          tracks: ['inbound'],
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          customParameters: { token },
        },
      }),
    );
  });
  return { ws, closed };
}

const claims = {
  callId: '00000000-0000-4000-8000-000000000000',
  tenantId: '00000000-0000-4000-8000-000000000001',
  workflowId: 'call:CA00000000000000000000000000000000',
  channel: 'voice' as const,
};

it('refuses streams whose token is missing, garbage, forged or expired, with close code 4401', async () => {
  const secret = voice.stack.config.STREAM_TOKEN_SECRET;
  const cases: [string | undefined, RegExp][] = [
    ['', /stream token malformed/],
    ['not-a-token', /stream token malformed/],
    [signStreamToken('another-secret-that-is-long-enough-000', claims, 60).token, /bad_signature/],
    [signStreamToken(secret, claims, 30, Date.now() - 120_000).token, /stream token expired/],
  ];
  for (const [token, reason] of cases) {
    const { closed } = rawStream(token);
    const result = await closed;
    expect(result.code).toBe(4401);
    expect(result.reason).toMatch(reason);
  }
  // No start at all: closed once the start timeout passes.
  const silent = rawStream(undefined);
  expect(await silent.closed).toMatchObject({ code: 4408 });
  // The browser endpoint checks its token too.
  const web = new WebSocket(`${voice.relayUrl}/web/stream?token=forged.token`);
  web.on('error', () => {});
  const webClosed = await new Promise<number>((resolve) => web.on('close', (code) => resolve(code)));
  expect(webClosed).toBe(4401);
});

it('a token attaches one stream only: a replayed token is refused', async () => {
  const number = await voice.registerNumber(yesNoAgent);
  const call = await voice.simulator.dial({ from: '+15550001111', to: number });
  await waitUntil('the greeting started', () => Promise.resolve(call.stats.mediaMessagesIn > 0), 30_000, 20);
  const replay = rawStream(call.parameters.token);
  expect(await replay.closed).toMatchObject({ code: 4401, reason: 'stream token replayed' });
  await call.hangup();
  await voice.stack.temporal.workflow.getHandle(callWorkflowId(call.callSid)).result();
});

it('a flood of malformed frames does not crash the relay or harm the calls', async () => {
  const number = await voice.registerNumber(yesNoAgent);
  const call = await voice.simulator.dial({ from: '+15550002222', to: number });
  await waitUntil('the greeting started', () => Promise.resolve(call.stats.mediaMessagesIn > 0), 30_000, 20);

  // Garbage on the call's own socket, of every kind the relay must shrug off.
  const garbage = [
    'not json',
    '{"no":"event"}',
    JSON.stringify({ event: 'media', sequenceNumber: '1', media: { payload: '***' } }),
    JSON.stringify({ event: 'mark', sequenceNumber: '2' }),
    JSON.stringify({ event: 'dtmf', sequenceNumber: '3', dtmf: {} }),
    JSON.stringify({ event: 'party', sequenceNumber: '4' }),
    Buffer.from([0, 1, 2, 3]),
  ];
  for (let i = 0; i < 300; i++) for (const g of garbage) call.sendRaw(g);

  // And strangers flooding the relay on sockets of their own, one over the payload limit.
  const strangers = Array.from({ length: 4 }, () => rawStream(undefined));
  await Promise.all(strangers.map(({ ws }) => new Promise((r) => ws.once('open', r))));
  for (const { ws } of strangers) for (let i = 0; i < 1000; i++) ws.send(i % 2 ? '{"event":"media"}' : '}{');
  strangers[0]!.ws.send('x'.repeat(voice.stack.config.RELAY_MAX_PAYLOAD_BYTES + 1));
  expect((await strangers[0]!.closed).code).toBe(1009);

  // The call goes on: the caller answers and the agent finishes the conversation.
  await call.waitForAgentTurn({ timeoutMs: 30_000 });
  await call.say('yes');
  const result = await voice.stack.temporal.workflow.getHandle(callWorkflowId(call.callSid)).result();
  expect(result).toMatchObject({ status: 'completed', disposition: 'still_there' });
  const health = await fetch(`${voice.relayUrl.replace('ws', 'http')}/health`);
  expect(health.status).toBe(200);
  for (const { ws } of strangers) ws.terminate();
});

describe('a relay process killed mid-call', () => {
  let child: ChildProcess | undefined;
  afterAll(() => child?.kill('SIGKILL'));

  it('leaves the call failed with the reason, not stuck in progress', async () => {
    const port = await freePort();
    const config = voice.stack.config;
    child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, '..', 'realtime-relay', 'main.ts')],
      {
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
          TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE,
          RELAY_PORT: String(port),
          RELAY_HOST: '127.0.0.1',
          RELAY_INSTANCE_ID: `doomed-relay-${process.pid}`,
          STREAM_TOKEN_SECRET: config.STREAM_TOKEN_SECRET,
          RECORDINGS_DIR: config.RECORDINGS_DIR,
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    await waitUntil(
      'the relay process to be ready',
      async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok,
      30_000,
    );
    const simulator = new CallerSimulator({
      apiBaseUrl: voice.apiUrl,
      authToken: config.TWILIO_AUTH_TOKEN as string,
      accountSid: config.TWILIO_ACCOUNT_SID as string,
      streamOrigin: `ws://127.0.0.1:${port}`,
    });
    const number = await voice.registerNumber(yesNoAgent);
    const call = await simulator.dial({ from: '+15550003333', to: number });
    await waitUntil(
      'the greeting started',
      () => Promise.resolve(call.stats.mediaMessagesIn > 0),
      30_000,
      20,
    );
    child.kill('SIGKILL');
    const killedAt = Date.now();
    const handle = voice.stack.temporal.workflow.getHandle(callWorkflowId(call.callSid));
    const result = await handle.result();
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/heartbeat timeout/);
    // Within the media heartbeat timeout (10 s) and its grace, not the call's maximum duration.
    expect(Date.now() - killedAt).toBeLessThan(30_000);
    const calls = await request(voice.stack.app)
      .get('/v1/calls')
      .query({ status: 'failed' })
      .set(bearer(voice.tenant.token));
    expect(calls.status).toBe(200);
    expect(calls.body.data.some((c: { from?: string }) => c.from === '+15550003333')).toBe(true);
  });
});

it('a call whose media stream never connects ends failed instead of holding a line', async () => {
  const callId = randomUUID();
  const handle = await voice.stack.temporal.workflow.start(CALL_WORKFLOW, {
    taskQueue: CALL_QUEUE,
    workflowId: callWorkflowId(callId),
    args: [
      {
        callId,
        tenantId: voice.tenant.tenantId,
        agentId: yesNoAgent,
        agentVersionId: null,
        direction: 'inbound',
        channel: 'voice',
        from: '+15550005555',
        options: { mediaConnectTimeoutSeconds: 2 },
      },
    ],
  });
  const result = await handle.result();
  expect(result).toMatchObject({ status: 'failed', disposition: 'media_not_connected' });
  const record = await request(voice.stack.app).get(`/v1/calls/${callId}`).set(bearer(voice.tenant.token));
  expect(record.body).toMatchObject({ status: 'failed', disposition: 'media_not_connected' });
});
