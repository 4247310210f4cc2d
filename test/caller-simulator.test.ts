/**
 * The caller simulator must behave as Twilio does, or every test built on it proves nothing. Here it
 * runs against a minimal fake api (a voice webhook answering TwiML, a status-callback recorder) and
 * a fake relay (a ws server recording every message and playing scripted audio) over real sockets.
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import { WebSocketServer, type WebSocket } from 'ws';
import { MULAW_SILENCE, muLawDecode, muLawEncode } from '../realtime-relay/audio/g711';
import { EspeakTts } from '../realtime-relay/speech/espeak-tts';
import {
  CachedTts,
  CallerSimulator,
  parseTwiml,
  StreamConnectError,
  TwimlError,
  WebhookError,
  type CallerTts,
  type SimulatedCall,
} from './peers/caller-simulator';

const AUTH_TOKEN = 'caller-simulator-test-auth-token';
const ACCOUNT_SID = `AC${'0123456789abcdef'.repeat(2)}`;
/** What Twilio believes the api's address is: signatures must be computed over this, not the socket address. */
const PUBLIC_BASE_URL = 'https://parley.example.com';
const FROM = '+15557654321';
const TO = '+15005550006';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Posted {
  path: string;
  headers: http.IncomingHttpHeaders;
  params: Record<string, string>;
}

/** A message as the relay received it (Twilio → app: every number is a string). */
interface TwilioMessage {
  event: string;
  sequenceNumber?: string;
  streamSid?: string;
  media?: { track: string; chunk: string; timestamp: string; payload: string };
  mark?: { name: string };
  [key: string]: unknown;
}

interface Received {
  at: number;
  msg: TwilioMessage;
}

/** One Media Stream as the relay sees it: every message with its arrival time. */
class FakeStream {
  readonly received: Received[] = [];
  readonly closed: Promise<{ code: number; at: number }>;
  private listeners: (() => void)[] = [];

  constructor(
    readonly ws: WebSocket,
    readonly headers: http.IncomingHttpHeaders,
  ) {
    ws.on('message', (data) => {
      this.received.push({
        at: performance.now(),
        msg: JSON.parse((data as Buffer).toString('utf8')) as TwilioMessage,
      });
      for (const listener of this.listeners) listener();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => resolve({ code, at: performance.now() })),
    );
  }

  get streamSid(): string {
    return this.received[1]!.msg.streamSid!;
  }

  media(): Received[] {
    return this.received.filter((r) => r.msg.event === 'media');
  }

