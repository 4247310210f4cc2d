/**
 * The agent engine as pure code: flows driven event by event, the way the call workflow drives them.
 * No Temporal, no database: same inputs, same steps.
 */
import {
  agentDefinitionSchema,
  type AgentDefinition,
  type AgentDefinitionInput,
} from '../contracts/agent-definition';
import {
  COMPLETE_STEP_TOOL,
  type EngineContext,
  type EngineEffect,
  type EngineEvent,
  type EngineState,
  type EngineStep,
} from '../contracts/agent-engine';
import type { LlmResult, ToolCall } from '../contracts/llm';
import {
  MAX_TRANSITIONS_PER_ADVANCE,
  advanceEngine,
  evaluateSlotCondition,
  interpolate,
  interpolateArgs,
  listeningHints,
  startEngine,
} from '../workflows/agent-engine';

const ctx: EngineContext = {
  now: '2025-03-06T14:00:00.000Z', // a Thursday, 09:00 in New York
  timeZone: 'America/New_York',
  contact: { firstName: 'Ada', company: 'Parley Dental', address: { city: 'Boston' } },
  call: { from: '+14155550100', to: '+14155550199', direction: 'inbound', channel: 'voice' },
};

const define = (input: AgentDefinitionInput): AgentDefinition => agentDefinitionSchema.parse(input);

const tool = (name: string, description = `The ${name} tool`) => ({
  name,
  description,
  url: `https://tenant.example.com/${name}`,
  signingSecret: 'a-signing-secret-of-length',
  parameters: { type: 'object' as const, properties: { date: { type: 'string' } } },
});

/** Drives one call through the engine, as the call workflow would. */
class Conversation {
  step: EngineStep;
  readonly steps: EngineStep[] = [];
  constructor(
    readonly def: AgentDefinition,
    readonly context: EngineContext = ctx,
  ) {
    this.step = startEngine(def, context);
    this.steps.push(this.step);
  }
  get state(): EngineState {
    return this.step.state;
  }
  send(event: EngineEvent): EngineStep {
    this.step = advanceEngine(this.def, this.step.state, event, this.context);
    this.steps.push(this.step);
    return this.step;
  }
  say(text: string): EngineStep {
    return this.send({ type: 'user_input', text });
  }
}

const spoken = (step: EngineStep) =>
  step.effects.flatMap((effect) => (effect.type === 'say' ? [effect.text] : []));
const final = (step: EngineStep): EngineEffect => step.effects.at(-1)!;
const finalOf = <T extends EngineEffect['type']>(step: EngineStep, type: T) => {
  const effect = final(step);
  expect(effect.type).toBe(type);
  return effect as Extract<EngineEffect, { type: T }>;
};

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// An appointment-booking flow: greet → name → date/time → confirm → branch → end.

const bookingInput: AgentDefinitionInput = {
  greeting: 'Hi {{contact.firstName}}, thanks for calling {{contact.company}}.',
  globalIntents: [{ id: 'human', phrases: ['talk to a human', 'operator', 'agent'], target: 'to_human' }],
  flow: {
    startNodeId: 'ask_name',
    nodes: [
      { id: 'ask_name', type: 'collect', slot: 'name', slotType: 'text', prompt: 'Who am I speaking with?' },
      {
        id: 'ask_time',
        type: 'collect',
        slot: 'when',
        slotType: 'datetime',
        prompt: 'When would you like to come in, {{slots.name}}?',
        noMatchPrompt: 'Sorry {{slots.name}}, which day and time would suit you?',
      },
      {
        id: 'confirm',
        type: 'collect',
        slot: 'confirmed',
        slotType: 'yes_no',
        prompt: 'So that is {{slots.when}} for {{slots.name}}. Shall I book it?',
      },
      { id: 'decide', type: 'branch' },
      {
        id: 'booked',
        type: 'end',
        disposition: 'booked',
        message: "You're booked, {{slots.name}}. Goodbye!",
      },
      { id: 'not_booked', type: 'end', disposition: 'not_booked', message: 'No problem. Goodbye.' },
      { id: 'to_human', type: 'transfer', to: '+14155550123', message: 'Connecting you to a person now.' },
    ],
    edges: [
      { id: 'e1', source: 'ask_name', target: 'ask_time' },
      { id: 'e2', source: 'ask_time', target: 'confirm' },
      { id: 'e3', source: 'confirm', target: 'decide' },
      {
        id: 'e4',
        source: 'decide',
        target: 'booked',
        when: { kind: 'slot', slot: 'confirmed', op: 'eq', value: true },
      },
      { id: 'e5', source: 'decide', target: 'not_booked' },
    ],
  },
};
const booking = define(bookingInput);
const INTENT_PHRASES = ['talk to a human', 'operator', 'agent'];

