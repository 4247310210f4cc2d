/** Slot parsers: many ways callers say the same thing, and things that must not parse. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { SlotType } from '../contracts/agent-definition';
import { parseDtmf, parseSlot } from '../workflows/agent-engine';

const NOW = '2025-03-06T14:00:00.000Z'; // Thursday 6 March 2025, 09:00 in New York (EST, UTC-5)
const options = { now: NOW, timeZone: 'America/New_York' };
const parse = (
  type: SlotType,
  text: string,
  extra: { choices?: string[]; now?: string; timeZone?: string } = {},
) => parseSlot(type, text, { ...options, ...extra });
const value = (
  type: SlotType,
  text: string,
  extra?: { choices?: string[]; now?: string; timeZone?: string },
) => {
  const result = parse(type, text, extra);
  return result.ok ? result.value : undefined;
};

describe('text', () => {
  it.each([
    ['Grace Hopper', 'Grace Hopper'],
    ['  Grace Hopper.  ', 'Grace Hopper'],
    ['Is it ready?', 'Is it ready'],
    ['42', '42'],
  ])('%p → %p', (text, expected) => {
    expect(parse('text', text)).toEqual({ ok: true, value: expected });
  });

  it.each(['', '   ', '...', '\n\t'])('rejects %p', (text) => {
    expect(parse('text', text)).toEqual({ ok: false });
  });
});

describe('number', () => {
  it.each([
    ['42', 42],
    ['  7 ', 7],
    ['I have 3 kids', 3],
    ['-12', -12],
    ['3.75', 3.75],
    ['.5', 0.5],
    ['1,250', 1250],
    ['1,250,000.5', 1250000.5],
    ['$25', 25],
    ['zero', 0],
    ['seven', 7],
    ['twelve', 12],
    ['twenty five', 25],
    ['twenty-five', 25],
    ['Ninety nine', 99],
    ['a hundred', 100],
    ['one hundred', 100],
    ['three hundred and two', 302],
    ['four hundred twenty', 420],
    ['a thousand', 1000],
    ['two thousand five hundred', 2500],
    ['twelve thousand three hundred forty five', 12345],
    ['one hundred twenty three thousand four hundred fifty six', 123456],
    ['two million', 2_000_000],
    ['twenty five hundred', 2500],
    ['5 thousand', 5000],
    ['minus five', -5],
    ['negative twenty', -20],
    ['three point five', 3.5],
    ['point two five', 0.25],
    ['one two three', 123],
    ['four oh five', 405],
    ['nineteen ninety nine', 1999],
    ['um, about fifteen I think', 15],
    ['party of six please', 6],
  ])('%p → %p', (text, expected) => {
    expect(parse('number', text)).toEqual({ ok: true, value: expected });
  });

  it.each(['', 'none', 'no idea', 'a few', 'lots', 'oh well', 'minus', 'point', 'hundreds of them'])(
    'rejects %p',
    (text) => {
      expect(parse('number', text)).toEqual({ ok: false });
    },
  );
});

describe('yes_no', () => {
  it.each([
    'yes',
    'Yes.',
    'YES!',
    'yeah',
    'yep',
    'yup',
    'sure',
    'Sure thing',
    'correct',
    "that's right",
    'right',
    'affirmative',
    'of course',
    'please do',
    'yes please',
    'absolutely',
    'definitely',
    'okay',
    'ok go ahead',
    'sounds good',
    'uh huh',
    'No problem',
    'I think so',
    'yeah that works for me',
  ])('%p → yes', (text) => {
    expect(parse('yes_no', text)).toEqual({ ok: true, value: true });
  });

  it.each([
    'no',
    'No.',
    'nope',
    'nah',
    'negative',
    'not really',
    'wrong',
    "that's wrong",
    'no thanks',
    'No thank you',
    'of course not',
    'absolutely not',
    "that's not right",
    'that is not correct',
    "I don't think so",
    "please don't",
    'no way',
    'incorrect',
    'never',
    'no, yes', // the first word decides
  ])('%p → no', (text) => {
    expect(parse('yes_no', text)).toEqual({ ok: true, value: false });
  });

  it.each(['', 'maybe', "I'm not sure", "I don't know", 'banana', 'perhaps later', 'what?'])(
    'rejects %p',
    (text) => {
      expect(parse('yes_no', text)).toEqual({ ok: false });
    },
  );
});

describe('choice', () => {
  const services = ['Haircut', 'Beard trim', 'Haircut and beard trim'];
  it.each([
    ['haircut', 'Haircut'],
    ['HAIRCUT.', 'Haircut'],
    ['Just a haircut please', 'Haircut'],
    ['a beard trim', 'Beard trim'],
    ["I'd like the haircut and beard trim", 'Haircut and beard trim'],
    ['the first one', 'Haircut'],
    ['the second one', 'Beard trim'],
    ['the 2nd', 'Beard trim'],
    ['third', 'Haircut and beard trim'],
    ['the last one', 'Haircut and beard trim'],
    ['2', 'Beard trim'],
    ['number three', 'Haircut and beard trim'],
    ['option 1', 'Haircut'],
    ['one', 'Haircut'],
  ])('%p → %p', (text, expected) => {
    expect(parse('choice', text, { choices: services })).toEqual({ ok: true, value: expected });
  });

  it('returns the choice as written in the definition', () => {
    expect(value('choice', 'check up', { choices: ['Cleaning', 'Check Up', 'Emergency'] })).toBe('Check Up');
    expect(value('choice', 'café', { choices: ['Café', 'Bar'] })).toBe('Café');
  });

  it('prefers a choice named in words over a position', () => {
    expect(value('choice', '2', { choices: ['1 person', '2 people', '3 people'] })).toBe('2 people');
    expect(value('choice', 'the second one', { choices: ['1 person', '2 people', '3 people'] })).toBe(
      '2 people',
    );
  });

  it('matches a word that belongs to exactly one choice', () => {
    expect(value('choice', 'cleaning', { choices: ['Teeth cleaning', 'Check-up'] })).toBe('Teeth cleaning');
  });

  it.each([
    ['', services],
    ['a massage', services],
    ['haircut or beard trim', services], // two different choices
    ['beard', services], // part of two choices
    ['the fifth one', services],
    ['7', services],
    ['zero', services],
    ['anything', []],
  ])('rejects %p', (text, choices) => {
    expect(parse('choice', text, { choices })).toEqual({ ok: false });
  });
});

describe('datetime', () => {
  it.each([
    ['tomorrow at 3pm', '2025-03-07T15:00:00-05:00'],
    ['Tomorrow at 3 PM.', '2025-03-07T15:00:00-05:00'],
    ['tomorrow at 3', '2025-03-07T15:00:00-05:00'], // an hour without am/pm up to 6 is afternoon
    ['tomorrow at 9', '2025-03-07T09:00:00-05:00'],
    ['tomorrow at 8am', '2025-03-07T08:00:00-05:00'],
    ['next Monday at 10:30', '2025-03-10T10:30:00-04:00'], // daylight saving time began on 9 March
    ['Monday at 2:15 pm', '2025-03-10T14:15:00-04:00'],
    ['Friday at 9 in the morning', '2025-03-07T09:00:00-05:00'],
    ['3pm', '2025-03-06T15:00:00-05:00'],
    ['at 3', '2025-03-06T15:00:00-05:00'],
    ['8am', '2025-03-07T08:00:00-05:00'], // 8 a.m. today has passed: the next one
    ['at noon on March 12', '2025-03-12T12:00:00-04:00'],
    ['in two hours', '2025-03-06T11:00:00-05:00'],
    ['in 30 minutes', '2025-03-06T09:30:00-05:00'],
    ['can we do the day after tomorrow at 4:45pm?', '2025-03-08T16:45:00-05:00'],
    ['tomorrow at 3pm PST', '2025-03-07T18:00:00-05:00'],
  ])('%p → %p', (text, expected) => {
    expect(parse('datetime', text)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['tomorrow', '2025-03-07'],
    ['next Monday', '2025-03-10'],
    ['on Friday', '2025-03-07'],
    ['March 20th', '2025-03-20'],
    ['January 5', '2026-01-05'], // forward: the next 5 January
  ])('%p (no time) → the date %p', (text, expected) => {
    expect(parse('datetime', text)).toEqual({ ok: true, value: expected });
  });

  it('resolves against the reference time, not the machine clock', () => {
    expect(value('datetime', 'tomorrow at 10am', { now: '2030-12-31T12:00:00Z', timeZone: 'UTC' })).toBe(
      '2031-01-01T10:00:00+00:00',
    );
  });

  it('means wall-clock times in the call time zone', () => {
    const when = { now: '2025-07-01T12:00:00Z' };
    expect(value('datetime', 'tomorrow at 3pm', { ...when, timeZone: 'Europe/Berlin' })).toBe(
      '2025-07-02T15:00:00+02:00',
    );
    expect(value('datetime', 'tomorrow at 3pm', { ...when, timeZone: 'Asia/Kolkata' })).toBe(
      '2025-07-02T15:00:00+05:30',
    );
    expect(value('datetime', 'tomorrow at 3pm', { ...when, timeZone: 'UTC' })).toBe(
      '2025-07-02T15:00:00+00:00',
    );
    // At 20:00 UTC it is already 05:00 on 2 July in Tokyo.
    expect(
      value('datetime', 'tomorrow at 9am', { now: '2025-07-01T20:00:00Z', timeZone: 'Asia/Tokyo' }),
    ).toBe('2025-07-03T09:00:00+09:00');
  });

  it('falls back to UTC for an unknown time zone', () => {
    expect(value('datetime', 'tomorrow at 3pm', { timeZone: 'Mars/Olympus_Mons' })).toBe(
      '2025-03-07T15:00:00+00:00',
    );
  });

  it('gives an instant that Date parses back', () => {
    const parsed = value('datetime', 'next Monday at 10:30') as string;
    expect(new Date(parsed).toISOString()).toBe('2025-03-10T14:30:00.000Z');
  });

  it('answers the same on every machine, whatever its own time zone (workers must agree on replay)', () => {
    const phrases = [
      'the day after tomorrow at 4:45pm',
      'tomorrow at 3',
      'next Monday at 10:30',
      'in two hours',
      'Friday',
    ];
    const script = `
      const { parseSlot } = require('./workflows/agent-engine');
      const phrases = ${JSON.stringify(phrases)};
      process.stdout.write(JSON.stringify(phrases.map((p) => parseSlot('datetime', p, ${JSON.stringify(options)}))));`;
    const outputs = ['UTC', 'Pacific/Chatham', 'America/Los_Angeles'].map((tz) => {
      const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
        cwd: path.resolve(__dirname, '..'),
        env: { ...process.env, TZ: tz },
        encoding: 'utf8',
      });
      expect(run.stderr).not.toMatch(/Error/);
      return JSON.parse(run.stdout) as unknown;
    });
    expect(outputs[0]).toEqual(phrases.map((p) => parse('datetime', p)));
    expect(outputs[1]).toEqual(outputs[0]);
    expect(outputs[2]).toEqual(outputs[0]);
  });

  it.each(['', 'whenever', 'as soon as possible', 'I am not sure', 'blue'])('rejects %p', (text) => {
    expect(parse('datetime', text)).toEqual({ ok: false });
  });

  it('rejects everything when the reference time is not a date', () => {
    expect(parse('datetime', 'tomorrow', { now: 'not a date' })).toEqual({ ok: false });
  });
});

describe('phone', () => {
  it.each([
    ['4155550100', '+14155550100'],
    ['(415) 555-0100', '+14155550100'],
    ['415-555-0100', '+14155550100'],
    ['415.555.0100', '+14155550100'],
    ['415 555 0100', '+14155550100'],
    ['1-415-555-0100', '+14155550100'],
    ['+1 (415) 555-0100', '+14155550100'],
    ['+44 20 7946 0958', '+442079460958'],
    ['+33 1 23 45 67 89', '+33123456789'],
    ['0044 20 7946 0958', '+442079460958'],
    ['011 44 20 7946 0958', '+442079460958'],
    ['my number is 415 555 0100', '+14155550100'],
    ['four one five five five five zero one zero zero', '+14155550100'],
    ['four one five, five five five, oh one oh oh', '+14155550100'],
    ['four one five triple five zero one double zero', '+14155550100'],
    ['plus four four two zero seven nine four six zero nine five eight', '+442079460958'],
  ])('%p → %p', (text, expected) => {
    expect(parse('phone', text)).toEqual({ ok: true, value: expected });
  });

  it.each([
    '',
    'call me maybe',
    '555-0100',
    '12345',
    '0155550100',
    '415 555 0100 22',
    '+0 123 4567',
    '+1 2',
    '415+5550100',
  ])('rejects %p', (text) => {
    expect(parse('phone', text)).toEqual({ ok: false });
  });
});

describe('email', () => {
  it.each([
    ['john@example.com', 'john@example.com'],
    ['John.Smith@Example.COM', 'john.smith@example.com'],
    ['my email is john.smith@example.com.', 'john.smith@example.com'],
    ['john @ example.com', 'john@example.com'],
    ['john dot smith at example dot com', 'john.smith@example.com'],
    ['It is John Dot Smith at Example Dot Com', 'john.smith@example.com'],
    ['john.smith at example.com', 'john.smith@example.com'],
    ['j o h n at gmail dot com', 'john@gmail.com'],
    ['mary underscore jones at acme dot co dot uk please', 'mary_jones@acme.co.uk'],
    ['anne dash marie at my dash company dot org', 'anne-marie@my-company.org'],
    ['bob plus news at example dot com', 'bob+news@example.com'],
    ['sales 2024 at example dot io', '2024@example.io'],
    ['sure, it is pat at example dot com, thanks', 'pat@example.com'],
  ])('%p → %p', (text, expected) => {
    expect(parse('email', text)).toEqual({ ok: true, value: expected });
  });

  it.each([
    '',
    'not telling',
    'john at example',
    'at example dot com',
    'john at',
    'john@',
    '@example.com',
    'john at example dot c',
  ])('rejects %p', (text) => {
    expect(parse('email', text)).toEqual({ ok: false });
  });
});

describe('keypad (DTMF)', () => {
  it.each([
    ['number', '42', 42],
    ['number', '42#', 42],
    ['number', '007', 7],
    ['phone', '4155550100', '+14155550100'],
    ['phone', '14155550100#', '+14155550100'],
    ['yes_no', '1', true],
    ['yes_no', '2', false],
    ['text', '98765', '98765'],
  ] as const)('%s %p → %p', (type, digits, expected) => {
    expect(parseDtmf(type, digits)).toEqual({ ok: true, value: expected });
  });

  it('picks a choice by its 1-based position', () => {
    expect(parseDtmf('choice', '1', ['A', 'B'])).toEqual({ ok: true, value: 'A' });
    expect(parseDtmf('choice', '2#', ['A', 'B'])).toEqual({ ok: true, value: 'B' });
  });

  it.each([
    ['choice', '0'],
    ['choice', '3'],
    ['yes_no', '3'],
    ['yes_no', '12'],
    ['datetime', '1'],
    ['email', '1'],
    ['phone', '555'],
    ['number', '#'],
    ['number', 'abc'],
  ] as const)('rejects %s %p', (type, digits) => {
    expect(parseDtmf(type, digits, ['A', 'B'])).toEqual({ ok: false });
  });
});
