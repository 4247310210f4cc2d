/**
 * One live call's audio in the relay: the pipeline between a media transport (Twilio Media Streams,
 * or a browser test call) and the call workflow, exactly the turn protocol of design.md.
 *
 *   caller audio → VAD/endpointing → STT (tuned by the workflow's listening hints) → `userTurn`
 *   `speak` (activity run here) → LLM tokens or fixed text → sentence chunks → TTS → audio + a
 *   named mark per small chunk; echoed marks say what the caller actually heard
 *   caller speech while the agent talks (≥ the barge-in minimum) → `clear`, abort the reply
 *
 * Wall-clock timestamps (epoch ms, this process's clock) are taken at each stage so one turn's
 * latency can be broken down: speech end, STT final, update sent, speak started, LLM first token,
 * TTS first audio, first frame sent.
 */
import type { Client } from '@temporalio/client';
import { WorkflowUpdateStage } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ListeningHints } from '../contracts/agent-engine';
import {
  dtmfSignal,
  hangupSignal,
  userTurnUpdate,
  userTurnUpdateId,
  type HoldMediaResult,
  type MediaSettings,
  type SpeakInput,
  type SpeakResult,
} from '../contracts/call';
import type { LlmResult } from '../contracts/llm';
import { streamChat, type LlmClients } from '../activities/llm';
import type { Logger } from '../lib/logger';
import { activeCalls, frameJitter, turnLatency } from '../lib/metrics';
import type { StreamTokenClaims } from '../lib/stream-token';
import { EnergyVad, type VadEvent } from './audio/vad';
import { CallRecorder } from './recorder';
import { SentenceChunker } from './speech/sentence-chunker';
import type { SpeechToText, TextToSpeech } from './speech/types';

/** The wire side of a call: Twilio Media Streams or the browser test-call socket. */
export interface MediaTransport {
  readonly channel: 'voice' | 'web';
  /** 8 kHz mono PCM16; the transport encodes it for its wire. */
  sendAudio(pcm: Int16Array): void;
  sendMark(name: string): void;
  clear(): void;
  /** Live events for a browser client (transcript, turn latency); Twilio gets none. */
  notify?(event: Record<string, unknown>): void;
  close(code: number, reason: string): void;
}

export interface SpeechProviders {
  stt(provider: 'local' | 'openai'): SpeechToText;
  tts(provider: 'local' | 'openai'): TextToSpeech;
}

export interface SessionDeps {
  instanceId: string;
  temporal: Client;
  speech: SpeechProviders;
  llmClients: LlmClients;
  recordingsDir: string;
  logger: Logger;
}

export const SAMPLE_RATE = 8000;
/** Audio per mark: small enough that "what was heard" is precise to a word or two. */
const CHUNK_MS = 240;
const PRE_ROLL_MS = 200;
const SETTINGS_WAIT_MS = 3_000;
const LLM_ATTEMPTS = 3;

/** Provider trouble worth another try (rate limits, 5xx, dropped connections), not a bad request. */
function isRetryableLlmError(err: unknown): boolean {
  if (err instanceof ApplicationFailure) return !err.nonRetryable;
  return true;
}
/** How long after its audio should have played a missing mark echo stops being waited for. */
const MARK_GRACE_MS = 5_000;
/** Settings until the workflow's holdMedia brings the agent's own. */
export const DEFAULT_MEDIA_SETTINGS: MediaSettings = {
  language: 'en-US',
  voice: { provider: 'local', voiceId: 'en-us' },
  stt: { provider: 'local' },
  tts: { provider: 'local' },
  endpointingMs: 700,
  bargeInMinSpeechMs: 250,
  record: false,
};

interface CallerTurnTimings {
  speechStartAt: number;
  speechEndAt: number;
  endpointedAt: number;
  sttStartedAt: number;
  sttFinalAt: number;
  updateSentAt: number;
  endpointingMs: number;
}

