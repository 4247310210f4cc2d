/**
 * The relay's speech stages: grammars from listening hints, inverse text normalisation checked
 * against the agent engine's own slot parsers, espeak-ng → telephone audio (8 kHz μ-law) →
 * pocketsphinx end to end, child-process cancellation, the sentence chunker, and the OpenAI stages
 * through the real SDK against the local OpenAI peer.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { ListeningHints } from '../contracts/agent-engine';
import { muLawDecode, muLawEncode, MULAW_SILENCE } from '../realtime-relay/audio/g711';
import { decodeWav } from '../realtime-relay/audio/wav';
import { EngineTimeoutError } from '../realtime-relay/speech/child-process';
import { EspeakTts } from '../realtime-relay/speech/espeak-tts';
import { buildJsgf, loadDictionaryWords, normalizeTranscript } from '../realtime-relay/speech/grammar';
import { createSpeechProviders } from '../realtime-relay/speech/index';
import { OpenAiStt, OpenAiTts } from '../realtime-relay/speech/openai-speech';
import { PocketsphinxStt } from '../realtime-relay/speech/pocketsphinx-stt';
import { SentenceChunker } from '../realtime-relay/speech/sentence-chunker';
import { parseChoice, parseDateTime, parseNumber, parseYesNo } from '../workflows/agent-engine/slots';
import {
  PEER_SPEECH_MS_PER_CHAR,
  PEER_SPEECH_TONE_HZ,
  startOpenAiPeer,
  type OpenAiPeer,
} from './peers/openai-peer';

const MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
const DICT = join(MODEL_DIR, 'cmudict-en-us.dict');
const INTENTS = ['I want to speak to a human', 'Cancel my appointment'];

// The local engines are part of Parley (bootstrap installs them): their tests run, never skip.
const describeLocal = describe;
const describeEspeak = describe;

/** Children of this process whose command name matches. */
function childProcesses(pattern: RegExp): number[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)]).toString();
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, comm]) => pid && comm && pattern.test(comm))
    .map(([pid]) => Number(pid));
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

function zeroCrossings(pcm: Int16Array): number {
  let count = 0;
  for (let i = 1; i < pcm.length; i++) if (pcm[i - 1]! < 0 !== pcm[i]! < 0) count++;
  return count;
}

describe('normalizeTranscript', () => {
  it.each([
    ['tomorrow at three p m', 'tomorrow at 3 pm'],
    ['three thirty pm', '3:30 pm'],
    ['at three thirty p m tomorrow', 'at 3:30 pm tomorrow'],
    ['friday at four fifteen a m', 'friday at 4:15 am'],
    ['at twelve oh five', 'at 12:05'],
    ["at three o'clock", 'at 3'],
    ["3 o'clock", '3'],
    ['3 p m', '3 pm'],
    ['three', '3'],
    ['twenty five', '25'],
    ['twenty-five', '25'],
    ['forty five', '45'],
    ['one hundred and five', '105'],
    ['a hundred dollars', '100 dollars'],
    ['ten thousand two hundred', '10200'],
    ['nineteen ninety nine', '1999'],
    ['three point five', '3.5'],
    ['five five five one two three four', '5551234'],
    ['one oh five', '105'],
    ['three and four', '3 and 4'],
    ['someone called', 'someone called'],
    ['the one on the left', 'the one on the left'],
    ['no one', 'no one'],
    ['i want one', 'i want 1'],
    ['oh okay', 'oh okay'],
    ['yes please', 'yes please'],
    ['Three thirty PM, please.', '3:30 pm, please.'],
    ['', ''],
  ])('%j → %j', (spoken, written) => {
    expect(normalizeTranscript(spoken)).toBe(written);
  });

  it('turns recogniser output into what the engine slot parsers understand', () => {
    const now = '2025-03-06T14:00:00Z';
    const zone = 'America/New_York';
    // chrono-node does not read spoken numbers: without normalisation the time is lost.
    expect(parseDateTime('tomorrow at three p m', now, zone)).toBe('2025-03-07');
    expect(parseDateTime(normalizeTranscript('tomorrow at three p m'), now, zone)).toBe(
      '2025-03-07T15:00:00-05:00',
    );
    expect(parseDateTime(normalizeTranscript('tomorrow at three thirty p m'), now, zone)).toBe(
      '2025-03-07T15:30:00-05:00',
    );
    expect(parseDateTime(normalizeTranscript('next monday at nine in the morning'), now, zone)).toBe(
      '2025-03-10T09:00:00-04:00',
    );
    expect(parseNumber(normalizeTranscript('one hundred and five'))).toBe(105);
    expect(parseNumber(normalizeTranscript('five five five one two'))).toBe(55512);
  });
});

