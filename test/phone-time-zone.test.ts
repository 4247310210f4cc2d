/**
 * Time zones derived from phone numbers: NANP by area code (the majority zone where an area code
 * spans two), every other country by its only or most populous zone; and time zone names typed by
 * people, checked against the runtime's zone database.
 */
import { getCountries, parsePhoneNumberFromString } from 'libphonenumber-js';
import { normalizeTimeZone, primaryTimeZoneOfCountry, timeZoneForNumber } from '../lib/phone-time-zone';

const zoneIsKnown = (zone: string) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
};

it.each([
  ['+12125550100', 'America/New_York'], // Manhattan
  ['+14155550100', 'America/Los_Angeles'], // San Francisco
  ['+13125550100', 'America/Chicago'], // Chicago
  ['+13035550100', 'America/Denver'], // Denver
  ['+16025550100', 'America/Phoenix'], // Phoenix: no daylight saving
  ['+18085550100', 'Pacific/Honolulu'],
  ['+19075550100', 'America/Anchorage'],
  ['+14165550100', 'America/Toronto'], // Toronto
  ['+16045550100', 'America/Vancouver'],
  ['+13065550100', 'America/Regina'], // Saskatchewan: no daylight saving
  ['+17095550100', 'America/St_Johns'], // Newfoundland, UTC−3:30
  ['+18505550100', 'America/Chicago'], // Florida panhandle: Pensacola outnumbers Tallahassee
  ['+12705550100', 'America/Chicago'], // western Kentucky
  ['+14235550100', 'America/New_York'], // Chattanooga, Knoxville
  ['+19155550100', 'America/Denver'], // El Paso
  ['+17875550100', 'America/Puerto_Rico'],
  ['+18765550100', 'America/Jamaica'],
  ['+442079460000', 'Europe/London'],
  ['+4930123456', 'Europe/Berlin'],
  ['+81312345678', 'Asia/Tokyo'],
  ['+33142685300', 'Europe/Paris'],
  ['+919876543210', 'Asia/Kolkata'],
  ['+61212345678', 'Australia/Sydney'],
  ['+5511987654321', 'America/Sao_Paulo'],
  ['+74951234567', 'Europe/Moscow'],
  ['+77012345678', 'Asia/Almaty'], // +7 shared by Russia and Kazakhstan
  ['+525512345678', 'America/Mexico_City'],
  ['+628123456789', 'Asia/Jakarta'],
])('%s rings in %s', (number, zone) => {
  expect(timeZoneForNumber(number)).toBe(zone);
});

it('an unknown area code falls back to the country, non-geographic and malformed numbers to null', () => {
  // 800 is toll-free: no area, so the main zone of the US.
  expect(timeZoneForNumber('+18005550100')).toBe('America/New_York');
  expect(timeZoneForNumber('+80012345678')).toBeNull(); // international freephone
  expect(timeZoneForNumber('2125550100')).toBeNull();
  expect(timeZoneForNumber('+1')).toBeNull();
  expect(timeZoneForNumber('')).toBeNull();
});

it('every country libphonenumber knows has a primary zone the runtime accepts', () => {
  const missing = getCountries().filter((c) => !primaryTimeZoneOfCountry(c));
  expect(missing).toEqual([]);
  const unknown = getCountries()
    .map((c) => primaryTimeZoneOfCountry(c)!)
    .filter((zone) => !zoneIsKnown(zone));
  expect(unknown).toEqual([]);
  expect(primaryTimeZoneOfCountry('gb')).toBe('Europe/London');
  expect(primaryTimeZoneOfCountry('ZZ')).toBeNull();
});

it('every area code libphonenumber accepts in the US or Canada maps to a zone the runtime knows', () => {
  const checked: string[] = [];
  for (let area = 200; area < 1000; area += 1) {
    const parsed = parsePhoneNumberFromString(`+1${area}2345678`);
    if (!parsed?.isValid() || (parsed.country !== 'US' && parsed.country !== 'CA')) continue;
    const zone = timeZoneForNumber(parsed.number);
    expect([area, zone && zoneIsKnown(zone)]).toEqual([area, true]);
    checked.push(String(area));
  }
  expect(checked.length).toBeGreaterThan(350);
});

it('reads time zone names as people type them, and refuses what is not a zone', () => {
  expect(normalizeTimeZone('America/Chicago')).toBe('America/Chicago');
  expect(normalizeTimeZone(' america/chicago ')).toBe('America/Chicago');
  expect(normalizeTimeZone('Europe/Kyiv')).toBe('Europe/Kyiv');
  expect(normalizeTimeZone('utc')).toBe('UTC');
  expect(normalizeTimeZone('US/Eastern')).toBe('US/Eastern');
  for (const bad of ['Mars/Olympus', '', '+05:00', 'GMT+5:30', 'Europe/../etc', 'x'.repeat(80)]) {
    expect(normalizeTimeZone(bad)).toBeUndefined();
  }
});