  /** Resolves with the first message (from index `from`) matching `predicate`. */
  waitFor(predicate: (msg: TwilioMessage) => boolean, timeoutMs = 5000, from = 0): Promise<Received> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.received.slice(from).find((r) => predicate(r.msg));
        if (!found) return false;
        this.listeners = this.listeners.filter((l) => l !== listener);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const listener = () => void check();
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== listener);
        reject(new Error(`no matching message within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.listeners.push(listener);
    });
  }

  send(message: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ streamSid: this.streamSid, ...message }));
  }

  sendAudio(mulaw: Buffer): void {
    this.send({ event: 'media', media: { payload: mulaw.toString('base64') } });
  }
}

/** The api and the relay in one HTTP server: /twilio/* webhooks, and stream upgrades on /media. */
class FakeApp {
  readonly posts: Posted[] = [];
  readonly streams: FakeStream[] = [];
  twiml: (params: Record<string, string>) => string = () => '';
  /** Answer upgrades with this status instead of accepting them. */
  refuseUpgradesWith?: number;
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private streamWaiters: ((stream: FakeStream) => void)[] = [];

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        this.posts.push({ path: req.url ?? '', headers: req.headers, params });
        if (req.url === '/twilio/voice') {
          res.writeHead(200, { 'content-type': 'text/xml' });
          res.end(this.twiml(params));
        } else if (req.url === '/twilio/status') {
          res.writeHead(204).end();
        } else {
          res.writeHead(404).end('not found');
        }
      });
    });
    this.server.on('upgrade', (req, socket, head) => {
      if (this.refuseUpgradesWith) {
        socket.end(`HTTP/1.1 ${this.refuseUpgradesWith} Refused\r\nConnection: close\r\n\r\n`);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = new FakeStream(ws, req.headers);
        this.streams.push(stream);
        for (const waiter of this.streamWaiters.splice(0)) waiter(stream);
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get streamUrl(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/media`;
  }

  /** The stream a dial opened (dial resolves after connected/start were sent, the server may lag). */
  async stream(): Promise<FakeStream> {
    const stream = this.streams[this.streams.length - 1];
    const opened = stream ?? (await new Promise<FakeStream>((resolve) => this.streamWaiters.push(resolve)));
    await opened.waitFor((m) => m.event === 'start');
    return opened;
  }

  statusPosts(): Posted[] {
    return this.posts.filter((p) => p.path === '/twilio/status');
  }

  reset(): void {
    this.posts.length = 0;
    this.streams.length = 0;
    this.refuseUpgradesWith = undefined;
    this.twiml = () => streamTwiml(this.streamUrl, { token: 'tok&1', agent: 'demo' });
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function streamTwiml(url: string, parameters: Record<string, string>, before = '', after = ''): string {
  const params = Object.entries(parameters)
    .map(([name, value]) => `<Parameter name="${escapeXml(name)}" value="${escapeXml(value)}"/>`)
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?><Response>${before}` +
    `<Connect><Stream url="${escapeXml(url)}">${params}</Stream></Connect>${after}</Response>`
  );
}

/** A tone whose μ-law bytes are never the silence byte, so speech frames are told apart exactly. */
function tone(ms: number, amplitude = 6000, period = 16): Int16Array {
  const pcm = new Int16Array(ms * 8);
  for (let i = 0; i < pcm.length; i++) pcm[i] = i % period < period / 2 ? amplitude : -amplitude;
  return pcm;
}

/** A TTS stand-in: 100 ms of tone per word, so lengths are known exactly. */
class ToneTts implements CallerTts {
  readonly requests: { text: string; voiceId: string; language: string }[] = [];
  synthesize(req: { text: string; voiceId: string; language: string }): Promise<Int16Array> {
    this.requests.push(req);
    return Promise.resolve(tone(100 * req.text.split(/\s+/).length));
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function nonSilentBytes(frames: Received[]): Buffer {
  const bytes = Buffer.concat(frames.map((f) => Buffer.from(f.msg.media!.payload, 'base64')));
  return Buffer.from(bytes.filter((b) => b !== MULAW_SILENCE));
}

let app: FakeApp;
let tts: ToneTts;
let simulator: CallerSimulator;
let calls: SimulatedCall[] = [];
const lateness: number[] = [];

beforeAll(async () => {
  app = new FakeApp();
  await app.listen();
});

beforeEach(() => {
  app.reset();
  tts = new ToneTts();
  simulator = new CallerSimulator({
    apiBaseUrl: app.baseUrl,
    publicBaseUrl: PUBLIC_BASE_URL,
    authToken: AUTH_TOKEN,
    accountSid: ACCOUNT_SID,
    tts,
  });
  calls = [];
});

afterEach(async () => {
  for (const call of calls) {
    lateness.push(...call.stats.lastFrameLateMs);
    await call.hangup({ postStatus: false });
  }
});

afterAll(async () => {
  await app.close();
  if (lateness.length > 0) {
    process.stderr.write(
      `[caller-simulator] frame send lateness over ${lateness.length} frames: ` +
        `p50 ${percentile(lateness, 50).toFixed(2)} ms, p99 ${percentile(lateness, 99).toFixed(2)} ms, ` +
        `max ${Math.max(...lateness).toFixed(2)} ms\n`,
    );
  }
});

async function dial(opts: { from?: string; to?: string } = {}): Promise<SimulatedCall> {
  const call = await simulator.dial({ from: opts.from ?? FROM, to: opts.to ?? TO });
  calls.push(call);
  return call;
}

async function waitForStatusPost(count = 1): Promise<Posted[]> {
  for (let i = 0; i < 100 && app.statusPosts().length < count; i++) await sleep(20);
  return app.statusPosts();
}

describe('parseTwiml', () => {
  it('reads Say (entities, CDATA, SSML), Pause, Hangup and Connect/Stream/Parameter in order', () => {
    const verbs = parseTwiml(
      `<?xml version="1.0" encoding="UTF-8"?>\n<!-- greeting -->\n<Response>\n` +
        `  <Say voice="Polly.Joanna" language='en-US'>Fish &amp; chips &lt;today&gt; &#8364;5 &#x21;</Say>\n` +
        `  <Say><![CDATA[a < b]]> and <emphasis>loud</emphasis><break time="1s"/>  words</Say>\n` +
        `  <Pause length="2"/><Play>https://x/y.mp3</Play>\n` +
        `  <Connect><Stream url="wss://relay.example.com/twilio/media" name="s1">` +
        `<Parameter name="token" value="a&amp;b&quot;c"/><Parameter name="empty"/></Stream></Connect>\n` +
        `  <Hangup/>\n</Response>`,
    );
    expect(verbs).toEqual([
      { verb: 'Say', text: 'Fish & chips <today> €5 !', voice: 'Polly.Joanna', language: 'en-US' },
      { verb: 'Say', text: 'a < b and loud words', voice: undefined, language: undefined },
      { verb: 'Pause', lengthSeconds: 2 },
      { verb: 'Other', name: 'Play', attributes: {} },
      {
        verb: 'Connect',
        stream: {
          url: 'wss://relay.example.com/twilio/media',
          name: 's1',
          statusCallback: undefined,
          parameters: { token: 'a&b"c', empty: '' },
        },
      },
      { verb: 'Hangup' },
    ]);
  });

  it('refuses what is not TwiML it can follow', () => {
    expect(() => parseTwiml('{"error":"nope"}')).toThrow(TwimlError);
    expect(() => parseTwiml('<Response><Say>unclosed</Response>')).toThrow(/unexpected <\/Response>/);
    expect(() => parseTwiml('<Response><Say>hi</Say>')).toThrow(/never closed/);
    expect(() => parseTwiml('<Reply><Say>hi</Say></Reply>')).toThrow(/root must be <Response>/);
    expect(() =>
      parseTwiml('<Response><Connect><ConversationRelay url="wss://x"/></Connect></Response>'),
    ).toThrow(/without <Stream>/);
    expect(() => parseTwiml('<Response><Say a=b>x</Say></Response>')).toThrow(/malformed XML/);
  });
});

