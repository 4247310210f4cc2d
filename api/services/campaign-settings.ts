/**
 * A campaign's settings as the api accepts them: zod schemas for a partial input (on create and on
 * a draft's PATCH) and for the edit a running campaign accepts, the defaults, and the checks that
 * need more than one field (the tenant's line quota, calling windows that actually open).
 */
import { z } from 'zod';
import {
  WEEKDAYS,
  type CallingWindow,
  type CampaignSettings,
  type CampaignSettingsEdit,
  type RetryableOutcome,
  type RetryRule,
  type Weekday,
} from '../../contracts/campaign';
import {
  isTimeZone,
  nextCallingWindow,
  windowProblem,
  windowsEverOpen,
} from '../../contracts/calling-windows';
import { AppError } from '../errors';

export const MAX_CALLS_PER_SECOND = 50;
/** Live calls one campaign may ask for, whatever the plan (the plan's limit is checked separately). */
export const MAX_CAMPAIGN_CONCURRENCY = 1000;

const callingWindowSchema = z
  .strictObject({
    start: z.string().meta({ description: 'HH:MM or HH:MM:SS, local time of the contact' }),
    end: z.string().meta({ description: 'HH:MM or HH:MM:SS (exclusive; 24:00 allowed)' }),
  })
  .superRefine((window, ctx) => {
    const problem = windowProblem(window);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const dayWindows = z.array(callingWindowSchema).max(24).optional();

export const callingWindowsSchema = z
  .strictObject({
    mon: dayWindows,
    tue: dayWindows,
    wed: dayWindows,
    thu: dayWindows,
    fri: dayWindows,
    sat: dayWindows,
    sun: dayWindows,
  })
  .meta({
    description: 'Weekly calling windows in the contact’s local time; a weekday absent or empty: no calls',
  });

const retryRuleSchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(10).meta({ description: 'Total attempts (1: never retried)' }),
  backoffSeconds: z.number().int().min(1).max(604_800),
  backoffMultiplier: z.number().min(1).max(10),
});
const retryRuleInput = retryRuleSchema.partial();

const retryInput = z.strictObject({
  'no-answer': retryRuleInput.optional(),
  busy: retryRuleInput.optional(),
  failed: retryRuleInput.optional(),
  voicemail: retryRuleInput.optional(),
});

export const voicemailSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('hangup') }),
  z.strictObject({
    action: z.literal('leave_message'),
    message: z.string().trim().min(1, 'must not be empty').max(1000),
  }),
]);

const timeZoneSchema = z
  .string()
  .max(64)
  .refine(isTimeZone, 'is not an IANA time zone (for example America/New_York)');

const maxConcurrentCalls = z
  .number()
  .int()
  .min(1)
  .max(MAX_CAMPAIGN_CONCURRENCY)
  .meta({ description: "Live calls of this campaign at once; at most the plan's concurrent-call limit" });
const maxCallsPerSecond = z
  .number()
  .gt(0)
  .max(MAX_CALLS_PER_SECOND)
  .meta({ description: 'Dials per second; may be fractional (0.5: one every two seconds)' });

/** Settings as sent: every field optional, each retry rule field by field. */
export const campaignSettingsInput = z
  .strictObject({
    windows: callingWindowsSchema.optional(),
    defaultTimeZone: timeZoneSchema.optional(),
    maxConcurrentCalls: maxConcurrentCalls.optional(),
    maxCallsPerSecond: maxCallsPerSecond.optional(),
    retry: retryInput.optional(),
    voicemail: voicemailSchema.optional(),
    ringTimeoutSeconds: z.number().int().min(5).max(120).optional(),
    machineDetection: z.boolean().optional(),
    parkAfterSeconds: z.number().int().min(5).max(86_400).optional(),
  })
  .meta({ description: 'Campaign settings; fields left out take their defaults' });
export type CampaignSettingsInput = z.infer<typeof campaignSettingsInput>;

/** The only settings a running or paused campaign accepts (CampaignSettingsEdit). */
export const EDITABLE_WHILE_RUNNING = [
  'maxConcurrentCalls',
  'maxCallsPerSecond',
  'windows',
  'retry',
  'voicemail',
] as const satisfies readonly (keyof CampaignSettingsEdit)[];

