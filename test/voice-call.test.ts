/**
 * Phone calls end to end, with the local speech engines: the caller simulator posts a signed voice
 * webhook to the api, follows the TwiML to the relay, speaks (espeak-ng, real-time 20 ms μ-law
 * frames), hears the agent (pocketsphinx on the relay side transcribes the caller), and hangs up as
 * Twilio does. Real Temporal, real PostgreSQL, real sockets.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import request from 'supertest';
import { workflowBundle } from '../workers/create-workers';
import { DEMO_BOOKING_AGENT } from '../db/seed/demo-agents';
import { callWorkflowId, type CallWorkflowResult } from '../contracts/call';
import { decodeWav } from '../realtime-relay/audio/wav';
import { waitUntil } from '../lib/net';
import { bearer } from './support/stack';
import { startVoiceStack, type VoiceStack } from './support/voice-stack';

jest.setTimeout(120_000);

let voice: VoiceStack;

beforeAll(async () => {
  voice = await startVoiceStack();
});
afterAll(() => voice?.close());

const CALLER = '+15557654321';

async function callRecord(callId: string) {
  const res = await request(voice.stack.app).get(`/v1/calls/${callId}`).set(bearer(voice.tenant.token));
  expect(res.status).toBe(200);
  return res.body;
}

async function callIdOf(callSid: string): Promise<string> {
  const desc = await voice.stack.temporal.workflow.getHandle(callWorkflowId(callSid)).describe();
  const input = (await voice.stack.temporal.workflow.getHandle(callWorkflowId(callSid)).fetchHistory())
    .events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
  expect(desc.status.name).toBeDefined();
  return (JSON.parse(Buffer.from(input as Uint8Array).toString('utf8')) as { callId: string }).callId;
}

async function resultOf(callSid: string): Promise<CallWorkflowResult> {
  return voice.stack.temporal.workflow.getHandle(callWorkflowId(callSid)).result();
}

it('a simulated inbound call books an appointment by voice, end to end', async () => {
  const agentId = await voice.publishAgent('Voice booking', {
    ...DEMO_BOOKING_AGENT,
    recording: { enabled: true },
  });
  const number = await voice.registerNumber(agentId);
  const call = await voice.simulator.dial({ from: CALLER, to: number });
  expect(call.twiml).toContain('<Connect>');
  expect(call.outcome).toBe('stream');
  expect(call.parameters.token).toBeTruthy();

  // Greeting + "May I have your name?" as audio.
  const greeting = await call.waitForAgentTurn({ timeoutMs: 30_000 });
  expect(greeting.audioMs).toBeGreaterThan(2_000);

  await call.say('my name is alex');
  await call.waitForAgentTurn({ timeoutMs: 30_000 }); // what day and time?
  await call.say('tomorrow at three pm');
  await call.waitForAgentTurn({ timeoutMs: 30_000 }); // just to confirm … is that right?
  await call.say('yes');
  await call.waitForAgentTurn({ timeoutMs: 30_000 }); // you're booked … goodbye

  // The agent ended the call: the relay closes the stream once the goodbye has played.
  const closed = await call.closed;
  expect(closed.code).toBe(1000);
  const result = await resultOf(call.callSid);
  expect(result).toMatchObject({ status: 'completed', disposition: 'booked' });
  expect(voice.twilio.hangups).toContain(call.callSid);

  const callId = await callIdOf(call.callSid);
  const record = await callRecord(callId);
  expect(record).toMatchObject({ status: 'completed', disposition: 'booked', channel: 'voice' });
  const callerTurns = record.transcript.filter((t: { role: string }) => t.role === 'caller');
  expect(callerTurns.map((t: { text: string }) => t.text)).toEqual(
    expect.arrayContaining(['tomorrow at 3 pm', expect.stringMatching(/^yes/)]),
  );
  expect(callerTurns[0].text.length).toBeGreaterThan(0);
  const agentTurns = record.transcript.filter((t: { role: string }) => t.role === 'agent');
  expect(agentTurns[0].text).toContain("Hi, this is Parley's demo booking line.");
  expect(agentTurns.at(-1).text).toContain("You're booked");
  // Per-turn timing, every stage, on the agent's replies to the caller.
  const tomorrow = record.transcript.findIndex((t: { text: string }) => t.text === 'tomorrow at 3 pm');
  const answered = record.transcript[tomorrow + 1];
  expect(answered.role).toBe('agent');
  for (const stage of [
    'speechEndAt',
    'sttFinalAt',
    'updateSentAt',
    'speakStartedAt',
    'ttsFirstAudioAt',
    'firstFrameAt',
  ]) {
    expect(typeof answered.timings[stage]).toBe('number');
  }
  expect(answered.timings.speechEndAt).toBeLessThanOrEqual(answered.timings.sttFinalAt);
  expect(answered.timings.updateSentAt).toBeLessThanOrEqual(answered.timings.speakStartedAt);
  expect(answered.timings.speakStartedAt).toBeLessThanOrEqual(answered.timings.firstFrameAt);

  // The recording: stereo WAV, caller left, agent right, as long as the call, served by the api.
  expect(record.recording).toMatchObject({ url: `/v1/calls/${callId}/recording` });
  const wav = await request(voice.stack.app)
    .get(record.recording.url)
    .set(bearer(voice.tenant.token))
    .buffer(true)
    .parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
  expect(wav.status).toBe(200);
  expect(wav.headers['content-type']).toMatch(/audio\/wav/);
  const decoded = decodeWav(wav.body as Buffer);
  expect(decoded.sampleRate).toBe(8000);
  expect(decoded.channels).toHaveLength(2);
  const seconds = decoded.channels[0]!.length / 8000;
  expect(seconds).toBeGreaterThan(8);
  const energy = (c: Int16Array) => c.reduce((sum, v) => sum + Math.abs(v), 0) / c.length;
  expect(energy(decoded.channels[0]!)).toBeGreaterThan(10); // the caller spoke
  expect(energy(decoded.channels[1]!)).toBeGreaterThan(10); // the agent spoke
  const onDisk = readFileSync(path.join(voice.recordingsDir, voice.tenant.tenantId, `${callId}.wav`));
  expect(onDisk.length).toBe((wav.body as Buffer).length);

  // The voice history (relay activities, media hold, hang-up) replays against today's code, and
  // can be recorded for the replay suite that guards running calls from workflow changes.
  const history = await voice.stack.temporal.workflow.getHandle(callWorkflowId(call.callSid)).fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
  if (process.env.RECORD_HISTORIES) {
    writeFileSync(path.join(__dirname, 'histories', 'call-voice-booking.json'), historyToJSON(history));
  }
});

it('barge-in: caller speech over a long reply clears it within the barge-in time; the transcript keeps what was heard', async () => {
  const long =
    'Thank you for calling the Parley test line. This greeting is deliberately long, so that a caller ' +
    'can interrupt it. We will talk about the opening hours, the parking, the weather, and many other ' +
    'things that nobody wants to hear on the phone. Please feel free to interrupt me at any time.';
  const agentId = await voice.publishAgent('Long talker', {
    greeting: long,
    interruption: { enabled: true, minSpeechMs: 300 },
    flow: {
      startNodeId: 'ask',
      nodes: [
        { id: 'ask', type: 'collect', slot: 'ok', slotType: 'yes_no', prompt: 'Shall we go on?' },
        { id: 'done', type: 'end', disposition: 'confirmed', message: 'Great. Goodbye!' },
      ],
      edges: [{ id: 'e1', source: 'ask', target: 'done' }],
    },
  });
  const number = await voice.registerNumber(agentId);
  const call = await voice.simulator.dial({ from: CALLER, to: number });
  await waitUntil(
    '2.5 s of the greeting played',
    () => Promise.resolve(call.stats.audioMsPlayed > 2_500),
    30_000,
    20,
  );
  expect(call.stats.clears).toHaveLength(0);
  const spoken = await call.say('yes please');
  expect(call.stats.clears.length).toBeGreaterThanOrEqual(1);
  const clearAfterMs = call.stats.clears[0]!.at - spoken.startedAt;
  // Speech must last the configured 300 ms before it counts; then the clear goes out at once.
  expect(clearAfterMs).toBeGreaterThanOrEqual(200);
  expect(clearAfterMs).toBeLessThan(300 + 250);
  expect(call.stats.audioMsCleared).toBeGreaterThan(5_000);

  await call.waitForAgentTurn({ timeoutMs: 30_000 }); // great, goodbye
  const result = await resultOf(call.callSid);
  expect(result).toMatchObject({ status: 'completed', disposition: 'confirmed' });
  const record = await callRecord(await callIdOf(call.callSid));
  const greeting = record.transcript.find((t: { role: string }) => t.role === 'agent');
  expect(greeting.interrupted).toBe(true);
  expect(greeting.text).toContain('Please feel free to interrupt me at any time.');
  // What the caller heard: a strict, non-empty prefix of what was generated.
  expect(greeting.heardText.length).toBeGreaterThan(10);
  expect(greeting.heardText.length).toBeLessThan(greeting.text.length / 2);
  expect(greeting.text.replace(/\s+/g, ' ').startsWith(greeting.heardText)).toBe(true);
});

it('DTMF reaches the workflow; a hang-up mid-reply ends the call cleanly', async () => {
  const agentId = await voice.publishAgent('Keypad', {
    greeting: 'Hello.',
    flow: {
      startNodeId: 'pick',
      nodes: [
        {
          id: 'pick',
          type: 'collect',
          slot: 'digit',
          slotType: 'number',
          prompt: 'Please press a number on your keypad.',
        },
        {
          id: 'chat',
          type: 'say',
          text: 'You pressed {{slots.digit}}. Now let me tell you a very long story about keypads, tones, and the history of the telephone, which goes on and on for quite a while.',
        },
        { id: 'bye', type: 'end', disposition: 'done', message: 'Goodbye.' },
      ],
      edges: [
        { id: 'e1', source: 'pick', target: 'chat' },
        { id: 'e2', source: 'chat', target: 'bye' },
      ],
    },
  });
  const number = await voice.registerNumber(agentId);
  const call = await voice.simulator.dial({ from: CALLER, to: number });
  await call.waitForAgentTurn({ timeoutMs: 30_000 });
  const before = call.stats.audioMsPlayed;
  call.sendDtmf('7');
  // The story starts playing; the caller hangs up in the middle of it.
  await waitUntil(
    'the story started',
    () => Promise.resolve(call.stats.audioMsPlayed > before + 1_500),
    30_000,
    20,
  );
  await call.hangup();
  const result = await resultOf(call.callSid);
  expect(result).toMatchObject({ status: 'completed', disposition: 'caller_hung_up' });
  expect(result.slots).toMatchObject({ digit: 7 });
  const record = await callRecord(await callIdOf(call.callSid));
  expect(record.transcript.map((t: { text: string }) => t.text)).toContain('[dtmf 7]');
  const story = record.transcript.find((t: { text: string }) => t.text.startsWith('You pressed 7'));
  expect(story.interrupted).toBe(true);
});
