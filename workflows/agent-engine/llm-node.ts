/**
 * The llm node: a goal-driven conversation with the model until it calls `complete_step`. The
 * node's conversation lives in `state.llm` (the system message is rebuilt for every request, so the
 * persona and knowledge never bloat the workflow's state); tool calls run one at a time, in the
 * order the model made them, and `complete_step` is honoured after the others, so "book it and
 * finish" books first.
 */
import type { AgentDefinition, NodeOf } from '../../contracts/agent-definition';
import { COMPLETE_STEP_TOOL, type EngineEvent, type EngineState } from '../../contracts/agent-engine';
import type { ChatMessage, LlmRequest, LlmResult, ToolCall, ToolSpec } from '../../contracts/llm';
import { stop, type FlowRun, type Transition } from './flow-run';
import { describeLocalTime, toSlotValue } from './slots';

export type LlmNode = NodeOf<'llm'>;
type LlmConversation = NonNullable<EngineState['llm']>;

/** Said to the model when the caller stays silent: it decides whether to ask again or wrap up. */
export const CALLER_SILENT_MESSAGE = '(The caller said nothing.)';

/** What the node waits for: the model's reply, the result of the first pending tool call, or the caller. */
export function llmWaitingFor(conversation: LlmConversation): 'llm' | 'tool' | 'caller' {
  if (conversation.pendingToolCalls.length > 0) return 'tool';
  const last = conversation.messages.at(-1);
  return last?.role === 'assistant' && !last.toolCalls?.length ? 'caller' : 'llm';
}

export function enterLlmNode(run: FlowRun, state: EngineState, node: LlmNode): Transition {
  if (!run.def.llm) return { kind: 'fail', state, reason: 'llm node without an LLM configured' };
  const messages: ChatMessage[] = run.seedUserText ? [{ role: 'user', content: run.seedUserText }] : [];
  run.seedUserText = undefined;
  return requestCompletion(run, { ...state, llm: { messages, turns: 0, pendingToolCalls: [] } }, node);
}

/**
 * An event for an llm node that is in its conversation; undefined when the node is not waiting for
 * that kind of event. A caller's `user_input` has already passed the global-intent check.
 */
export function advanceLlmNode(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  conversation: LlmConversation,
  event: EngineEvent,
): Transition | undefined {
  const waiting = llmWaitingFor(conversation);
  switch (event.type) {
    case 'llm_result':
      return waiting === 'llm' ? onModelReply(run, state, node, conversation, event.result) : undefined;
    case 'tool_result':
      return waiting === 'tool' ? onToolResult(run, state, node, conversation, event) : undefined;
    case 'user_input':
      return waiting === 'caller'
        ? callerSays(run, state, node, conversation, event.text.trim() || CALLER_SILENT_MESSAGE)
        : undefined;
    case 'no_input':
      return waiting === 'caller'
        ? callerSays(run, state, node, conversation, CALLER_SILENT_MESSAGE)
        : undefined;
    case 'dtmf':
      return waiting === 'caller'
        ? callerSays(run, state, node, conversation, `(The caller pressed ${event.digits} on the keypad.)`)
        : undefined;
    case 'start':
      return undefined;
  }
}

/** The effect the node is waiting on, again (for an event that does not fit). */
export function repeatLlmRequest(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  conversation: LlmConversation,
): Transition {
  const waiting = llmWaitingFor(conversation);
  if (waiting === 'caller') return run.awaitInput(state);
  if (waiting === 'tool') return runPendingCalls(run, state, node, conversation);
  run.emit({ type: 'call_llm', nodeId: node.id, request: buildLlmRequest(run, state, node, conversation) });
  return stop(state);
}

function callerSays(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  conversation: LlmConversation,
  text: string,
): Transition {
  return requestCompletion(run, state, node, {
    ...conversation,
    messages: [...conversation.messages, { role: 'user', content: text }],
  });
}

/** Asks the model for its next move, unless the node has used all its turns (one turn = one request). */
function requestCompletion(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  conversation: LlmConversation = state.llm!,
): Transition {
  if (conversation.turns >= node.maxTurns) {
    return run.failOrFollow(
      { ...state, llm: conversation },
      node.id,
      `llm node "${node.id}" used all ${node.maxTurns} of its turns without completing its step`,
    );
  }
  const next = { ...conversation, turns: conversation.turns + 1 };
  const nextState = { ...state, llm: next };
  run.emit({ type: 'call_llm', nodeId: node.id, request: buildLlmRequest(run, nextState, node, next) });
  return stop(nextState);
}