export class CallSession {
  readonly callId: string;
  readonly tenantId: string;
  readonly workflowId: string;
  settings: MediaSettings = DEFAULT_MEDIA_SETTINGS;
  private hints: ListeningHints | undefined;
  private readonly vad: EnergyVad;
  private preRoll: Int16Array[] = [];
  private preRollSamples = 0;
  private utterance: Int16Array[] | undefined;
  private speechStartAt = 0;
  /** Caller audio received so far, in samples: the stream's clock (VAD times are on it). */
  private samplesIn = 0;
  private nextTurnId = 1;
  /** STT and update submission run one utterance at a time, so turn ids reach the workflow in order. */
  private turnChain: Promise<void> = Promise.resolve();
  private readonly callerTimings = new Map<number, CallerTurnTimings>();
  private playback: Playback | undefined;
  private recorder: CallRecorder | undefined;
  private recording: { path: string; seconds: number } | undefined;
  private endedBy: HoldMediaResult['endedBy'] | undefined;
  private readonly endedPromise: Promise<void>;
  private resolveEnded!: () => void;
  /** The agent's own settings (from holdMedia); until then an utterance waits rather than use defaults. */
  private readonly settingsApplied: Promise<void>;
  private resolveSettings!: () => void;
  readonly stats = { framesIn: 0, malformed: 0, outOfOrder: 0 };
  /** Processing time of each inbound frame (ms), sampled for the relay's own latency figures. */
  readonly frameCostMs: number[] = [];
  /** Arrival (performance.now()) of the previous inbound frame, for the jitter histogram. */
  private lastFrameAt = -1;

  constructor(
    claims: StreamTokenClaims,
    readonly transport: MediaTransport,
    private readonly deps: SessionDeps,
  ) {
    this.callId = claims.callId;
    this.tenantId = claims.tenantId;
    this.workflowId = claims.workflowId;
    this.vad = new EnergyVad({
      sampleRate: SAMPLE_RATE,
      endpointingMs: this.settings.endpointingMs,
      minSpeechMs: this.minSpeechMs(),
    });
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
    this.settingsApplied = new Promise((resolve) => (this.resolveSettings = resolve));
    activeCalls.inc({ channel: transport.channel });
  }

  get ended(): boolean {
    return this.endedBy !== undefined;
  }

  whenEnded(): Promise<void> {
    return this.endedPromise;
  }

  result(): HoldMediaResult {
    return { endedBy: this.endedBy ?? 'call_ended', recording: this.recording, stats: { ...this.stats } };
  }

  private log(): Logger {
    return this.deps.logger.child({
      callId: this.callId,
      tenantId: this.tenantId,
      workflowId: this.workflowId,
    });
  }

  private minSpeechMs(): number {
    return this.settings.bargeInMinSpeechMs > 0 ? this.settings.bargeInMinSpeechMs : 250;
  }

  /** The agent's own settings arrive with the workflow's holdMedia. */
  applySettings(settings: MediaSettings): void {
    this.settings = settings;
    this.resolveSettings();
    this.vad.setOptions({ endpointingMs: settings.endpointingMs, minSpeechMs: this.minSpeechMs() });
    if (settings.record && !this.recorder && !this.ended) {
      this.recorder = new CallRecorder(this.deps.recordingsDir, `${this.tenantId}/${this.callId}.wav`);
    }
  }

  // --- inbound ------------------------------------------------------------------------------------

  /** One inbound frame of caller audio, 8 kHz PCM16. */
  onAudio(frame: Int16Array): void {
    if (this.ended) return;
    const started = performance.now();
    // Jitter: how far this frame's arrival strays from the previous one plus its duration (20 ms).
    if (this.lastFrameAt >= 0)
      frameJitter.observe(Math.abs(started - this.lastFrameAt - (frame.length * 1000) / SAMPLE_RATE) / 1000);
    this.lastFrameAt = started;
    this.stats.framesIn++;
    this.recorder?.caller(frame);
    this.samplesIn += frame.length;
    if (this.utterance) this.utterance.push(frame);
    else this.keepPreRoll(frame);
    for (const event of this.vad.push(frame)) this.onVad(event);
    if (this.stats.framesIn % 10 === 0) {
      this.frameCostMs.push(performance.now() - started);
      if (this.frameCostMs.length > 2000) this.frameCostMs.splice(0, 1000);
    }
  }

