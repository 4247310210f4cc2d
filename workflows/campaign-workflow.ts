/**
 * Outbound campaigns. `campaignWorkflow` keeps a sliding window of `campaignContactWorkflow`
 * children no wider than the campaign's concurrency, fed from the campaign's contact table (its
 * work queue) one page at a time, and continues as new so a 100k-contact campaign keeps a small
 * history. Each contact's workflow waits for the contact's calling window, opens an attempt (DNC,
 * quota), runs it as a child `callWorkflow`, applies the retry policy and records every attempt; a
 * contact whose next attempt is far off gives its slot back and is claimed again when due.
 *
 * Pause, resume, cancel and settings edits are updates with validators; in-flight calls always
 * finish, and a dial still waiting for its turn on the rate-limited dialer queue when the campaign
 * is paused is not placed (the dialer re-checks the campaign's state).
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import { isTimeZone, nextCallingWindow, windowProblem } from '../contracts/calling-windows';
import {
  CAMPAIGN_QUEUE,
  FINAL_CONTACT_STATUSES,
  RETRYABLE_OUTCOMES,
  WEEKDAYS,
  campaignContactWorkflowId,
  campaignDialerQueue,
  campaignWorkflowId,
  cancelCampaignUpdate,
  campaignProgressQuery,
  contactControlSignal,
  contactFinishedSignal,
  editCampaignUpdate,
  pauseCampaignUpdate,
  resumeCampaignUpdate,
  type CampaignContactInput,
  type CampaignContactResult,
  type CampaignContactStatus,
  type CampaignCounts,
  type CampaignProgress,
  type CampaignSettings,
  type CampaignSettingsEdit,
  type CampaignStatus,
  type CampaignSummary,
  type CampaignWorkflowInput,
  type ContactControl,
  type ContactFinished,
  type RetryableOutcome,
} from '../contracts/campaign';
import { CALL_QUEUE, callOutcomeSignal, callWorkflowId, type CallWorkflowResult } from '../contracts/call';
import { SEARCH_ATTRIBUTES } from '../temporal-config/search-attributes';
import { callWorkflow } from './call-workflow';
import { workflowNow } from './clock';

const db = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '10 seconds' },
});

const DEFAULT_PAGE_SIZE = 100;
/** Continue as new well before Temporal's history limits (each contact costs ~10 parent events). */
const HISTORY_EVENTS_PER_RUN = 4_000;
/** With nothing due, look at the table again at least this often (contacts added, clocks skewed). */
const IDLE_RECHECK_MS = 60_000;

function validateEdit(edit: CampaignSettingsEdit): void {
  const problems: string[] = [];
  if (edit.maxConcurrentCalls !== undefined) {
    if (
      !Number.isInteger(edit.maxConcurrentCalls) ||
      edit.maxConcurrentCalls < 1 ||
      edit.maxConcurrentCalls > 1000
    )
      problems.push('maxConcurrentCalls must be an integer from 1 to 1000');
  }
  if (edit.maxCallsPerSecond !== undefined) {
    if (!(edit.maxCallsPerSecond > 0 && edit.maxCallsPerSecond <= 50))
      problems.push('maxCallsPerSecond must be more than 0 and at most 50');
  }
  if (edit.windows !== undefined) {
    for (const [day, windows] of Object.entries(edit.windows)) {
      if (!(WEEKDAYS as readonly string[]).includes(day)) problems.push(`windows.${day}: not a weekday`);
      (windows ?? []).forEach((w, i) => {
        const problem = windowProblem(w);
        if (problem) problems.push(`windows.${day}.${i}: ${problem}`);
      });
    }
  }
  for (const [outcome, rule] of Object.entries(edit.retry ?? {})) {
    if (!(RETRYABLE_OUTCOMES as readonly string[]).includes(outcome))
      problems.push(`retry.${outcome}: unknown outcome`);
    else if (!rule || !Number.isInteger(rule.maxAttempts) || rule.maxAttempts < 1 || rule.backoffSeconds < 0)
      problems.push(`retry.${outcome}: maxAttempts must be ≥ 1 and backoffSeconds ≥ 0`);
  }
  if (edit.voicemail?.action === 'leave_message' && !edit.voicemail.message?.trim())
    problems.push('voicemail.message must not be empty when the action is leave_message');
  if (problems.length > 0) {
    throw ApplicationFailure.create({
      type: 'InvalidCampaignEdit',
      message: problems.join('; '),
      nonRetryable: true,
    });
  }
}