function onModelReply(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  conversation: LlmConversation,
  result: LlmResult,
): Transition {
  const calls = result.toolCalls ?? [];
  const content = result.content ?? '';
  const assistant: ChatMessage = calls.length
    ? { role: 'assistant', content: content || null, toolCalls: calls }
    : { role: 'assistant', content };
  // No `say` for the model's words: whoever performed `call_llm` already delivered them as they
  // streamed (the contract in contracts/agent-engine.ts).
  const next: LlmConversation = {
    ...conversation,
    messages: [...conversation.messages, assistant],
    pendingToolCalls: [
      ...calls.filter((call) => call.name !== COMPLETE_STEP_TOOL),
      ...calls.filter((call) => call.name === COMPLETE_STEP_TOOL),
    ],
  };
  const nextState = { ...state, llm: next };
  if (calls.length === 0) return run.awaitInput(nextState);
  return runPendingCalls(run, nextState, node, next);
}

function onToolResult(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  conversation: LlmConversation,
  event: Extract<EngineEvent, { type: 'tool_result' }>,
): Transition {
  const [call, ...rest] = conversation.pendingToolCalls;
  const answer = event.ok
    ? event.body
    : {
        error: event.error ?? 'the tool call failed',
        ...(event.status !== undefined ? { status: event.status } : {}),
        ...(event.body !== undefined && event.body !== null ? { body: event.body } : {}),
      };
  return runPendingCalls(run, state, node, answerCall(conversation, call!, answer, rest));
}

/**
 * Works through the pending tool calls: the first real one becomes a `call_tool` effect (and stays
 * pending until its result comes back); unknown tools and malformed arguments are answered with an
 * error for the model to read; a valid `complete_step` ends the node. Nothing pending: ask the model.
 */
function runPendingCalls(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  conversation: LlmConversation,
): Transition {
  let current = conversation;
  for (;;) {
    const [call, ...rest] = current.pendingToolCalls;
    if (!call) return requestCompletion(run, state, node, current);

    if (call.name === COMPLETE_STEP_TOOL) {
      const completion = parseCompleteStep(call, node);
      if (completion.ok) return completeStep(run, state, node, completion);
      current = answerCall(current, call, { error: completion.error }, rest);
      continue;
    }

    const tool = node.tools.includes(call.name) ? run.def.tools.find((t) => t.name === call.name) : undefined;
    if (!tool) {
      const available = [...availableTools(run.def, node).map((t) => t.name), COMPLETE_STEP_TOOL].join(', ');
      current = answerCall(
        current,
        call,
        { error: `unknown tool "${call.name}"; available: ${available}` },
        rest,
      );
      continue;
    }
    const args = parseArguments(call.arguments);
    if (!args) {
      current = answerCall(current, call, { error: 'the arguments must be a JSON object' }, rest);
      continue;
    }
    run.emit({ type: 'call_tool', nodeId: node.id, tool: tool.name, args, toolCallId: call.id });
    return stop({ ...state, llm: current });
  }
}

function answerCall(
  conversation: LlmConversation,
  call: ToolCall,
  answer: unknown,
  rest: ToolCall[],
): LlmConversation {
  return {
    ...conversation,
    messages: [...conversation.messages, { role: 'tool', toolCallId: call.id, content: toJsonText(answer) }],
    pendingToolCalls: rest,
  };
}

type Completion =
  | { ok: true; outcome?: string; summary?: string; slots: Record<string, unknown> }
  | { ok: false; error: string };

function parseCompleteStep(call: ToolCall, node: LlmNode): Completion {
  const args = parseArguments(call.arguments);
  if (!args) return { ok: false, error: `${COMPLETE_STEP_TOOL}: the arguments must be a JSON object` };
  const { outcome, summary, slots } = args;
  if (outcome !== undefined && typeof outcome !== 'string') {
    return { ok: false, error: `${COMPLETE_STEP_TOOL}: outcome must be a string` };
  }
  if (node.outcomes.length > 0 && (outcome === undefined || !node.outcomes.includes(outcome))) {
    return { ok: false, error: `${COMPLETE_STEP_TOOL}: outcome must be one of ${node.outcomes.join(', ')}` };
  }
  if (slots !== undefined && slots !== null && !isRecord(slots)) {
    return { ok: false, error: `${COMPLETE_STEP_TOOL}: slots must be an object` };
  }
  return {
    ok: true,
    ...(outcome !== undefined ? { outcome } : {}),
    ...(typeof summary === 'string' ? { summary } : {}),
    slots: isRecord(slots) ? slots : {},
  };
}

/** Leaves the node: the model's slots are stored, its outcome picks the edge (else the default edge). */
function completeStep(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  completion: Extract<Completion, { ok: true }>,
): Transition {
  const slots = { ...state.slots };
  for (const [name, value] of Object.entries(completion.slots)) slots[name] = toSlotValue(value);
  const { llm: _conversation, ...rest } = state;
  const done: EngineState = { ...rest, slots };
  const edge =
    (completion.outcome !== undefined ? run.outcomeEdge(node.id, completion.outcome) : undefined) ??
    run.defaultEdge(node.id);
  if (edge) return { kind: 'goto', state: done, target: edge.target };
  return {
    kind: 'fail',
    state: done,
    reason: `llm node "${node.id}" completed${completion.outcome !== undefined ? ` with outcome "${completion.outcome}"` : ''}, but no edge leads on from it`,
  };
}