describe('buildJsgf', () => {
  // A small dictionary: no "nope", no "operator".
  const dictionary = new Set(
    "yes yeah yep please sure correct right that's no thanks thank you not really wrong i don't think so okay of course absolutely it is want to speak a human cancel my appointment haircut and beard trim the first one second last i'd like i'll take have".split(
      ' ',
    ),
  );

  it('lists yes/no phrases and the intents, dropping phrases with words the dictionary lacks', () => {
    const grammar = buildJsgf(
      {
        nodeId: 'confirm',
        slotType: 'yes_no',
        intentPhrases: ['I want to speak to a HUMAN!', 'Operator, now'],
      },
      dictionary,
    )!;
    expect(grammar).toMatch(/^#JSGF V1\.0;\n\ngrammar parley;\n/);
    expect(grammar).toContain('public <utterance> = <yes_no> | <intent>;');
    expect(grammar).toContain('<intent> = i want to speak to a human;');
    expect(grammar).toMatch(/<yes_no> = yes \| yeah \| yep \| yes please \|/);
    expect(grammar).toContain("| that's right |");
    expect(grammar).toContain('| no thanks |');
    expect(grammar).not.toContain('nope');
    expect(grammar).not.toContain('operator');
  });

  it('builds choice, number, date/time and phone grammars; none for free text', () => {
    const full = new Set([
      ...dictionary,
      'colour',
      'zero',
      'one',
      'two',
      'three',
      'twenty',
      'hundred',
      'thousand',
    ]);
    const choice = buildJsgf(
      { nodeId: 'svc', slotType: 'choice', choices: ['Haircut and beard trim', 'Colour'], intentPhrases: [] },
      full,
    )!;
    expect(choice).toContain(
      '<choice> = haircut and beard trim | haircut | beard | trim | colour | the first one | the first | the second one | the second | the last one;',
    );
    expect(choice).toContain('public <utterance> = [<choice_lead>] <choice> [please];');

    expect(buildJsgf({ nodeId: 'n', slotType: 'text', intentPhrases: INTENTS }, full)).toBeUndefined();
    expect(buildJsgf({ nodeId: 'n', slotType: 'email', intentPhrases: INTENTS }, full)).toBeUndefined();
    expect(buildJsgf({ nodeId: 'n', intentPhrases: ['xyzzy plugh'] }, full)).toBeUndefined();
    // No slot: the intents alone.
    expect(buildJsgf({ nodeId: 'n', intentPhrases: INTENTS }, full)).toContain(
      'public <utterance> = <intent>;',
    );
  });

  it('uses only words of the real pocketsphinx dictionary, which it reads once', async () => {
    const words = await loadDictionaryWords(DICT);
    expect(await loadDictionaryWords(DICT)).toBe(words);
    expect(words.has("o'clock")).toBe(true);
    expect(words.has('a(2)')).toBe(false);
    expect(words.size).toBeGreaterThan(100_000);
    for (const slotType of ['yes_no', 'number', 'datetime', 'phone', 'choice'] as const) {
      const grammar = buildJsgf(
        { nodeId: 'n', slotType, choices: ['Haircut', 'Colour'], intentPhrases: INTENTS },
        words,
      )!;
      expect(grammar).toContain('<intent> = i want to speak to a human | cancel my appointment;');
      const used = grammar
        .split('\n')
        .filter((line) => line.startsWith('<') || line.startsWith('public'))
        .flatMap((line) =>
          line
            .split('=')[1]!
            .replace(/<[a-z_]+>|[[\]()|+*;]/g, ' ')
            .split(/\s+/),
        )
        .filter(Boolean);
      expect(used.filter((word) => !words.has(word))).toEqual([]);
    }
    await expect(loadDictionaryWords('/nonexistent/dict')).rejects.toThrow(/ENOENT/);
  });
});

describeLocal('espeak-ng → 8 kHz μ-law → pocketsphinx with listening hints', () => {
  const tts = new EspeakTts();
  let tmp: string;
  let stt: PocketsphinxStt;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'parley-speech-test-'));
    stt = new PocketsphinxStt({ modelDir: MODEL_DIR, tmpDir: tmp });
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));
  afterEach(async () => {
    // Every run cleans up its WAV and grammar files.
    expect(await readdir(tmp)).toEqual([]);
  });

  /** What a caller's words look like after the phone line: 8 kHz μ-law, with a moment of line idle around. */
  async function overThePhone(text: string): Promise<Int16Array> {
    const pcm = await tts.synthesize({ text, voiceId: 'en-us', language: 'en-US' });
    const idle = Buffer.alloc(2400, MULAW_SILENCE); // 300 ms
    return muLawDecode(Buffer.concat([idle, muLawEncode(pcm), idle]));
  }

  async function hear(text: string, hints?: ListeningHints) {
    return stt.transcribe({ audio: await overThePhone(text), sampleRate: 8000, language: 'en-US', hints });
  }

  it('synthesises 8 kHz speech of a plausible length', async () => {
    const pcm = await tts.synthesize({ text: 'yes please', voiceId: 'en-us', language: 'en-US' });
    expect(pcm.length / 8000).toBeGreaterThan(0.5);
    expect(pcm.length / 8000).toBeLessThan(2);
    expect(pcm.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBeGreaterThan(3000);
  });

  it('yes/no: "yes please" and "no"', async () => {
    const yes = await hear('yes please', { nodeId: 'confirm', slotType: 'yes_no', intentPhrases: INTENTS });
    expect(yes).toMatchObject({ provider: 'pocketsphinx', grammar: true });
    expect(yes.text).toContain('yes');
    expect(parseYesNo(yes.text)).toBe(true);
    const no = await hear('no', { nodeId: 'confirm', slotType: 'yes_no', intentPhrases: INTENTS });
    expect(parseYesNo(no.text)).toBe(false);
  });

  it('date/time: "tomorrow at three pm" → "tomorrow at 3 pm", 15:00 for the slot parser', async () => {
    const result = await hear('tomorrow at three pm', {
      nodeId: 'when',
      slotType: 'datetime',
      intentPhrases: INTENTS,
    });
    expect(result.text).toBe('tomorrow at 3 pm');
    expect(parseDateTime(result.text, '2025-03-06T14:00:00Z', 'America/New_York')).toBe(
      '2025-03-07T15:00:00-05:00',
    );
  });

  it('recognises an intent phrase exactly when the hints carry it, not with the general model', async () => {
    const phrase = 'i want to speak to a human';
    const withIntent = await hear(phrase, { nodeId: 'confirm', slotType: 'yes_no', intentPhrases: INTENTS });
    expect(withIntent).toMatchObject({ text: phrase, grammar: true });
    const free = await hear(phrase, { nodeId: 'notes', slotType: 'text', intentPhrases: INTENTS });
    expect(free.grammar).toBe(false);
    expect(free.text).not.toBe(phrase);
  });

  it('choice: "beard trim please" picks "Beard trim"', async () => {
    const choices = ['Haircut', 'Beard trim', 'Colour'];
    const result = await hear('beard trim please', {
      nodeId: 'svc',
      slotType: 'choice',
      choices,
      intentPhrases: INTENTS,
    });
    expect(result.grammar).toBe(true);
    expect(parseChoice(result.text, choices)).toBe('Beard trim');
  });

  it('number: "twenty five" → "25"', async () => {
    const result = await hear('twenty five', { nodeId: 'qty', slotType: 'number', intentPhrases: INTENTS });
    expect(result.text).toBe('25');
    expect(parseNumber(result.text)).toBe(25);
  });

  it('abort kills the decoder at once and cleans up', async () => {
    const long = await overThePhone(
      'Thank you for calling. I would like to book an appointment for a haircut next week, ideally on a ' +
        'Tuesday or a Wednesday afternoon, and I also want to ask about the prices of your other services.',
    );
    const controller = new AbortController();
    const pending = stt.transcribe({
      audio: long,
      sampleRate: 8000,
      language: 'en-US',
      signal: controller.signal,
    });
    await waitFor(() => childProcesses(/pocketsphinx/).length > 0, 5_000);
    const abortedAt = Date.now();
    controller.abort();
    const error = await rejection(pending);
    expect(error.name).toBe('AbortError');
    expect(Date.now() - abortedAt).toBeLessThan(500);
    expect(childProcesses(/pocketsphinx/)).toEqual([]);
  });
});