describe('appointment booking flow', () => {
  it('greets, then asks the first question and waits with listening hints', () => {
    const step = startEngine(booking, ctx);
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'ask_name', text: 'Hi Ada, thanks for calling Parley Dental.' },
      { type: 'say', nodeId: 'ask_name', text: 'Who am I speaking with?' },
      {
        type: 'await_input',
        nodeId: 'ask_name',
        hints: { nodeId: 'ask_name', slotType: 'text', intentPhrases: INTENT_PHRASES },
      },
    ]);
    expect(step.state).toEqual({ nodeId: 'ask_name', slots: {}, attempts: 0, done: false });
  });

  it('books on "yes": every answer lands in its slot and the branch picks the booked end', () => {
    const call = new Conversation(booking);
    let step = call.say('Grace Hopper.');
    expect(spoken(step)).toEqual(['When would you like to come in, Grace Hopper?']);
    expect(finalOf(step, 'await_input').hints.slotType).toBe('datetime');

    step = call.say('tomorrow at 3pm');
    expect(step.state.slots).toEqual({ name: 'Grace Hopper', when: '2025-03-07T15:00:00-05:00' });
    // Stored exactly (ISO 8601), said as a person would, in the caller's zone.
    expect(spoken(step)).toEqual([
      'So that is Friday, March 7 at 3:00 PM for Grace Hopper. Shall I book it?',
    ]);

    step = call.say('Yes please');
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'booked', text: "You're booked, Grace Hopper. Goodbye!" },
      { type: 'end', nodeId: 'booked', disposition: 'booked' },
    ]);
    expect(step.state).toEqual({
      nodeId: 'booked',
      slots: { name: 'Grace Hopper', when: '2025-03-07T15:00:00-05:00', confirmed: true },
      attempts: 0,
      done: true,
    });
    for (const effect of call.steps.flatMap((s) => s.effects))
      expect(effect.nodeId).toEqual(expect.any(String));
  });

  it('takes the default edge on "no"', () => {
    const call = new Conversation(booking);
    call.say('Grace');
    call.say('next Monday at 10:30');
    expect(call.state.slots.when).toBe('2025-03-10T10:30:00-04:00'); // after the switch to daylight time
    const step = call.say('no thanks');
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'not_booked', text: 'No problem. Goodbye.' },
      { type: 'end', nodeId: 'not_booked', disposition: 'not_booked' },
    ]);
    expect(step.state.slots.confirmed).toBe(false);
  });

  it("reprompts with the node's own no-match prompt, interpolated", () => {
    const call = new Conversation(booking);
    call.say('Grace');
    const step = call.say('whenever really');
    expect(spoken(step)).toEqual(['Sorry Grace, which day and time would suit you?']);
    expect(step.state).toMatchObject({ nodeId: 'ask_time', attempts: 1 });
    expect(final(step).type).toBe('await_input');
  });

  it('is deterministic: the same inputs give deep-equal steps, and inputs are never mutated', () => {
    const script: EngineEvent[] = [
      { type: 'user_input', text: 'Grace' },
      { type: 'user_input', text: 'hmm' },
      { type: 'no_input' },
      { type: 'user_input', text: 'Friday at 9 in the morning' },
      { type: 'dtmf', digits: '1' },
    ];
    const run = () => {
      const def = deepFreeze(define(bookingInput));
      const context = deepFreeze(structuredClone(ctx));
      const steps = [startEngine(def, context)];
      for (const event of script)
        steps.push(advanceEngine(def, deepFreeze(steps.at(-1)!.state), deepFreeze(event), context));
      return steps;
    };
    const first = run();
    expect(run()).toEqual(first);
    expect(final(first.at(-1)!)).toEqual({ type: 'end', nodeId: 'booked', disposition: 'booked' });
  });

  it('continues from a state that went through JSON (continue-as-new, query results)', () => {
    const call = new Conversation(booking);
    call.say('Grace');
    const revived = JSON.parse(JSON.stringify(call.state)) as EngineState;
    const step = advanceEngine(booking, revived, { type: 'user_input', text: 'tomorrow at 3pm' }, ctx);
    expect(step.state.nodeId).toBe('confirm');
  });
});

// ---------------------------------------------------------------------------------------------

