/**
 * Pure helpers of the flow designer: ids for new nodes and edges, new nodes with defaults that pass
 * the schema where they can, edits that keep references intact (rename, delete), the dagre
 * auto-layout, labels for edge conditions, and an undo history. No React, no DOM.
 */
import dagre from '@dagrejs/dagre';
import type { AgentDefinitionInput, NodeType } from '../../contracts/agent-definition';
import type { DefinitionIssue } from '../../contracts/agent-graph';

export type Flow = AgentDefinitionInput['flow'];
export type FlowNodeIn = Flow['nodes'][number];
export type FlowEdgeIn = NonNullable<Flow['edges']>[number];
export type EdgeWhen = NonNullable<FlowEdgeIn['when']>;
export type GlobalIntentIn = NonNullable<AgentDefinitionInput['globalIntents']>[number];
export interface XY {
  x: number;
  y: number;
}
export interface Size {
  width: number;
  height: number;
}

/** Size assumed for a node the canvas has not measured yet. */
export const NODE_SIZE: Size = { width: 240, height: 110 };
const GAP = 60;

/** The id rule of the schema (`id` in agent-definition.ts). */
export const ID_PATTERN = /^[A-Za-z0-9_-]+$/;
export const ID_MAX = 64;

/** Nodes that end the call: they take no outgoing edges. */
export const TERMINAL_TYPES: readonly NodeType[] = ['end', 'transfer'];
/** Nodes that can fail, so a `failure` edge may leave them. */
export const FAILING_TYPES: readonly NodeType[] = ['collect', 'tool', 'llm'];

export const TYPE_LABELS: Record<NodeType, string> = {
  say: 'Say',
  collect: 'Collect',
  branch: 'Branch',
  llm: 'LLM',
  tool: 'Tool',
  transfer: 'Transfer',
  end: 'End',
};

export const edgesOf = (flow: Flow): FlowEdgeIn[] => flow.edges ?? [];

/** `<type>_<n>` with the smallest n ≥ 1 no node uses: the first say node is `say_1`. */
export function nextNodeId(type: NodeType, nodes: readonly { id: string }[]): string {
  const used = new Set(nodes.map((n) => n.id));
  let n = 1;
  while (used.has(`${type}_${n}`)) n++;
  return `${type}_${n}`;
}

/** `e_<source>_<target>`, then `_2`, `_3`… when taken (ids kept within the schema's 64 characters). */
export function nextEdgeId(source: string, target: string, edges: readonly { id: string }[]): string {
  const used = new Set(edges.map((e) => e.id));
  const base = `e_${source.slice(0, 28)}_${target.slice(0, 28)}`;
  if (!used.has(base)) return base;
  let n = 2;
  while (used.has(`${base}_${n}`)) n++;
  return `${base}_${n}`;
}

/** `base`, then `base_2`, `base_3`… whichever is not in `taken`. */
export function uniqueName(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  let n = 2;
  while (used.has(`${base}_${n}`)) n++;
  return `${base}_${n}`;
}

/** Slots that some node sets (collect slots, tool result slots), in flow order. */
export function slotsOf(flow: Flow): string[] {
  const slots: string[] = [];
  for (const node of flow.nodes) {
    if (node.type === 'collect' && node.slot && !slots.includes(node.slot)) slots.push(node.slot);
    if (node.type === 'tool' && node.resultSlot && !slots.includes(node.resultSlot))
      slots.push(node.resultSlot);
  }
  return slots;
}

/** A new node of `type` with defaults that satisfy the schema where a default can. */
export function createNode(
  type: NodeType,
  id: string,
  position: XY,
  context: { toolNames: readonly string[]; slots: readonly string[] },
): FlowNodeIn {
  switch (type) {
    case 'say':
      return { id, type, position, text: 'Hello! How can I help you today?' };
    case 'collect':
      return {
        id,
        type,
        position,
        slot: uniqueName('answer', context.slots),
        slotType: 'text',
        prompt: 'What would you like to do?',
        maxAttempts: 3,
      };
    case 'branch':
      return { id, type, position };
    case 'llm':
      return {
        id,
        type,
        position,
        goal: 'Help the caller with their request.',
        tools: [],
        outcomes: [],
        maxTurns: 20,
      };
    case 'tool':
      // No tool: the node shows "Tool is required" until one is chosen.
      return { id, type, position, tool: context.toolNames[0] ?? '', args: {} };
    case 'transfer':
      // No number can be guessed: the node shows what to fill in.
      return { id, type, position, to: '' };
    case 'end':
      return { id, type, position, disposition: 'completed' };
  }
}

