/**
 * One advance of the engine over an agent's flow graph: node and edge lookups, the effects produced
 * so far, and the transitions a node handler can ask for (go to a node, wait, fail).
 */
import type { AgentDefinition, FlowEdge, FlowNode } from '../../contracts/agent-definition';
import type { EngineContext, EngineEffect, EngineState, ListeningHints } from '../../contracts/agent-engine';
import { interpolate, type InterpolationVars } from './interpolate';

/** A say→say cycle must not spin a workflow task forever. */
export const MAX_TRANSITIONS_PER_ADVANCE = 100;

/**
 * What a node handler decided: enter another node, end the call as failed, or stop here (its last
 * effect asks the workflow for something: input, an LLM reply, a tool result; or the call is over).
 */
export type Transition =
  | { kind: 'goto'; state: EngineState; target: string }
  | { kind: 'fail'; state: EngineState; reason: string }
  | { kind: 'stop'; state: EngineState };

export const stop = (state: EngineState): Transition => ({ kind: 'stop', state });
export const fail = (state: EngineState, reason: string): Transition => ({ kind: 'fail', state, reason });

export class FlowRun {
  readonly effects: EngineEffect[] = [];
  /** Nodes entered during this advance (the loop guard). */
  transitions = 0;
  /**
   * The utterance that triggered a global intent: the first llm node entered in this advance starts
   * its conversation with it, so the model knows what the caller asked for.
   */
  seedUserText: string | undefined;
  private readonly nodes = new Map<string, FlowNode>();

  constructor(
    readonly def: AgentDefinition,
    readonly ctx: EngineContext,
  ) {
    for (const node of def.flow.nodes) if (!this.nodes.has(node.id)) this.nodes.set(node.id, node);
  }

  node(id: string): FlowNode | undefined {
    return this.nodes.get(id);
  }

  outgoing(nodeId: string): FlowEdge[] {
    return this.def.flow.edges.filter((edge) => edge.source === nodeId);
  }

  defaultEdge(nodeId: string): FlowEdge | undefined {
    return this.outgoing(nodeId).find((edge) => edge.when === undefined);
  }

  failureEdge(nodeId: string): FlowEdge | undefined {
    return this.outgoing(nodeId).find((edge) => edge.when?.kind === 'failure');
  }

  outcomeEdge(nodeId: string, outcome: string): FlowEdge | undefined {
    return this.outgoing(nodeId).find(
      (edge) => edge.when?.kind === 'outcome' && edge.when.equals === outcome,
    );
  }

  vars(state: EngineState): InterpolationVars {
    return {
      slots: state.slots,
      contact: this.ctx.contact,
      call: this.ctx.call,
      timeZone: this.ctx.timeZone,
      language: this.def.language,
    };
  }

  text(template: string, state: EngineState): string {
    return interpolate(template, this.vars(state)).trim();
  }

  emit(effect: EngineEffect): void {
    this.effects.push(effect);
  }

  /** Says a definition text (templates filled in); nothing when it renders empty. */
  say(nodeId: string, template: string, state: EngineState): void {
    this.sayVerbatim(nodeId, this.text(template, state));
  }

  /** Says text as it is (the model's words are not templates). */
  sayVerbatim(nodeId: string, text: string): void {
    if (text.trim()) this.emit({ type: 'say', nodeId, text: text.trim() });
  }

  awaitInput(state: EngineState): Transition {
    this.emit({ type: 'await_input', nodeId: state.nodeId, hints: listeningHints(this.def, state) });
    return stop(state);
  }

  /** Follows the node's default edge; a node with nowhere to go ends the call as failed. */
  next(state: EngineState, nodeId: string): Transition {
    const edge = this.defaultEdge(nodeId);
    return edge
      ? { kind: 'goto', state, target: edge.target }
      : fail(state, `node "${nodeId}" has no default edge to continue from`);
  }

  /** Follows the node's failure edge, or ends the call as failed with the reason. */
  failOrFollow(state: EngineState, nodeId: string, reason: string): Transition {
    const edge = this.failureEdge(nodeId);
    return edge ? { kind: 'goto', state, target: edge.target } : fail(state, reason);
  }
}

/** What the current node expects, so speech recognition can listen for it. */
export function listeningHints(def: AgentDefinition, state: EngineState): ListeningHints {
  const node = def.flow.nodes.find((n) => n.id === state.nodeId);
  const intentPhrases = [...new Set(def.globalIntents.flatMap((intent) => intent.phrases))];
  if (node?.type === 'collect') {
    return {
      nodeId: state.nodeId,
      slotType: node.slotType,
      ...(node.choices ? { choices: [...node.choices] } : {}),
      intentPhrases,
    };
  }
  return { nodeId: state.nodeId, intentPhrases };
}
