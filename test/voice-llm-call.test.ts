/**
 * A phone call to an LLM agent with cloud speech (the OpenAI peer for STT, LLM and TTS): the relay's
 * `speak` streams the model's tokens through the sentence chunker into TTS while they arrive, the
 * STT is prompted with the listening hints, and the model's `complete_step` ends the call.
 */
import OpenAI from 'openai';
import request from 'supertest';
import { callWorkflowId } from '../contracts/call';
import { LLM_RECEPTIONIST_TEMPLATE } from '../db/seed/demo-agents';
import { CallerSimulator } from './peers/caller-simulator';
import { startOpenAiPeer, type OpenAiPeer } from './peers/openai-peer';
import { bearer } from './support/stack';
import { startVoiceStack, type VoiceStack } from './support/voice-stack';

jest.setTimeout(90_000);
const API_KEY = 'sk-test-parley-voice-peer';

let peer: OpenAiPeer;
let voice: VoiceStack;

/** The caller's "voice": 700 ms of a harmonic-rich 180 Hz buzz at speech level (the STT peer answers scripted text). */
const buzz = {
  synthesize: () => {
    const pcm = new Int16Array(8000 * 0.7);
    for (let i = 0; i < pcm.length; i++) {
      const t = i / 8000;
      pcm[i] = Math.round(4000 * (Math.sin(2 * Math.PI * 180 * t) + 0.5 * Math.sin(2 * Math.PI * 540 * t)));
    }
    return Promise.resolve(pcm);
  },
};

beforeAll(async () => {
  peer = await startOpenAiPeer({ apiKey: API_KEY });
  voice = await startVoiceStack({
    env: { OPENAI_BASE_URL: peer.baseUrl, OPENAI_API_KEY: API_KEY },
    openai: new OpenAI({ apiKey: API_KEY, baseURL: peer.baseUrl }),
  });
});
afterAll(async () => {
  await voice?.close();
  await peer?.close();
});

it('streams the model reply to the caller as speech (retrying a provider hiccup), and the model ends the call', async () => {
  const agentId = await voice.publishAgent('Voice receptionist', {
    ...LLM_RECEPTIONIST_TEMPLATE,
    stt: { provider: 'openai' },
    tts: { provider: 'openai' },
    voice: { provider: 'openai', voiceId: 'alloy' },
    endpointing: { silenceMs: 300 },
  });
  const number = await voice.registerNumber(agentId);
  peer.transcriptions.push('I would like to book a table for two', 'thanks, that is all');
  peer.script([
    // The llm node speaks first, right after the greeting.
    { content: 'What can I do for you?' },
    // A provider hiccup before the first token: the relay tries again, the caller hears no gap.
    { status: 503, message: 'overloaded, try again' },
    {
      content: 'Of course. For what time would you like the table? I can check right away.',
      chunkDelayMs: 5,
    },
    {
      content: 'You are welcome.',
      toolCalls: [{ name: 'complete_step', arguments: { outcome: 'resolved', summary: 'table request' } }],
    },
    {
      toolCalls: [
        {
          name: 'record_analysis',
          arguments: {
            summary: 'The caller asked for a table for two.',
            sentiment: 'positive',
            success: { achieved: true, reason: 'The request was taken.' },
            csat: 5,
            structuredData: { reason: 'table booking', callbackRequested: false },
          },
        },
      ],
    },
  ]);
  const caller = new CallerSimulator({
    apiBaseUrl: voice.apiUrl,
    authToken: voice.stack.config.TWILIO_AUTH_TOKEN as string,
    accountSid: voice.stack.config.TWILIO_ACCOUNT_SID as string,
    tts: buzz,
  });
  const call = await caller.dial({ from: '+15550004444', to: number });
  await call.waitForAgentTurn({ timeoutMs: 30_000 }); // greeting and opening line, by the TTS peer
  await call.say('(buzz)');
  const reply = await call.waitForAgentTurn({ timeoutMs: 30_000 });
  // Two sentences reach TTS separately, as the model streams them.
  expect(peer.speechRequests.map((r) => r.input)).toEqual(
    expect.arrayContaining([
      'Of course.',
      'For what time would you like the table?',
      'I can check right away.',
    ]),
  );
  expect(reply.audioMs).toBeGreaterThan(2_000);
  await call.say('(buzz)');
  const result = await voice.stack.temporal.workflow.getHandle(callWorkflowId(call.callSid)).result();
  expect(result).toMatchObject({ status: 'completed', disposition: 'resolved' });

  // STT got the audio with the language; the transcript holds what the model said, with timings.
  expect(peer.transcriptionRequests[0]).toMatchObject({ language: 'en' });
  expect(peer.transcriptionRequests[0]!.audioBytes).toBeGreaterThan(8_000);
  const calls = await request(voice.stack.app).get('/v1/calls').set(bearer(voice.tenant.token));
  const summary = calls.body.data.find((c: { from: string }) => c.from === '+15550004444');
  const record = await request(voice.stack.app)
    .get(`/v1/calls/${summary.id}`)
    .set(bearer(voice.tenant.token));
  const answer = record.body.transcript.find((t: { text: string }) => t.text.startsWith('Of course.'));
  expect(answer).toMatchObject({ role: 'agent', interrupted: false });
  expect(answer.timings.llmFirstTokenAt).toBeGreaterThanOrEqual(answer.timings.speakStartedAt);
  expect(answer.timings.firstFrameAt).toBeGreaterThanOrEqual(answer.timings.llmFirstTokenAt);
  expect(record.body.transcript.map((t: { text: string }) => t.text)).toContain(
    'I would like to book a table for two',
  );
});
