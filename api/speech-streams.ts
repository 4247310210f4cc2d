/**
 * Live text streams of agent replies. A client waiting on an SSE response registers a sink for its
 * (call, turn); the `speak` activity that this api process hosts on its own queue (api.<instanceId>)
 * writes the model's tokens into it as they arrive.
 */
import type { SpeechSink } from '../activities/speak';

export class SpeechStreams {
  private readonly sinks = new Map<string, SpeechSink>();

  constructor(
    /** The task queue this process's `speak` worker polls. */
    readonly taskQueue: string,
  ) {}

  open(callId: string, turnId: number, sink: SpeechSink): () => void {
    const key = `${callId}:${turnId}`;
    this.sinks.set(key, sink);
    return () => {
      if (this.sinks.get(key) === sink) this.sinks.delete(key);
    };
  }

  readonly sinkFor = (callId: string, turnId: number): SpeechSink | undefined =>
    this.sinks.get(`${callId}:${turnId}`);
}
