/**
 * The relay's audio stages on synthetic and real (espeak-ng) audio: G.711 μ-law, resampling, WAV,
 * and the energy VAD's events and their stream times.
 */
import { execFileSync } from 'node:child_process';
import { muLawDecode, muLawEncode, MULAW_SILENCE } from '../realtime-relay/audio/g711';
import { resample } from '../realtime-relay/audio/resample';
import { EnergyVad, type VadEvent, type VadOptions } from '../realtime-relay/audio/vad';
import { decodeWav, encodeWav } from '../realtime-relay/audio/wav';

const RATE = 8000;
const FRAME = 160; // 20 ms at 8 kHz, as Twilio sends

/** Deterministic noise (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const samples = (ms: number, rate = RATE) => Math.round((ms * rate) / 1000);

function tone(ms: number, hz = 300, amplitude = 4000, rate = RATE): Int16Array {
  const out = new Int16Array(samples(ms, rate));
  for (let i = 0; i < out.length; i++)
    out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

const silence = (ms: number) => new Int16Array(samples(ms));

/** White noise with the given RMS. */
function noise(ms: number, rms: number, random = rng(7)): Int16Array {
  const out = new Int16Array(samples(ms));
  const peak = rms * Math.sqrt(3); // a uniform distribution's RMS is peak / √3
  for (let i = 0; i < out.length; i++) out[i] = Math.round((random() * 2 - 1) * peak);
  return out;
}

/** A telephone line at rest: μ-law idle bytes (0xFF) and low-level comfort noise, decoded. */
function muLawIdle(ms: number, random = rng(11)): Int16Array {
  const bytes = Buffer.alloc(samples(ms), MULAW_SILENCE);
  for (let i = 0; i < bytes.length; i++) {
    const r = random();
    if (r < 0.6) bytes[i] = (r < 0.3 ? 0xf8 : 0x78) | Math.floor(random() * 8); // |x| ≤ 56
  }
  return muLawDecode(bytes);
}

function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const msOf = (parts: Int16Array[]) => (parts.reduce((n, p) => n + p.length, 0) * 1000) / RATE;

type Emitted = VadEvent & { emittedMs: number };

/** Pushes the audio in chunks of the given sizes (cycled); each event carries the stream time of its push's end. */
function runVad(options: VadOptions, audio: Int16Array, chunkSizes: number[] = [FRAME]): Emitted[] {
  const vad = new EnergyVad(options);
  const events: Emitted[] = [];
  let at = 0;
  for (let k = 0; at < audio.length; k++) {
    const size = chunkSizes[k % chunkSizes.length]!;
    const chunk = audio.subarray(at, at + size);
    at += chunk.length;
    for (const event of vad.push(chunk)) events.push({ ...event, emittedMs: (at * 1000) / RATE });
  }
  return events;
}

const FRAME_MS = 20;
const opts: VadOptions = { sampleRate: RATE, endpointingMs: 700, minSpeechMs: 250 };

function zeroCrossings(pcm: Int16Array): number {
  let count = 0;
  for (let i = 1; i < pcm.length; i++) if (pcm[i - 1]! < 0 !== pcm[i]! < 0) count++;
  return count;
}

describe('G.711 μ-law', () => {
  it('maps known values: digital silence is 0xFF, full scale is 0x80/0x00', () => {
    expect([...muLawEncode(Int16Array.from([0, 32767, -32768, 1000, -1000]))]).toEqual([
      0xff, 0x80, 0x00, 0xce, 0x4e,
    ]);
    expect(MULAW_SILENCE).toBe(0xff);
    expect([...muLawDecode(Uint8Array.from([0xff, 0x7f, 0x80, 0x00, 0xfe, 0x7e]))]).toEqual([
      0, 0, 32124, -32124, 8, -8,
    ]);
  });

  it('round-trips every 16-bit value within the codec step (≤ 8 + |x|/16) and keeps the sign', () => {
    const all = new Int16Array(65536);
    for (let i = 0; i < all.length; i++) all[i] = i - 32768;
    const back = muLawDecode(muLawEncode(all));
    expect(back).toHaveLength(all.length);
    let worst = 0;
    let signFlips = 0;
    for (let i = 0; i < all.length; i++) {
      const x = all[i]!;
      worst = Math.max(worst, Math.abs(back[i]! - x) - Math.abs(x) / 16);
      if (Math.abs(x) > 16 && Math.sign(back[i]!) !== Math.sign(x)) signFlips++;
    }
    expect(worst).toBeLessThanOrEqual(8);
    expect(signFlips).toBe(0);
    // Decoding every byte and encoding again is the identity (the code book is consistent).
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const again = muLawEncode(muLawDecode(bytes));
    const changed = [...bytes].filter((b) => again[b] !== b);
    expect(changed).toEqual([0x7f]); // 0x7F is −0: it encodes as +0 (0xFF)
  });
});

