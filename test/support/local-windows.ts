/**
 * Calling windows around "now" for tests and benchmarks: a real interval written as the weekly
 * local-time windows of a zone (the time-skipping test server cannot be had offline, so windows
 * open and close in seconds of real time).
 */
import type { CallingWindow, Weekday } from '../../contracts/campaign';

const clocks = new Map<string, Intl.DateTimeFormat>();

/** Weekday and seconds since local midnight of `ms` in `zone`. */
export function localClock(ms: number, zone: string): { day: Weekday; seconds: number } {
  let f = clocks.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      weekday: 'short',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      hourCycle: 'h23',
    });
    clocks.set(zone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return {
    day: parts.weekday!.toLowerCase().slice(0, 3) as Weekday,
    seconds: Number(parts.hour) * 3600 + Number(parts.minute) * 60 + Number(parts.second),
  };
}

const hms = (seconds: number) =>
  [Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');

/**
 * Adds the real interval [from, to) (whole seconds, under a day) to `windows` as `zone`'s local
 * windows, split at local midnight.
 */
export function addLocalWindow(
  windows: Partial<Record<Weekday, CallingWindow[]>>,
  zone: string,
  from: number,
  to: number,
): void {
  const start = localClock(from, zone);
  const end = localClock(to, zone);
  if (start.day === end.day && end.seconds > start.seconds) {
    (windows[start.day] ??= []).push({ start: hms(start.seconds), end: hms(end.seconds) });
  } else {
    (windows[start.day] ??= []).push({ start: hms(start.seconds), end: '24:00' });
    if (end.seconds > 0) (windows[end.day] ??= []).push({ start: '00:00', end: hms(end.seconds) });
  }
}