describe('PocketsphinxStt around the decoder (a stand-in binary)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-fake-sphinx-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** A stand-in model directory: only the dictionary is read by us; the decoder gets the paths. */
  async function fakeModelDir(): Promise<string> {
    const models = join(dir, 'models');
    await mkdir(models);
    await writeFile(join(models, 'cmudict-en-us.dict'), 'yes Y EH S\nyes(2) Y AE S\nno N OW\n');
    return models;
  }

  /** A stand-in decoder: keeps copies of its input files and answers per language model. */
  async function fakeDecoder(body: string): Promise<string> {
    const path = join(dir, 'fake-decoder.sh');
    await writeFile(
      path,
      `#!/bin/sh\nprev=""\nfor a in "$@"; do\n  [ "$prev" = "-infile" ] && cp "$a" "${dir}/seen.wav"\n  [ "$prev" = "-jsgf" ] && cp "$a" "${dir}/seen.gram"\n  prev="$a"\ndone\necho "$@" >> "${dir}/calls"\n${body}\n`,
    );
    await chmod(path, 0o755);
    return path;
  }

  it('upsamples to 16 kHz, tries the grammar, falls back to the general model once when it hears nothing', async () => {
    const binary = await fakeDecoder(
      'case "$*" in *-jsgf*) exit 0 ;; *) printf "hello\\nthree p m\\n" ;; esac',
    );
    const work = join(dir, 'work');
    await mkdir(work);
    const models = await fakeModelDir();
    const stt = new PocketsphinxStt({ modelDir: models, binary, tmpDir: work });
    const audio = new Int16Array(8000).map((_, i) => Math.round(3000 * Math.sin(i / 3)));
    const result = await stt.transcribe({
      audio,
      sampleRate: 8000,
      language: 'en-US',
      hints: { nodeId: 'when', slotType: 'yes_no', intentPhrases: [] },
    });
    // Both output lines (utterance segments), joined and normalised.
    expect(result).toEqual({ text: 'hello 3 pm', provider: 'pocketsphinx', grammar: false });
    const calls = (await readFile(join(dir, 'calls'), 'utf8')).trim().split('\n');
    expect(calls).toHaveLength(2);
    const wavArg = `${work}/parley-stt-\\w+/utterance\\.wav`;
    expect(calls[0]).toMatch(
      new RegExp(
        `^-infile ${wavArg} -hmm ${models}/en-us -dict ${models}/cmudict-en-us\\.dict -jsgf ${work}/parley-stt-\\w+/hints\\.gram -logfn /dev/null$`,
      ),
    );
    expect(calls[1]).toMatch(
      new RegExp(`^-infile ${wavArg} -hmm \\S+ -dict \\S+ -lm ${models}/en-us\\.lm\\.bin -logfn /dev/null$`),
    );
    const wav = decodeWav(await readFile(join(dir, 'seen.wav')));
    expect(wav.sampleRate).toBe(16000);
    expect(wav.channels[0]!.length).toBe(16000);
    // Only the words the (stand-in) dictionary knows.
    expect(await readFile(join(dir, 'seen.gram'), 'utf8')).toContain('<yes_no> = yes | no;');
    expect(await readdir(work)).toEqual([]);
  }, 20_000);
});

