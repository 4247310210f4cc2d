/**
 * callWorkflow: one conversation, durable from first ring to the last webhook. The agent engine
 * (pure) decides what happens; this workflow performs its effects through activities (speak, tools,
 * transfer), records every turn in PostgreSQL, and keeps only compact state in its own history.
 *
 * Turns arrive as the `userTurn` update (from the relay, or the api for text); the update returns
 * the agent's reply. Turns are processed one at a time in arrival order.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  startChild,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { Activities } from '../activities';
import type { AgentDefinition } from '../contracts/agent-definition';
import type {
  EngineContext,
  EngineEffect,
  EngineEvent,
  EngineState,
  EngineStep,
} from '../contracts/agent-engine';
import {
  MEDIA_STREAM_GONE,
  answeredBySignal,
  callOutcomeSignal,
  callStatusSignal,
  isMachineAnswer,
  dtmfSignal,
  hangupSignal,
  mediaConnectedSignal,
  openConversationUpdate,
  stateQuery,
  transcriptQuery,
  userTurnUpdate,
  type AgentReply,
  type CallStatus,
  type CallWorkflowInput,
  type CallWorkflowResult,
  type CarriedCallState,
  type HoldMediaResult,
  type MediaSettings,
  type OpenConversationInput,
  type RelayActivities,
  type SpeakInput,
  type SpeakResult,
  type TranscriptEntry,
  type UserTurnInput,
} from '../contracts/call';
import type { LlmResult } from '../contracts/llm';
import { SEARCH_ATTRIBUTES } from '../temporal-config/search-attributes';
import { advanceEngine, interpolate, listeningHints, startEngine } from './agent-engine';
import { workflowNow, workflowNowIso } from './clock';
import { CRM_QUEUE, crmSyncWorkflowId } from '../contracts/crm';
import { crmSyncWorkflow } from './crm-sync-workflow';
import { customerWebhookWorkflow } from './customer-webhook-workflow';
import { relayTaskQueue } from '../temporal-config/task-queues';

const records = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '5 seconds' },
});
const tools = proxyActivities<Activities>({
  // A tool's own timeout is at most 30 s; 4xx comes back as a non-retryable failure.
  startToCloseTimeout: '45 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '5 seconds', maximumAttempts: 3 },
});
const telephony = proxyActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '500 milliseconds', maximumAttempts: 5 },
});
/** Best effort: three tries, then the month's billing cycle reconciles what Stripe missed. */
const metering = proxyActivities<Activities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});
const analysis = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5 },
});

/** Long-running conversations stay well under Temporal's history limits. */
const DEFAULT_MAX_TURNS_PER_RUN = 400;
const TRANSCRIPT_IN_MEMORY = 50;

/** How long the relay may go without a heartbeat before its calls count as lost (voice, web). */
const DEFAULT_MEDIA_HEARTBEAT_SECONDS = 10;

/** Patch id: the call.ended delivery workflow is started only when an endpoint subscribes to it. */
const SKIP_WEBHOOK_WITHOUT_SUBSCRIBERS = 'skip-webhook-without-subscribers';
/** Patch id: an outbound campaign call reports its outcome to its contact workflow when it ends. */
const REPORT_OUTCOME_TO_CAMPAIGN = 'report-outcome-to-campaign';
/** Patch id: a finished call's usage goes to Stripe at once (the billing cycle resends what failed). */
const METER_USAGE = 'meter-usage-to-stripe';
/** Patch id: a finished phone call starts one CRM sync per connected CRM. */
const SYNC_TO_CRM = 'sync-call-to-crm';
/**
 * Patch id: the greeting waits for the call's row. A text conversation opens with the start itself,
 * and its `in-progress` status (and answered time) raced the row's insert: the update found no row,
 * and the call read `ringing` until it ended.
 */
const STATUS_AFTER_CALL_ROW = 'status-after-call-row';

/** Twilio sends AnsweredBy within MachineDetectionTimeout (30 s by default); past this it counts as unknown. */
const AMD_WAIT_MS = 35_000;
/** Past ring timeout plus this with no final status callback, the dialer asks Twilio how the call went. */
const MISSING_CALLBACK_GRACE_MS = 60_000;

/** Failure type of a dial refused because the campaign stopped while it waited (activities/dialer.ts). */
const CAMPAIGN_NOT_RUNNING = 'CampaignNotRunning';

/** Twilio's call statuses → the call's, for a status fetched after callbacks went missing. */
const FETCHED_FINAL_STATUS: Record<string, CallStatus> = {
  completed: 'completed',
  busy: 'busy',
  failed: 'failed',
  'no-answer': 'no-answer',
  canceled: 'canceled',
};

/**
 * Activities on the relay that holds the caller's audio. Never retried: a second attempt would
 * replay audio, and a relay that died cannot take it anyway (schedule-to-start bounds the wait).
 */
function relayActivities(taskQueue: string, heartbeatSeconds: number, startToCloseSeconds: number) {
  return proxyActivities<RelayActivities>({
    taskQueue,
    scheduleToStartTimeout: `${heartbeatSeconds} seconds`,
    startToCloseTimeout: `${startToCloseSeconds} seconds`,
    heartbeatTimeout: `${heartbeatSeconds} seconds`,
    retry: { maximumAttempts: 1 },
  });
}