describe('collect nodes', () => {
  const collectFlow = (node: Record<string, unknown>, withFailureEdge: boolean) =>
    define({
      greeting: 'Hello.',
      flow: {
        startNodeId: 'ask',
        nodes: [
          { id: 'ask', type: 'collect', slot: 'answer', prompt: 'Your answer?', ...node } as never,
          { id: 'next', type: 'end', disposition: 'collected' },
          { id: 'gave_up', type: 'end', disposition: 'gave_up', message: 'Let us try another time.' },
        ],
        edges: [
          { id: 'ok', source: 'ask', target: 'next' },
          ...(withFailureEdge
            ? [{ id: 'fail', source: 'ask', target: 'gave_up', when: { kind: 'failure' as const } }]
            : []),
        ],
      },
    });

  it('reprompts with a sensible default and counts attempts, then follows the failure edge', () => {
    const call = new Conversation(collectFlow({ slotType: 'number' }, true));
    let step = call.say('no idea');
    expect(spoken(step)).toEqual(["Sorry, I didn't catch that. Your answer?"]);
    expect(step.state.attempts).toBe(1);
    step = call.say('still no idea');
    expect(step.state.attempts).toBe(2);
    step = call.say('really, none');
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'gave_up', text: 'Let us try another time.' },
      { type: 'end', nodeId: 'gave_up', disposition: 'gave_up' },
    ]);
    expect(step.state).toMatchObject({ nodeId: 'gave_up', attempts: 0, done: true });
  });

  it('ends the call as failed, naming the node, when there is no failure edge', () => {
    const call = new Conversation(collectFlow({ slotType: 'number', maxAttempts: 2 }, false));
    call.say('pass');
    const step = call.say('pass again');
    const end = finalOf(step, 'end');
    expect(end).toMatchObject({ nodeId: 'ask', disposition: 'failed' });
    expect(end.reason).toContain('"ask"');
    expect(end.reason).toContain('2 attempts');
    expect(step.state.done).toBe(true);
  });

  it('gives up after a single failure when maxAttempts is 1', () => {
    const call = new Conversation(collectFlow({ slotType: 'yes_no', maxAttempts: 1 }, true));
    expect(final(call.say('purple')).nodeId).toBe('gave_up');
  });

  it('counts no_input like no-match, with the no-input prompt', () => {
    const call = new Conversation(
      collectFlow({ slotType: 'text', noInputPrompt: 'Are you still there? {{contact.firstName}}?' }, true),
    );
    let step = call.send({ type: 'no_input' });
    expect(spoken(step)).toEqual(['Are you still there? Ada?']);
    expect(step.state.attempts).toBe(1);
    step = call.say('   '); // an empty transcript is silence too
    expect(spoken(step)).toEqual(['Are you still there? Ada?']);
    step = call.send({ type: 'no_input' });
    expect(final(step)).toEqual({ type: 'end', nodeId: 'gave_up', disposition: 'gave_up' });
  });

  it('uses a default no-input prompt, and no_input and no-match share one attempt budget', () => {
    const call = new Conversation(collectFlow({ slotType: 'number' }, false));
    expect(spoken(call.send({ type: 'no_input' }))).toEqual(["Sorry, I didn't hear anything. Your answer?"]);
    call.say('dunno');
    expect(finalOf(call.send({ type: 'no_input' }), 'end').disposition).toBe('failed');
  });

  it('resets attempts on success', () => {
    const call = new Conversation(collectFlow({ slotType: 'number' }, true));
    call.say('hmm');
    const step = call.say('forty two');
    expect(step.state).toEqual({ nodeId: 'next', slots: { answer: 42 }, attempts: 0, done: true });
  });

  it.each([
    ['number', '42#', 42],
    ['number', '0', 0],
    ['phone', '4155550100#', '+14155550100'],
    ['yes_no', '1', true],
    ['yes_no', '2', false],
    ['text', '12345', '12345'],
  ] as const)('fills a %s slot from DTMF %s', (slotType, digits, value) => {
    const call = new Conversation(collectFlow({ slotType }, true));
    expect(call.send({ type: 'dtmf', digits }).state.slots).toEqual({ answer: value });
  });

  it('fills a choice slot from a 1-based DTMF index', () => {
    const call = new Conversation(
      collectFlow({ slotType: 'choice', choices: ['Cleaning', 'Check-up', 'Emergency'] }, true),
    );
    expect(call.state.slots).toEqual({});
    expect(call.send({ type: 'dtmf', digits: '3' }).state.slots).toEqual({ answer: 'Emergency' });
  });

  it.each([
    ['choice', '4'],
    ['yes_no', '3'],
    ['datetime', '1'],
    ['email', '2'],
    ['phone', '555'],
  ] as const)('treats DTMF that does not fit a %s slot (%s) as a no-match', (slotType, digits) => {
    const call = new Conversation(collectFlow({ slotType, choices: ['A', 'B', 'C'] }, true));
    const step = call.send({ type: 'dtmf', digits });
    expect(step.state).toMatchObject({ nodeId: 'ask', attempts: 1 });
    expect(final(step).type).toBe('await_input');
  });

  it('lists choices in the listening hints', () => {
    const def = collectFlow({ slotType: 'choice', choices: ['Cleaning', 'Check-up'] }, true);
    const call = new Conversation(def);
    const hints = { nodeId: 'ask', slotType: 'choice', choices: ['Cleaning', 'Check-up'], intentPhrases: [] };
    expect(finalOf(call.step, 'await_input').hints).toEqual(hints);
    expect(listeningHints(def, call.state)).toEqual(hints);
    expect(call.say('a check up please').state.slots).toEqual({ answer: 'Check-up' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('global intents', () => {
  it('jump from a collect node before the answer is parsed', () => {
    const call = new Conversation(booking);
    const step = call.say('Can I talk to a HUMAN, please?');
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'to_human', text: 'Connecting you to a person now.' },
      { type: 'transfer', nodeId: 'to_human', to: '+14155550123', disposition: 'transferred' },
    ]);
    expect(step.state).toEqual({ nodeId: 'to_human', slots: {}, attempts: 0, done: true });
  });

  it('match whole words only', () => {
    const call = new Conversation(booking);
    expect(call.say('Reagent Smith').state.slots).toEqual({ name: 'Reagent Smith' });
    expect(final(call.say('OPERATOR!')).type).toBe('transfer');
  });

  it('take the first intent in definition order, from any collect node, and may target any node', () => {
    const def = define({
      ...bookingInput,
      globalIntents: [
        { id: 'restart', phrases: ['start over'], target: 'ask_name' },
        { id: 'human', phrases: ['start over with a human'], target: 'to_human' },
      ],
    });
    const call = new Conversation(def);
    call.say('Grace');
    call.say('nope');
    const step = call.say('can we start over with a human');
    expect(step.state).toEqual({ nodeId: 'ask_name', slots: { name: 'Grace' }, attempts: 0, done: false });
    expect(spoken(step)).toEqual(['Who am I speaking with?']);
  });

  it('end the call as failed when the target node does not exist', () => {
    const def = define({
      ...bookingInput,
      globalIntents: [{ id: 'x', phrases: ['help'], target: 'nowhere' }],
    });
    const end = finalOf(new Conversation(def).say('help'), 'end');
    expect(end).toMatchObject({ disposition: 'failed', nodeId: 'ask_name' });
    expect(end.reason).toContain('"nowhere"');
  });
});

// ---------------------------------------------------------------------------------------------

describe('branch nodes', () => {
  const branchFlow = (
    slotType: 'number' | 'text' | 'yes_no',
    edges: Record<string, unknown>[],
    withDefault = true,
  ) =>
    define({
      greeting: 'Hi.',
      flow: {
        startNodeId: 'ask',
        nodes: [
          { id: 'ask', type: 'collect', slot: 'x', slotType, prompt: 'Go on.' },
          { id: 'route', type: 'branch' },
          ...['a', 'b', 'c', 'fallback'].map((id) => ({ id, type: 'end' as const, disposition: id })),
        ],
        edges: [
          { id: 'in', source: 'ask', target: 'route' },
          ...edges.map((when, i) => ({
            id: `w${i}`,
            source: 'route',
            target: ['a', 'b', 'c'][i]!,
            when: { kind: 'slot', slot: 'x', ...when },
          })),
          ...(withDefault ? [{ id: 'otherwise', source: 'route', target: 'fallback' }] : []),
        ] as never,
      },
    });
  const route = (def: AgentDefinition, text: string) =>
    finalOf(new Conversation(def).say(text), 'end').disposition;

  it('compares numbers numerically and takes the first matching edge in order', () => {
    const def = branchFlow('number', [
      { op: 'gte', value: 100 },
      { op: 'gt', value: 9 },
      { op: 'eq', value: '5' },
    ]);
    expect(route(def, 'a hundred')).toBe('a');
    expect(route(def, '10')).toBe('b'); // 10 > 9 numerically, although "10" < "9" as text
    expect(route(def, 'five')).toBe('c');
    expect(route(def, 'three')).toBe('fallback');
  });

  it('compares strings case-insensitively; contains, neq', () => {
    const def = branchFlow('text', [
      { op: 'eq', value: 'gold' },
      { op: 'contains', value: 'SILVER' },
      { op: 'neq', value: 'bronze' },
    ]);
    expect(route(def, 'GOLD')).toBe('a');
    expect(route(def, 'the silver plan')).toBe('b');
    expect(route(def, 'platinum')).toBe('c');
    expect(route(def, 'Bronze')).toBe('fallback');
  });

  it('compares booleans strictly', () => {
    const def = branchFlow('yes_no', [
      { op: 'eq', value: 'true' },
      { op: 'eq', value: false },
    ]);
    expect(route(def, 'yes')).toBe('fallback'); // true is not the string "true"
    expect(route(def, 'no')).toBe('b');
  });

  it('ends the call as failed, naming the node, when nothing matches and there is no default edge', () => {
    const def = branchFlow('number', [{ op: 'lt', value: 0 }], false);
    const end = finalOf(new Conversation(def).say('7'), 'end');
    expect(end).toMatchObject({ nodeId: 'route', disposition: 'failed' });
    expect(end.reason).toContain('"route"');
  });

  describe('operators', () => {
    const slots = { n: 10, s: 'Hello World', t: '42', yes: true, no: false, empty: '', nothing: null };
    const check = (slot: string, op: string, value?: string | number | boolean) =>
      evaluateSlotCondition(
        { kind: 'slot', slot, op: op as never, ...(value !== undefined ? { value } : {}) },
        slots,
      );

    it.each([
      ['n', 'eq', 10, true],
      ['n', 'eq', '10', true],
      ['n', 'eq', '10.0', true],
      ['n', 'neq', 11, true],
      ['n', 'gt', 9.5, true],
      ['n', 'gt', 10, false],
      ['n', 'gte', 10, true],
      ['n', 'lt', 100, true],
      ['n', 'lte', 9, false],
      ['t', 'gt', 5, true],
      ['t', 'lt', '100', true],
      ['s', 'eq', 'hello world', true],
      ['s', 'eq', '  HELLO WORLD ', true],
      ['s', 'neq', 'hello', true],
      ['s', 'contains', 'o w', true],
      ['s', 'contains', 'xyz', false],
      ['s', 'gt', 'apple', true],
      ['s', 'lt', 'apple', false],
      ['n', 'contains', 1, true],
      ['yes', 'eq', true, true],
      ['yes', 'eq', 'true', false],
      ['yes', 'eq', 1, false],
      ['no', 'eq', false, true],
      ['no', 'neq', true, true],
      ['yes', 'gt', false, false],
      ['yes', 'contains', 'true', false],
      ['n', 'is_set', undefined, true],
      ['no', 'is_set', undefined, true],
      ['empty', 'is_set', undefined, false],
      ['nothing', 'is_set', undefined, false],
      ['missing', 'is_set', undefined, false],
      ['missing', 'is_not_set', undefined, true],
      ['empty', 'is_not_set', undefined, true],
      ['n', 'is_not_set', undefined, false],
      ['missing', 'eq', 'x', false],
      ['missing', 'neq', 'x', true],
      ['missing', 'gt', 0, false],
      ['missing', 'lt', 0, false],
      ['missing', 'contains', 'x', false],
      ['n', 'eq', undefined, false],
    ])('%s %s %p → %p', (slot, op, value, expected) => {
      expect(check(slot, op, value as never)).toBe(expected);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('tool nodes', () => {
  const toolFlow = (opts: { resultSlot?: boolean; failureEdge?: boolean; toolName?: string } = {}) =>
    define({
      greeting: 'Welcome.',
      tools: [tool('check_availability')],
      flow: {
        startNodeId: 'guests',
        nodes: [
          { id: 'guests', type: 'collect', slot: 'guests', slotType: 'number', prompt: 'How many guests?' },
          {
            id: 'check',
            type: 'tool',
            tool: opts.toolName ?? 'check_availability',
            message: 'One moment, {{contact.firstName}}.',
            ...(opts.resultSlot === false ? {} : { resultSlot: 'availability' }),
            args: {
              guests: '{{slots.guests}}',
              note: 'Party of {{slots.guests}} for {{contact.firstName}}',
              caller: '{{call.from}}',
              city: '{{ contact.address.city }}',
              nested: { list: ['{{slots.guests}}', 'x'], deep: { who: '{{contact.firstName}}' } },
              missing: '{{slots.nope}}',
              fixed: 5,
              flag: true,
            },
          },
          {
            id: 'report',
            type: 'say',
            text: 'Status: {{slots.availability.status}}, first slot {{slots.availability.slots.0}}.',
          },
          { id: 'done', type: 'end', disposition: 'checked' },
          { id: 'sorry', type: 'end', disposition: 'tool_failed', message: 'Our system is down.' },
        ],
        edges: [
          { id: 'e1', source: 'guests', target: 'check' },
          { id: 'e2', source: 'check', target: 'report' },
          { id: 'e3', source: 'report', target: 'done' },
          ...(opts.failureEdge
            ? [{ id: 'f', source: 'check', target: 'sorry', when: { kind: 'failure' as const } }]
            : []),
        ],
      },
    });

  it('says its message, then calls the tool with interpolated, typed arguments', () => {
    const step = new Conversation(toolFlow()).say('four');
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'check', text: 'One moment, Ada.' },
      {
        type: 'call_tool',
        nodeId: 'check',
        tool: 'check_availability',
        args: {
          guests: 4,
          note: 'Party of 4 for Ada',
          caller: '+14155550100',
          city: 'Boston',
          nested: { list: [4, 'x'], deep: { who: 'Ada' } },
          missing: null,
          fixed: 5,
          flag: true,
        },
      },
    ]);
    expect(step.state).toEqual({ nodeId: 'check', slots: { guests: 4 }, attempts: 0, done: false });
  });

  it('stores an object result as JSON text in resultSlot, which later templates can reach into', () => {
    const call = new Conversation(toolFlow());
    call.say('4');
    const step = call.send({
      type: 'tool_result',
      ok: true,
      status: 200,
      body: { status: 'open', slots: ['9:00', '10:00'] },
    });
    expect(step.state.slots.availability).toBe('{"status":"open","slots":["9:00","10:00"]}');
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'report', text: 'Status: open, first slot 9:00.' },
      { type: 'end', nodeId: 'done', disposition: 'checked' },
    ]);
  });

  it.each([
    ['a string', 'open', 'open'],
    ['a number', 3, 3],
    ['a boolean', false, false],
    ['null', null, null],
    ['nothing', undefined, null],
    ['an array', [1, 2], '[1,2]'],
  ])('stores %s as a slot value', (_label, body, stored) => {
    const call = new Conversation(toolFlow());
    call.say('4');
    expect(call.send({ type: 'tool_result', ok: true, body }).state.slots.availability).toEqual(stored);
  });

  it('stores nothing without a resultSlot and follows the default edge', () => {
    const call = new Conversation(toolFlow({ resultSlot: false }));
    call.say('4');
    const step = call.send({ type: 'tool_result', ok: true, body: { status: 'open' } });
    expect(step.state.slots).toEqual({ guests: 4 });
    expect(final(step)).toEqual({ type: 'end', nodeId: 'done', disposition: 'checked' });
  });

  it('follows the failure edge when the tool fails', () => {
    const call = new Conversation(toolFlow({ failureEdge: true }));
    call.say('4');
    const step = call.send({ type: 'tool_result', ok: false, status: 503, body: null, error: 'HTTP 503' });
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'sorry', text: 'Our system is down.' },
      { type: 'end', nodeId: 'sorry', disposition: 'tool_failed' },
    ]);
    expect(step.state.slots).toEqual({ guests: 4 });
  });

  it('ends the call as failed, with the error, when the tool fails and there is no failure edge', () => {
    const call = new Conversation(toolFlow());
    call.say('4');
    const end = finalOf(
      call.send({ type: 'tool_result', ok: false, status: 500, body: null, error: 'boom' }),
      'end',
    );
    expect(end).toMatchObject({ nodeId: 'check', disposition: 'failed' });
    expect(end.reason).toContain('boom');
    expect(end.reason).toContain('"check"');
  });

  it('treats a tool missing from the definition as a failure', () => {
    const call = new Conversation(toolFlow({ toolName: 'ghost', failureEdge: true }));
    expect(final(call.say('4'))).toEqual({ type: 'end', nodeId: 'sorry', disposition: 'tool_failed' });
  });

  it('answers an event it is not waiting for with the pending call, changing nothing', () => {
    const call = new Conversation(toolFlow());
    const waiting = call.say('4');
    const step = call.say('hello?');
    expect(step.state).toEqual(waiting.state);
    expect(step.effects).toEqual([waiting.effects[1]]);
  });
});