describe('resample', () => {
  it('scales lengths by the rate ratio', () => {
    expect(resample(new Int16Array(160), 8000, 16000)).toHaveLength(320);
    expect(resample(new Int16Array(22050), 22050, 8000)).toHaveLength(8000);
    expect(resample(new Int16Array(2400), 24000, 8000)).toHaveLength(800);
    const same = tone(20);
    const copy = resample(same, 8000, 8000);
    expect(copy).toEqual(same);
    expect(copy).not.toBe(same);
  });

  it.each([
    [8000, 16000],
    [16000, 8000],
    [22050, 8000],
    [24000, 8000],
  ])('keeps a 440 Hz sine at 440 Hz from %i to %i Hz (by zero crossings) and its level', (from, to) => {
    const input = tone(1000, 440, 10000, from);
    const output = resample(input, from, to);
    // A 1 s sine at 440 Hz crosses zero 880 times.
    expect(Math.abs(zeroCrossings(output) - 880)).toBeLessThanOrEqual(2);
    const peak = output.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(peak).toBeGreaterThan(8500);
    expect(peak).toBeLessThanOrEqual(10001);
  });
});

describe('WAV', () => {
  it('round-trips mono and stereo PCM16 with the sample rate', () => {
    const left = tone(50, 300, 12000);
    const right = tone(50, 700, -9000);
    const mono = decodeWav(encodeWav([left], 8000));
    expect(mono.sampleRate).toBe(8000);
    expect(mono.channels).toHaveLength(1);
    expect(mono.channels[0]).toEqual(left);
    const wav = encodeWav([left, right], 16000);
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(40)).toBe(left.length * 4);
    const stereo = decodeWav(wav);
    expect(stereo.sampleRate).toBe(16000);
    expect(stereo.channels[0]).toEqual(left);
    expect(stereo.channels[1]).toEqual(right);
  });

  it.each([0, 0xffffffff, 0x7ffff000])(
    'reads a streamed header (data size %i, as espeak-ng --stdout writes) to the end of the buffer',
    (size) => {
      const pcm = tone(30, 500, 7000, 22050);
      const wav = encodeWav([pcm], 22050);
      wav.writeUInt32LE(size, 4); // RIFF size
      wav.writeUInt32LE(size, 40); // data size
      const decoded = decodeWav(wav);
      expect(decoded.sampleRate).toBe(22050);
      expect(decoded.channels[0]).toEqual(pcm);
    },
  );

  // espeak-ng is part of Parley (bootstrap installs it): this runs, never skips.
  const itWithEspeak = it;
  itWithEspeak('decodes real espeak-ng output', () => {
    const wav = execFileSync('espeak-ng', ['-v', 'en-us', '--stdout', '--stdin'], { input: 'hello there' });
    const { sampleRate, channels } = decodeWav(wav);
    expect(sampleRate).toBe(22050);
    expect(channels[0]!.length).toBe((wav.length - 44) / 2);
    expect(channels[0]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBeGreaterThan(3000);
  });
});

