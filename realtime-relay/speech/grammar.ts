/**
 * Listening hints → speech recognition grammar, and recognised words → text the slot parsers read.
 *
 * pocketsphinx with its general language model transcribes telephone audio badly; constrained by a
 * JSGF grammar of what the current node expects (a yes/no, a number, a date, one of the choices, a
 * global intent's phrase) it is reliable. pocketsphinx refuses a grammar with a word missing from
 * its pronunciation dictionary, so phrases with unknown words are dropped.
 *
 * Recognisers emit spoken forms ("tomorrow at three p m"); the agent engine's parsers (chrono-node
 * for dates) want written ones ("tomorrow at 3 pm"): `normalizeTranscript` bridges the two.
 */
import { readFile } from 'node:fs/promises';
import type { ListeningHints } from '../../contracts/agent-engine';

// ---------------------------------------------------------------------------------------------
// dictionary

const dictionaries = new Map<string, Promise<Set<string>>>();

/** The words of a CMU-format pronunciation dictionary (`word PH ON ES`, variants `word(2)`); cached. */
export function loadDictionaryWords(dictPath: string): Promise<Set<string>> {
  let words = dictionaries.get(dictPath);
  if (!words) {
    words = readFile(dictPath, 'utf8').then((text) => {
      const set = new Set<string>();
      for (const line of text.split('\n')) {
        const end = line.search(/\s/);
        const head = end < 0 ? line : line.slice(0, end);
        if (head) set.add(head.replace(/\(\d+\)$/, ''));
      }
      return set;
    });
    // A failed read is not cached: the next call tries again.
    words.catch(() => dictionaries.delete(dictPath));
    dictionaries.set(dictPath, words);
  }
  return words;
}

// ---------------------------------------------------------------------------------------------
// grammar

