/**
 * The visual flow designer of the agent editor: a React Flow canvas of the agent's nodes and edges,
 * a toolbar (add nodes, auto-layout, undo/redo, start node, problem count) and the node inspector.
 * Every edit reports the new flow through `onChange`; validation runs on every change with the
 * shared `validateAgentDefinition`, and its issues are drawn on the nodes and edges they concern.
 * Everything the mouse can do has a keyboard/form alternative in the inspector.
 */
import { memo, useCallback, useEffect, useMemo, useRef, useState, type JSX } from 'react';
import {
  Background,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type Node,
  type NodeChange,
  type NodeProps,
  type NodeTypes,
} from '@xyflow/react';
import { NODE_TYPES, type AgentDefinitionInput, type NodeType } from '../../../contracts/agent-definition';
import { validateAgentDefinition, type DefinitionIssue } from '../../../contracts/agent-graph';
import {
  ID_PATTERN,
  NODE_ICONS,
  indexIssues,
  issueText,
  type Selection,
  NODE_SIZE,
  TERMINAL_TYPES,
  TYPE_LABELS,
  addNode,
  autoLayout,
  conditionLabel,
  connect,
  createNode,
  edgesOf,
  fillPositions,
  historyBreak,
  historyPush,
  historyRedo,
  historyStart,
  historyUndo,
  layoutPositions,
  moveNode,
  nextNodeId,
  nodeSummary,
  patchNode,
  placeRightOf,
  removeEdge,
  removeNode,
  renameIntentTargets,
  renameNode,
  sameFlow,
  setEdgeCondition,
  slotsOf,
  type EdgeWhen,
  type Flow,
  type FlowNodeIn,
  type History,
  type Size,
  type XY,
} from '../flow';
import { NodeInspector } from './NodeInspector';

export interface FlowDesignerProps {
  /** The whole draft definition (tools, intents, llm matter for validation and for choices). */
  definition: AgentDefinitionInput;
  /** Every edit (add/move/connect/edit/delete/layout/undo) reports the new flow. */
  onChange: (flow: AgentDefinitionInput['flow']) => void;
  /** Viewer or a published version: pan/zoom/select/inspect only, no edits, no edit buttons. */
  readOnly: boolean;
  /** Issues from a refused save/publish (shown like local ones until the flow is edited). */
  serverIssues?: DefinitionIssue[];
  /**
   * Optional: renaming a node that global intents jump to also renames their target. Intents are
   * outside the flow, so such a rename is reported here (the whole definition) instead of through
   * `onChange`. Without it, the rename leaves the intents as they are (an issue says so).
   */
  onDefinitionChange?: (definition: AgentDefinitionInput) => void;
}

const SCHEMA_CODES = new Set(['FIELD_REQUIRED', 'FIELD_INVALID', 'COLLECT_CHOICES_MISSING']);

function isFlowIssue(issue: DefinitionIssue): boolean {
  return (
    issue.path.startsWith('flow') ||
    issue.nodeId !== undefined ||
    issue.edgeId !== undefined ||
    issue.code === 'INTENT_TARGET_UNKNOWN'
  );
}

const validName = (value: unknown): value is string =>
  typeof value === 'string' && value.length <= 64 && ID_PATTERN.test(value);

/**
 * The flow's issues in the context of the definition. When a field outside the flow fails the
 * schema (an empty greeting, a masked tool secret), the graph rules would not run at all; then the
 * flow is checked again against a stand-in of the rest (same tool names, intents and llm presence).
 */