describe('PocketsphinxStt guards (a stand-in binary)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-fake-sphinx-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('kills a hung decoder after the guard timeout, and reports a failing one', async () => {
    const hung = join(dir, 'hung.sh');
    await writeFile(hung, '#!/bin/sh\nexec sleep 30\n');
    await chmod(hung, 0o755);
    const stt = new PocketsphinxStt({ modelDir: '/models', binary: hung, tmpDir: dir, timeoutMs: 300 });
    const started = Date.now();
    const error = await rejection(
      stt.transcribe({ audio: new Int16Array(800), sampleRate: 8000, language: 'en' }),
    );
    expect(error).toBeInstanceOf(EngineTimeoutError);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(childProcesses(/sleep/)).toEqual([]);

    const failing = join(dir, 'failing.sh');
    await writeFile(failing, '#!/bin/sh\necho "ERROR: cannot open model" >&2\nexit 3\n');
    await chmod(failing, 0o755);
    const broken = new PocketsphinxStt({ modelDir: '/models', binary: failing, tmpDir: dir });
    await expect(
      broken.transcribe({ audio: new Int16Array(800), sampleRate: 8000, language: 'en' }),
    ).rejects.toThrow(/exited with 3: ERROR: cannot open model/);
    const missing = new PocketsphinxStt({ modelDir: '/models', binary: join(dir, 'nope'), tmpDir: dir });
    await expect(
      missing.transcribe({ audio: new Int16Array(800), sampleRate: 8000, language: 'en' }),
    ).rejects.toThrow(/ENOENT/);
    // Temp files are gone whatever happened.
    expect((await readdir(dir)).filter((name) => name.startsWith('parley-stt-'))).toEqual([]);
  });
});

