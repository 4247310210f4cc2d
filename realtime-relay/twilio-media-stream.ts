/**
 * Twilio Media Streams (bidirectional, `<Connect><Stream>`), exactly as protocols.md describes:
 * in: connected, start, media, dtmf, mark, stop; out: media, mark, clear.
 *
 * Twilio sends no credentials on the upgrade that we can trust for the call itself, so the stream
 * is attached to a call only once `start` carries a valid stream token (a `<Parameter>` the api
 * signed). A bad, expired or replayed token closes the socket with 4401; no `start` in time closes
 * it with 4408. Malformed or out-of-order messages are counted and logged, and the call goes on.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { mediaConnectedSignal } from '../contracts/call';
import type { Logger } from '../lib/logger';
import {
  StreamTokenError,
  verifyStreamToken,
  type StreamTokenClaims,
  type UsedTokenRegistry,
} from '../lib/stream-token';
import { muLawDecode, muLawEncode } from './audio/g711';
import { CallSession, type MediaTransport, type SessionDeps } from './call-session';
import type { StreamRoute } from './server';
import type { SessionRegistry } from './sessions';
import { STREAM_CLOSE_CODES as CLOSE_CODES } from '../contracts/stream-close-codes';

/** Close codes of the streams (shared with the dashboard's voice client). */
export { CLOSE_CODES };

export interface StreamRouteDeps extends SessionDeps {
  sessions: SessionRegistry;
  tokenSecret: string;
  usedTokens: UsedTokenRegistry;
  startTimeoutMs?: number;
}

/** Counts and logs a misbehaving client without flooding the log. */
export class ProtocolProblems {
  malformed = 0;
  outOfOrder = 0;
  constructor(private readonly logger: Logger) {}

  report(kind: 'malformed' | 'outOfOrder', detail: string): void {
    const count = kind === 'malformed' ? ++this.malformed : ++this.outOfOrder;
    if (count <= 5 || count % 500 === 0)
      this.logger.warn({ kind, count, detail }, 'media stream message ignored');
  }
}

/** Verifies a token and claims it (single use); throws StreamTokenError. */
export function acceptToken(
  deps: StreamRouteDeps,
  token: unknown,
  channel: 'voice' | 'web',
): StreamTokenClaims {
  const claims = verifyStreamToken(deps.tokenSecret, token);
  if (claims.channel !== channel)
    throw new StreamTokenError('malformed', `stream token is for the ${claims.channel} channel`);
  deps.usedTokens.claim(claims);
  return claims;
}

/** Attaches a session to its call: registers it and tells the workflow where the audio is. */
export async function attachSession(deps: StreamRouteDeps, session: CallSession): Promise<boolean> {
  deps.sessions.add(session);
  try {
    await deps.temporal.workflow
      .getHandle(session.workflowId)
      .signal(mediaConnectedSignal, { relayInstanceId: deps.instanceId });
    return true;
  } catch (err) {
    deps.logger.warn({ err, callId: session.callId }, 'call workflow not reachable: refusing the stream');
    session.transport.close(CLOSE_CODES.callGone, 'call is not in progress');
    session.end('socket_closed');
    return false;
  }
}

