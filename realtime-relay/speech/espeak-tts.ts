/**
 * Offline text-to-speech with espeak-ng, one process per chunk: robotic but instant, dependable and
 * free, for local runs and tests. The text goes in on stdin (never on the command line), the WAV comes
 * back on stdout at 22.05 kHz and is resampled to the telephone's 8 kHz.
 */
import { resample } from '../audio/resample';
import { decodeWav } from '../audio/wav';
import { runProcess } from './child-process';
import type { TextToSpeech, TtsRequest } from './types';

export interface EspeakTtsOptions {
  /** Default `espeak-ng`, looked up on PATH. */
  binary?: string;
  /** Speaking rate (espeak's default is 175). */
  wordsPerMinute?: number;
  /** Guard against a hung synthesiser (default 30 s). */
  timeoutMs?: number;
}

const OUTPUT_RATE = 8_000;
const FALLBACK_VOICE = 'en-us';
/** espeak voice names and variants: "en-us", "en-gb-x-rp", "en-us+f3", "mb-en1". */
const VOICE_ID = /^[A-Za-z0-9][A-Za-z0-9_+-]*$/;

export class EspeakTts implements TextToSpeech {
  readonly name = 'espeak-ng';
  private readonly binary: string;
  private readonly wordsPerMinute: number;
  private readonly timeoutMs: number;

  constructor(opts: EspeakTtsOptions = {}) {
    this.binary = opts.binary ?? 'espeak-ng';
    this.wordsPerMinute = opts.wordsPerMinute ?? 175;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  async synthesize(req: TtsRequest): Promise<Int16Array> {
    req.signal?.throwIfAborted();
    if (!req.text.trim()) return new Int16Array(0);
    // An agent configured with another provider's voice (or a typo) still speaks, in the default voice.
    const voice = VOICE_ID.test(req.voiceId) ? req.voiceId : FALLBACK_VOICE;
    const first = await this.run(req.text, voice, req.signal);
    if (first.audio) return first.audio;
    if (voice === FALLBACK_VOICE) throw new Error(`${this.binary} failed: ${first.error}`);
    const retry = await this.run(req.text, FALLBACK_VOICE, req.signal);
    if (retry.audio) return retry.audio;
    throw new Error(
      `${this.binary} failed with voice ${voice} (${first.error}) and ${FALLBACK_VOICE} (${retry.error})`,
    );
  }

  /** The audio at 8 kHz, or why espeak refused (an unknown voice exits 1 with no output). */
  private async run(
    text: string,
    voice: string,
    signal?: AbortSignal,
  ): Promise<{ audio: Int16Array; error?: undefined } | { audio?: undefined; error: string }> {
    const args = ['-v', voice, '-s', String(this.wordsPerMinute), '--stdin', '--stdout'];
    const { code, stdout, stderr } = await runProcess(this.binary, args, {
      input: text,
      signal,
      timeoutMs: this.timeoutMs,
    });
    if (code !== 0) return { error: `exit ${code}: ${stderr.trim() || '(no output)'}` };
    // Text with nothing to say ("...") yields a bare header or nothing at all.
    if (stdout.length === 0) return { audio: new Int16Array(0) };
    const { sampleRate, channels } = decodeWav(stdout);
    return { audio: resample(channels[0]!, sampleRate, OUTPUT_RATE) };
  }
}
