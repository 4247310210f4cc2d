/**
 * The agent engine's contract: a pure state machine (workflows/agent-engine) that the call workflow
 * drives. Events go in; effects come out: zero or more `say`, then exactly one of `await_input`,
 * `call_llm`, `call_tool`, `transfer`, `end`. The workflow performs that last effect (an activity or
 * a wait) and feeds its outcome back as the next event.
 *
 * The performer of `call_llm` delivers the model's words to the listener as they stream; the engine
 * therefore never emits a `say` for an `llm_result`'s content.
 */
import type { SlotType } from './agent-definition';
import type { ChatMessage, LlmRequest, LlmResult, ToolCall } from './llm';

export type SlotValue = string | number | boolean | null;

/** What the current node expects, so speech recognition can listen for it. */
export interface ListeningHints {
  nodeId: string;
  slotType?: SlotType;
  choices?: string[];
  /** Phrases of the global intents, always worth recognising. */
  intentPhrases: string[];
}

export interface EngineState {
  nodeId: string;
  slots: Record<string, SlotValue>;
  /** Failed attempts at the current collect node. */
  attempts: number;
  /** The running conversation of the current llm node. */
  llm?: { messages: ChatMessage[]; turns: number; pendingToolCalls: ToolCall[] };
  done: boolean;
}

export interface EngineContext {
  /** Workflow time, ISO 8601; relative dates ("tomorrow at 3") resolve against it. */
  now: string;
  timeZone: string;
  contact: Record<string, unknown>;
  call: { from?: string; to?: string; direction: 'inbound' | 'outbound'; channel: 'voice' | 'text' | 'web' };
}

export type EngineEvent =
  | { type: 'start' }
  | { type: 'user_input'; text: string }
  | { type: 'no_input' }
  | { type: 'dtmf'; digits: string }
  | { type: 'llm_result'; result: LlmResult }
  | { type: 'tool_result'; ok: boolean; status?: number; body: unknown; error?: string };

export type EngineEffect =
  | { type: 'say'; nodeId: string; text: string }
  | { type: 'await_input'; nodeId: string; hints: ListeningHints }
  | { type: 'call_llm'; nodeId: string; request: LlmRequest }
  | { type: 'call_tool'; nodeId: string; tool: string; args: Record<string, unknown>; toolCallId?: string }
  | { type: 'transfer'; nodeId: string; to: string; disposition: 'transferred' }
  | { type: 'end'; nodeId: string; disposition: string; reason?: string };

export interface EngineStep {
  state: EngineState;
  effects: EngineEffect[];
}

/** Name of the built-in tool with which the model ends an llm node. */
export const COMPLETE_STEP_TOOL = 'complete_step';