// ---------------------------------------------------------------------------------------------
// llm nodes

const llmInput = (
  overrides: { llm?: boolean; maxTurns?: number; failureEdge?: boolean } = {},
): AgentDefinitionInput => ({
  greeting: 'Hello, this is Robin.',
  persona: { systemPrompt: 'You are Robin, the receptionist of {{contact.company}}.' },
  ...(overrides.llm === false ? {} : { llm: { model: 'test-model', temperature: 0.2 } }),
  knowledge: [{ title: 'Opening hours', content: 'Monday to Friday, 9 to 5.' }],
  tools: [
    tool('check_availability', 'Free slots on a date'),
    tool('book_appointment', 'Books a slot'),
    tool('secret_tool'),
  ],
  globalIntents: [{ id: 'human', phrases: ['speak to a person'], target: 'to_human' }],
  flow: {
    startNodeId: 'ask_name',
    nodes: [
      { id: 'ask_name', type: 'collect', slot: 'name', slotType: 'text', prompt: 'Your name?' },
      {
        id: 'triage',
        type: 'llm',
        goal: 'Find out what {{slots.name}} needs and book an appointment if they want one.',
        tools: ['check_availability', 'book_appointment'],
        outcomes: ['booked', 'wants_human', 'other'],
        ...(overrides.maxTurns ? { maxTurns: overrides.maxTurns } : {}),
      },
      { id: 'booked', type: 'end', disposition: 'booked', message: 'See you then, {{slots.name}}!' },
      { id: 'to_human', type: 'transfer', to: '+14155550123' },
      { id: 'wrap_up', type: 'end', disposition: 'completed' },
      { id: 'sorry', type: 'end', disposition: 'llm_gave_up', message: 'Let me have someone call you back.' },
    ],
    edges: [
      { id: 'e1', source: 'ask_name', target: 'triage' },
      { id: 'e2', source: 'triage', target: 'booked', when: { kind: 'outcome', equals: 'booked' } },
      { id: 'e3', source: 'triage', target: 'to_human', when: { kind: 'outcome', equals: 'wants_human' } },
      { id: 'e4', source: 'triage', target: 'wrap_up' },
      ...(overrides.failureEdge
        ? [{ id: 'e5', source: 'triage', target: 'sorry', when: { kind: 'failure' as const } }]
        : []),
    ],
  },
});