function overlaps(a: XY, b: XY): boolean {
  return Math.abs(a.x - b.x) < NODE_SIZE.width && Math.abs(a.y - b.y) < NODE_SIZE.height;
}

/** Right of `anchor` (or the origin), moved down until it overlaps no node. */
export function placeRightOf(anchor: XY | undefined, taken: readonly XY[]): XY {
  if (!anchor) return { x: 0, y: 0 };
  const spot = { x: anchor.x + NODE_SIZE.width + GAP, y: anchor.y };
  for (let i = 0; i <= taken.length && taken.some((p) => overlaps(p, spot)); i++) {
    spot.y += NODE_SIZE.height + GAP / 2;
  }
  return spot;
}

/** Gives nodes without a position the one in `positions` (where they are shown). */
export function fillPositions(flow: Flow, positions: Readonly<Record<string, XY>>): Flow {
  if (flow.nodes.every((n) => n.position || !positions[n.id])) return flow;
  return {
    ...flow,
    nodes: flow.nodes.map((n) => (n.position || !positions[n.id] ? n : { ...n, position: positions[n.id] })),
  };
}

export function addNode(flow: Flow, node: FlowNodeIn): Flow {
  return { ...flow, nodes: [...flow.nodes, node] };
}

/** Sets fields of one node; a field set to `undefined` is removed (an optional field left empty). */
export function patchNode(flow: Flow, id: string, patch: Record<string, unknown>): Flow {
  return {
    ...flow,
    nodes: flow.nodes.map((node) => {
      if (node.id !== id) return node;
      const next: Record<string, unknown> = { ...node, ...patch };
      for (const key of Object.keys(patch)) if (patch[key] === undefined) delete next[key];
      return next as FlowNodeIn;
    }),
  };
}

export function moveNode(flow: Flow, id: string, position: XY): Flow {
  const rounded = { x: Math.round(position.x), y: Math.round(position.y) };
  return { ...flow, nodes: flow.nodes.map((n) => (n.id === id ? { ...n, position: rounded } : n)) };
}

/** Renames a node and every reference to it in the flow: edges and the start node. */
export function renameNode(flow: Flow, from: string, to: string): Flow {
  const swap = (id: string) => (id === from ? to : id);
  return {
    ...flow,
    startNodeId: swap(flow.startNodeId),
    nodes: flow.nodes.map((n) => (n.id === from ? { ...n, id: to } : n)),
    edges: edgesOf(flow).map((e) =>
      e.source === from || e.target === from ? { ...e, source: swap(e.source), target: swap(e.target) } : e,
    ),
  };
}

/** Global intents jumping to `from` jump to `to` instead. */
export function renameIntentTargets(
  intents: readonly GlobalIntentIn[],
  from: string,
  to: string,
): GlobalIntentIn[] {
  return intents.map((i) => (i.target === from ? { ...i, target: to } : i));
}

/** Removes a node and the edges that leave or reach it. */
export function removeNode(flow: Flow, id: string): Flow {
  return {
    ...flow,
    nodes: flow.nodes.filter((n) => n.id !== id),
    edges: edgesOf(flow).filter((e) => e.source !== id && e.target !== id),
  };
}

/** A default edge (no condition) from `source` to `target`. */
export function connect(flow: Flow, source: string, target: string, when?: EdgeWhen): Flow {
  const edges = edgesOf(flow);
  const edge: FlowEdgeIn = {
    id: nextEdgeId(source, target, edges),
    source,
    target,
    ...(when ? { when } : {}),
  };
  return { ...flow, edges: [...edges, edge] };
}

export function removeEdge(flow: Flow, id: string): Flow {
  return { ...flow, edges: edgesOf(flow).filter((e) => e.id !== id) };
}

/** Sets (or with `undefined` clears: the default edge) an edge's condition. */
export function setEdgeCondition(flow: Flow, id: string, when: EdgeWhen | undefined): Flow {
  return {
    ...flow,
    edges: edgesOf(flow).map((e) => {
      if (e.id !== id) return e;
      const { when: _old, ...rest } = e;
      return when ? { ...rest, when } : rest;
    }),
  };
}

