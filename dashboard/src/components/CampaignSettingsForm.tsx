/**
 * A campaign's settings, as `api/services/campaign-settings.ts` accepts them, shared by the new
 * campaign page and "Edit settings" on a campaign: weekly calling windows (in each contact's own
 * time zone; contacts without one use the default zone), concurrency, dial rate (shown per minute,
 * sent per second), a retry rule per retryable outcome, voicemail behaviour, ringing and
 * answering-machine detection, and the start/end dates. A running or paused campaign only takes
 * windows, concurrency, rate, retry and voicemail: the rest is shown disabled.
 *
 * Also the campaign shapes the pages share (the API's views) and the mapping of API errors onto
 * the form's fields (`details[].path` like `body.settings.windows.mon.0`, and 422 codes).
 */
import type { ReactNode } from 'react';
import type {
  CallingWindow,
  CampaignContactStatus,
  CampaignSettings,
  CampaignStatus,
  RetryableOutcome,
  RetryRule,
  Weekday,
} from '../../../contracts/campaign';
import { ApiError } from '../api';
import { Field } from '../ui';

export type { CampaignSettings, CampaignStatus, CampaignContactStatus };

// ---- the API's views ------------------------------------------------------------------------

export interface Campaign {
  id: string;
  name: string;
  status: CampaignStatus;
  agentId: string;
  agentVersionId: string | null;
  agentVersion: number | null;
  callerNumberId: string | null;
  callerNumber: string | null;
  contactListId: string | null;
  settings: CampaignSettings;
  startsAt: string | null;
  endsAt: string | null;
  launchedAt: string | null;
  finishedAt: string | null;
  summary: Record<string, unknown> | null;
  workflowId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ImportRow {
  row: number;
  status: 'accepted' | 'duplicate' | 'invalid';
  contactId?: string;
  phone?: string;
  name?: string | null;
  timeZone?: string | null;
  reason?: string;
}

export interface ImportReport {
  listId: string | null;
  region: string;
  totals: { rows: number; accepted: number; duplicate: number; invalid: number };
  rows: ImportRow[];
  rowsTruncated: boolean;
}

export interface WindowWarning {
  code: string;
  timeZone: string;
  message: string;
}

export interface CreatedCampaign extends Campaign {
  importReport?: ImportReport;
  warnings?: WindowWarning[];
}

// ---- constants mirrored from contracts/campaign.ts (values; only its types are imported) -------

export const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
export const DAY_NAMES: Record<Weekday, string> = {
  mon: 'Monday',
  tue: 'Tuesday',
  wed: 'Wednesday',
  thu: 'Thursday',
  fri: 'Friday',
  sat: 'Saturday',
  sun: 'Sunday',
};
export const RETRYABLE_OUTCOMES: readonly RetryableOutcome[] = ['no-answer', 'busy', 'voicemail', 'failed'];
const OUTCOME_NAMES: Record<RetryableOutcome, string> = {
  'no-answer': 'No answer',
  busy: 'Busy',
  voicemail: 'Voicemail',
  failed: 'Failed',
};
/** What a running or paused campaign still accepts (EDITABLE_WHILE_RUNNING). */
const EDITABLE_WHILE_RUNNING = [
  'maxConcurrentCalls',
  'maxCallsPerSecond',
  'windows',
  'retry',
  'voicemail',
] as const;
const MAX_CALLS_PER_SECOND = 50;
const MAX_CONCURRENCY = 1000;

const WORKDAY: CallingWindow[] = [{ start: '09:00', end: '20:00' }];

/** The API's defaults (defaultCampaignSettings) for a tenant's time zone. */
export function defaultSettings(timeZone: string): CampaignSettings {
  return {
    windows: { mon: WORKDAY, tue: WORKDAY, wed: WORKDAY, thu: WORKDAY, fri: WORKDAY },
    defaultTimeZone: timeZone,
    maxConcurrentCalls: 5,
    maxCallsPerSecond: 1,
    retry: {
      'no-answer': { maxAttempts: 3, backoffSeconds: 3600, backoffMultiplier: 2 },
      busy: { maxAttempts: 3, backoffSeconds: 900, backoffMultiplier: 2 },
      failed: { maxAttempts: 2, backoffSeconds: 1800, backoffMultiplier: 1 },
      voicemail: { maxAttempts: 1, backoffSeconds: 3600, backoffMultiplier: 1 },
    },
    voicemail: { action: 'hangup' },
    ringTimeoutSeconds: 30,
    machineDetection: true,
    parkAfterSeconds: 120,
  };
}

// ---- form value -----------------------------------------------------------------------------

export interface CampaignFormValue {
  settings: CampaignSettings;
  /** `datetime-local` values (the browser's zone), '' for none. */
  startsAt: string;
  endsAt: string;
}

export type FormMode = 'create' | 'draft' | 'running';

const pad = (n: number) => String(n).padStart(2, '0');

/** An ISO instant as a `datetime-local` value in the browser's zone. */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A `datetime-local` value as an ISO instant, null when empty. */
export function fromLocalInput(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function formValueOf(campaign: Campaign): CampaignFormValue {
  return {
    settings: structuredClone(campaign.settings),
    startsAt: toLocalInput(campaign.startsAt),
    endsAt: toLocalInput(campaign.endsAt),
  };
}

type SettingsChange = Partial<Omit<CampaignSettings, 'retry'>> & {
  retry?: Partial<Record<RetryableOutcome, RetryRule>>;
};

/**
 * The settings fields that differ from `baseline` (what the server holds or would default to), so
 * a field left alone keeps the server's value; retry rules per outcome. In `running` mode only the
 * fields a launched campaign accepts.
 */
export function settingsChanges(
  settings: CampaignSettings,
  baseline: CampaignSettings,
  mode: FormMode,
): SettingsChange {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(settings) as (keyof CampaignSettings)[]) {
    if (mode === 'running' && !(EDITABLE_WHILE_RUNNING as readonly string[]).includes(key)) continue;
    if (key === 'retry') {
      const retry: Partial<Record<RetryableOutcome, RetryRule>> = {};
      for (const outcome of RETRYABLE_OUTCOMES) {
        if (JSON.stringify(settings.retry[outcome]) !== JSON.stringify(baseline.retry[outcome])) {
          retry[outcome] = settings.retry[outcome];
        }
      }
      if (Object.keys(retry).length) out.retry = retry;
    } else if (key === 'windows') {
      const clean = cleanWindows(settings.windows);
      if (JSON.stringify(clean) !== JSON.stringify(cleanWindows(baseline.windows))) out.windows = clean;
    } else if (JSON.stringify(settings[key]) !== JSON.stringify(baseline[key])) {
      out[key] = settings[key];
    }
  }
  return out;
}

/** Windows without empty days, in weekday order (so an unchanged week compares equal). */
function cleanWindows(windows: CampaignSettings['windows']): CampaignSettings['windows'] {
  const out: CampaignSettings['windows'] = {};
  for (const day of WEEKDAYS) {
    const list = windows[day];
    if (list && list.length) out[day] = list.map((w) => ({ start: w.start.trim(), end: w.end.trim() }));
  }
  return out;
}

const TIME = /^([01]\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?$/;

function seconds(text: string): number | undefined {
  const m = TIME.exec(text.trim());
  if (!m) return undefined;
  const s = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
  return s > 86_400 ? undefined : s;
}

/** The same words as the API's windowProblem, so the message reads the same before and after submit. */
function windowProblem(w: CallingWindow): string | undefined {
  const start = seconds(w.start);
  const end = seconds(w.end);
  if (start === undefined || start >= 86_400) return `start '${w.start}' is not a time (HH:MM or HH:MM:SS)`;
  if (end === undefined) return `end '${w.end}' is not a time (HH:MM or HH:MM:SS, up to 24:00)`;
  if (end <= start) return `end ${w.end} is not after start ${w.start}`;
  return undefined;
}

/** Problems the browser can see before sending, keyed as the API keys them (without `body.`). */
export function validateCampaignForm(value: CampaignFormValue, mode: FormMode): Record<string, string> {
  const errors: Record<string, string> = {};
  const s = value.settings;
  const number = (path: string, v: number, min: number, max: number, integer = true) => {
    if (!Number.isFinite(v)) errors[path] = 'is required';
    else if (integer && !Number.isInteger(v)) errors[path] = 'must be a whole number';
    else if (v < min || v > max) errors[path] = `must be between ${min} and ${max}`;
  };
  for (const day of WEEKDAYS) {
    (s.windows[day] ?? []).forEach((w, i) => {
      const problem = windowProblem(w);
      if (problem) errors[`settings.windows.${day}.${i}`] = problem;
    });
  }
  if (!WEEKDAYS.some((day) => (s.windows[day] ?? []).length > 0)) {
    errors['settings.windows'] = 'No weekday has a calling window: add at least one';
  }
  number('settings.maxConcurrentCalls', s.maxConcurrentCalls, 1, MAX_CONCURRENCY);
  if (!Number.isFinite(s.maxCallsPerSecond)) errors['settings.maxCallsPerSecond'] = 'is required';
  else if (s.maxCallsPerSecond <= 0 || s.maxCallsPerSecond > MAX_CALLS_PER_SECOND)
    errors['settings.maxCallsPerSecond'] =
      `must be more than 0 and at most ${MAX_CALLS_PER_SECOND * 60} per minute`;
  for (const outcome of RETRYABLE_OUTCOMES) {
    const rule = s.retry[outcome];
    number(`settings.retry.${outcome}.maxAttempts`, rule.maxAttempts, 1, 10);
    const delay = `settings.retry.${outcome}.backoffSeconds`;
    if (!Number.isFinite(rule.backoffSeconds)) errors[delay] = 'is required';
    else if (rule.backoffSeconds < 1 || rule.backoffSeconds > 604_800)
      errors[delay] = 'must be between 1 second and 7 days (10080 minutes)';
    number(`settings.retry.${outcome}.backoffMultiplier`, rule.backoffMultiplier, 1, 10, false);
  }
  if (s.voicemail.action === 'leave_message' && !s.voicemail.message.trim()) {
    errors['settings.voicemail.message'] = 'must not be empty';
  }
  if (mode !== 'running') {
    number('settings.ringTimeoutSeconds', s.ringTimeoutSeconds, 5, 120);
    number('settings.parkAfterSeconds', s.parkAfterSeconds, 5, 86_400);
    const starts = fromLocalInput(value.startsAt);
    const ends = fromLocalInput(value.endsAt);
    if (starts && ends && ends <= starts) errors.endsAt = 'must be after the start';
    else if (ends && new Date(ends).getTime() <= Date.now()) errors.endsAt = 'has already passed';
  }
  return errors;
}

/** Which form field a whole-request refusal belongs next to. */
const CODE_FIELDS: Record<string, string> = {
  AGENT_NOT_FOUND: 'agentId',
  AGENT_NOT_PUBLISHED: 'agentId',
  AGENT_VERSION_NOT_FOUND: 'agentId',
  CALLER_NUMBER_NOT_FOUND: 'callerNumberId',
  CONTACT_LIST_EMPTY: 'csv',
  CONTACT_LIST_NOT_FOUND: 'csv',
  CSV_EMPTY: 'csv',
  CSV_PHONE_COLUMN_MISSING: 'csv',
  CSV_HEADER_INVALID: 'csv',
  PAYLOAD_TOO_LARGE: 'csv',
  CONCURRENCY_OVER_PLAN: 'settings.maxConcurrentCalls',
  CAMPAIGN_ENDS_BEFORE_START: 'endsAt',
  CALLING_WINDOW_NEVER_OPENS: 'settings.windows',
};

/** An API error as messages per form field (`body.` dropped), plus the field a 4xx code concerns. */
export function campaignFieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const out: Record<string, string> = {};
  for (const [path, message] of Object.entries(error.fieldErrors()))
    out[path.replace(/^body\./, '')] = message;
  const field = CODE_FIELDS[error.code];
  if (field) out[field] ??= error.message;
  return out;
}

// ---- the form -------------------------------------------------------------------------------

function timeZones(current: string): string[] {
  let zones: string[] = [];
  try {
    zones = Intl.supportedValuesOf('timeZone');
  } catch {
    zones = [];
  }
  if (!zones.includes('UTC')) zones = ['UTC', ...zones];
  return zones.includes(current) ? zones : [current, ...zones];
}

const numberValue = (v: number) => (Number.isFinite(v) ? String(v) : '');
const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;

function FieldSet({ legend, children, hint }: { legend: string; children: ReactNode; hint?: ReactNode }) {
  return (
    <fieldset className="campaign-fieldset">
      <legend>{legend}</legend>
      {hint && <p className="muted small-print">{hint}</p>}
      {children}
    </fieldset>
  );
}

export function CampaignSettingsForm({
  value,
  onChange,
  errors,
  mode,
}: {
  value: CampaignFormValue;
  onChange: (value: CampaignFormValue) => void;
  errors: Record<string, string>;
  mode: FormMode;
}) {
  const s = value.settings;
  const locked = mode === 'running';
  const set = (patch: Partial<CampaignSettings>) => onChange({ ...value, settings: { ...s, ...patch } });
  const setWindows = (day: Weekday, list: CallingWindow[]) => set({ windows: { ...s.windows, [day]: list } });
  const setRule = (outcome: RetryableOutcome, patch: Partial<RetryRule>) =>
    set({ retry: { ...s.retry, [outcome]: { ...s.retry[outcome], ...patch } } });
  const err = (path: string) => errors[`settings.${path}`];

  return (
    <div className="campaign-settings">
      {locked && (
        <p className="muted">
          A launched campaign takes changes to its calling windows, concurrency, rate, retry policy and
          voicemail only; the other settings are fixed.
        </p>
      )}

      <FieldSet
        legend="Calling windows"
        hint={
          <>
            Contacts are called only inside these windows, in{' '}
            <strong>each contact&apos;s own time zone</strong> (the CSV&apos;s time_zone column, or the zone
            of the phone number). A day with no window has no calls.
          </>
        }
      >
        <div className="row">
          <button
            type="button"
            className="btn small"
            onClick={() => set({ windows: defaultSettings('UTC').windows })}
          >
            Weekdays 09:00–20:00
          </button>
          <button
            type="button"
            className="btn small"
            onClick={() =>
              set({
                windows: Object.fromEntries(WEEKDAYS.map((d) => [d, [{ start: '00:00', end: '24:00' }]])),
              })
            }
          >
            Every day, all day
          </button>
        </div>
        {err('windows') && (
          <p className="field-error" role="alert">
            {err('windows')}
          </p>
        )}
        <table className="windows-table">
          <caption className="sr-only">Calling windows per weekday</caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Windows (from – to, HH:MM; 24:00 for midnight)</th>
            </tr>
          </thead>
          <tbody>
            {WEEKDAYS.map((day) => {
              const list = s.windows[day] ?? [];
              const dayError = errors[`settings.windows.${day}`];
              return (
                <tr key={day}>
                  <th scope="row">{DAY_NAMES[day]}</th>
                  <td>
                    {list.length === 0 && <span className="muted">No calls</span>}
                    {list.map((w, i) => {
                      const problem = errors[`settings.windows.${day}.${i}`];
                      const name = `${DAY_NAMES[day]} window ${i + 1}`;
                      return (
                        <div key={i} className={`window-row${problem ? ' invalid' : ''}`}>
                          <input
                            aria-label={`${name} from`}
                            value={w.start}
                            placeholder="09:00"
                            size={6}
                            inputMode="numeric"
                            aria-invalid={problem ? true : undefined}
                            onChange={(e) =>
                              setWindows(
                                day,
                                list.map((x, j) => (j === i ? { ...x, start: e.target.value } : x)),
                              )
                            }
                          />
                          <span aria-hidden="true">–</span>
                          <input
                            aria-label={`${name} to`}
                            value={w.end}
                            placeholder="20:00"
                            size={6}
                            inputMode="numeric"
                            aria-invalid={problem ? true : undefined}
                            onChange={(e) =>
                              setWindows(
                                day,
                                list.map((x, j) => (j === i ? { ...x, end: e.target.value } : x)),
                              )
                            }
                          />
                          <button
                            type="button"
                            className="btn link"
                            aria-label={`Remove ${name}`}
                            onClick={() =>
                              setWindows(
                                day,
                                list.filter((_, j) => j !== i),
                              )
                            }
                          >
                            Remove
                          </button>
                          {problem && (
                            <span className="field-error" role="alert">
                              {problem}
                            </span>
                          )}
                        </div>
                      );
                    })}
                    <button
                      type="button"
                      className="btn small"
                      aria-label={`Add a ${DAY_NAMES[day]} window`}
                      onClick={() => {
                        const last = list[list.length - 1];
                        setWindows(day, [
                          ...list,
                          last ? { start: last.end, end: '24:00' } : { start: '09:00', end: '20:00' },
                        ]);
                      }}
                    >
                      + Window
                    </button>
                    {dayError && (
                      <span className="field-error" role="alert">
                        {dayError}
                      </span>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <Field
          label="Default time zone"
          hint="For contacts with no time zone of their own (the API has no single fixed zone for all contacts)."
          error={err('defaultTimeZone')}
        >
          <select
            value={s.defaultTimeZone}
            disabled={locked}
            onChange={(e) => set({ defaultTimeZone: e.target.value })}
          >
            {timeZones(s.defaultTimeZone).map((zone) => (
              <option key={zone} value={zone}>
                {zone}
              </option>
            ))}
          </select>
        </Field>
      </FieldSet>

      <FieldSet legend="Pace">
        <div className="row">
          <Field
            label="Max concurrent calls"
            hint="Live calls of this campaign at once; at most your plan's concurrent-call limit."
            error={err('maxConcurrentCalls')}
          >
            <input
              type="number"
              min={1}
              max={MAX_CONCURRENCY}
              step={1}
              value={numberValue(s.maxConcurrentCalls)}
              onChange={(e) => set({ maxConcurrentCalls: e.target.valueAsNumber })}
            />
          </Field>
          <Field
            label="Calls per minute"
            hint={`New dials per minute (30: one every two seconds; at most ${MAX_CALLS_PER_SECOND * 60}).`}
            error={err('maxCallsPerSecond')}
          >
            <input
              type="number"
              min={0.1}
              max={MAX_CALLS_PER_SECOND * 60}
              step="any"
              value={Number.isFinite(s.maxCallsPerSecond) ? String(round(s.maxCallsPerSecond * 60)) : ''}
              onChange={(e) => set({ maxCallsPerSecond: e.target.valueAsNumber / 60 })}
            />
          </Field>
          <Field
            label="Ring timeout (seconds)"
            hint="How long a call may ring before it counts as no answer."
            error={err('ringTimeoutSeconds')}
          >
            <input
              type="number"
              min={5}
              max={120}
              step={1}
              disabled={locked}
              value={numberValue(s.ringTimeoutSeconds)}
              onChange={(e) => set({ ringTimeoutSeconds: e.target.valueAsNumber })}
            />
          </Field>
        </div>
      </FieldSet>

      <FieldSet
        legend="Retry policy"
        hint="Per outcome of a dial: how many attempts a contact gets in total, and how long to wait before the next (each further wait is multiplied by the backoff)."
      >
        <table className="retry-table">
          <caption className="sr-only">Retry policy per outcome</caption>
          <thead>
            <tr>
              <th scope="col">Outcome</th>
              <th scope="col">Retry</th>
              <th scope="col">Max attempts</th>
              <th scope="col">Retry delay (minutes)</th>
              <th scope="col">Backoff ×</th>
            </tr>
          </thead>
          <tbody>
            {RETRYABLE_OUTCOMES.map((outcome) => {
              const rule = s.retry[outcome];
              const retries = !(rule.maxAttempts <= 1);
              const path = `retry.${outcome}`;
              const problems = [
                err(`${path}.maxAttempts`),
                err(`${path}.backoffSeconds`),
                err(`${path}.backoffMultiplier`),
                err(path),
              ].filter(Boolean);
              return (
                <tr key={outcome} className={problems.length ? 'invalid' : undefined}>
                  <th scope="row">
                    {OUTCOME_NAMES[outcome]} <code className="muted">{outcome}</code>
                  </th>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Retry ${outcome}`}
                      checked={retries}
                      onChange={(e) =>
                        setRule(outcome, {
                          maxAttempts: e.target.checked ? Math.max(2, rule.maxAttempts) : 1,
                        })
                      }
                    />
                  </td>
                  <td>
                    <input
                      type="number"
                      aria-label={`Max attempts, ${outcome}`}
                      min={1}
                      max={10}
                      step={1}
                      value={numberValue(rule.maxAttempts)}
                      onChange={(e) => setRule(outcome, { maxAttempts: e.target.valueAsNumber })}
                    />
                  </td>
                  <td>
                    <input
                      type="number"
                      aria-label={`Retry delay (minutes), ${outcome}`}
                      min={1}
                      max={10_080}
                      step="any"
                      disabled={!retries}
                      value={
                        Number.isFinite(rule.backoffSeconds) ? String(round(rule.backoffSeconds / 60, 2)) : ''
                      }
                      onChange={(e) =>
                        setRule(outcome, { backoffSeconds: Math.round(e.target.valueAsNumber * 60) })
                      }
                    />
                  </td>
                  <td>
                    <input
                      type="number"
                      aria-label={`Backoff multiplier, ${outcome}`}
                      min={1}
                      max={10}
                      step="any"
                      disabled={!retries}
                      value={numberValue(rule.backoffMultiplier)}
                      onChange={(e) => setRule(outcome, { backoffMultiplier: e.target.valueAsNumber })}
                    />
                    {problems.map((p) => (
                      <span key={p} className="field-error" role="alert">
                        {p}
                      </span>
                    ))}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <Field
          label="Park after (seconds)"
          hint="A contact whose next attempt is further away than this gives its line back until it is due."
          error={err('parkAfterSeconds')}
        >
          <input
            type="number"
            min={5}
            max={86_400}
            step={1}
            disabled={locked}
            value={numberValue(s.parkAfterSeconds)}
            onChange={(e) => set({ parkAfterSeconds: e.target.valueAsNumber })}
          />
        </Field>
      </FieldSet>

      <FieldSet legend="Voicemail">
        <label className="checkbox">
          <input
            type="checkbox"
            checked={s.machineDetection}
            disabled={locked}
            onChange={(e) => set({ machineDetection: e.target.checked })}
          />
          Detect answering machines
        </label>
        <div role="radiogroup" aria-label="When a voicemail answers" className="row">
          <label className="checkbox">
            <input
              type="radio"
              name="voicemail-action"
              checked={s.voicemail.action === 'hangup'}
              onChange={() => set({ voicemail: { action: 'hangup' } })}
            />
            Hang up
          </label>
          <label className="checkbox">
            <input
              type="radio"
              name="voicemail-action"
              checked={s.voicemail.action === 'leave_message'}
              onChange={() => set({ voicemail: { action: 'leave_message', message: '' } })}
            />
            Leave a message
          </label>
        </div>
        {err('voicemail') && (
          <p className="field-error" role="alert">
            {err('voicemail')}
          </p>
        )}
        {s.voicemail.action === 'leave_message' && (
          <Field
            label="Voicemail message"
            hint="Spoken after the beep (up to 1000 characters)."
            error={err('voicemail.message')}
            wide
          >
            <textarea
              maxLength={1000}
              value={s.voicemail.message}
              onChange={(e) => set({ voicemail: { action: 'leave_message', message: e.target.value } })}
            />
          </Field>
        )}
      </FieldSet>

      <FieldSet
        legend="Schedule"
        hint="Optional. No dial before the start; contacts still due at the end end expired."
      >
        <div className="row">
          <Field label="Start date" error={errors.startsAt}>
            <input
              type="datetime-local"
              disabled={locked}
              value={value.startsAt}
              onChange={(e) => onChange({ ...value, startsAt: e.target.value })}
            />
          </Field>
          <Field label="End date" error={errors.endsAt}>
            <input
              type="datetime-local"
              disabled={locked}
              value={value.endsAt}
              onChange={(e) => onChange({ ...value, endsAt: e.target.value })}
            />
          </Field>
        </div>
      </FieldSet>
    </div>
  );
}
