/**
 * The shape of an agent definition: what admins design and what a published version freezes.
 * The zod schema checks each field; graph rules (one start node, edges to real nodes, reachability,
 * slot types, dispositions) live in `agent-graph.ts`. Workflows import the types only.
 */
import { z } from 'zod';

export const SLOT_TYPES = ['text', 'number', 'yes_no', 'choice', 'datetime', 'phone', 'email'] as const;
export type SlotType = (typeof SLOT_TYPES)[number];

export const NODE_TYPES = ['say', 'collect', 'branch', 'llm', 'tool', 'transfer', 'end'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

const id = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'must use letters, digits, _ or -');
const text = (max = 4000) => z.string().trim().min(1).max(max);
const position = z.object({ x: z.number(), y: z.number() }).optional();

/** A JSON Schema object, kept as data (validated structurally, not interpreted here). */
export const jsonSchemaObject = z
  .object({ type: z.literal('object'), properties: z.record(z.string(), z.unknown()).optional() })
  .catchall(z.unknown());

const sayNode = z.object({ id, type: z.literal('say'), position, text: text() });

const collectNode = z.object({
  id,
  type: z.literal('collect'),
  position,
  slot: id,
  slotType: z.enum(SLOT_TYPES),
  prompt: text(),
  choices: z.array(text(200)).min(2).max(50).optional(),
  /** Said when the answer could not be understood. */
  noMatchPrompt: text().optional(),
  /** Said when the caller said nothing. */
  noInputPrompt: text().optional(),
  /** Attempts before the node gives up and follows its `failure` edge (or ends the call). */
  maxAttempts: z.number().int().min(1).max(10).default(3),
});

const branchNode = z.object({ id, type: z.literal('branch'), position });

const llmNode = z.object({
  id,
  type: z.literal('llm'),
  position,
  /** What this part of the conversation must achieve; the model ends it by calling `complete_step`. */
  goal: text(8000),
  /** Names of the definition's tools the model may call here. */
  tools: z.array(id).max(20).default([]),
  /** Outcomes the model may report through `complete_step`; edges can branch on them. */
  outcomes: z.array(id).max(20).default([]),
  maxTurns: z.number().int().min(1).max(100).default(20),
});

const toolNode = z.object({
  id,
  type: z.literal('tool'),
  position,
  tool: id,
  /** Arguments; string values may use {{slots.x}} / {{contact.x}} templates. */
  args: z.record(z.string(), z.unknown()).default({}),
  /** Where the tool's JSON result is stored (as a slot) for later nodes. */
  resultSlot: id.optional(),
  /** Said before the call (e.g. "One moment while I check."). */
  message: text().optional(),
});

const transferNode = z.object({
  id,
  type: z.literal('transfer'),
  position,
  to: z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number like +14155550100'),
  message: text().optional(),
});

const endNode = z.object({
  id,
  type: z.literal('end'),
  position,
  disposition: id,
  message: text().optional(),
});

export const flowNodeSchema = z.discriminatedUnion('type', [
  sayNode,
  collectNode,
  branchNode,
  llmNode,
  toolNode,
  transferNode,
  endNode,
]);

export const CONDITION_OPS = [
  'eq',
  'neq',
  'gt',
  'gte',
  'lt',
  'lte',
  'contains',
  'is_set',
  'is_not_set',
] as const;

/**
 * When an edge is taken. No `when`: the default edge. `slot`: a branch condition. `outcome`: an
 * llm node's reported outcome. `failure`: a collect that ran out of attempts, or a tool that failed.
 */
export const edgeConditionSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('slot'),
    slot: id,
    op: z.enum(CONDITION_OPS),
    value: z.union([z.string(), z.number(), z.boolean()]).optional(),
  }),
  z.object({ kind: z.literal('outcome'), equals: id }),
  z.object({ kind: z.literal('failure') }),
]);

export const flowEdgeSchema = z.object({
  id,
  source: id,
  target: id,
  when: edgeConditionSchema.optional(),
  label: z.string().max(200).optional(),
});