/** Top-left positions from a top-to-bottom dagre layout, by node id. */
export function layoutPositions(flow: Flow, sizes: Readonly<Record<string, Size>> = {}): Record<string, XY> {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: 'TB', nodesep: 50, ranksep: 70, marginx: 20, marginy: 20 });
  graph.setDefaultEdgeLabel(() => ({}));
  const ids = new Set<string>();
  for (const node of flow.nodes) {
    if (ids.has(node.id)) continue;
    ids.add(node.id);
    graph.setNode(node.id, { ...(sizes[node.id] ?? NODE_SIZE) });
  }
  for (const edge of edgesOf(flow)) {
    if (ids.has(edge.source) && ids.has(edge.target) && edge.source !== edge.target) {
      graph.setEdge(edge.source, edge.target);
    }
  }
  dagre.layout(graph);
  const positions: Record<string, XY> = {};
  for (const id of ids) {
    const placed = graph.node(id) as { x: number; y: number; width: number; height: number } | undefined;
    if (!placed) continue;
    positions[id] = {
      x: Math.round(placed.x - placed.width / 2),
      y: Math.round(placed.y - placed.height / 2),
    };
  }
  return positions;
}

/** The flow with every node placed by `layoutPositions`. */
export function autoLayout(flow: Flow, sizes: Readonly<Record<string, Size>> = {}): Flow {
  const positions = layoutPositions(flow, sizes);
  return {
    ...flow,
    nodes: flow.nodes.map((n) => (positions[n.id] ? { ...n, position: positions[n.id] } : n)),
  };
}

export const OPERATOR_LABELS: Record<string, string> = {
  eq: '=',
  neq: '≠',
  gt: '>',
  gte: '≥',
  lt: '<',
  lte: '≤',
  contains: 'contains',
  is_set: 'is set',
  is_not_set: 'is not set',
};

/** Operators that compare with no value. */
export const VALUELESS_OPS: readonly string[] = ['is_set', 'is_not_set'];

/** `default`, `slot intent = yes`, `outcome booked`, `failure`. */
export function conditionLabel(when: EdgeWhen | undefined): string {
  if (!when) return 'default';
  switch (when.kind) {
    case 'slot': {
      const op = OPERATOR_LABELS[when.op] ?? when.op;
      const value =
        VALUELESS_OPS.includes(when.op) || when.value === undefined ? '' : ` ${String(when.value)}`;
      return `slot ${when.slot} ${op}${value}`;
    }
    case 'outcome':
      return `outcome ${when.equals}`;
    case 'failure':
      return 'failure';
  }
}

/** A condition value typed in a field: '' is none, true/false are booleans, plain numbers are numbers. */
export function parseConditionValue(text: string): string | number | boolean | undefined {
  if (text === '') return undefined;
  if (text === 'true') return true;
  if (text === 'false') return false;
  const n = Number(text);
  if (text.trim() !== '' && Number.isFinite(n) && String(n) === text) return n;
  return text;
}

/** One line describing what a node does (its text, prompt, goal, tool, number or disposition). */
export function nodeSummary(node: FlowNodeIn): string {
  switch (node.type) {
    case 'say':
      return node.text;
    case 'collect':
      return `${node.slot || '?'} (${node.slotType}): ${node.prompt}`;
    case 'branch':
      return 'Chooses an edge by its conditions';
    case 'llm':
      return node.goal;
    case 'tool':
      return node.tool
        ? `Calls ${node.tool}${node.resultSlot ? ` → ${node.resultSlot}` : ''}`
        : 'No tool chosen';
    case 'transfer':
      return node.to ? `Transfers to ${node.to}` : 'No number set';
    case 'end':
      return `Ends: ${node.disposition}`;
  }
}

/** Splits a comma-separated list, dropping blanks. */
export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Structural equality of two flows (they are plain JSON). */
export function sameFlow(a: Flow, b: Flow): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Undo history: `present` plus the states before and after it. */
export interface History<T> {
  past: T[];
  present: T;
  future: T[];
  /** Edits in the same group (one drag, typing in one field) replace each other: one undo step. */
  group: string | null;
}

export const HISTORY_LIMIT = 100;

export function historyStart<T>(present: T): History<T> {
  return { past: [], present, future: [], group: null };
}

/** Records `next`; in the same group as the last edit it replaces it instead of adding a step. */
export function historyPush<T>(
  h: History<T>,
  next: T,
  group: string | null = null,
  limit = HISTORY_LIMIT,
): History<T> {
  if (group !== null && group === h.group) return { ...h, present: next, future: [] };
  return { past: [...h.past, h.present].slice(-limit), present: next, future: [], group };
}

/** Ends the current group: the next edit is a new step even in the same group. */
export function historyBreak<T>(h: History<T>): History<T> {
  return h.group === null ? h : { ...h, group: null };
}