const reply = (content: string, toolCalls: ToolCall[] = []): EngineEvent => ({
  type: 'llm_result',
  result: {
    content,
    toolCalls,
    finishReason: toolCalls.length ? 'tool_calls' : 'stop',
    usage: { promptTokens: 10, completionTokens: 5 },
    timings: { firstTokenMs: 100, totalMs: 300 },
  } satisfies LlmResult,
});
const toolCall = (id: string, name: string, args: unknown): ToolCall => ({
  id,
  name,
  arguments: typeof args === 'string' ? args : JSON.stringify(args),
});
const complete = (id: string, args: unknown) => toolCall(id, COMPLETE_STEP_TOOL, args);

function intoTriage(def = define(llmInput())): Conversation {
  const call = new Conversation(def);
  call.say('Grace');
  return call;
}

describe('llm nodes', () => {
  it('asks the model with the persona, goal, context, known slots, knowledge, outcomes and tools', () => {
    const call = intoTriage();
    const effect = finalOf(call.step, 'call_llm');
    expect(effect.nodeId).toBe('triage');
    expect(effect.request.settings).toEqual({
      model: 'test-model',
      temperature: 0.2,
      maxTokens: 512,
      apiKeyRef: 'default',
    });
    expect(effect.request.messages).toHaveLength(1);
    const [system] = effect.request.messages;
    expect(system!.role).toBe('system');
    for (const part of [
      'You are Robin, the receptionist of Parley Dental.',
      'Find out what Grace needs',
      '- name: Grace',
      '### Opening hours\nMonday to Friday, 9 to 5.',
      'booked, wants_human, other',
      COMPLETE_STEP_TOOL,
      'It is now Thursday 2025-03-06 09:00 (America/New_York).',
    ])
      expect(system!.content).toContain(part);
    // Static parts first (prompt caching), the clock and the slots last.
    expect(system!.content!.indexOf('Opening hours')).toBeLessThan(system!.content!.indexOf('It is now'));
    expect(system!.content!.indexOf('Find out what')).toBeLessThan(system!.content!.indexOf('- name: Grace'));
    expect(effect.request.tools.map((t) => t.name)).toEqual([
      'check_availability',
      'book_appointment',
      COMPLETE_STEP_TOOL,
    ]);
    expect(effect.request.tools[0]).toEqual({
      name: 'check_availability',
      description: 'Free slots on a date',
      parameters: { type: 'object', properties: { date: { type: 'string' } } },
    });
    expect(effect.request.tools[2]!.parameters).toMatchObject({
      type: 'object',
      properties: {
        outcome: { type: 'string', enum: ['booked', 'wants_human', 'other'] },
        summary: { type: 'string' },
        slots: { type: 'object' },
      },
      required: ['outcome', 'summary'],
    });
    expect(call.state.llm).toEqual({ messages: [], turns: 1, pendingToolCalls: [] });
  });

  it('without outcomes, complete_step takes any outcome string', () => {
    const input = llmInput();
    const def = define({
      ...input,
      flow: {
        ...input.flow,
        nodes: input.flow.nodes.map((n) => (n.id === 'triage' ? { ...n, outcomes: [] } : n)),
      },
    });
    const call = intoTriage(def);
    const spec = finalOf(call.step, 'call_llm').request.tools.at(-1)!;
    expect(spec.parameters).toMatchObject({
      properties: { outcome: { type: 'string' } },
      required: ['summary'],
    });
    expect((spec.parameters as { properties: { outcome: object } }).properties.outcome).not.toHaveProperty(
      'enum',
    );
    expect(final(call.send(reply('', [complete('c1', { outcome: 'whatever', summary: 's' })])))).toEqual({
      type: 'end',
      nodeId: 'wrap_up',
      disposition: 'completed',
    });
  });

  it('says a plain reply, waits for the caller, and sends the growing conversation back', () => {
    const call = intoTriage();
    let step = call.send(reply('Hi Grace, how can I help?'));
    // The model's words were spoken by whoever performed call_llm: no `say` for them.
    expect(step.effects).toEqual([
      {
        type: 'await_input',
        nodeId: 'triage',
        hints: { nodeId: 'triage', intentPhrases: ['speak to a person'] },
      },
    ]);
    expect(listeningHints(call.def, step.state)).toEqual({
      nodeId: 'triage',
      intentPhrases: ['speak to a person'],
    });

    step = call.say('I need a cleaning.');
    let request = finalOf(step, 'call_llm').request;
    expect(request.messages.slice(1)).toEqual([
      { role: 'assistant', content: 'Hi Grace, how can I help?' },
      { role: 'user', content: 'I need a cleaning.' },
    ]);
    expect(step.state.llm!.turns).toBe(2);

    call.send(reply('Which day suits you?'));
    step = call.say('Friday');
    request = finalOf(step, 'call_llm').request;
    expect(request.messages.map((m) => m.role)).toEqual(['system', 'assistant', 'user', 'assistant', 'user']);
    expect(request.messages.at(-1)).toEqual({ role: 'user', content: 'Friday' });
    expect(step.state.llm!.turns).toBe(3);
  });

  it('runs two tool calls one at a time and feeds the results back in order', () => {
    const call = intoTriage();
    const calls = [
      toolCall('call_1', 'check_availability', { date: '2025-03-07' }),
      toolCall('call_2', 'book_appointment', { date: '2025-03-07', time: '15:00' }),
    ];
    let step = call.send(reply('Let me check.', calls));
    expect(step.effects).toEqual([
      {
        type: 'call_tool',
        nodeId: 'triage',
        tool: 'check_availability',
        args: { date: '2025-03-07' },
        toolCallId: 'call_1',
      },
    ]);
    expect(step.state.llm!.pendingToolCalls).toEqual(calls);

    step = call.send({ type: 'tool_result', ok: true, status: 200, body: { free: ['15:00'] } });
    expect(step.effects).toEqual([
      {
        type: 'call_tool',
        nodeId: 'triage',
        tool: 'book_appointment',
        args: { date: '2025-03-07', time: '15:00' },
        toolCallId: 'call_2',
      },
    ]);
    expect(step.state.llm!.pendingToolCalls).toEqual([calls[1]]);

    step = call.send({
      type: 'tool_result',
      ok: false,
      status: 409,
      body: { reason: 'taken' },
      error: 'HTTP 409',
    });
    const request = finalOf(step, 'call_llm').request;
    expect(request.messages.slice(1)).toEqual([
      { role: 'assistant', content: 'Let me check.', toolCalls: calls },
      { role: 'tool', toolCallId: 'call_1', content: '{"free":["15:00"]}' },
      {
        role: 'tool',
        toolCallId: 'call_2',
        content: '{"error":"HTTP 409","status":409,"body":{"reason":"taken"}}',
      },
    ]);
    expect(step.state.llm).toMatchObject({ turns: 2, pendingToolCalls: [] });
  });

  it('completes the step: stores slots, follows the outcome edge and drops the conversation', () => {
    const call = intoTriage();
    const step = call.send(
      reply('Great, you are all set.', [
        complete('c1', {
          outcome: 'booked',
          summary: 'Booked a cleaning.',
          slots: { date: '2025-03-07', guests: 2, vip: true, notes: null, details: { room: 3 } },
        }),
      ]),
    );
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'booked', text: 'See you then, Grace!' },
      { type: 'end', nodeId: 'booked', disposition: 'booked' },
    ]);
    expect(step.state).toEqual({
      nodeId: 'booked',
      slots: { name: 'Grace', date: '2025-03-07', guests: 2, vip: true, notes: null, details: '{"room":3}' },
      attempts: 0,
      done: true,
    });
    expect(step.state).not.toHaveProperty('llm');
  });

  it('routes an outcome without its own edge along the default edge', () => {
    const step = intoTriage().send(
      reply('', [complete('c1', { outcome: 'other', summary: 'Just asked about hours.' })]),
    );
    expect(step.effects).toEqual([{ type: 'end', nodeId: 'wrap_up', disposition: 'completed' }]);
  });

  it('routes to a transfer by outcome', () => {
    const step = intoTriage().send(
      reply('Sure, one moment.', [complete('c1', { outcome: 'wants_human', summary: 'x' })]),
    );
    expect(final(step)).toEqual({
      type: 'transfer',
      nodeId: 'to_human',
      to: '+14155550123',
      disposition: 'transferred',
    });
  });

  it('runs the other tool calls before honouring complete_step', () => {
    const call = intoTriage();
    let step = call.send(
      reply('', [
        complete('c2', { outcome: 'booked', summary: 'Booked.' }),
        toolCall('c1', 'book_appointment', { date: '2025-03-07' }),
      ]),
    );
    expect(final(step)).toMatchObject({ type: 'call_tool', tool: 'book_appointment', toolCallId: 'c1' });
    step = call.send({ type: 'tool_result', ok: true, body: { id: 'apt-1' } });
    expect(final(step)).toEqual({ type: 'end', nodeId: 'booked', disposition: 'booked' });
  });

  it.each([
    [
      'an outcome the node does not declare',
      { outcome: 'cancelled', summary: 's' },
      'outcome must be one of booked, wants_human, other',
    ],
    ['no outcome', { summary: 's' }, 'outcome must be one of'],
    [
      'slots that are not an object',
      { outcome: 'booked', summary: 's', slots: [1] },
      'slots must be an object',
    ],
    ['arguments that are not JSON', '{"outcome": booked', 'arguments must be a JSON object'],
  ])('answers a complete_step with %s with an error and asks the model again', (_label, args, error) => {
    const call = intoTriage();
    const step = call.send(reply('', [complete('c1', args)]));
    const request = finalOf(step, 'call_llm').request;
    const answer = request.messages.at(-1)!;
    expect(answer).toMatchObject({ role: 'tool', toolCallId: 'c1' });
    expect(JSON.parse(answer.content!).error).toContain(error);
    expect(step.state).toMatchObject({ nodeId: 'triage', slots: { name: 'Grace' } });
    expect(step.state.llm!.turns).toBe(2);
  });

  it('answers unknown tools (and tools this node may not use) with an error instead of calling them', () => {
    const call = intoTriage();
    const step = call.send(
      reply('', [
        toolCall('u1', 'launch_rockets', {}),
        toolCall('u2', 'secret_tool', {}),
        toolCall('u3', 'check_availability', '[1]'),
      ]),
    );
    expect(step.effects.map((e) => e.type)).toEqual(['call_llm']);
    const messages = finalOf(step, 'call_llm').request.messages.slice(-3);
    expect(messages.map((m) => m.toolCallId)).toEqual(['u1', 'u2', 'u3']);
    expect(JSON.parse(messages[0]!.content!).error).toContain('unknown tool "launch_rockets"');
    expect(JSON.parse(messages[1]!.content!).error).toContain('unknown tool "secret_tool"');
    expect(JSON.parse(messages[2]!.content!).error).toContain('JSON object');
  });

  it('treats empty tool arguments as {}', () => {
    const step = intoTriage().send(reply('', [toolCall('t1', 'check_availability', '')]));
    expect(final(step)).toMatchObject({ type: 'call_tool', args: {}, toolCallId: 't1' });
  });

  it('follows the failure edge when the node runs out of turns', () => {
    const call = intoTriage(define(llmInput({ maxTurns: 2, failureEdge: true })));
    call.send(reply('How can I help?'));
    call.say('Hmm.');
    call.send(reply('Sorry?'));
    const step = call.say('Hmm.');
    expect(step.effects).toEqual([
      { type: 'say', nodeId: 'sorry', text: 'Let me have someone call you back.' },
      { type: 'end', nodeId: 'sorry', disposition: 'llm_gave_up' },
    ]);
    expect(step.state).not.toHaveProperty('llm');
  });

  it('ends the call as failed when it runs out of turns without a failure edge (tool rounds count too)', () => {
    const call = intoTriage(define(llmInput({ maxTurns: 1 })));
    const step = call.send(reply('', [toolCall('x', 'nope', {})]));
    const end = finalOf(step, 'end');
    expect(end).toMatchObject({ nodeId: 'triage', disposition: 'failed' });
    expect(end.reason).toContain('"triage"');
    expect(step.state).toEqual({ nodeId: 'triage', slots: { name: 'Grace' }, attempts: 0, done: true });
  });

  it('ends the call as failed when the definition has no LLM', () => {
    const step = intoTriage(define(llmInput({ llm: false }))).step;
    expect(step.effects.at(-1)).toEqual({
      type: 'end',
      nodeId: 'triage',
      disposition: 'failed',
      reason: 'llm node without an LLM configured',
    });
    expect(step.state.done).toBe(true);
  });

  it('lets a global intent jump out of a conversation, dropping it', () => {
    const call = intoTriage();
    call.send(reply('How can I help?'));
    const step = call.say('I would like to speak to a person.');
    expect(step.effects).toEqual([
      { type: 'transfer', nodeId: 'to_human', to: '+14155550123', disposition: 'transferred' },
    ]);
    expect(step.state).toEqual({ nodeId: 'to_human', slots: { name: 'Grace' }, attempts: 0, done: true });
  });

  it("starts the conversation with the caller's words when a global intent leads into an llm node", () => {
    const input = llmInput();
    const def = define({
      ...input,
      globalIntents: [{ id: 'book', phrases: ['appointment'], target: 'triage' }],
    });
    const call = new Conversation(def);
    const step = call.say('I need an appointment tomorrow');
    expect(finalOf(step, 'call_llm').request.messages.slice(1)).toEqual([
      { role: 'user', content: 'I need an appointment tomorrow' },
    ]);
    expect(step.state.slots).toEqual({});
  });

  it('tells the model when the caller stays silent or presses keys', () => {
    const call = intoTriage();
    call.send(reply('Still there?'));
    let step = call.send({ type: 'no_input' });
    expect(finalOf(step, 'call_llm').request.messages.at(-1)).toEqual({
      role: 'user',
      content: '(The caller said nothing.)',
    });
    call.send(reply('Press 1 for yes.'));
    step = call.send({ type: 'dtmf', digits: '1' });
    expect(finalOf(step, 'call_llm').request.messages.at(-1)!.content).toContain('pressed 1');
  });

  it('answers an event it is not waiting for with the request it is waiting on, without using a turn', () => {
    const call = intoTriage();
    const waiting = call.step;
    const step = call.say('hello?');
    expect(step.state).toEqual(waiting.state);
    expect(step.effects).toEqual([final(waiting)]);

    call.send(reply('', [toolCall('t1', 'check_availability', { date: 'x' })]));
    const pending = call.step;
    expect(call.send(reply('again?')).effects).toEqual([final(pending)]);
    expect(call.state).toEqual(pending.state);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the end of a call', () => {
  const events: EngineEvent[] = [
    { type: 'user_input', text: 'hello?' },
    { type: 'no_input' },
    { type: 'dtmf', digits: '1' },
    { type: 'tool_result', ok: true, body: {} },
    { type: 'start' },
  ];

  it('answers every event after an end with the same end, state unchanged', () => {
    const call = new Conversation(booking);
    call.say('Grace');
    call.say('tomorrow at 3pm');
    const ended = call.say('yes');
    for (const event of events) {
      const step = advanceEngine(booking, ended.state, event, ctx);
      expect(step.state).toEqual(ended.state);
      expect(step.effects).toEqual([{ type: 'end', nodeId: 'booked', disposition: 'booked' }]);
    }
  });

  it('answers every event after a transfer with an end "transferred"', () => {
    const transferred = new Conversation(booking).say('operator');
    for (const event of events) {
      expect(advanceEngine(booking, transferred.state, event, ctx)).toEqual({
        state: transferred.state,
        effects: [{ type: 'end', nodeId: 'to_human', disposition: 'transferred' }],
      });
    }
  });

  it('answers every event after a failure with an end "failed"', () => {
    const def = define(llmInput({ llm: false }));
    const failed = intoTriage(def).step;
    for (const event of events) {
      const step = advanceEngine(def, failed.state, event, ctx);
      expect(step.state).toBe(failed.state);
      expect(step.effects).toEqual([
        { type: 'end', nodeId: 'triage', disposition: 'failed', reason: expect.any(String) as string },
      ]);
    }
  });
});