export function buildLlmRequest(
  run: FlowRun,
  state: EngineState,
  node: LlmNode,
  conversation: LlmConversation,
): LlmRequest {
  const llm = run.def.llm!;
  return {
    settings: {
      model: llm.model,
      temperature: llm.temperature,
      maxTokens: llm.maxTokens,
      ...(llm.baseUrl !== undefined ? { baseUrl: llm.baseUrl } : {}),
      apiKeyRef: llm.apiKeyRef,
    },
    messages: [{ role: 'system', content: systemPrompt(run, state, node) }, ...conversation.messages],
    tools: [
      ...availableTools(run.def, node).map((tool) => ({
        name: tool.name,
        description: tool.description,
        parameters: tool.parameters,
      })),
      completeStepTool(node),
    ],
  };
}

/** The definition's tools this node lists, once each (a tool named like the built-in is shadowed). */
function availableTools(def: AgentDefinition, node: LlmNode) {
  return [...new Set(node.tools)]
    .filter((name) => name !== COMPLETE_STEP_TOOL)
    .map((name) => def.tools.find((tool) => tool.name === name))
    .filter((tool) => tool !== undefined);
}

export function completeStepTool(node: LlmNode): ToolSpec {
  return {
    name: COMPLETE_STEP_TOOL,
    description:
      'Call this when the goal of the current step is achieved, or clearly cannot be achieved. ' +
      'Report the outcome, a one-sentence summary, and any facts learned from the caller as slots.',
    parameters: {
      type: 'object',
      properties: {
        outcome:
          node.outcomes.length > 0
            ? { type: 'string', enum: [...node.outcomes], description: 'How the step ended.' }
            : { type: 'string', description: 'How the step ended, in a word or two.' },
        summary: { type: 'string', description: 'One sentence: what happened in this step.' },
        slots: {
          type: 'object',
          description: 'Facts learned from the caller, by name (strings, numbers or booleans).',
          additionalProperties: true,
        },
      },
      required: node.outcomes.length > 0 ? ['outcome', 'summary'] : ['summary'],
    },
  };
}

/**
 * The system message. What stays the same turn after turn (persona, knowledge, the step) comes
 * first and what changes (the clock, the slots) last, so providers' prompt caching can reuse the
 * long prefix.
 */
function systemPrompt(run: FlowRun, state: EngineState, node: LlmNode): string {
  const { def, ctx } = run;
  const sections: string[] = [];
  const persona = run.text(def.persona.systemPrompt, state);
  if (persona) sections.push(persona);

  if (def.knowledge.length > 0) {
    sections.push(
      `## Knowledge\n${def.knowledge.map((snippet) => `### ${snippet.title}\n${snippet.content}`).join('\n\n')}`,
    );
  }

  const outcomes = node.outcomes.length
    ? `Outcomes: ${node.outcomes.join(', ')}.`
    : 'Describe the outcome in a word or two.';
  sections.push(
    `## Current step\n${run.text(node.goal, state)}\n\n` +
      `When the goal is achieved, or clearly cannot be, call \`${COMPLETE_STEP_TOOL}\` with the outcome, ` +
      `a one-sentence summary and, as slots, the facts you learned. ${outcomes} ` +
      'Never mention tools or steps to the caller.',
  );

  const medium =
    ctx.call.channel === 'text'
      ? 'You are chatting with the user in text.'
      : 'You are speaking with the caller on the phone: keep replies short and natural to say aloud, with no lists or markdown.';
  sections.push(`## Conversation\n${medium}\nIt is now ${describeLocalTime(ctx.now, ctx.timeZone)}.`);

  const known = Object.entries(state.slots).filter(([, value]) => value !== null && value !== '');
  sections.push(
    `## Known so far\n${known.length ? known.map(([name, value]) => `- ${name}: ${String(value)}`).join('\n') : 'Nothing yet.'}`,
  );
  return sections.join('\n\n');
}

/** Tool-call arguments as an object: '' counts as {}; anything that is not a JSON object is rejected. */
function parseArguments(text: string): Record<string, unknown> | undefined {
  if (!text || !text.trim()) return {};
  try {
    const value = JSON.parse(text) as unknown;
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function toJsonText(value: unknown): string {
  try {
    return JSON.stringify(value ?? null) ?? 'null';
  } catch {
    return JSON.stringify({ error: 'the result could not be serialised' });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
