/**
 * Voice activity detection with endpointing for the caller's audio: the per-frame gate that decides
 * when the caller starts talking (barge-in) and when they have finished a turn (send it to STT).
 *
 * An energy VAD, not Silero: a relay serves hundreds of concurrent calls on two cores, so the gate
 * that runs on every 20 ms frame must cost next to nothing (a sum of squares and one log10 per
 * frame), and Silero's runtime, onnxruntime-node, downloads files in its install script, which breaks
 * offline installs. Comparing each frame's level with an adaptive noise floor (plus an absolute
 * minimum) keeps line noise out; a neural VAD can still sit behind this gate if it is ever needed.
 * The floor starts from the first frame's level: streams start with the line at rest.
 *
 * Times are stream time in ms, derived from the number of samples pushed, so results are
 * deterministic and independent of the wall clock and of how the audio was chunked.
 */

export interface VadOptions {
  sampleRate: number;
  /** Silence after confirmed speech that ends the turn. */
  endpointingMs: number;
  /** Voiced time that makes a start real speech (shorter blips are discarded). */
  minSpeechMs: number;
  /** How far above the noise floor a frame must be to count as voiced (default 10 dB). */
  thresholdDb?: number;
  /** Analysis frame length (default 20 ms, Twilio's media frame). */
  frameMs?: number;
  /**
   * Absolute level below which a frame is never voiced, in dBFS (default -50: μ-law idle bytes and
   * comfort noise sit near -60 dBFS or below; quiet telephone speech is around -40 to -30).
   */
  minLevelDb?: number;
}

export type VadEvent =
  /** First voiced frame after silence (tentative: it may still be discarded). */
  | { type: 'speech_start'; atMs: number }
  /** Voiced frames since speech_start add up to minSpeechMs: a real utterance (use it for barge-in). */
  | { type: 'speech_confirmed'; atMs: number }
  /** Silence of endpointingMs after confirmed speech; atMs is when that silence began. */
  | { type: 'speech_end'; atMs: number; speechStartMs: number }
  /** A start that went silent again before reaching minSpeechMs; atMs is when the blip ended. */
  | { type: 'speech_discarded'; atMs: number };

const DEFAULT_THRESHOLD_DB = 10;
const DEFAULT_FRAME_MS = 20;
const DEFAULT_MIN_LEVEL_DB = -50;
/** Once speaking, a frame stays voiced this much below the onset threshold (word tails are soft). */
const HYSTERESIS_DB = 3;
/** A tentative start is discarded after this much silence (or endpointingMs, if shorter). */
const DISCARD_GAP_MS = 200;
/** Floor of the level scale: digital silence (all zeros) reads as this many dBFS. */
const SILENCE_DB = -100;
/** Time constants of the noise floor's adaptation, in ms (see analyse()). */
const FLOOR_FALL_MS = 40;
const FLOOR_RISE_QUIET_MS = 1_000;
const FLOOR_RISE_STATIONARY_MS = 1_000;
const FLOOR_RISE_VOICED_MS = 10_000;
/** Level statistics (mean and variance of the frame level) over about this long. */
const STATS_MS = 200;
/** A level steadier than this (standard deviation, dB) is a noise, not speech: speech fluctuates. */
const STATIONARY_DB = 2.5;
const FULL_SCALE_SQ = 32768 * 32768;

type State = 'silence' | 'tentative' | 'confirmed';

function resolveOptions(opts: VadOptions): { full: Required<VadOptions>; frameSamples: number } {
  const full: Required<VadOptions> = {
    sampleRate: opts.sampleRate,
    endpointingMs: opts.endpointingMs,
    minSpeechMs: opts.minSpeechMs,
    thresholdDb: opts.thresholdDb ?? DEFAULT_THRESHOLD_DB,
    frameMs: opts.frameMs ?? DEFAULT_FRAME_MS,
    minLevelDb: opts.minLevelDb ?? DEFAULT_MIN_LEVEL_DB,
  };
  const frameSamples = Math.round((full.sampleRate * full.frameMs) / 1000);
  if (!(full.sampleRate > 0) || !(frameSamples >= 1)) {
    throw new RangeError(`EnergyVad: invalid sampleRate/frameMs (${full.sampleRate} Hz, ${full.frameMs} ms)`);
  }
  if (!(full.endpointingMs >= 0) || !(full.minSpeechMs >= 0)) {
    throw new RangeError('EnergyVad: endpointingMs and minSpeechMs must be non-negative');
  }
  if (!Number.isFinite(full.thresholdDb) || !Number.isFinite(full.minLevelDb)) {
    throw new RangeError('EnergyVad: thresholdDb and minLevelDb must be finite');
  }
  return { full, frameSamples };
}

