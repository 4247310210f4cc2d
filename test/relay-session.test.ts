/**
 * The relay's call session in isolation (fake transport, speech and Temporal client): what `speak`
 * sends and reports as heard from echoed marks, barge-in, and how endpointed caller speech becomes
 * one `userTurn` update with its timings.
 */
import type { Client } from '@temporalio/client';
import {
  CallSession,
  DEFAULT_MEDIA_SETTINGS,
  type MediaTransport,
  type SpeechProviders,
} from '../realtime-relay/call-session';
import type { LlmClients } from '../activities/llm';
import { createLogger } from '../lib/logger';
import { loadConfig } from '../config';

interface Sent {
  audio: number;
  marks: string[];
  clears: number;
  closed?: number;
}

function fakeTransport(): MediaTransport & { sent: Sent } {
  const sent: Sent = { audio: 0, marks: [], clears: 0 };
  return {
    channel: 'voice',
    sent,
    sendAudio: (pcm) => (sent.audio += pcm.length),
    sendMark: (name) => sent.marks.push(name),
    clear: () => (sent.clears += 1),
    close: (code) => (sent.closed = code),
  };
}

/** 80 ms of "speech" per character: a loud tone. */
const toneTts = {
  name: 'tone',
  synthesize: ({ text }: { text: string }) => {
    const pcm = new Int16Array(text.length * 640);
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * 200 * i) / 8000));
    return Promise.resolve(pcm);
  },
};

function setup(transcript = 'yes please', options: { settings?: boolean } = {}) {
  const updates: { turnId: number; text: string; timings: Record<string, number> }[] = [];
  const temporal = {
    workflow: {
      getHandle: () => ({
        startUpdate: (
          _def: unknown,
          opts: { args: [{ turnId: number; text: string; timings: Record<string, number> }] },
        ) => {
          updates.push(opts.args[0]);
          return Promise.resolve({ result: () => new Promise(() => {}) });
        },
        signal: () => Promise.resolve(),
      }),
    },
  } as unknown as Client;
  const stt = {
    name: 'fake',
    transcribe: () => Promise.resolve({ text: transcript, provider: 'fake', grammar: false }),
  };
  const sttUsed: string[] = [];
  const speech: SpeechProviders = {
    stt: (provider) => {
      sttUsed.push(provider);
      return stt;
    },
    tts: () => toneTts,
  };
  const transport = fakeTransport();
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const session = new CallSession(
    { v: 1, callId: 'c1', tenantId: 't1', workflowId: 'call:c1', channel: 'voice', jti: 'j', exp: 0 },
    transport,
    {
      instanceId: 'test',
      temporal,
      speech,
      llmClients: {} as LlmClients,
      recordingsDir: '/tmp',
      logger: createLogger(config, 'test'),
    },
  );
  if (options.settings !== false) session.applySettings(DEFAULT_MEDIA_SETTINGS);
  return { session, transport, updates, sttUsed };
}

const never = new AbortController().signal;
const frame = (level: number) => {
  const f = new Int16Array(160);
  for (let i = 0; i < 160; i++) f[i] = Math.round(level * Math.sin((2 * Math.PI * 300 * i) / 8000));
  return f;
};

it('speaks in small marked chunks and reports the whole text heard once every mark is echoed', async () => {
  const { session, transport } = setup();
  const text = 'Hello there. How are you today?';
  const speaking = session.speak({ tenantId: 't1', callId: 'c1', turnId: 1, text }, never, () => {});
  await new Promise((r) => setTimeout(r, 50));
  // Two sentences of 12 and 18 characters: 960 ms and 1440 ms of audio, in 240 ms chunks.
  expect(transport.sent.audio).toBe((12 + 18) * 640);
  expect(transport.sent.marks).toHaveLength(4 + 6);
  for (const mark of transport.sent.marks) session.onMarkEchoed(mark);
  const result = await speaking;
  expect(result).toMatchObject({ text, heardText: text, interrupted: false });
  expect(result.timings.firstFrameAt).toBeGreaterThanOrEqual(result.timings.speakStartedAt!);
});