describe('CachedTts', () => {
  it('synthesizes each line once and does not remember a failure', async () => {
    const inner = new ToneTts();
    let failNext = true;
    const flaky: CallerTts = {
      synthesize(req) {
        if (!failNext) return inner.synthesize(req);
        failNext = false;
        return Promise.reject(new Error('espeak crashed'));
      },
    };
    const cached = new CachedTts(flaky);
    const line = { text: 'a b', voiceId: 'en-us', language: 'en-US' };
    await expect(cached.synthesize(line)).rejects.toThrow('espeak crashed');
    await cached.warm(['a b', 'c']);
    expect((await cached.synthesize(line)).length).toBe(1600);
    expect(inner.requests.map((r) => r.text)).toEqual(['a b', 'c']);
  });
});

describe('the voice webhook', () => {
  it("posts Twilio's parameters as a form signed for the public URL", async () => {
    app.twiml = () => '<Response><Hangup/></Response>';
    const call = await simulator.dial({ from: FROM, to: TO, callSid: `CA${'1'.repeat(32)}` });
    calls.push(call);
    const voice = app.posts.filter((p) => p.path === '/twilio/voice');
    expect(voice).toHaveLength(1);
    const { headers, params } = voice[0]!;
    expect(headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(params).toEqual({
      CallSid: `CA${'1'.repeat(32)}`,
      AccountSid: ACCOUNT_SID,
      From: FROM,
      To: TO,
      CallStatus: 'ringing',
      ApiVersion: '2010-04-01',
      Direction: 'inbound',
    });
    const signature = headers['x-twilio-signature'] as string;
    expect(twilio.validateRequest(AUTH_TOKEN, signature, `${PUBLIC_BASE_URL}/twilio/voice`, params)).toBe(
      true,
    );
    // Signed for the public URL only: an api checking its socket address would (rightly) refuse it.
    expect(twilio.validateRequest(AUTH_TOKEN, signature, `${app.baseUrl}/twilio/voice`, params)).toBe(false);
  });

  it('follows Say/Hangup: outcome hangup, the said texts, no stream, and the call ends with a status callback', async () => {
    app.twiml = () =>
      '<?xml version="1.0"?><Response><Say>Hello &amp; welcome to &lt;Parley&gt;</Say>' +
      '<Say>We are closed.</Say><Hangup/><Say>never reached</Say></Response>';
    const call = await dial();
    expect(call.outcome).toBe('hangup');
    expect(call.said).toEqual(['Hello & welcome to <Parley>', 'We are closed.']);
    expect(call.streamSid).toBeUndefined();
    expect(app.streams).toHaveLength(0);
    await expect(call.closed).resolves.toEqual({ code: 1005, reason: '' });
    await expect(call.say('hello')).rejects.toThrow(/did not open a stream/);
    const [status, ...more] = await waitForStatusPost();
    expect(more).toHaveLength(0);
    expect(status!.params).toMatchObject({
      CallSid: call.callSid,
      CallStatus: 'completed',
      CallDuration: '0',
    });
  });

  it('rejects with WebhookError when the api answers an error', async () => {
    const failing = new CallerSimulator({
      apiBaseUrl: `${app.baseUrl}/missing`,
      authToken: AUTH_TOKEN,
      accountSid: ACCOUNT_SID,
      tts,
    });
    const err = await failing.dial({ from: FROM, to: TO }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookError);
    expect((err as WebhookError).status).toBe(404);
  });

  it('a refused stream upgrade rejects dial with its status, and the call ends as Twilio ends it', async () => {
    app.refuseUpgradesWith = 403;
    app.twiml = () => streamTwiml(app.streamUrl, {}, '', '<Say>Sorry.</Say>');
    const err = await simulator.dial({ from: FROM, to: TO }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamConnectError);
    expect((err as StreamConnectError).status).toBe(403);
    const [status] = await waitForStatusPost();
    expect(status!.params.CallStatus).toBe('completed');
  });
});

describe('the media stream', () => {
  it('opens with a signed upgrade, then sends connected and start with string numbers and the parameters', async () => {
    const call = await dial();
    const stream = await app.stream();
    expect(call.outcome).toBe('stream');
    expect(call.streamUrl).toBe(app.streamUrl);
    expect(call.parameters).toEqual({ token: 'tok&1', agent: 'demo' });

    const signature = stream.headers['x-twilio-signature'] as string;
    expect(twilio.validateRequest(AUTH_TOKEN, signature, app.streamUrl, {})).toBe(true);

    const [connected, start] = stream.received.map((r) => r.msg);
    expect(connected).toEqual({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    expect(start).toEqual({
      event: 'start',
      sequenceNumber: '1',
      streamSid: call.streamSid,
      start: {
        accountSid: ACCOUNT_SID,
        streamSid: call.streamSid,
        callSid: call.callSid,
        tracks: ['inbound'],
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        customParameters: { token: 'tok&1', agent: 'demo' },
      },
    });
    expect(call.streamSid).toMatch(/^MZ[0-9a-f]{32}$/);
    expect(call.callSid).toMatch(/^CA[0-9a-f]{32}$/);
  });

  it('sends silence frames every 20 ms while the caller says nothing, numbered as Twilio numbers them', async () => {
    await dial();
    const stream = await app.stream();
    await stream.waitFor(() => stream.media().length >= 26, 3000);
    const media = stream.media().slice(0, 26);
    media.forEach(({ msg }, i) => {
      expect(msg).toEqual({
        event: 'media',
        sequenceNumber: String(i + 2),
        streamSid: stream.streamSid,
        media: {
          track: 'inbound',
          chunk: String(i + 1),
          timestamp: String(i * 20),
          payload: expect.any(String),
        },
      });
      const bytes = Buffer.from(msg.media!.payload, 'base64');
      expect(bytes).toEqual(Buffer.alloc(160, MULAW_SILENCE));
    });
    // Real-time pace: 25 frame intervals take 500 ms, neither a burst nor a crawl.
    const span = media[25]!.at - media[0]!.at;
    expect(span).toBeGreaterThan(440);
    expect(span).toBeLessThan(580);
  });

  it('say() streams the speech in 160-byte frames at real-time pace, between silence', async () => {
    const call = await dial();
    const stream = await app.stream();
    await stream.waitFor(() => stream.media().length >= 5);
    const words = 'one two three four five six seven eight nine ten'; // 10 words: 1000 ms of tone
    const result = await call.say(words);
    await sleep(100);

    expect(tts.requests).toEqual([{ text: words, voiceId: 'en-us', language: 'en-US' }]);
    expect(result.ms).toBe(1000);
    expect(result.endedAt - result.startedAt).toBeGreaterThanOrEqual(950);
    expect(result.endedAt - result.startedAt).toBeLessThan(1150);

    const media = stream.media();
    for (const { msg } of media) expect(Buffer.from(msg.media!.payload, 'base64')).toHaveLength(160);
    const sequence = media.map((m) => Number(m.msg.sequenceNumber));
    const timestamps = media.map((m) => Number(m.msg.media!.timestamp));
    sequence.slice(1).forEach((n, i) => expect(n).toBe(sequence[i]! + 1));
    timestamps.slice(1).forEach((t, i) => expect(t).toBe(timestamps[i]! + 20));

    const speechFrames = media.filter((m) => nonSilentBytes([m]).length > 0);
    const speech = nonSilentBytes(speechFrames);
    // Exactly the synthesized speech, in order: 1000 ms ± 40 ms, sample for sample.
    expect(Math.abs(muLawDecode(speech).length / 8 - 1000)).toBeLessThanOrEqual(40);
    expect(speech.equals(muLawEncode(tone(1000)))).toBe(true);
    // Contiguous frames, framed by silence before and after.
    const first = media.indexOf(speechFrames[0]!);
    expect(media.indexOf(speechFrames[speechFrames.length - 1]!) - first).toBe(speechFrames.length - 1);
    expect(first).toBeGreaterThanOrEqual(5);
    expect(media.length).toBeGreaterThan(first + speechFrames.length);
    // Paced, not dumped: 49 frame intervals take ~980 ms at the relay.
    const span = speechFrames[speechFrames.length - 1]!.at - speechFrames[0]!.at;
    expect(span).toBeGreaterThan(900);
    expect(span).toBeLessThan(1100);
  });

  it('speaks with espeak-ng by default', async () => {
    if (spawnSync('espeak-ng', ['--version']).status !== 0) {
      console.warn('skipped: espeak-ng is not installed');
      return;
    }
    // The reference synthesis runs before the call, so only say()'s own espeak-ng process shares the clock.
    const expected = await new EspeakTts().synthesize({
      text: 'hello there',
      voiceId: 'en-us',
      language: 'en-US',
    });
    const withEspeak = new CallerSimulator({
      apiBaseUrl: app.baseUrl,
      authToken: AUTH_TOKEN,
      accountSid: ACCOUNT_SID,
    });
    const call = await withEspeak.dial({ from: FROM, to: TO });
    calls.push(call);
    const stream = await app.stream();
    const result = await call.say('hello there');
    expect(Math.abs(result.ms - expected.length / 8)).toBeLessThanOrEqual(40);
    await sleep(60);
    const speechMs = nonSilentBytes(stream.media()).length / 8;
    expect(speechMs).toBeGreaterThan(expected.length / 8 / 2);
    expect(speechMs).toBeLessThanOrEqual(expected.length / 8 + 40);
  });

  it('echoes a mark queued behind 400 ms of audio only once playback reaches it', async () => {
    const call = await dial();
    const stream = await app.stream();
    const audio = muLawEncode(tone(400, 4000, 20));
    // Any size is accepted: three uneven pieces.
    const sentAt = performance.now();
    stream.sendAudio(audio.subarray(0, 1000));
    stream.sendAudio(audio.subarray(1000, 1001));
    stream.sendAudio(audio.subarray(1001));
    stream.send({ event: 'mark', mark: { name: 'turn-1-chunk-1' } });
    const echo = await stream.waitFor((m) => m.event === 'mark', 3000);
    const delay = echo.at - sentAt;
    expect(delay).toBeGreaterThanOrEqual(395);
    expect(delay).toBeLessThan(560);
    expect(echo.msg).toEqual({
      event: 'mark',
      sequenceNumber: expect.stringMatching(/^\d+$/),
      streamSid: stream.streamSid,
      mark: { name: 'turn-1-chunk-1' },
    });
    const previous = stream.received[stream.received.indexOf(echo) - 1]!;
    expect(Number(echo.msg.sequenceNumber)).toBe(Number(previous.msg.sequenceNumber) + 1);
    expect(call.stats.mediaMessagesIn).toBe(3);
    expect(call.stats.audioMsReceived).toBe(400);
    expect(call.stats.audioMsPlayed).toBe(400);
    expect(call.stats.marksEchoed).toEqual(['turn-1-chunk-1']);
    expect(call.heardAudio()).toEqual(muLawDecode(audio));
  });

  it('echoes a mark at once when nothing is queued', async () => {
    const call = await dial();
    const stream = await app.stream();
    const sentAt = performance.now();
    stream.send({ event: 'mark', mark: { name: 'idle' } });
    const echo = await stream.waitFor((m) => m.event === 'mark');
    expect(echo.at - sentAt).toBeLessThan(15);
    expect(call.stats.marksEchoed).toEqual(['idle']);
  });

  it('clear drops the buffered audio and echoes every pending mark at once', async () => {
    const call = await dial();
    const stream = await app.stream();
    const first = muLawEncode(tone(2000, 5000, 16));
    const second = muLawEncode(tone(1000, 3000, 8));
    stream.sendAudio(first);
    stream.send({ event: 'mark', mark: { name: 'a' } });
    stream.sendAudio(second);
    stream.send({ event: 'mark', mark: { name: 'b' } });
    await sleep(300);
    const clearedAt = performance.now();
    stream.send({ event: 'clear' });
    const b = await stream.waitFor((m) => m.event === 'mark' && m.mark?.name === 'b', 1000);
    const marks = stream.received.filter((r) => r.msg.event === 'mark');
    expect(marks.map((r) => r.msg.mark!.name)).toEqual(['a', 'b']);
    expect(b.at - clearedAt).toBeLessThan(30);
    expect(Number(marks[1]!.msg.sequenceNumber)).toBe(Number(marks[0]!.msg.sequenceNumber) + 1);

    await sleep(200);
    const heard = call.heardAudio();
    // About 300 ms was played before the clear; nothing after it.
    expect(heard.length / 8).toBeGreaterThanOrEqual(260);
    expect(heard.length / 8).toBeLessThanOrEqual(400);
    expect(heard).toEqual(muLawDecode(first.subarray(0, heard.length)));
    expect(call.stats.clears).toHaveLength(1);
    expect(call.stats.audioMsPlayed + call.stats.audioMsCleared).toBe(3000);
    expect(call.stats.marksEchoed).toEqual(['a', 'b']);
  });

  it('waitForAgentTurn resolves once the agent has spoken and gone quiet, and times out on silence', async () => {
    const call = await dial();
    const stream = await app.stream();
    await expect(call.waitForAgentTurn({ timeoutMs: 300 })).rejects.toThrow(
      /did not finish a turn within 300 ms/,
    );

    const sentAt = performance.now();
    const sentAtEpoch = Date.now();
    stream.sendAudio(muLawEncode(tone(500)));
    const turn = await call.waitForAgentTurn({ quietMs: 300, timeoutMs: 3000 });
    const took = performance.now() - sentAt;
    expect(turn.audioMs).toBe(500);
    // Heard from the next 20 ms tick on.
    expect(turn.startedAt - sentAtEpoch).toBeGreaterThanOrEqual(0);
    expect(turn.startedAt - sentAtEpoch).toBeLessThan(40);
    expect(took).toBeGreaterThanOrEqual(790);
    expect(took).toBeLessThan(1000);
    // The next turn counts only what is heard after this one.
    stream.sendAudio(muLawEncode(tone(100)));
    const next = await call.waitForAgentTurn({ quietMs: 100, timeoutMs: 2000 });
    expect(next.audioMs).toBe(100);
    expect(next.startedAt).toBeGreaterThan(turn.startedAt + 500);
  });

  it('sends DTMF as Twilio does', async () => {
    const call = await dial();
    const stream = await app.stream();
    call.sendDtmf('#');
    const dtmf = await stream.waitFor((m) => m.event === 'dtmf');
    expect(dtmf.msg).toEqual({
      event: 'dtmf',
      sequenceNumber: expect.stringMatching(/^\d+$/),
      streamSid: stream.streamSid,
      dtmf: { track: 'inbound_track', digit: '#' },
    });
    const previous = stream.received[stream.received.indexOf(dtmf) - 1]!;
    expect(Number(dtmf.msg.sequenceNumber)).toBe(Number(previous.msg.sequenceNumber) + 1);
    expect(() => call.sendDtmf('x')).toThrow(RangeError);
  });

  it('counts malformed messages from the app instead of throwing, and keeps streaming', async () => {
    const call = await dial();
    const stream = await app.stream();
    stream.ws.send('not json');
    stream.ws.send('[1,2]');
    stream.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    stream.send({ event: 'media', media: { payload: '!!not base64!!' } });
    stream.send({ event: 'media' });
    stream.send({ event: 'mark', mark: {} });
    stream.send({ event: 'bogus' });
    stream.ws.send(JSON.stringify({ event: 'clear', streamSid: 'MZ-someone-else' }));
    const framesBefore = stream.media().length;
    await sleep(150);
    expect(call.stats.malformedMessagesIn).toBe(8);
    expect(call.stats.mediaMessagesIn).toBe(0);
    expect(call.stats.clears).toHaveLength(0);
    expect(stream.media().length).toBeGreaterThanOrEqual(framesBefore + 5);
  });

  it('hangup sends stop, closes the socket and posts a signed completed status with CallDuration', async () => {
    const dialledAt = performance.now();
    const call = await dial();
    const stream = await app.stream();
    await sleep(1300);
    await call.hangup();
    const elapsed = (performance.now() - dialledAt) / 1000;

    const last = stream.received[stream.received.length - 1]!;
    const previous = stream.received[stream.received.length - 2]!;
    expect(last.msg).toEqual({
      event: 'stop',
      sequenceNumber: String(Number(previous.msg.sequenceNumber) + 1),
      streamSid: stream.streamSid,
      stop: { accountSid: ACCOUNT_SID, callSid: call.callSid },
    });
    await expect(call.closed).resolves.toEqual({ code: 1000, reason: '' });
    expect((await stream.closed).code).toBe(1000);

    const [status, ...more] = app.statusPosts();
    expect(more).toHaveLength(0);
    expect(status!.params).toEqual({
      AccountSid: ACCOUNT_SID,
      ApiVersion: '2010-04-01',
      CallbackSource: 'call-progress-events',
      CallSid: call.callSid,
      CallStatus: 'completed',
      CallDuration: expect.stringMatching(/^\d+$/),
      Direction: 'inbound',
      From: FROM,
      To: TO,
      SequenceNumber: '0',
      StatusCallbackEvent: 'completed',
      Timestamp: expect.stringMatching(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/),
    });
    const duration = Number(status!.params.CallDuration);
    expect(duration).toBeGreaterThanOrEqual(Math.floor(elapsed));
    expect(duration).toBeLessThanOrEqual(Math.ceil(elapsed));
    expect(Math.abs(Date.parse(status!.params.Timestamp!) - Date.now())).toBeLessThan(5000);
    const signature = status!.headers['x-twilio-signature'] as string;
    expect(
      twilio.validateRequest(AUTH_TOKEN, signature, `${PUBLIC_BASE_URL}/twilio/status`, status!.params),
    ).toBe(true);
    // Over is over: no more frames, no second callback.
    const count = stream.received.length;
    await call.hangup();
    await sleep(60);
    expect(stream.received).toHaveLength(count);
    expect(app.statusPosts()).toHaveLength(1);
  });

  it('when the app closes the stream, the TwiML after <Connect> runs and the call ends with one status callback', async () => {
    app.twiml = () => streamTwiml(app.streamUrl, {}, '<Say>Connecting.</Say>', '<Say>Goodbye.</Say>');
    const call = await dial();
    const stream = await app.stream();
    expect(call.said).toEqual(['Connecting.']);
    const waiting = call.waitForAgentTurn({ timeoutMs: 5000 });
    stream.ws.close(4000, 'agent hung up');
    await expect(call.closed).resolves.toEqual({ code: 4000, reason: 'agent hung up' });
    await expect(waiting).rejects.toThrow(/before the agent spoke/);
    expect(call.said).toEqual(['Connecting.', 'Goodbye.']);
    const [status] = await waitForStatusPost();
    expect(status!.params).toMatchObject({ CallSid: call.callSid, CallStatus: 'completed' });
    await call.hangup();
    expect(app.statusPosts()).toHaveLength(1);
    expect(() => call.sendDtmf('1')).toThrow(/closed/);
  });

  it('postStatus posts any status with its event and answers the HTTP status', async () => {
    const status = await simulator.postStatus(`CA${'2'.repeat(32)}`, 'busy', { AnsweredBy: 'human' });
    expect(status).toBe(204);
    const [busy] = app.statusPosts();
    expect(busy!.params).toMatchObject({
      CallStatus: 'busy',
      StatusCallbackEvent: 'completed',
      CallDuration: '0',
    });
    expect(busy!.params.AnsweredBy).toBe('human');
    await simulator.postStatus(`CA${'2'.repeat(32)}`, 'in-progress');
    const answered = app.statusPosts()[1]!;
    expect(answered.params.StatusCallbackEvent).toBe('answered');
    expect(answered.params.CallDuration).toBeUndefined();
  });

  it('keeps its 20 ms schedule: frame send lateness stays small', async () => {
    const call = await dial();
    await app.stream();
    await call.say('one two three four five six seven eight nine ten');
    const late = call.stats.lastFrameLateMs;
    expect(late.length).toBe(call.stats.framesSent);
    expect(late.length).toBeGreaterThanOrEqual(50);
    expect(percentile(late, 50)).toBeLessThan(5);
  });
});
