/**
 * Twilio's side of OUTBOUND calls, for tests and benchmarks of Parley's dialer: a TwilioPeer that
 * also answers `calls.create` (`POST …/Calls.json`) and `calls.list` (`GET …/Calls.json`) in Twilio's
 * wire format, and then plays the callee according to a per-number script — rings, answers (the voice
 * webhook to the create's `Url`, then the Media Stream through the caller simulator), is busy, fails,
 * never answers, or is a voicemail box — with the signed status callbacks (`StatusCallback`,
 * `StatusCallbackEvent`) and answering-machine detection callbacks (`AsyncAmdStatusCallback`) a real
 * call produces. Wire facts: /work/shared/protocols.md, "Twilio webhooks"; parameter names as
 * twilio-node 6 sends them (lib/rest/api/v2010/account/call.js).
 *
 * A REST hang-up (`POST …/Calls/{sid}.json Status=completed`) ends the simulated call (stream `stop`,
 * socket closed, `completed` callback), as LinkedTwilioPeer does for inbound calls.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EspeakTts } from '../../realtime-relay/speech/espeak-tts';
import { CachedTts, CallerSimulator, type CallerTts, type SimulatedCall } from './caller-simulator';
import {
  TERMINAL_CALL_STATUSES,
  TwilioPeer,
  randomSid,
  twilioDate,
  twilioError,
  type PeerCall,
  type PeerReply,
  type RouteContext,
  type TwilioPeerOptions,
} from './twilio-peer';

// --- scripts ---------------------------------------------------------------------------------

/** The callee picks up and listens (and speaks `say`, one line after each agent turn). */
export interface AnswerScript {
  outcome: 'answer';
  /** Ringing time before the answer, default 50 ms; at or beyond the create's Timeout it is a no-answer. */
  ringMs?: number;
  /** What answering-machine detection concludes, if the create asked for it (default 'human'). */
  answeredBy?: 'human' | 'unknown';
  /** How long AMD takes after the answer, default 300 ms (capped by MachineDetectionTimeout → 'unknown'). */
  amdDelayMs?: number;
  /** Utterances, one after each agent turn (espeak-ng through the simulator; ignored with fastMedia). */
  say?: string[];
  /** The callee hangs up this long after answering; default: stays until the app ends the call. */
  hangupAfterMs?: number;
}

/** Rings until the create's Timeout (or ringMs, if shorter), then `no-answer`. */
export interface NoAnswerScript {
  outcome: 'no-answer';
  ringMs?: number;
}

/** Final status `busy` / `failed` after delayMs (default 50 ms), never answered. */
export interface BusyScript {
  outcome: 'busy';
  delayMs?: number;
}

export interface FailedScript {
  outcome: 'failed';
  delayMs?: number;
}

/** calls.create itself answers this error (default 400, code 21217); no call is created. */
export interface RejectScript {
  outcome: 'reject';
  status?: number;
  code?: number;
  message?: string;
}

/**
 * An answering machine: answers like a human (voice webhook, stream), plays a greeting of greetingMs
 * (default 1000), then AMD reports `machine_end_beep` (MachineDetection=DetectMessageEnd, after the
 * greeting) or `machine_start` (Enable, after amdDelayMs, default greetingMs). The app's audio
 * received after that callback (after the beep when no AMD was asked for) is the message left:
 * `voicemailAudioMs`. Stays until the app hangs up (or hangupAfterMs).
 */
export interface VoicemailScript {
  outcome: 'voicemail';
  ringMs?: number;
  greetingMs?: number;
  amdDelayMs?: number;
  hangupAfterMs?: number;
}

export type OutboundScript =
  AnswerScript | NoAnswerScript | BusyScript | FailedScript | RejectScript | VoicemailScript;

export type OutboundFinalStatus = 'completed' | 'busy' | 'failed' | 'no-answer' | 'canceled';

/** Why the call ended. */
export type OutboundEndedBy =
  /** The app: `calls(sid).update({ status })`. */
  | 'rest-hangup'
  /** Twilio's side: the TwiML ran out or said <Hangup>, or the app closed the Media Stream. */
  | 'twiml-ended'
  /** The voice webhook failed (unreachable, non-2xx, not TwiML): Twilio hangs up. */
  | 'webhook-error'
  /** The callee hung up (hangupAfterMs). */
  | 'callee-hangup'
  /** Never answered: busy, failed, no-answer. */
  | 'not-answered'
  /** The peer was closed with the call still live. */
  | 'peer-closed';

