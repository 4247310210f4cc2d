/**
 * Browser test calls: the dashboard's microphone (PCM16 at 16 kHz) through the relay's /web/stream,
 * the same pipeline and the same call workflow as a phone call, channel `web`, with the live
 * transcript and per-turn latency events the test panel shows.
 */
import WebSocket from 'ws';
import request from 'supertest';
import { callWorkflowId } from '../contracts/call';
import { resample } from '../realtime-relay/audio/resample';
import { EspeakTts } from '../realtime-relay/speech/espeak-tts';
import { waitUntil } from '../lib/net';
import { bearer } from './support/stack';
import { startVoiceStack, type VoiceStack } from './support/voice-stack';

jest.setTimeout(90_000);

let voice: VoiceStack;
beforeAll(async () => {
  voice = await startVoiceStack();
});
afterAll(() => voice?.close());

/** A minimal browser client: plays what it receives in real time (echoing marks), speaks PCM16. */
class BrowserClient {
  readonly events: Record<string, unknown>[] = [];
  private playbackEndsAt = 0;
  private readonly pendingMarks = new Set<ReturnType<typeof setTimeout>>();
  private speech: Int16Array = new Int16Array(0);
  private readonly pump: ReturnType<typeof setInterval>;
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data: Buffer) => {
      const event = JSON.parse(data.toString('utf8')) as Record<string, unknown> & {
        media?: { payload: string };
        mark?: { name: string };
      };
      this.events.push(event);
      if (event.event === 'media') {
        const ms = Buffer.from(event.media!.payload, 'base64').length / 2 / 16;
        this.playbackEndsAt = Math.max(this.playbackEndsAt, Date.now()) + ms;
      } else if (event.event === 'mark') {
        const timer = setTimeout(
          () => {
            this.pendingMarks.delete(timer);
            this.send({ event: 'mark', mark: event.mark });
          },
          Math.max(0, this.playbackEndsAt - Date.now()),
        );
        this.pendingMarks.add(timer);
      } else if (event.event === 'clear') {
        this.playbackEndsAt = Date.now();
      }
    });
    // 20 ms of microphone audio at a time: speech when there is some, silence otherwise.
    this.pump = setInterval(() => {
      const frame = new Int16Array(320);
      const take = this.speech.subarray(0, 320);
      frame.set(take);
      this.speech = this.speech.subarray(take.length);
      this.send({ event: 'media', media: { payload: Buffer.from(frame.buffer).toString('base64') } });
    }, 20);
  }

  send(message: Record<string, unknown>) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  async say(text: string) {
    const pcm8k = await new EspeakTts().synthesize({ text, voiceId: 'en-us', language: 'en-US' });
    this.speech = resample(pcm8k, 8000, 16000);
  }

  of(type: string) {
    return this.events.filter((e) => e.event === type);
  }

  stop() {
    clearInterval(this.pump);
    for (const timer of this.pendingMarks) clearTimeout(timer);
  }
}

it('a browser test call runs through the relay and the same workflow, channel web', async () => {
  const agentId = await voice.publishAgent('Web line', {
    greeting: 'Hello from the browser line.',
    flow: {
      startNodeId: 'ask',
      nodes: [
        { id: 'ask', type: 'collect', slot: 'ok', slotType: 'yes_no', prompt: 'Can you hear me?' },
        { id: 'done', type: 'end', disposition: 'heard', message: 'Wonderful. Goodbye!' },
      ],
      edges: [{ id: 'e1', source: 'ask', target: 'done' }],
    },
  });
  const started = await request(voice.stack.app)
    .post(`/v1/agents/${agentId}/test-calls`)
    .set(bearer(voice.tenant.token))
    .send({ encoding: 'pcm16' });
  expect(started.status).toBe(201);
  expect(started.body).toMatchObject({ encoding: 'pcm16', sampleRate: 16000 });
  const url = `${started.body.streamUrl}?token=${encodeURIComponent(started.body.token)}&encoding=pcm16`;
  const ws = new WebSocket(url);
  const client = new BrowserClient(ws);
  try {
    await waitUntil(
      'the greeting transcript',
      () => Promise.resolve(client.of('transcript').some((e) => e.role === 'agent')),
      30_000,
      20,
    );
    expect(client.of('media').length).toBeGreaterThan(0);
    await client.say('yes');
    expect(await client.closed).toBe(1000);
    const callerLines = client.of('transcript').filter((e) => e.role === 'caller');
    expect(callerLines.map((e) => e.text)).toEqual([expect.stringMatching(/^yes/)]);
    // Per-turn latency for the test panel: the caller's turn, measured stage by stage.
    const turn = client.of('turn').find((e) => e.turnId === 1) as { timings: Record<string, number> };
    expect(turn.timings.speechEndAt!).toBeLessThanOrEqual(turn.timings.firstFrameAt!);
    expect(turn.timings.sttMs).toBeGreaterThanOrEqual(0);

    const result = await voice.stack.temporal.workflow
      .getHandle(callWorkflowId(started.body.callId))
      .result();
    expect(result).toMatchObject({ status: 'completed', disposition: 'heard' });
    const record = await request(voice.stack.app)
      .get(`/v1/calls/${started.body.callId}`)
      .set(bearer(voice.tenant.token));
    expect(record.body).toMatchObject({ channel: 'web', status: 'completed', disposition: 'heard' });
  } finally {
    client.stop();
    ws.terminate();
  }
});
