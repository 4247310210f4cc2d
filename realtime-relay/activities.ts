/**
 * The relay's activities, on task queue relay.<instanceId>: they run in the process that holds the
 * caller's socket, so speech goes out with no extra hop (design.md, turn protocol step 3).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { MEDIA_STREAM_GONE, type HoldMediaResult, type RelayActivities } from '../contracts/call';
import type { CallSession } from './call-session';
import type { SessionRegistry } from './sessions';

const HOLD_HEARTBEAT_MS = 1_000;

/**
 * How the stream ended. A relay that shut down with the call still live (its drain bound passed)
 * lost the call's media: that fails holdMedia as a lost stream, so the call ends `failed` naming
 * `relay_shutdown`, not as if the caller had hung up; the details carry what was held (the
 * recording), which the call record keeps.
 */
function holdResult(session: CallSession): HoldMediaResult {
  const result = session.result();
  if (result.endedBy === 'relay_shutdown') {
    throw ApplicationFailure.create({
      type: MEDIA_STREAM_GONE,
      message: 'the relay shut down with the call still live (relay_shutdown)',
      nonRetryable: true,
      details: [result],
    });
  }
  return result;
}

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
      if (session.ended) return holdResult(session);
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
      return holdResult(session);
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