/** The complete settings, as stored and returned. */
export const campaignSettingsView = z.object({
  windows: z.partialRecord(z.enum(WEEKDAYS), z.array(z.object({ start: z.string(), end: z.string() }))),
  defaultTimeZone: z.string(),
  maxConcurrentCalls: z.number(),
  maxCallsPerSecond: z.number(),
  retry: z.object({
    'no-answer': retryRuleSchema,
    busy: retryRuleSchema,
    failed: retryRuleSchema,
    voicemail: retryRuleSchema,
  }),
  voicemail: voicemailSchema,
  ringTimeoutSeconds: z.number(),
  machineDetection: z.boolean(),
  parkAfterSeconds: z.number(),
});

const WORKDAY: CallingWindow[] = [{ start: '09:00', end: '20:00' }];

export const DEFAULT_CALLING_WINDOWS: Partial<Record<Weekday, CallingWindow[]>> = {
  mon: WORKDAY,
  tue: WORKDAY,
  wed: WORKDAY,
  thu: WORKDAY,
  fri: WORKDAY,
};

export const DEFAULT_RETRY: Record<RetryableOutcome, RetryRule> = {
  'no-answer': { maxAttempts: 3, backoffSeconds: 3600, backoffMultiplier: 2 },
  busy: { maxAttempts: 3, backoffSeconds: 900, backoffMultiplier: 2 },
  failed: { maxAttempts: 2, backoffSeconds: 1800, backoffMultiplier: 1 },
  voicemail: { maxAttempts: 1, backoffSeconds: 3600, backoffMultiplier: 1 },
};

export const DEFAULT_MAX_CONCURRENT_CALLS = 5;

/**
 * The defaults for a tenant: its time zone, and five concurrent calls unless its plan allows fewer
 * (a default the plan refuses would make every campaign of a small plan fail until edited).
 */
export function defaultCampaignSettings(timeZone: string, concurrencyLimit: number): CampaignSettings {
  return {
    windows: structuredClone(DEFAULT_CALLING_WINDOWS),
    defaultTimeZone: timeZone,
    maxConcurrentCalls: Math.max(1, Math.min(DEFAULT_MAX_CONCURRENT_CALLS, concurrencyLimit)),
    maxCallsPerSecond: 1,
    retry: structuredClone(DEFAULT_RETRY),
    voicemail: { action: 'hangup' },
    ringTimeoutSeconds: 30,
    machineDetection: true,
    parkAfterSeconds: 120,
  };
}

type RetryInput = Partial<Record<RetryableOutcome, Partial<RetryRule>>>;

function mergeRetry(base: Record<RetryableOutcome, RetryRule>, change: RetryInput | undefined) {
  const merged = structuredClone(base);
  for (const [outcome, rule] of Object.entries(change ?? {}) as [RetryableOutcome, Partial<RetryRule>][]) {
    merged[outcome] = { ...merged[outcome], ...rule };
  }
  return merged;
}

/**
 * `base` with `change` over it: top-level fields replace (windows as a whole week), retry rules
 * merge field by field per outcome.
 */
export function mergeCampaignSettings(
  base: CampaignSettings,
  change: CampaignSettingsInput | undefined,
): CampaignSettings {
  if (!change) return structuredClone(base);
  const { retry, ...rest } = change;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  const merged: CampaignSettings = { ...structuredClone(base), ...defined };
  merged.retry = mergeRetry(base.retry, retry);
  return merged;
}

/**
 * The settings a stored campaign runs with: what is stored over the defaults. Rows written by this
 * api are complete already; this keeps older or hand-written rows runnable.
 */
export function resolveStoredSettings(
  stored: Record<string, unknown> | null | undefined,
  timeZone: string,
  concurrencyLimit: number,
): CampaignSettings {
  const parsed = campaignSettingsInput.safeParse(stored ?? {});
  const base = defaultCampaignSettings(timeZone, concurrencyLimit);
  return parsed.success ? mergeCampaignSettings(base, parsed.data) : base;
}

/** The edit a running campaign's workflow receives: the fields given, retry rules made complete. */
export function settingsEditFrom(
  current: CampaignSettings,
  change: CampaignSettingsInput,
): CampaignSettingsEdit {
  const edit: CampaignSettingsEdit = {};
  if (change.maxConcurrentCalls !== undefined) edit.maxConcurrentCalls = change.maxConcurrentCalls;
  if (change.maxCallsPerSecond !== undefined) edit.maxCallsPerSecond = change.maxCallsPerSecond;
  if (change.windows !== undefined) edit.windows = change.windows;
  if (change.voicemail !== undefined) edit.voicemail = change.voicemail;
  if (change.retry !== undefined) {
    const merged = mergeRetry(current.retry, change.retry);
    edit.retry = Object.fromEntries(
      Object.keys(change.retry).map((outcome) => [outcome, merged[outcome as RetryableOutcome]]),
    );
  }
  return edit;
}