  private keepPreRoll(frame: Int16Array): void {
    this.preRoll.push(frame);
    this.preRollSamples += frame.length;
    while (this.preRollSamples - this.preRoll[0]!.length >= (PRE_ROLL_MS * SAMPLE_RATE) / 1000) {
      this.preRollSamples -= this.preRoll.shift()!.length;
    }
  }

  private onVad(event: VadEvent): void {
    const now = Date.now();
    switch (event.type) {
      case 'speech_start':
        this.utterance = [...this.preRoll];
        this.preRoll = [];
        this.preRollSamples = 0;
        this.speechStartAt = now;
        break;
      case 'speech_confirmed':
        if (this.playback && !this.playback.finished && this.settings.bargeInMinSpeechMs > 0) {
          this.bargeIn(now);
        }
        break;
      case 'speech_discarded':
        this.utterance = undefined;
        break;
      case 'speech_end': {
        const frames = this.utterance ?? [];
        this.utterance = undefined;
        // The stream-time distance between the end of speech and now is the endpointing silence.
        const silenceMs = Math.max(0, (this.samplesIn * 1000) / SAMPLE_RATE - event.atMs);
        const audio = concat(frames, Math.round((silenceMs * SAMPLE_RATE) / 1000));
        this.enqueueUtterance(audio, {
          speechStartAt: this.speechStartAt,
          speechEndAt: now - silenceMs,
          endpointedAt: now,
          endpointingMs: silenceMs,
        });
        break;
      }
    }
  }

  private bargeIn(at: number): void {
    const playback = this.playback;
    if (!playback) return;
    this.transport.clear();
    this.recorder?.clearAgent();
    playback.interrupt(at);
    this.log().info({ turnId: playback.turnId }, 'barge-in: caller spoke over the agent');
    this.transport.notify?.({ event: 'barge_in', turnId: playback.turnId, at });
  }

  private enqueueUtterance(
    audio: Int16Array,
    timing: Pick<CallerTurnTimings, 'speechStartAt' | 'speechEndAt' | 'endpointedAt' | 'endpointingMs'>,
  ): void {
    this.turnChain = this.turnChain
      .then(() => this.submitUtterance(audio, timing))
      .catch((err: unknown) => this.log().warn({ err }, 'caller turn could not be processed'));
  }

