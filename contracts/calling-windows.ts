/**
 * Weekly calling windows in a contact's local time: when the next one opens and closes. Pure and
 * deterministic (only `Intl`), so the campaign workflows use it with the workflow clock and the api
 * uses it to refuse a campaign whose windows never open.
 */
import { WEEKDAYS, type CallingWindow, type Weekday } from './campaign';
import { wallTimeIn, zonedTimeToInstant } from './zoned-time';

export { isTimeZone } from './zoned-time';

const TIME = /^([01]\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?$/;

/** Seconds since local midnight for `HH:MM[:SS]` (24:00 allowed as an end), or undefined. */
export function parseClockTime(text: string): number | undefined {
  const match = TIME.exec(text);
  if (!match) return undefined;
  const seconds = Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3] ?? 0);
  return seconds > 86_400 ? undefined : seconds;
}

/** What is wrong with a window, in words, or undefined when it is well formed. */
export function windowProblem(window: CallingWindow): string | undefined {
  const start = parseClockTime(window.start);
  const end = parseClockTime(window.end);
  if (start === undefined || start >= 86_400)
    return `start '${window.start}' is not a time (HH:MM or HH:MM:SS)`;
  if (end === undefined) return `end '${window.end}' is not a time (HH:MM or HH:MM:SS, up to 24:00)`;
  if (end <= start) return `end ${window.end} is not after start ${window.start}`;
  return undefined;
}

/** True when at least one weekday has a well-formed window. */
export function windowsEverOpen(windows: Partial<Record<Weekday, CallingWindow[]>>): boolean {
  return WEEKDAYS.some((day) => (windows[day] ?? []).some((w) => windowProblem(w) === undefined));
}

/** Local date and seconds since local midnight of `ms` in `timeZone`. */
function localParts(
  ms: number,
  timeZone: string,
): { year: number; month: number; day: number; seconds: number } {
  const wall = wallTimeIn(new Date(ms), timeZone);
  return {
    year: wall.year,
    month: wall.month,
    day: wall.day,
    seconds: wall.hour * 3600 + wall.minute * 60 + wall.second,
  };
}

/** The instant of a local wall-clock time on a date, `seconds` since its midnight (24:00 is the next midnight). */
function localToInstant(year: number, month: number, day: number, seconds: number, timeZone: string): number {
  const date = new Date(Date.UTC(year, month - 1, day) + seconds * 1000);
  return zonedTimeToInstant(
    {
      year: date.getUTCFullYear(),
      month: date.getUTCMonth() + 1,
      day: date.getUTCDate(),
      hour: date.getUTCHours(),
      minute: date.getUTCMinutes(),
      second: date.getUTCSeconds(),
    },
    timeZone,
  );
}

export interface WindowSpan {
  /** Epoch ms; at or before `now` when the window is open now. */
  opensAt: number;
  closesAt: number;
}

/**
 * The window that is open at `now` or opens next (within eight days), in `timeZone`; null when no
 * weekday has a window. Windows of one day that touch or overlap are merged.
 */
export function nextCallingWindow(
  now: number,
  timeZone: string,
  windows: Partial<Record<Weekday, CallingWindow[]>>,
): WindowSpan | null {
  const today = localParts(now, timeZone);
  const spans: WindowSpan[] = [];
  for (let offset = -1; offset <= 8; offset += 1) {
    const date = new Date(Date.UTC(today.year, today.month - 1, today.day + offset));
    const weekday = WEEKDAYS[(date.getUTCDay() + 6) % 7]!;
    for (const window of windows[weekday] ?? []) {
      if (windowProblem(window) !== undefined) continue;
      const [y, m, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
      const opensAt = localToInstant(y, m, d, parseClockTime(window.start)!, timeZone);
      const closesAt = localToInstant(y, m, d, parseClockTime(window.end)!, timeZone);
      if (closesAt > now && closesAt > opensAt) spans.push({ opensAt, closesAt });
    }
  }
  if (spans.length === 0) return null;
  spans.sort((a, b) => a.opensAt - b.opensAt);
  const first = { ...spans[0]! };
  for (const span of spans.slice(1)) {
    if (span.opensAt > first.closesAt) break;
    first.closesAt = Math.max(first.closesAt, span.closesAt);
  }
  return first;
}

/** True when `now` falls inside a window in `timeZone`. */
export function insideCallingWindow(
  now: number,
  timeZone: string,
  windows: Partial<Record<Weekday, CallingWindow[]>>,
): boolean {
  const span = nextCallingWindow(now, timeZone, windows);
  return span !== null && span.opensAt <= now;
}

/** Windows open around the clock, every day (for campaigns that set none). */
export const ALWAYS_OPEN: Record<Weekday, CallingWindow[]> = Object.fromEntries(
  WEEKDAYS.map((day) => [day, [{ start: '00:00', end: '24:00' }]]),
) as Record<Weekday, CallingWindow[]>;
