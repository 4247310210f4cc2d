/**
 * The agent engine: interprets an agent's flow graph as a pure state machine. The call workflow
 * feeds it events (the caller spoke, an LLM replied, a tool returned) and performs the effects it
 * returns: zero or more `say`, then exactly one of `await_input`, `call_llm`, `call_tool`,
 * `transfer`, `end`. Same definition, state, event and context in: same step out, so replay holds.
 *
 * An event the current node is not waiting for (an `llm_result` at a collect node, say) changes
 * nothing: the engine answers with the effect it is still waiting on. Once the call is over, every
 * event is answered with its `end` again.
 */
import type { AgentDefinition, FlowNode, GlobalIntent, NodeOf } from '../../contracts/agent-definition';
import type {
  EngineContext,
  EngineEffect,
  EngineEvent,
  EngineState,
  EngineStep,
} from '../../contracts/agent-engine';
import { evaluateSlotCondition } from './conditions';
import { FlowRun, MAX_TRANSITIONS_PER_ADVANCE, fail, stop, type Transition } from './flow-run';
import { interpolateArgs } from './interpolate';
import { advanceLlmNode, enterLlmNode, llmWaitingFor, repeatLlmRequest } from './llm-node';
import { containsPhrase, parseDtmf, parseSlot, toSlotValue, type SlotParseResult } from './slots';

export { listeningHints } from './flow-run';

type CollectNode = NodeOf<'collect'>;

/** The call begins: the greeting, then the flow from its start node until it needs something. */
export function startEngine(def: AgentDefinition, ctx: EngineContext): EngineStep {
  const run = new FlowRun(def, ctx);
  const state: EngineState = { nodeId: def.flow.startNodeId, slots: {}, attempts: 0, done: false };
  run.say(state.nodeId, def.greeting, state);
  return drive(run, { kind: 'goto', state, target: def.flow.startNodeId });
}

export function advanceEngine(
  def: AgentDefinition,
  state: EngineState,
  event: EngineEvent,
  ctx: EngineContext,
): EngineStep {
  if (state.done) return { state, effects: [endedAgain(def, state)] };
  const run = new FlowRun(def, ctx);
  const node = run.node(state.nodeId);
  if (!node) return drive(run, fail(state, `node "${state.nodeId}" does not exist`));

  if (event.type === 'user_input' && waitsForCaller(node, state)) {
    const intent = matchGlobalIntent(def, event.text);
    if (intent) {
      run.seedUserText = event.text.trim();
      return drive(run, { kind: 'goto', state, target: intent.target });
    }
  }

  const transition = handleEvent(run, state, node, event) ?? repeatWaitingEffect(run, state, node);
  return drive(run, transition);
}

/** The first global intent with a phrase the caller said (whole words, any case), in definition order. */
export function matchGlobalIntent(def: AgentDefinition, text: string): GlobalIntent | undefined {
  return def.globalIntents.find((intent) => intent.phrases.some((phrase) => containsPhrase(text, phrase)));
}

function waitsForCaller(node: FlowNode, state: EngineState): boolean {
  if (node.type === 'collect') return true;
  return node.type === 'llm' && state.llm !== undefined && llmWaitingFor(state.llm) === 'caller';
}

/** The node's answer to the event; undefined when the node is not waiting for that kind of event. */
function handleEvent(
  run: FlowRun,
  state: EngineState,
  node: FlowNode,
  event: EngineEvent,
): Transition | undefined {
  switch (node.type) {
    case 'collect':
      return handleCollectEvent(run, state, node, event);
    case 'tool':
      return event.type === 'tool_result' ? handleToolResult(run, state, node, event) : undefined;
    case 'llm':
      return state.llm ? advanceLlmNode(run, state, node, state.llm, event) : undefined;
    default:
      return undefined;
  }
}

/** What the current node waits for, asked again; a node that never waits is simply run again. */
function repeatWaitingEffect(run: FlowRun, state: EngineState, node: FlowNode): Transition {
  switch (node.type) {
    case 'collect':
      return run.awaitInput(state);
    case 'tool':
      return callTool(run, state, node);
    case 'llm':
      return state.llm
        ? repeatLlmRequest(run, state, node, state.llm)
        : { kind: 'goto', state, target: node.id };
    default:
      return { kind: 'goto', state, target: node.id };
  }
}

/** Enters nodes until one waits or the call ends. */
function drive(run: FlowRun, first: Transition): EngineStep {
  let transition = first;
  for (;;) {
    switch (transition.kind) {
      case 'stop':
        return { state: transition.state, effects: run.effects };
      case 'fail':
        return finishFailed(run, transition.state, transition.reason);
      case 'goto':
        run.transitions += 1;
        if (run.transitions > MAX_TRANSITIONS_PER_ADVANCE) {
          return finishFailed(
            run,
            transition.state,
            `more than ${MAX_TRANSITIONS_PER_ADVANCE} node transitions without waiting for the caller (a loop in the flow?), last at node "${transition.state.nodeId}"`,
          );
        }
        transition = enterNode(run, transition.state, transition.target);
    }
  }
}

