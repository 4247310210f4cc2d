/**
 * The relay's speech stages as interfaces: speech-to-text turns one endpointed utterance into text,
 * text-to-speech turns one chunk of the agent's reply into telephone audio. Implementations: local
 * engines (pocketsphinx, espeak-ng) for offline use and tests, OpenAI for production.
 */
import type { ListeningHints } from '../../contracts/agent-engine';

export interface SttRequest {
  /** Mono PCM16 of one utterance. */
  audio: Int16Array;
  sampleRate: number;
  /** BCP 47, e.g. en-US. */
  language: string;
  /** What the current node expects; engines that can use it (grammars, prompts) do. */
  hints?: ListeningHints;
  signal?: AbortSignal;
}

export interface SttResult {
  text: string;
  confidence?: number;
  provider: string;
  /** Whether a grammar built from the hints constrained the recognition. */
  grammar: boolean;
}

export interface SpeechToText {
  readonly name: string;
  transcribe(req: SttRequest): Promise<SttResult>;
}

export interface TtsRequest {
  text: string;
  /** Provider-specific voice; an unknown one falls back to the provider's default. */
  voiceId: string;
  language: string;
  signal?: AbortSignal;
}

export interface TextToSpeech {
  readonly name: string;
  /** 8 kHz mono PCM16 */
  synthesize(req: TtsRequest): Promise<Int16Array>;
}
