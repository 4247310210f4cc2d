/**
 * Twilio's side of a phone call, for tests, benchmarks and `npm run simulate-call`. It posts the
 * signed voice webhook a real call would, follows the TwiML answer, and when that is
 * `<Connect><Stream>` it opens the Media Stream exactly as Twilio does (wire facts:
 * /work/shared/protocols.md, "Twilio Media Streams" and "Twilio webhooks"):
 *
 * - `connected`, then `start` with the `<Parameter>`s; every number inside a message is a string;
 * - one 160-byte μ-law frame every 20 ms on a real-time clock, silence when the caller says nothing
 *   (the relay's endpointing relies on the silence arriving, not on gaps);
 * - the agent's audio is played back at real time; a `mark` is echoed when playback reaches it,
 *   `clear` drops the buffered audio and echoes every pending mark at once;
 * - `dtmf`, `stop`, and the signed status callback when the call ends.
 *
 * Anything malformed the app sends is counted, never thrown: tests of a misbehaving relay must be
 * able to look at what the caller saw.
 *
 * The same media side serves outbound calls (test/peers/twilio-outbound-peer.ts): `dial` then posts
 * to the absolute `Url` a `calls.create` gave, hands the end of the call to the peer
 * (`onCallEnded`), and for benchmarks can play the app's audio instantly and send no frames.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import twilio from 'twilio';
import WebSocket from 'ws';
import { MULAW_SILENCE, muLawDecode, muLawEncode } from '../../realtime-relay/audio/g711';
import { EspeakTts } from '../../realtime-relay/speech/espeak-tts';

/** μ-law at 8 kHz: one byte per sample, 8 bytes per millisecond. */
const BYTES_PER_MS = 8;
const FRAME_MS = 20;
const FRAME_BYTES = FRAME_MS * BYTES_PER_MS;
/** Twilio gives up on a webhook after 15 s by default. */
const WEBHOOK_TIMEOUT_MS = 15_000;
const DTMF_DIGITS = /^[0-9*#]$/;

export interface CallerTts {
  synthesize(req: { text: string; voiceId: string; language: string }): Promise<Int16Array>;
}

/**
 * Remembers what it synthesized. Warm it with the lines a script will say before dialling: spawning
 * a TTS process mid-call stalls the 20 ms frame clock that shares the event loop (tens of ms for
 * espeak-ng), which a relay would rightly see as network jitter.
 */
export class CachedTts implements CallerTts {
  private readonly cache = new Map<string, Promise<Int16Array>>();

  constructor(private readonly inner: CallerTts) {}

  synthesize(req: { text: string; voiceId: string; language: string }): Promise<Int16Array> {
    const key = `${req.voiceId}\n${req.language}\n${req.text}`;
    let pcm = this.cache.get(key);
    if (!pcm) {
      pcm = this.inner.synthesize({ text: req.text, voiceId: req.voiceId, language: req.language });
      // A failure is not remembered: the next attempt synthesizes again.
      pcm.catch(() => this.cache.delete(key));
      this.cache.set(key, pcm);
    }
    return pcm;
  }

  async warm(texts: string[], voiceId = 'en-us', language = 'en-US'): Promise<void> {
    await Promise.all(texts.map((text) => this.synthesize({ text, voiceId, language })));
  }
}

export interface CallerSimulatorOptions {
  /**
   * Where webhooks are POSTed, e.g. http://127.0.0.1:3000. Needed unless every dial names its own
   * `webhookUrl` (the outbound peer posts to the URL each `calls.create` gave).
   */
  apiBaseUrl?: string;
  /** The URL Twilio "thinks" it posts to, used for the signature (default apiBaseUrl). */
  publicBaseUrl?: string;
  authToken: string;
  accountSid: string;
  /** Synthesizes what the caller says, 8 kHz mono PCM16 (default: a local espeak-ng). */
  tts?: CallerTts;
  /** Caller voice, default 'en-us'. */
  voiceId?: string;
  /** Language handed to the TTS, default 'en-US'. */
  language?: string;
  /** Paths of the voice webhook and the status callback on the api (defaults /twilio/voice, /twilio/status). */
  voicePath?: string;
  statusPath?: string;
  /**
   * Post the 'completed' status callback when the call ends on Twilio's side (the TwiML ran out or
   * said `<Hangup>`, or the app closed the stream and nothing followed), as Twilio does for a number
   * with a status callback. Default true. A caller hang-up is governed by `hangup({ postStatus })`.
   */
  statusCallbacks?: boolean;
  /**
   * Connect the Media Stream here instead of the `<Stream url>` origin (the signature still covers
   * the TwiML URL, as the relay sees it behind a proxy). For relays whose public URL is not reachable.
   */
  streamOrigin?: string;
}

export type CallDirection = 'inbound' | 'outbound-api';

/**
 * How the caller plays the app's audio. 'realtime' (default): buffered and played at real time, a
 * mark echoed when playback reaches it. 'instant': every chunk counts as played the moment it
 * arrives, so marks are echoed at once (for benchmarks with thousands of short calls).
 */
export type CallerPlayback = 'realtime' | 'instant';

/**
 * What the caller sends. 'realtime' (default): a 20 ms μ-law frame every 20 ms, speech or silence.
 * 'none': no frames at all (the caller cannot `say` anything); with instant playback the call then
 * runs no clock at all.
 */
export type CallerFrames = 'realtime' | 'none';

/** Why a call ended on Twilio's side of a simulated call, for `dial({ onCallEnded })`. */
export type SimulatedCallEnd = 'twiml-ended' | 'caller-hangup';
export type CallStatusUpdate =
  'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled' | 'in-progress' | 'ringing';

export interface CallerStats {
  /** Well-formed `media` messages from the app. */
  mediaMessagesIn: number;
  audioMsReceived: number;
  audioMsPlayed: number;
  /** Audio dropped by `clear` before it was played. */
  audioMsCleared: number;
  /** Names of the marks echoed back, in order. */
  marksEchoed: string[];
  clears: { at: number }[];
  /** Date.now() when the first `media` message from the app arrived. */
  firstMediaAt?: number;
  /** Media frames the caller sent (speech and silence). */
  framesSent: number;
  /** Per frame: how late it was sent against the 20 ms schedule, in ms (for jitter stats). */
  lastFrameLateMs: number[];
  /** Messages from the app that were not JSON, not a known event, or lacked required fields. */
  malformedMessagesIn: number;
}

export interface SayResult {
  /** Date.now() when the first and the last frame of the utterance were sent. */
  startedAt: number;
  endedAt: number;
  /** Length of the synthesized speech. */
  ms: number;
}

export interface AgentTurn {
  /** Audio of the turn the caller heard (cleared audio excluded). */
  audioMs: number;
  startedAt: number;
}

export interface SimulatedCall {
  callSid: string;
  twiml: string;
  /** The parsed TwiML, as followed. */
  verbs: TwimlVerb[];
  /** 'stream' when TwiML had <Connect><Stream>; 'hangup' when it only said something and hung up. */
  outcome: 'stream' | 'hangup';
  /** `<Say>` texts in order, including those after `<Connect>` once the app closed the stream. */
  said: string[];
  streamUrl?: string;
  parameters: Record<string, string>;
  streamSid?: string;
  /**
   * Speaks like a caller: synthesizes with TTS and streams it in 20 ms frames (160 μ-law bytes) at
   * real-time pace; resolves when the last frame was sent. When not speaking, silence frames flow.
   */
  say(text: string): Promise<SayResult>;
  sendDtmf(digit: string): void;
  /** Caller hangs up: sends `stop`, closes the socket, then posts the status callback 'completed'. */
  hangup(opts?: { postStatus?: boolean }): Promise<void>;
  /**
   * Resolves when the bot has spoken (audio played) and its playback has then gone idle for quietMs
   * (default 600): the agent finished its turn. Rejects on timeout (default 30 s). `startedAt`:
   * Date.now() when the caller began hearing the turn (response latency = startedAt − say's endedAt).
   */
  waitForAgentTurn(opts?: { timeoutMs?: number; quietMs?: number }): Promise<AgentTurn>;
  /** All of the bot's audio the caller heard (played, not cleared), as 8 kHz PCM16. */
  heardAudio(): Int16Array;
  stats: CallerStats;
  /** Raw access for misbehaving-client tests. */
  sendRaw(data: string | Buffer): void;
  /**
   * Resolves when the socket closes (by either side) with the close code and reason; at once with
   * 1005 when the TwiML opened no stream, 1006 when the stream could not be opened.
   */
  closed: Promise<{ code: number; reason: string }>;
}

/** The api answered the webhook with something other than 2xx (status 0: it could not be reached). */
export class WebhookError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly url: string,
    message = `POST ${url} answered ${status}: ${body.slice(0, 300)}`,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WebhookError';
  }
}

