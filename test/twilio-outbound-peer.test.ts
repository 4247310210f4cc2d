/**
 * The outbound Twilio peer must behave as Twilio does for calls Parley places, or the dialer's tests
 * prove nothing. Here the real twilio-node SDK (through createTwilioClient's apiBaseUrl redirect)
 * places calls on the peer, and a small app side over real sockets answers the voice webhook (its
 * signature verified with twilio.validateRequest), serves a Media Stream, and records every status
 * and AMD callback.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import { WebSocketServer, type WebSocket } from 'ws';
import { createTwilioClient } from '../activities/telephony';
import { MULAW_SILENCE } from '../realtime-relay/audio/g711';
import type { CallerTts } from './peers/caller-simulator';
import { OutboundTwilioPeer } from './peers/twilio-outbound-peer';

const FROM = '+15005550006';
const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let numberCounter = 0;
/** A fresh callee number per test, so scripts and list filters never see another test's calls. */
function nextNumber(): string {
  numberCounter += 1;
  return `+1415555${String(1000 + numberCounter)}`;
}

/** 100 ms of tone per word: the callee's speech, known exactly and never the silence byte. */
class ToneTts implements CallerTts {
  readonly requests: string[] = [];
  synthesize(req: { text: string }): Promise<Int16Array> {
    this.requests.push(req.text);
    const pcm = new Int16Array(800 * req.text.split(/\s+/).length);
    for (let i = 0; i < pcm.length; i++) pcm[i] = i % 16 < 8 ? 6000 : -6000;
    return Promise.resolve(pcm);
  }
}

interface Posted {
  method: string;
  path: string;
  /** The full URL as the app sees it (what the signature must cover). */
  url: string;
  params: Record<string, string>;
  signatureValid: boolean;
  time: number;
}

interface StreamMessage {
  event: string;
  streamSid?: string;
  start?: { callSid: string; accountSid: string; customParameters: Record<string, string> };
  media?: { payload: string };
  mark?: { name: string };
}

