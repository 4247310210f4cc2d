/**
 * Contract of `callWorkflow`: one conversation, inbound or outbound, voice or text, pinned to one
 * agent version. The api, the relay and the workers import names and types from here only.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { TASK_QUEUES } from '../temporal-config/task-queues';
import type { AgentDefinition } from './agent-definition';
import type { EngineState, ListeningHints, SlotValue } from './agent-engine';
import type { LlmRequest, LlmResult } from './llm';
import type { CallStatus } from './statuses';

export const CALL_WORKFLOW = 'callWorkflow';
export const CALL_QUEUE = TASK_QUEUES.calls;

/** `call:<CallSid>` for phone calls, `call:<uuid>` for text and web calls. */
export function callWorkflowId(callSidOrId: string): string {
  return `call:${callSidOrId}`;
}

export type CallDirection = 'inbound' | 'outbound';
export type CallChannel = 'voice' | 'text' | 'web';
export { CALL_STATUSES, FINAL_CALL_STATUSES, type CallStatus } from './statuses';

export interface CallWorkflowInput {
  /** calls.id */
  callId: string;
  tenantId: string;
  agentId: string;
  /** The pinned published version; null for a test conversation with the draft (snapshotted at start). */
  agentVersionId: string | null;
  direction: CallDirection;
  channel: CallChannel;
  from?: string;
  to?: string;
  contactId?: string;
  contact?: Record<string, unknown>;
  campaignId?: string;
  providerCallSid?: string;
  /** IANA zone in which the caller's dates and times are read and said (the tenant's or the contact's). */
  timeZone?: string;
  /** Where `speak` runs when a turn does not say (text replies: the calls queue itself). */
  speakTaskQueue?: string;
  /** Test and tuning knobs; production leaves them unset. */
  options?: {
    /** Continue-as-new after this many turns even if the server has not suggested it yet. */
    maxTurnsPerRun?: number;
    /** Ends an idle text conversation (no message for this long). */
    idleTimeoutSeconds?: number;
    /** Voice/web: how long the relay may go silent (no heartbeat) before the call counts as lost. */
    mediaHeartbeatTimeoutSeconds?: number;
    /** Inbound voice/web: end the call as failed when no media stream attaches within this. */
    mediaConnectTimeoutSeconds?: number;
  };
  /** Outbound phone calls: how to dial, and what to do when a machine answers. */
  outbound?: OutboundDial;
  /** Present only when the workflow continues as new. */
  carried?: CarriedCallState;
}

/** How an outbound call is placed (`placeOutboundCall`) and handled until a person is on the line. */
export interface OutboundDial {
  /** `campaign:<id>:contact:<id>:attempt:<n>`: a retried dial with this key never dials twice. */
  attemptKey: string;
  /** Task queue of `placeOutboundCall` (the campaign's rate-limited dialer queue). */
  dialerQueue: string;
  ringTimeoutSeconds: number;
  /** ISO: the contact's calling window closes then; a dial still queued after it is not placed. */
  dialBefore?: string;
  machineDetection: boolean;
  voicemail: { action: 'hangup' } | { action: 'leave_message'; message: string };
}

export interface PlaceOutboundCallInput {
  tenantId: string;
  callId: string;
  attemptKey: string;
  to: string;
  from: string;
  ringTimeoutSeconds: number;
  /** ISO; past it the call is not placed (the contact's calling window has closed). */
  dialBefore?: string;
  /** Off, 'Enable' (answered-by as soon as known) or 'DetectMessageEnd' (after a machine's beep). */
  machineDetection: 'Enable' | 'DetectMessageEnd' | null;
}

export interface PlaceOutboundCallResult {
  callSid: string;
  /** Twilio's status when the call was created (queued), or found again after a retry. */
  status: string;
  /** True when a previous attempt of this activity had already dialed and the call was adopted. */
  adopted: boolean;
}

/** What survives continue-as-new: compact; the transcript itself lives in PostgreSQL. */
export interface CarriedCallState {
  definition: AgentDefinition;
  engine: EngineState;
  status: CallStatus;
  lastTurnId: number;
  nextSeq: number;
  startedAt: string;
  answeredAt?: string;
  llmTokens: number;
  runs: number;
}

export interface TranscriptEntry {
  seq: number;
  role: 'caller' | 'agent' | 'system' | 'tool';
  text: string;
  /** What the caller actually heard when the agent was interrupted. */
  heardText?: string;
  interrupted: boolean;
  nodeId?: string;
  turnId?: number;
  at: string;
  timings?: Record<string, number>;
}

export interface AgentReply {
  /** The agent's words for this turn, joined. */
  text: string;
  nodeId: string;
  slots: Record<string, SlotValue>;
  hints: ListeningHints;
  ended: boolean;
  status: CallStatus;
  disposition?: string;
}