/** Lower case, words only: "That's right!" → "that's right", "e-mail" → "e mail". */
export function normalizePhrase(phrase: string): string {
  return phrase
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .replace(/[^\p{L}\p{N}']+/gu, ' ')
    .split(' ')
    .map((word) => word.replace(/^'+|'+$/g, ''))
    .filter(Boolean)
    .join(' ');
}

const UNITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const TEENS = [
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const HOURS = [...UNITS.slice(1), 'ten', 'eleven', 'twelve'];
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const ORDINALS = [
  'first',
  'second',
  'third',
  'fourth',
  'fifth',
  'sixth',
  'seventh',
  'eighth',
  'ninth',
  'tenth',
];

const YES_NO = [
  'yes',
  'yeah',
  'yep',
  'yes please',
  'yes it is',
  'yes that is right',
  'sure',
  'correct',
  'right',
  "that's right",
  "that's correct",
  'of course',
  'absolutely',
  'okay',
  'no',
  'nope',
  'no thanks',
  'no thank you',
  'not really',
  "that's wrong",
  "i don't think so",
];
/** Words too common to stand for a choice on their own ("and" in "haircut and beard trim"). */
const CHOICE_STOPWORDS = new Set([
  'a',
  'an',
  'and',
  'or',
  'the',
  'of',
  'with',
  'to',
  'for',
  'in',
  'on',
  'at',
]);

/**
 * Collects JSGF rules, keeping only the alternatives whose words the dictionary knows and whose rule
 * references were defined (with at least one alternative) before.
 */
class GrammarBuilder {
  private readonly rules: string[] = [];
  private readonly defined = new Set<string>();

  constructor(private readonly dictionary: Set<string>) {}

  /** Defines `<name>`; returns whether any alternative survived. */
  define(name: string, alternatives: Iterable<string>): boolean {
    const kept = [...new Set(alternatives)].filter((alt) => this.valid(alt));
    if (kept.length === 0) return false;
    this.rules.push(`<${name}> = ${kept.join(' | ')};`);
    this.defined.add(name);
    return true;
  }

  has(name: string): boolean {
    return this.defined.has(name);
  }

  render(topRule: string): string {
    const rules = this.rules.map((rule) => (rule.startsWith(`<${topRule}>`) ? `public ${rule}` : rule));
    return ['#JSGF V1.0;', '', 'grammar parley;', '', ...rules, ''].join('\n');
  }

  private valid(alternative: string): boolean {
    for (const ref of alternative.matchAll(/<([a-z_]+)>/g)) if (!this.defined.has(ref[1]!)) return false;
    const words = alternative
      .replace(/<[a-z_]+>/g, ' ')
      .replace(/[[\]()|+*]/g, ' ')
      .split(/\s+/)
      .filter(Boolean);
    if (words.length === 0 && !/<[a-z_]+>/.test(alternative)) return false;
    return words.every((word) => this.dictionary.has(word));
  }
}

/** A phrase as one JSGF alternative, or undefined when normalising leaves nothing. */
function phrase(text: string): string | undefined {
  const normalized = normalizePhrase(text);
  return normalized || undefined;
}

function defineNumbers(g: GrammarBuilder): void {
  g.define('digit', UNITS.slice(1));
  g.define('teen', TEENS);
  g.define('tens', TENS);
  g.define('below_hundred', ['zero', '<digit>', '<teen>', '<tens> [<digit>]']);
  g.define('below_thousand', ['<below_hundred>', '[<digit> | a] hundred [[and] <below_hundred>]']);
  g.define('number', ['<below_thousand>', '[<below_thousand> | a] thousand [[and] <below_thousand>]']);
}

function defineDigitString(g: GrammarBuilder): void {
  g.define('plain_digit', [...UNITS, 'oh']);
  g.define('spoken_digit', ['<plain_digit>', 'double <plain_digit>']);
  g.define('digit_string', ['<spoken_digit>+']);
}

function defineDateTime(g: GrammarBuilder): void {
  g.define('hour', HOURS);
  g.define('minutes', ["o'clock", 'fifteen', 'thirty', 'forty five']);
  g.define('period', ['a m', 'p m', 'in the morning', 'in the afternoon', 'in the evening']);
  g.define('clock', ['<hour> [<minutes>] [<period>]', 'noon', 'midnight']);
  g.define('time', ['[at | around] <clock>']);
  g.define('weekday', WEEKDAYS);
  g.define('day', [
    'today',
    'tonight',
    'tomorrow',
    'the day after tomorrow',
    'this (morning | afternoon | evening)',
    'tomorrow (morning | afternoon | evening)',
    '[on | next | this] <weekday>',
    'next week',
  ]);
  g.define('datetime', ['<day> [<time>]', '<time> [<day>]']);
}

/** Choices as said: each whole, its distinctive words, and "the second one" style positions. */
function choiceAlternatives(choices: readonly string[]): string[] {
  const out: string[] = [];
  for (const choice of choices) {
    const normalized = phrase(choice);
    if (!normalized) continue;
    out.push(normalized);
    for (const word of normalized.split(' ')) if (!CHOICE_STOPWORDS.has(word)) out.push(word);
  }
  for (const ordinal of ORDINALS.slice(0, Math.min(choices.length, ORDINALS.length))) {
    out.push(`the ${ordinal} one`, `the ${ordinal}`);
  }
  if (choices.length > 1) out.push('the last one');
  return out;
}

/**
 * A JSGF grammar for what the node expects, always including the global intents' phrases; undefined
 * when the slot is free text (text, email) or nothing recognisable remains, so the caller uses the
 * general language model.
 */
export function buildJsgf(hints: ListeningHints, dictionary: Set<string>): string | undefined {
  if (hints.slotType === 'text' || hints.slotType === 'email') return undefined;
  const g = new GrammarBuilder(dictionary);
  const top: string[] = [];
  switch (hints.slotType) {
    case 'yes_no':
      if (g.define('yes_no', YES_NO)) top.push('<yes_no>');
      break;
    case 'choice':
      if (g.define('choice', choiceAlternatives(hints.choices ?? []))) {
        g.define('choice_lead', ["i'd like", 'i want', "i'll take", "i'll have"]);
        top.push(g.has('choice_lead') ? '[<choice_lead>] <choice> [please]' : '<choice> [please]');
      }
      break;
    case 'number':
      defineNumbers(g);
      if (g.has('number')) top.push('<number>');
      break;
    case 'datetime':
      defineDateTime(g);
      if (g.has('datetime')) top.push('<datetime>');
      break;
    case 'phone':
      defineDigitString(g);
      if (g.has('digit_string')) top.push('<digit_string>');
      break;
    case undefined:
      break;
  }
  if (
    g.define(
      'intent',
      hints.intentPhrases.map(phrase).filter((p): p is string => p !== undefined),
    )
  ) {
    top.push('<intent>');
  }
  if (top.length === 0) return undefined;
  g.define('utterance', top);
  return g.render('utterance');
}

// ---------------------------------------------------------------------------------------------
// inverse text normalisation

const UNIT_VALUES: Record<string, number> = Object.fromEntries(
  [...UNITS, ...TEENS].map((word, value) => [word, value]),
);
const TENS_VALUES: Record<string, number> = {
  ...Object.fromEntries(TENS.map((word, i) => [word, (i + 2) * 10])),
  fourty: 40,
};
const SCALE_VALUES: Record<string, number> = { thousand: 1_000, million: 1_000_000, billion: 1_000_000_000 };
const HOUR_VALUES: Record<string, number> = Object.fromEntries(HOURS.map((word, i) => [word, i + 1]));
/** Digits read one by one; "oh" only inside a sequence ("one oh five"). */
const DIGIT_VALUES: Record<string, string> = {
  ...Object.fromEntries(UNITS.map((w, i) => [w, String(i)])),
  oh: '0',
};
/** Words before a time: "at three thirty" is a time, "three thirty" alone may not be. */
const TIME_PREPOSITIONS = new Set([
  'at',
  'around',
  'about',
  'by',
  'before',
  'after',
  'until',
  'till',
  'from',
]);
/** Words after a time that make it one: "three thirty tomorrow". */
const TIME_FOLLOWERS = new Set(['today', 'tonight', 'tomorrow']);
/** "the one", "this one", "no one": the pronoun, not the number. */
const ONE_AS_PRONOUN_AFTER = new Set([
  'the',
  'this',
  'that',
  'which',
  'no',
  'any',
  'every',
  'each',
  'some',
  'another',
  'other',
  'first',
  'last',
  'next',
  'right',
  'left',
  'same',
  'only',
]);

const has = (table: Record<string, unknown>, word: string | undefined): boolean =>
  word !== undefined && Object.prototype.hasOwnProperty.call(table, word);

interface Replacement {
  text: string;
  /** Index of the first word after the replaced run. */
  end: number;
}

/**
 * Spoken numbers and times → written ones, leaving every other word (and the text's punctuation and
 * case) alone: "tomorrow at three p m" → "tomorrow at 3 pm", "three thirty pm" → "3:30 pm", "twenty
 * five" → "25", "one hundred and five" → "105", "five five five one two" → "55512", "at three
 * o'clock" → "at 3". "one" as a pronoun ("the one on the left", "someone") stays.
 */
export function normalizeTranscript(text: string): string {
  // Odd indices are words, even indices the separators around them.
  const parts = text.split(/([\p{L}]+(?:'[\p{L}]+)*)/u);
  const words: string[] = [];
  const lower: string[] = [];
  const seps: string[] = [];
  for (let i = 1; i < parts.length; i += 2) {
    words.push(parts[i]!);
    lower.push(parts[i]!.toLowerCase());
    seps.push(parts[i + 1] ?? '');
  }
  const n = words.length;
  const w = (i: number): string | undefined => (i >= 0 && i < n ? lower[i] : undefined);
  /** Whether words i and i+1 belong to one spoken number (a space or a hyphen between them). */
  const joined = (i: number): boolean => i + 1 < n && /^[\s-]+$/.test(seps[i]!);

  function meridiem(j: number): { period: string; end: number } | undefined {
    const word = w(j);
    if (!joined(j - 1)) return undefined;
    if (word === 'am' || word === 'pm') return { period: word, end: j + 1 };
    // "a m", "a.m", "p. m": the recogniser's and written forms.
    if ((word === 'a' || word === 'p') && w(j + 1) === 'm' && /^\.?\s*$/.test(seps[j]!)) {
      return { period: `${word}m`, end: j + 2 };
    }
    return undefined;
  }

  function matchTime(k: number): Replacement | undefined {
    const hour = HOUR_VALUES[w(k) ?? ''];
    if (hour === undefined) return undefined;
    let j = k + 1;
    let minutes: number | undefined;
    let oclock = false;
    if (joined(j - 1)) {
      const word = w(j);
      if (word === "o'clock") {
        oclock = true;
        j += 1;
      } else if (word === 'oh' && joined(j) && (DIGIT_VALUES[w(j + 1) ?? ''] ?? '0') !== '0') {
        minutes = Number(DIGIT_VALUES[w(j + 1)!]);
        j += 2;
      } else if (has(UNIT_VALUES, word) && UNIT_VALUES[word!]! >= 10) {
        minutes = UNIT_VALUES[word!];
        j += 1;
      } else if (has(TENS_VALUES, word) && TENS_VALUES[word!]! <= 50) {
        minutes = TENS_VALUES[word!]!;
        j += 1;
        const unit = UNIT_VALUES[w(j) ?? ''];
        if (joined(j - 1) && unit !== undefined && unit >= 1 && unit <= 9) {
          minutes += unit;
          j += 1;
        }
      }
    }
    const period = meridiem(j);
    if (period) j = period.end;
    const next = w(j);
    const inTimeContext =
      oclock ||
      period !== undefined ||
      TIME_PREPOSITIONS.has(w(k - 1) ?? '') ||
      TIME_FOLLOWERS.has(next ?? '') ||
      (next === 'in' && w(j + 1) === 'the' && /^(morning|afternoon|evening)$/.test(w(j + 2) ?? ''));
    // "at three hundred" is a number after all.
    const continuesNumber = joined(j - 1) && (next === 'hundred' || has(SCALE_VALUES, next));
    if (!inTimeContext || continuesNumber) return undefined;
    const clock = minutes === undefined ? String(hour) : `${hour}:${String(minutes).padStart(2, '0')}`;
    return { text: period ? `${clock} ${period.period}` : clock, end: j };
  }

  function matchDigitSequence(k: number): Replacement | undefined {
    if (w(k) === 'oh' || !has(DIGIT_VALUES, w(k))) return undefined;
    let digits = DIGIT_VALUES[w(k)!]!;
    let j = k + 1;
    while (joined(j - 1) && has(DIGIT_VALUES, w(j))) digits += DIGIT_VALUES[w(j++)!]!;
    // "two hundred", "five twenty": cardinals, read by matchCardinal.
    const next = w(j);
    const cardinalNext =
      joined(j - 1) &&
      (has(UNIT_VALUES, next) || has(TENS_VALUES, next) || next === 'hundred' || has(SCALE_VALUES, next));
    if (digits.length < 2 || cardinalNext) return undefined;
    return { text: digits, end: j };
  }

  /** Cardinals as the slot parser reads them (parseNumber), with "and" only after hundred/thousand. */
  function matchCardinal(k: number): Replacement | undefined {
    let total = 0;
    let current = 0;
    let last: 'none' | 'unit' | 'teen' | 'tens' | 'hundred' | 'scale' = 'none';
    let end = k;
    for (let j = k; j < n; j++) {
      if (j > k && !joined(j - 1)) break;
      const word = w(j)!;
      const next = w(j + 1);
      const nextIsScale = next === 'hundred' || has(SCALE_VALUES, next);
      if (word === 'and' && (last === 'hundred' || last === 'scale') && joined(j)) {
        if (has(UNIT_VALUES, next) || has(TENS_VALUES, next)) continue;
        break;
      }
      if ((word === 'a' || word === 'an') && last === 'none' && nextIsScale && joined(j)) {
        current = 1;
        last = 'unit';
        continue;
      }
      if (has(UNIT_VALUES, word)) {
        const unit = UNIT_VALUES[word]!;
        if (
          last === 'unit' ||
          last === 'teen' ||
          (last === 'tens' && unit >= 10) ||
          (unit === 0 && last !== 'none')
        )
          break;
        current += unit;
        last = unit < 10 ? 'unit' : 'teen';
      } else if (has(TENS_VALUES, word)) {
        // Years and prices read in pairs: "nineteen ninety nine" is 1999.
        if (last === 'teen' && total === 0 && current < 100) current *= 100;
        else if (last === 'unit' || last === 'teen' || last === 'tens') break;
        current += TENS_VALUES[word]!;
        last = 'tens';
      } else if (word === 'hundred') {
        if (last === 'hundred' || last === 'none') break;
        current *= 100;
        last = 'hundred';
      } else if (has(SCALE_VALUES, word)) {
        if (last === 'scale' || last === 'none') break;
        total += current * SCALE_VALUES[word]!;
        current = 0;
        last = 'scale';
      } else {
        break;
      }
      end = j + 1;
    }
    if (end === k) return undefined;
    let text = String(total + current);
    // "three point five"
    if (w(end) === 'point' && joined(end - 1) && joined(end) && has(DIGIT_VALUES, w(end + 1))) {
      let fraction = '';
      let j = end + 1;
      for (; has(DIGIT_VALUES, w(j)) && joined(j - 1); j++) fraction += DIGIT_VALUES[w(j)!]!;
      text += `.${fraction}`;
      end = j;
    } else if (end === k + 1 && w(k) === 'one' && ONE_AS_PRONOUN_AFTER.has(w(k - 1) ?? '')) {
      return undefined;
    }
    return { text, end };
  }

  let out = parts[0] ?? '';
  for (let k = 0; k < n;) {
    const replacement = matchTime(k) ?? matchDigitSequence(k) ?? matchCardinal(k);
    if (replacement) {
      out += replacement.text + seps[replacement.end - 1]!;
      k = replacement.end;
    } else {
      out += words[k]! + seps[k]!;
      k += 1;
    }
  }
  // Written digits from the recogniser or an earlier pass: "3 p m" → "3 pm", "3 o'clock" → "3".
  return out
    .replace(
      /\b(\d{1,2}(?::\d{2})?)\s*([ap])\.?\s?m\b/gi,
      (_m, time: string, p: string) => `${time} ${p.toLowerCase()}m`,
    )
    .replace(/\b(\d{1,2})\s+o['\u2019]?clock\b/gi, '$1');
}