function enterNode(run: FlowRun, previous: EngineState, target: string): Transition {
  const node = run.node(target);
  if (!node)
    return fail(previous, `node "${target}" does not exist (reached from node "${previous.nodeId}")`);
  // A node starts afresh: no attempts, no leftover llm conversation.
  const state: EngineState = { nodeId: node.id, slots: previous.slots, attempts: 0, done: false };
  switch (node.type) {
    case 'say':
      run.say(node.id, node.text, state);
      return run.next(state, node.id);
    case 'collect':
      run.say(node.id, node.prompt, state);
      return run.awaitInput(state);
    case 'branch':
      return chooseBranch(run, state, node);
    case 'tool':
      if (node.message) run.say(node.id, node.message, state);
      return callTool(run, state, node);
    case 'llm':
      return enterLlmNode(run, state, node);
    case 'transfer':
      if (node.message) run.say(node.id, node.message, state);
      run.emit({ type: 'transfer', nodeId: node.id, to: node.to, disposition: 'transferred' });
      return stop({ ...state, done: true });
    case 'end':
      if (node.message) run.say(node.id, node.message, state);
      run.emit({ type: 'end', nodeId: node.id, disposition: node.disposition });
      return stop({ ...state, done: true });
  }
}

function finishFailed(run: FlowRun, state: EngineState, reason: string): EngineStep {
  const { llm: _conversation, ...rest } = state;
  run.emit({ type: 'end', nodeId: state.nodeId, disposition: 'failed', reason });
  return { state: { ...rest, done: true }, effects: run.effects };
}

/** The `end` of a call that is already over, for an event that arrived after it. */
function endedAgain(def: AgentDefinition, state: EngineState): EngineEffect {
  const node = def.flow.nodes.find((n) => n.id === state.nodeId);
  if (node?.type === 'end') return { type: 'end', nodeId: state.nodeId, disposition: node.disposition };
  if (node?.type === 'transfer') return { type: 'end', nodeId: state.nodeId, disposition: 'transferred' };
  return { type: 'end', nodeId: state.nodeId, disposition: 'failed', reason: 'the call had already ended' };
}

// ---------------------------------------------------------------------------------------------
// collect

function handleCollectEvent(
  run: FlowRun,
  state: EngineState,
  node: CollectNode,
  event: EngineEvent,
): Transition | undefined {
  switch (event.type) {
    case 'user_input':
      if (!event.text.trim()) return retryCollect(run, state, node, 'no_input');
      return collectAnswer(
        run,
        state,
        node,
        parseSlot(node.slotType, event.text, {
          ...(node.choices ? { choices: node.choices } : {}),
          now: run.ctx.now,
          timeZone: run.ctx.timeZone,
        }),
      );
    case 'dtmf':
      return collectAnswer(run, state, node, parseDtmf(node.slotType, event.digits, node.choices));
    case 'no_input':
      return retryCollect(run, state, node, 'no_input');
    default:
      return undefined;
  }
}

function collectAnswer(
  run: FlowRun,
  state: EngineState,
  node: CollectNode,
  parsed: SlotParseResult,
): Transition {
  if (!parsed.ok) return retryCollect(run, state, node, 'no_match');
  return run.next({ ...state, slots: { ...state.slots, [node.slot]: parsed.value }, attempts: 0 }, node.id);
}

function retryCollect(
  run: FlowRun,
  state: EngineState,
  node: CollectNode,
  why: 'no_match' | 'no_input',
): Transition {
  const attempts = state.attempts + 1;
  const next = { ...state, attempts };
  if (attempts >= node.maxAttempts) {
    return run.failOrFollow(
      next,
      node.id,
      `collect node "${node.id}" got no valid ${node.slotType} for slot "${node.slot}" after ${attempts} attempt${attempts === 1 ? '' : 's'}`,
    );
  }
  const prompt = run.text(node.prompt, state);
  const custom = why === 'no_match' ? node.noMatchPrompt : node.noInputPrompt;
  if (custom) run.say(node.id, custom, state);
  else
    run.sayVerbatim(
      node.id,
      `${why === 'no_match' ? "Sorry, I didn't catch that." : "Sorry, I didn't hear anything."} ${prompt}`,
    );
  return run.awaitInput(next);
}

// ---------------------------------------------------------------------------------------------
// branch

function chooseBranch(run: FlowRun, state: EngineState, node: NodeOf<'branch'>): Transition {
  const edges = run.outgoing(node.id);
  const matched = edges.find(
    (edge) => edge.when?.kind === 'slot' && evaluateSlotCondition(edge.when, state.slots),
  );
  const edge = matched ?? edges.find((e) => e.when === undefined);
  if (edge) return { kind: 'goto', state, target: edge.target };
  return fail(state, `branch node "${node.id}": no condition matched and there is no default edge`);
}

// ---------------------------------------------------------------------------------------------
// tool

function callTool(run: FlowRun, state: EngineState, node: NodeOf<'tool'>): Transition {
  if (!run.def.tools.some((tool) => tool.name === node.tool)) {
    return run.failOrFollow(
      state,
      node.id,
      `tool node "${node.id}" uses tool "${node.tool}", which is not defined`,
    );
  }
  const args = interpolateArgs(node.args, run.vars(state)) as Record<string, unknown>;
  run.emit({ type: 'call_tool', nodeId: node.id, tool: node.tool, args });
  return stop(state);
}

function handleToolResult(
  run: FlowRun,
  state: EngineState,
  node: NodeOf<'tool'>,
  event: Extract<EngineEvent, { type: 'tool_result' }>,
): Transition {
  if (!event.ok) {
    const detail = event.error ?? (event.status !== undefined ? `status ${event.status}` : 'no detail');
    return run.failOrFollow(state, node.id, `tool "${node.tool}" failed at node "${node.id}": ${detail}`);
  }
  const slots = node.resultSlot
    ? { ...state.slots, [node.resultSlot]: toSlotValue(event.body) }
    : state.slots;
  return run.next({ ...state, slots }, node.id);
}