export interface UserTurnInput {
  /** Strictly increasing per call; a repeated or older id is rejected as stale. */
  turnId: number;
  text: string;
  confidence?: number;
  /** Per-turn timings measured by the caller of the update (relay: speech end, STT final…). */
  timings?: Record<string, number>;
  /** Run this turn's `speak` on another queue (the api's own for a streamed SSE reply). */
  speakTaskQueue?: string;
}

export interface UserTurnResult extends AgentReply {
  turnId: number;
}

export interface OpenConversationInput {
  speakTaskQueue?: string;
}

export interface CallStateView {
  callId: string;
  status: CallStatus;
  disposition?: string;
  nodeId: string;
  slots: Record<string, SlotValue>;
  lastTurnId: number;
  agentVersionId: string | null;
  opened: boolean;
  ended: boolean;
  runs: number;
}

export interface CallWorkflowResult {
  callId: string;
  status: CallStatus;
  disposition: string;
  reason?: string;
  durationSeconds: number;
  slots: Record<string, SlotValue>;
}

export const openConversationUpdate = defineUpdate<AgentReply, [OpenConversationInput]>('openConversation');
export const userTurnUpdate = defineUpdate<UserTurnResult, [UserTurnInput]>('userTurn');
export const mediaConnectedSignal =
  defineSignal<[{ relayInstanceId: string; streamSid?: string }]>('mediaConnected');
export const dtmfSignal = defineSignal<[{ digits: string }]>('dtmf');
export const hangupSignal = defineSignal<[{ reason: string }]>('hangup');
export const callStatusSignal =
  defineSignal<[{ status: CallStatus; durationSeconds?: number; answeredBy?: string; callSid?: string }]>(
    'callStatus',
  );
/**
 * Sent by an outbound call to the campaign contact workflow that started it as soon as the call has
 * ended (before post-call analysis and usage): the contact's slot is a live line, not paperwork.
 */
export const callOutcomeSignal = defineSignal<[CallWorkflowResult]>('callOutcome');

/** Twilio's async answering-machine detection result (`AnsweredBy`). */
export const answeredBySignal = defineSignal<[{ answeredBy: string }]>('answeredBy');

/** `AnsweredBy` values that mean no person is on the line. */
export function isMachineAnswer(answeredBy: string): boolean {
  return answeredBy.startsWith('machine_') || answeredBy === 'fax';
}
export const stateQuery = defineQuery<CallStateView>('state');
export const transcriptQuery = defineQuery<TranscriptEntry[]>('transcript');

/** Update ids derived from business ids: a retried request is deduplicated by Temporal. */
export function userTurnUpdateId(callId: string, turnId: number): string {
  return `turn:${callId}:${turnId}`;
}

export interface SpeakInput {
  tenantId: string;
  callId: string;
  turnId: number;
  /** Fixed text to say (already interpolated). */
  text?: string;
  /** Or: generate the words with the model and say them as they stream. */
  llm?: LlmRequest;
  /** What the conversation expects next, once this is said (the relay tunes its STT with it). */
  hints?: ListeningHints;
}

/** How the relay handles one call's audio: from the pinned agent definition. */
export interface MediaSettings {
  language: string;
  voice: { provider: 'local' | 'openai'; voiceId: string };
  stt: { provider: 'local' | 'openai'; model?: string };
  tts: { provider: 'local' | 'openai'; model?: string };
  /** Silence that ends the caller's turn. */
  endpointingMs: number;
  /** Barge-in: caller speech this long while the agent talks stops the agent (0: never). */
  bargeInMinSpeechMs: number;
  record: boolean;
}

export interface HoldMediaInput {
  tenantId: string;
  callId: string;
  settings: MediaSettings;
}

/** How a media stream ended, reported when the relay lets go of it. */
export interface HoldMediaResult {
  endedBy: 'stop' | 'socket_closed' | 'relay_shutdown' | 'call_ended';
  recording?: { path: string; seconds: number };
  stats: { framesIn: number; malformed: number; outOfOrder: number };
}

/** Failure type of a relay activity whose call has no live stream there (the media is gone). */
export const MEDIA_STREAM_GONE = 'MediaStreamGone';

/** Activities only the relay hosts (queue relay.<instanceId>); the workflow imports their types. */
export interface RelayActivities {
  speak(input: SpeakInput): Promise<SpeakResult>;
  /** Runs for as long as the relay holds the call's stream, heartbeating; its loss means the relay died. */
  holdMedia(input: HoldMediaInput): Promise<HoldMediaResult>;
  /** The call is over: play out what is queued, close the stream, finish the recording. */
  releaseMedia(input: { callId: string; reason: string }): Promise<void>;
}

export interface SpeakResult {
  /** Everything the agent meant to say. */
  text: string;
  /** What the listener actually received (equals `text` unless interrupted). */
  heardText: string;
  interrupted: boolean;
  /** Voice: the caller hung up (the stream ended) while or before this was said. */
  callerGone?: boolean;
  llm?: LlmResult;
  timings: Record<string, number>;
}