/** The app's media side of one call: every message, and a way to play audio and marks. */
class AppStream {
  readonly messages: StreamMessage[] = [];
  readonly closed: Promise<number>;
  private listeners: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse((data as Buffer).toString('utf8')) as StreamMessage);
      for (const listener of this.listeners) listener();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  }

  get streamSid(): string {
    return this.messages.find((m) => m.event === 'start')!.streamSid!;
  }

  waitFor(predicate: (m: StreamMessage) => boolean, timeoutMs = 5000): Promise<StreamMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(predicate);
        if (!found) return;
        this.listeners = this.listeners.filter((l) => l !== check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`no matching stream message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.listeners.push(check);
      check();
    });
  }

  /** Plays `ms` of audio (a tone, not silence), then a mark. */
  play(ms: number, mark: string): void {
    const audio = Buffer.alloc(ms * 8, 0x55);
    this.ws.send(
      JSON.stringify({
        event: 'media',
        streamSid: this.streamSid,
        media: { payload: audio.toString('base64') },
      }),
    );
    this.ws.send(JSON.stringify({ event: 'mark', streamSid: this.streamSid, mark: { name: mark } }));
  }

  /** Non-silent audio the callee sent, in ms. */
  calleeSpeechMs(): number {
    let bytes = 0;
    for (const m of this.messages) {
      if (m.event !== 'media') continue;
      for (const b of Buffer.from(m.media!.payload, 'base64')) if (b !== MULAW_SILENCE) bytes++;
    }
    return bytes / 8;
  }
}

/** The app side: voice webhook, status and AMD callbacks, and the Media Stream on /media. */
class AppSide {
  readonly posts: Posted[] = [];
  readonly streams: AppStream[] = [];
  twiml: (params: Record<string, string>) => string = () => '<Response><Say>hi</Say><Hangup/></Response>';
  onStream?: (stream: AppStream) => void;
  onPost?: (posted: Posted) => void;
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true });

  constructor(private readonly authToken: string) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = `${this.baseUrl}${req.url ?? ''}`;
        const { pathname: path, searchParams } = new URL(url);
        const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        const signature = String(req.headers['x-twilio-signature'] ?? '');
        const posted: Posted = {
          method: req.method ?? '',
          path,
          url,
          // A GET webhook carries its parameters in the query string, and the signature covers the URL only.
          params: req.method === 'GET' ? Object.fromEntries(searchParams) : form,
          signatureValid: twilio.validateRequest(this.authToken, signature, url, form),
          time: Date.now(),
        };
        this.posts.push(posted);
        this.onPost?.(posted);
        if (path === '/voice') {
          res.writeHead(200, { 'content-type': 'text/xml' });
          res.end(this.twiml(posted.params));
        } else {
          res.writeHead(204).end();
        }
      });
    });
    this.server.on('upgrade', (req, socket, head) => {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = new AppStream(ws);
        this.streams.push(stream);
        this.onStream?.(stream);
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  streamTwiml(): string {
    const url = `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/media`;
    return `<Response><Connect><Stream url="${url}"><Parameter name="token" value="t1"/></Stream></Connect></Response>`;
  }

  postsFor(callSid: string, path: string): Posted[] {
    return this.posts.filter((p) => p.path === path && p.params.CallSid === callSid);
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let peer: OutboundTwilioPeer;
let app: AppSide;
let client: twilio.Twilio;
let tts: ToneTts;

beforeAll(async () => {
  tts = new ToneTts();
  peer = await new OutboundTwilioPeer({ tts }).listen();
  app = new AppSide(peer.authToken);
  await app.listen();
  client = createTwilioClient({
    accountSid: peer.accountSid,
    authToken: peer.authToken,
    apiBaseUrl: peer.baseUrl,
  });
});

beforeEach(() => {
  app.posts.length = 0;
  app.streams.length = 0;
  app.twiml = () => '<Response><Say>hi</Say><Hangup/></Response>';
  app.onStream = undefined;
  app.onPost = undefined;
  peer.createDelayMs = 0;
});

afterAll(async () => {
  await peer?.close();
  await app?.close();
});

/** Everything twilio-node can send for an outbound call with async AMD and progress callbacks. */
function createParams(to: string, extra: Record<string, unknown> = {}) {
  return {
    to,
    from: FROM,
    url: `${app.baseUrl}/voice?campaign=c7&attempt=1`,
    method: 'POST',
    statusCallback: `${app.baseUrl}/status?attempt=1`,
    statusCallbackMethod: 'POST',
    statusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
    timeout: 20,
    ...extra,
  };
}

async function rawCreate(form: Record<string, string>): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${peer.baseUrl}/2010-04-01/Accounts/${peer.accountSid}/Calls.json`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${peer.accountSid}:${peer.authToken}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: await res.json() };
}

