/**
 * A browser voice call with an agent through the relay's `/web/stream` (see realtime-relay/web-stream.ts).
 *
 * Microphone → AudioWorklet (ScriptProcessor where worklets are missing) → downsampled to 16 kHz PCM16
 * little-endian → one `media` frame every 20 ms. The relay's `media` is played back to back through the
 * same AudioContext; each `mark` is echoed once the audio queued before it has finished playing, and
 * `clear` (the caller spoke over the agent) stops playback at once and echoes every pending mark, as
 * Twilio does. `transcript`, `turn` and `barge_in` are handed to the callbacks for the test panel.
 */
import { STREAM_CLOSE_CODES } from '../../contracts/stream-close-codes';

export type VoiceCallState = 'connecting' | 'live' | 'ended';

export interface TestCallTicket {
  callId: string;
  streamUrl: string;
  token: string;
  encoding: 'pcm16' | 'mulaw';
  sampleRate: number;
  version: number | null;
  expiresAt?: string;
}

export interface VoiceTranscript {
  role: 'caller' | 'agent';
  turnId: number;
  text: string;
  interrupted?: boolean;
}

export interface VoiceTurn {
  turnId: number;
  timings: Record<string, number>;
}

export interface VoiceCallCallbacks {
  onState(state: VoiceCallState, closed?: { code: number; reason: string }): void;
  onTranscript(entry: VoiceTranscript): void;
  onTurn(turn: VoiceTurn): void;
  /** Microphone level, 0 (silence or muted) to 1, about ten times a second. */
  onLevel(level: number): void;
  /** Something the user should read: microphone refused, relay closed the call abnormally… */
  onError(message: string): void;
  onBargeIn?(turnId: number): void;
}

/** A failure of the browser side (microphone, audio), with a message meant for the user. */
export class VoiceCallError extends Error {
  constructor(
    readonly kind: 'microphone' | 'unsupported' | 'relay',
    message: string,
  ) {
    super(message);
    this.name = 'VoiceCallError';
  }
}

/** The relay's close codes. */
export const RELAY_CLOSE_CODES = STREAM_CLOSE_CODES;

const WIRE_RATE = 16_000;
const FRAME_SAMPLES = WIRE_RATE / 50; // 20 ms
const LEVEL_EVERY_FRAMES = 5; // 100 ms
const PLAYBACK_LEAD_S = 0.04;

const TAP_PROCESSOR = 'parley-mic-tap';
/** Posts the microphone's samples to the page in blocks of about 20 ms. */
const TAP_MODULE = `
class Tap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.max(128, Math.round(sampleRate / 50));
    this.buf = new Float32Array(this.size);
    this.n = 0;
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      for (let i = 0; i < ch.length; i++) {
        this.buf[this.n++] = ch[i];
        if (this.n === this.size) {
          this.port.postMessage(this.buf);
          this.buf = new Float32Array(this.size);
          this.n = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor('${TAP_PROCESSOR}', Tap);
`;

/** What a non-normal close means, for the user. */
export function describeClose(code: number, reason: string, opened: boolean, url: string): string {
  const why = reason ? `: ${reason}` : '';
  switch (code) {
    case RELAY_CLOSE_CODES.unauthorized:
      return `The relay refused the call's stream token${why}. Start a new call.`;
    case RELAY_CLOSE_CODES.protocolError:
      return `The relay rejected the audio stream${why}.`;
    case RELAY_CLOSE_CODES.startTimeout:
      return `The relay did not receive the stream start in time${why}.`;
    case RELAY_CLOSE_CODES.callGone:
      return `The call is over or unknown to the relay${why}.`;
    case RELAY_CLOSE_CODES.goingAway:
      return `The relay went away${why}. Start a new call.`;
    case 1006:
      return opened
        ? 'The connection to the relay was lost.'
        : `Could not connect to the relay at ${url}. Check that it is running and reachable from this browser.`;
    default:
      return `The relay closed the call (code ${code})${why}.`;
  }
}

function microphoneError(err: unknown): VoiceCallError {
  const name = (err as { name?: string })?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') {
    return new VoiceCallError(
      'microphone',
      "Microphone access was denied. Allow the microphone for this site (the icon in the browser's address bar), then start the call again.",
    );
  }
  if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError') {
    return new VoiceCallError(
      'microphone',
      'No microphone was found. Connect one, then start the call again.',
    );
  }
  if (name === 'NotReadableError' || name === 'TrackStartError') {
    return new VoiceCallError(
      'microphone',
      'The microphone is in use by another application or could not be started.',
    );
  }
  return new VoiceCallError(
    'microphone',
    `The microphone could not be opened: ${(err as Error)?.message ?? String(err)}`,
  );
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}