export function historyUndo<T>(h: History<T>): History<T> {
  const previous = h.past[h.past.length - 1];
  if (previous === undefined) return h;
  return { past: h.past.slice(0, -1), present: previous, future: [h.present, ...h.future], group: null };
}

export function historyRedo<T>(h: History<T>): History<T> {
  const [next, ...rest] = h.future;
  if (next === undefined) return h;
  return { past: [...h.past, h.present].slice(-HISTORY_LIMIT), present: next, future: rest, group: null };
}

/** What the designer has selected: a node or an edge, by id. */
export type Selection = { kind: 'node' | 'edge'; id: string } | null;

/** Issues sorted by what they concern. */
export interface IssueIndex {
  byNode: Map<string, DefinitionIssue[]>;
  byEdge: Map<string, DefinitionIssue[]>;
  /** Flow issues of no particular node or edge (e.g. START_NODE_MISSING). */
  general: DefinitionIssue[];
  total: number;
}

export const NODE_ICONS: Record<NodeType, string> = {
  say: '❝',
  collect: '?',
  branch: '⋔',
  llm: '✦',
  tool: '⚙',
  transfer: '↪',
  end: '■',
};

const SHORT_TITLES: Record<string, string> = {
  FIELD_REQUIRED: 'Missing',
  FIELD_INVALID: 'Invalid',
  DEAD_END: 'Dead end',
  NODE_UNREACHABLE: 'Unreachable',
  COLLECT_CHOICES_MISSING: 'Choices missing',
  TERMINAL_HAS_EDGES: 'Ends the call',
  BRANCH_NO_DEFAULT: 'No default edge',
  CONDITION_SLOT_UNKNOWN: 'Unknown slot',
  TOOL_UNKNOWN: 'Unknown tool',
  LLM_NOT_CONFIGURED: 'No LLM',
  OUTCOME_UNKNOWN: 'Unknown outcome',
  EDGE_CONDITION_MISPLACED: 'Misplaced condition',
  DUPLICATE_NODE_ID: 'Duplicate ID',
  DUPLICATE_EDGE_ID: 'Duplicate edge ID',
  EDGE_TARGET_UNKNOWN: 'Broken edge',
  EDGE_SOURCE_UNKNOWN: 'Broken edge',
  START_NODE_MISSING: 'No start node',
  INTENT_TARGET_UNKNOWN: 'Broken intent',
};

/** `⚠ Dead end: Say node "say_1" has no outgoing edge…` */
export function issueText(issue: DefinitionIssue): string {
  const title = SHORT_TITLES[issue.code];
  return title ? `${title}: ${issue.message}` : issue.message;
}

/** Sorts issues by node and edge (also when they only name one by its path, `flow.nodes[3]…`). */
export function indexIssues(issues: readonly DefinitionIssue[], flow: Flow): IssueIndex {
  const byNode = new Map<string, DefinitionIssue[]>();
  const byEdge = new Map<string, DefinitionIssue[]>();
  const general: DefinitionIssue[] = [];
  const nodeIds = new Set(flow.nodes.map((n) => n.id));
  const edges = edgesOf(flow);
  const edgeIds = new Set(edges.map((e) => e.id));
  const add = (map: Map<string, DefinitionIssue[]>, id: string, issue: DefinitionIssue) => {
    const list = map.get(id) ?? [];
    list.push(issue);
    map.set(id, list);
  };
  for (const issue of issues) {
    let nodeId = issue.nodeId;
    let edgeId = issue.edgeId;
    const nodeMatch = /^flow\.nodes\[(\d+)\]/.exec(issue.path);
    if (nodeId === undefined && nodeMatch) nodeId = flow.nodes[Number(nodeMatch[1])]?.id;
    const edgeMatch = /^flow\.edges\[(\d+)\]/.exec(issue.path);
    if (edgeMatch) {
      const edge = edges[Number(edgeMatch[1])];
      if (edgeId === undefined) edgeId = edge?.id;
      if (nodeId === undefined) nodeId = edge?.source;
    }
    const onNode = nodeId !== undefined && nodeIds.has(nodeId);
    const onEdge = edgeId !== undefined && edgeIds.has(edgeId);
    if (onNode) add(byNode, nodeId!, issue);
    if (onEdge) add(byEdge, edgeId!, issue);
    if (!onNode && !onEdge) general.push(issue);
  }
  return { byNode, byEdge, general, total: issues.length };
}