describe('robustness', () => {
  it('stops a say→say loop after a bounded number of transitions', () => {
    const def = define({
      greeting: 'Hi.',
      flow: {
        startNodeId: 'a',
        nodes: [
          { id: 'a', type: 'say', text: 'A' },
          { id: 'b', type: 'say', text: 'B' },
        ],
        edges: [
          { id: 'ab', source: 'a', target: 'b' },
          { id: 'ba', source: 'b', target: 'a' },
        ],
      },
    });
    const step = startEngine(def, ctx);
    expect(spoken(step)).toHaveLength(1 + MAX_TRANSITIONS_PER_ADVANCE);
    const end = finalOf(step, 'end');
    expect(end.disposition).toBe('failed');
    expect(end.reason).toContain(String(MAX_TRANSITIONS_PER_ADVANCE));
    expect(step.state.done).toBe(true);
  });

  it('ends the call as failed when a node has nowhere to go', () => {
    const def = define({
      greeting: 'Hi.',
      flow: { startNodeId: 'only', nodes: [{ id: 'only', type: 'say', text: 'Bye?' }] },
    });
    const step = startEngine(def, ctx);
    expect(spoken(step)).toEqual(['Hi.', 'Bye?']);
    expect(finalOf(step, 'end')).toMatchObject({ nodeId: 'only', disposition: 'failed' });
  });

  it('ends the call as failed when the start node does not exist', () => {
    const def = define({
      greeting: 'Hi.',
      flow: { startNodeId: 'ghost', nodes: [{ id: 'x', type: 'end', disposition: 'd' }] },
    });
    expect(finalOf(startEngine(def, ctx), 'end')).toMatchObject({
      disposition: 'failed',
      reason: expect.stringContaining('"ghost"') as string,
    });
  });

  it('answers an event a collect node is not waiting for with its await_input, changing nothing', () => {
    const call = new Conversation(booking);
    const state = call.state;
    for (const event of [
      { type: 'tool_result', ok: true, body: 1 },
      reply('hi'),
      { type: 'start' },
    ] as EngineEvent[]) {
      const step = call.send(event);
      expect(step.state).toEqual(state);
      expect(step.effects).toEqual([
        { type: 'await_input', nodeId: 'ask_name', hints: listeningHints(booking, state) },
      ]);
    }
  });

  it('never throws on odd input', () => {
    const states: EngineState[] = [
      { nodeId: 'ghost', slots: {}, attempts: 0, done: false },
      { nodeId: 'triage', slots: {}, attempts: 0, done: false }, // an llm node without its conversation
      { nodeId: 'booked', slots: {}, attempts: 0, done: false },
    ];
    const def = define(llmInput());
    for (const state of states) {
      for (const event of [
        reply(''),
        { type: 'user_input', text: '' },
        { type: 'no_input' },
      ] as EngineEvent[]) {
        expect(() => advanceEngine(def, state, event, ctx)).not.toThrow();
      }
    }
  });
});