it('barge-in clears the stream and returns only the words whose chunks were played', async () => {
  const { session, transport } = setup();
  const text = 'one two three four five six seven eight nine ten eleven twelve.';
  const speaking = session.speak({ tenantId: 't1', callId: 'c1', turnId: 2, text }, never, () => {});
  await new Promise((r) => setTimeout(r, 50));
  const marks = transport.sent.marks;
  expect(marks.length).toBeGreaterThan(10);
  // The first three chunks played; then the caller talks for 300 ms (250 ms is the barge-in minimum).
  marks.slice(0, 3).forEach((m) => session.onMarkEchoed(m));
  for (let i = 0; i < 5; i++) session.onAudio(frame(0));
  for (let i = 0; i < 15; i++) session.onAudio(frame(8000));
  expect(transport.sent.clears).toBe(1);
  // After a clear, Twilio echoes every pending mark at once: cleared, not heard.
  marks.slice(3).forEach((m) => session.onMarkEchoed(m));
  const result = await speaking;
  expect(result.interrupted).toBe(true);
  expect(text.startsWith(result.heardText)).toBe(true);
  expect(result.heardText.split(' ').length).toBeGreaterThan(0);
  expect(result.heardText.split(' ').length).toBeLessThan(6);
});

it('endpointed caller speech becomes one userTurn with its stage timings; noise with no words none', async () => {
  const { session, updates } = setup('tomorrow at 3 pm');
  for (let i = 0; i < 10; i++) session.onAudio(frame(0));
  for (let i = 0; i < 40; i++) session.onAudio(frame(8000)); // 800 ms of speech
  for (let i = 0; i < 40; i++) session.onAudio(frame(0)); // 800 ms of silence > 700 ms endpointing
  await new Promise((r) => setTimeout(r, 20));
  expect(updates).toHaveLength(1);
  expect(updates[0]).toMatchObject({ turnId: 1, text: 'tomorrow at 3 pm' });
  const t = updates[0]!.timings;
  expect(t.speechEndAt).toBeLessThan(t.endpointedAt!);
  expect(t.endpointedAt! - t.speechEndAt!).toBeGreaterThanOrEqual(680);
  expect(t.sttFinalAt).toBeGreaterThanOrEqual(t.sttStartedAt!);
  expect(t.updateSentAt).toBeGreaterThanOrEqual(t.sttFinalAt!);

  // Speech the STT finds no words in (noise, a cough) makes no turn.
  const quiet = setup('   ');
  for (let i = 0; i < 10; i++) quiet.session.onAudio(frame(0));
  for (let i = 0; i < 40; i++) quiet.session.onAudio(frame(8000));
  for (let i = 0; i < 40; i++) quiet.session.onAudio(frame(0));
  await new Promise((r) => setTimeout(r, 20));
  expect(quiet.sttUsed).toEqual(['local']);
  expect(quiet.updates).toHaveLength(0);
});

it('a stream that ends mid-reply reports the caller gone', async () => {
  const { session, transport } = setup();
  const speaking = session.speak(
    { tenantId: 't1', callId: 'c1', turnId: 1, text: 'A long goodbye.' },
    never,
    () => {},
  );
  await new Promise((r) => setTimeout(r, 50));
  // 1200 ms of audio in five chunks over three words: the first two chunks carry "A".
  transport.sent.marks.slice(0, 2).forEach((m) => session.onMarkEchoed(m));
  session.end('stop');
  const result = await speaking;
  expect(result).toMatchObject({ interrupted: true, callerGone: true });
  expect(result.heardText).toBe('A');
});

it("caller speech before the agent's settings arrive waits for them, then uses the agent's STT provider", async () => {
  const { session, updates, sttUsed } = setup('hello', { settings: false });
  for (let i = 0; i < 10; i++) session.onAudio(frame(0));
  for (let i = 0; i < 40; i++) session.onAudio(frame(8000));
  for (let i = 0; i < 40; i++) session.onAudio(frame(0));
  await new Promise((r) => setTimeout(r, 50));
  expect(updates).toHaveLength(0);
  session.applySettings({ ...DEFAULT_MEDIA_SETTINGS, stt: { provider: 'openai' } });
  await new Promise((r) => setTimeout(r, 20));
  expect(updates).toHaveLength(1);
  expect(sttUsed).toEqual(['openai']);
});
