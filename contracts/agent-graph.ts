/**
 * Validates an agent definition: first its fields (the zod schema in `agent-definition.ts`), then
 * the rules of its flow graph. Every issue carries a stable code, a path such as
 * `flow.nodes[3].prompt` and, when it concerns a node or an edge, that node's or edge's id, so the
 * dashboard can point at the culprit. Pure: no Node built-ins, safe to import from workflows.
 */
import type { z } from 'zod';
import {
  agentDefinitionSchema,
  type AgentDefinition,
  type FlowEdge,
  type FlowNode,
  type NodeType,
} from './agent-definition';

/** Issue codes are part of the public API (the dashboard and API clients match on them). */
export const DEFINITION_ISSUE_CODES = [
  // Field-level (from the schema).
  'FIELD_REQUIRED',
  'FIELD_INVALID',
  // Graph-level.
  'START_NODE_MISSING',
  'DUPLICATE_NODE_ID',
  'DUPLICATE_EDGE_ID',
  'DUPLICATE_TOOL_NAME',
  'EDGE_SOURCE_UNKNOWN',
  'EDGE_TARGET_UNKNOWN',
  'NODE_UNREACHABLE',
  'INTENT_TARGET_UNKNOWN',
  'COLLECT_CHOICES_MISSING',
  'TERMINAL_HAS_EDGES',
  'DEAD_END',
  'BRANCH_NO_DEFAULT',
  'CONDITION_SLOT_UNKNOWN',
  'TOOL_UNKNOWN',
  'LLM_NOT_CONFIGURED',
  'OUTCOME_UNKNOWN',
  'EDGE_CONDITION_MISPLACED',
] as const;
export type DefinitionIssueCode = (typeof DEFINITION_ISSUE_CODES)[number];

export interface DefinitionIssue {
  code: string;
  message: string;
  /** Where in the definition, e.g. `flow.nodes[3].prompt`; '' for the definition itself. */
  path: string;
  nodeId?: string;
  edgeId?: string;
}

export type DefinitionValidation =
  { ok: true; definition: AgentDefinition } | { ok: false; issues: DefinitionIssue[] };

const TERMINAL_TYPES: readonly NodeType[] = ['end', 'transfer'];
/** Nodes that can fail (a collect out of attempts, a tool call that failed, an llm step that gave up). */
const FAILING_TYPES: readonly NodeType[] = ['collect', 'tool', 'llm'];

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out ? `.${String(segment)}` : String(segment);
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = root;
  for (const segment of path) {
    if (Array.isArray(current) && typeof segment === 'number') current = current[segment];
    else if (isRecord(current) && typeof segment === 'string') current = current[segment];
    else return undefined;
  }
  return current;
}

function stringAt(root: unknown, path: readonly PropertyKey[]): string | undefined {
  const value = valueAt(root, path);
  return typeof value === 'string' ? value : undefined;
}

/** Which element of the definition a schema issue belongs to, so its message can name it. */
function subjectOf(
  input: unknown,
  path: readonly PropertyKey[],
): { label: string; rest: readonly PropertyKey[]; nodeId?: string; edgeId?: string } | undefined {
  const [first, second, third] = path;
  if (first === 'flow' && (second === 'nodes' || second === 'edges') && typeof third === 'number') {
    const elementId = stringAt(input, ['flow', second, third, 'id']);
    const kind = second === 'nodes' ? 'Node' : 'Edge';
    const label = elementId ? `${kind} "${elementId}"` : `${kind} at flow.${second}[${third}]`;
    if (second === 'nodes')
      return { label, rest: path.slice(3), ...(elementId ? { nodeId: elementId } : {}) };
    // An edge's issue also names the node it leaves, so the editor can point at both.
    const source = stringAt(input, ['flow', 'edges', third, 'source']);
    return {
      label: source ? `${label} (from node "${source}")` : label,
      rest: path.slice(3),
      ...(source ? { nodeId: source } : {}),
      ...(elementId ? { edgeId: elementId } : {}),
    };
  }
  if ((first === 'tools' || first === 'globalIntents') && typeof second === 'number') {
    const key = first === 'tools' ? 'name' : 'id';
    const name = stringAt(input, [first, second, key]);
    const kind = first === 'tools' ? 'Tool' : 'Global intent';
    return { label: name ? `${kind} "${name}"` : `${kind} at ${first}[${second}]`, rest: path.slice(2) };
  }
  return undefined;
}

