/**
 * Browser test calls (`/web/stream?token=…&encoding=pcm16|mulaw`): the dashboard's microphone goes
 * through the same pipeline and the same call workflow as a phone call, channel `web`.
 *
 * The wire mirrors Twilio Media Streams so one client model serves both: in `media` (base64 audio),
 * `mark` (echo after playback), `dtmf`, `stop`; out `media`, `mark`, `clear`, plus live events for
 * the test panel: `transcript` (who said what, interruptions marked), `turn` (per-turn latency),
 * `barge_in`. Audio is PCM16 little-endian at 16 kHz (`pcm16`, the default) or μ-law at 8 kHz.
 * Browsers cannot set headers on a WebSocket, so the api-issued token rides in the query string.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { StreamTokenError } from '../lib/stream-token';
import { muLawDecode, muLawEncode } from './audio/g711';
import { resample } from './audio/resample';
import { CallSession, SAMPLE_RATE, type MediaTransport } from './call-session';
import type { StreamRoute } from './server';
import {
  CLOSE_CODES,
  ProtocolProblems,
  acceptToken,
  attachSession,
  type StreamRouteDeps,
} from './twilio-media-stream';

const PCM16_RATE = 16_000;

function decodePcm16(buf: Buffer): Int16Array {
  const samples = new Int16Array(Math.floor(buf.length / 2));
  for (let i = 0; i < samples.length; i++) samples[i] = buf.readInt16LE(i * 2);
  return resample(samples, PCM16_RATE, SAMPLE_RATE);
}

function encodePcm16(pcm: Int16Array): Buffer {
  const up = resample(pcm, SAMPLE_RATE, PCM16_RATE);
  const out = Buffer.alloc(up.length * 2);
  for (let i = 0; i < up.length; i++) out.writeInt16LE(up[i]!, i * 2);
  return out;
}

export function webStreamRoute(deps: StreamRouteDeps): StreamRoute {
  return {
    authorize() {},
    onConnection(ws: WebSocket, req: IncomingMessage) {
      const url = new URL(req.url ?? '/', 'http://relay');
      const logger = deps.logger.child({ stream: 'web' });
      const problems = new ProtocolProblems(logger);
      const encoding = url.searchParams.get('encoding') ?? 'pcm16';
      const close = (code: number, reason: string) => {
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
      };
      if (encoding !== 'pcm16' && encoding !== 'mulaw') {
        return close(
          CLOSE_CODES.protocolError,
          `unsupported encoding '${encoding.slice(0, 20)}' (pcm16 or mulaw)`,
        );
      }
      let claims;
      try {
        claims = acceptToken(deps, url.searchParams.get('token'), 'web');
      } catch (err) {
        const reason =
          err instanceof StreamTokenError ? `stream token ${err.problem}` : 'stream token invalid';
        logger.warn({ reason }, 'browser stream refused');
        return close(CLOSE_CODES.unauthorized, reason);
      }
      const send = (message: Record<string, unknown>) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
      };
      const transport: MediaTransport = {
        channel: 'web',
        sendAudio: (pcm) =>
          send({
            event: 'media',
            media: {
              payload: (encoding === 'pcm16' ? encodePcm16(pcm) : muLawEncode(pcm)).toString('base64'),
            },
          }),
        sendMark: (name) => send({ event: 'mark', mark: { name } }),
        clear: () => send({ event: 'clear' }),
        notify: (event) => send(event),
        close,
      };
      const session = new CallSession(claims, transport, deps);
      send({
        event: 'start',
        callId: claims.callId,
        media: { encoding, sampleRate: encoding === 'pcm16' ? PCM16_RATE : SAMPLE_RATE },
      });
      void attachSession(deps, session);

      ws.on('message', (data, isBinary) => {
        let message: {
          event?: unknown;
          media?: { payload?: unknown };
          mark?: { name?: unknown };
          dtmf?: { digit?: unknown };
        };
        try {
          if (isBinary) throw new Error('binary frame');
          message = JSON.parse((data as Buffer).toString('utf8')) as typeof message;
          if (typeof message?.event !== 'string') throw new Error('no event');
        } catch (err) {
          problems.report('malformed', (err as Error).message);
          session.stats.malformed = problems.malformed;
          return;
        }
        switch (message.event) {
          case 'media': {
            const payload = message.media?.payload;
            if (typeof payload !== 'string') {
              problems.report('malformed', 'media without payload');
              session.stats.malformed = problems.malformed;
              return;
            }
            const bytes = Buffer.from(payload, 'base64');
            return session.onAudio(encoding === 'pcm16' ? decodePcm16(bytes) : muLawDecode(bytes));
          }
          case 'mark':
            if (typeof message.mark?.name === 'string') session.onMarkEchoed(message.mark.name);
            return;
          case 'dtmf':
            if (typeof message.dtmf?.digit === 'string' && /^[0-9*#]$/.test(message.dtmf.digit))
              session.onDtmf(message.dtmf.digit);
            return;
          case 'stop':
            session.end('stop');
            return close(CLOSE_CODES.normal, 'stream stopped');
          default:
            problems.report('malformed', `unknown event ${String(message.event).slice(0, 40)}`);
        }
      });
      ws.on('close', () => session.end('socket_closed'));
    },
  };
}
