/** Messages, tool calls and results exchanged with an OpenAI-compatible chat model. */

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text, exactly as the model produced it. */
  arguments: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  toolCalls?: ToolCall[];
  /** For role `tool`: the call this message answers. */
  toolCallId?: string;
}

export interface ToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

export interface LlmSettings {
  model: string;
  temperature: number;
  maxTokens: number;
  baseUrl?: string;
  apiKeyRef: string;
}

export interface LlmRequest {
  settings: LlmSettings;
  messages: ChatMessage[];
  tools: ToolSpec[];
}

export interface LlmUsage {
  promptTokens: number;
  completionTokens: number;
}

export interface LlmResult {
  content: string;
  toolCalls: ToolCall[];
  finishReason: string;
  usage: LlmUsage;
  /** Milliseconds from request to first token, and to the end of the stream. */
  timings: { firstTokenMs: number | null; totalMs: number };
}