  private async submitUtterance(
    audio: Int16Array,
    timing: Pick<CallerTurnTimings, 'speechStartAt' | 'speechEndAt' | 'endpointedAt' | 'endpointingMs'>,
  ): Promise<void> {
    if (this.ended) return;
    // Speech before the workflow's settings arrived (a fast "hello" over the greeting) is transcribed
    // by the agent's own STT provider, not the defaults; bounded, should holdMedia never come.
    await Promise.race([this.settingsApplied, new Promise((r) => setTimeout(r, SETTINGS_WAIT_MS))]);
    if (this.ended) return;
    const sttStartedAt = Date.now();
    const stt = this.deps.speech.stt(this.settings.stt.provider);
    const heard = await stt.transcribe({
      audio,
      sampleRate: SAMPLE_RATE,
      language: this.settings.language,
      hints: this.hints,
    });
    const sttFinalAt = Date.now();
    const text = heard.text.trim();
    if (!text || this.ended) {
      this.log().debug({ ms: sttFinalAt - sttStartedAt }, 'utterance without recognisable words');
      return;
    }
    const turnId = this.nextTurnId++;
    const updateSentAt = Date.now();
    const timings: CallerTurnTimings = { ...timing, sttStartedAt, sttFinalAt, updateSentAt };
    this.callerTimings.set(turnId, timings);
    this.transport.notify?.({ event: 'transcript', role: 'caller', turnId, text });
    const handle = this.deps.temporal.workflow.getHandle(this.workflowId);
    // Accepted (validated and admitted) before the next utterance is submitted: ids stay in order.
    const update = await handle.startUpdate(userTurnUpdate, {
      args: [{ turnId, text, confidence: heard.confidence, timings: { ...timings } }],
      updateId: userTurnUpdateId(this.callId, turnId),
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    // The reply arrives once it has been spoken; the next utterance need not wait for it.
    void update.result().then(
      (reply) => {
        this.hints = reply.hints;
        if (reply.ended) this.log().info({ disposition: reply.disposition }, 'the agent ended the call');
      },
      (err: unknown) => this.log().warn({ err, turnId }, 'userTurn update failed'),
    );
  }

  onDtmf(digit: string): void {
    if (this.ended) return;
    this.deps.temporal.workflow
      .getHandle(this.workflowId)
      .signal(dtmfSignal, { digits: digit })
      .catch((err: unknown) => this.log().warn({ err }, 'dtmf signal failed'));
  }

  onMarkEchoed(name: string): void {
    this.playback?.markEchoed(name);
  }

  // --- speaking -----------------------------------------------------------------------------------

  async speak(input: SpeakInput, cancelled: AbortSignal, heartbeat: () => void): Promise<SpeakResult> {
    if (input.hints) this.hints = input.hints;
    // One reply at a time: a new one waits for (or, after a barge-in, replaces) the last.
    await this.playback?.done;
    const playback = new Playback(
      this,
      input,
      this.deps,
      cancelled,
      heartbeat,
      this.callerTimings.get(input.turnId),
    );
    this.playback = playback;
    try {
      const result = await playback.run();
      this.transport.notify?.({
        event: 'transcript',
        role: 'agent',
        turnId: input.turnId,
        text: result.heardText,
        interrupted: result.interrupted,
      });
      this.transport.notify?.({ event: 'turn', turnId: input.turnId, timings: result.timings });
      return result;
    } finally {
      if (this.playback === playback) this.playback = undefined;
    }
  }

  /** Sends reply audio to the wire and the recording. */
  playOut(audio: Int16Array): void {
    this.transport.sendAudio(audio);
    this.recorder?.agent(audio);
  }

  // --- ending -------------------------------------------------------------------------------------

  /** The workflow is done with the call: let the last words play, then close the stream. */
  async release(reason: string, boundMs = 15_000): Promise<void> {
    if (this.ended) return;
    const playing = this.playback?.done;
    if (playing) await Promise.race([playing, new Promise((r) => setTimeout(r, boundMs))]);
    this.transport.close(1000, `call ended: ${reason}`.slice(0, 120));
    this.end('call_ended');
  }

  /** The stream is over (Twilio `stop`, socket closed, relay shutting down, or the call ended). */
  end(endedBy: HoldMediaResult['endedBy']): void {
    if (this.ended) return;
    this.endedBy = endedBy;
    activeCalls.dec({ channel: this.transport.channel });
    this.playback?.interrupt(Date.now(), 'stream ended');
    if (this.recorder) {
      try {
        this.recording = this.recorder.close();
      } catch (err) {
        this.log().error({ err }, 'recording could not be finished');
      }
    }
    if (endedBy === 'stop' || endedBy === 'socket_closed') {
      // The caller is gone; the workflow also learns it from holdMedia, but a signal is immediate.
      this.deps.temporal.workflow
        .getHandle(this.workflowId)
        .signal(hangupSignal, { reason: endedBy === 'stop' ? 'caller hung up' : 'media stream closed' })
        .catch((err: unknown) => this.log().debug({ err }, 'hangup signal not delivered'));
    }
    this.resolveEnded();
  }
}

/** One `speak`: text (fixed or streamed from the LLM) → sentences → TTS → chunks with marks. */
class Playback {
  readonly turnId: number;
  finished = false;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private readonly abort = new AbortController();
  private interruptedAt: number | undefined;
  private readonly pending = new Map<string, { words: string[]; index: number }>();
  private readonly heard: { index: number; words: string[] }[] = [];
  private chunkIndex = 0;
  private allSent = false;
  /** When the audio sent so far will have finished playing (epoch ms), at real-time playback. */
  private playedBy = 0;
  private wake: (() => void) | undefined;
  private readonly timings: Record<string, number> = {};
  private readonly name = Math.random().toString(36).slice(2, 8);

  constructor(
    private readonly session: CallSession,
    private readonly input: SpeakInput,
    private readonly deps: SessionDeps,
    cancelled: AbortSignal,
    private readonly heartbeat: () => void,
    callerTimings: CallerTurnTimings | undefined,
  ) {
    this.turnId = input.turnId;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    if (callerTimings) Object.assign(this.timings, callerTimings);
    if (cancelled.aborted) this.interrupt(Date.now(), 'activity cancelled');
    cancelled.addEventListener('abort', () => this.interrupt(Date.now(), 'activity cancelled'), {
      once: true,
    });
  }

  interrupt(at: number, why = 'barge-in'): void {
    if (this.finished || this.interruptedAt !== undefined) return;
    this.interruptedAt = at;
    this.timings.interruptedAt = at;
    this.abort.abort(new DOMException(`speech interrupted (${why})`, 'AbortError'));
    this.wake?.();
  }

  markEchoed(name: string): void {
    const chunk = this.pending.get(name);
    if (!chunk) return;
    this.pending.delete(name);
    // After a `clear`, Twilio echoes every pending mark at once: those were cleared, not played.
    if (this.interruptedAt === undefined) this.heard.push(chunk);
    this.wake?.();
  }

  async run(): Promise<SpeakResult> {
    const startedAt = Date.now();
    this.timings.speakStartedAt = startedAt;
    const settings = this.session.settings;
    const tts = this.deps.speech.tts(settings.tts.provider);
    const chunker = new SentenceChunker();
    const sentences: string[] = [];
    let producing = true;
    let notify: (() => void) | undefined;
    const push = (parts: string[]) => {
      if (parts.length === 0) return;
      sentences.push(...parts);
      notify?.();
    };
    let llm: LlmResult | undefined;
    let generated = '';

    const produce = async () => {
      try {
        if (this.input.llm) {
          // `speak` on the relay is never retried by Temporal (a retry would replay audio), so a
          // provider failure before the first token is retried here, where nothing was said yet.
          for (let attempt = 1; ; attempt++) {
            try {
              llm = await streamChat(
                this.deps.llmClients,
                this.input.llm,
                (delta) => {
                  this.timings.llmFirstTokenAt ??= Date.now();
                  generated += delta;
                  push(chunker.push(delta));
                  this.heartbeat();
                },
                this.abort.signal,
              );
              generated = llm.content;
              break;
            } catch (err) {
              if (this.interruptedAt !== undefined) break;
              if (generated !== '' || attempt >= LLM_ATTEMPTS || !isRetryableLlmError(err)) throw err;
              await new Promise((r) => setTimeout(r, 250 * 3 ** (attempt - 1)));
              this.heartbeat();
            }
          }
        } else {
          generated = this.input.text ?? '';
          push(chunker.push(generated));
        }
        push(chunker.flush());
      } finally {
        producing = false;
        notify?.();
      }
    };

    const consume = async () => {
      for (;;) {
        if (this.interruptedAt !== undefined) return;
        const sentence = sentences.shift();
        if (sentence === undefined) {
          if (!producing) return;
          await new Promise<void>((resolve) => (notify = resolve));
          notify = undefined;
          continue;
        }
        const ttsStartedAt = Date.now();
        let audio: Int16Array;
        try {
          audio = await tts.synthesize({
            text: sentence,
            voiceId: settings.voice.voiceId,
            language: settings.language,
            signal: this.abort.signal,
          });
        } catch (err) {
          if (this.interruptedAt !== undefined) return;
          throw err;
        }
        if (this.interruptedAt !== undefined) return;
        if (this.timings.ttsFirstAudioAt === undefined) {
          this.timings.ttsFirstAudioAt = Date.now();
          this.timings.ttsFirstMs = this.timings.ttsFirstAudioAt - ttsStartedAt;
        }
        this.send(sentence, audio);
        this.heartbeat();
      }
    };

    try {
      await Promise.all([produce(), consume()]);
      this.allSent = true;
      // Played when every mark has come back (or the caller interrupted, or the stream ended).
      while (this.pending.size > 0 && this.interruptedAt === undefined && !this.session.ended) {
        if (Date.now() > this.playedBy + MARK_GRACE_MS) {
          // A client that plays audio but never echoes marks: by now it has played everything.
          for (const [name, chunk] of this.pending) {
            this.heard.push(chunk);
            this.pending.delete(name);
          }
          break;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 1000).unref();
        });
        this.wake = undefined;
        this.heartbeat();
      }
    } finally {
      this.finished = true;
      this.timings.speakEndedAt = Date.now();
      this.resolveDone();
    }
    const callerGone = this.session.ended;
    if (callerGone && this.interruptedAt === undefined) this.interruptedAt = Date.now();

    // Interrupted when some of the reply never reached the caller (echoes after a clear do not count).
    const interrupted =
      this.interruptedAt !== undefined && (this.heard.length < this.chunkIndex || !this.allSent);
    const heardText = this.heard
      .sort((a, b) => a.index - b.index)
      .flatMap((c) => c.words)
      .join(' ');
    const text = generated.trim();
    this.addDerivedTimings();
    return {
      text,
      heardText: interrupted ? heardText : text,
      interrupted,
      ...(callerGone ? { callerGone } : {}),
      llm: this.input.llm
        ? (llm ?? {
            content: generated,
            toolCalls: [],
            finishReason: 'interrupted',
            usage: { promptTokens: 0, completionTokens: 0 },
            timings: { firstTokenMs: null, totalMs: Date.now() - startedAt },
          })
        : undefined,
      timings: this.timings,
    };
  }