/** The agent's media settings, as the relay needs them for this call. */
function mediaSettings(def: AgentDefinition): MediaSettings {
  return {
    language: def.language,
    voice: def.voice,
    stt: def.stt,
    tts: def.tts,
    endpointingMs: def.endpointing.silenceMs,
    bargeInMinSpeechMs: def.interruption.enabled ? def.interruption.minSpeechMs : 0,
    record: def.recording?.enabled ?? false,
  };
}

/** A relay activity failed because the relay or the stream is gone (not, say, the LLM). */
function isMediaFailure(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return (
    cause instanceof TimeoutFailure ||
    (cause instanceof ApplicationFailure && cause.type === MEDIA_STREAM_GONE)
  );
}

/**
 * What the relay held of a stream it lost (a relay that shut down with the call live sends its
 * HoldMediaResult, recording included, in the failure's details): the call keeps its recording.
 */
function lostStreamResult(err: unknown): HoldMediaResult | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (!(cause instanceof ApplicationFailure) || cause.type !== MEDIA_STREAM_GONE) return undefined;
  const [result] = cause.details ?? [];
  return typeof result === 'object' && result !== null && 'endedBy' in result
    ? (result as HoldMediaResult)
    : undefined;
}

/** Why the relay stopped answering for a call, in words for the call record. */
function mediaFailureReason(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof TimeoutFailure) {
    if (cause.timeoutType === TimeoutType.HEARTBEAT) return 'media relay lost: heartbeat timeout';
    if (cause.timeoutType === TimeoutType.SCHEDULE_TO_START)
      return 'media relay lost: it did not pick up work in time';
    return 'media relay lost: activity timed out';
  }
  return `media relay failed: ${cause instanceof Error ? cause.message : String(cause)}`;
}

function speakActivity(taskQueue: string | undefined) {
  return proxyActivities<Activities>({
    taskQueue,
    startToCloseTimeout: '90 seconds',
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '500 milliseconds', maximumInterval: '5 seconds', maximumAttempts: 4 },
  }).speak;
}