interface TwilioMessage {
  event?: unknown;
  sequenceNumber?: unknown;
  streamSid?: unknown;
  start?: {
    callSid?: unknown;
    streamSid?: unknown;
    customParameters?: Record<string, unknown>;
    mediaFormat?: { encoding?: unknown };
  };
  media?: { track?: unknown; payload?: unknown };
  dtmf?: { digit?: unknown };
  mark?: { name?: unknown };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function twilioStreamRoute(deps: StreamRouteDeps): StreamRoute {
  return {
    // Authentication happens on `start` (the token is a stream parameter, not an upgrade header).
    authorize() {},
    onConnection(ws: WebSocket, req: IncomingMessage) {
      const logger = deps.logger.child({ stream: 'twilio', remote: req.socket.remoteAddress });
      const problems = new ProtocolProblems(logger);
      let streamSid: string | undefined;
      let session: CallSession | undefined;
      let lastSequence = 0;
      let refused = false;

      const send = (message: Record<string, unknown>) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
      };
      const close = (code: number, reason: string) => {
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
      };
      const startTimer = setTimeout(() => {
        if (!session) close(CLOSE_CODES.startTimeout, 'no start message received');
      }, deps.startTimeoutMs ?? 10_000);

      const transport: MediaTransport = {
        channel: 'voice',
        sendAudio: (pcm) =>
          send({ event: 'media', streamSid, media: { payload: muLawEncode(pcm).toString('base64') } }),
        sendMark: (name) => send({ event: 'mark', streamSid, mark: { name } }),
        clear: () => send({ event: 'clear', streamSid }),
        close,
      };

      const onStart = (message: TwilioMessage) => {
        clearTimeout(startTimer);
        let claims: StreamTokenClaims;
        try {
          claims = acceptToken(deps, message.start?.customParameters?.token, 'voice');
          const callSid = message.start?.callSid;
          if (claims.callSid && callSid !== claims.callSid) {
            throw new StreamTokenError('malformed', 'stream token belongs to another call');
          }
        } catch (err) {
          refused = true;
          const reason =
            err instanceof StreamTokenError ? `stream token ${err.problem}` : 'stream token invalid';
          logger.warn({ reason }, 'media stream refused');
          close(CLOSE_CODES.unauthorized, reason);
          return;
        }
        const sid = message.start?.streamSid ?? message.streamSid;
        streamSid = typeof sid === 'string' ? sid : '';
        session = new CallSession(claims, transport, deps);
        logger.info({ callId: claims.callId, streamSid }, 'media stream started');
        void attachSession(deps, session);
      };

      ws.on('message', (data, isBinary) => {
        if (refused) return;
        let message: TwilioMessage;
        try {
          if (isBinary) throw new Error('binary frame');
          message = JSON.parse((data as Buffer).toString('utf8')) as TwilioMessage;
          if (typeof message !== 'object' || message === null || typeof message.event !== 'string') {
            throw new Error('no event');
          }
        } catch (err) {
          problems.report('malformed', (err as Error).message);
          if (session) session.stats.malformed = problems.malformed;
          return;
        }
        const sequence = Number(message.sequenceNumber);
        if (Number.isFinite(sequence) && message.event !== 'connected') {
          if (sequence <= lastSequence) {
            problems.report('outOfOrder', `sequence ${sequence} after ${lastSequence}`);
            if (session) session.stats.outOfOrder = problems.outOfOrder;
            if (message.event === 'media') return; // stale audio would garble the utterance
          } else lastSequence = sequence;
        }
        switch (message.event) {
          case 'connected':
            return;
          case 'start':
            if (session) return problems.report('outOfOrder', 'second start');
            return onStart(message);
          case 'media': {
            if (!session) return problems.report('outOfOrder', 'media before start');
            if (message.media?.track !== undefined && message.media.track !== 'inbound') return;
            const payload = message.media?.payload;
            if (typeof payload !== 'string' || !BASE64.test(payload)) {
              problems.report('malformed', 'media payload is not base64');
              session.stats.malformed = problems.malformed;
              return;
            }
            return session.onAudio(muLawDecode(Buffer.from(payload, 'base64')));
          }
          case 'dtmf': {
            const digit = message.dtmf?.digit;
            if (!session || typeof digit !== 'string' || !/^[0-9*#A-D]$/.test(digit))
              return problems.report('malformed', 'dtmf without a digit');
            return session.onDtmf(digit);
          }
          case 'mark': {
            const name = message.mark?.name;
            if (!session || typeof name !== 'string')
              return problems.report('malformed', 'mark without a name');
            return session.onMarkEchoed(name);
          }
          case 'stop':
            if (!session) return close(CLOSE_CODES.normal, 'stopped before start');
            session.end('stop');
            return close(CLOSE_CODES.normal, 'stream stopped');
          default:
            problems.report('malformed', `unknown event ${String(message.event).slice(0, 40)}`);
        }
      });

      ws.on('close', () => {
        clearTimeout(startTimer);
        session?.end('socket_closed');
      });
    },
  };
}
