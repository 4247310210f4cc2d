/**
 * Call recording: a stereo WAV (left: caller, right: agent) at 8 kHz, written as the call runs.
 *
 * The caller's frames arrive continuously (Twilio sends silence too), so they are the clock: each
 * caller frame is written together with the agent audio that was playing at that moment. Agent
 * audio is queued when it is sent and consumed in step with the caller's frames, as the phone plays
 * it; a barge-in `clear` drops what was queued but never played, so the recording holds what the
 * caller actually heard.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { WavFileWriter } from './audio/wav';

export class CallRecorder {
  private readonly writer: WavFileWriter;
  private agentQueue: Int16Array[] = [];
  private agentOffset = 0;

  /** `relativePath` is inside `root` (the recording store); the call record keeps it relative. */
  constructor(
    readonly root: string,
    readonly relativePath: string,
  ) {
    const file = path.join(root, relativePath);
    mkdirSync(path.dirname(file), { recursive: true });
    this.writer = new WavFileWriter(file, 2, 8000);
  }

  caller(frame: Int16Array): void {
    this.writer.write([frame, this.takeAgent(frame.length)]);
  }

  agent(audio: Int16Array): void {
    if (audio.length > 0) this.agentQueue.push(audio);
  }

  /** Barge-in: audio queued for the phone but not yet played is dropped. */
  clearAgent(): void {
    this.agentQueue = [];
    this.agentOffset = 0;
  }

  close(): { path: string; seconds: number } {
    this.writer.close();
    return { path: this.relativePath, seconds: Math.round(this.writer.seconds * 100) / 100 };
  }

  private takeAgent(samples: number): Int16Array {
    const out = new Int16Array(samples);
    let filled = 0;
    while (filled < samples && this.agentQueue.length > 0) {
      const head = this.agentQueue[0]!;
      const take = Math.min(samples - filled, head.length - this.agentOffset);
      out.set(head.subarray(this.agentOffset, this.agentOffset + take), filled);
      filled += take;
      this.agentOffset += take;
      if (this.agentOffset >= head.length) {
        this.agentQueue.shift();
        this.agentOffset = 0;
      }
    }
    return out;
  }
}
