/**
 * `speak`, text edition: the process that holds the user's connection runs it. On the calls queue it
 * simply returns the words; in the api (queue api.<instanceId>) it also streams them, token by
 * token, to the user's SSE connection. The relay's audio edition keeps this same contract.
 */
import { Context } from '@temporalio/activity';
import type { SpeakInput, SpeakResult } from '../contracts/call';
import { streamChat, type LlmClients } from './llm';

export type SpeechSink = (delta: string) => void;

export interface SpeakDeps {
  llmClients: LlmClients;
  /** Finds the live connection waiting for this turn's words, if this process holds one. */
  sinkFor?: (callId: string, turnId: number) => SpeechSink | undefined;
}

function heartbeat(): void {
  try {
    Context.current().heartbeat();
  } catch {
    // Not inside an activity (direct call in a test).
  }
}

export function createSpeakActivities(deps: SpeakDeps) {
  return {
    async speak(input: SpeakInput): Promise<SpeakResult> {
      const started = performance.now();
      const sink = deps.sinkFor?.(input.callId, input.turnId);
      if (input.llm) {
        let firstDeltaMs: number | undefined;
        const result = await streamChat(deps.llmClients, input.llm, (delta) => {
          firstDeltaMs ??= performance.now() - started;
          sink?.(delta);
          heartbeat();
        });
        return {
          text: result.content,
          heardText: result.content,
          interrupted: false,
          llm: result,
          timings: {
            speakStartedToFirstTokenMs: Math.round(firstDeltaMs ?? result.timings.totalMs),
            llmTotalMs: result.timings.totalMs,
          },
        };
      }
      const text = input.text ?? '';
      if (text) sink?.(text);
      return {
        text,
        heardText: text,
        interrupted: false,
        timings: { speakMs: Math.round(performance.now() - started) },
      };
    },
  };
}
