/**
 * The calls this relay holds, by call id. `speak`, `holdMedia` and `releaseMedia` find their call's
 * session here; an ended session stays findable for a minute so a late holdMedia still gets the
 * stream's result (its recording) instead of an error.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MEDIA_STREAM_GONE } from '../contracts/call';
import type { CallSession } from './call-session';
const KEEP_ENDED_MS = 60_000;

export class SessionRegistry {
  private readonly sessions = new Map<string, CallSession>();

  constructor(private readonly instanceId: string) {}

  add(session: CallSession): void {
    const previous = this.sessions.get(session.callId);
    // A reconnect replaces the old stream of the same call.
    if (previous && previous !== session && !previous.ended) {
      previous.transport.close(4409, 'replaced by a new stream for this call');
      previous.end('socket_closed');
    }
    this.sessions.set(session.callId, session);
    void session.whenEnded().then(() => {
      setTimeout(() => {
        if (this.sessions.get(session.callId) === session) this.sessions.delete(session.callId);
      }, KEEP_ENDED_MS).unref();
    });
  }

  get(callId: string): CallSession | undefined {
    return this.sessions.get(callId);
  }

  /** The call's session, or a non-retryable failure the workflow treats as lost media. */
  require(callId: string, live = true): CallSession {
    const session = this.sessions.get(callId);
    if (!session || (live && session.ended)) {
      throw ApplicationFailure.nonRetryable(
        `relay ${this.instanceId} holds no ${session ? 'live ' : ''}media stream for call ${callId}`,
        MEDIA_STREAM_GONE,
      );
    }
    return session;
  }

  live(): CallSession[] {
    return [...this.sessions.values()].filter((s) => !s.ended);
  }
}
