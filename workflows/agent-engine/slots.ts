/**
 * Slot parsers: turn what the caller said (speech-to-text output) or typed on the keypad into the
 * typed value a collect node stores. Pure and deterministic: the only clock is `options.now`, so a
 * replayed workflow parses "tomorrow at 3pm" exactly as it did the first time.
 */
import { casual as chrono } from 'chrono-node';
import type { SlotType } from '../../contracts/agent-definition';
import type { SlotValue } from '../../contracts/agent-engine';
import { isTimeZone, offsetMinutes, wallTimeIn, zonedTimeToInstant } from '../../contracts/zoned-time';

export interface SlotParseOptions {
  /** The collect node's choices (choice slots only). */
  choices?: readonly string[];
  /** Reference time, ISO 8601 (the workflow's clock): relative dates resolve against it. */
  now: string;
  /** IANA time zone in which the caller's wall-clock times are meant, e.g. America/New_York. */
  timeZone: string;
}

export type SlotParseResult = { ok: true; value: SlotValue } | { ok: false };

const NO_MATCH: SlotParseResult = { ok: false };
const match = (value: SlotValue): SlotParseResult => ({ ok: true, value });

export function parseSlot(slotType: SlotType, text: string, options: SlotParseOptions): SlotParseResult {
  switch (slotType) {
    case 'text':
      return parseText(text);
    case 'number': {
      const value = parseNumber(text);
      return value === undefined ? NO_MATCH : match(value);
    }
    case 'yes_no': {
      const value = parseYesNo(text);
      return value === undefined ? NO_MATCH : match(value);
    }
    case 'choice': {
      const value = parseChoice(text, options.choices ?? []);
      return value === undefined ? NO_MATCH : match(value);
    }
    case 'datetime': {
      const value = parseDateTime(text, options.now, options.timeZone);
      return value === undefined ? NO_MATCH : match(value);
    }
    case 'phone': {
      const value = parsePhone(text);
      return value === undefined ? NO_MATCH : match(value);
    }
    case 'email': {
      const value = parseEmail(text);
      return value === undefined ? NO_MATCH : match(value);
    }
  }
}

/**
 * Keypad entry: number and phone take the digits, choice a 1-based index, yes_no 1 = yes and 2 = no,
 * text the digits as typed. A trailing `#` (the usual "done" key) is ignored. Date/time and email
 * cannot be typed on a keypad: no match.
 */
