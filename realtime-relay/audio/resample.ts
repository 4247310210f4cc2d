/**
 * Sample-rate conversion for speech (8 kHz telephone audio ⇄ 16 kHz STT input, 22.05/24 kHz TTS
 * output → 8 kHz). Linear interpolation; when downsampling, a moving-average low-pass over the
 * decimation ratio first keeps the aliasing of speech harmonics audible-clean enough for STT.
 */
export function resample(pcm: Int16Array, fromRate: number, toRate: number): Int16Array {
  if (!(fromRate > 0 && toRate > 0))
    throw new RangeError(`resample: rates must be positive (${fromRate} → ${toRate})`);
  if (fromRate === toRate || pcm.length === 0) return pcm.slice();
  let source: Int16Array | Float32Array = pcm;
  if (toRate < fromRate) {
    const width = Math.max(1, Math.round(fromRate / toRate));
    if (width > 1) {
      const smoothed = new Float32Array(pcm.length);
      let sum = 0;
      for (let i = 0; i < pcm.length; i++) {
        sum += pcm[i]!;
        if (i >= width) sum -= pcm[i - width]!;
        smoothed[i] = sum / Math.min(i + 1, width);
      }
      source = smoothed;
    }
  }
  const outLength = Math.max(1, Math.round((pcm.length * toRate) / fromRate));
  const out = new Int16Array(outLength);
  const step = fromRate / toRate;
  const last = source.length - 1;
  for (let i = 0; i < outLength; i++) {
    const pos = i * step;
    const at = Math.min(Math.floor(pos), last);
    const frac = pos - at;
    const a = source[at]!;
    const b = source[Math.min(at + 1, last)]!;
    const v = Math.round(a + (b - a) * frac);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}