// --- records -----------------------------------------------------------------------------------

/** One `POST …/Calls.json` that reached the route (scripted `failNext` replies never get here). */
export interface OutboundCreate {
  /** Date.now() when the request arrived. */
  time: number;
  /** The HTTP status answered: 201, or the error's. */
  status: number;
  /** Set when the call was created (status 201). */
  callSid?: string;
  to?: string;
  from?: string;
  url?: string;
  statusCallback?: string;
  /** Form parameters, last value wins; `form` keeps repeated ones (StatusCallbackEvent). */
  params: Record<string, string>;
  form: URLSearchParams;
  error?: { code: number; message: string };
}

/** A status or AMD callback the peer posted, with the HTTP status it got (0: unreachable). */
export interface PostedCallback {
  kind: 'status' | 'amd';
  callSid: string;
  url: string;
  method: 'GET' | 'POST';
  params: Record<string, string>;
  time: number;
  status: number;
  error?: string;
}

/** What happened to one outbound call, as the callee side saw it. */
export interface OutboundCallRecord {
  sid: string;
  to: string;
  from: string;
  /** The create's Url (absent when it gave Twiml). */
  url?: string;
  method: 'GET' | 'POST';
  script: Exclude<OutboundScript, RejectScript>;
  /** The create's parameters, last value wins. */
  createParams: Record<string, string>;
  /** The create's StatusCallbackEvent values (completed is sent whenever StatusCallback is set). */
  statusCallbackEvents: string[];
  timeoutSeconds: number;
  machineDetection?: 'Enable' | 'DetectMessageEnd';
  asyncAmd: boolean;
  /** Date.now() marks. */
  createdAt: number;
  answeredAt?: number;
  endedAt?: number;
  /** The final status, once the call has ended. */
  outcome?: OutboundFinalStatus;
  endedBy?: OutboundEndedBy;
  /** AMD's conclusion, when AMD was requested. */
  answeredBy?: string;
  /** Voicemail only: ms of the app's audio received after the AMD callback (or the beep); set at the end. */
  voicemailAudioMs?: number;
  /** Why the voice webhook or the stream failed, if it did. */
  webhookError?: string;
  /** The callee's side of the media, once the voice webhook was answered. */
  simulated?: SimulatedCall;
  /** Resolves when the call has ended and its last callback was delivered. */
  ended: Promise<OutboundCallRecord>;
}

export interface OutboundTwilioPeerOptions extends TwilioPeerOptions {
  /**
   * The callee's media side is instant: the app's audio counts as played on arrival (marks echoed at
   * once), the callee sends no frames and says nothing (no TTS). For benchmarks of many short calls.
   */
  fastMedia?: boolean;
  /** The callee's voice (default: espeak-ng, cached per line). */
  tts?: CallerTts;
  voiceId?: string;
  language?: string;
  /** Delay the 201 answer to calls.create by this much, after the call exists (a crash window). */
  createDelayMs?: number;
  /** Deliver webhooks and callbacks to this origin instead of the URLs' own (signatures unchanged). */
  webhookOrigin?: string;
  /** Connect Media Streams to this origin instead of the <Stream url>'s (see CallerSimulatorOptions). */
  streamOrigin?: string;
  /** Script for numbers without one of their own (default `{ outcome: 'answer' }`). */
  defaultScript?: OutboundScript;
  /** How long the callee waits for an agent turn before each `say` line (default 30 s), and its quiet gap. */
  agentTurnTimeoutMs?: number;
  agentTurnQuietMs?: number;
}

// --- helpers -------------------------------------------------------------------------------------

const E164 = /^\+[1-9]\d{1,14}$/;
const CLIENT_OR_SIP = /^(client:[\w.@-]+|sip:\S+)$/i;
type StatusEvent = 'initiated' | 'ringing' | 'answered' | 'completed';
const CALLS_PATH = /^\/2010-04-01\/Accounts\/(?<accountSid>[^/]+)\/Calls\.json$/;
const CALL_PATH = /^\/2010-04-01\/Accounts\/(?<accountSid>[^/]+)\/Calls\/(?<callSid>[^/]+)\.json$/;
const DAY_MS = 86_400_000;

