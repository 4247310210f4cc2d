/** Phone numbers as people type them, read in a region's conventions and stored as E.164. */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

/**
 * `+14155552671` for "(415) 555-2671" in region US, or undefined when the text is not a valid
 * number there (wrong length, unassigned range, letters).
 */
export function toE164(input: string, defaultRegion: string): string | undefined {
  const parsed = parsePhoneNumberFromString(input, defaultRegion.toUpperCase() as CountryCode);
  return parsed?.isValid() ? parsed.number : undefined;
}