describeEspeak('EspeakTts', () => {
  const tts = new EspeakTts();

  it('falls back to en-us for an unknown or unsafe voice, and reads text starting with dashes as text', async () => {
    const reference = await tts.synthesize({ text: 'hello', voiceId: 'en-us', language: 'en-US' });
    expect(reference.length).toBeGreaterThan(2000);
    expect(await tts.synthesize({ text: 'hello', voiceId: 'xx-nonexistent', language: 'en-US' })).toEqual(
      reference,
    );
    expect(await tts.synthesize({ text: 'hello', voiceId: '--help', language: 'en-US' })).toEqual(reference);
    // On the command line this would be an option; on stdin it is spoken.
    const dashed = await tts.synthesize({
      text: '--version -w /tmp/owned.wav',
      voiceId: 'en-us',
      language: 'en-US',
    });
    expect(dashed.length).toBeGreaterThan(8000);
    expect(existsSync('/tmp/owned.wav')).toBe(false);
    expect(await tts.synthesize({ text: '   ', voiceId: 'en-us', language: 'en-US' })).toEqual(
      new Int16Array(0),
    );
  });

  it('speaks more slowly at a lower rate', async () => {
    const fast = await new EspeakTts({ wordsPerMinute: 300 }).synthesize({
      text: 'one two three four five',
      voiceId: 'en-us',
      language: 'en',
    });
    const slow = await new EspeakTts({ wordsPerMinute: 120 }).synthesize({
      text: 'one two three four five',
      voiceId: 'en-us',
      language: 'en',
    });
    expect(slow.length).toBeGreaterThan(fast.length * 1.5);
  });

  it('abort kills espeak-ng at once', async () => {
    const controller = new AbortController();
    const text = 'This is a very long announcement that goes on and on. '.repeat(400);
    const pending = tts.synthesize({ text, voiceId: 'en-us', language: 'en-US', signal: controller.signal });
    await waitFor(() => childProcesses(/espeak/).length > 0, 5_000);
    const abortedAt = Date.now();
    controller.abort();
    expect((await rejection(pending)).name).toBe('AbortError');
    expect(Date.now() - abortedAt).toBeLessThan(500);
    expect(childProcesses(/espeak/)).toEqual([]);
    // Already aborted: nothing starts.
    await expect(
      tts.synthesize({ text: 'hi', voiceId: 'en-us', language: 'en', signal: controller.signal }),
    ).rejects.toThrow(/abort/i);
  });
});