describe('calls.create', () => {
  it("answers 201 with the call in Twilio's shape, and sees exactly the parameters twilio-node sends", async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'busy' });
    const call = await client.calls.create({
      ...createParams(to),
      machineDetection: 'DetectMessageEnd',
      asyncAmd: 'true',
      asyncAmdStatusCallback: `${app.baseUrl}/amd`,
      asyncAmdStatusCallbackMethod: 'POST',
      machineDetectionTimeout: 10,
    });
    expect(call.sid).toMatch(/^CA[0-9a-f]{32}$/);
    expect(call).toMatchObject({
      accountSid: peer.accountSid,
      to,
      from: FROM,
      status: 'queued',
      direction: 'outbound-api',
      startTime: null,
      endTime: null,
      duration: null,
      answeredBy: null,
      apiVersion: '2010-04-01',
      uri: `/2010-04-01/Accounts/${peer.accountSid}/Calls/${call.sid}.json`,
    });

    const create = peer.creates.at(-1)!;
    expect(create).toMatchObject({ status: 201, callSid: call.sid, to, from: FROM });
    expect(Object.keys(create.params).sort()).toEqual([
      'AsyncAmd',
      'AsyncAmdStatusCallback',
      'AsyncAmdStatusCallbackMethod',
      'From',
      'MachineDetection',
      'MachineDetectionTimeout',
      'Method',
      'StatusCallback',
      'StatusCallbackEvent',
      'StatusCallbackMethod',
      'Timeout',
      'To',
      'Url',
    ]);
    expect(create.params).toMatchObject({
      Url: `${app.baseUrl}/voice?campaign=c7&attempt=1`,
      Timeout: '20',
      MachineDetection: 'DetectMessageEnd',
      AsyncAmd: 'true',
      MachineDetectionTimeout: '10',
    });
    // A repeated form parameter, one value each.
    expect(create.form.getAll('StatusCallbackEvent')).toEqual([
      'initiated',
      'ringing',
      'answered',
      'completed',
    ]);
    await peer.call(call.sid).ended;
  });

  it("the raw 201 body is Twilio's snake_case call resource", async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'failed' });
    const { status, body } = await rawCreate({ To: to, From: FROM, Url: `${app.baseUrl}/voice` });
    expect(status).toBe(201);
    expect(body).toMatchObject({
      account_sid: peer.accountSid,
      to,
      from: FROM,
      status: 'queued',
      direction: 'outbound-api',
      start_time: null,
      end_time: null,
      answered_by: null,
      parent_call_sid: null,
      price_unit: 'USD',
    });
    expect((body as { date_created: string }).date_created).toMatch(RFC2822);
    await peer.call((body as { sid: string }).sid).ended;
  });

  it('refuses a create without To, From or Url, and an invalid To, with Twilio error bodies', async () => {
    const url = `${app.baseUrl}/voice`;
    const refusals = [
      [{ From: FROM, Url: url }, 21201],
      [{ To: '+14155550100', Url: url }, 21213],
      [{ To: '+14155550100', From: FROM }, 21205],
      [{ To: '12345', From: FROM, Url: url }, 21217],
    ] as const;
    const before = peer.outboundCalls.size;
    for (const [form, code] of refusals) {
      const { status, body } = await rawCreate(form);
      expect(status).toBe(400);
      expect(body).toEqual({
        code,
        message: expect.any(String),
        more_info: `https://www.twilio.com/docs/errors/${code}`,
        status: 400,
      });
    }
    expect(peer.outboundCalls.size).toBe(before);
    expect(peer.creates.slice(-4).map((c) => [c.status, c.error?.code, c.callSid])).toEqual(
      refusals.map(([, code]) => [400, code, undefined]),
    );

    // Through the SDK: an invalid number is a RestException with Twilio's code.
    const err = await client.calls.create(createParams('+0123')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(twilio.RestException);
    expect(err).toMatchObject({ status: 400, code: 21217 });
  });

  it("a 'reject' script makes calls.create itself fail: RestException with the scripted code", async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'reject', status: 400, code: 21217, message: 'Not a reachable number' });
    const err = await client.calls.create(createParams(to)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(twilio.RestException);
    expect(err).toMatchObject({
      status: 400,
      code: 21217,
      message: 'Not a reachable number',
      moreInfo: 'https://www.twilio.com/docs/errors/21217',
    });
    expect(peer.creates.at(-1)).toMatchObject({ to, status: 400 });
    expect(peer.creates.at(-1)!.callSid).toBeUndefined();
    expect([...peer.outboundCalls.values()].some((c) => c.to === to)).toBe(false);
    await sleep(100);
    expect(app.posts.filter((p) => p.params.To === to)).toEqual([]);
  });

  it('createDelayMs holds the 201 back while the call already exists and progresses', async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'busy', delayMs: 20 });
    peer.createDelayMs = 400;
    const started = Date.now();
    const creating = client.calls.create(createParams(to));
    await sleep(250);
    const create = peer.creates.at(-1)!;
    expect(create.to).toBe(to);
    expect(create.callSid).toMatch(/^CA/);
    // The call is known before the app hears of it: a crash here leaves a call the app must find.
    expect(app.postsFor(create.callSid!, '/status').map((p) => p.params.StatusCallbackEvent)).toEqual([
      'initiated',
      'completed',
    ]);
    const call = await creating;
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(call.sid).toBe(create.callSid);
    expect(call.status).toBe('queued');
  });
});