export function applyEdit(settings: CampaignSettings, edit: CampaignSettingsEdit): CampaignSettings {
  return {
    ...settings,
    ...(edit.maxConcurrentCalls !== undefined ? { maxConcurrentCalls: edit.maxConcurrentCalls } : {}),
    ...(edit.maxCallsPerSecond !== undefined ? { maxCallsPerSecond: edit.maxCallsPerSecond } : {}),
    ...(edit.windows !== undefined ? { windows: edit.windows } : {}),
    ...(edit.voicemail !== undefined ? { voicemail: edit.voicemail } : {}),
    retry: { ...settings.retry, ...(edit.retry ?? {}) },
  };
}

export async function campaignWorkflow(input: CampaignWorkflowInput): Promise<CampaignSummary> {
  const carried = input.carried;
  let settings = input.settings;
  let paused = carried?.paused ?? false;
  let canceled = false;
  const inFlight: Record<string, number> = { ...(carried?.inFlight ?? {}) };
  const counts: CampaignCounts = { ...(carried?.counts ?? {}) };
  let pages = carried?.pages ?? 0;
  const runs = (carried?.runs ?? 0) + 1;
  const startedAt = carried?.startedAt ?? new Date(workflowNow()).toISOString();
  let nextDueAt: string | null = null;
  /** Bumped by every child report and control change: the loop re-plans when it moves. */
  let changes = 0;
  const endsAt = input.endsAt ? Date.parse(input.endsAt) : undefined;
  const startsAt = input.startsAt ? Date.parse(input.startsAt) : undefined;
  const pageSize = input.options?.pageSize ?? DEFAULT_PAGE_SIZE;

  const live = () => Object.keys(inFlight).length;
  const status = (): CampaignStatus => (canceled ? 'canceled' : paused ? 'paused' : 'running');
  const progress = (): CampaignProgress => ({
    campaignId: input.campaignId,
    status: status(),
    paused,
    settings,
    counts: { ...counts },
    inFlight: live(),
    nextAttemptAt: nextDueAt,
    startedAt,
    runs,
  });

  /** Tells every live contact workflow (at most the concurrency) about a control change. */
  const tellContacts = async (control: ContactControl) => {
    await Promise.all(
      Object.keys(inFlight).map((contactId) =>
        getExternalWorkflowHandle(campaignContactWorkflowId(input.campaignId, contactId))
          .signal(contactControlSignal, control)
          .catch(() => undefined),
      ),
    );
  };

  setHandler(contactFinishedSignal, (report: ContactFinished) => {
    if (!(report.contactId in inFlight)) return;
    delete inFlight[report.contactId];
    changes += 1;
    if (FINAL_CONTACT_STATUSES.includes(report.status)) {
      counts[report.status] = (counts[report.status] ?? 0) + 1;
    }
    if (report.nextAttemptAt && (!nextDueAt || report.nextAttemptAt < nextDueAt))
      nextDueAt = report.nextAttemptAt;
  });

  const notFinished = () => {
    if (canceled) throw new Error('The campaign has been canceled');
  };

  setHandler(
    pauseCampaignUpdate,
    async () => {
      if (!paused) {
        paused = true;
        changes += 1;
        // The dialer reads this before each dial: from here on nothing new rings.
        await db.saveCampaignState({
          tenantId: input.tenantId,
          campaignId: input.campaignId,
          status: 'paused',
        });
        await tellContacts({ type: 'pause' });
      }
      return progress();
    },
    { validator: notFinished },
  );
  setHandler(
    resumeCampaignUpdate,
    async () => {
      if (paused) {
        paused = false;
        changes += 1;
        await db.saveCampaignState({
          tenantId: input.tenantId,
          campaignId: input.campaignId,
          status: 'running',
        });
        await tellContacts({ type: 'resume' });
      }
      return progress();
    },
    { validator: notFinished },
  );
  setHandler(
    cancelCampaignUpdate,
    async () => {
      if (!canceled) {
        canceled = true;
        changes += 1;
        await db.saveCampaignState({
          tenantId: input.tenantId,
          campaignId: input.campaignId,
          status: 'canceled',
        });
        await tellContacts({ type: 'cancel' });
      }
      return progress();
    },
    { validator: notFinished },
  );
  setHandler(
    editCampaignUpdate,
    async (edit: CampaignSettingsEdit) => {
      settings = applyEdit(settings, edit);
      changes += 1;
      await db.saveCampaignState({ tenantId: input.tenantId, campaignId: input.campaignId, settings });
      await tellContacts({ type: 'settings', settings });
      return progress();
    },
    {
      validator: (edit: CampaignSettingsEdit) => {
        notFinished();
        validateEdit(edit);
      },
    },
  );
  setHandler(campaignProgressQuery, progress);

  if (!carried) {
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.AgentId, value: input.agentId },
      { key: SEARCH_ATTRIBUTES.CampaignId, value: input.campaignId },
    ]);
    if (startsAt !== undefined && startsAt > workflowNow()) {
      await condition(() => canceled, startsAt - workflowNow());
    }
  }

  const startContact = async (contactId: string, attemptsMade: number) => {
    const child: CampaignContactInput = {
      campaignId: input.campaignId,
      tenantId: input.tenantId,
      agentId: input.agentId,
      agentVersionId: input.agentVersionId,
      callerId: input.callerId,
      contactId,
      attemptsMade,
      settings,
      endsAt: input.endsAt,
      callOptions: input.options?.call,
    };
    inFlight[contactId] = attemptsMade;
    try {
      await startChild(campaignContactWorkflow, {
        workflowId: campaignContactWorkflowId(input.campaignId, contactId),
        taskQueue: CAMPAIGN_QUEUE,
        args: [child],
        // Children outlive a run that continues as new; they report back by signal.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      });
    } catch (err) {
      // Already running (started by this campaign before a restart): it is in flight and will report.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  };

  /** Why the loop stopped: all done, canceled, past the campaign's end, or time for a fresh run. */
  let stop: 'done' | 'canceled' | 'expired' | 'continue';
  for (;;) {
    // Anything that happens from here on (a child reporting during the claim, say) wakes the wait below.
    const seen = changes;
    if (canceled) {
      stop = 'canceled';
      break;
    }
    if (endsAt !== undefined && workflowNow() >= endsAt) {
      await db.closeWaitingContacts({
        tenantId: input.tenantId,
        campaignId: input.campaignId,
        status: 'expired',
      });
      stop = 'expired';
      break;
    }
    const free = settings.maxConcurrentCalls - live();
    let lastClaimFull = false;
    if (!paused && free > 0) {
      pages += 1;
      const limit = Math.min(free, pageSize);
      const claim = await db.claimCampaignContacts({
        tenantId: input.tenantId,
        campaignId: input.campaignId,
        claimToken: `${workflowInfo().runId}:${pages}`,
        limit,
        windows: settings.windows,
        defaultTimeZone: isTimeZone(settings.defaultTimeZone) ? settings.defaultTimeZone : 'UTC',
        endsAt: input.endsAt,
      });
      nextDueAt = claim.nextDueAt;
      lastClaimFull = claim.claimed.length === limit;
      await Promise.all(claim.claimed.map((c) => startContact(c.contactId, c.attemptsMade)));
      if (claim.claimed.length === 0 && claim.waiting === 0 && live() === 0) {
        stop = 'done';
        break;
      }
    }
    // Checked before claiming again: a campaign whose slots free as fast as it claims must still
    // continue as new, or its history grows until Temporal terminates it.
    if (
      workflowInfo().historyLength > HISTORY_EVENTS_PER_RUN ||
      workflowInfo().continueAsNewSuggested ||
      (input.options?.pagesPerRun !== undefined && pages - (carried?.pages ?? 0) >= input.options.pagesPerRun)
    ) {
      stop = 'continue';
      break;
    }
    // A full page: more may be due right now, claim again while slots remain.
    if (lastClaimFull && !paused && settings.maxConcurrentCalls - live() > 0) continue;
    // Wait for a slot to free, a retry or a window to come due, or a control change.
    const bounds = [IDLE_RECHECK_MS];
    if (nextDueAt) bounds.push(Date.parse(nextDueAt) - workflowNow());
    if (endsAt !== undefined) bounds.push(endsAt - workflowNow());
    await condition(() => changes !== seen || canceled, Math.max(10, Math.min(...bounds)));
  }

  if (stop === 'continue') {
    // A fresh run with compact state; in-flight contacts report to whichever run is current.
    await condition(allHandlersFinished);
    await continueAsNew<typeof campaignWorkflow>({
      ...input,
      settings,
      carried: { paused, inFlight, counts, pages, runs, startedAt },
    });
  }

  // Over (all contacts final, canceled, or past the end): in-flight calls finish first.
  if (canceled) {
    await db.closeWaitingContacts({
      tenantId: input.tenantId,
      campaignId: input.campaignId,
      status: 'canceled',
    });
  }
  await condition(() => live() === 0 && allHandlersFinished());
  const finalCounts = await db.campaignCounts({ tenantId: input.tenantId, campaignId: input.campaignId });
  const summary: CampaignSummary = {
    campaignId: input.campaignId,
    status: canceled ? 'canceled' : 'completed',
    counts: finalCounts,
    startedAt,
    finishedAt: new Date(workflowNow()).toISOString(),
  };
  await db.saveCampaignState({
    tenantId: input.tenantId,
    campaignId: input.campaignId,
    status: summary.status,
    summary,
  });
  return summary;
}

/** The contact's final status after its last attempt ended this way. */
const EXHAUSTED: Record<RetryableOutcome, CampaignContactStatus> = {
  'no-answer': 'no_answer',
  busy: 'busy',
  failed: 'failed',
  voicemail: 'voicemail',
};

export async function campaignContactWorkflow(input: CampaignContactInput): Promise<CampaignContactResult> {
  let settings = input.settings;
  let paused = false;
  let canceled = false;
  let controlChanges = 0;
  let attempts = input.attemptsMade;
  let lastOutcome: string | undefined;
  let lastCallId: string | undefined;

  let currentCallId: string | undefined;
  let reported: CallWorkflowResult | undefined;
  setHandler(callOutcomeSignal, (ended: CallWorkflowResult) => {
    if (ended.callId === currentCallId) reported = ended;
  });
  setHandler(contactControlSignal, (control: ContactControl) => {
    controlChanges += 1;
    if (control.type === 'pause') paused = true;
    else if (control.type === 'resume') paused = false;
    else if (control.type === 'cancel') canceled = true;
    else settings = control.settings;
  });

  const report = async (
    status: CampaignContactStatus,
    nextAttemptAt?: string,
  ): Promise<CampaignContactResult> => {
    await db.finishCampaignContact({
      tenantId: input.tenantId,
      campaignId: input.campaignId,
      contactId: input.contactId,
      status,
      attempts,
      lastOutcome,
      nextAttemptAt,
    });
    const finished: ContactFinished = { contactId: input.contactId, status, attempts, nextAttemptAt };
    try {
      await getExternalWorkflowHandle(campaignWorkflowId(input.campaignId)).signal(
        contactFinishedSignal,
        finished,
      );
    } catch {
      // The campaign is over (it waits for its live contacts, so only after a manual termination).
    }
    return { ...finished, lastCallId };
  };

  /** Waits `ms` unless a control change (pause, cancel, new settings) comes first. */
  const pauseFor = async (ms: number): Promise<void> => {
    const seen = controlChanges;
    await condition(() => controlChanges !== seen, ms);
  };

  const target = await db.loadDialTarget({ tenantId: input.tenantId, contactId: input.contactId });
  if (!target) return report('canceled');
  const zone =
    target.timeZone && isTimeZone(target.timeZone)
      ? target.timeZone
      : isTimeZone(settings.defaultTimeZone)
        ? settings.defaultTimeZone
        : 'UTC';
  const endsAt = input.endsAt ? Date.parse(input.endsAt) : undefined;

  for (;;) {
    if (canceled) return report('canceled');
    if (paused) return report('pending');
    const now = workflowNow();
    const window = nextCallingWindow(now, zone, settings.windows);
    if (!window || (endsAt !== undefined && window.opensAt >= endsAt)) {
      lastOutcome ??= 'window_never_opened';
      return report('expired');
    }
    if (window.opensAt > now) {
      const wait = window.opensAt - now;
      if (wait > settings.parkAfterSeconds * 1000)
        return report('scheduled', new Date(window.opensAt).toISOString());
      await pauseFor(wait);
      continue;
    }

    const callId = uuid4();
    const begun = await db.beginCampaignAttempt({
      tenantId: input.tenantId,
      campaignId: input.campaignId,
      contactId: input.contactId,
      callId,
      agentId: input.agentId,
      agentVersionId: input.agentVersionId,
      callerId: input.callerId,
    });
    if (begun.outcome === 'dnc') {
      lastOutcome = 'do_not_call';
      return report('dnc');
    }
    if (begun.outcome === 'paused' || begun.outcome === 'canceled') {
      return report(begun.outcome === 'paused' ? 'pending' : 'canceled');
    }
    if (begun.outcome === 'quota') {
      if (begun.retryAfterSeconds > settings.parkAfterSeconds) {
        return report('scheduled', new Date(workflowNow() + begun.retryAfterSeconds * 1000).toISOString());
      }
      await pauseFor(begun.retryAfterSeconds * 1000);
      continue;
    }

    reported = undefined;
    currentCallId = callId;
    const call = await startChild(callWorkflow, {
      workflowId: callWorkflowId(callId),
      taskQueue: CALL_QUEUE,
      // A call is never cut off because its contact's bookkeeping went away.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [
        {
          callId,
          tenantId: input.tenantId,
          agentId: input.agentId,
          agentVersionId: input.agentVersionId,
          direction: 'outbound',
          channel: 'voice',
          from: input.callerId,
          to: begun.target.phone,
          contactId: input.contactId,
          contact: begun.target.variables,
          campaignId: input.campaignId,
          timeZone: zone,
          options: input.callOptions,
          outbound: {
            attemptKey: begun.attemptKey,
            dialerQueue: campaignDialerQueue(input.campaignId),
            ringTimeoutSeconds: settings.ringTimeoutSeconds,
            dialBefore: new Date(window.closesAt).toISOString(),
            machineDetection: settings.machineDetection,
            voicemail: settings.voicemail,
          },
        },
      ],
    });
    // The outcome comes by signal when the line is released; the call's analysis and usage go on
    // without holding this contact's slot. (Calls from before that signal existed: their result.)
    const result: CallWorkflowResult = await Promise.race([
      call.result(),
      condition(() => reported !== undefined).then(() => reported!),
    ]);
    const dialed = result.disposition !== 'not_dialed';
    await db.recordAttemptOutcome({
      tenantId: input.tenantId,
      callId,
      outcome: result.status,
      reason: result.reason,
      dialed,
    });
    lastCallId = callId;
    if (!dialed) {
      // Paused (or canceled) while the dial waited for its turn: nothing rang, nothing counted.
      if (canceled) return report('canceled');
      if (paused) return report('pending');
      continue;
    }
    attempts += 1;
    lastOutcome = result.disposition;

    const outcome: RetryableOutcome | undefined =
      result.status === 'failed' && result.disposition === 'dial_failed'
        ? undefined // Twilio refused the number itself: it will refuse it again.
        : (RETRYABLE_OUTCOMES as readonly string[]).includes(result.status)
          ? (result.status as RetryableOutcome)
          : undefined;
    if (!outcome) {
      return report(
        result.status === 'failed' ? 'failed' : result.status === 'canceled' ? 'canceled' : 'completed',
      );
    }
    const rule = settings.retry[outcome];
    if (attempts >= rule.maxAttempts || canceled) return report(EXHAUSTED[outcome]);
    const backoffMs =
      rule.backoffSeconds * 1000 * Math.pow(rule.backoffMultiplier || 1, Math.max(0, attempts - 1));
    const retryAt = workflowNow() + backoffMs;
    if (endsAt !== undefined && retryAt >= endsAt) return report(EXHAUSTED[outcome]);
    if (backoffMs > settings.parkAfterSeconds * 1000 || paused) {
      return report('scheduled', new Date(retryAt).toISOString());
    }
    while (!canceled && !paused && workflowNow() < retryAt) await pauseFor(retryAt - workflowNow());
    // A pause during the backoff parks the contact, due at the same time.
    if (paused && !canceled) return report('scheduled', new Date(retryAt).toISOString());
  }
}