describe('SentenceChunker', () => {
  /** Feeds the text in pieces of `step` characters, as a model streams. */
  function chunk(text: string, opts?: { minChars?: number; maxChars?: number }, step = 3): string[] {
    const chunker = new SentenceChunker(opts);
    const out: string[] = [];
    for (let i = 0; i < text.length; i += step) out.push(...chunker.push(text.slice(i, i + step)));
    return [...out, ...chunker.flush()];
  }

  it('cuts after sentence ends, not inside numbers or abbreviations', () => {
    expect(
      chunk(
        'Hello there! Your total is 3.5 dollars. Dr. Smith sees you at 3 p.m. tomorrow. Is that ok? Yes.',
      ),
    ).toEqual([
      'Hello there!',
      'Your total is 3.5 dollars.',
      'Dr. Smith sees you at 3 p.m. tomorrow.',
      'Is that ok?',
      'Yes.',
    ]);
    expect(chunk('Bring ID, e.g. a passport. Mr. J. Smith paid $1,250.75 today.')).toEqual([
      'Bring ID, e.g. a passport.',
      'Mr. J. Smith paid $1,250.75 today.',
    ]);
    expect(chunk('She said "see you soon." Then she left... Bye!')).toEqual([
      'She said "see you soon."',
      'Then she left...',
      'Bye!',
    ]);
    expect(chunk('See you at 3 p.m. Goodbye.')).toEqual(['See you at 3 p.m.', 'Goodbye.']);
  });

  it('emits a sentence as soon as the next character shows it ended, and keeps a trailing fragment for flush', () => {
    const chunker = new SentenceChunker();
    expect(chunker.push('It costs 3.')).toEqual([]); // "3." may still become "3.5"
    expect(chunker.push('5 dollars.')).toEqual([]);
    expect(chunker.push(' Anything')).toEqual(['It costs 3.5 dollars.']);
    expect(chunker.push(' else')).toEqual([]);
    expect(chunker.flush()).toEqual(['Anything else']);
    expect(chunker.flush()).toEqual([]);
  });

  it('cuts at clause punctuation only once the pending text is long', () => {
    const short = 'Sure, I can help with that; one moment.';
    expect(chunk(short)).toEqual([short]);
    const long =
      'I checked your account and found two orders, one from last Tuesday and one from this morning, and both of them are still being packed at our warehouse';
    const chunks = chunk(long, { maxChars: 60 });
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.slice(0, -1).every((c) => /[,;:]$/.test(c))).toBe(true);
    expect(chunks.join(' ')).toBe(long);
    // A run-on without any punctuation is still cut, between words, past twice the limit.
    const runOn = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    const pieces = chunk(runOn, { maxChars: 50 });
    expect(pieces.length).toBeGreaterThan(2);
    expect(pieces.join(' ')).toBe(runOn);
  });

  it('holds chunks shorter than minChars, cuts list items at line breaks, trims', () => {
    expect(chunk('Ok. Then we go.', { minChars: 5 })).toEqual(['Ok. Then we go.']);
    expect(chunk('Ok. Then we go.')).toEqual(['Ok.', 'Then we go.']);
    expect(chunk('Here are the options:\n1. Haircut\n2. Colour\n')).toEqual([
      'Here are the options:',
      '1. Haircut',
      '2. Colour',
    ]);
    expect(chunk('  Hi.   ')).toEqual(['Hi.']);
    expect(chunk('A', { minChars: 5 })).toEqual(['A']);
  });
});