/** Resolves true when `promise` settles within ms, false otherwise; leaves no timer behind. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  if (ms <= 0) return false;
  const timer = new AbortController();
  try {
    return await Promise.race([promise.then(() => true), sleep(ms, false, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

function httpMethod(value: string | undefined): 'GET' | 'POST' {
  return value?.toUpperCase() === 'GET' ? 'GET' : 'POST';
}

/**
 * A list filter on a date: `StartTime>` (on or after), `StartTime<` (on or before), `StartTime`
 * (that day, or that second). twilio-node sends `YYYY-MM-DDTHH:mm:ssZ`; a bare date means the day.
 */
function matchesDate(op: '=' | '>' | '<', value: string, date: Date | null): boolean {
  if (!date) return false;
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const at = Date.parse(dateOnly ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(at)) return false;
  const time = dateOnly ? date.getTime() : Math.floor(date.getTime() / 1000) * 1000;
  const span = dateOnly ? DAY_MS : 1000;
  if (op === '>') return time >= at;
  if (op === '<') return time < at + span;
  return time >= at && time < at + span;
}

interface CallState {
  record: OutboundCallRecord;
  resource: PeerCall;
  final: boolean;
  timers: Set<NodeJS.Timeout>;
  /** Pending `wait`s, woken with false when the call ends. */
  wakers: Set<(live: boolean) => void>;
  /** Callbacks go out one at a time per call, in order. */
  callbacks: Promise<void>;
  nextSequence: number;
  streamOpen: boolean;
  /** Ended and its last callback delivered. */
  settled: boolean;
  /** Voicemail: audio received before the AMD callback / beep (undefined until then). */
  beepBaseline?: number;
  resolveEnded(record: OutboundCallRecord): void;
}

// --- the peer --------------------------------------------------------------------------------------

export class OutboundTwilioPeer extends TwilioPeer {
  /** Every create that reached the route, in order. */
  readonly creates: OutboundCreate[] = [];
  /** Every outbound call created, by sid. */
  readonly outboundCalls = new Map<string, OutboundCallRecord>();
  /** Every status and AMD callback posted, in order. */
  readonly callbacks: PostedCallback[] = [];
  /** Call sids the app ended through REST (`Status=completed|canceled`), inbound ones included. */
  readonly hangups: string[] = [];
  onHangup?: (callSid: string) => void;
  /** Live calls (created and not yet ended) at the most, since construction or the last reset. */
  maxLiveCalls = 0;
  createDelayMs: number;
  readonly fastMedia: boolean;
  readonly simulator: CallerSimulator;

  private readonly states = new Map<string, CallState>();
  private readonly scripts = new Map<string, OutboundScript[]>();
  private fallbackScript: OutboundScript;
  private live = 0;
  private closing = false;
  private readonly tts: CallerTts;

  constructor(private readonly options: OutboundTwilioPeerOptions = {}) {
    super(options);
    this.fastMedia = options.fastMedia ?? false;
    this.createDelayMs = options.createDelayMs ?? 0;
    this.tts = options.tts ?? new CachedTts(new EspeakTts());
    this.fallbackScript = options.defaultScript ?? { outcome: 'answer' };
    this.warm(this.fallbackScript);
    this.simulator = new CallerSimulator({
      authToken: this.authToken,
      accountSid: this.accountSid,
      tts: this.tts,
      voiceId: options.voiceId,
      language: options.language,
      streamOrigin: options.streamOrigin,
    });
    this.route('POST', CALLS_PATH, (context) => this.createCall(context));
    this.route('GET', CALLS_PATH, (context) => this.listCalls(context));
    this.route('POST', CALL_PATH, (context) => this.updateOutboundCall(context));
  }

  /** Script for numbers without their own. */
  get defaultScript(): OutboundScript {
    return this.fallbackScript;
  }

  set defaultScript(script: OutboundScript) {
    this.fallbackScript = script;
    this.warm(script);
  }

  /**
   * Scripts calls to `to` (exactly as the create gives it). An array plays out call by call, its last
   * entry repeating: `[{ outcome: 'no-answer' }, { outcome: 'answer' }]` answers the retry.
   */
  script(to: string, script: OutboundScript | OutboundScript[]): this {
    const list = Array.isArray(script) ? [...script] : [script];
    if (list.length === 0) throw new Error(`script for ${to}: give at least one`);
    this.scripts.set(to, list);
    for (const s of list) this.warm(s);
    return this;
  }

  /** Calls created and not yet ended (queued, ringing or answered). */
  get liveCalls(): number {
    return this.live;
  }

  /** The record of one outbound call (throws if the peer never created it). */
  call(sid: string): OutboundCallRecord {
    const record = this.outboundCalls.get(sid);
    if (!record) throw new Error(`no outbound call ${sid}`);
    return record;
  }

