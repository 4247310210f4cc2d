/**
 * RIFF/WAVE PCM16 encoding and decoding (mono or multi-channel, interleaved), and a file writer that
 * streams samples to disk and patches the header sizes when it closes (for call recordings).
 */
import { closeSync, openSync, writeSync } from 'node:fs';

function header(dataBytes: number, channels: number, sampleRate: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

function interleave(channels: Int16Array[]): Buffer {
  const frames = Math.max(...channels.map((c) => c.length));
  const out = Buffer.alloc(frames * channels.length * 2);
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channels.length; c++) {
      out.writeInt16LE(channels[c]![i] ?? 0, (i * channels.length + c) * 2);
    }
  }
  return out;
}

/** One WAV file from one buffer per channel (shorter channels are padded with silence). */
export function encodeWav(channels: Int16Array[], sampleRate: number): Buffer {
  if (channels.length === 0) throw new RangeError('encodeWav: needs at least one channel');
  const data = interleave(channels);
  return Buffer.concat([header(data.length, channels.length, sampleRate), data]);
}

export class WavFormatError extends Error {}

/** Reads PCM16 WAV (as espeak-ng and sox write it), skipping chunks other than fmt and data. */
export function decodeWav(buf: Buffer): { sampleRate: number; channels: Int16Array[] } {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new WavFormatError('not a RIFF/WAVE file');
  }
  let offset = 12;
  let channels = 0;
  let sampleRate = 0;
  let bits = 0;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    let size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (buf.readUInt16LE(body) !== 1) throw new WavFormatError('only PCM WAV is supported');
      channels = buf.readUInt16LE(body + 2);
      sampleRate = buf.readUInt32LE(body + 4);
      bits = buf.readUInt16LE(body + 14);
    } else if (id === 'data') {
      if (bits !== 16 || channels < 1) throw new WavFormatError('only 16-bit PCM WAV is supported');
      // Streamed writers (espeak-ng --stdout) leave the size at 0 or 0xffffffff: read to the end.
      if (size === 0 || size === 0xffffffff || body + size > buf.length) size = buf.length - body;
      const frames = Math.floor(size / (2 * channels));
      const out = Array.from({ length: channels }, () => new Int16Array(frames));
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < channels; c++) out[c]![i] = buf.readInt16LE(body + (i * channels + c) * 2);
      }
      return { sampleRate, channels: out };
    }
    offset = body + size + (size % 2);
  }
  throw new WavFormatError('WAV file has no data chunk');
}

/** Streams interleaved PCM16 frames to a file; `close()` writes the final sizes into the header. */
export class WavFileWriter {
  private readonly fd: number;
  private dataBytes = 0;

  constructor(
    readonly path: string,
    readonly channels: number,
    readonly sampleRate: number,
  ) {
    this.fd = openSync(path, 'w');
    writeSync(this.fd, header(0, channels, sampleRate));
  }

  /** Appends frames, one array per channel (equal lengths; a shorter one is padded with silence). */
  write(channels: Int16Array[]): void {
    const data = interleave(channels);
    writeSync(this.fd, data);
    this.dataBytes += data.length;
  }

  get seconds(): number {
    return this.dataBytes / (2 * this.channels * this.sampleRate);
  }

  close(): void {
    writeSync(this.fd, header(this.dataBytes, this.channels, this.sampleRate), 0, 44, 0);
    closeSync(this.fd);
  }
}