export function parseDtmf(
  slotType: SlotType,
  digits: string,
  choices: readonly string[] = [],
): SlotParseResult {
  const keys = digits.replace(/#+$/, '').trim();
  if (!/^[0-9*#]+$/.test(keys)) return NO_MATCH;
  const numeric = keys.replace(/[*#]/g, '');
  switch (slotType) {
    case 'number':
      return numeric ? match(Number(numeric)) : NO_MATCH;
    case 'phone': {
      const phone = toE164(numeric);
      return phone ? match(phone) : NO_MATCH;
    }
    case 'choice': {
      const choice = /^\d+$/.test(keys) ? choices[Number(keys) - 1] : undefined;
      return choice === undefined ? NO_MATCH : match(choice);
    }
    case 'yes_no':
      return keys === '1' ? match(true) : keys === '2' ? match(false) : NO_MATCH;
    case 'text':
      return match(keys);
    case 'datetime':
    case 'email':
      return NO_MATCH;
  }
}

/** A value from outside (a tool's JSON body, the model's `slots`) as a slot: objects become JSON text. */
export function toSlotValue(value: unknown): SlotValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return value.toString();
  try {
    return JSON.stringify(value) ?? null;
  } catch {
    return null;
  }
}

/** Lower case, punctuation as spaces, single spaces: the form phrases are compared in. */
export function normalizeUtterance(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\u2018\u2019`]/g, "'")
    .replace(/[^\p{L}\p{N}'\s]/gu, ' ')
    .replace(/'(?!\p{L})|(?<!\p{L})'/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Whether `phrase` occurs in `text` as whole words, ignoring case and punctuation. */
export function containsPhrase(text: string, phrase: string): boolean {
  const needle = normalizeUtterance(phrase);
  if (!needle) return false;
  return ` ${normalizeUtterance(text)} `.includes(` ${needle} `);
}

// ---------------------------------------------------------------------------------------------
// text

function parseText(text: string): SlotParseResult {
  // Speech-to-text ends sentences with a full stop; "John Smith." is the name "John Smith".
  const value = text
    .trim()
    .replace(/[.!?,;]+$/, '')
    .trim();
  return value ? match(value) : NO_MATCH;
}

// ---------------------------------------------------------------------------------------------
// number

const UNIT_WORDS: Record<string, number> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
};
const TENS_WORDS: Record<string, number> = {
  twenty: 20,
  thirty: 30,
  forty: 40,
  fourty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
};
const SCALE_WORDS: Record<string, number> = { thousand: 1_000, million: 1_000_000, billion: 1_000_000_000 };
const NEGATIVE_WORDS = new Set(['minus', 'negative']);
/** Spoken digits, as in "one oh five" or a phone number read out. */
const DIGIT_WORDS: Record<string, string> = {
  zero: '0',
  oh: '0',
  o: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
};

type NumberToken = { kind: 'literal'; value: number } | { kind: 'word'; word: string };

function numberTokens(text: string): NumberToken[] {
  const cleaned = text
    .toLowerCase()
    .replace(/(\d),(?=\d{3}(?!\d))/g, '$1')
    .replace(/[\u2010-\u2015\u2212]/g, '-');
  const tokens: NumberToken[] = [];
  for (const m of cleaned.matchAll(/(?:(?<![\p{L}\p{N}])-)?(?:\d+(?:\.\d+)?|\.\d+)|\p{L}+/gu)) {
    const raw = m[0];
    tokens.push(/\d/.test(raw) ? { kind: 'literal', value: Number(raw) } : { kind: 'word', word: raw });
  }
  return tokens;
}

const wordOf = (token: NumberToken | undefined): string | undefined =>
  token?.kind === 'word' ? token.word : undefined;
const isCardinalWord = (word: string | undefined): boolean =>
  word !== undefined &&
  (word in UNIT_WORDS || word in TENS_WORDS || word in SCALE_WORDS || word === 'hundred');

/** Where a number starts at `i`, if one does. */
function startsNumber(tokens: readonly NumberToken[], i: number): boolean {
  const token = tokens[i];
  if (!token) return false;
  if (token.kind === 'literal') return true;
  const next = wordOf(tokens[i + 1]);
  if (token.word in UNIT_WORDS || token.word in TENS_WORDS) return true;
  if ((token.word === 'a' || token.word === 'an') && (next === 'hundred' || (next ?? '') in SCALE_WORDS))
    return true;
  if (token.word === 'point') return tokens[i + 1]?.kind === 'literal' || (next ?? '') in DIGIT_WORDS;
  if (NEGATIVE_WORDS.has(token.word)) return startsNumber(tokens, i + 1) && !NEGATIVE_WORDS.has(next ?? '');
  return false;
}

/** Digits read one by one ("one two three", "four oh five"): at least two, nothing else in the run. */
function digitSequence(tokens: readonly NumberToken[], start: number): number | undefined {
  let digits = '';
  let i = start;
  for (; i < tokens.length; i++) {
    const word = wordOf(tokens[i]);
    const digit = word === undefined ? undefined : DIGIT_WORDS[word];
    // "oh"/"o" only count as zero inside a sequence ("four oh five"), never to start one.
    if (digit === undefined || ((word === 'o' || word === 'oh') && digits === '')) break;
    digits += digit;
  }
  if (digits.length < 2 || isCardinalWord(wordOf(tokens[i]))) return undefined;
  return Number(digits);
}

/**
 * The first number in the text: digits ("25", "-3.5", "1,250"), words up to the billions ("twenty
 * five", "three hundred and two", "a thousand"), digits read one by one ("one two three"), with
 * "minus"/"negative" and "point".
 */
export function parseNumber(text: string): number | undefined {
  const tokens = numberTokens(text);
  for (let start = 0; start < tokens.length; start++) {
    if (!startsNumber(tokens, start)) continue;
    let i = start;
    let sign = 1;
    if (NEGATIVE_WORDS.has(wordOf(tokens[i]) ?? '')) {
      sign = -1;
      i++;
    }
    const sequence = digitSequence(tokens, i);
    if (sequence !== undefined) return sign * sequence;

    let total = 0;
    let current = 0;
    let seen = false;
    let last: 'none' | 'unit' | 'teen' | 'tens' | 'hundred' | 'scale' | 'literal' = 'none';
    for (; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (token.kind === 'literal') {
        if (seen) break;
        current = token.value;
        seen = true;
        last = 'literal';
        continue;
      }
      const word = token.word;
      const next = wordOf(tokens[i + 1]);
      if (word === 'and' && seen && isCardinalWord(next) && !((next ?? '') in SCALE_WORDS)) continue;
      if ((word === 'a' || word === 'an') && !seen && (next === 'hundred' || (next ?? '') in SCALE_WORDS)) {
        current = 1;
        seen = true;
        last = 'unit';
        continue;
      }
      const unit = UNIT_WORDS[word];
      const tens = TENS_WORDS[word];
      const scale = SCALE_WORDS[word];
      if (unit !== undefined) {
        if (last === 'unit' || last === 'teen' || last === 'literal' || (last === 'tens' && unit >= 10))
          break;
        current += unit;
        last = unit < 10 ? 'unit' : 'teen';
      } else if (tens !== undefined) {
        // Years and prices read in pairs: "nineteen ninety nine" is 1999.
        if (last === 'teen' && total === 0 && current < 100) current *= 100;
        else if (last === 'unit' || last === 'teen' || last === 'tens' || last === 'literal') break;
        current += tens;
        last = 'tens';
      } else if (word === 'hundred') {
        if (last === 'hundred') break;
        current = (current || 1) * 100;
        last = 'hundred';
      } else if (scale !== undefined) {
        if (last === 'scale') break;
        total += (current || 1) * scale;
        current = 0;
        last = 'scale';
      } else {
        break;
      }
      seen = true;
    }
    let value = total + current;
    // "three point five", "point two five"
    if (wordOf(tokens[i]) === 'point') {
      let fraction = '';
      for (let j = i + 1; j < tokens.length; j++) {
        const token = tokens[j]!;
        const digit =
          token.kind === 'literal'
            ? Number.isInteger(token.value) && token.value >= 0
              ? String(token.value)
              : undefined
            : DIGIT_WORDS[token.word];
        if (digit === undefined) break;
        fraction += digit;
      }
      if (fraction) value += Number(`0.${fraction}`);
    }
    if (!seen && value === 0 && wordOf(tokens[i]) !== 'point') continue;
    return sign * value;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// yes / no

/** Negations that contain a "yes" word, and hedges that are neither: checked first. */
const NEGATED_PHRASES = [
  'of course not',
  'absolutely not',
  'definitely not',
  'certainly not',
  'not really',
  'not right',
  'not correct',
  "that's not",
  'that is not',
  "i don't think so",
  "don't",
  'dont',
  'do not',
  'no way',
  'not at all',
  'rather not',
];
const UNSURE_PHRASES = [
  'not sure',
  "i'm not sure",
  "don't know",
  'dont know',
  'maybe',
  'perhaps',
  'not certain',
];
const YES_PHRASES = [
  'yes',
  'yeah',
  'yea',
  'ya',
  'yep',
  'yup',
  'yes please',
  'sure',
  'correct',
  'right',
  "that's right",
  'affirmative',
  'of course',
  'please do',
  'absolutely',
  'definitely',
  'certainly',
  'indeed',
  'ok',
  'okay',
  'go ahead',
  'sounds good',
  'true',
  'uh huh',
  'mhm',
  'i think so',
  'i guess so',
  'that works',
];
/** Affirmatives that start with "no". */
const NO_AS_YES = /\bno (problem|worries)\b/g;
const NO_PHRASES = [
  'no',
  'nope',
  'nah',
  'negative',
  'wrong',
  'incorrect',
  'never',
  'false',
  'no thanks',
  'no thank you',
];

/** The earliest position at which one of the phrases occurs as whole words, or -1. */
function firstPhraseAt(normalized: string, phrases: readonly string[]): number {
  const padded = ` ${normalized} `;
  let best = -1;
  for (const phrase of phrases) {
    const at = padded.indexOf(` ${phrase} `);
    if (at >= 0 && (best < 0 || at < best)) best = at;
  }
  return best;
}

export function parseYesNo(text: string): boolean | undefined {
  const normalized = normalizeUtterance(text).replace(NO_AS_YES, 'okay');
  if (!normalized) return undefined;
  if (firstPhraseAt(normalized, UNSURE_PHRASES) >= 0) return undefined;
  if (firstPhraseAt(normalized, NEGATED_PHRASES) >= 0) return false;
  const yes = firstPhraseAt(normalized, YES_PHRASES);
  const no = firstPhraseAt(normalized, NO_PHRASES);
  if (yes < 0 && no < 0) return undefined;
  if (no < 0) return true;
  if (yes < 0) return false;
  // Both ("no, yes I do" / "yes, no problem"): the caller's first word decides.
  return yes < no;
}

// ---------------------------------------------------------------------------------------------
// choice

const ORDINALS: Record<string, number> = {
  first: 1,
  second: 2,
  third: 3,
  fourth: 4,
  fifth: 5,
  sixth: 6,
  seventh: 7,
  eighth: 8,
  ninth: 9,
  tenth: 10,
};
const CHOICE_FILLER = new Set([
  'the',
  'a',
  'option',
  'number',
  'choice',
  'please',
  "i'll",
  'take',
  'want',
  'pick',
]);

/**
 * A choice, returned as written in the definition: the utterance equals a choice, contains exactly
 * one (the longest wins when one contains another: "dark red" over "red"), is part of exactly one
 * ("haircut" for "Haircut and beard trim"), or names one by position ("the second one", "2",
 * "option three", "the last one").
 */
export function parseChoice(text: string, choices: readonly string[]): string | undefined {
  const said = normalizeUtterance(text);
  if (!said || choices.length === 0) return undefined;
  const normalized = choices.map((choice) => normalizeUtterance(choice));

  const exact = normalized.indexOf(said);
  if (exact >= 0) return choices[exact];

  const contained = normalized
    .map((choice, index) => ({ choice, index }))
    .filter(({ choice }) => choice && ` ${said} `.includes(` ${choice} `));
  const maximal = contained.filter(
    ({ choice }) =>
      !contained.some((other) => other.choice !== choice && ` ${other.choice} `.includes(` ${choice} `)),
  );
  const distinct = new Set(maximal.map(({ choice }) => choice));
  if (distinct.size === 1) return choices[maximal[0]!.index];
  if (distinct.size > 1) return undefined;

  if (said.length >= 3) {
    const within = normalized
      .map((choice, index) => ({ choice, index }))
      .filter(({ choice }) => ` ${choice} `.includes(` ${said} `));
    if (within.length === 1) return choices[within[0]!.index];
  }

  const position = choicePosition(said, choices.length);
  return position === undefined ? undefined : choices[position - 1];
}

function choicePosition(said: string, count: number): number | undefined {
  const words = said.split(' ');
  for (const word of words) {
    if (word === 'last') return count;
    const ordinal = ORDINALS[word] ?? (/^\d+(st|nd|rd|th)$/.test(word) ? parseInt(word, 10) : undefined);
    if (ordinal !== undefined) return ordinal >= 1 && ordinal <= count ? ordinal : undefined;
  }
  // A bare number, possibly with filler: "2", "number two", "option 3".
  const rest = words.filter((word) => !CHOICE_FILLER.has(word));
  if (
    rest.length === 0 ||
    !rest.every((word) => /^\d+$/.test(word) || word in UNIT_WORDS || word in TENS_WORDS)
  )
    return undefined;
  const value = parseNumber(rest.join(' '));
  return value !== undefined && Number.isInteger(value) && value >= 1 && value <= count ? value : undefined;
}

// ---------------------------------------------------------------------------------------------
// date / time

/**
 * chrono-node parses the phrase against `now`, with wall-clock times meant in `timeZone`. The result
 * is ISO 8601 with that zone's offset at that instant ("2025-03-07T15:00:00-05:00"), or a plain date
 * ("2025-03-07") when the caller named a day but no time. An hour from 1 to 6 without am/pm is taken
 * as afternoon ("tomorrow at 3" is 15:00): callers book appointments, not 3 a.m. slots.
 */
export function parseDateTime(text: string, now: string, timeZone: string): string | undefined {
  const reference = new Date(now);
  if (Number.isNaN(reference.getTime()) || !text.trim()) return undefined;
  const zone = validTimeZone(timeZone);
  // Some of chrono's parsers read the reference through the machine's local clock, whatever zone
  // they are told. So chrono gets a reference whose local clock shows the caller's wall time, and
  // works in wall time throughout: the machine's own zone never leaks in, and every worker agrees.
  const wall = wallTimeIn(reference, zone);
  const localReference = new Date(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  const result = chrono.parse(text, localReference, { forwardDate: true })[0];
  if (!result) return undefined;
  const start = result.start;
  const year = start.get('year');
  const month = start.get('month');
  const day = start.get('day');
  if (year === null || month === null || day === null) return undefined;
  if (!start.isCertain('hour')) return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;

  const minute = start.get('minute') ?? 0;
  const second = start.get('second') ?? 0;
  let hour = start.get('hour') ?? 0;
  const tags = result.tags();
  const relative = tags.has('result/relativeDateAndTime') || tags.has('casualReference/now');
  const namedOffset = start.isCertain('timezoneOffset') && !relative ? start.get('timezoneOffset') : null;
  if (namedOffset !== null) {
    // The caller named a zone ("3pm EST"): that wall time there.
    const instant = Date.UTC(year, month - 1, day, hour, minute, second) - namedOffset * 60_000;
    return formatInZone(new Date(instant), zone);
  }
  const afternoon = !start.isCertain('meridiem') && !relative && hour >= 1 && hour <= 6;
  if (afternoon) hour += 12;
  let instant = zonedTimeToInstant({ year, month, day, hour, minute, second }, zone);
  // forwardDate moved "at 3" (read as 3 a.m.) to tomorrow; as 3 p.m. it may still be today.
  const dayNamed = start.isCertain('day') || start.isCertain('weekday');
  if (afternoon && !dayNamed && instant - 86_400_000 > reference.getTime()) instant -= 86_400_000;
  return formatInZone(new Date(instant), zone);
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** "Thursday 2025-03-06 09:00 (America/New_York)": the caller's local time, for the model. */
export function describeLocalTime(now: string, timeZone: string): string {
  const instant = new Date(now);
  if (Number.isNaN(instant.getTime())) return now;
  const zone = validTimeZone(timeZone);
  const wall = wallTimeIn(instant, zone);
  const weekday = WEEKDAYS[new Date(Date.UTC(wall.year, wall.month - 1, wall.day)).getUTCDay()]!;
  return `${weekday} ${pad(wall.year, 4)}-${pad(wall.month)}-${pad(wall.day)} ${pad(wall.hour)}:${pad(wall.minute)} (${zone})`;
}

function validTimeZone(timeZone: string): string {
  return isTimeZone(timeZone) ? timeZone : 'UTC';
}

function formatInZone(instant: Date, timeZone: string): string {
  const wall = wallTimeIn(instant, timeZone);
  const offset = offsetMinutes(instant, timeZone);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return (
    `${pad(wall.year, 4)}-${pad(wall.month)}-${pad(wall.day)}T${pad(wall.hour)}:${pad(wall.minute)}:${pad(wall.second)}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

// ---------------------------------------------------------------------------------------------
// phone

/**
 * A phone number in E.164: digits with +, spaces, dashes, dots and parentheses, or read out ("five
 * five five, one two three, four five six seven", "double five"). Ten digits are a North American
 * number (+1); eleven starting with 1 likewise; a leading + (or 00 / 011) keeps the country code.
 */
export function parsePhone(text: string): string | undefined {
  const words = text
    .toLowerCase()
    .replace(/[\u2010-\u2015\u2212]/g, '-')
    .split(/[\s,;:()\-.]+/)
    .filter(Boolean);
  let out = '';
  let repeat = 1;
  for (const word of words) {
    if (word === 'double' || word === 'triple') {
      repeat = word === 'double' ? 2 : 3;
      continue;
    }
    const spoken = DIGIT_WORDS[word];
    if (spoken !== undefined) {
      out += spoken.repeat(repeat);
    } else if (word === 'plus') {
      out += '+';
    } else if (/^\+?\d+$/.test(word)) {
      out += word.length === 1 ? word.repeat(repeat) : word;
    } else if (/\d/.test(word)) {
      out += word.replace(/[^\d+]/g, '');
    }
    repeat = 1;
  }
  const plus = out.startsWith('+');
  if (out.lastIndexOf('+') > 0) return undefined;
  let digits = out.replace(/\D/g, '');
  if (!plus && digits.startsWith('011')) return internationalNumber(digits.slice(3));
  if (!plus && digits.startsWith('00')) return internationalNumber(digits.slice(2));
  if (plus) return internationalNumber(digits);
  if (digits.length === 11 && digits.startsWith('1')) digits = digits.slice(1);
  return toE164(digits);
}

function internationalNumber(digits: string): string | undefined {
  return /^[1-9]\d{6,14}$/.test(digits) ? `+${digits}` : undefined;
}

/** Ten digits (North American, area code 2-9xx) or eleven starting with 1 → +1…; else no match. */
function toE164(digits: string): string | undefined {
  const national = digits.length === 11 && digits.startsWith('1') ? digits.slice(1) : digits;
  return /^[2-9]\d{9}$/.test(national) ? `+1${national}` : undefined;
}

// ---------------------------------------------------------------------------------------------
// email

const EMAIL =
  /^[a-z0-9](?:[a-z0-9._%+-]*[a-z0-9_%+-])?@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}$/;
const EMAIL_IN_TEXT = /[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}/;
const SPOKEN_SYMBOLS: Record<string, string> = {
  dot: '.',
  period: '.',
  point: '.',
  underscore: '_',
  dash: '-',
  hyphen: '-',
  minus: '-',
  plus: '+',
};

/**
 * An email address, written ("john.smith@example.com") or spoken ("john dot smith at example dot
 * com", "j o h n at gmail dot com"). Lower-cased.
 */
export function parseEmail(text: string): string | undefined {
  const lower = text.toLowerCase().trim();
  const written = EMAIL_IN_TEXT.exec(lower.replace(/\s*@\s*/g, '@'))?.[0]?.replace(/\.+$/, '');
  if (written && EMAIL.test(written)) return written;

  const tokens = lower
    .replace(/[,;:!?"]/g, ' ')
    .split(/\s+/)
    .map((token) => token.replace(/^\.+|\.+$/g, ''))
    .filter(Boolean);
  const at = tokens.lastIndexOf('at');
  if (at <= 0) return undefined;

  const isSymbol = (token: string | undefined) => token !== undefined && token in SPOKEN_SYMBOLS;
  const isPart = (token: string | undefined) =>
    token !== undefined && /^[a-z0-9._%+-]+$/.test(token) && !isSymbol(token);

  // Local part, read backwards from "at": a word, then more words joined by spoken symbols, or
  // letters and digits spelled one by one.
  let i = at - 1;
  if (!isPart(tokens[i])) return undefined;
  const local: string[] = [tokens[i]!];
  const spelled = (token: string | undefined) => token !== undefined && /^[a-z0-9]$/.test(token);
  let spelling = spelled(tokens[i]);
  i--;
  while (i >= 0) {
    const token = tokens[i];
    if (isSymbol(token) && isPart(tokens[i - 1])) {
      local.unshift(tokens[i - 1]!, SPOKEN_SYMBOLS[token!]!);
      spelling = spelled(tokens[i - 1]);
      i -= 2;
    } else if (spelling && spelled(token)) {
      local.unshift(token!);
      i--;
    } else {
      break;
    }
  }

  // Domain, read forwards: labels joined by "dot".
  let j = at + 1;
  if (!isPart(tokens[j])) return undefined;
  const domain: string[] = [tokens[j]!];
  j++;
  while (j < tokens.length) {
    const token = tokens[j];
    if (isSymbol(token) && isPart(tokens[j + 1])) {
      domain.push(SPOKEN_SYMBOLS[token!]!, tokens[j + 1]!);
      j += 2;
    } else {
      break;
    }
  }
  const email = `${local.join('')}@${domain.join('')}`;
  return EMAIL.test(email) ? email : undefined;
}