describe('interpolate', () => {
  const vars = {
    slots: {
      name: 'Grace',
      n: 3,
      ok: true,
      nothing: null,
      result: '{"a":{"b":[10,20]}}',
      weird: '{not json',
    },
    contact: { firstName: 'Ada', tags: ['vip'], address: { city: 'Boston' } },
    call: { from: '+14155550100', direction: 'inbound' as const, channel: 'voice' as const },
  };

  it.each([
    ['Hi {{slots.name}}', 'Hi Grace'],
    ['{{ slots.name }} / {{slots.n}} / {{slots.ok}}', 'Grace / 3 / true'],
    ['[{{slots.nothing}}][{{slots.missing}}][{{unknown.root}}]', '[][][]'],
    ['{{contact.address.city}} {{contact.tags.0}} {{contact.address}}', 'Boston vip {"city":"Boston"}'],
    ['{{call.from}} {{call.direction}} {{call.to}}', '+14155550100 inbound '],
    ['{{slots.result.a.b.1}}', '20'],
    ['{{slots.weird.x}}', ''],
    ['no templates, {single} braces', 'no templates, {single} braces'],
  ])('%s → %s', (template, expected) => {
    expect(interpolate(template, vars)).toBe(expected);
  });

  it('keeps the type of a whole-string template in tool arguments', () => {
    expect(
      interpolateArgs(
        {
          n: '{{slots.n}}',
          ok: ' {{slots.ok}} ',
          s: 'n={{slots.n}}',
          obj: '{{contact.address}}',
          none: '{{slots.x}}',
          list: ['{{slots.n}}'],
        },
        vars,
      ),
    ).toEqual({ n: 3, ok: true, s: 'n=3', obj: { city: 'Boston' }, none: null, list: [3] });
  });
});