describe('call progress', () => {
  it('answer: initiated, ringing, answered, completed in order, signed, numbered; the voice webhook as Twilio posts it', async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'answer', ringMs: 100 });
    const created = await client.calls.create(createParams(to));
    const record = await peer.call(created.sid).ended;

    const [voice, ...moreVoice] = app.postsFor(created.sid, '/voice');
    expect(moreVoice).toEqual([]);
    expect(voice!.url).toBe(`${app.baseUrl}/voice?campaign=c7&attempt=1`);
    expect(voice!.signatureValid).toBe(true);
    expect(voice!.params).toEqual({
      CallSid: created.sid,
      AccountSid: peer.accountSid,
      From: FROM,
      To: to,
      CallStatus: 'in-progress',
      ApiVersion: '2010-04-01',
      Direction: 'outbound-api',
    });

    const status = app.postsFor(created.sid, '/status');
    expect(
      status.map((p) => [p.params.StatusCallbackEvent, p.params.CallStatus, p.params.SequenceNumber]),
    ).toEqual([
      ['initiated', 'initiated', '0'],
      ['ringing', 'ringing', '1'],
      ['answered', 'in-progress', '2'],
      ['completed', 'completed', '3'],
    ]);
    for (const p of status) {
      expect(p.url).toBe(`${app.baseUrl}/status?attempt=1`);
      expect(p.signatureValid).toBe(true);
      expect(p.params).toMatchObject({
        CallSid: created.sid,
        AccountSid: peer.accountSid,
        From: FROM,
        To: to,
        Direction: 'outbound-api',
        ApiVersion: '2010-04-01',
        CallbackSource: 'call-progress-events',
      });
      expect(p.params.Timestamp).toMatch(RFC2822);
    }
    expect(status.slice(0, 3).every((p) => p.params.CallDuration === undefined)).toBe(true);
    expect(status[3]!.params.CallDuration).toBe('0');
    // Rang for ringMs before the answer (timed on the peer's side: callbacks arrive when they arrive).
    expect(record.answeredAt! - record.createdAt).toBeGreaterThanOrEqual(100);

    expect(record).toMatchObject({ outcome: 'completed', endedBy: 'twiml-ended' });
    expect(record.answeredBy).toBeUndefined();
    expect(record.simulated!.said).toEqual(['hi']);
    const fetched = await client.calls(created.sid).fetch();
    expect(fetched).toMatchObject({
      status: 'completed',
      duration: '0',
      answeredBy: null,
      direction: 'outbound-api',
    });
    expect(fetched.startTime).toBeInstanceOf(Date);
    expect(fetched.endTime).toBeInstanceOf(Date);
  });

  it('synchronous AMD (no AsyncAmd): the voice webhook waits for the result and carries it; Method=GET', async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'answer', ringMs: 10, answeredBy: 'unknown', amdDelayMs: 200 });
    const created = await client.calls.create(
      createParams(to, { method: 'GET', machineDetection: 'Enable', statusCallbackEvent: ['answered'] }),
    );
    const record = await peer.call(created.sid).ended;
    const [voice] = app.postsFor(created.sid, '/voice');
    expect(voice!.method).toBe('GET');
    expect(voice!.signatureValid).toBe(true);
    expect(voice!.params).toEqual({
      campaign: 'c7',
      attempt: '1',
      CallSid: created.sid,
      AccountSid: peer.accountSid,
      From: FROM,
      To: to,
      CallStatus: 'in-progress',
      ApiVersion: '2010-04-01',
      Direction: 'outbound-api',
      AnsweredBy: 'unknown',
      MachineDetectionDuration: '200',
    });
    const [answered] = app.postsFor(created.sid, '/status');
    expect(voice!.time - answered!.time).toBeGreaterThanOrEqual(150);
    expect(app.posts.filter((p) => p.path === '/amd' && p.params.CallSid === created.sid)).toEqual([]);
    expect(record.answeredBy).toBe('unknown');
  });

  it('only the events asked for are posted, and completed always', async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'answer' });
    const created = await client.calls.create(createParams(to, { statusCallbackEvent: ['answered'] }));
    await peer.call(created.sid).ended;
    expect(
      app
        .postsFor(created.sid, '/status')
        .map((p) => [p.params.StatusCallbackEvent, p.params.SequenceNumber]),
    ).toEqual([
      ['answered', '0'],
      ['completed', '1'],
    ]);
  });

  it('answer with a stream: the callee speaks after each agent turn, async AMD says human, a REST hang-up ends it', async () => {
    const to = nextNumber();
    peer.script(to, {
      outcome: 'answer',
      ringMs: 20,
      answeredBy: 'human',
      amdDelayMs: 100,
      say: ['yes please'],
    });
    app.twiml = () => app.streamTwiml();
    const streamOpened = new Promise<AppStream>((resolve) => (app.onStream = resolve));
    const created = await client.calls.create(
      createParams(to, {
        machineDetection: 'Enable',
        asyncAmd: 'true',
        asyncAmdStatusCallback: `${app.baseUrl}/amd`,
        asyncAmdStatusCallbackMethod: 'POST',
      }),
    );
    const stream = await streamOpened;
    const start = await stream.waitFor((m) => m.event === 'start');
    expect(start.start).toMatchObject({
      callSid: created.sid,
      accountSid: peer.accountSid,
      customParameters: { token: 't1' },
    });

    // The agent speaks 300 ms; the callee answers "yes please" (200 ms of tone) once it has heard it.
    stream.play(300, 'greeting');
    await stream.waitFor((m) => m.event === 'mark' && m.mark?.name === 'greeting');
    for (let i = 0; i < 250 && stream.calleeSpeechMs() < 200; i++) await sleep(20);
    expect(stream.calleeSpeechMs()).toBe(200);
    expect(tts.requests).toContain('yes please');

    const [amd, ...moreAmd] = app.postsFor(created.sid, '/amd');
    expect(moreAmd).toEqual([]);
    expect(amd!.signatureValid).toBe(true);
    expect(amd!.params).toEqual({
      CallSid: created.sid,
      AccountSid: peer.accountSid,
      AnsweredBy: 'human',
      MachineDetectionDuration: '100',
    });

    expect(peer.liveCalls).toBeGreaterThanOrEqual(1);
    const hungUp = await client.calls(created.sid).update({ status: 'completed' });
    expect(hungUp.status).toBe('completed');
    expect(await stream.closed).toBe(1000);
    expect(stream.messages.at(-1)).toMatchObject({ event: 'stop' });
    const record = await peer.call(created.sid).ended;
    expect(record).toMatchObject({ outcome: 'completed', endedBy: 'rest-hangup', answeredBy: 'human' });
    expect(peer.hangups).toContain(created.sid);
    const status = app.postsFor(created.sid, '/status');
    expect(status.map((p) => p.params.StatusCallbackEvent)).toEqual([
      'initiated',
      'ringing',
      'answered',
      'completed',
    ]);
    expect(status.at(-1)!.params).toMatchObject({ CallStatus: 'completed', SequenceNumber: '3' });
    expect(status.at(-1)!.signatureValid).toBe(true);
    const fetched = await client.calls(created.sid).fetch();
    expect(fetched).toMatchObject({ status: 'completed', answeredBy: 'human' });
  });

  it('no-answer rings until the Timeout, then ends no-answer without a voice webhook', async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'no-answer', ringMs: 10_000 });
    const started = Date.now();
    const created = await client.calls.create(createParams(to, { timeout: 1 }));
    const record = await peer.call(created.sid).ended;
    const rang = record.endedAt! - started;
    expect(rang).toBeGreaterThanOrEqual(950);
    expect(rang).toBeLessThan(2_500);
    expect(record).toMatchObject({ outcome: 'no-answer', endedBy: 'not-answered' });
    expect(record.answeredAt).toBeUndefined();
    expect(app.postsFor(created.sid, '/voice')).toEqual([]);
    expect(
      app.postsFor(created.sid, '/status').map((p) => [p.params.StatusCallbackEvent, p.params.CallStatus]),
    ).toEqual([
      ['initiated', 'initiated'],
      ['ringing', 'ringing'],
      ['completed', 'no-answer'],
    ]);
    expect(app.postsFor(created.sid, '/status').at(-1)!.params.CallDuration).toBe('0');
    const fetched = await client.calls(created.sid).fetch();
    expect(fetched).toMatchObject({ status: 'no-answer', duration: '0' });
    expect(fetched.startTime).toBeInstanceOf(Date);
  });

  it('an answer slower than the Timeout is a no-answer', async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'answer', ringMs: 5_000 });
    const created = await client.calls.create(createParams(to, { timeout: 1 }));
    const record = await peer.call(created.sid).ended;
    expect(record.outcome).toBe('no-answer');
    expect(app.postsFor(created.sid, '/voice')).toEqual([]);
  });

  it.each(['busy', 'failed'] as const)(
    '%s: final status after the delay, never rung or answered',
    async (outcome) => {
      const to = nextNumber();
      peer.script(to, { outcome, delayMs: 30 });
      const created = await client.calls.create(createParams(to));
      const record = await peer.call(created.sid).ended;
      expect(record).toMatchObject({ outcome, endedBy: 'not-answered' });
      expect(app.postsFor(created.sid, '/voice')).toEqual([]);
      const status = app.postsFor(created.sid, '/status');
      expect(
        status.map((p) => [p.params.StatusCallbackEvent, p.params.CallStatus, p.params.SequenceNumber]),
      ).toEqual([
        ['initiated', 'initiated', '0'],
        ['completed', outcome, '1'],
      ]);
      expect(status[1]!.params.CallDuration).toBe('0');
      // Timed on the peer's side: callbacks arrive when the network delivers them.
      expect(record.endedAt! - record.createdAt).toBeGreaterThanOrEqual(30);
      expect(await client.calls(created.sid).fetch()).toMatchObject({ status: outcome, duration: '0' });
    },
  );

  it('a REST hang-up of a ringing call cancels it', async () => {
    const to = nextNumber();
    peer.script(to, { outcome: 'no-answer' });
    const created = await client.calls.create(createParams(to, { timeout: 30 }));
    await sleep(100);
    expect((await client.calls(created.sid).fetch()).status).toBe('ringing');
    const updated = await client.calls(created.sid).update({ status: 'canceled' });
    expect(updated.status).toBe('canceled');
    const record = await peer.call(created.sid).ended;
    expect(record).toMatchObject({ outcome: 'canceled', endedBy: 'rest-hangup' });
    expect(app.postsFor(created.sid, '/status').at(-1)!.params).toMatchObject({
      StatusCallbackEvent: 'completed',
      CallStatus: 'canceled',
    });
  });
});

