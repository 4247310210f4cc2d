/**
 * Production speech stages on OpenAI's audio API: transcription of one endpointed utterance (the
 * listening hints become the prompt that biases recognition) and speech synthesis as raw 24 kHz PCM,
 * resampled to the telephone's 8 kHz.
 */
import { toFile, type OpenAI } from 'openai';
import { resample } from '../audio/resample';
import { encodeWav } from '../audio/wav';
import type { SpeechToText, SttRequest, SttResult, TextToSpeech, TtsRequest } from './types';

export interface OpenAiSpeechOptions {
  client: OpenAI;
  model?: string;
}

export class OpenAiStt implements SpeechToText {
  readonly name = 'openai';
  private readonly client: OpenAI;
  private readonly model: string;

  constructor(opts: OpenAiSpeechOptions) {
    this.client = opts.client;
    this.model = opts.model ?? 'gpt-4o-mini-transcribe';
  }

  async transcribe(req: SttRequest): Promise<SttResult> {
    req.signal?.throwIfAborted();
    if (req.audio.length === 0) return { text: '', provider: this.name, grammar: false };
    const file = await toFile(encodeWav([req.audio], req.sampleRate), 'utterance.wav', { type: 'audio/wav' });
    // The prompt biases the model towards the words this turn expects (choices, intents' phrases).
    const phrases = [...(req.hints?.choices ?? []), ...(req.hints?.intentPhrases ?? [])];
    const language = req.language.split(/[-_]/)[0]!.toLowerCase();
    const result = await this.client.audio.transcriptions.create(
      {
        file,
        model: this.model,
        ...(/^[a-z]{2}$/.test(language) ? { language } : {}),
        ...(phrases.length > 0 ? { prompt: phrases.join(', ') } : {}),
      },
      { signal: req.signal },
    );
    return { text: result.text.trim(), provider: this.name, grammar: false };
  }
}

/** OpenAI's built-in voices; any other voiceId (an espeak voice, a typo) falls back to alloy. */
const OPENAI_VOICES = new Set([
  'alloy',
  'ash',
  'ballad',
  'cedar',
  'coral',
  'echo',
  'fable',
  'marin',
  'nova',
  'onyx',
  'sage',
  'shimmer',
  'verse',
]);
/** `response_format: 'pcm'` is 24 kHz, 16-bit little-endian, mono. */
const OPENAI_PCM_RATE = 24_000;
const OUTPUT_RATE = 8_000;

export class OpenAiTts implements TextToSpeech {
  readonly name = 'openai';
  private readonly client: OpenAI;
  private readonly model: string;

  constructor(opts: OpenAiSpeechOptions) {
    this.client = opts.client;
    this.model = opts.model ?? 'gpt-4o-mini-tts';
  }

  async synthesize(req: TtsRequest): Promise<Int16Array> {
    req.signal?.throwIfAborted();
    if (!req.text.trim()) return new Int16Array(0);
    const voice = OPENAI_VOICES.has(req.voiceId) ? req.voiceId : 'alloy';
    const response = await this.client.audio.speech.create(
      { model: this.model, voice, input: req.text, response_format: 'pcm' },
      { signal: req.signal },
    );
    const bytes = Buffer.from(await response.arrayBuffer());
    // Copy into an aligned array (a Buffer's offset into its pool need not be even); drop an odd byte.
    const pcm = new Int16Array(bytes.length >> 1);
    for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(i * 2);
    return resample(pcm, OPENAI_PCM_RATE, OUTPUT_RATE);
  }
}