/** Per-frame smoothing factor of a first-order follower with time constant `tauMs`. */
function perFrame(tauMs: number, frameMs: number): number {
  return 1 - Math.exp(-frameMs / tauMs);
}

export class EnergyVad {
  private opts!: Required<VadOptions>;
  private frameSamples = 0;
  private fallAlpha = 0;
  private riseQuietAlpha = 0;
  private riseVoicedAlpha = 0;
  private riseStationaryAlpha = 0;
  private statsAlpha = 0;

  // Re-framing: samples of the current, partial analysis frame.
  private frameFill = 0;
  private frameSumSq = 0;
  /** Stream time at the start of the current analysis frame, in ms (carried across rate changes). */
  private baseMs = 0;
  private framesSinceBase = 0;

  /** Noise floor in dBFS; NaN until the first frame, whose level it starts from. */
  private floorDb = NaN;
  private levelMeanDb = 0;
  private levelVar = 0;
  private state: State = 'silence';
  private speechStartMs = 0;
  private voicedMs = 0;
  /** Start of the current run of silence while (tentatively) speaking, or -1. */
  private silenceStartMs = -1;

  constructor(opts: VadOptions) {
    this.configure(opts);
  }

  /** Whether the caller is talking: from speech_start until speech_end or speech_discarded. */
  get speaking(): boolean {
    return this.state !== 'silence';
  }

  /** Changes tuning mid-stream (e.g. a node's endpointing); a new rate or frame size re-frames. */
  setOptions(p: Partial<VadOptions>): void {
    const next: VadOptions = { ...this.opts };
    for (const [key, value] of Object.entries(p) as [keyof VadOptions, number | undefined][]) {
      if (value !== undefined) next[key] = value;
    }
    resolveOptions(next); // validate before changing anything
    const reframe = next.sampleRate !== this.opts.sampleRate || next.frameMs !== this.opts.frameMs;
    if (reframe) {
      // Drop the partial frame (at most one frame of audio) and keep stream time continuous.
      this.baseMs = this.frameStartMs() + (this.frameFill * 1000) / this.opts.sampleRate;
      this.framesSinceBase = 0;
      this.frameFill = 0;
      this.frameSumSq = 0;
    }
    this.configure(next);
  }

  /** Back to the initial state: stream time 0, noise floor forgotten, not speaking. */
  reset(): void {
    this.frameFill = 0;
    this.frameSumSq = 0;
    this.baseMs = 0;
    this.framesSinceBase = 0;
    this.floorDb = NaN;
    this.levelMeanDb = 0;
    this.levelVar = 0;
    this.state = 'silence';
    this.speechStartMs = 0;
    this.voicedMs = 0;
    this.silenceStartMs = -1;
  }

  /** Feeds audio of any length; returns the events of the frames it completed, in order. */
  push(frame: Int16Array): VadEvent[] {
    const events: VadEvent[] = [];
    const size = this.frameSamples;
    let fill = this.frameFill;
    let sumSq = this.frameSumSq;
    for (let i = 0; i < frame.length; i++) {
      const s = frame[i]!;
      sumSq += s * s;
      if (++fill === size) {
        this.analyse(sumSq / size, events);
        fill = 0;
        sumSq = 0;
      }
    }
    this.frameFill = fill;
    this.frameSumSq = sumSq;
    return events;
  }