describe('voicemail', () => {
  async function leaveMessage(
    machineDetection: 'Enable' | 'DetectMessageEnd',
    script: { greetingMs: number; amdDelayMs?: number },
  ) {
    const to = nextNumber();
    peer.script(to, { outcome: 'voicemail', ringMs: 20, ...script });
    app.twiml = () => app.streamTwiml();
    let stream: AppStream | undefined;
    app.onStream = (s) => {
      stream = s;
      // Talking over the greeting: none of this is on the message.
      void s.waitFor((m) => m.event === 'start').then(() => s.play(100, 'over-greeting'));
    };
    const amdPosted = new Promise<Posted>((resolve) => {
      app.onPost = (p) => {
        if (p.path !== '/amd') return;
        // The app leaves its message once AMD says it is a machine.
        stream!.play(500, 'message');
        resolve(p);
      };
    });
    const created = await client.calls.create(
      createParams(to, {
        machineDetection,
        asyncAmd: 'true',
        asyncAmdStatusCallback: `${app.baseUrl}/amd`,
      }),
    );
    const amd = await amdPosted;
    await stream!.waitFor((m) => m.event === 'mark' && m.mark?.name === 'message');
    await client.calls(created.sid).update({ status: 'completed' });
    const record = await peer.call(created.sid).ended;
    return { created, amd, record, stream: stream! };
  }

  it('DetectMessageEnd: machine_end_beep after the greeting; the message after it is measured', async () => {
    const answeredAt = Date.now();
    const { created, amd, record } = await leaveMessage('DetectMessageEnd', {
      greetingMs: 600,
      amdDelayMs: 100,
    });
    expect(amd.time - answeredAt).toBeGreaterThanOrEqual(600);
    expect(amd.signatureValid).toBe(true);
    expect(amd.params).toEqual({
      CallSid: created.sid,
      AccountSid: peer.accountSid,
      AnsweredBy: 'machine_end_beep',
      MachineDetectionDuration: '600',
    });
    expect(record).toMatchObject({
      outcome: 'completed',
      endedBy: 'rest-hangup',
      answeredBy: 'machine_end_beep',
    });
    expect(record.voicemailAudioMs).toBe(500);
    expect(record.simulated!.stats.audioMsReceived).toBe(600);
    expect((await client.calls(created.sid).fetch()).answeredBy).toBe('machine_end_beep');
  });

  it('Enable: machine_start after amdDelayMs, during the greeting', async () => {
    const answeredAt = Date.now();
    const { created, amd, record } = await leaveMessage('Enable', { greetingMs: 5_000, amdDelayMs: 400 });
    expect(amd.time - answeredAt).toBeGreaterThanOrEqual(400);
    expect(amd.time - answeredAt).toBeLessThan(2_000);
    expect(amd.params).toEqual({
      CallSid: created.sid,
      AccountSid: peer.accountSid,
      AnsweredBy: 'machine_start',
      MachineDetectionDuration: '400',
    });
    expect(record.answeredBy).toBe('machine_start');
    expect(record.voicemailAudioMs).toBe(500);
  });
});