export const toolSchema = z.object({
  name: id,
  description: text(1000),
  url: z.url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL'),
  method: z.enum(['POST', 'PUT']).default('POST'),
  parameters: jsonSchemaObject.default({ type: 'object', properties: {} }),
  /** Signs the request body (HMAC-SHA256, header X-Parley-Signature). Stored with the version. */
  signingSecret: z.string().min(16, 'must be at least 16 characters').max(200),
  timeoutMs: z.number().int().min(100).max(30_000).default(5000),
});

export const globalIntentSchema = z.object({
  id,
  /** Phrases that trigger the jump when the caller says them (case-insensitive, anywhere in the utterance). */
  phrases: z.array(text(200)).min(1).max(50),
  target: id,
});

export const agentDefinitionSchema = z.object({
  persona: z.object({ systemPrompt: z.string().max(20_000).default('') }).default({ systemPrompt: '' }),
  greeting: text(),
  language: z
    .string()
    .regex(/^[a-z]{2,3}(-[A-Z]{2})?$/, 'must be a language tag like en-US')
    .default('en-US'),
  voice: z
    .object({
      provider: z.enum(['local', 'openai']).default('local'),
      voiceId: z.string().min(1).default('en-us'),
    })
    .default({
      provider: 'local',
      voiceId: 'en-us',
    }),
  llm: z
    .object({
      provider: z.literal('openai-compatible').default('openai-compatible'),
      model: z.string().min(1).max(200),
      temperature: z.number().min(0).max(2).default(0.7),
      maxTokens: z.number().int().min(1).max(16_000).default(512),
      /** Any OpenAI-compatible endpoint (OpenAI, Azure, Groq, Ollama, vLLM); unset: the server default. */
      baseUrl: z.url().optional(),
      /** Names a server-side key (LLM_API_KEYS); never the key itself. */
      apiKeyRef: id.default('default'),
    })
    .optional(),
  stt: z
    .object({ provider: z.enum(['local', 'openai']).default('local'), model: z.string().optional() })
    .default({ provider: 'local' }),
  tts: z
    .object({ provider: z.enum(['local', 'openai']).default('local'), model: z.string().optional() })
    .default({ provider: 'local' }),
  endpointing: z
    .object({ silenceMs: z.number().int().min(100).max(5000).default(700) })
    .default({ silenceMs: 700 }),
  interruption: z
    .object({
      enabled: z.boolean().default(true),
      minSpeechMs: z.number().int().min(50).max(3000).default(250),
    })
    .default({ enabled: true, minSpeechMs: 250 }),
  /** Voice calls: keep a stereo WAV (caller, agent) of each call in the recording store. */
  recording: z.object({ enabled: z.boolean().default(false) }).default({ enabled: false }),
  tools: z.array(toolSchema).max(50).default([]),
  knowledge: z
    .array(z.object({ title: text(200), content: text(20_000) }))
    .max(200)
    .default([]),
  maxCallDurationSeconds: z
    .number()
    .int()
    .min(10)
    .max(4 * 3600)
    .default(600),
  /** Silence after a prompt before the caller counts as not answering. */
  noInputTimeoutSeconds: z.number().int().min(1).max(120).default(8),
  analysis: z
    .object({
      /** JSON Schema for structured data extracted from the transcript after the call. */
      structuredDataSchema: jsonSchemaObject.optional(),
      /** What a successful call looks like, for the success evaluation. */
      successCriteria: z.string().max(4000).optional(),
    })
    .default({}),
  globalIntents: z.array(globalIntentSchema).max(50).default([]),
  flow: z.object({
    startNodeId: id,
    nodes: z.array(flowNodeSchema).min(1).max(500),
    edges: z.array(flowEdgeSchema).max(2000).default([]),
  }),
});

export type AgentDefinitionInput = z.input<typeof agentDefinitionSchema>;
export type AgentDefinition = z.output<typeof agentDefinitionSchema>;
export type FlowNode = z.output<typeof flowNodeSchema>;
export type FlowEdge = z.output<typeof flowEdgeSchema>;
export type EdgeCondition = z.output<typeof edgeConditionSchema>;
export type ToolDefinition = z.output<typeof toolSchema>;
export type GlobalIntent = z.output<typeof globalIntentSchema>;
export type NodeOf<T extends NodeType> = Extract<FlowNode, { type: T }>;
