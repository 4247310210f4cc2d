/**
 * Contract of outbound campaigns: `campaignWorkflow` (one per campaign) and its
 * `campaignContactWorkflow` children (one per contact), their settings, updates, queries and the
 * dialer's task queues. The api, the workers and the dashboard import names and types from here.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { TASK_QUEUES } from '../temporal-config/task-queues';
import type { CampaignContactStatus, CampaignStatus } from './statuses';

export const CAMPAIGN_WORKFLOW = 'campaignWorkflow';
export const CAMPAIGN_CONTACT_WORKFLOW = 'campaignContactWorkflow';
export const CAMPAIGN_QUEUE = TASK_QUEUES.campaigns;

export function campaignWorkflowId(campaignId: string): string {
  return `campaign:${campaignId}`;
}

export function campaignContactWorkflowId(campaignId: string, contactId: string): string {
  return `campaign:${campaignId}:contact:${contactId}`;
}

/** The idempotency key of one dial: a retried `placeOutboundCall` with it never dials twice. */
export function attemptKey(campaignId: string, contactId: string, attempt: number): string {
  return `campaign:${campaignId}:contact:${contactId}:attempt:${attempt}`;
}

/**
 * Each campaign dials through its own task queue, whose server-side rate limit
 * (`maxTaskQueueActivitiesPerSecond`) is the campaign's calls per second; the dialer process serves
 * one such queue per running campaign. Calls placed outside a campaign use the plain `dialer` queue.
 */
export function campaignDialerQueue(campaignId: string): string {
  return `${TASK_QUEUES.dialer}.${campaignId}`;
}

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** `HH:MM` or `HH:MM:SS`, in the contact's local time; `end` is exclusive and may be `24:00`. */
export interface CallingWindow {
  start: string;
  end: string;
}

/** Outcomes of one dial attempt that a retry policy can act on. */
export const RETRYABLE_OUTCOMES = ['no-answer', 'busy', 'failed', 'voicemail'] as const;
export type RetryableOutcome = (typeof RETRYABLE_OUTCOMES)[number];

export interface RetryRule {
  /** Total attempts for a contact whose attempts end this way (1: never retried). */
  maxAttempts: number;
  /** Wait before the next attempt; multiplied by `backoffMultiplier` for each further one. */
  backoffSeconds: number;
  backoffMultiplier: number;
}

export type VoicemailAction = { action: 'hangup' } | { action: 'leave_message'; message: string };

export interface CampaignSettings {
  /** Weekly calling windows in the contact's local time; a weekday absent or empty: no calls. */
  windows: Partial<Record<Weekday, CallingWindow[]>>;
  /** Used for contacts with no time zone of their own. */
  defaultTimeZone: string;
  /** Live calls of this campaign at once. */
  maxConcurrentCalls: number;
  /** Dials per second (may be fractional: 0.5 = one every two seconds). */
  maxCallsPerSecond: number;
  retry: Record<RetryableOutcome, RetryRule>;
  voicemail: VoicemailAction;
  /** How long a call may ring before it counts as no answer (Twilio `Timeout`). */
  ringTimeoutSeconds: number;
  /** Answering-machine detection (Twilio async AMD). */
  machineDetection: boolean;
  /**
   * A contact whose next attempt (backoff or calling window) is further away than this gives its
   * slot back and is picked up again when due, so waiting contacts never hold the concurrency.
   */
  parkAfterSeconds: number;
}

export {
  CAMPAIGN_CONTACT_STATUSES,
  CAMPAIGN_STATUSES,
  FINAL_CONTACT_STATUSES,
  type CampaignContactStatus,
  type CampaignStatus,
} from './statuses';

export interface CampaignWorkflowInput {
  campaignId: string;
  tenantId: string;
  agentId: string;
  agentVersionId: string;
  /** E.164 caller ID the campaign dials from. */
  callerId: string;
  settings: CampaignSettings;
  /** ISO; no dial before `startsAt`, none after `endsAt` (contacts still due then end `expired`). */
  startsAt?: string;
  endsAt?: string;
  /** Knobs for tests and the benchmark; production leaves them unset. */
  options?: CampaignOptions;
  /** Present only when the workflow continues as new. */
  carried?: CarriedCampaignState;
}