function pcm16FromBase64(payload: string): Float32Array<ArrayBuffer> {
  const bin = atob(payload);
  const n = Math.floor(bin.length / 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
    if (v >= 0x8000) v -= 0x10000;
    out[i] = v / 0x8000;
  }
  return out;
}

/** Streaming downsampler: averages the input over each output sample's span (a crude low-pass). */
class Downsampler {
  private pending = new Float32Array(0);
  private pos = 0;
  private readonly ratio: number;

  constructor(inRate: number, outRate: number) {
    this.ratio = inRate / outRate;
  }

  push(input: Float32Array): Float32Array {
    const all = new Float32Array(this.pending.length + input.length);
    all.set(this.pending);
    all.set(input, this.pending.length);
    const out: number[] = [];
    const r = this.ratio;
    while (this.pos + Math.max(r, 1) <= all.length) {
      const from = Math.floor(this.pos);
      const to = Math.max(from + 1, Math.floor(this.pos + r));
      let sum = 0;
      for (let i = from; i < to; i++) sum += all[i]!;
      out.push(sum / (to - from));
      this.pos += r;
    }
    const consumed = Math.min(all.length, Math.floor(this.pos));
    this.pending = all.slice(consumed);
    this.pos -= consumed;
    return Float32Array.from(out);
  }
}

function streamUrlOf(ticket: TestCallTicket): URL {
  const url = new URL(ticket.streamUrl, window.location.href);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  // Browsers cannot set headers on a WebSocket: the token rides in the query string.
  url.searchParams.set('token', ticket.token);
  url.searchParams.set('encoding', ticket.encoding);
  return url;
}

/** Connects only to say `stop`: a call created after the user already hung up. */
function abandon(ticket: TestCallTicket): void {
  try {
    const ws = new WebSocket(streamUrlOf(ticket).toString());
    ws.onopen = () => {
      ws.send(JSON.stringify({ event: 'stop' }));
      ws.close(RELAY_CLOSE_CODES.normal, 'hung up');
    };
  } catch {
    // the relay will time the stream out
  }
}

export class VoiceCall {
  private ctx: AudioContext | undefined;
  private stream: MediaStream | undefined;
  private nodes: AudioNode[] = [];
  private ws: WebSocket | undefined;
  private url = '';
  private opened = false;
  private live = false;
  private finished = false;
  private muted = false;
  private playbackRate = WIRE_RATE;

  private downsampler: Downsampler | undefined;
  private frame = new Float32Array(FRAME_SAMPLES);
  private frameFill = 0;
  private framesSinceLevel = 0;
  private levelPeak = 0;