describe('calls.list', () => {
  it('filters by To and StartTime as twilio-node sends them, and pages', async () => {
    const [a, b] = [nextNumber(), nextNumber()];
    peer.script(a, { outcome: 'busy', delayMs: 10 });
    peer.script(b, { outcome: 'busy', delayMs: 10 });
    const early = await client.calls.create(createParams(a));
    await client.calls.create(createParams(b));
    // twilio-node sends StartTime filters to the second: the next calls start in a later second.
    await sleep(1_100);
    const after = new Date();
    const late = await client.calls.create(createParams(a));
    await peer.waitForIdle(5_000);

    const toA = await client.calls.list({ to: a });
    expect(toA.map((c) => c.sid)).toEqual([late.sid, early.sid]);
    expect(toA.every((c) => c.to === a && c.status === 'busy')).toBe(true);

    const since = await client.calls.list({ to: a, startTimeAfter: after });
    expect(since.map((c) => c.sid)).toEqual([late.sid]);
    const listed = peer.requestsTo(/\/Calls\.json$/, 'GET').at(-1)!;
    expect(listed.query.get('To')).toBe(a);
    expect(listed.query.get('StartTime>')).toBe(after.toISOString().replace(/\.\d{3}Z$/, 'Z'));

    const before = await client.calls.list({ to: a, startTimeBefore: new Date(after.getTime() - 1_000) });
    expect(before.map((c) => c.sid)).toEqual([early.sid]);

    // One call per page: the SDK follows next_page_uri.
    const paged = await client.calls.list({ to: a, pageSize: 1 });
    expect(paged.map((c) => c.sid)).toEqual([late.sid, early.sid]);
    const page = await client.calls.page({ to: a, pageSize: 1 });
    expect(page.instances.map((c) => c.sid)).toEqual([late.sid]);
    expect(page.nextPageUrl).toContain('Page=1');
  });
});