function schemaIssue(input: unknown, issue: z.core.$ZodIssue): DefinitionIssue {
  const path = formatPath(issue.path);
  const subject = subjectOf(input, issue.path);
  const ids = {
    ...(subject?.nodeId ? { nodeId: subject.nodeId } : {}),
    ...(subject?.edgeId ? { edgeId: subject.edgeId } : {}),
  };
  const field = subject ? formatPath(subject.rest) : path;
  const missing = issue.path.length > 0 && valueAt(input, issue.path) === undefined;

  if (
    subject?.nodeId !== undefined &&
    issue.code === 'too_small' &&
    issue.path.at(-1) === 'choices' &&
    stringAt(input, [...issue.path.slice(0, -1), 'slotType']) === 'choice'
  ) {
    return {
      code: 'COLLECT_CHOICES_MISSING',
      message: `${subject.label}: a choice slot needs at least 2 choices`,
      path,
      ...ids,
    };
  }

  const options = 'values' in issue ? issue.values : 'options' in issue ? issue.options : undefined;
  const oneOf = Array.isArray(options) && options.length ? ` (one of ${options.map(String).join(', ')})` : '';
  if (issue.path.length === 0) {
    return {
      code: 'FIELD_INVALID',
      message: `The definition must be a JSON object (${issue.message})`,
      path,
      ...ids,
    };
  }
  const where = subject ? (field ? `${subject.label}: ${field}` : subject.label) : field;
  if (missing) {
    return { code: 'FIELD_REQUIRED', message: `${where} is required${oneOf}`, path, ...ids };
  }
  // The schema's own messages read as a predicate ("must be …"); zod's built-in ones as a sentence.
  const reads = field && /^[a-z]/.test(issue.message) ? ` ${issue.message}` : `: ${issue.message}`;
  return { code: 'FIELD_INVALID', message: `${where}${reads}`, path, ...ids };
}

interface Indexed<T> {
  item: T;
  index: number;
}

const isDefault = (edge: FlowEdge) => edge.when === undefined;

