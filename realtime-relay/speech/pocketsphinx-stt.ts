/**
 * Offline speech-to-text with CMU pocketsphinx (Debian's 0.8 `pocketsphinx_continuous`), one process
 * per utterance. Reliable only when constrained: each turn gets a JSGF grammar built from the node's
 * listening hints; free-text turns, and grammar runs that recognise nothing, use the general
 * language model. Model loading makes each run take 0.3–1 s: fine for the offline engine and tests,
 * not a production STT.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resample } from '../audio/resample';
import { encodeWav } from '../audio/wav';
import { abortReason, runProcess } from './child-process';
import { buildJsgf, loadDictionaryWords, normalizeTranscript } from './grammar';
import type { SpeechToText, SttRequest, SttResult } from './types';

export interface PocketsphinxSttOptions {
  /** Directory holding en-us/, en-us.lm.bin and cmudict-en-us.dict (pocketsphinx-en-us's layout). */
  modelDir: string;
  /** Default `pocketsphinx_continuous`, looked up on PATH. */
  binary?: string;
  /** Where per-utterance WAV and grammar files go; default the OS temp directory. */
  tmpDir?: string;
  /** Guard against a hung decoder (default 30 s). */
  timeoutMs?: number;
}

/** The acoustic model's sample rate. */
const MODEL_RATE = 16_000;

export class PocketsphinxStt implements SpeechToText {
  readonly name = 'pocketsphinx';
  private readonly binary: string;
  private readonly hmm: string;
  private readonly dict: string;
  private readonly lm: string;
  private readonly tmpDir: string;
  private readonly timeoutMs: number;

  constructor(opts: PocketsphinxSttOptions) {
    this.binary = opts.binary ?? 'pocketsphinx_continuous';
    this.hmm = join(opts.modelDir, 'en-us');
    this.dict = join(opts.modelDir, 'cmudict-en-us.dict');
    this.lm = join(opts.modelDir, 'en-us.lm.bin');
    this.tmpDir = opts.tmpDir ?? tmpdir();
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  async transcribe(req: SttRequest): Promise<SttResult> {
    req.signal?.throwIfAborted();
    if (req.audio.length === 0) return { text: '', provider: this.name, grammar: false };
    const grammar = req.hints ? buildJsgf(req.hints, await loadDictionaryWords(this.dict)) : undefined;
    const dir = await mkdtemp(join(this.tmpDir, 'parley-stt-'));
    try {
      const wav = join(dir, 'utterance.wav');
      await writeFile(wav, encodeWav([resample(req.audio, req.sampleRate, MODEL_RATE)], MODEL_RATE));
      if (grammar !== undefined) {
        const gram = join(dir, 'hints.gram');
        await writeFile(gram, grammar);
        const text = await this.decode(wav, ['-jsgf', gram], req.signal);
        if (text) return { text: normalizeTranscript(text), provider: this.name, grammar: true };
        // Nothing in the grammar matched: the caller said something else. Try the general model once.
      }
      const text = await this.decode(wav, ['-lm', this.lm], req.signal);
      return { text: normalizeTranscript(text), provider: this.name, grammar: false };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async decode(wav: string, languageModel: string[], signal?: AbortSignal): Promise<string> {
    if (signal?.aborted) throw abortReason(signal);
    const args = [
      '-infile',
      wav,
      '-hmm',
      this.hmm,
      '-dict',
      this.dict,
      ...languageModel,
      '-logfn',
      '/dev/null',
    ];
    const { code, stdout, stderr } = await runProcess(this.binary, args, {
      signal,
      timeoutMs: this.timeoutMs,
    });
    if (code !== 0) {
      throw new Error(`${this.binary} exited with ${code}: ${stderr.trim() || '(no output)'}`);
    }
    // One line per utterance segment it found, some builds prefixed with an utterance id ("000000000: ").
    return stdout
      .toString('utf8')
      .split('\n')
      .map((line) => line.replace(/^\d+:\s*/, '').trim())
      .filter(Boolean)
      .join(' ');
  }
}