export async function callWorkflow(input: CallWorkflowInput): Promise<CallWorkflowResult> {
  const info = workflowInfo();
  const carried = input.carried;
  const nowIso = workflowNowIso;

  let status: CallStatus = carried?.status ?? 'ringing';
  let disposition: string | undefined;
  let endReason: string | undefined;
  let lastTurnId = carried?.lastTurnId ?? 0;
  let nextSeq = carried?.nextSeq ?? 1;
  let llmTokens = carried?.llmTokens ?? 0;
  const startedAt = carried?.startedAt ?? nowIso();
  let answeredAt = carried?.answeredAt;
  let turnsThisRun = 0;
  let opened = Boolean(carried);
  /** The call's row exists in PostgreSQL (recordCallStarted has completed). */
  let callRecorded = Boolean(carried);
  let ended = false;
  let hangupRequested: string | undefined;
  let finalProviderStatus: CallStatus | undefined;
  /** The provider's call (Twilio CallSid); outbound calls learn it when the dial is placed. */
  let providerCallSid = input.providerCallSid;
  const outbound = input.outbound;
  /** Twilio's answering-machine verdict (async AMD), when asked for. */
  let answeredBy: string | undefined;
  let machineHandled = false;
  /** Outbound: when the dial was placed, and whether the callee has picked up. */
  let dialedAt: number | undefined;
  let answered = Boolean(carried) || !outbound;
  let lastActivityAt = workflowNow();
  const transcript: TranscriptEntry[] = [];
  const pendingTurns: TranscriptEntry[] = [];
  let engine: EngineState | undefined = carried?.engine;
  let definition: AgentDefinition | undefined = carried?.definition;
  let openReply: AgentReply | undefined;
  /** Where speech goes by default: the relay holding the caller's audio once it connects. */
  let defaultSpeakQueue = input.speakTaskQueue;
  const liveAudio = input.channel === 'voice' || input.channel === 'web';
  const mediaHeartbeatSeconds =
    input.options?.mediaHeartbeatTimeoutSeconds ?? DEFAULT_MEDIA_HEARTBEAT_SECONDS;
  /** The relay queue holding this call's media stream, once connected. */
  let relayQueue: string | undefined;
  let mediaAttachments = 0;
  /** True while the relay's holdMedia activity runs (the stream is up and the relay alive). */
  let mediaHeld = false;
  let mediaResult: HoldMediaResult | undefined;
  /** Set when the relay died or failed: the call cannot go on. */
  let mediaFailure: string | undefined;

  // Serialises turn processing: Temporal may run update handlers concurrently.
  let busy = false;
  const exclusive = async <T>(work: () => Promise<T>): Promise<T> => {
    await condition(() => !busy);
    busy = true;
    try {
      return await work();
    } finally {
      busy = false;
    }
  };

  const setStatus = async (next: CallStatus) => {
    if (status === next) return;
    status = next;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.CallStatus, value: next }]);
    if (next === 'in-progress' && !answeredAt) answeredAt = nowIso();
    await records.recordCallStatus({
      tenantId: input.tenantId,
      callId: input.callId,
      status: next,
      answeredAt,
    });
  };

  const append = (entry: Omit<TranscriptEntry, 'seq' | 'at'>) => {
    const full: TranscriptEntry = { ...entry, seq: nextSeq++, at: nowIso() };
    transcript.push(full);
    if (transcript.length > TRANSCRIPT_IN_MEMORY) transcript.shift();
    pendingTurns.push(full);
  };

  const flushTurns = async () => {
    if (pendingTurns.length === 0) return;
    const batch = pendingTurns.splice(0, pendingTurns.length);
    await records.recordTurns({ tenantId: input.tenantId, callId: input.callId, turns: batch });
  };

  /** The agent's words for a turn, with where the conversation now stands. */
  const replyWith = (text: string): AgentReply => ({
    text,
    nodeId: engine?.nodeId ?? definition?.flow.startNodeId ?? '',
    slots: engine?.slots ?? {},
    hints: engine ? listeningHints(definition!, engine) : { nodeId: '', intentPhrases: [] },
    ended,
    status,
    disposition,
  });

  const context = (): EngineContext => ({
    now: nowIso(),
    timeZone: input.timeZone ?? 'UTC',
    contact: input.contact ?? {},
    call: { from: input.from, to: input.to, direction: input.direction, channel: input.channel },
  });

  /**
   * Runs the engine from an event until it waits for the caller or ends, performing every effect:
   * speech (batched per turn), LLM generation, tool calls, transfer, end.
   */
  const runEngine = async (
    first: (def: AgentDefinition) => EngineStep,
    turnId: number,
    speakQueue: string | undefined,
  ): Promise<AgentReply> => {
    const def = definition!;
    const queue = speakQueue ?? defaultSpeakQueue;
    const onRelay = queue !== undefined && queue === relayQueue;
    const speakOn = onRelay ? relayActivities(queue, mediaHeartbeatSeconds, 300).speak : speakActivity(queue);
    /** On the relay, speech failing means the media is gone: the call ends as failed, not stuck. */
    const speak = async (req: SpeakInput): Promise<SpeakResult> => {
      if (!onRelay) return speakOn(req);
      if (mediaFailure !== undefined || hangupRequested !== undefined) {
        return { text: req.text ?? '', heardText: '', interrupted: true, timings: {} };
      }
      try {
        const spoken = await speakOn({ ...req, hints: listeningHints(def, engine!) });
        if (spoken.callerGone) hangupRequested ??= 'caller hung up';
        return spoken;
      } catch (err) {
        if (!isMediaFailure(err)) throw err;
        mediaFailure ??= mediaFailureReason(err);
        return { text: req.text ?? '', heardText: '', interrupted: true, timings: {} };
      }
    };
    let step = first(def);
    const said: string[] = [];
    let pendingSay: { nodeId: string; texts: string[] } | undefined;
    const sayNow = async () => {
      if (!pendingSay) return;
      const text = pendingSay.texts.join(' ');
      const nodeId = pendingSay.nodeId;
      pendingSay = undefined;
      const spoken: SpeakResult = await speak({
        tenantId: input.tenantId,
        callId: input.callId,
        turnId,
        text,
      });
      said.push(spoken.heardText);
      append({
        role: 'agent',
        text: spoken.text,
        heardText: spoken.heardText,
        interrupted: spoken.interrupted,
        nodeId,
        turnId,
        timings: spoken.timings,
      });
    };

    for (;;) {
      engine = step.state;
      let next: EngineEvent | undefined;
      for (const effect of step.effects) {
        // The caller is gone: nothing more to say or do for them; the call ends as a hang-up.
        if (liveAudio && (hangupRequested !== undefined || mediaFailure !== undefined)) break;
        if (effect.type === 'say') {
          if (pendingSay && pendingSay.nodeId !== effect.nodeId) await sayNow();
          pendingSay ??= { nodeId: effect.nodeId, texts: [] };
          pendingSay.texts.push(effect.text);
          continue;
        }
        next = await perform(effect);
      }
      if (!next) break;
      step = advanceEngine(def, engine, next, context());
    }
    await sayNow();
    await flushTurns();
    // Silence is counted from when the agent stopped talking.
    if (liveAudio) lastActivityAt = workflowNow();
    return replyWith(said.filter(Boolean).join(' '));

    /** Performs a terminal effect; returns the event to feed back, or undefined when the engine waits or ends. */
    async function perform(effect: Exclude<EngineEffect, { type: 'say' }>): Promise<EngineEvent | undefined> {
      switch (effect.type) {
        case 'await_input':
          return undefined;
        case 'call_llm': {
          await sayNow();
          const spoken = await speak({
            tenantId: input.tenantId,
            callId: input.callId,
            turnId,
            llm: effect.request,
          });
          const result: LlmResult = spoken.llm ?? {
            content: spoken.text,
            toolCalls: [],
            finishReason: 'stop',
            usage: { promptTokens: 0, completionTokens: 0 },
            timings: { firstTokenMs: null, totalMs: 0 },
          };
          llmTokens += result.usage.promptTokens + result.usage.completionTokens;
          if (spoken.heardText) {
            said.push(spoken.heardText);
            append({
              role: 'agent',
              text: spoken.text,
              heardText: spoken.heardText,
              interrupted: spoken.interrupted,
              nodeId: effect.nodeId,
              turnId,
              timings: spoken.timings,
            });
          }
          // What the caller heard is what the model must believe it said.
          return {
            type: 'llm_result',
            result: { ...result, content: spoken.interrupted ? spoken.heardText : result.content },
          };
        }
        case 'call_tool': {
          await sayNow();
          const tool = definition!.tools.find((t) => t.name === effect.tool);
          if (!tool)
            return { type: 'tool_result', ok: false, body: null, error: `unknown tool ${effect.tool}` };
          try {
            const result = await tools.callTool({
              tool,
              args: effect.args,
              callId: input.callId,
              tenantId: input.tenantId,
              toolCallId: effect.toolCallId ?? `${effect.nodeId}:${turnId}`,
              agentId: input.agentId,
              agentVersionId: input.agentVersionId,
            });
            append({
              role: 'tool',
              text: `${tool.name} → ${result.status}`,
              interrupted: false,
              nodeId: effect.nodeId,
              turnId,
            });
            return { type: 'tool_result', ok: result.ok, status: result.status, body: result.body };
          } catch (err) {
            const failure = toolFailure(err);
            append({
              role: 'tool',
              text: `${tool.name} failed: ${failure.error}`,
              interrupted: false,
              nodeId: effect.nodeId,
              turnId,
            });
            return {
              type: 'tool_result',
              ok: false,
              status: failure.status,
              body: failure.body,
              error: failure.error,
            };
          }
        }
        case 'transfer': {
          await sayNow();
          if (input.channel === 'voice' && providerCallSid) {
            await telephony.transferCall({ callSid: providerCallSid, to: effect.to });
          }
          append({
            role: 'system',
            text: `transferred to ${effect.to}`,
            interrupted: false,
            nodeId: effect.nodeId,
            turnId,
          });
          await finish('transferred', effect.disposition);
          return undefined;
        }
        case 'end': {
          await sayNow();
          await finish(
            effect.disposition === 'failed' ? 'failed' : 'completed',
            effect.disposition,
            effect.reason,
          );
          if (input.channel === 'voice' && providerCallSid) {
            try {
              await telephony.hangUpCall({ callSid: providerCallSid });
            } catch {
              // Closing the media stream ends the call as well (nothing follows <Connect> in the TwiML).
            }
          }
          return undefined;
        }
      }
    }
  };

  const finish = async (finalStatus: CallStatus, finalDisposition: string, reason?: string) => {
    if (ended) return;
    ended = true;
    disposition = finalDisposition;
    endReason = reason;
    await setStatus(finalStatus);
  };

  /** The relay died or failed mid-call: the call ends as failed with the reason, never stuck. */
  const failForLostMedia = async () => {
    await condition(() => !busy);
    if (ended) return;
    append({ role: 'system', text: mediaFailure!, interrupted: false, nodeId: engine?.nodeId });
    await flushTurns();
    await finish('failed', 'media_lost', mediaFailure);
    if (input.channel === 'voice' && providerCallSid) {
      try {
        await telephony.hangUpCall({ callSid: providerCallSid });
      } catch {
        // The provider call may be gone already; the record says why the call failed.
      }
    }
  };

  const open = async (speakQueue?: string): Promise<AgentReply> => {
    if (openReply) return openReply;
    if (carried) {
      // A continued run was opened long ago: answer where the conversation stands, greet no one twice.
      return replyWith('');
    }
    // An update can arrive with the start itself, before the definition has been loaded.
    await condition(() => definition !== undefined);
    if (patched(STATUS_AFTER_CALL_ROW)) await condition(() => callRecorded);
    if (outbound?.machineDetection) {
      // Nobody is greeted before answering-machine detection says a person picked up (a machine's
      // greeting transcribed meanwhile waits here, and is answered by the voicemail path instead).
      await condition(
        () =>
          answeredBy !== undefined || ended || hangupRequested !== undefined || mediaFailure !== undefined,
        AMD_WAIT_MS,
      );
      if (ended || hangupRequested !== undefined || mediaFailure !== undefined) return replyWith('');
      if (answeredBy !== undefined && isMachineAnswer(answeredBy)) return replyWith('');
    }
    opened = true;
    await setStatus('in-progress');
    openReply = await runEngine((def) => startEngine(def, context()), 0, speakQueue);
    lastActivityAt = workflowNow();
    return openReply;
  };

  /**
   * Places the outbound call on the campaign's rate-limited dialer queue. A dial Twilio refuses ends
   * the call `failed`; one refused because the campaign was paused meanwhile ends it `canceled`
   * (`not_dialed`): nobody's phone rang.
   */
  async function dial(out: NonNullable<CallWorkflowInput['outbound']>): Promise<void> {
    const dialer = proxyActivities<Activities>({
      taskQueue: out.dialerQueue,
      // Twilio answers a create in well under a second; a dialer that died mid-create is retried soon.
      startToCloseTimeout: '20 seconds',
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 8 },
    });
    try {
      const placed = await dialer.placeOutboundCall({
        tenantId: input.tenantId,
        callId: input.callId,
        campaignId: input.campaignId,
        attemptKey: out.attemptKey,
        to: input.to ?? '',
        from: input.from ?? '',
        ringTimeoutSeconds: out.ringTimeoutSeconds,
        dialBefore: out.dialBefore,
        machineDetection: out.machineDetection
          ? out.voicemail.action === 'leave_message'
            ? 'DetectMessageEnd'
            : 'Enable'
          : null,
      });
      providerCallSid = placed.callSid;
      dialedAt = workflowNow();
    } catch (err) {
      const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
      const message = cause instanceof Error ? cause.message : String(cause);
      if (cause instanceof ApplicationFailure && cause.type === CAMPAIGN_NOT_RUNNING) {
        await finish('canceled', 'not_dialed', message);
      } else {
        await finish('failed', 'dial_failed', message);
      }
    }
  }

  /**
   * A machine answered: hang up, or leave the voicemail message (Twilio reports the machine after
   * its beep when asked with DetectMessageEnd) and then hang up. The call ends `voicemail`.
   */
  async function answerMachine(): Promise<void> {
    await exclusive(async () => {
      if (ended || machineHandled) return;
      machineHandled = true;
      append({
        role: 'system',
        text: `answering machine detected (${answeredBy})`,
        interrupted: false,
        nodeId: engine?.nodeId,
      });
      let outcome = 'voicemail';
      const action = outbound?.voicemail;
      if (action?.action === 'leave_message' && hangupRequested === undefined) {
        if (!mediaHeld) {
          await condition(
            () => mediaHeld || hangupRequested !== undefined || mediaFailure !== undefined,
            mediaConnectMs,
          );
        }
        if (mediaHeld && relayQueue) {
          const text = interpolate(action.message, {
            slots: engine?.slots ?? {},
            contact: input.contact ?? {},
            call: { from: input.from, to: input.to, direction: input.direction, channel: input.channel },
            timeZone: input.timeZone,
            language: definition?.language,
          });
          try {
            const spoken = await relayActivities(relayQueue, mediaHeartbeatSeconds, 300).speak({
              tenantId: input.tenantId,
              callId: input.callId,
              turnId: lastTurnId,
              text,
            });
            append({
              role: 'agent',
              text: spoken.text,
              heardText: spoken.heardText,
              interrupted: spoken.interrupted,
              turnId: lastTurnId,
              timings: spoken.timings,
            });
            if (spoken.heardText) outcome = 'voicemail_left';
          } catch (err) {
            if (!isMediaFailure(err)) throw err;
          }
        }
      }
      await flushTurns();
      await finish('voicemail', outcome, `answered by ${answeredBy}`);
      if (providerCallSid) {
        try {
          await telephony.hangUpCall({ callSid: providerCallSid });
        } catch {
          // The machine may have hung up already; the call record says what happened.
        }
      }
    });
  }

  /** No final callback long after the ring timeout: ask Twilio how the call went and end it so. */
  async function settleMissingCallbacks(): Promise<void> {
    if (!providerCallSid) return;
    const seen = await telephony.fetchCallStatus({ callSid: providerCallSid });
    const final = FETCHED_FINAL_STATUS[seen.status];
    if (answered || ended) return;
    if (final) {
      finalProviderStatus ??= final;
      hangupRequested ??= `provider status ${seen.status} (fetched: its callback never came)`;
      return;
    }
    // Still ringing, or answered without the voice webhook ever reaching us: end it.
    try {
      await telephony.hangUpCall({ callSid: providerCallSid });
    } catch {
      // Gone already.
    }
    await finish(
      seen.status === 'in-progress' ? 'failed' : 'no-answer',
      seen.status === 'in-progress' ? 'answer_lost' : 'no-answer',
      `Twilio reports '${seen.status}' long after the ring timeout and no callback came`,
    );
  }

  // --- handlers --------------------------------------------------------------------------------
  setHandler(openConversationUpdate, (req) => exclusive(() => open(req.speakTaskQueue)), {
    validator: (_req: OpenConversationInput) => {
      if (ended && !openReply) throw new Error('The conversation has already ended');
    },
  });

  setHandler(
    userTurnUpdate,
    async (req: UserTurnInput) => {
      // Claimed at once (before waiting for the lock) so a later duplicate is rejected as stale.
      lastTurnId = req.turnId;
      return exclusive(async () => {
        if (!opened) await open(req.speakTaskQueue);
        lastActivityAt = workflowNow();
        turnsThisRun += 1;
        append({
          role: 'caller',
          text: req.text.trim(),
          interrupted: false,
          nodeId: engine?.nodeId,
          turnId: req.turnId,
          timings: req.timings,
        });
        if (ended || !opened) {
          // Over, or an answering machine's greeting: recorded, not answered.
          await flushTurns();
          return { ...replyWith(''), turnId: req.turnId };
        }
        const reply = await runEngine(
          (def) => advanceEngine(def, engine!, { type: 'user_input', text: req.text.trim() }, context()),
          req.turnId,
          req.speakTaskQueue,
        );
        return { ...reply, turnId: req.turnId };
      });
    },
    {
      validator: (req: UserTurnInput) => {
        if (typeof req?.text !== 'string' || req.text.trim() === '')
          throw new Error('userTurn: text must not be empty');
        if (!Number.isInteger(req.turnId) || req.turnId <= lastTurnId) {
          throw new Error(`userTurn: turnId ${req?.turnId} is stale (last accepted turn is ${lastTurnId})`);
        }
        if (ended) throw new Error('userTurn: the conversation has ended');
      },
    },
  );

  /**
   * Work started by a signal has no caller to report a failure to: a failed greeting or DTMF step
   * ends the call as failed with the reason rather than leaving it silent.
   */
  const failTurnInBackground = (what: string) => (err: unknown) => {
    const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
    mediaFailure ??= `${what} failed: ${cause instanceof Error ? cause.message : String(cause)}`;
  };

  /** Holds the stream for the call's life: the relay heartbeats it; its loss means the relay died. */
  const holdMedia = async (queue: string) => {
    await condition(() => definition !== undefined);
    const attachment = ++mediaAttachments;
    mediaHeld = true;
    mediaResult = undefined;
    try {
      const result = await relayActivities(
        queue,
        mediaHeartbeatSeconds,
        definition!.maxCallDurationSeconds + 300,
      ).holdMedia({ tenantId: input.tenantId, callId: input.callId, settings: mediaSettings(definition!) });
      if (attachment !== mediaAttachments) return;
      mediaResult = result;
      if (!ended) hangupRequested ??= `media stream ended (${result.endedBy})`;
    } catch (err) {
      if (attachment !== mediaAttachments) return;
      mediaResult = lostStreamResult(err);
      if (!ended) mediaFailure ??= mediaFailureReason(err);
    } finally {
      if (attachment === mediaAttachments) mediaHeld = false;
    }
  };

  setHandler(mediaConnectedSignal, ({ relayInstanceId }) => {
    if (ended) return;
    // Voice: the relay has the caller's audio; speech now goes out on the relay's own queue.
    relayQueue = relayTaskQueue(relayInstanceId);
    defaultSpeakQueue = relayQueue;
    void holdMedia(relayQueue);
    if (!opened) exclusive(() => open()).catch(failTurnInBackground('greeting'));
  });
  setHandler(dtmfSignal, ({ digits }) => {
    if (ended || !engine) return;
    exclusive(async () => {
      if (ended) return;
      append({ role: 'caller', text: `[dtmf ${digits}]`, interrupted: false, nodeId: engine!.nodeId });
      await runEngine(
        (def) => advanceEngine(def, engine!, { type: 'dtmf', digits }, context()),
        lastTurnId,
        undefined,
      );
    }).catch(failTurnInBackground('dtmf'));
  });
  setHandler(hangupSignal, ({ reason }) => {
    hangupRequested ??= reason;
  });
  setHandler(answeredBySignal, ({ answeredBy: verdict }) => {
    answeredBy ??= verdict;
  });
  setHandler(callStatusSignal, ({ status: providerStatus, callSid }) => {
    if (callSid) providerCallSid ??= callSid;
    if (providerStatus === 'in-progress') answered = true;
    if (['completed', 'busy', 'no-answer', 'failed', 'canceled'].includes(providerStatus)) {
      finalProviderStatus ??= providerStatus;
      hangupRequested ??= `provider status ${providerStatus}`;
    } else if (providerStatus === 'in-progress' && !opened) {
      answeredAt ??= nowIso();
    }
  });
  setHandler(stateQuery, () => ({
    callId: input.callId,
    status,
    disposition,
    nodeId: engine?.nodeId ?? definition?.flow.startNodeId ?? '',
    slots: engine?.slots ?? {},
    lastTurnId,
    agentVersionId: input.agentVersionId,
    opened,
    ended,
    runs: (carried?.runs ?? 0) + 1,
  }));
  setHandler(transcriptQuery, () => [...transcript]);

  // --- the conversation -------------------------------------------------------------------------
  if (!carried) {
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.AgentId, value: input.agentId },
      { key: SEARCH_ATTRIBUTES.CallDirection, value: input.direction },
      { key: SEARCH_ATTRIBUTES.CallStatus, value: status },
      ...(input.campaignId ? [{ key: SEARCH_ATTRIBUTES.CampaignId, value: input.campaignId }] : []),
      ...((input.direction === 'inbound' ? input.from : input.to)
        ? [
            {
              key: SEARCH_ATTRIBUTES.PhoneNumber,
              value: (input.direction === 'inbound' ? input.from : input.to)!,
            },
          ]
        : []),
    ]);
    const loaded = await records.loadAgentDefinition({
      tenantId: input.tenantId,
      agentId: input.agentId,
      agentVersionId: input.agentVersionId,
    });
    definition = loaded.definition;
    await records.recordCallStarted({
      tenantId: input.tenantId,
      callId: input.callId,
      workflowId: info.workflowId,
      agentId: input.agentId,
      agentVersionId: input.agentVersionId,
      direction: input.direction,
      channel: input.channel,
      from: input.from,
      to: input.to,
      contactId: input.contactId,
      campaignId: input.campaignId,
      providerCallSid: input.providerCallSid,
      status,
      startedAt,
    });
    callRecorded = true;
  }
  const def = definition!;
  if (outbound && !carried) await dial(outbound);
  const deadline = new Date(startedAt).getTime() + def.maxCallDurationSeconds * 1000;
  const maxTurnsPerRun = input.options?.maxTurnsPerRun ?? DEFAULT_MAX_TURNS_PER_RUN;
  const idleMs = (input.options?.idleTimeoutSeconds ?? (input.channel === 'text' ? 1800 : 0)) * 1000;

  const noInputMs = def.noInputTimeoutSeconds * 1000;
  /**
   * An answered voice or web call whose media never reaches a relay (the caller's browser never
   * opened the socket, Twilio could not reach the relay) must not hold a line until max duration.
   * Outbound calls wait for the answer first; their ringing is bounded by the dialer.
   */
  const mediaConnectMs =
    (input.options?.mediaConnectTimeoutSeconds ?? (input.channel === 'web' ? 120 : 30)) * 1000;
  const mediaConnectDeadline = () =>
    (outbound ? new Date(answeredAt ?? startedAt).getTime() : new Date(startedAt).getTime()) + mediaConnectMs;
  const awaitingMedia = () => liveAudio && answered && !carried && relayQueue === undefined && !ended;
  /** Outbound: ringing past its timeout with no final callback means the callbacks went missing. */
  const ringCheckAt = () =>
    outbound && dialedAt !== undefined && !answered && !ended && hangupRequested === undefined
      ? dialedAt + outbound.ringTimeoutSeconds * 1000 + MISSING_CALLBACK_GRACE_MS
      : undefined;
  const machinePending = () =>
    answeredBy !== undefined && isMachineAnswer(answeredBy) && !machineHandled && !ended;
  /** Voice and web calls: the caller has been silent this long after the agent spoke. */
  const awaitingCaller = () => liveAudio && opened && !ended && !busy && mediaHeld;

  for (;;) {
    const waitingForCaller = awaitingCaller();
    const wakeAt = Math.min(
      deadline,
      idleMs ? lastActivityAt + idleMs : deadline,
      waitingForCaller ? lastActivityAt + noInputMs : deadline,
      awaitingMedia() ? mediaConnectDeadline() : deadline,
      ringCheckAt() ?? deadline,
    );
    const woke = await condition(
      () =>
        ended ||
        mediaFailure !== undefined ||
        machinePending() ||
        awaitingCaller() !== waitingForCaller ||
        hangupRequested !== undefined ||
        (!busy &&
          allHandlersFinished() &&
          (turnsThisRun >= maxTurnsPerRun || workflowInfo().continueAsNewSuggested)),
      Math.max(1, wakeAt - workflowNow()),
    );
    if (ended) break;
    if (mediaFailure !== undefined) {
      await failForLostMedia();
      break;
    }
    if (machinePending()) {
      await answerMachine();
      continue;
    }
    if (hangupRequested !== undefined) {
      // Let a turn in flight finish first; then the caller is gone.
      await condition(() => !busy);
      // A provider hang-up while the relay still holds the stream: the relay releases it first
      // (Twilio stops the stream before its status callback) — unless the relay died.
      if (mediaHeld) await condition(() => !mediaHeld, (mediaHeartbeatSeconds + 5) * 1000);
      if (mediaFailure !== undefined) {
        await failForLostMedia();
        break;
      }
      if (!ended) {
        const providerStatus = finalProviderStatus;
        const finalStatus: CallStatus =
          providerStatus && providerStatus !== 'completed'
            ? providerStatus
            : opened
              ? 'completed'
              : 'no-answer';
        const byUser = input.channel === 'voice' ? 'caller_hung_up' : 'user_ended';
        await finish(finalStatus, opened ? byUser : finalStatus, hangupRequested);
      }
      break;
    }
    if (
      !woke &&
      awaitingCaller() &&
      workflowNow() >= lastActivityAt + noInputMs &&
      workflowNow() < deadline
    ) {
      // The caller said nothing: the agent reprompts (or gives up) as its flow says.
      await exclusive(async () => {
        if (ended || !engine) return;
        append({
          role: 'system',
          text: 'no input from the caller',
          interrupted: false,
          nodeId: engine.nodeId,
        });
        await runEngine(
          (d) => advanceEngine(d, engine!, { type: 'no_input' }, context()),
          lastTurnId,
          undefined,
        );
      });
      continue;
    }
    if (
      woke &&
      !ended &&
      hangupRequested === undefined &&
      mediaFailure === undefined &&
      !(
        !busy &&
        allHandlersFinished() &&
        (turnsThisRun >= maxTurnsPerRun || workflowInfo().continueAsNewSuggested)
      )
    ) {
      // Woken only because the wait for the caller started or stopped: wait again with new bounds.
      continue;
    }
    if (!woke) {
      if (workflowNow() >= deadline) {
        await exclusive(async () => {
          if (ended) return;
          append({
            role: 'system',
            text: 'maximum call duration reached',
            interrupted: false,
            nodeId: engine?.nodeId,
          });
          await flushTurns();
          await finish(
            'completed',
            'max_duration',
            `the call reached its ${def.maxCallDurationSeconds} s limit`,
          );
        });
      } else if (ringCheckAt() !== undefined && workflowNow() >= ringCheckAt()!) {
        await settleMissingCallbacks();
        continue;
      } else if (awaitingMedia() && workflowNow() >= mediaConnectDeadline()) {
        await exclusive(async () => {
          if (ended) return;
          await finish('failed', 'media_not_connected', 'the media stream never connected');
        });
      } else if (idleMs && workflowNow() >= lastActivityAt + idleMs) {
        await exclusive(async () => {
          if (ended) return;
          await finish('completed', 'idle_timeout', 'no message from the user');
        });
      } else {
        // Woken for a bound that no longer applies (the stream connected meanwhile): wait again.
        continue;
      }
      break;
    }
    // Continue-as-new: the transcript is in PostgreSQL; only compact state travels.
    await flushTurns();
    const next: CarriedCallState = {
      definition: def,
      engine: engine!,
      status,
      lastTurnId,
      nextSeq,
      startedAt,
      answeredAt,
      llmTokens,
      runs: (carried?.runs ?? 0) + 1,
    };
    await continueAsNew<typeof callWorkflow>({ ...input, providerCallSid, carried: next });
  }

  // --- after the call ---------------------------------------------------------------------------
  // The turn that ended the call may still be running its own activities (status, turns, hang-up):
  // let it finish and answer its update first, or its reply would be lost.
  await condition(() => !busy && allHandlersFinished());
  await flushTurns();
  if (relayQueue && mediaHeld && !mediaFailure) {
    // The relay closes the stream (after the last words have played) and finishes the recording.
    try {
      await relayActivities(relayQueue, mediaHeartbeatSeconds, 30).releaseMedia({
        callId: input.callId,
        reason: disposition ?? status,
      });
    } catch {
      // The relay is gone: holdMedia's own failure says so.
    }
    await condition(() => !mediaHeld, (mediaHeartbeatSeconds + 5) * 1000);
  }
  const endedAt = nowIso();
  const durationSeconds = Math.max(
    0,
    Math.round((workflowNow() - new Date(answeredAt ?? startedAt).getTime()) / 1000),
  );
  const recorded = await records.recordCallEnded({
    tenantId: input.tenantId,
    callId: input.callId,
    status,
    disposition: disposition ?? status,
    reason: endReason,
    endedAt,
    durationSeconds,
    slots: engine?.slots ?? {},
    llmTokens,
    recording: mediaResult?.recording,
  });
  // A campaign's contact waits for the outcome, not for the analysis: tell it now.
  const parent = info.parent;
  if (parent && input.campaignId && patched(REPORT_OUTCOME_TO_CAMPAIGN)) {
    await getExternalWorkflowHandle(parent.workflowId)
      .signal(callOutcomeSignal, {
        callId: input.callId,
        status,
        disposition: disposition ?? status,
        reason: endReason,
        durationSeconds,
        slots: engine?.slots ?? {},
      })
      .catch(() => undefined);
  }
  const callAnalysis = !opened
    ? ({ status: 'skipped', reason: 'nobody was spoken with' } as const)
    : await analysis.analyzeCall({
        llm: def.llm,
        transcript: await records.loadTranscript({ tenantId: input.tenantId, callId: input.callId }),
        successCriteria: def.analysis.successCriteria,
        structuredDataSchema: def.analysis.structuredDataSchema,
        disposition,
      });
  if (callAnalysis.status === 'completed') {
    llmTokens += callAnalysis.usage.promptTokens + callAnalysis.usage.completionTokens;
  }
  await records.saveCallAnalysis({
    tenantId: input.tenantId,
    callId: input.callId,
    analysis: callAnalysis,
    summary: callAnalysis.status === 'completed' ? callAnalysis.summary : undefined,
  });
  const usage = await records.recordUsage({
    tenantId: input.tenantId,
    callId: input.callId,
    billableSeconds: answeredAt ? durationSeconds : 0,
    llmTokens,
    periodStart: endedAt,
  });
  // Histories from before these patches recorded no result here.
  const endRecord = recorded as Partial<typeof recorded> | undefined;
  if (endRecord?.billedByStripe && patched(METER_USAGE)) {
    await metering.meterCallUsage({ tenantId: input.tenantId, callId: input.callId }).catch(() => undefined);
  }
  // Each CRM hears about the call in its own workflow, which outlives this one.
  if (input.channel === 'voice' && endRecord?.crmProviders?.length && patched(SYNC_TO_CRM)) {
    for (const provider of endRecord.crmProviders) {
      await startChild(crmSyncWorkflow, {
        workflowId: crmSyncWorkflowId(input.callId, provider),
        taskQueue: CRM_QUEUE,
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [{ tenantId: input.tenantId, callId: input.callId, provider }],
      });
    }
  }
  const result: CallWorkflowResult = {
    callId: input.callId,
    status,
    disposition: disposition ?? status,
    reason: endReason,
    durationSeconds,
    slots: engine?.slots ?? {},
  };
  // A tenant with no endpoint for call.ended gets no delivery workflow per call (a campaign of
  // 100k calls would otherwise start 100k of them). Calls recorded before this always start one.
  const webhookWanted = patched(SKIP_WEBHOOK_WITHOUT_SUBSCRIBERS) ? recorded.webhookSubscribers > 0 : true;
  // The customer's webhook may be down for hours: its delivery outlives this workflow.
  if (webhookWanted)
    await startChild(customerWebhookWorkflow, {
      workflowId: `webhook:${input.tenantId}:call.ended:${input.callId}`,
      taskQueue: 'integrations',
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [
        {
          tenantId: input.tenantId,
          event: 'call.ended',
          eventId: `call.ended:${input.callId}`,
          payload: {
            ...result,
            agentId: input.agentId,
            agentVersionId: input.agentVersionId,
            usageRecordId: usage.usageRecordId,
            direction: input.direction,
            channel: input.channel,
          },
        },
      ],
    });
  return result;
}

function toolFailure(err: unknown): { error: string; status?: number; body: unknown } {
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof ApplicationFailure) {
    const details = (cause.details?.[0] ?? {}) as { status?: number; body?: unknown };
    return { error: cause.message, status: details.status, body: details.body ?? null };
  }
  return { error: err instanceof Error ? err.message : String(err), body: null };
}