/** The graph rules the schema cannot express. Assumes `def` already passed the schema. */
export function checkFlowGraph(def: AgentDefinition): DefinitionIssue[] {
  const issues: DefinitionIssue[] = [];
  const { nodes, edges, startNodeId } = def.flow;

  const nodesById = new Map<string, Indexed<FlowNode>>();
  nodes.forEach((node, index) => {
    if (nodesById.has(node.id)) {
      issues.push({
        code: 'DUPLICATE_NODE_ID',
        message: `Node id "${node.id}" is used by more than one node (flow.nodes[${nodesById.get(node.id)!.index}] and flow.nodes[${index}])`,
        path: `flow.nodes[${index}].id`,
        nodeId: node.id,
      });
    } else {
      nodesById.set(node.id, { item: node, index });
    }
  });

  const seenEdgeIds = new Map<string, number>();
  edges.forEach((edge, index) => {
    const first = seenEdgeIds.get(edge.id);
    if (first !== undefined) {
      issues.push({
        code: 'DUPLICATE_EDGE_ID',
        message: `Edge id "${edge.id}" (from node "${edge.source}") is used by more than one edge (flow.edges[${first}] and flow.edges[${index}])`,
        path: `flow.edges[${index}].id`,
        nodeId: edge.source,
        edgeId: edge.id,
      });
    } else {
      seenEdgeIds.set(edge.id, index);
    }
  });

  const toolNames = new Set<string>();
  def.tools.forEach((tool, index) => {
    if (toolNames.has(tool.name)) {
      issues.push({
        code: 'DUPLICATE_TOOL_NAME',
        message: `Tool name "${tool.name}" is used by more than one tool`,
        path: `tools[${index}].name`,
      });
    }
    toolNames.add(tool.name);
  });

  const startKnown = nodesById.has(startNodeId);
  if (!startKnown) {
    issues.push({
      code: 'START_NODE_MISSING',
      message: `The start node "${startNodeId}" is not a node of the flow`,
      path: 'flow.startNodeId',
    });
  }

  const outgoing = new Map<string, Indexed<FlowEdge>[]>();
  edges.forEach((edge, index) => {
    const sourceKnown = nodesById.has(edge.source);
    const targetKnown = nodesById.has(edge.target);
    if (!sourceKnown) {
      issues.push({
        code: 'EDGE_SOURCE_UNKNOWN',
        message: `Edge "${edge.id}" starts at node "${edge.source}", which does not exist`,
        path: `flow.edges[${index}].source`,
        edgeId: edge.id,
      });
    }
    if (!targetKnown) {
      issues.push({
        code: 'EDGE_TARGET_UNKNOWN',
        message: `Edge "${edge.id}" from node "${edge.source}" points to node "${edge.target}", which does not exist`,
        path: `flow.edges[${index}].target`,
        ...(sourceKnown ? { nodeId: edge.source } : {}),
        edgeId: edge.id,
      });
    }
    if (sourceKnown) {
      const list = outgoing.get(edge.source) ?? [];
      list.push({ item: edge, index });
      outgoing.set(edge.source, list);
    }
  });

  def.globalIntents.forEach((intent, index) => {
    if (!nodesById.has(intent.target)) {
      issues.push({
        code: 'INTENT_TARGET_UNKNOWN',
        message: `Global intent "${intent.id}" jumps to node "${intent.target}", which does not exist`,
        path: `globalIntents[${index}].target`,
      });
    }
  });

  // Reachability: from the start node along edges; a global intent can fire anywhere, so its
  // target is reachable whenever the call is.
  if (startKnown) {
    const reached = new Set<string>();
    const queue = [startNodeId, ...def.globalIntents.map((i) => i.target).filter((t) => nodesById.has(t))];
    while (queue.length) {
      const id = queue.shift()!;
      if (reached.has(id)) continue;
      reached.add(id);
      for (const { item } of outgoing.get(id) ?? []) if (nodesById.has(item.target)) queue.push(item.target);
    }
    for (const [id, { index }] of nodesById) {
      if (!reached.has(id)) {
        issues.push({
          code: 'NODE_UNREACHABLE',
          message: `Node "${id}" cannot be reached from the start node "${startNodeId}"`,
          path: `flow.nodes[${index}]`,
          nodeId: id,
        });
      }
    }
  }

  // Slots a condition may test. An llm node may set any slot, so then nothing is checked.
  const hasLlmNode = nodes.some((n) => n.type === 'llm');
  const settableSlots = new Set<string>();
  for (const node of nodes) {
    if (node.type === 'collect') settableSlots.add(node.slot);
    if (node.type === 'tool' && node.resultSlot) settableSlots.add(node.resultSlot);
  }

  for (const [id, { item: node, index }] of nodesById) {
    const path = `flow.nodes[${index}]`;
    const out = outgoing.get(id) ?? [];
    const label = `${node.type[0]!.toUpperCase()}${node.type.slice(1)} node "${id}"`;

    if (node.type === 'collect' && node.slotType === 'choice' && (node.choices?.length ?? 0) < 2) {
      issues.push({
        code: 'COLLECT_CHOICES_MISSING',
        message: `${label} collects a choice but lists fewer than 2 choices`,
        path: `${path}.choices`,
        nodeId: id,
      });
    }

    if (node.type === 'llm' && !def.llm) {
      issues.push({
        code: 'LLM_NOT_CONFIGURED',
        message: `${label} needs an LLM, but the definition has no llm settings`,
        path,
        nodeId: id,
      });
    }

    const toolRefs: { name: string; path: string }[] =
      node.type === 'tool'
        ? [{ name: node.tool, path: `${path}.tool` }]
        : node.type === 'llm'
          ? node.tools.map((name, i) => ({ name, path: `${path}.tools[${i}]` }))
          : [];
    for (const ref of toolRefs) {
      if (!toolNames.has(ref.name)) {
        issues.push({
          code: 'TOOL_UNKNOWN',
          message: `${label} uses tool "${ref.name}", which is not among the definition's tools`,
          path: ref.path,
          nodeId: id,
        });
      }
    }

    if (TERMINAL_TYPES.includes(node.type)) {
      for (const { item: edge, index: edgeIndex } of out) {
        issues.push({
          code: 'TERMINAL_HAS_EDGES',
          message: `${label} ends the call, so it cannot have outgoing edges (edge "${edge.id}")`,
          path: `flow.edges[${edgeIndex}]`,
          nodeId: id,
          edgeId: edge.id,
        });
      }
      continue;
    }

    if (node.type === 'branch') {
      if (out.length === 0) {
        issues.push({
          code: 'DEAD_END',
          message: `${label} has no outgoing edge; add edges with conditions and a default edge`,
          path,
          nodeId: id,
        });
      } else if (!out.some(({ item }) => isDefault(item))) {
        issues.push({
          code: 'BRANCH_NO_DEFAULT',
          message: `${label} has only conditional edges; add a default edge (no condition) for when none match`,
          path,
          nodeId: id,
        });
      }
    } else if (!out.some(({ item }) => isDefault(item))) {
      // An llm node whose every declared outcome has an edge needs no default edge.
      const coveredByOutcomes =
        node.type === 'llm' &&
        node.outcomes.length > 0 &&
        node.outcomes.every((outcome) =>
          out.some(({ item }) => item.when?.kind === 'outcome' && item.when.equals === outcome),
        );
      if (!coveredByOutcomes) {
        issues.push({
          code: 'DEAD_END',
          message:
            out.length === 0
              ? `${label} has no outgoing edge; the call would stop here`
              : `${label} has no default edge (one without a condition); the call would stop here when no condition matches`,
          path,
          nodeId: id,
        });
      }
    }
  }

  edges.forEach((edge, index) => {
    const source = nodesById.get(edge.source)?.item;
    const when = edge.when;
    if (!source || !when) return;
    const path = `flow.edges[${index}].when`;
    const ids = { nodeId: source.id, edgeId: edge.id };
    if (when.kind === 'outcome') {
      if (source.type !== 'llm') {
        issues.push({
          code: 'EDGE_CONDITION_MISPLACED',
          message: `Edge "${edge.id}" tests an llm outcome, but its source node "${source.id}" is a ${source.type} node`,
          path,
          ...ids,
        });
      } else if (source.outcomes.length > 0 && !source.outcomes.includes(when.equals)) {
        issues.push({
          code: 'OUTCOME_UNKNOWN',
          message: `Edge "${edge.id}" tests outcome "${when.equals}", which llm node "${source.id}" does not declare (${source.outcomes.join(', ')})`,
          path: `${path}.equals`,
          ...ids,
        });
      }
    } else if (when.kind === 'failure') {
      if (!FAILING_TYPES.includes(source.type)) {
        issues.push({
          code: 'EDGE_CONDITION_MISPLACED',
          message: `Edge "${edge.id}" is a failure edge, but its source node "${source.id}" is a ${source.type} node, which cannot fail (only collect, tool and llm nodes can)`,
          path,
          ...ids,
        });
      }
    } else if (!hasLlmNode && !settableSlots.has(when.slot)) {
      issues.push({
        code: 'CONDITION_SLOT_UNKNOWN',
        message: `Edge "${edge.id}" from node "${source.id}" tests slot "${when.slot}", which no collect or tool node sets`,
        path: `${path}.slot`,
        ...ids,
      });
    }
  });

  return issues;
}

/** The one entry point: schema first (with defaults applied), then the graph rules. */
export function validateAgentDefinition(input: unknown): DefinitionValidation {
  const parsed = agentDefinitionSchema.safeParse(input);
  if (!parsed.success) {
    return { ok: false, issues: parsed.error.issues.map((issue) => schemaIssue(input, issue)) };
  }
  const issues = checkFlowGraph(parsed.data);
  return issues.length ? { ok: false, issues } : { ok: true, definition: parsed.data };
}