export interface CampaignOptions {
  /** Contacts claimed per page (continue-as-new after each `pagesPerRun` pages). */
  pageSize?: number;
  pagesPerRun?: number;
  /** Passed to each outbound callWorkflow's options (media timeouts). */
  call?: { mediaHeartbeatTimeoutSeconds?: number; mediaConnectTimeoutSeconds?: number };
}

export interface CarriedCampaignState {
  paused: boolean;
  /** Contacts whose child workflow is running, by contact id → attempt it was started at. */
  inFlight: Record<string, number>;
  counts: CampaignCounts;
  pages: number;
  runs: number;
  startedAt: string;
}

/** Contacts per state, kept by the workflow as children report (the api reads the table too). */
export type CampaignCounts = Partial<Record<CampaignContactStatus, number>> & {
  /** Dial attempts made, and their outcomes. */
  attempts?: number;
};

export interface CampaignProgress {
  campaignId: string;
  status: CampaignStatus;
  paused: boolean;
  settings: CampaignSettings;
  counts: CampaignCounts;
  inFlight: number;
  /** ISO time of the earliest scheduled attempt, when the campaign is waiting for one. */
  nextAttemptAt: string | null;
  startedAt: string;
  runs: number;
}

export interface CampaignSummary {
  campaignId: string;
  status: 'completed' | 'canceled';
  counts: CampaignCounts;
  startedAt: string;
  finishedAt: string;
}

/** A change to a running campaign's settings: only these may change after launch. */
export interface CampaignSettingsEdit {
  maxConcurrentCalls?: number;
  maxCallsPerSecond?: number;
  windows?: CampaignSettings['windows'];
  retry?: Partial<Record<RetryableOutcome, RetryRule>>;
  voicemail?: VoicemailAction;
}

export const pauseCampaignUpdate = defineUpdate<CampaignProgress, []>('pauseCampaign');
export const resumeCampaignUpdate = defineUpdate<CampaignProgress, []>('resumeCampaign');
export const cancelCampaignUpdate = defineUpdate<CampaignProgress, []>('cancelCampaign');
export const editCampaignUpdate = defineUpdate<CampaignProgress, [CampaignSettingsEdit]>('editCampaign');
export const campaignProgressQuery = defineQuery<CampaignProgress>('progress');

/** A contact's workflow reports its end to the campaign (whichever run of it is current). */
export const contactFinishedSignal = defineSignal<[ContactFinished]>('contactFinished');

export interface ContactFinished {
  contactId: string;
  /** Final, or `scheduled` when parked until `nextAttemptAt`, or `pending` when paused before a dial. */
  status: CampaignContactStatus;
  attempts: number;
  nextAttemptAt?: string;
}

/** Sent by the campaign to its live contacts: pause (no new dial), resume, cancel, new settings. */
export const contactControlSignal = defineSignal<[ContactControl]>('contactControl');
export type ContactControl =
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'cancel' }
  | { type: 'settings'; settings: CampaignSettings };

export interface CampaignContactInput {
  campaignId: string;
  tenantId: string;
  agentId: string;
  agentVersionId: string;
  callerId: string;
  contactId: string;
  /** Attempts already made (a parked contact resumes its count). */
  attemptsMade: number;
  settings: CampaignSettings;
  endsAt?: string;
  callOptions?: CampaignOptions['call'];
}

export interface CampaignContactResult extends ContactFinished {
  lastCallId?: string;
}

/** A contact as the campaign reads it at dial time. */
export interface DialTarget {
  contactId: string;
  phone: string;
  timeZone: string | null;
  /** `{{contact.x}}` variables for the agent: name, email, phone and custom attributes. */
  variables: Record<string, unknown>;
}