describe('EnergyVad', () => {
  it('reports start, confirmation after minSpeechMs and the end after endpointingMs of silence, each within a frame', () => {
    // Speech starts and stops mid-frame: 1010 ms of silence, 1000 ms of "speech", 1500 ms of silence.
    const parts = [silence(1010), tone(1000), silence(1500)];
    const events = runVad(opts, concat(...parts));
    expect(events.map((e) => e.type)).toEqual(['speech_start', 'speech_confirmed', 'speech_end']);
    const [start, confirmed, end] = events as [Emitted, Emitted, Emitted];
    expect(Math.abs(start.atMs - 1010)).toBeLessThanOrEqual(FRAME_MS);
    expect(confirmed.atMs - start.atMs).toBeGreaterThanOrEqual(250);
    expect(confirmed.atMs - start.atMs).toBeLessThanOrEqual(250 + FRAME_MS);
    expect(end.type === 'speech_end' && end.speechStartMs).toBe(start.atMs);
    expect(Math.abs(end.atMs - 2010)).toBeLessThanOrEqual(FRAME_MS);
    // Announced once endpointingMs of silence has passed, not before.
    expect(end.emittedMs - end.atMs).toBeGreaterThanOrEqual(700);
    expect(end.emittedMs - end.atMs).toBeLessThanOrEqual(700 + FRAME_MS);
  });

  it('gives the same events whatever the chunk sizes', () => {
    const audio = concat(
      silence(500),
      tone(600),
      silence(150),
      tone(400),
      silence(1200),
      tone(60),
      silence(800),
    );
    const strip = (events: Emitted[]) => events.map(({ emittedMs: _e, ...event }) => event);
    const twilio = strip(runVad(opts, audio));
    expect(strip(runVad(opts, audio, [37, 1000, 3, 161, 800]))).toEqual(twilio);
    expect(strip(runVad(opts, audio, [audio.length]))).toEqual(twilio);
    expect(twilio.length).toBeGreaterThan(3);
  });

  it('discards a 60 ms blip when minSpeechMs is 250', () => {
    const events = runVad(opts, concat(silence(500), tone(60, 1000, 8000), silence(1500)));
    expect(events.map((e) => e.type)).toEqual(['speech_start', 'speech_discarded']);
    expect(Math.abs(events[1]!.atMs - 560)).toBeLessThanOrEqual(FRAME_MS);
  });

  it('does not end speech on gaps shorter than endpointingMs', () => {
    // "Yes ... please": two words with a 400 ms pause, then silence.
    const events = runVad(opts, concat(silence(400), tone(300), silence(400), tone(350), silence(1000)));
    expect(events.map((e) => e.type)).toEqual(['speech_start', 'speech_confirmed', 'speech_end']);
    expect(Math.abs(events[0]!.atMs - 400)).toBeLessThanOrEqual(FRAME_MS);
    expect(Math.abs(events[2]!.atMs - 1450)).toBeLessThanOrEqual(FRAME_MS);
    // With a shorter endpointing the same pause ends the first utterance.
    const quick = runVad(
      { ...opts, endpointingMs: 300 },
      concat(silence(400), tone(300), silence(400), tone(350), silence(1000)),
    );
    expect(quick.filter((e) => e.type === 'speech_end')).toHaveLength(2);
  });

  it('treats digital silence, μ-law idle noise and quiet comfort noise as silence', () => {
    const audio = concat(silence(1000), muLawIdle(3000), noise(2000, 40), silence(500));
    expect(runVad(opts, audio)).toEqual([]);
    const vad = new EnergyVad(opts);
    vad.push(audio);
    expect(vad.speaking).toBe(false);
  });

  it('stops counting a steady new background noise as speech, and still hears speech over it', () => {
    const hum = noise(6000, 300, rng(3)); // about -41 dBFS: a noisy line appears
    const talk = tone(800, 300, 4000); // about -21 dBFS over it
    const mixed = new Int16Array(talk.length);
    const tail = noise(1500, 300, rng(5));
    for (let i = 0; i < talk.length; i++) mixed[i] = talk[i]! + tail[i]!;
    const parts = [silence(500), hum, mixed, tail.subarray(talk.length)];
    const events = runVad(opts, concat(...parts));
    // Whatever the hum did at first, it has been absorbed into the floor well before the caller talks.
    const late = events.filter((e) => e.atMs >= 5000);
    expect(late.map((e) => e.type)).toEqual(['speech_start', 'speech_confirmed', 'speech_end']);
    expect(Math.abs(late[0]!.atMs - 6500)).toBeLessThanOrEqual(FRAME_MS);
    expect(Math.abs(late[2]!.atMs - 7300)).toBeLessThanOrEqual(FRAME_MS);
  });

  it('setOptions changes endpointing mid-stream; reset starts over at stream time 0', () => {
    const vad = new EnergyVad(opts);
    vad.push(silence(400));
    vad.push(tone(400));
    expect(vad.speaking).toBe(true);
    vad.setOptions({ endpointingMs: 200 });
    const events = vad.push(silence(260));
    expect(events).toEqual([{ type: 'speech_end', atMs: 800, speechStartMs: 400 }]);
    expect(vad.speaking).toBe(false);
    vad.reset();
    expect(vad.push(concat(silence(100), tone(300)))).toEqual([
      { type: 'speech_start', atMs: 100 },
      { type: 'speech_confirmed', atMs: 360 },
    ]);
    expect(() => new EnergyVad({ ...opts, sampleRate: 0 })).toThrow(RangeError);
    // Invalid tuning is refused without disturbing the detector; undefined leaves a setting alone.
    expect(() => vad.setOptions({ endpointingMs: -1 })).toThrow(RangeError);
    vad.setOptions({ thresholdDb: undefined, endpointingMs: 300 });
    expect(vad.push(silence(320))).toEqual([{ type: 'speech_end', atMs: 400, speechStartMs: 100 }]);
  });

  it('keeps stream time continuous across a sample-rate change', () => {
    const vad = new EnergyVad(opts);
    vad.push(silence(510)); // 500 ms analysed, 10 ms in a partial frame that the change drops
    vad.setOptions({ sampleRate: 16000 });
    const events = vad.push(
      concat(new Int16Array(16 * 200), tone(400, 300, 4000, 16000), new Int16Array(16 * 800)),
    );
    expect(events).toEqual([
      { type: 'speech_start', atMs: 710 },
      { type: 'speech_confirmed', atMs: 970 },
      { type: 'speech_end', atMs: 1110, speechStartMs: 710 },
    ]);
  });

  const itWithEspeak = it;
  itWithEspeak('finds one utterance in espeak-ng speech sent through μ-law between idle noise', () => {
    const wav = execFileSync('espeak-ng', ['-v', 'en-us', '--stdout', '--stdin'], {
      input: 'yes please, tomorrow at three',
    });
    const { sampleRate, channels } = decodeWav(wav);
    const speech = muLawDecode(muLawEncode(resample(channels[0]!, sampleRate, RATE)));
    // Truth: the first and last samples that are clearly speech.
    const first = speech.findIndex((v) => Math.abs(v) > 1000);
    let last = speech.length - 1;
    while (last > 0 && Math.abs(speech[last]!) <= 1000) last--;
    const firstMs = (first * 1000) / RATE;
    const lastMs = (last * 1000) / RATE;
    const lead = muLawIdle(1000);
    const events = runVad(opts, concat(lead, speech, muLawIdle(1500, rng(2))));
    expect(events.map((e) => e.type)).toEqual(['speech_start', 'speech_confirmed', 'speech_end']);
    expect(Math.abs(events[0]!.atMs - (1000 + firstMs))).toBeLessThanOrEqual(3 * FRAME_MS);
    expect(Math.abs(events[2]!.atMs - (1000 + lastMs))).toBeLessThanOrEqual(3 * FRAME_MS);
    expect(msOf([lead, speech])).toBeGreaterThan(events[2]!.atMs);
  });

  it('costs a few microseconds per 20 ms frame', () => {
    const audio = concat(muLawIdle(2000), tone(1000), noise(2000, 300), tone(500), silence(500));
    const vad = new EnergyVad(opts);
    const frames = audio.length / FRAME;
    const rounds = 20;
    const started = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < audio.length; i += FRAME) vad.push(audio.subarray(i, i + FRAME));
    }
    const perFrameUs = Number(process.hrtime.bigint() - started) / 1000 / (frames * rounds);
    // Hundreds of calls on two cores leave ~50 µs of CPU per call per frame for everything.
    expect(perFrameUs).toBeLessThan(20);
  });
});