/** The answer is not TwiML this simulator can follow. */
export class TwimlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TwimlError';
  }
}

/** The Media Stream WebSocket could not be opened (status: the HTTP answer to the upgrade, if any). */
export class StreamConnectError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StreamConnectError';
  }
}

export function twilioSid(prefix: 'CA' | 'MZ' | 'AC'): string {
  return `${prefix}${randomBytes(16).toString('hex')}`;
}

/** Twilio's callbacks render time in RFC 2822 with a numeric zone. */
function rfc2822(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** The same URL on another origin (scheme, host and port), path and query kept. */
export function withOrigin(url: string, origin: string): string {
  const target = new URL(url);
  const replacement = new URL(origin);
  target.protocol = replacement.protocol;
  target.host = replacement.host;
  return target.toString();
}

// ---------------------------------------------------------------------------------------------
// TwiML: a small XML reader (elements, attributes, text, CDATA, entities; comments and the XML
// declaration skipped) and the verbs a voice call can meet. No dependency: TwiML is tiny and regular.

export interface TwimlStream {
  url: string;
  name?: string;
  statusCallback?: string;
  parameters: Record<string, string>;
}

export type TwimlVerb =
  | { verb: 'Say'; text: string; voice?: string; language?: string }
  | { verb: 'Pause'; lengthSeconds: number }
  | { verb: 'Hangup' }
  | { verb: 'Reject'; reason?: string }
  | { verb: 'Connect'; stream: TwimlStream }
  /** Verbs the simulator reads but does not act on (Play, Gather, Dial, Redirect, …). */
  | { verb: 'Other'; name: string; attributes: Record<string, string> };

interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: (XmlElement | string)[];
}