  /** The status callbacks posted for one call, in order. */
  statusCallbacksOf(sid: string): PostedCallback[] {
    return this.callbacks.filter((c) => c.kind === 'status' && c.callSid === sid);
  }

  /** Resolves when no call is live and every callback has been delivered; rejects after timeoutMs. */
  async waitForIdle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Calls created while waiting are waited for too.
      const pending = [...this.states.values()].filter((s) => !s.settled);
      if (pending.length === 0) return;
      const settled = await within(Promise.all(pending.map((s) => s.record.ended)), deadline - Date.now());
      if (!settled) {
        const live = pending.filter((s) => !s.final).map((s) => `${s.record.sid} (${s.resource.status})`);
        throw new Error(
          `outbound peer not idle after ${timeoutMs} ms: ${live.length} live call(s) ${live.join(', ')}` +
            `, ${pending.length - live.length} with callbacks in flight`,
        );
      }
    }
  }

  /** Resets `maxLiveCalls` to the current count (e.g. between benchmark phases). */
  resetMaxLiveCalls(): void {
    this.maxLiveCalls = this.live;
  }

  /** A call resource as Twilio shows it: outbound calls carry answered_by and an answered duration. */
  override callJson(call: PeerCall): Record<string, unknown> {
    const json = super.callJson(call);
    const record = this.outboundCalls.get(call.sid);
    if (!record) return json;
    let duration: string | null = null;
    if (record.endedAt !== undefined) {
      duration =
        record.answeredAt !== undefined
          ? String(Math.round((record.endedAt - record.answeredAt) / 1000))
          : '0';
    }
    return { ...json, duration, answered_by: record.answeredBy ?? null };
  }

  /** Ends every live call without callbacks, then stops listening. */
  override async close(): Promise<void> {
    this.closing = true;
    const live = [...this.states.values()].filter((s) => !s.final);
    for (const state of live) {
      void this.finish(
        state,
        state.record.answeredAt !== undefined ? 'completed' : 'canceled',
        'peer-closed',
      );
    }
    await within(Promise.allSettled(live.map((s) => s.record.ended)), 3_000);
    await super.close();
  }

  // --- calls.create ----------------------------------------------------------------------------

  private async createCall({ request, match }: RouteContext): Promise<PeerReply> {
    const p = request.params;
    const create: OutboundCreate = {
      time: Date.now(),
      status: 0,
      to: p.To,
      from: p.From,
      url: p.Url,
      statusCallback: p.StatusCallback,
      params: p,
      form: request.form,
    };
    this.creates.push(create);
    const refuse = (reply: PeerReply): PeerReply => {
      const body = reply.body as { code: number; message: string };
      create.status = reply.status;
      create.error = { code: body.code, message: body.message };
      return reply;
    };
    if (match.accountSid !== this.accountSid) {
      return refuse(this.notFound(match, `/2010-04-01/Accounts/${match.accountSid}/Calls.json`));
    }
    if (!p.To) return refuse(twilioError(400, 21201, "No 'To' number is specified"));
    if (!p.From) return refuse(twilioError(400, 21213, "No 'From' number is specified"));
    if (p.Url === undefined && p.Twiml === undefined && p.ApplicationSid === undefined) {
      return refuse(twilioError(400, 21205, 'Url parameter is required'));
    }
    if (p.Url !== undefined && !isHttpUrl(p.Url)) {
      return refuse(twilioError(400, 21205, `Url is not a valid URL: ${p.Url}`));
    }
    if (p.Url === undefined && p.Twiml === undefined) {
      // The peer has no TwiML applications.
      return refuse(twilioError(400, 21218, `Invalid ApplicationSid: ${p.ApplicationSid}`));
    }
    if (!E164.test(p.To) && !CLIENT_OR_SIP.test(p.To)) {
      return refuse(
        twilioError(400, 21217, `The phone number you are attempting to call, ${p.To}, is not valid.`),
      );
    }
    if (!E164.test(p.From) && !/^client:/i.test(p.From)) {
      return refuse(twilioError(400, 21212, `The 'From' number ${p.From} is not a valid phone number.`));
    }
    const script = this.nextScript(p.To);
    if (script.outcome === 'reject') {
      const code = script.code ?? 21217;
      const message =
        script.message ??
        (code === 21217 ? `The phone number you are attempting to call, ${p.To}, is not valid.` : 'Rejected');
      return refuse(twilioError(script.status ?? 400, code, message));
    }

    const sid = randomSid('CA');
    const timeout = Number.parseInt(p.Timeout ?? '', 10);
    const machineDetection =
      p.MachineDetection === 'Enable' || p.MachineDetection === 'DetectMessageEnd'
        ? p.MachineDetection
        : undefined;
    const events = request.form
      .getAll('StatusCallbackEvent')
      .flatMap((v) => v.split(/[\s,]+/))
      .filter((v) => v !== '');
    let resolveEnded!: (record: OutboundCallRecord) => void;
    const record: OutboundCallRecord = {
      sid,
      to: p.To,
      from: p.From,
      url: p.Url,
      method: httpMethod(p.Method),
      script,
      createParams: p,
      statusCallbackEvents: events,
      timeoutSeconds: Number.isFinite(timeout) ? Math.min(600, Math.max(1, timeout)) : 60,
      machineDetection,
      asyncAmd: p.AsyncAmd === 'true',
      createdAt: Date.now(),
      ended: new Promise((resolve) => (resolveEnded = resolve)),
    };
    const resource = this.addCall(sid, {
      from: p.From,
      to: p.To,
      status: 'queued',
      direction: 'outbound-api',
      startTime: null,
    });
    const state: CallState = {
      record,
      resource,
      final: false,
      timers: new Set(),
      wakers: new Set(),
      callbacks: Promise.resolve(),
      nextSequence: 0,
      streamOpen: false,
      settled: false,
      resolveEnded,
    };
    this.outboundCalls.set(sid, record);
    this.states.set(sid, state);
    this.live += 1;
    this.maxLiveCalls = Math.max(this.maxLiveCalls, this.live);
    create.callSid = sid;
    create.status = 201;
    // Twilio answers with the call as it was accepted: queued, not yet started.
    const body = this.callJson(resource);
    this.progress(state).catch((err: unknown) => {
      record.webhookError ??= `peer error: ${(err as Error).message}`;
      void this.finish(state, record.answeredAt !== undefined ? 'completed' : 'failed', 'webhook-error');
    });
    if (this.createDelayMs > 0) await sleep(this.createDelayMs);
    return { status: 201, body };
  }

  // --- calls.list --------------------------------------------------------------------------------

  /**
   * `GET …/Calls.json`: every call of the account (inbound ones included), most recent first, filtered
   * by To, From, Status, ParentCallSid, StartTime / StartTime< / StartTime>, EndTime (same forms), in
   * pages of PageSize (default 50, at most 1000) numbered by Page.
   */
  private listCalls({ request, match }: RouteContext): PeerReply {
    const query = request.query;
    const filters = new URLSearchParams(
      [...query.entries()].filter(([name]) => !['Page', 'PageSize', 'PageToken'].includes(name)),
    );
    const equal = (name: string, value: string | null) => {
      const wanted = query.get(name);
      return wanted === null || wanted === value;
    };
    const dates = (prefix: 'StartTime' | 'EndTime', date: Date | null) =>
      (['=', '>', '<'] as const).every((op) => {
        const value = query.get(op === '=' ? prefix : `${prefix}${op}`);
        return value === null || matchesDate(op, value, date);
      });
    const matching = [...this.calls.values()]
      .filter(
        (c) =>
          c.accountSid === match.accountSid &&
          equal('To', c.to) &&
          equal('From', c.from) &&
          equal('Status', c.status) &&
          equal('ParentCallSid', c.parentCallSid) &&
          dates('StartTime', c.startTime) &&
          dates('EndTime', c.endTime),
      )
      .reverse()
      .sort((a, b) => b.dateCreated.getTime() - a.dateCreated.getTime());
    const requestedSize = Number.parseInt(query.get('PageSize') ?? '', 10);
    const pageSize = Number.isFinite(requestedSize) && requestedSize > 0 ? Math.min(requestedSize, 1000) : 50;
    const requestedPage = Number.parseInt(query.get('Page') ?? '', 10);
    const page = Number.isFinite(requestedPage) && requestedPage > 0 ? requestedPage : 0;
    const start = page * pageSize;
    const calls = matching.slice(start, start + pageSize);
    const pageUri = (n: number) => {
      const params = new URLSearchParams(filters);
      params.set('PageSize', String(pageSize));
      params.set('Page', String(n));
      return `/2010-04-01/Accounts/${match.accountSid}/Calls.json?${params.toString()}`;
    };
    return {
      status: 200,
      body: {
        calls: calls.map((c) => this.callJson(c)),
        end: start + Math.max(calls.length, 1) - 1,
        first_page_uri: pageUri(0),
        next_page_uri: start + pageSize < matching.length ? pageUri(page + 1) : null,
        page,
        page_size: pageSize,
        previous_page_uri: page > 0 ? pageUri(page - 1) : null,
        start,
        uri: pageUri(page),
      },
    };
  }

  private nextScript(to: string): OutboundScript {
    const list = this.scripts.get(to);
    if (!list) return this.fallbackScript;
    return list.length > 1 ? list.shift()! : list[0]!;
  }

  private warm(script: OutboundScript): void {
    if (this.fastMedia || script.outcome !== 'answer' || !script.say?.length) return;
    if (this.tts instanceof CachedTts) {
      this.tts
        .warm(script.say, this.options.voiceId ?? 'en-us', this.options.language ?? 'en-US')
        .catch(() => undefined);
    }
  }

  // --- the callee --------------------------------------------------------------------------------

  private async progress(state: CallState): Promise<void> {
    const { record, resource } = state;
    const { script } = record;
    if (!(await this.wait(state, 0))) return;
    resource.startTime = new Date();
    resource.dateUpdated = resource.startTime;
    this.statusEvent(state, 'initiated', 'initiated');
    const timeoutMs = record.timeoutSeconds * 1000;
    switch (script.outcome) {
      case 'busy':
      case 'failed':
        if (await this.wait(state, script.delayMs ?? 50)) {
          void this.finish(state, script.outcome, 'not-answered');
        }
        return;
      case 'no-answer':
        this.ring(state);
        if (await this.wait(state, Math.min(script.ringMs ?? timeoutMs, timeoutMs))) {
          void this.finish(state, 'no-answer', 'not-answered');
        }
        return;
      case 'answer':
      case 'voicemail': {
        this.ring(state);
        const ringMs = script.ringMs ?? 50;
        if (ringMs >= timeoutMs) {
          if (await this.wait(state, timeoutMs)) void this.finish(state, 'no-answer', 'not-answered');
          return;
        }
        if (await this.wait(state, ringMs)) await this.answer(state);
        return;
      }
    }
  }

  private ring(state: CallState): void {
    state.resource.status = 'ringing';
    state.resource.dateUpdated = new Date();
    this.statusEvent(state, 'ringing', 'ringing');
  }

  private async answer(state: CallState): Promise<void> {
    const { record, resource } = state;
    const { script } = record;
    record.answeredAt = Date.now();
    resource.status = 'in-progress';
    resource.dateUpdated = new Date(record.answeredAt);
    this.statusEvent(state, 'answered', 'in-progress');

    if (script.outcome !== 'answer' && script.outcome !== 'voicemail') return;
    if (script.hangupAfterMs !== undefined) {
      this.later(state, script.hangupAfterMs, () => this.calleeHangsUp(state));
    }
    const amd = this.amdResult(record);
    if (script.outcome === 'voicemail' && !amd) {
      // No AMD asked for: the message starts after the beep all the same.
      this.later(state, script.greetingMs ?? 1000, () => this.beep(state));
    }
    const webhookParams: Record<string, string> = { CallStatus: 'in-progress' };
    if (amd && !record.asyncAmd) {
      // Synchronous AMD: Twilio asks for TwiML only once it has decided, and says what it decided.
      if (!(await this.wait(state, amd.delayMs))) return;
      this.amdDecided(state, amd.answeredBy);
      webhookParams.AnsweredBy = amd.answeredBy;
      webhookParams.MachineDetectionDuration = String(amd.delayMs);
    } else if (amd) {
      this.later(state, amd.delayMs, () => {
        this.amdDecided(state, amd.answeredBy);
        const url = record.createParams.AsyncAmdStatusCallback;
        if (!url) return;
        this.enqueueCallback(
          state,
          'amd',
          url,
          httpMethod(record.createParams.AsyncAmdStatusCallbackMethod),
          {
            AccountSid: this.accountSid,
            AnsweredBy: amd.answeredBy,
            CallSid: record.sid,
            MachineDetectionDuration: String(amd.delayMs),
          },
        );
      });
    }

    let simulated: SimulatedCall;
    try {
      simulated = await this.simulator.dial({
        callSid: record.sid,
        from: record.from,
        to: record.to,
        direction: 'outbound-api',
        params: webhookParams,
        webhookUrl: record.url,
        webhookOrigin: this.options.webhookOrigin,
        method: record.method,
        twiml: record.url === undefined ? record.createParams.Twiml : undefined,
        playback: this.fastMedia ? 'instant' : 'realtime',
        callerFrames: this.fastMedia ? 'none' : 'realtime',
        onCallEnded: () => {
          state.streamOpen = false;
          void this.finish(state, 'completed', 'twiml-ended');
        },
      });
    } catch (err) {
      // Twilio says "an application error has occurred" and hangs up.
      record.webhookError = (err as Error).message;
      void this.finish(state, 'completed', 'webhook-error');
      return;
    }
    record.simulated = simulated;
    if (simulated.outcome !== 'stream') return;
    // Hanging up a stream that has closed meanwhile is harmless: the simulator only waits for its end.
    state.streamOpen = true;
    if (state.final) {
      // The app hung up while its webhook was being answered: the stream it just opened ends too.
      await this.closeStream(state);
      return;
    }
    if (script.outcome === 'answer' && !this.fastMedia) await this.speak(state, simulated, script.say ?? []);
  }

  /** The callee says each line after the agent has spoken; stops quietly when the call ends. */
  private async speak(state: CallState, call: SimulatedCall, lines: string[]): Promise<void> {
    for (const text of lines) {
      try {
        await call.waitForAgentTurn({
          timeoutMs: this.options.agentTurnTimeoutMs ?? 30_000,
          quietMs: this.options.agentTurnQuietMs,
        });
        if (state.final) return;
        await call.say(text);
      } catch {
        return;
      }
    }
  }

  private amdResult(record: OutboundCallRecord): { answeredBy: string; delayMs: number } | undefined {
    const { script, machineDetection } = record;
    if (!machineDetection) return undefined;
    let answeredBy: string;
    let delayMs: number;
    if (script.outcome === 'voicemail') {
      const greetingMs = script.greetingMs ?? 1000;
      answeredBy = machineDetection === 'DetectMessageEnd' ? 'machine_end_beep' : 'machine_start';
      delayMs = machineDetection === 'DetectMessageEnd' ? greetingMs : (script.amdDelayMs ?? greetingMs);
    } else if (script.outcome === 'answer') {
      answeredBy = script.answeredBy ?? 'human';
      delayMs = script.amdDelayMs ?? 300;
    } else {
      return undefined;
    }
    const seconds = Number.parseInt(record.createParams.MachineDetectionTimeout ?? '', 10);
    const limitMs = (Number.isFinite(seconds) && seconds > 0 ? seconds : 30) * 1000;
    return delayMs > limitMs ? { answeredBy: 'unknown', delayMs: limitMs } : { answeredBy, delayMs };
  }

  private amdDecided(state: CallState, answeredBy: string): void {
    state.record.answeredBy = answeredBy;
    state.resource.dateUpdated = new Date();
    if (state.record.script.outcome === 'voicemail' && answeredBy.startsWith('machine')) this.beep(state);
  }

  /** From here on, what the app sends is the message left on the machine. */
  private beep(state: CallState): void {
    state.beepBaseline ??= state.record.simulated?.stats.audioMsReceived ?? 0;
  }

  private async calleeHangsUp(state: CallState): Promise<void> {
    await this.finish(state, 'completed', 'callee-hangup');
  }

  // --- REST updates ------------------------------------------------------------------------------

  private updateOutboundCall(context: RouteContext): PeerReply {
    const callSid = context.match.callSid ?? '';
    const state = this.states.get(callSid);
    const hangingUp = context.request.params.Status;
    if (!state) {
      // An inbound call (through the caller simulator): known on sight, as LinkedTwilioPeer does.
      if (!this.calls.has(callSid)) this.addCall(callSid, { from: '', to: '' });
      const reply = this.updateCall(context);
      if (hangingUp === 'completed' && reply.status === 200) {
        this.hangups.push(callSid);
        this.onHangup?.(callSid);
      }
      return reply;
    }
    const reply = this.updateCall(context);
    if (reply.status === 200 && hangingUp && TERMINAL_CALL_STATUSES.includes(state.resource.status)) {
      this.hangups.push(callSid);
      this.onHangup?.(callSid);
      void this.finish(state, state.resource.status as OutboundFinalStatus, 'rest-hangup');
      // Answered with the call as it now is.
      return { status: 200, body: this.callJson(state.resource) };
    }
    return reply;
  }

  // --- the end -------------------------------------------------------------------------------------

  /** Ends the call once (first cause wins): media closed, resource final, `completed` callback. */
  private async finish(
    state: CallState,
    status: OutboundFinalStatus,
    endedBy: OutboundEndedBy,
  ): Promise<void> {
    if (state.final) return;
    state.final = true;
    const { record, resource } = state;
    record.outcome = status;
    record.endedBy = endedBy;
    for (const timer of state.timers) clearTimeout(timer);
    state.timers.clear();
    for (const wake of state.wakers) wake(false);
    state.wakers.clear();
    this.live -= 1;
    const now = new Date();
    record.endedAt = now.getTime();
    resource.status = status;
    resource.endTime ??= now;
    resource.dateUpdated = now;

    await this.closeStream(state);
    if (record.script.outcome === 'voicemail' && state.beepBaseline !== undefined) {
      record.voicemailAudioMs = (record.simulated?.stats.audioMsReceived ?? 0) - state.beepBaseline;
    } else if (record.script.outcome === 'voicemail') {
      record.voicemailAudioMs = 0;
    }
    this.statusEvent(state, 'completed', status);
    await state.callbacks;
    state.settled = true;
    state.resolveEnded(record);
  }

  /** Twilio's side hangs up the media: `stop`, then the socket closes. */
  private async closeStream(state: CallState): Promise<void> {
    const call = state.record.simulated;
    if (!call || !state.streamOpen) return;
    state.streamOpen = false;
    await call.hangup({ postStatus: false }).catch(() => undefined);
  }

  // --- callbacks ---------------------------------------------------------------------------------

  /** A status callback, if the create asked for this event (`completed` always, given a StatusCallback). */
  private statusEvent(state: CallState, event: StatusEvent, callStatus: string): void {
    const { record } = state;
    const url = record.createParams.StatusCallback;
    if (!url || this.closing) return;
    if (event !== 'completed' && !record.statusCallbackEvents.includes(event)) return;
    const params: Record<string, string> = {
      AccountSid: this.accountSid,
      ApiVersion: '2010-04-01',
      CallbackSource: 'call-progress-events',
      CallSid: record.sid,
      CallStatus: callStatus,
      Direction: 'outbound-api',
      From: record.from,
      SequenceNumber: String(state.nextSequence++),
      StatusCallbackEvent: event,
      Timestamp: twilioDate(new Date())!,
      To: record.to,
    };
    if (event === 'completed') {
      const { answeredAt, endedAt } = record;
      params.CallDuration =
        answeredAt !== undefined && endedAt !== undefined && callStatus === 'completed'
          ? String(Math.round((endedAt - answeredAt) / 1000))
          : '0';
    }
    this.enqueueCallback(state, 'status', url, httpMethod(record.createParams.StatusCallbackMethod), params);
  }

  private enqueueCallback(
    state: CallState,
    kind: PostedCallback['kind'],
    url: string,
    method: 'GET' | 'POST',
    params: Record<string, string>,
  ): void {
    if (this.closing) return;
    const posted: PostedCallback = {
      kind,
      callSid: state.record.sid,
      url,
      method,
      params,
      time: 0,
      status: 0,
    };
    state.callbacks = state.callbacks.then(async () => {
      posted.time = Date.now();
      this.callbacks.push(posted);
      try {
        const response = await this.simulator.sendWebhook(url, params, {
          method,
          origin: this.options.webhookOrigin,
        });
        posted.status = response.status;
        await response.arrayBuffer();
      } catch (err) {
        posted.error = (err as Error).message;
      }
    });
  }

  // --- timers ----------------------------------------------------------------------------------------

  /** Resolves true after ms, or false as soon as the call ends. */
  private wait(state: CallState, ms: number): Promise<boolean> {
    if (state.final) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        state.timers.delete(timer);
        state.wakers.delete(resolve);
        resolve(!state.final);
      }, ms);
      state.timers.add(timer);
      state.wakers.add(resolve);
    });
  }

  /** Runs `action` after ms unless the call has ended by then. */
  private later(state: CallState, ms: number, action: () => void | Promise<void>): void {
    void this.wait(state, ms).then(async (live) => {
      if (live) await action();
    });
  }
}

/** Starts an OutboundTwilioPeer on 127.0.0.1 at a free port. */
export async function startOutboundTwilioPeer(
  options: OutboundTwilioPeerOptions = {},
): Promise<OutboundTwilioPeer> {
  return new OutboundTwilioPeer(options).listen();
}