describe('observability and fast media', () => {
  it('counts live calls, their maximum, and waits for idle', async () => {
    const fast = await new OutboundTwilioPeer({ fastMedia: true }).listen();
    try {
      const fastClient = createTwilioClient({
        accountSid: fast.accountSid,
        authToken: fast.authToken,
        apiBaseUrl: fast.baseUrl,
      });
      fast.defaultScript = { outcome: 'answer', ringMs: 10, hangupAfterMs: 400, say: ['never said'] };
      app.twiml = () => app.streamTwiml();
      const streams: AppStream[] = [];
      app.onStream = (s) => {
        streams.push(s);
        // 2 s of agent audio and a mark: with fast media the mark comes back at once.
        void s.waitFor((m) => m.event === 'start').then(() => s.play(2_000, 'long'));
      };
      const numbers = [nextNumber(), nextNumber(), nextNumber()];
      await Promise.all(numbers.map((to) => fastClient.calls.create(createParams(to))));
      expect(fast.creates.map((c) => c.status)).toEqual([201, 201, 201]);
      expect(fast.liveCalls).toBe(3);
      for (let i = 0; i < 100 && streams.length < 3; i++) await sleep(10);
      const echoed = await Promise.all(
        streams.map(async (s) => {
          const sent = Date.now();
          await s.waitFor((m) => m.event === 'start');
          await s.waitFor((m) => m.event === 'mark' && m.mark?.name === 'long', 1_000);
          return Date.now() - sent;
        }),
      );
      expect(Math.max(...echoed)).toBeLessThan(1_000);
      await fast.waitForIdle(5_000);
      expect(fast.liveCalls).toBe(0);
      expect(fast.maxLiveCalls).toBe(3);
      for (const record of fast.outboundCalls.values()) {
        expect(record).toMatchObject({ outcome: 'completed', endedBy: 'callee-hangup' });
        expect(record.simulated!.stats.audioMsPlayed).toBe(2_000);
        expect(record.simulated!.stats.framesSent).toBe(0);
      }
      // The callee sent nothing but connected/start (and stop): no frames, no speech.
      for (const s of streams)
        expect(s.messages.map((m) => m.event)).toEqual(['connected', 'start', 'mark', 'stop']);
    } finally {
      await fast.close();
    }
  });
});