const XML_TOKEN =
  /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>|<!\[CDATA\[([\s\S]*?)\]\]>|<\/\s*([A-Za-z_][\w:.-]*)\s*>|<([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|([^<]+)|(<)/g;
const XML_ATTRIBUTE = /([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, entity: string) => {
    if (entity.startsWith('#x')) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    return NAMED_ENTITIES[entity] ?? whole;
  });
}

function parseXml(xml: string): XmlElement {
  const document: XmlElement = { name: '#document', attributes: {}, children: [] };
  const open: XmlElement[] = [document];
  for (const token of xml.matchAll(XML_TOKEN)) {
    const [, cdata, closing, opening, attributeText, selfClosing, text, stray] = token;
    const parent = open[open.length - 1]!;
    if (stray !== undefined) throw new TwimlError(`malformed XML near offset ${token.index}`);
    if (cdata !== undefined) parent.children.push(cdata);
    else if (text !== undefined) parent.children.push(unescapeXml(text));
    else if (closing !== undefined) {
      if (open.length === 1 || parent.name !== closing) {
        throw new TwimlError(`unexpected </${closing}> (open: <${parent.name}>)`);
      }
      open.pop();
    } else if (opening !== undefined) {
      const attributes: Record<string, string> = {};
      for (const [, name, doubleQuoted, singleQuoted] of (attributeText ?? '').matchAll(XML_ATTRIBUTE)) {
        attributes[name!] = unescapeXml(doubleQuoted ?? singleQuoted ?? '');
      }
      const element: XmlElement = { name: opening, attributes, children: [] };
      parent.children.push(element);
      if (!selfClosing) open.push(element);
    }
  }
  if (open.length > 1) throw new TwimlError(`<${open[open.length - 1]!.name}> is never closed`);
  const roots = document.children.filter((c): c is XmlElement => typeof c !== 'string');
  const strayText = document.children.some((c) => typeof c === 'string' && c.trim() !== '');
  if (roots.length !== 1 || strayText) throw new TwimlError('XML must have exactly one root element');
  return roots[0]!;
}

function textOf(element: XmlElement): string {
  // SSML inside <Say> (<break/>, <emphasis>…) contributes its text only.
  return element.children
    .map((c) => (typeof c === 'string' ? c : textOf(c)))
    .join('')
    .replace(/\s+/g, ' ')
    .trim();
}

function elementsOf(element: XmlElement): XmlElement[] {
  return element.children.filter((c): c is XmlElement => typeof c !== 'string');
}

/** Reads a TwiML voice document into its verbs, in order. Throws TwimlError when it is not TwiML. */
export function parseTwiml(xml: string): TwimlVerb[] {
  const root = parseXml(xml);
  if (root.name !== 'Response') throw new TwimlError(`TwiML root must be <Response>, got <${root.name}>`);
  return elementsOf(root).map((element): TwimlVerb => {
    const { attributes } = element;
    switch (element.name) {
      case 'Say':
        return { verb: 'Say', text: textOf(element), voice: attributes.voice, language: attributes.language };
      case 'Pause':
        return { verb: 'Pause', lengthSeconds: Number(attributes.length ?? '1') };
      case 'Hangup':
        return { verb: 'Hangup' };
      case 'Reject':
        return { verb: 'Reject', reason: attributes.reason };
      case 'Connect': {
        const stream = elementsOf(element).find((c) => c.name === 'Stream');
        if (!stream) {
          const inside = elementsOf(element).map((c) => `<${c.name}>`);
          throw new TwimlError(
            `<Connect> without <Stream> is not supported (found ${inside.join(', ') || 'nothing'})`,
          );
        }
        if (!stream.attributes.url) throw new TwimlError('<Stream> needs a url attribute');
        const parameters: Record<string, string> = {};
        for (const p of elementsOf(stream).filter((c) => c.name === 'Parameter')) {
          if (p.attributes.name === undefined) throw new TwimlError('<Parameter> needs a name attribute');
          parameters[p.attributes.name] = p.attributes.value ?? '';
        }
        return {
          verb: 'Connect',
          stream: {
            url: stream.attributes.url,
            name: stream.attributes.name,
            statusCallback: stream.attributes.statusCallback,
            parameters,
          },
        };
      }
      default:
        return { verb: 'Other', name: element.name, attributes };
    }
  });
}

// ---------------------------------------------------------------------------------------------

interface CallRecord {
  from: string;
  to: string;
  direction: CallDirection;
  answeredAt: number;
  /** Status callbacks number themselves per call, from 0. */
  nextStatusSequence: number;
}

export class CallerSimulator {
  private readonly apiBaseUrl?: string;
  private readonly publicBaseUrl?: string;
  private readonly voicePath: string;
  private readonly statusPath: string;
  private readonly calls = new Map<string, CallRecord>();
  private defaultTts?: CallerTts;

  constructor(private readonly opts: CallerSimulatorOptions) {
    this.apiBaseUrl = opts.apiBaseUrl;
    this.publicBaseUrl = opts.publicBaseUrl ?? opts.apiBaseUrl;
    this.voicePath = opts.voicePath ?? '/twilio/voice';
    this.statusPath = opts.statusPath ?? '/twilio/status';
  }

  get accountSid(): string {
    return this.opts.accountSid;
  }

  /** Signs a URL and parameters as Twilio does, for webhooks and for the stream upgrade (no params). */
  sign(url: string, params: Record<string, string> = {}): string {
    return twilio.getExpectedTwilioSignature(this.opts.authToken, url, params);
  }

  /**
   * Posts a correctly signed voice webhook (CallSid, AccountSid, From, To, CallStatus=ringing,
   * ApiVersion=2010-04-01, Direction) to the voice path, parses the TwiML answer and follows it.
   * `params` adds or overrides webhook parameters (CallerName, ForwardedFrom, …).
   */
  async dial(opts: {
    from: string;
    to: string;
    callSid?: string;
    direction?: CallDirection;
    params?: Record<string, string>;
    /**
     * Absolute URL of the voice webhook (query string included), signed exactly as written; default
     * the api's voice path. An outbound call posts to the `Url` its `calls.create` gave.
     */
    webhookUrl?: string;
    /** Deliver the webhook to this origin instead of webhookUrl's (the signature still covers webhookUrl). */
    webhookOrigin?: string;
    /** The webhook's HTTP method (Twilio's `Method`): GET puts the parameters in the query string. */
    method?: 'GET' | 'POST';
    /** Follow this TwiML instead of asking a webhook (Twilio's `Twiml` parameter on calls.create). */
    twiml?: string;
    playback?: CallerPlayback;
    callerFrames?: CallerFrames;
    /**
     * Called once when the call ends (instead of posting the simulator's own status callback):
     * 'twiml-ended' when Twilio's side ended it (TwiML ran out or hung up, the app closed the stream,
     * the stream could not be opened), 'caller-hangup' on `hangup()` with postStatus not false.
     */
    onCallEnded?: (reason: SimulatedCallEnd) => Promise<void> | void;
  }): Promise<SimulatedCall> {
    const callSid = opts.callSid ?? twilioSid('CA');
    const direction = opts.direction ?? 'inbound';
    const params: Record<string, string> = {
      CallSid: callSid,
      AccountSid: this.opts.accountSid,
      From: opts.from,
      To: opts.to,
      CallStatus: 'ringing',
      ApiVersion: '2010-04-01',
      Direction: direction,
      ...opts.params,
    };
    let twiml: string;
    if (opts.twiml !== undefined) {
      twiml = opts.twiml;
    } else {
      const target = opts.webhookUrl
        ? { url: opts.webhookUrl, signedUrl: opts.webhookUrl, origin: opts.webhookOrigin }
        : this.pathTarget(this.voicePath);
      const response = await this.sendWebhook(target.url, params, { ...target, method: opts.method });
      twiml = await response.text();
      if (!response.ok) throw new WebhookError(response.status, twiml, target.url);
    }
    const verbs = parseTwiml(twiml);
    this.calls.set(callSid, {
      from: opts.from,
      to: opts.to,
      direction,
      answeredAt: Date.now(),
      nextStatusSequence: 0,
    });
    const { onCallEnded } = opts;
    const call = new MediaStreamCall({
      callSid,
      accountSid: this.opts.accountSid,
      twiml,
      verbs,
      tts: this.opts.tts ?? (this.defaultTts ??= new EspeakTts()),
      voiceId: this.opts.voiceId ?? 'en-us',
      language: this.opts.language ?? 'en-US',
      streamOrigin: this.opts.streamOrigin,
      playback: opts.playback ?? 'realtime',
      callerFrames: opts.callerFrames ?? 'realtime',
      sign: (url) => this.sign(url),
      onCallEnded: onCallEnded
        ? async () => onCallEnded('twiml-ended')
        : () =>
            this.opts.statusCallbacks === false
              ? Promise.resolve()
              : this.postStatus(callSid, 'completed').then(() => undefined),
      onCallerHangup: onCallEnded
        ? async () => onCallEnded('caller-hangup')
        : () => this.postStatus(callSid, 'completed').then(() => undefined),
    });
    await call.run();
    return call;
  }

  /**
   * Posts a signed status callback (StatusCallbackEvent, CallStatus, CallDuration, Timestamp,
   * SequenceNumber, CallSid, AccountSid, From, To, Direction) to the status path. CallDuration is
   * the time since the call was answered for 'completed', 0 for the other final statuses; `extra`
   * adds or overrides parameters. Answers the HTTP status.
   */
  async postStatus(
    callSid: string,
    status: CallStatusUpdate,
    extra: Record<string, string> = {},
  ): Promise<number> {
    const call = this.calls.get(callSid);
    const final = !['in-progress', 'ringing'].includes(status);
    const event = status === 'ringing' ? 'ringing' : status === 'in-progress' ? 'answered' : 'completed';
    const params: Record<string, string> = {
      AccountSid: this.opts.accountSid,
      ApiVersion: '2010-04-01',
      CallbackSource: 'call-progress-events',
      CallSid: callSid,
      CallStatus: status,
      Direction: call?.direction ?? 'inbound',
      From: call?.from ?? '',
      To: call?.to ?? '',
      SequenceNumber: String(call ? call.nextStatusSequence++ : 0),
      StatusCallbackEvent: event,
      Timestamp: rfc2822(new Date()),
    };
    if (final) {
      params.CallDuration =
        status === 'completed' && call ? String(Math.round((Date.now() - call.answeredAt) / 1000)) : '0';
    }
    Object.assign(params, extra);
    const response = await this.postForm(this.statusPath, params);
    await response.arrayBuffer(); // drain, so the connection can be reused
    return response.status;
  }

  private postForm(path: string, params: Record<string, string>): Promise<Response> {
    const target = this.pathTarget(path);
    return this.sendWebhook(target.url, params, { signedUrl: target.signedUrl });
  }

  /** A path on the api: posted to apiBaseUrl, signed for publicBaseUrl. */
  private pathTarget(path: string): { url: string; signedUrl: string } {
    if (this.apiBaseUrl === undefined) {
      throw new Error(`CallerSimulator: no apiBaseUrl to post ${path} to (give dial a webhookUrl)`);
    }
    return {
      url: joinUrl(this.apiBaseUrl, path),
      signedUrl: joinUrl(this.publicBaseUrl ?? this.apiBaseUrl, path),
    };
  }

  /**
   * Sends a signed webhook to an absolute URL as Twilio does: POST signs the URL plus the sorted form
   * parameters; GET puts the parameters in the query string and signs that whole URL. `signedUrl`
   * (default `url`) is the address Twilio believes it calls; `origin` delivers elsewhere, signature
   * unchanged. Throws WebhookError (status 0) when the URL cannot be reached; any HTTP answer resolves.
   */
  async sendWebhook(
    url: string,
    params: Record<string, string>,
    opts: { method?: 'GET' | 'POST'; signedUrl?: string; origin?: string } = {},
  ): Promise<Response> {
    const method = opts.method ?? 'POST';
    let signedUrl = opts.signedUrl ?? url;
    if (method === 'GET') {
      const query = new URLSearchParams(params).toString();
      const withQuery = (u: string) => (query ? `${u}${u.includes('?') ? '&' : '?'}${query}` : u);
      url = withQuery(url);
      signedUrl = withQuery(signedUrl);
    }
    if (opts.origin) url = withOrigin(url, opts.origin);
    const signature = this.sign(signedUrl, method === 'POST' ? params : {});
    try {
      return await fetch(url, {
        method,
        headers: {
          ...(method === 'POST'
            ? { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }
            : {}),
          'x-twilio-signature': signature,
          'i-twilio-idempotency-token': randomUUID(),
          'user-agent': 'TwilioProxy/1.1',
        },
        body: method === 'POST' ? new URLSearchParams(params).toString() : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
    } catch (err) {
      // fetch says only "fetch failed"; the cause (ECONNREFUSED, a timeout) is what a person needs.
      const cause = (err as Error).cause as { code?: string; message?: string } | undefined;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new WebhookError(0, '', url, `${method} ${url} failed: ${why}`, { cause: err });
    }
  }
}

// ---------------------------------------------------------------------------------------------

interface MediaStreamCallInit {
  callSid: string;
  accountSid: string;
  twiml: string;
  verbs: TwimlVerb[];
  tts: CallerTts;
  voiceId: string;
  language: string;
  streamOrigin?: string;
  playback: CallerPlayback;
  callerFrames: CallerFrames;
  sign(url: string): string;
  /** The call ended on Twilio's side (TwiML ran out or hung up): the automatic status callback. */
  onCallEnded(): Promise<void>;
  onCallerHangup(): Promise<void>;
}

/** An utterance being streamed: μ-law bytes and how far the frame clock has got through them. */
interface Utterance {
  bytes: Buffer;
  offset: number;
  ms: number;
  startedAt?: number;
  resolve(result: SayResult): void;
  reject(err: Error): void;
}

type PlaybackItem = { audio: Buffer; offset: number } | { mark: string };

interface TurnWaiter {
  quietMs: number;
  resolve(result: AgentTurn): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

class MediaStreamCall implements SimulatedCall {
  readonly callSid: string;
  readonly twiml: string;
  readonly verbs: TwimlVerb[];
  outcome: 'stream' | 'hangup' = 'hangup';
  readonly said: string[] = [];
  streamUrl?: string;
  parameters: Record<string, string> = {};
  streamSid?: string;
  readonly stats: CallerStats = {
    mediaMessagesIn: 0,
    audioMsReceived: 0,
    audioMsPlayed: 0,
    audioMsCleared: 0,
    marksEchoed: [],
    clears: [],
    framesSent: 0,
    lastFrameLateMs: [],
    malformedMessagesIn: 0,
  };
  readonly closed: Promise<{ code: number; reason: string }>;

  private resolveClosed!: (value: { code: number; reason: string }) => void;
  private ws?: WebSocket;
  /** Index of the next TwiML verb to follow. */
  private nextVerb = 0;
  private sequenceNumber = 0;
  private chunk = 0;
  /** performance.now() at `start`: frame n is due at clockStart + (n + 1) * 20 ms. */
  private clockStart = 0;
  private frameIndex = 0;
  private clock?: NodeJS.Timeout;
  /** Without a frame clock (instant playback, no caller frames), turn waiters are checked by this. */
  private turnPoll?: NodeJS.Timeout;
  private streamOver = false;
  private callerHangingUp = false;
  private callEnd?: Promise<void>;

  private readonly utterances: Utterance[] = [];
  private synthesis: Promise<unknown> = Promise.resolve();
  private readonly playback: PlaybackItem[] = [];
  /** Marks playback reached during the frame now playing; echoed once that frame has been heard. */
  private marksReached: string[] = [];
  private readonly heard: Buffer[] = [];
  /** Bot audio heard since the last completed turn, and when its playback ends (performance.now()). */
  private turnBytes = 0;
  private turnStartedAt = 0;
  private playbackIdleAt = 0;
  private readonly turnWaiters = new Set<TurnWaiter>();

  constructor(private readonly init: MediaStreamCallInit) {
    this.callSid = init.callSid;
    this.twiml = init.twiml;
    this.verbs = init.verbs;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** Follows the TwiML from the start: up to the stream, or to the end of the call. */
  async run(): Promise<void> {
    const stream = this.followVerbs();
    if (!stream) {
      // Only said something: there never is a socket, so `closed` settles at once (1005: no close frame).
      this.streamOver = true;
      this.resolveClosed({ code: 1005, reason: '' });
      await this.endCall();
      return;
    }
    this.outcome = 'stream';
    this.streamUrl = stream.url;
    this.parameters = { ...stream.parameters };
    try {
      await this.connect(stream);
    } catch (err) {
      // Twilio logs the failure and carries on with the TwiML after <Connect>; the call then ends.
      this.streamOver = true;
      this.resolveClosed({ code: 1006, reason: (err as Error).message });
      this.followVerbs();
      await this.endCall();
      throw err;
    }
  }

  /** Runs Say/Pause/other verbs until a stream to open (returned) or the end of the call (undefined). */
  private followVerbs(): TwimlStream | undefined {
    while (this.nextVerb < this.verbs.length) {
      const verb = this.verbs[this.nextVerb++]!;
      if (verb.verb === 'Say') this.said.push(verb.text);
      else if (verb.verb === 'Hangup' || verb.verb === 'Reject') return undefined;
      else if (verb.verb === 'Connect') return verb.stream;
      // Pause, Play, Gather… have no effect on a simulated caller who does not listen to TwiML audio.
    }
    return undefined;
  }

  private async connect(stream: TwimlStream): Promise<void> {
    let target = stream.url;
    if (this.init.streamOrigin) {
      const url = new URL(stream.url);
      const origin = new URL(this.init.streamOrigin);
      url.protocol = origin.protocol;
      url.host = origin.host;
      target = url.toString();
    }
    const ws = new WebSocket(target, {
      // Twilio signs the wss URL exactly as written in the TwiML, with no parameters.
      headers: { 'X-Twilio-Signature': this.init.sign(stream.url), 'User-Agent': 'Twilio.TmeWs/1.0' },
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    // Errors end in 'close'; without a listener an error would crash the process.
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        reject(
          new StreamConnectError(
            `stream upgrade to ${target} refused with ${res.statusCode}`,
            res.statusCode,
          ),
        );
        ws.terminate();
      });
      ws.once('error', (err) =>
        reject(
          new StreamConnectError(`stream to ${target} failed: ${err.message}`, undefined, { cause: err }),
        ),
      );
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));

    this.streamSid = twilioSid('MZ');
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.send({
      event: 'start',
      sequenceNumber: this.nextSequenceNumber(),
      streamSid: this.streamSid,
      start: {
        accountSid: this.init.accountSid,
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: ['inbound'],
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        customParameters: { ...stream.parameters },
      },
    });
    this.clockStart = performance.now();
    if (this.clockNeeded) this.scheduleTick();
  }

  /** The 20 ms clock sends the caller's frames and paces playback; with neither, it does not run. */
  private get clockNeeded(): boolean {
    return this.init.callerFrames === 'realtime' || this.init.playback === 'realtime';
  }

  private stopTimers(): void {
    if (this.clock) clearTimeout(this.clock);
    this.clock = undefined;
    if (this.turnPoll) clearInterval(this.turnPoll);
    this.turnPoll = undefined;
  }

  // --- the 20 ms clock ------------------------------------------------------------------------

  private scheduleTick(): void {
    if (this.streamOver) return;
    const due = this.clockStart + (this.frameIndex + 1) * FRAME_MS;
    // Scheduled by absolute time, so a late wake-up shortens the next wait instead of drifting.
    const delay = Math.max(0, Math.ceil(due - performance.now()));
    this.clock = setTimeout(() => this.tick(), delay);
    // The socket keeps the process alive while the call lasts; the clock alone must not.
    this.clock.unref();
  }

  private tick(): void {
    this.clock = undefined;
    const now = performance.now();
    // After a stall, every overdue frame goes out at once, as a network burst would deliver them.
    while (!this.streamOver && this.clockStart + (this.frameIndex + 1) * FRAME_MS <= now) {
      const due = this.clockStart + (this.frameIndex + 1) * FRAME_MS;
      if (this.init.callerFrames === 'realtime') this.sendCallerFrame(now - due);
      this.playFrame(due);
      this.frameIndex++;
    }
    this.settleTurnWaiters(now);
    this.scheduleTick();
  }

  private sendCallerFrame(lateMs: number): void {
    const frame = Buffer.alloc(FRAME_BYTES, MULAW_SILENCE);
    // One utterance per frame at most: its tail is padded with silence, as a phone would send it.
    const utterance = this.utterances[0];
    let finished: Utterance | undefined;
    if (utterance) {
      utterance.startedAt ??= Date.now();
      const taken = utterance.bytes.copy(frame, 0, utterance.offset, utterance.offset + FRAME_BYTES);
      utterance.offset += taken;
      if (utterance.offset >= utterance.bytes.length) finished = this.utterances.shift();
    }
    this.send({
      event: 'media',
      sequenceNumber: this.nextSequenceNumber(),
      streamSid: this.streamSid,
      media: {
        track: 'inbound',
        chunk: String(++this.chunk),
        // The media clock: where this frame's audio starts, in ms since the stream started.
        timestamp: String(this.frameIndex * FRAME_MS),
        payload: frame.toString('base64'),
      },
    });
    this.stats.framesSent++;
    this.stats.lastFrameLateMs.push(Math.max(0, lateMs));
    if (finished) {
      finished.resolve({ startedAt: finished.startedAt!, endedAt: Date.now(), ms: finished.ms });
    }
  }

  /** Plays the next 20 ms of the bot's audio; `frameStart` is when that frame starts sounding. */
  private playFrame(frameStart: number): void {
    // The frame played by the previous tick has now been heard: marks it reached are due.
    this.echoMarks(this.marksReached);
    this.marksReached = [];
    let room = FRAME_BYTES;
    while (this.playback.length > 0) {
      const head = this.playback[0]!;
      if ('mark' in head) {
        this.marksReached.push(head.mark);
        this.playback.shift();
        continue;
      }
      if (room === 0) break;
      const taken = head.audio.subarray(head.offset, head.offset + room);
      head.offset += taken.length;
      room -= taken.length;
      this.heard.push(taken);
      if (this.turnBytes === 0) this.turnStartedAt = Date.now();
      this.turnBytes += taken.length;
      this.stats.audioMsPlayed += taken.length / BYTES_PER_MS;
      this.playbackIdleAt = frameStart + (FRAME_BYTES - room) / BYTES_PER_MS;
      if (head.offset >= head.audio.length) this.playback.shift();
    }
  }

  /** Instant playback: the chunk counts as heard on arrival; nothing is ever queued. */
  private playInstantly(audio: Buffer): void {
    this.heard.push(audio);
    if (this.turnBytes === 0) this.turnStartedAt = Date.now();
    this.turnBytes += audio.length;
    this.stats.audioMsPlayed += audio.length / BYTES_PER_MS;
    this.playbackIdleAt = performance.now();
  }

  private echoMarks(names: string[]): void {
    for (const name of names) {
      this.stats.marksEchoed.push(name);
      this.send({
        event: 'mark',
        sequenceNumber: this.nextSequenceNumber(),
        streamSid: this.streamSid,
        mark: { name },
      });
    }
  }

  private settleTurnWaiters(now: number): void {
    if (this.turnBytes === 0 || this.playback.length > 0) return;
    for (const waiter of this.turnWaiters) {
      if (now - this.playbackIdleAt < waiter.quietMs) continue;
      this.turnWaiters.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.resolve(this.currentTurn());
      // The next turn counts only audio heard from here on.
      this.turnBytes = 0;
      return;
    }
  }

  private currentTurn(): AgentTurn {
    return { audioMs: this.turnBytes / BYTES_PER_MS, startedAt: this.turnStartedAt };
  }

  // --- messages from the app ------------------------------------------------------------------

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const message = isBinary ? undefined : parseJsonObject(rawText(data));
    if (!message || message.streamSid !== this.streamSid) {
      this.stats.malformedMessagesIn++;
      return;
    }
    switch (message.event) {
      case 'media': {
        const payload = (message.media as { payload?: unknown } | undefined)?.payload;
        if (typeof payload !== 'string' || !isBase64(payload)) {
          this.stats.malformedMessagesIn++;
          return;
        }
        const audio = Buffer.from(payload, 'base64');
        this.stats.mediaMessagesIn++;
        this.stats.audioMsReceived += audio.length / BYTES_PER_MS;
        this.stats.firstMediaAt ??= Date.now();
        if (audio.length === 0) return;
        if (this.init.playback === 'instant') this.playInstantly(audio);
        else this.playback.push({ audio, offset: 0 });
        return;
      }
      case 'mark': {
        const name = (message.mark as { name?: unknown } | undefined)?.name;
        if (typeof name !== 'string') {
          this.stats.malformedMessagesIn++;
          return;
        }
        // Nothing queued: echoed at once, but never ahead of marks still waiting for their frame.
        if (this.playback.length > 0) this.playback.push({ mark: name });
        else if (this.marksReached.length > 0) this.marksReached.push(name);
        else this.echoMarks([name]);
        return;
      }
      case 'clear': {
        const pending = [...this.marksReached];
        for (const item of this.playback) {
          if ('mark' in item) pending.push(item.mark);
          else this.stats.audioMsCleared += (item.audio.length - item.offset) / BYTES_PER_MS;
        }
        this.playback.length = 0;
        this.marksReached = [];
        this.stats.clears.push({ at: Date.now() });
        // After a clear, echoed marks mean "cleared", not "played".
        this.echoMarks(pending);
        return;
      }
      default:
        this.stats.malformedMessagesIn++;
    }
  }

  private onClose(code: number, reason: string): void {
    this.streamOver = true;
    this.stopTimers();
    const gone = new Error(`stream closed (${code}${reason ? ` ${reason}` : ''})`);
    for (const utterance of this.utterances.splice(0)) utterance.reject(gone);
    for (const waiter of this.turnWaiters) {
      clearTimeout(waiter.timer);
      // The agent that speaks and then hangs up has finished its turn.
      if (this.turnBytes > 0) waiter.resolve(this.currentTurn());
      else waiter.reject(new Error(`${gone.message} before the agent spoke`));
    }
    this.turnWaiters.clear();
    this.resolveClosed({ code, reason });
    if (!this.callerHangingUp) {
      // The app closed the stream: Twilio runs the TwiML after <Connect>, then the call ends.
      this.followVerbs();
      this.endCall().catch(() => undefined);
    }
  }

  /** The call ends on Twilio's side: one automatic status callback. */
  private endCall(): Promise<void> {
    this.callEnd ??= this.init.onCallEnded();
    return this.callEnd;
  }

  // --- caller actions ---------------------------------------------------------------------------

  async say(text: string): Promise<SayResult> {
    this.assertStreaming('say');
    if (this.init.callerFrames === 'none') throw new Error('cannot say: this caller sends no audio frames');
    // Synthesis runs in call order so utterances are spoken in the order they were asked for.
    const queued = this.synthesis
      .then(() =>
        this.init.tts.synthesize({ text, voiceId: this.init.voiceId, language: this.init.language }),
      )
      .then((pcm) => ({ done: this.enqueueSpeech(pcm) }));
    this.synthesis = queued.catch(() => undefined);
    return (await queued).done;
  }

  private enqueueSpeech(pcm: Int16Array): Promise<SayResult> {
    if (this.streamOver) return Promise.reject(new Error('stream closed before the caller could speak'));
    const bytes = muLawEncode(pcm);
    const ms = pcm.length / BYTES_PER_MS;
    if (bytes.length === 0) {
      const now = Date.now();
      return Promise.resolve({ startedAt: now, endedAt: now, ms: 0 });
    }
    return new Promise((resolve, reject) => this.utterances.push({ bytes, offset: 0, ms, resolve, reject }));
  }

  sendDtmf(digit: string): void {
    if (!DTMF_DIGITS.test(digit)) throw new RangeError(`not a DTMF digit: '${digit}' (0-9, *, #)`);
    this.assertStreaming('send DTMF');
    this.send({
      event: 'dtmf',
      sequenceNumber: this.nextSequenceNumber(),
      streamSid: this.streamSid,
      dtmf: { track: 'inbound_track', digit },
    });
  }

  async hangup(opts: { postStatus?: boolean } = {}): Promise<void> {
    if (this.streamOver || !this.ws) {
      // Already over (the TwiML hung up or the app closed the stream): wait for its status callback.
      await this.callEnd;
      return;
    }
    this.callerHangingUp = true;
    this.streamOver = true;
    this.stopTimers();
    const ws = this.ws;
    this.send({
      event: 'stop',
      sequenceNumber: this.nextSequenceNumber(),
      streamSid: this.streamSid,
      stop: { accountSid: this.init.accountSid, callSid: this.callSid },
    });
    ws.close(1000);
    // A peer that never answers the close frame is cut off, as Twilio would.
    const cutOff = setTimeout(() => ws.terminate(), 2000);
    await this.closed;
    clearTimeout(cutOff);
    if (opts.postStatus !== false) {
      this.callEnd ??= this.init.onCallerHangup();
      await this.callEnd;
    }
  }

  waitForAgentTurn(opts: { timeoutMs?: number; quietMs?: number } = {}): Promise<AgentTurn> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const quietMs = opts.quietMs ?? 600;
    if (this.streamOver) return Promise.reject(new Error('the stream is closed'));
    return new Promise((resolve, reject) => {
      const waiter: TurnWaiter = {
        quietMs,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.turnWaiters.delete(waiter);
          const heard = this.turnBytes / BYTES_PER_MS;
          reject(
            new Error(`the agent did not finish a turn within ${timeoutMs} ms (heard ${heard} ms of audio)`),
          );
        }, timeoutMs),
      };
      this.turnWaiters.add(waiter);
      if (!this.clockNeeded && !this.turnPoll) {
        this.turnPoll = setInterval(() => {
          this.settleTurnWaiters(performance.now());
          if (this.turnWaiters.size === 0) {
            clearInterval(this.turnPoll);
            this.turnPoll = undefined;
          }
        }, FRAME_MS);
        this.turnPoll.unref();
      }
    });
  }

  heardAudio(): Int16Array {
    return muLawDecode(Buffer.concat(this.heard));
  }

  sendRaw(data: string | Buffer): void {
    if (this.ws?.readyState !== WebSocket.OPEN) throw new Error('the stream is not open');
    this.ws.send(data);
  }

  private assertStreaming(action: string): void {
    if (this.outcome !== 'stream')
      throw new Error(`cannot ${action}: the TwiML answer did not open a stream`);
    if (this.streamOver) throw new Error(`cannot ${action}: the stream is closed`);
  }

  private nextSequenceNumber(): string {
    return String(++this.sequenceNumber);
  }

  private send(message: Record<string, unknown>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString('utf8');
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function isBase64(text: string): boolean {
  return text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);
}