describe('OpenAI speech against the local peer', () => {
  const API_KEY = 'sk-peer-test-key-0123456789';
  let peer: OpenAiPeer;
  let client: OpenAI;
  beforeAll(async () => {
    peer = await startOpenAiPeer({ apiKey: API_KEY });
    client = new OpenAI({ apiKey: API_KEY, baseURL: peer.baseUrl, maxRetries: 0 });
  });
  afterAll(() => peer.close());
  beforeEach(() => {
    peer.transcriptionRequests.length = 0;
    peer.speechRequests.length = 0;
    peer.transcriptions.length = 0;
  });

  const utterance = new Int16Array(4000).map((_, i) => Math.round(5000 * Math.sin(i / 4)));

  it('uploads the utterance as WAV with model, language and the hint phrases as prompt', async () => {
    peer.transcriptions.push(' Tomorrow at 3 p.m. ', (req) => `heard ${req.audioBytes} bytes`);
    const stt = new OpenAiStt({ client });
    const hints: ListeningHints = {
      nodeId: 'svc',
      slotType: 'choice',
      choices: ['Haircut', 'Colour'],
      intentPhrases: INTENTS,
    };
    const result = await stt.transcribe({ audio: utterance, sampleRate: 8000, language: 'en-US', hints });
    expect(result).toEqual({ text: 'Tomorrow at 3 p.m.', provider: 'openai', grammar: false });
    expect(peer.transcriptionRequests[0]).toEqual({
      model: 'gpt-4o-mini-transcribe',
      language: 'en',
      prompt: 'Haircut, Colour, I want to speak to a human, Cancel my appointment',
      audioBytes: 44 + utterance.length * 2,
      fileName: 'utterance.wav',
      fileType: 'audio/wav',
    });
    const second = await new OpenAiStt({ client, model: 'whisper-1' }).transcribe({
      audio: utterance,
      sampleRate: 8000,
      language: 'fr',
    });
    expect(second.text).toBe(`heard ${44 + utterance.length * 2} bytes`);
    expect(peer.transcriptionRequests[1]).toMatchObject({
      model: 'whisper-1',
      language: 'fr',
      prompt: undefined,
    });
    // The queue is empty: the default answer.
    expect((await stt.transcribe({ audio: utterance, sampleRate: 8000, language: 'en' })).text).toBe('');
  });

  it('synthesises 24 kHz PCM into 8 kHz, with OpenAI voices only', async () => {
    const tts = new OpenAiTts({ client });
    const text = 'Hello, how can I help?';
    const pcm = await tts.synthesize({ text, voiceId: 'en-us', language: 'en-US' });
    expect(peer.speechRequests).toEqual([
      { model: 'gpt-4o-mini-tts', voice: 'alloy', input: text, response_format: 'pcm' },
    ]);
    const seconds = (text.length * PEER_SPEECH_MS_PER_CHAR) / 1000;
    expect(pcm.length).toBe(Math.round(seconds * 8000));
    expect(Math.abs(zeroCrossings(pcm) / seconds - 2 * PEER_SPEECH_TONE_HZ)).toBeLessThan(5);
    await new OpenAiTts({ client, model: 'tts-1' }).synthesize({
      text: 'Hi',
      voiceId: 'coral',
      language: 'en',
    });
    expect(peer.speechRequests[1]).toMatchObject({ model: 'tts-1', voice: 'coral' });
  });

  it('fails with the SDK error class on a bad key, and honours an aborted signal', async () => {
    const wrong = new OpenAI({ apiKey: 'sk-wrong-key-000000000000', baseURL: peer.baseUrl, maxRetries: 0 });
    await expect(
      new OpenAiStt({ client: wrong }).transcribe({ audio: utterance, sampleRate: 8000, language: 'en' }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(
      new OpenAiTts({ client: wrong }).synthesize({ text: 'hi', voiceId: 'alloy', language: 'en' }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    expect(peer.speechRequests).toEqual([]);
  });

  it('passes the abort signal to the request: a hung provider is abandoned at once', async () => {
    // A provider that never answers: only an abort ends the request. (The SDK probes its fetch with
    // a data: URL to check FormData support; that one is answered.)
    const hung = new OpenAI({
      apiKey: API_KEY,
      baseURL: peer.baseUrl,
      maxRetries: 0,
      fetch: (url, init) =>
        (typeof url === 'string' ? url : url instanceof URL ? url.href : url.url).startsWith('data:')
          ? fetch(url, init)
          : new Promise<Response>((_resolve, reject) => {
              init?.signal?.addEventListener('abort', () =>
                reject(new DOMException('aborted', 'AbortError')),
              );
            }),
    });
    for (const start of [
      (signal: AbortSignal) =>
        new OpenAiTts({ client: hung }).synthesize({ text: 'hi', voiceId: 'alloy', language: 'en', signal }),
      (signal: AbortSignal) =>
        new OpenAiStt({ client: hung }).transcribe({
          audio: utterance,
          sampleRate: 8000,
          language: 'en',
          signal,
        }),
    ]) {
      const controller = new AbortController();
      const pending = start(controller.signal);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const abortedAt = Date.now();
      controller.abort();
      expect((await rejection(pending)).message).toMatch(/abort/i);
      expect(Date.now() - abortedAt).toBeLessThan(200);
      // Already aborted: no request at all.
      await expect(start(controller.signal)).rejects.toThrow(/abort/i);
    }
  });

  it('createSpeechProviders: one instance per engine; openai without a client names OPENAI_API_KEY', () => {
    const withOpenAi = createSpeechProviders({ pocketsphinxModelDir: MODEL_DIR, openai: client });
    expect(withOpenAi.stt('openai')).toBeInstanceOf(OpenAiStt);
    expect(withOpenAi.tts('openai')).toBeInstanceOf(OpenAiTts);
    expect(withOpenAi.stt('local')).toBeInstanceOf(PocketsphinxStt);
    expect(withOpenAi.tts('local')).toBeInstanceOf(EspeakTts);
    expect(withOpenAi.stt('local')).toBe(withOpenAi.stt('local'));
    expect(withOpenAi.tts('openai')).toBe(withOpenAi.tts('openai'));
    const local = createSpeechProviders({ pocketsphinxModelDir: MODEL_DIR });
    expect(local.tts('local').name).toBe('espeak-ng');
    expect(() => local.stt('openai')).toThrow(/OPENAI_API_KEY/);
    expect(() => local.tts('openai')).toThrow(/OPENAI_API_KEY/);
  });
});
