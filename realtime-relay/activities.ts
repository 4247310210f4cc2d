/**
 * The relay's activities, on task queue relay.<instanceId>: they run in the process that holds the
 * caller's socket, so speech goes out with no extra hop (design.md, turn protocol step 3).
 */
import { Context } from '@temporalio/activity';
import type { RelayActivities } from '../contracts/call';
import type { SessionRegistry } from './sessions';

const HOLD_HEARTBEAT_MS = 1_000;

export function createRelayActivities(sessions: SessionRegistry): RelayActivities {
  return {
    async speak(input) {
      const session = sessions.require(input.callId, false);
      if (session.ended) {
        // The caller hung up before this could be said.
        return { text: input.text ?? '', heardText: '', interrupted: true, callerGone: true, timings: {} };
      }
      const ctx = Context.current();
      return session.speak(input, ctx.cancellationSignal, () => ctx.heartbeat());
    },

    async holdMedia(input) {
      const session = sessions.require(input.callId, false);
      if (session.ended) return session.result();
      session.applySettings(input.settings);
      const ctx = Context.current();
      const cancelled = new Promise<void>((resolve) =>
        ctx.cancellationSignal.addEventListener('abort', () => resolve(), { once: true }),
      );
      while (!session.ended && !ctx.cancellationSignal.aborted) {
        ctx.heartbeat();
        await Promise.race([
          session.whenEnded(),
          cancelled,
          new Promise((r) => setTimeout(r, HOLD_HEARTBEAT_MS)),
        ]);
      }
      // The workflow was cancelled or ended without releasing the stream: nothing should stay open.
      if (!session.ended) await session.release('workflow stopped holding the call');
      return session.result();
    },

    async releaseMedia({ callId, reason }) {
      const session = sessions.get(callId);
      if (!session || session.ended) return;
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), HOLD_HEARTBEAT_MS);
      try {
        await session.release(reason);
      } finally {
        clearInterval(beat);
      }
    },
  };
}