  private configure(opts: VadOptions): void {
    const { full, frameSamples } = resolveOptions(opts);
    this.opts = full;
    this.frameSamples = frameSamples;
    // The frame's true duration (the rounded sample count), so times stay exact at odd rates.
    const frameMs = (frameSamples * 1000) / full.sampleRate;
    this.fallAlpha = perFrame(FLOOR_FALL_MS, frameMs);
    this.riseQuietAlpha = perFrame(FLOOR_RISE_QUIET_MS, frameMs);
    this.riseVoicedAlpha = perFrame(FLOOR_RISE_VOICED_MS, frameMs);
    this.riseStationaryAlpha = perFrame(FLOOR_RISE_STATIONARY_MS, frameMs);
    this.statsAlpha = perFrame(STATS_MS, frameMs);
  }

  private frameDurationMs(): number {
    return (this.frameSamples * 1000) / this.opts.sampleRate;
  }

  private frameStartMs(): number {
    return this.baseMs + this.framesSinceBase * this.frameDurationMs();
  }

  private analyse(meanSq: number, events: VadEvent[]): void {
    const frameMs = this.frameDurationMs();
    const startMs = this.frameStartMs();
    const endMs = startMs + frameMs;
    this.framesSinceBase++;

    const levelDb = meanSq > 0 ? Math.max(SILENCE_DB, 10 * Math.log10(meanSq / FULL_SCALE_SQ)) : SILENCE_DB;
    if (Number.isNaN(this.floorDb)) {
      this.floorDb = levelDb;
      this.levelMeanDb = levelDb;
    }
    const deviation = levelDb - this.levelMeanDb;
    this.levelMeanDb += deviation * this.statsAlpha;
    this.levelVar += (deviation * deviation - this.levelVar) * this.statsAlpha;

    const onset = Math.max(this.floorDb + this.opts.thresholdDb, this.opts.minLevelDb);
    const threshold = this.state === 'silence' ? onset : onset - HYSTERESIS_DB;
    const voiced = levelDb > threshold;

    // Noise floor: follows quieter frames within a few frames (the dips between words are line
    // noise) and louder unvoiced ones within about a second. Under "speech" it rises slowly, unless
    // the level is steady: speech fluctuates syllable by syllable, a new noise (a fan, a car, a
    // noisy line) does not, and must stop counting as speech within seconds.
    let alpha: number;
    if (levelDb < this.floorDb) alpha = this.fallAlpha;
    else if (!voiced) alpha = this.riseQuietAlpha;
    else if (this.levelVar < STATIONARY_DB * STATIONARY_DB) alpha = this.riseStationaryAlpha;
    else alpha = this.riseVoicedAlpha;
    this.floorDb += (levelDb - this.floorDb) * alpha;

    switch (this.state) {
      case 'silence':
        if (voiced) {
          this.state = 'tentative';
          this.speechStartMs = startMs;
          this.voicedMs = 0;
          this.silenceStartMs = -1;
          events.push({ type: 'speech_start', atMs: startMs });
          this.countVoiced(frameMs, endMs, events);
        }
        return;
      case 'tentative':
        if (voiced) {
          this.silenceStartMs = -1;
          this.countVoiced(frameMs, endMs, events);
        } else {
          if (this.silenceStartMs < 0) this.silenceStartMs = startMs;
          if (endMs - this.silenceStartMs >= Math.min(DISCARD_GAP_MS, this.opts.endpointingMs)) {
            events.push({ type: 'speech_discarded', atMs: this.silenceStartMs });
            this.state = 'silence';
            this.silenceStartMs = -1;
          }
        }
        return;
      case 'confirmed':
        if (voiced) {
          this.silenceStartMs = -1;
        } else {
          if (this.silenceStartMs < 0) this.silenceStartMs = startMs;
          if (endMs - this.silenceStartMs >= this.opts.endpointingMs) {
            events.push({ type: 'speech_end', atMs: this.silenceStartMs, speechStartMs: this.speechStartMs });
            this.state = 'silence';
            this.silenceStartMs = -1;
          }
        }
        return;
    }
  }

  private countVoiced(frameMs: number, endMs: number, events: VadEvent[]): void {
    this.voicedMs += frameMs;
    if (this.voicedMs >= this.opts.minSpeechMs) {
      this.state = 'confirmed';
      events.push({ type: 'speech_confirmed', atMs: endMs });
    }
  }
}