/** 422 CONCURRENCY_OVER_PLAN when the campaign asks for more live calls than the tenant may have. */
export function checkConcurrencyWithinPlan(
  settings: Pick<CampaignSettings, 'maxConcurrentCalls'>,
  limit: number,
) {
  if (settings.maxConcurrentCalls > limit) {
    throw new AppError(
      422,
      'CONCURRENCY_OVER_PLAN',
      `maxConcurrentCalls ${settings.maxConcurrentCalls} is over this account's limit of ${limit} concurrent calls`,
      { maxConcurrentCalls: settings.maxConcurrentCalls, limit },
    );
  }
}

export interface CampaignSchedule {
  startsAt?: Date | null;
  endsAt?: Date | null;
}

/** 422 CAMPAIGN_ENDS_BEFORE_START when the end is not after the start, or is already past. */
export function checkCampaignDates({ startsAt, endsAt }: CampaignSchedule, now: number): void {
  if (!endsAt) return;
  if (startsAt && endsAt.getTime() <= startsAt.getTime()) {
    throw new AppError(
      422,
      'CAMPAIGN_ENDS_BEFORE_START',
      `endsAt ${endsAt.toISOString()} is not after startsAt ${startsAt.toISOString()}`,
      { startsAt: startsAt.toISOString(), endsAt: endsAt.toISOString() },
    );
  }
  if (endsAt.getTime() <= now) {
    throw new AppError(
      422,
      'CAMPAIGN_ENDS_BEFORE_START',
      `endsAt ${endsAt.toISOString()} has passed: the campaign would end before it starts`,
      { endsAt: endsAt.toISOString() },
    );
  }
}

/** A zone of the campaign's contacts in which no calling window opens before the campaign ends. */
export interface WindowWarning {
  code: 'CALLING_WINDOW_NEVER_OPENS_IN_ZONE';
  timeZone: string;
  message: string;
}

/**
 * 422 CALLING_WINDOW_NEVER_OPENS when no weekday has a window, or when no window opens between
 * max(now, startsAt) and endsAt in any of the zones the contacts are called in (`''` in
 * `contactTimeZones` stands for a contact without a zone, called in the default one):
 * nobody would ever be called. A zone where no window opens while others do is a warning — its
 * contacts will end `expired` without a call — returned for the api to show. Unknown contact zones
 * fall back to the default, as when dialling.
 */
export function checkCallingWindowsOpen(
  settings: Pick<CampaignSettings, 'windows' | 'defaultTimeZone'>,
  schedule: CampaignSchedule,
  contactTimeZones: readonly string[],
  now: number,
): WindowWarning[] {
  if (!windowsEverOpen(settings.windows)) {
    throw new AppError(422, 'CALLING_WINDOW_NEVER_OPENS', 'No weekday has a calling window', {
      windows: settings.windows,
    });
  }
  const from = Math.max(now, schedule.startsAt?.getTime() ?? now);
  const until = schedule.endsAt?.getTime();
  const between = `between ${new Date(from).toISOString()} and ${
    until === undefined ? 'the end' : new Date(until).toISOString()
  }`;
  // Contacts without a (known) zone are called in the default one; with no contacts, it stands for all.
  const zones = [
    ...new Set(
      contactTimeZones.length === 0
        ? [settings.defaultTimeZone]
        : contactTimeZones.map((zone) => (zone && isTimeZone(zone) ? zone : settings.defaultTimeZone)),
    ),
  ];
  const closed = zones.filter((timeZone) => {
    const span = nextCallingWindow(from, timeZone, settings.windows);
    return !span || (until !== undefined && span.opensAt >= until);
  });
  if (closed.length === zones.length) {
    throw new AppError(
      422,
      'CALLING_WINDOW_NEVER_OPENS',
      `No calling window opens ${between} in ${closed.length === 1 ? closed[0] : `any of ${closed.join(', ')}`}`,
      {
        timeZones: closed,
        from: new Date(from).toISOString(),
        until: until ? new Date(until).toISOString() : null,
      },
    );
  }
  return closed.map((timeZone) => ({
    code: 'CALLING_WINDOW_NEVER_OPENS_IN_ZONE',
    timeZone,
    message: `No calling window opens ${between} in ${timeZone}: its contacts will end expired without a call`,
  }));
}