export function validateFlow(definition: AgentDefinitionInput, flow: Flow): DefinitionIssue[] {
  const full = validateAgentDefinition({ ...definition, flow });
  if (full.ok) return [];
  const blockedElsewhere = full.issues.some((i) => SCHEMA_CODES.has(i.code) && !i.path.startsWith('flow'));
  if (!blockedElsewhere) return full.issues.filter(isFlowIssue);
  const standIn = {
    greeting: '-',
    ...(definition.llm ? { llm: { model: 'stand-in' } } : {}),
    tools: (definition.tools ?? [])
      .filter((t) => validName(t?.name))
      .map((t) => ({
        name: t.name,
        description: '-',
        url: 'https://example.invalid/',
        signingSecret: 'stand-in-secret-0000',
      })),
    globalIntents: (definition.globalIntents ?? [])
      .filter((intent) => validName(intent?.target))
      .map((intent, i) => ({
        id: validName(intent.id) ? intent.id : `intent_${i}`,
        phrases: ['-'],
        target: intent.target,
      })),
    flow,
  };
  const checked = validateAgentDefinition(standIn);
  return checked.ok ? [] : checked.issues.filter(isFlowIssue);
}

function issueKey(issue: DefinitionIssue): string {
  return `${issue.code}|${issue.path}|${issue.message}`;
}

type DesignerNodeData = {
  node: FlowNodeIn;
  isStart: boolean;
  issues: DefinitionIssue[];
  readOnly: boolean;
};
type DesignerNode = Node<DesignerNodeData>;

/** One card on the canvas: type, id, a one-line summary, and the node's problems. */
const FlowNodeCard = memo(function FlowNodeCard({ data, selected }: NodeProps<DesignerNode>) {
  const { node, isStart, issues, readOnly } = data;
  const terminal = TERMINAL_TYPES.includes(node.type);
  return (
    <div
      className={`flow-node flow-node-${node.type}${issues.length ? ' has-issues' : ''}${selected ? ' is-selected' : ''}`}
    >
      <Handle type="target" position={Position.Top} isConnectable={!readOnly} />
      <div className="flow-node-head">
        <span className="flow-node-icon" aria-hidden="true">
          {NODE_ICONS[node.type] ?? '•'}
        </span>
        <span className="flow-node-type">{TYPE_LABELS[node.type] ?? node.type}</span>
        {isStart && <span className="flow-node-start">Start</span>}
      </div>
      <div className="flow-node-id">{node.id}</div>
      <div className="flow-node-summary" title={nodeSummary(node)}>
        {nodeSummary(node)}
      </div>
      {issues.length > 0 && (
        <ul className="flow-node-issues">
          {issues.map((issue, i) => (
            <li key={i}>⚠ {issueText(issue)}</li>
          ))}
        </ul>
      )}
      <Handle
        type="source"
        position={Position.Bottom}
        isConnectable={!readOnly && !terminal}
        className={terminal ? 'flow-handle-terminal' : undefined}
      />
    </div>
  );
});

const NODE_TYPES_MAP: NodeTypes = Object.fromEntries(NODE_TYPES.map((type) => [type, FlowNodeCard]));

const isTextField = (target: EventTarget | null): boolean => {
  if (!(target instanceof HTMLElement)) return false;
  return (
    target.isContentEditable ||
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement
  );
};

export function FlowDesigner(props: FlowDesignerProps): JSX.Element {
  return (
    <ReactFlowProvider>
      <FlowDesignerInner {...props} />
    </ReactFlowProvider>
  );
}