  /** Splits one sentence's audio into small chunks, each followed by a mark naming it. */
  private send(sentence: string, audio: Int16Array): void {
    const words = sentence.split(/\s+/).filter(Boolean);
    const chunkSamples = (CHUNK_MS * SAMPLE_RATE) / 1000;
    const chunks = Math.max(1, Math.ceil(audio.length / chunkSamples));
    for (let i = 0; i < chunks; i++) {
      const piece = audio.subarray(i * chunkSamples, Math.min(audio.length, (i + 1) * chunkSamples));
      const from = Math.floor((i * words.length) / chunks);
      const to = Math.floor(((i + 1) * words.length) / chunks);
      const name = `t${this.turnId}-${this.name}-c${this.chunkIndex}`;
      this.pending.set(name, { words: words.slice(from, to), index: this.chunkIndex });
      this.chunkIndex++;
      this.session.playOut(piece);
      this.timings.firstFrameAt ??= Date.now();
      // Playback is sequential: this chunk ends after everything queued before it.
      this.playedBy = Math.max(this.playedBy, Date.now()) + (piece.length * 1000) / SAMPLE_RATE;
      this.session.transport.sendMark(name);
    }
  }

  /** Durations between the stages, for the calls API and the latency chart. */
  private addDerivedTimings(): void {
    const t = this.timings;
    const span = (from: string, to: string) =>
      t[from] !== undefined && t[to] !== undefined ? Math.max(0, t[to] - t[from]) : undefined;
    const derived: Record<string, number | undefined> = {
      sttMs: span('sttStartedAt', 'sttFinalAt'),
      updateToSpeakMs: span('updateSentAt', 'speakStartedAt'),
      llmFirstTokenMs: span('speakStartedAt', 'llmFirstTokenAt'),
      speechEndToFirstFrameMs: span('speechEndAt', 'firstFrameAt'),
      endpointedToFirstFrameMs: span('endpointedAt', 'firstFrameAt'),
    };
    for (const [k, v] of Object.entries(derived)) if (v !== undefined) t[k] = v;
    if (derived.sttMs !== undefined) turnLatency.observe({ stage: 'stt' }, derived.sttMs / 1000);
    if (derived.updateToSpeakMs !== undefined)
      turnLatency.observe({ stage: 'update_to_speak' }, derived.updateToSpeakMs / 1000);
    if (derived.llmFirstTokenMs !== undefined)
      turnLatency.observe({ stage: 'llm_first_token' }, derived.llmFirstTokenMs / 1000);
    if (derived.endpointedToFirstFrameMs !== undefined)
      turnLatency.observe({ stage: 'endpointed_to_first_frame' }, derived.endpointedToFirstFrameMs / 1000);
  }
}

function concat(frames: Int16Array[], dropTailSamples: number): Int16Array {
  const total = frames.reduce((n, f) => n + f.length, 0);
  const keep = Math.max(0, total - Math.max(0, dropTailSamples - SAMPLE_RATE / 10));
  const out = new Int16Array(keep);
  let at = 0;
  for (const f of frames) {
    if (at >= keep) break;
    const take = Math.min(f.length, keep - at);
    out.set(f.subarray(0, take), at);
    at += take;
  }
  return out;
}
