/** Calling windows in the contact's local time (contracts/calling-windows.ts). */
import {
  ALWAYS_OPEN,
  insideCallingWindow,
  isTimeZone,
  nextCallingWindow,
  parseClockTime,
  windowProblem,
  windowsEverOpen,
} from '../contracts/calling-windows';

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
// Saturday 21 November 2026, 15:30 UTC.
const SATURDAY = Date.parse('2026-11-21T15:30:00Z');

describe('calling windows', () => {
  it('reads HH:MM and HH:MM:SS up to 24:00 and refuses anything else', () => {
    expect(parseClockTime('09:00')).toBe(9 * 3600);
    expect(parseClockTime('17:30:15')).toBe(17 * 3600 + 30 * 60 + 15);
    expect(parseClockTime('24:00')).toBe(86_400);
    for (const bad of ['9:00', '24:01', '25:00', '12:60', 'noon', ''])
      expect(parseClockTime(bad)).toBeUndefined();
    expect(windowProblem({ start: '10:00', end: '09:00' })).toBe('end 09:00 is not after start 10:00');
    expect(windowProblem({ start: '24:00', end: '24:00' })).toMatch(/start '24:00' is not a time/);
    expect(windowProblem({ start: '09:00', end: '17:00' })).toBeUndefined();
  });

  it('knows when no weekday has a window', () => {
    expect(windowsEverOpen({})).toBe(false);
    expect(windowsEverOpen({ mon: [] })).toBe(false);
    expect(windowsEverOpen({ mon: [{ start: '10:00', end: '09:00' }] })).toBe(false);
    expect(windowsEverOpen({ sun: [{ start: '10:00', end: '11:00' }] })).toBe(true);
  });

  it('finds the next window in the contact’s zone, not the server’s', () => {
    const weekdays = { mon: [{ start: '09:00', end: '20:00' }] };
    // Saturday → Monday 09:00 in New York (EST, UTC−5).
    const ny = nextCallingWindow(SATURDAY, 'America/New_York', weekdays)!;
    expect(iso(ny.opensAt)).toBe('2026-11-23T14:00:00.000Z');
    expect(iso(ny.closesAt)).toBe('2026-11-24T01:00:00.000Z');
    // The same local window in Tokyo (UTC+9) opens 14 hours earlier.
    const tokyo = nextCallingWindow(SATURDAY, 'Asia/Tokyo', weekdays)!;
    expect(iso(tokyo.opensAt)).toBe('2026-11-23T00:00:00.000Z');
  });

  it('reports a window that is open now with its real opening and closing', () => {
    // 16:30 in Berlin on Saturday.
    const span = nextCallingWindow(SATURDAY, 'Europe/Berlin', {
      sat: [{ start: '16:00', end: '17:00:30' }],
    })!;
    expect(iso(span.opensAt)).toBe('2026-11-21T15:00:00.000Z');
    expect(iso(span.closesAt)).toBe('2026-11-21T16:00:30.000Z');
    expect(insideCallingWindow(SATURDAY, 'Europe/Berlin', { sat: [{ start: '16:00', end: '17:00' }] })).toBe(
      true,
    );
    expect(
      insideCallingWindow(SATURDAY, 'America/New_York', { sat: [{ start: '16:00', end: '17:00' }] }),
    ).toBe(false);
  });

  it('skips a window that has already closed today', () => {
    const span = nextCallingWindow(SATURDAY, 'UTC', { sat: [{ start: '09:00', end: '10:00' }] })!;
    expect(iso(span.opensAt)).toBe('2026-11-28T09:00:00.000Z');
  });

  it('merges touching windows, so windows open all day every day never close', () => {
    const span = nextCallingWindow(SATURDAY, 'UTC', ALWAYS_OPEN)!;
    expect(span.opensAt).toBeLessThanOrEqual(SATURDAY);
    expect(span.closesAt - SATURDAY).toBeGreaterThan(7 * 86_400_000);
  });

  it('follows daylight-saving changes (New York: 2026-11-01 back to EST)', () => {
    const before = Date.parse('2026-10-31T12:00:00Z');
    const sunday = nextCallingWindow(before, 'America/New_York', {
      sun: [{ start: '09:00', end: '10:00' }],
    })!;
    expect(iso(sunday.opensAt)).toBe('2026-11-01T14:00:00.000Z'); // EST, UTC−5
    const saturday = nextCallingWindow(before, 'America/New_York', {
      sat: [{ start: '09:00', end: '10:00' }],
    })!;
    expect(iso(saturday.opensAt)).toBe('2026-10-31T13:00:00.000Z'); // still EDT, UTC−4
  });

  it('has no window at all when none is set', () => {
    expect(nextCallingWindow(SATURDAY, 'UTC', {})).toBeNull();
  });

  it('tells IANA zones from other text', () => {
    expect(isTimeZone('America/Chicago')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
  });
});