  private playhead = 0;
  private readonly sources = new Set<AudioBufferSourceNode>();
  private pendingMarks: { name: string; at: number }[] = [];
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly callbacks: VoiceCallCallbacks) {}

  get isMuted(): boolean {
    return this.muted;
  }

  /**
   * Opens the microphone, asks `openCall` for a test call (the api's POST test-calls) and connects to
   * the relay. Call it straight from a click: the AudioContext is created before the first await, while
   * the browser still counts the click as permission to play sound. Rejects with VoiceCallError (browser
   * side) or whatever `openCall` rejects with; resolves with the ticket once the socket is opening.
   */
  async start(openCall: () => Promise<TestCallTicket>): Promise<TestCallTicket | undefined> {
    this.callbacks.onState('connecting');
    const Ctx =
      window.AudioContext ??
      (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
    if (!Ctx || typeof WebSocket === 'undefined') {
      throw new VoiceCallError(
        'unsupported',
        'This browser cannot make voice calls (no Web Audio or WebSocket).',
      );
    }
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new VoiceCallError(
        'unsupported',
        'The browser only allows the microphone on secure pages (https:// or localhost).',
      );
    }
    const ctx = new Ctx();
    this.ctx = ctx;
    void ctx.resume().catch(() => undefined);
    try {
      let stream: MediaStream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true },
        });
      } catch (err) {
        throw microphoneError(err);
      }
      if (this.finished) {
        for (const track of stream.getTracks()) track.stop();
        return undefined;
      }
      this.stream = stream;
      await this.startCapture(ctx, stream);
      if (this.finished) return undefined;

      const ticket = await openCall();
      if (this.finished) {
        // Hung up while the call was being created: tell the relay at once, so it does not wait for us.
        abandon(ticket);
        return ticket;
      }
      if (ticket.encoding !== 'pcm16') {
        throw new VoiceCallError(
          'relay',
          `Unsupported call audio encoding ${ticket.encoding}; expected pcm16.`,
        );
      }
      this.playbackRate = ticket.sampleRate || WIRE_RATE;
      this.connect(ticket);
      return ticket;
    } catch (err) {
      this.release();
      throw err;
    }
  }

  setMuted(muted: boolean): void {
    this.muted = muted;
    for (const track of this.stream?.getAudioTracks() ?? []) track.enabled = !muted;
    if (muted) this.callbacks.onLevel(0);
  }

  /** Sends a keypad digit (0-9, *, #). */
  sendDigit(digit: string): void {
    if (/^[0-9*#]$/.test(digit)) this.send({ event: 'dtmf', dtmf: { digit } });
  }

  /** Ends the call from this side: `stop`, close the socket, release the microphone and audio. */
  hangUp(): void {
    if (this.finished) return;
    this.send({ event: 'stop' });
    const ws = this.ws;
    this.finished = true;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
      ws.close(RELAY_CLOSE_CODES.normal, 'hung up');
    }
    this.release();
    this.callbacks.onState('ended', { code: RELAY_CLOSE_CODES.normal, reason: 'hung up' });
  }

  // --- capture ------------------------------------------------------------------------------------

  private async startCapture(ctx: AudioContext, stream: MediaStream): Promise<void> {
    const source = ctx.createMediaStreamSource(stream);
    // Nodes are only pulled when they lead to the destination: through a silent gain.
    const sink = ctx.createGain();
    sink.gain.value = 0;
    sink.connect(ctx.destination);
    this.nodes.push(source, sink);
    this.downsampler = new Downsampler(ctx.sampleRate, WIRE_RATE);

    if (ctx.audioWorklet && typeof AudioWorkletNode !== 'undefined') {
      const url = URL.createObjectURL(new Blob([TAP_MODULE], { type: 'application/javascript' }));
      try {
        await ctx.audioWorklet.addModule(url);
        const tap = new AudioWorkletNode(ctx, TAP_PROCESSOR, {
          numberOfInputs: 1,
          numberOfOutputs: 1,
          channelCount: 1,
        });
        tap.port.onmessage = (e: MessageEvent<Float32Array>) => this.onCaptured(e.data);
        source.connect(tap);
        tap.connect(sink);
        this.nodes.push(tap);
        return;
      } catch {
        // fall back to the ScriptProcessor below
      } finally {
        URL.revokeObjectURL(url);
      }
    }
    const processor = ctx.createScriptProcessor(2048, 1, 1);
    processor.onaudioprocess = (e) => this.onCaptured(e.inputBuffer.getChannelData(0).slice());
    source.connect(processor);
    processor.connect(sink);
    this.nodes.push(processor);
  }

  private onCaptured(samples: Float32Array): void {
    if (this.finished || !this.downsampler) return;
    const down = this.downsampler.push(samples);
    for (let i = 0; i < down.length; i++) {
      this.frame[this.frameFill++] = down[i]!;
      if (this.frameFill === FRAME_SAMPLES) {
        this.flushFrame();
        this.frameFill = 0;
      }
    }
  }

  private flushFrame(): void {
    let energy = 0;
    const bytes = new Uint8Array(FRAME_SAMPLES * 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const s = this.muted ? 0 : Math.max(-1, Math.min(1, this.frame[i]!));
      energy += s * s;
      view.setInt16(i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    const rms = Math.sqrt(energy / FRAME_SAMPLES);
    this.levelPeak = Math.max(this.levelPeak, rms);
    if (++this.framesSinceLevel >= LEVEL_EVERY_FRAMES) {
      const db = this.levelPeak > 0 ? 20 * Math.log10(this.levelPeak) : -100;
      this.callbacks.onLevel(this.muted ? 0 : Math.max(0, Math.min(1, (db + 60) / 60)));
      this.framesSinceLevel = 0;
      this.levelPeak = 0;
    }
    if (this.live) {
      this.send({ event: 'media', media: { payload: toBase64(bytes) } });
    }
  }

  // --- relay --------------------------------------------------------------------------------------

  private connect(ticket: TestCallTicket): void {
    const url = streamUrlOf(ticket);
    this.url = url.origin;
    const ws = new WebSocket(url.toString());
    this.ws = ws;
    ws.onopen = () => {
      this.opened = true;
    };
    ws.onmessage = (e: MessageEvent) => {
      if (typeof e.data !== 'string') return;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(e.data) as Record<string, unknown>;
      } catch {
        return;
      }
      this.onRelayMessage(message);
    };
    ws.onclose = (e: CloseEvent) => {
      if (this.finished) return;
      this.finished = true;
      this.release();
      this.callbacks.onState('ended', { code: e.code, reason: e.reason });
      if (e.code !== RELAY_CLOSE_CODES.normal) {
        this.callbacks.onError(describeClose(e.code, e.reason, this.opened, this.url));
      }
    };
    this.ticker = setInterval(() => this.echoDueMarks(), 20);
  }

  private onRelayMessage(message: Record<string, unknown>): void {
    switch (message.event) {
      case 'start': {
        const media = message.media as { sampleRate?: unknown } | undefined;
        if (typeof media?.sampleRate === 'number') this.playbackRate = media.sampleRate;
        this.live = true;
        this.callbacks.onState('live');
        return;
      }
      case 'media': {
        const payload = (message.media as { payload?: unknown } | undefined)?.payload;
        if (typeof payload === 'string') this.play(payload);
        return;
      }
      case 'mark': {
        const name = (message.mark as { name?: unknown } | undefined)?.name;
        if (typeof name !== 'string') return;
        this.pendingMarks.push({ name, at: this.playhead });
        this.echoDueMarks();
        return;
      }
      case 'clear':
        this.clearPlayback();
        return;
      case 'transcript':
        if ((message.role === 'caller' || message.role === 'agent') && typeof message.text === 'string') {
          this.callbacks.onTranscript({
            role: message.role,
            turnId: typeof message.turnId === 'number' ? message.turnId : -1,
            text: message.text,
            interrupted: message.interrupted === true,
          });
        }
        return;
      case 'turn':
        if (typeof message.turnId === 'number' && message.timings && typeof message.timings === 'object') {
          this.callbacks.onTurn({
            turnId: message.turnId,
            timings: message.timings as Record<string, number>,
          });
        }
        return;
      case 'barge_in':
        if (typeof message.turnId === 'number') this.callbacks.onBargeIn?.(message.turnId);
        return;
      default:
        return;
    }
  }

  private send(message: Record<string, unknown>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  // --- playback -----------------------------------------------------------------------------------

  private play(payload: string): void {
    const ctx = this.ctx;
    if (!ctx || ctx.state === 'closed') return;
    const samples = pcm16FromBase64(payload);
    if (samples.length === 0) return;
    const buffer = ctx.createBuffer(1, samples.length, this.playbackRate);
    buffer.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    const at = Math.max(this.playhead, ctx.currentTime + PLAYBACK_LEAD_S);
    source.start(at);
    this.playhead = at + buffer.duration;
    this.sources.add(source);
    source.onended = () => {
      this.sources.delete(source);
      source.disconnect();
    };
  }

  /** Echoes, in order, every mark whose preceding audio has played. */
  private echoDueMarks(): void {
    const now = this.ctx?.currentTime ?? Infinity;
    while (this.pendingMarks.length > 0 && this.pendingMarks[0]!.at <= now) {
      const { name } = this.pendingMarks.shift()!;
      this.send({ event: 'mark', mark: { name } });
    }
  }

  /** Barge-in: stop what is playing now and echo the marks of the audio that will never play. */
  private clearPlayback(): void {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // not started yet or already stopped
      }
      source.disconnect();
    }
    this.sources.clear();
    this.playhead = this.ctx?.currentTime ?? 0;
    const marks = this.pendingMarks;
    this.pendingMarks = [];
    for (const { name } of marks) this.send({ event: 'mark', mark: { name } });
  }

  // --- teardown -----------------------------------------------------------------------------------

  private release(): void {
    this.finished = true;
    this.live = false;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = undefined;
    for (const node of this.nodes) {
      try {
        node.disconnect();
      } catch {
        // already disconnected
      }
      if (typeof AudioWorkletNode !== 'undefined' && node instanceof AudioWorkletNode)
        node.port.onmessage = null;
    }
    this.nodes = [];
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // already stopped
      }
    }
    this.sources.clear();
    this.pendingMarks = [];
    const ctx = this.ctx;
    this.ctx = undefined;
    if (ctx && ctx.state !== 'closed') void ctx.close().catch(() => undefined);
    this.callbacks.onLevel(0);
  }
}