function FlowDesignerInner({
  definition,
  onChange,
  readOnly,
  serverIssues,
  onDefinitionChange,
}: FlowDesignerProps): JSX.Element {
  const { fitView, setCenter, getViewport } = useReactFlow();
  const propFlow = definition.flow;
  const [history, setHistory] = useState<History<Flow>>(() => historyStart(propFlow));
  const historyRef = useRef(history);
  const [selection, setSelection] = useState<Selection>(null);
  const [sizes, setSizes] = useState<Record<string, Size>>({});
  const [fitRequest, setFitRequest] = useState(0);
  const wrapperRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLDivElement>(null);
  /** Flows this designer reported: when the parent hands one back (even late), it is not news. */
  const emitted = useRef(new WeakSet<object>());
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;

  const flow = history.present;
  const edges = edgesOf(flow);

  // Nodes saved without positions are placed by dagre (not saved until moved or laid out).
  const fallbackPositions = useMemo(
    () => (flow.nodes.some((n) => !n.position) ? layoutPositions(flow) : {}),
    [flow],
  );
  const fallbackRef = useRef(fallbackPositions);
  fallbackRef.current = fallbackPositions;
  const positionOf = useCallback(
    (node: FlowNodeIn): XY => node.position ?? fallbackPositions[node.id] ?? { x: 0, y: 0 },
    [fallbackPositions],
  );

  const setBoth = useCallback((next: History<Flow>) => {
    historyRef.current = next;
    setHistory(next);
  }, []);

  const emit = useCallback((next: Flow) => {
    emitted.current.add(next);
    onChangeRef.current(next);
  }, []);

  /** Applies one edit: records it (grouped edits make one undo step) and reports the new flow. */
  const commit = useCallback(
    (update: (current: Flow) => Flow, group: string | null = null) => {
      const h = historyRef.current;
      // Nodes shown at computed places keep them once the flow is edited (no jumps as edges change).
      const next = fillPositions(update(h.present), fallbackRef.current);
      if (next === h.present || sameFlow(next, h.present)) return;
      setBoth(historyPush(h, next, group));
      emit(next);
    },
    [emit, setBoth],
  );

  const endGroup = useCallback(() => {
    const h = historyRef.current;
    if (h.group !== null) setBoth(historyBreak(h));
  }, [setBoth]);

  // A new flow from outside (a rollback, a reload) replaces the designer's state and its history.
  useEffect(() => {
    const h = historyRef.current;
    if (propFlow === h.present || emitted.current.has(propFlow) || sameFlow(propFlow, h.present)) return;
    setBoth(historyStart(propFlow));
    setSelection(null);
    setFitRequest((n) => n + 1);
  }, [propFlow, setBoth]);

  const undo = useCallback(() => {
    const h = historyRef.current;
    if (!h.past.length) return;
    const next = historyUndo(h);
    setBoth(next);
    emit(next.present);
  }, [emit, setBoth]);

  const redo = useCallback(() => {
    const h = historyRef.current;
    if (!h.future.length) return;
    const next = historyRedo(h);
    setBoth(next);
    emit(next.present);
  }, [emit, setBoth]);

  // Validation, on every change.
  const localIssues = useMemo(() => validateFlow(definition, flow), [definition, flow]);
  // Server issues stay until the flow is edited (after that the local check is the truth).
  const serverKey = JSON.stringify(serverIssues ?? []);
  const [serverSnapshot, setServerSnapshot] = useState({ key: serverKey, flow });
  if (serverSnapshot.key !== serverKey) setServerSnapshot({ key: serverKey, flow });
  const issues = useMemo(() => {
    if (!serverIssues?.length || serverSnapshot.flow !== flow) return localIssues;
    const seen = new Set(localIssues.map(issueKey));
    return [...localIssues, ...serverIssues.filter((i) => isFlowIssue(i) && !seen.has(issueKey(i)))];
  }, [localIssues, serverIssues, serverSnapshot.flow, flow]);
  const index = useMemo(() => indexIssues(issues, flow), [issues, flow]);

  const selectedNode = selection?.kind === 'node' ? flow.nodes.find((n) => n.id === selection.id) : undefined;
  const selectedEdge = selection?.kind === 'edge' ? edges.find((e) => e.id === selection.id) : undefined;

  const rfNodes = useMemo<DesignerNode[]>(
    () =>
      flow.nodes.map((node) => {
        const nodeIssues = index.byNode.get(node.id) ?? [];
        const isStart = node.id === flow.startNodeId;
        const measured = sizes[node.id];
        return {
          id: node.id,
          type: node.type,
          position: positionOf(node),
          data: { node, isStart, issues: nodeIssues, readOnly },
          selected: selection?.kind === 'node' && selection.id === node.id,
          deletable: false,
          ariaLabel: `${TYPE_LABELS[node.type] ?? node.type} node ${node.id}${isStart ? ', start' : ''}${
            nodeIssues.length ? `, ${nodeIssues.length} issue${nodeIssues.length === 1 ? '' : 's'}` : ''
          }`,
          ...(measured ? { measured } : {}),
        };
      }),
    [flow, index, sizes, selection, readOnly, positionOf],
  );

  const rfEdges = useMemo<Edge[]>(
    () =>
      edges.map((edge) => {
        const bad = index.byEdge.has(edge.id);
        const condition = conditionLabel(edge.when);
        const label = edge.label ? `${edge.label} (${condition})` : condition;
        const color = bad ? '#b91c1c' : edge.when ? '#64748b' : '#94a3b8';
        return {
          id: edge.id,
          source: edge.source,
          target: edge.target,
          label: bad ? `⚠ ${label}` : label,
          selected: selection?.kind === 'edge' && selection.id === edge.id,
          deletable: false,
          className: bad ? 'flow-edge-invalid' : undefined,
          style: { stroke: color, strokeWidth: bad ? 2.5 : 1.5 },
          labelStyle: bad ? { fill: '#b91c1c', fontWeight: 600 } : undefined,
          markerEnd: { type: MarkerType.ArrowClosed, color },
          ariaLabel: `Connection from ${edge.source} to ${edge.target}, ${label}${bad ? ', has issues' : ''}`,
        };
      }),
    [edges, index, selection],
  );

  const onNodesChange = useCallback(
    (changes: NodeChange<DesignerNode>[]) => {
      for (const change of changes) {
        if (change.type === 'dimensions' && change.dimensions) {
          const { width, height } = change.dimensions;
          setSizes((s) =>
            s[change.id]?.width === width && s[change.id]?.height === height
              ? s
              : { ...s, [change.id]: { width, height } },
          );
        } else if (change.type === 'select') {
          if (change.selected) setSelection({ kind: 'node', id: change.id });
          else setSelection((s) => (s?.kind === 'node' && s.id === change.id ? null : s));
        } else if (change.type === 'position' && !readOnly) {
          if (change.position) {
            const position = change.position;
            commit((f) => moveNode(f, change.id, position), change.dragging ? `drag:${change.id}` : null);
          }
          if (!change.dragging) endGroup();
        }
      }
    },
    [commit, endGroup, readOnly],
  );

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    for (const change of changes) {
      if (change.type !== 'select') continue;
      if (change.selected) setSelection({ kind: 'edge', id: change.id });
      else setSelection((s) => (s?.kind === 'edge' && s.id === change.id ? null : s));
    }
  }, []);

  const terminalIds = useMemo(
    () => new Set(flow.nodes.filter((n) => TERMINAL_TYPES.includes(n.type)).map((n) => n.id)),
    [flow],
  );
  const isValidConnection = useCallback(
    (c: Connection | Edge) => c.source !== c.target && !terminalIds.has(c.source),
    [terminalIds],
  );
  const onConnect = useCallback(
    (c: Connection) => {
      if (readOnly || !c.source || !c.target || c.source === c.target) return;
      commit((f) => connect(f, c.source, c.target));
    },
    [commit, readOnly],
  );

  const deleteSelection = useCallback(() => {
    const current = historyRef.current.present;
    if (selection?.kind === 'node' && current.nodes.some((n) => n.id === selection.id)) {
      commit((f) => removeNode(f, selection.id));
    } else if (selection?.kind === 'edge' && edgesOf(current).some((e) => e.id === selection.id)) {
      commit((f) => removeEdge(f, selection.id));
    } else return;
    setSelection(null);
  }, [commit, selection]);

  // Keyboard: Ctrl/Cmd+Z undo, Ctrl+Shift+Z / Ctrl+Y redo, Delete/Backspace on the canvas deletes.
  useEffect(() => {
    if (readOnly) return;
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.defaultPrevented || isTextField(event.target)) return;
      const target = event.target instanceof globalThis.Node ? event.target : null;
      const onBody = target === document.body || target === null;
      const inDesigner = Boolean(target && wrapperRef.current?.contains(target));
      const onCanvas = Boolean(target && canvasRef.current?.contains(target));
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      if (mod && (onBody || inDesigner)) {
        if (key === 'z' && !event.shiftKey) {
          event.preventDefault();
          undo();
        } else if ((key === 'z' && event.shiftKey) || key === 'y') {
          event.preventDefault();
          redo();
        }
      } else if (!mod && (event.key === 'Delete' || event.key === 'Backspace') && (onBody || onCanvas)) {
        if (!selection) return;
        event.preventDefault();
        deleteSelection();
      }
    };
    document.addEventListener('keydown', onKeyDown);
    return () => document.removeEventListener('keydown', onKeyDown);
  }, [readOnly, undo, redo, deleteSelection, selection]);

  // After auto-layout or an outside reload: fit the new graph once React Flow has it.
  useEffect(() => {
    if (fitRequest === 0) return;
    const frame = requestAnimationFrame(() => {
      void fitView({ padding: 0.2, maxZoom: 1, duration: 250 });
    });
    return () => cancelAnimationFrame(frame);
  }, [fitRequest, fitView]);

  /** Keeps a node in view (pans to it when it is off screen). */
  const reveal = useCallback(
    (position: XY) => {
      const canvas = canvasRef.current;
      if (!canvas) return;
      const { x, y, zoom } = getViewport();
      const left = position.x * zoom + x;
      const top = position.y * zoom + y;
      const fits =
        left >= 0 &&
        top >= 0 &&
        left + NODE_SIZE.width * zoom <= canvas.clientWidth &&
        top + NODE_SIZE.height * zoom <= canvas.clientHeight;
      if (!fits) {
        void setCenter(position.x + NODE_SIZE.width / 2, position.y + NODE_SIZE.height / 2, {
          zoom,
          duration: 200,
        });
      }
    },
    [getViewport, setCenter],
  );

  const addNodeOfType = (type: NodeType) => {
    const current = historyRef.current.present;
    const id = nextNodeId(type, current.nodes);
    const anchorNode =
      (selection?.kind === 'node' ? current.nodes.find((n) => n.id === selection.id) : undefined) ??
      current.nodes[current.nodes.length - 1];
    const position = placeRightOf(
      anchorNode ? positionOf(anchorNode) : undefined,
      current.nodes.map((n) => positionOf(n)),
    );
    const node = createNode(type, id, position, {
      toolNames: (definition.tools ?? []).map((t) => t.name),
      slots: slotsOf(current),
    });
    commit((f) => addNode(f, node));
    setSelection({ kind: 'node', id });
    reveal(position);
  };

  const layout = () => {
    commit((f) => autoLayout(f, sizes));
    setFitRequest((n) => n + 1);
  };

  const renameSelected = (from: string, to: string) => {
    const intents = definition.globalIntents ?? [];
    const touchesIntents = intents.some((i) => i.target === from);
    if (touchesIntents && onDefinitionChange) {
      const h = historyRef.current;
      const next = renameNode(h.present, from, to);
      setBoth(historyPush(h, next));
      emitted.current.add(next);
      onDefinitionChange({
        ...definition,
        flow: next,
        globalIntents: renameIntentTargets(intents, from, to),
      });
    } else {
      commit((f) => renameNode(f, from, to));
    }
    setSelection({ kind: 'node', id: to });
    setSizes((s) => (s[from] ? { ...s, [to]: s[from] } : s));
  };

  const problemCount = index.total;
  const startKnown = flow.nodes.some((n) => n.id === flow.startNodeId);
  const problemNodes = [...index.byNode.entries()];

  return (
    <div className="flow-designer" ref={wrapperRef}>
      <div role="toolbar" aria-label="Flow tools" className="flow-toolbar nokey">
        {!readOnly && (
          <div className="flow-toolbar-group" role="group" aria-label="Add a node">
            {NODE_TYPES.map((type) => (
              <button
                key={type}
                type="button"
                className={`btn small flow-add flow-add-${type}`}
                aria-label={`Add ${type} node`}
                title={`Add ${type} node`}
                onClick={() => addNodeOfType(type)}
              >
                <span aria-hidden="true">+ </span>
                {TYPE_LABELS[type]}
              </button>
            ))}
          </div>
        )}
        {!readOnly && (
          <div className="flow-toolbar-group">
            <button type="button" className="btn small" onClick={layout}>
              Auto-layout
            </button>
            <button
              type="button"
              className="btn small"
              onClick={undo}
              disabled={history.past.length === 0}
              title="Undo (Ctrl+Z)"
            >
              Undo
            </button>
            <button
              type="button"
              className="btn small"
              onClick={redo}
              disabled={history.future.length === 0}
              title="Redo (Ctrl+Shift+Z)"
            >
              Redo
            </button>
          </div>
        )}
        <label className="flow-start-select">
          <span>Start node</span>
          <select
            value={flow.startNodeId}
            disabled={readOnly}
            onChange={(e) => {
              const value = e.target.value;
              commit((f) => ({ ...f, startNodeId: value }));
            }}
          >
            {!startKnown && (
              <option value={flow.startNodeId}>{flow.startNodeId || '(none)'} (missing)</option>
            )}
            {flow.nodes.map((n) => (
              <option key={n.id} value={n.id}>
                {n.id}
              </option>
            ))}
          </select>
        </label>
        <span
          className={`flow-problem-count ${problemCount ? 'bad' : 'good'}`}
          role="status"
          aria-live="polite"
        >
          {problemCount === 0 ? 'No problems' : `${problemCount} problem${problemCount === 1 ? '' : 's'}`}
        </span>
      </div>

      <div className="flow-problems" aria-live="polite">
        {(index.general.length > 0 || problemNodes.length > 0) && (
          <>
            <h3 className="flow-problems-title">Problems</h3>
            <ul>
              {index.general.map((issue, i) => (
                <li key={`g${i}`}>⚠ {issueText(issue)}</li>
              ))}
              {problemNodes.map(([nodeId, list]) => (
                <li key={`n${nodeId}`}>
                  <button
                    type="button"
                    className="btn link"
                    onClick={() => {
                      const target = flow.nodes.find((n) => n.id === nodeId);
                      setSelection({ kind: 'node', id: nodeId });
                      if (target) reveal(positionOf(target));
                    }}
                  >
                    Show problems of {nodeId}
                  </button>{' '}
                  <span className="muted">
                    ({list.length} on the node{list.some((i) => i.edgeId) ? ' or its connections' : ''})
                  </span>
                </li>
              ))}
            </ul>
          </>
        )}
      </div>

      <div className="flow-body">
        <div className="flow-canvas" ref={canvasRef}>
          <ReactFlow<DesignerNode, Edge>
            nodes={rfNodes}
            edges={rfEdges}
            nodeTypes={NODE_TYPES_MAP}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={onConnect}
            isValidConnection={isValidConnection}
            onPaneClick={() => setSelection(null)}
            nodesDraggable={!readOnly}
            nodesConnectable={!readOnly}
            elementsSelectable
            deleteKeyCode={null}
            multiSelectionKeyCode={null}
            selectionKeyCode={null}
            fitView
            fitViewOptions={{ padding: 0.2, maxZoom: 1 }}
            minZoom={0.2}
            maxZoom={2}
          >
            <Background gap={20} />
            <Controls showInteractive={false} />
          </ReactFlow>
        </div>
        <NodeInspector
          flow={flow}
          definition={definition}
          node={selectedNode}
          edge={selectedEdge}
          index={index}
          readOnly={readOnly}
          onPatchNode={(id, patch, group) => commit((f) => patchNode(f, id, patch), group)}
          onRenameNode={renameSelected}
          onDeleteNode={(id) => {
            commit((f) => removeNode(f, id));
            setSelection(null);
          }}
          onConnect={(source, target) => commit((f) => connect(f, source, target))}
          onSetCondition={(edgeId, when: EdgeWhen | undefined, group) =>
            commit((f) => setEdgeCondition(f, edgeId, when), group)
          }
          onRemoveEdge={(edgeId) => {
            commit((f) => removeEdge(f, edgeId));
            setSelection((s) => (s?.kind === 'edge' && s.id === edgeId ? null : s));
          }}
          onSelect={setSelection}
          onEndEdit={endGroup}
        />
      </div>
    </div>
  );
}
