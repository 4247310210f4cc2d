/**
 * The relay's speech providers, chosen per agent: 'local' (pocketsphinx + espeak-ng, offline) or
 * 'openai'. Each engine is created once and shared by every call the relay serves.
 */
import type { OpenAI } from 'openai';
import { EspeakTts } from './espeak-tts';
import { OpenAiStt, OpenAiTts } from './openai-speech';
import { PocketsphinxStt } from './pocketsphinx-stt';
import type { SpeechToText, TextToSpeech } from './types';

export type SpeechProvider = 'local' | 'openai';

export interface SpeechProviders {
  stt(provider: SpeechProvider): SpeechToText;
  tts(provider: SpeechProvider): TextToSpeech;
}

export function createSpeechProviders(opts: {
  pocketsphinxModelDir: string;
  openai?: OpenAI;
}): SpeechProviders {
  const localStt = new PocketsphinxStt({ modelDir: opts.pocketsphinxModelDir });
  const localTts = new EspeakTts();
  const openaiStt = opts.openai ? new OpenAiStt({ client: opts.openai }) : undefined;
  const openaiTts = opts.openai ? new OpenAiTts({ client: opts.openai }) : undefined;
  const missingKey = (what: string) =>
    new Error(`OpenAI ${what} was requested but no OpenAI client is configured: set OPENAI_API_KEY`);
  return {
    stt(provider) {
      if (provider === 'local') return localStt;
      if (!openaiStt) throw missingKey('speech-to-text');
      return openaiStt;
    },
    tts(provider) {
      if (provider === 'local') return localTts;
      if (!openaiTts) throw missingKey('text-to-speech');
      return openaiTts;
    },
  };
}

export type { SpeechToText, SttRequest, SttResult, TextToSpeech, TtsRequest } from './types';
