/**
 * The inspector beside the flow canvas: the selected node's fields (per node type, named as in the
 * schema), its issues, and its outgoing connections with their conditions: the keyboard/form
 * alternative to dragging between handles. A selected edge shows the same condition editor.
 */
import { useId, useState, type JSX, type ReactNode } from 'react';
import {
  CONDITION_OPS,
  SLOT_TYPES,
  type AgentDefinitionInput,
  type NodeType,
} from '../../../contracts/agent-definition';
import type { DefinitionIssue } from '../../../contracts/agent-graph';
import {
  FAILING_TYPES,
  ID_MAX,
  ID_PATTERN,
  NODE_ICONS,
  OPERATOR_LABELS,
  TERMINAL_TYPES,
  TYPE_LABELS,
  VALUELESS_OPS,
  conditionLabel,
  edgesOf,
  issueText,
  parseConditionValue,
  parseList,
  slotsOf,
  type EdgeWhen,
  type Flow,
  type FlowEdgeIn,
  type FlowNodeIn,
  type IssueIndex,
  type Selection,
} from '../flow';
import { Field } from '../ui';

export interface NodeInspectorProps {
  flow: Flow;
  definition: AgentDefinitionInput;
  /** The selected node, if a node is selected. */
  node: FlowNodeIn | undefined;
  /** The selected edge, if an edge is selected. */
  edge: FlowEdgeIn | undefined;
  index: IssueIndex;
  readOnly: boolean;
  /** Sets fields of a node (`undefined` removes an optional field); edits in one group are one undo step. */
  onPatchNode: (id: string, patch: Record<string, unknown>, group: string | null) => void;
  onRenameNode: (from: string, to: string) => void;
  onDeleteNode: (id: string) => void;
  onConnect: (source: string, target: string) => void;
  onSetCondition: (edgeId: string, when: EdgeWhen | undefined, group: string | null) => void;
  onRemoveEdge: (edgeId: string) => void;
  onSelect: (selection: Selection) => void;
  /** A field lost focus: the next edit starts a new undo step. */
  onEndEdit: () => void;
}

const SLOT_TYPE_LABELS: Record<string, string> = {
  text: 'text — free text',
  number: 'number',
  yes_no: 'yes_no — yes or no',
  choice: 'choice — one of a list',
  datetime: 'datetime — a date and time',
  phone: 'phone — a phone number',
  email: 'email — an email address',
};

const CONDITION_KINDS = ['default', 'slot', 'outcome', 'failure'] as const;
type ConditionKind = (typeof CONDITION_KINDS)[number];
const KIND_LABELS: Record<ConditionKind, string> = {
  default: 'default — when no other condition matches',
  slot: 'slot — a slot has a value',
  outcome: 'outcome — the LLM step reported it',
  failure: 'failure — out of attempts or failed',
};

export function NodeInspector(props: NodeInspectorProps): JSX.Element {
  const { node, edge, readOnly, onEndEdit } = props;
  return (
    <section aria-label="Node inspector" className="flow-inspector nokey" onBlur={onEndEdit}>
      {node ? (
        <NodeForm {...props} node={node} />
      ) : edge ? (
        <EdgeForm {...props} edge={edge} />
      ) : (
        <div className="flow-inspector-empty">
          <h2>Inspector</h2>
          <p className="muted">
            Select a node or a connection on the canvas to {readOnly ? 'see its settings' : 'edit it'}. With
            the keyboard: Tab to a node and press Enter.
          </p>
          {!readOnly && (
            <p className="muted">
              Add nodes with the buttons above; connect them here or by dragging between handles.
            </p>
          )}
        </div>
      )}
    </section>
  );
}

function IssueList({ issues, title }: { issues: DefinitionIssue[]; title: string }) {
  return (
    <div className="flow-inspector-issues" aria-live="polite">
      {issues.length > 0 && (
        <>
          <h3>{title}</h3>
          <ul>
            {issues.map((issue, i) => (
              <li key={i}>⚠ {issueText(issue)}</li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function NodeForm(props: NodeInspectorProps & { node: FlowNodeIn }): JSX.Element {
  const { node, flow, index, readOnly, onDeleteNode } = props;
  const issues = index.byNode.get(node.id) ?? [];
  return (
    <>
      <h2 className="flow-inspector-title">
        <span aria-hidden="true">{NODE_ICONS[node.type]} </span>
        {TYPE_LABELS[node.type]} node
        {node.id === flow.startNodeId && <span className="flow-node-start">Start</span>}
      </h2>
      <IssueList issues={issues} title={`Issues on this node (${issues.length})`} />
      <fieldset className="flow-inspector-fields" disabled={readOnly}>
        <legend className="sr-only">Node settings</legend>
        <NodeIdField node={node} flow={flow} onRename={props.onRenameNode} />
        <TypeFields {...props} />
      </fieldset>
      <Connections {...props} />
      {!readOnly && (
        <div className="flow-inspector-actions">
          <button type="button" className="btn danger" onClick={() => onDeleteNode(node.id)}>
            Delete node
          </button>
        </div>
      )}
    </>
  );
}

function idError(text: string, flow: Flow, own: string): string | undefined {
  if (text === own) return undefined;
  if (!text) return 'Enter an ID';
  if (text.length > ID_MAX) return `Use at most ${ID_MAX} characters`;
  if (!ID_PATTERN.test(text)) return 'Use only letters, digits, _ or -';
  if (flow.nodes.some((n) => n.id === text)) return `Another node already uses the ID "${text}"`;
  return undefined;
}

/** The id is applied when the field is left (or on Enter), so connections are renamed once. */
function NodeIdField({
  node,
  flow,
  onRename,
}: {
  node: FlowNodeIn;
  flow: Flow;
  onRename: (from: string, to: string) => void;
}) {
  const [text, setText] = useState(node.id);
  const [seen, setSeen] = useState(node.id);
  if (seen !== node.id) {
    setSeen(node.id);
    setText(node.id);
  }
  const error = idError(text, flow, node.id);
  const apply = () => {
    if (text !== node.id && !error) onRename(node.id, text);
  };
  return (
    <Field
      label="Node ID"
      error={error}
      hint={error ? undefined : 'Letters, digits, _ or -. Connections follow a rename.'}
    >
      <input
        value={text}
        spellCheck={false}
        autoComplete="off"
        onChange={(e) => setText(e.target.value)}
        onBlur={apply}
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            e.preventDefault();
            apply();
          } else if (e.key === 'Escape') {
            setText(node.id);
          }
        }}
      />
    </Field>
  );
}

/** A comma-separated list; keeps what is typed (a trailing comma) while reporting the parsed list. */
function ListInput({
  value,
  onChange,
  placeholder,
}: {
  value: readonly string[] | undefined;
  onChange: (list: string[]) => void;
  placeholder?: string;
}) {
  const current = value ?? [];
  const [text, setText] = useState(current.join(', '));
  const [seen, setSeen] = useState(value);
  if (seen !== value) {
    setSeen(value);
    if (parseList(text).join('\n') !== current.join('\n')) setText(current.join(', '));
  }
  return (
    <input
      value={text}
      placeholder={placeholder}
      onChange={(e) => {
        setText(e.target.value);
        onChange(parseList(e.target.value));
      }}
    />
  );
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (!text.trim()) return {};
  try {
    const value: unknown = JSON.parse(text);
    return isJsonObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Tool arguments as JSON: reported when the text parses to an object, else an inline error. */
function JsonField({
  label,
  value,
  onChange,
  hint,
}: {
  label: string;
  value: Record<string, unknown> | undefined;
  onChange: (value: Record<string, unknown>) => void;
  hint?: ReactNode;
}) {
  const format = (v: Record<string, unknown> | undefined) => JSON.stringify(v ?? {}, null, 2);
  const [text, setText] = useState(format(value));
  const [seen, setSeen] = useState(value);
  if (seen !== value) {
    setSeen(value);
    const parsed = parseJsonObject(text);
    if (!parsed || JSON.stringify(parsed) !== JSON.stringify(value ?? {})) setText(format(value));
  }
  const error = parseJsonObject(text) ? undefined : 'Must be a JSON object, e.g. {"date": "{{slots.date}}"}';
  return (
    <Field label={label} error={error} hint={error ? undefined : hint} wide>
      <textarea
        value={text}
        spellCheck={false}
        className="flow-json"
        onChange={(e) => {
          setText(e.target.value);
          const parsed = parseJsonObject(e.target.value);
          if (parsed) onChange(parsed);
        }}
      />
    </Field>
  );
}

function NumberInput({
  value,
  onChange,
  min,
  max,
  placeholder,
}: {
  value: number | undefined;
  onChange: (value: number | undefined) => void;
  min: number;
  max: number;
  placeholder?: string;
}) {
  return (
    <input
      type="number"
      inputMode="numeric"
      step={1}
      min={min}
      max={max}
      placeholder={placeholder}
      value={value ?? ''}
      onChange={(e) => onChange(e.target.value === '' ? undefined : Number(e.target.value))}
    />
  );
}

function TypeFields(props: NodeInspectorProps & { node: FlowNodeIn }): JSX.Element | null {
  const { node, definition, onPatchNode } = props;
  const listId = useId();
  /** One field: typing in it is one undo step (until it loses focus). */
  const set = (field: string, value: unknown) =>
    onPatchNode(node.id, { [field]: value }, `node:${node.id}:${field}`);
  /** Optional text: empty removes the field. */
  const setOptional = (field: string, value: string) => set(field, value === '' ? undefined : value);
  const toolNames = (definition.tools ?? [])
    .map((t) => t.name)
    .filter((n): n is string => typeof n === 'string');

  switch (node.type) {
    case 'say':
      return (
        <Field label="Text" hint="What the agent says, then it moves on." wide>
          <textarea rows={3} value={node.text} onChange={(e) => set('text', e.target.value)} />
        </Field>
      );
    case 'collect':
      return (
        <>
          <Field label="Prompt" hint="The question the agent asks." wide>
            <textarea rows={2} value={node.prompt} onChange={(e) => set('prompt', e.target.value)} />
          </Field>
          <div className="row">
            <Field label="Slot name" hint="Where the answer is stored, e.g. date.">
              <input value={node.slot} spellCheck={false} onChange={(e) => set('slot', e.target.value)} />
            </Field>
            <Field label="Slot type">
              <select
                value={node.slotType}
                onChange={(e) =>
                  onPatchNode(
                    node.id,
                    {
                      slotType: e.target.value,
                      ...(e.target.value === 'choice' ? {} : { choices: undefined }),
                    },
                    null,
                  )
                }
              >
                {!(SLOT_TYPES as readonly string[]).includes(node.slotType) && (
                  <option value={node.slotType}>{node.slotType}</option>
                )}
                {SLOT_TYPES.map((t) => (
                  <option key={t} value={t}>
                    {SLOT_TYPE_LABELS[t] ?? t}
                  </option>
                ))}
              </select>
            </Field>
          </div>
          {(node.slotType === 'choice' || node.choices !== undefined) && (
            <Field label="Choices" hint="Comma separated, at least 2: e.g. small, medium, large" wide>
              <ListInput
                value={node.choices}
                placeholder="small, medium, large"
                onChange={(list) => set('choices', list.length ? list : undefined)}
              />
            </Field>
          )}
          <Field
            label="When not understood, say"
            hint="Optional: said again when the answer does not fit."
            wide
          >
            <input
              value={node.noMatchPrompt ?? ''}
              onChange={(e) => setOptional('noMatchPrompt', e.target.value)}
            />
          </Field>
          <Field label="When silent, say" hint="Optional: said when the caller says nothing." wide>
            <input
              value={node.noInputPrompt ?? ''}
              onChange={(e) => setOptional('noInputPrompt', e.target.value)}
            />
          </Field>
          <Field label="Max attempts" hint="Then the failure connection is followed (1–10, default 3).">
            <NumberInput
              value={node.maxAttempts}
              min={1}
              max={10}
              placeholder="3"
              onChange={(v) => set('maxAttempts', v)}
            />
          </Field>
        </>
      );
    case 'branch':
      return (
        <p className="muted">
          A branch follows the first connection whose condition matches, otherwise its default connection. Set
          the conditions under Connections.
        </p>
      );
    case 'llm': {
      const chosen = node.tools ?? [];
      const names = [...toolNames, ...chosen.filter((t) => !toolNames.includes(t))];
      return (
        <>
          <Field label="Goal" hint="What this step must achieve; the model decides when it is done." wide>
            <textarea rows={4} value={node.goal} onChange={(e) => set('goal', e.target.value)} />
          </Field>
          <fieldset className="flow-checkboxes">
            <legend>Tools</legend>
            {names.length === 0 && (
              <p className="muted">This agent has no tools yet; add them in the agent's tools.</p>
            )}
            {names.map((name) => (
              <label key={name} className="checkbox">
                <input
                  type="checkbox"
                  checked={chosen.includes(name)}
                  onChange={(e) =>
                    onPatchNode(
                      node.id,
                      { tools: e.target.checked ? [...chosen, name] : chosen.filter((t) => t !== name) },
                      null,
                    )
                  }
                />
                {name}
                {!toolNames.includes(name) && (
                  <span className="field-error"> (not among the agent's tools)</span>
                )}
              </label>
            ))}
          </fieldset>
          <Field
            label="Outcomes"
            hint="Comma separated, e.g. booked, declined. Connections can follow each."
            wide
          >
            <ListInput
              value={node.outcomes}
              placeholder="booked, declined"
              onChange={(list) => set('outcomes', list)}
            />
          </Field>
          <Field label="Max turns" hint="1–100, default 20.">
            <NumberInput
              value={node.maxTurns}
              min={1}
              max={100}
              placeholder="20"
              onChange={(v) => set('maxTurns', v)}
            />
          </Field>
        </>
      );
    }
    case 'tool':
      return (
        <>
          <Field
            label="Tool"
            hint={
              toolNames.length ? undefined : "This agent has no tools yet; add them in the agent's tools."
            }
          >
            <select value={node.tool} onChange={(e) => onPatchNode(node.id, { tool: e.target.value }, null)}>
              <option value="">Choose a tool…</option>
              {node.tool && !toolNames.includes(node.tool) && (
                <option value={node.tool}>{node.tool} (not among the agent's tools)</option>
              )}
              {toolNames.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Result slot" hint="Optional: where the result is kept for later nodes.">
            <input
              value={node.resultSlot ?? ''}
              spellCheck={false}
              onChange={(e) => setOptional('resultSlot', e.target.value)}
            />
          </Field>
          <Field label="Message" hint="Optional: said before the call, e.g. One moment while I check." wide>
            <input value={node.message ?? ''} onChange={(e) => setOptional('message', e.target.value)} />
          </Field>
          <JsonField
            label="Arguments (JSON)"
            value={node.args}
            onChange={(args) => set('args', args)}
            hint="Strings may use {{slots.name}} and {{contact.name}}."
          />
        </>
      );
    case 'transfer':
      return (
        <>
          <Field label="Transfer to" hint="An E.164 number, e.g. +14155550100.">
            <input type="tel" value={node.to} onChange={(e) => set('to', e.target.value)} />
          </Field>
          <Field label="Message" hint="Optional: said before transferring." wide>
            <input value={node.message ?? ''} onChange={(e) => setOptional('message', e.target.value)} />
          </Field>
        </>
      );
    case 'end':
      return (
        <>
          <Field label="Disposition" hint="How the call ended, e.g. completed, booked, not_interested.">
            <input
              value={node.disposition}
              list={`${listId}-dispositions`}
              spellCheck={false}
              onChange={(e) => set('disposition', e.target.value)}
            />
          </Field>
          <datalist id={`${listId}-dispositions`}>
            {['completed', 'booked', 'not_interested', 'callback', 'voicemail', 'transferred'].map((d) => (
              <option key={d} value={d} />
            ))}
          </datalist>
          <Field label="Message" hint="Optional: said before hanging up." wide>
            <input value={node.message ?? ''} onChange={(e) => setOptional('message', e.target.value)} />
          </Field>
        </>
      );
    default:
      return null;
  }
}

/** The node's outgoing connections, each with its condition, and a form to add one. */
function Connections(props: NodeInspectorProps & { node: FlowNodeIn }): JSX.Element {
  const { node, flow, index, readOnly, onConnect, onRemoveEdge } = props;
  const [target, setTarget] = useState('');
  const [seen, setSeen] = useState(node.id);
  if (seen !== node.id) {
    setSeen(node.id);
    setTarget('');
  }
  const edges = edgesOf(flow);
  const outgoing = edges.filter((e) => e.source === node.id);
  const incoming = [...new Set(edges.filter((e) => e.target === node.id).map((e) => e.source))];
  const candidates = flow.nodes.filter((n) => n.id !== node.id).map((n) => n.id);
  const chosen = candidates.includes(target) ? target : '';
  const terminal = TERMINAL_TYPES.includes(node.type);
  const targetCounts = new Map<string, number>();
  for (const e of outgoing) targetCounts.set(e.target, (targetCounts.get(e.target) ?? 0) + 1);

  return (
    <div className="flow-connections">
      <h3>Connections</h3>
      {terminal && (
        <p className="muted">
          {node.type === 'end' ? 'An end node' : 'A transfer node'} finishes the call, so it has no outgoing
          connections.
        </p>
      )}
      {outgoing.length === 0 && !terminal && (
        <p className="muted">
          No outgoing connections yet
          {readOnly ? '.' : ': choose a node in "Connect to" and press "Add connection".'}
        </p>
      )}
      {outgoing.length > 0 && (
        <ul className="flow-connection-list" aria-label="Connections">
          {outgoing.map((edge) => {
            const duplicate = (targetCounts.get(edge.target) ?? 0) > 1;
            const name = `Remove connection to ${edge.target}${duplicate ? ` (${conditionLabel(edge.when)})` : ''}`;
            return (
              <li key={edge.id} role="group" aria-label={`Connection to ${edge.target}`}>
                <div className="flow-connection-head">
                  <span aria-hidden="true">→ </span>
                  <button
                    type="button"
                    className="btn link"
                    onClick={() => props.onSelect({ kind: 'node', id: edge.target })}
                  >
                    {edge.target}
                  </button>
                  <span className="badge">{conditionLabel(edge.when)}</span>
                </div>
                <IssueList issues={index.byEdge.get(edge.id) ?? []} title="Issues on this connection" />
                <fieldset disabled={readOnly} className="flow-condition">
                  <ConditionEditor {...props} edge={edge} source={node} />
                </fieldset>
                {!readOnly && (
                  <button
                    type="button"
                    className="btn small danger"
                    aria-label={name}
                    onClick={() => onRemoveEdge(edge.id)}
                  >
                    Remove
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {!readOnly && !terminal && (
        <div className="row flow-connect">
          <Field label="Connect to">
            <select value={chosen} onChange={(e) => setTarget(e.target.value)}>
              <option value="">Choose a node…</option>
              {candidates.map((id) => (
                <option key={id} value={id}>
                  {id}
                </option>
              ))}
            </select>
          </Field>
          <button
            type="button"
            className="btn"
            disabled={!chosen}
            onClick={() => {
              onConnect(node.id, chosen);
              setTarget('');
            }}
          >
            Add connection
          </button>
        </div>
      )}
      <p className="muted flow-incoming">
        {incoming.length
          ? `Reached from: ${incoming.join(', ')}`
          : node.id === flow.startNodeId
            ? 'The call starts here.'
            : 'No connection leads here yet.'}
      </p>
    </div>
  );
}

/** A connection selected on the canvas. */
function EdgeForm(props: NodeInspectorProps & { edge: FlowEdgeIn }): JSX.Element {
  const { edge, flow, index, readOnly, onRemoveEdge, onSelect } = props;
  const source = flow.nodes.find((n) => n.id === edge.source);
  return (
    <>
      <h2 className="flow-inspector-title">Connection</h2>
      <p>
        From{' '}
        <button
          type="button"
          className="btn link"
          onClick={() => onSelect({ kind: 'node', id: edge.source })}
        >
          {edge.source}
        </button>{' '}
        to{' '}
        <button
          type="button"
          className="btn link"
          onClick={() => onSelect({ kind: 'node', id: edge.target })}
        >
          {edge.target}
        </button>
        <span className="muted"> ({edge.id})</span>
      </p>
      <IssueList issues={index.byEdge.get(edge.id) ?? []} title="Issues on this connection" />
      <fieldset disabled={readOnly} className="flow-condition">
        <ConditionEditor {...props} edge={edge} source={source} />
      </fieldset>
      {!readOnly && (
        <div className="flow-inspector-actions">
          <button
            type="button"
            className="btn danger"
            aria-label={`Remove connection to ${edge.target}`}
            onClick={() => onRemoveEdge(edge.id)}
          >
            Remove connection
          </button>
        </div>
      )}
    </>
  );
}

/** Condition of one edge: default, a slot test, an llm outcome, or failure. */
function ConditionEditor({
  edge,
  source,
  flow,
  onSetCondition,
}: NodeInspectorProps & { edge: FlowEdgeIn; source: FlowNodeIn | undefined }): JSX.Element {
  const listId = useId();
  const when = edge.when;
  const kind: ConditionKind = when?.kind ?? 'default';
  const sourceType: NodeType | undefined = source?.type;
  const kinds = CONDITION_KINDS.filter(
    (k) =>
      k === kind ||
      k === 'default' ||
      k === 'slot' ||
      (k === 'outcome' && sourceType === 'llm') ||
      (k === 'failure' && sourceType !== undefined && FAILING_TYPES.includes(sourceType)),
  );
  const slots = slotsOf(flow);
  const outcomes = source?.type === 'llm' ? (source.outcomes ?? []) : [];
  const set = (next: EdgeWhen | undefined, field: string | null = null) =>
    onSetCondition(edge.id, next, field ? `edge:${edge.id}:${field}` : null);

  const changeKind = (next: ConditionKind) => {
    if (next === 'default') set(undefined);
    else if (next === 'failure') set({ kind: 'failure' });
    else if (next === 'outcome') set({ kind: 'outcome', equals: outcomes[0] ?? 'done' });
    else set({ kind: 'slot', slot: source?.type === 'collect' ? source.slot : (slots[0] ?? ''), op: 'eq' });
  };

  const slotNode =
    when?.kind === 'slot' ? flow.nodes.find((n) => n.type === 'collect' && n.slot === when.slot) : undefined;
  const yesNo = slotNode?.type === 'collect' && slotNode.slotType === 'yes_no';

  return (
    <div className="flow-condition-fields">
      <Field label="Condition">
        <select value={kind} onChange={(e) => changeKind(e.target.value as ConditionKind)}>
          {kinds.map((k) => (
            <option key={k} value={k}>
              {KIND_LABELS[k]}
            </option>
          ))}
        </select>
      </Field>
      {when?.kind === 'slot' && (
        <div className="row">
          <Field label="Slot">
            <input
              value={when.slot}
              list={`${listId}-slots`}
              spellCheck={false}
              onChange={(e) => set({ ...when, slot: e.target.value }, 'slot')}
            />
          </Field>
          <datalist id={`${listId}-slots`}>
            {slots.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
          <Field label="Operator">
            <select
              value={when.op}
              onChange={(e) => {
                const op = e.target.value as (typeof CONDITION_OPS)[number];
                const { value: _value, ...rest } = when;
                set(VALUELESS_OPS.includes(op) ? { ...rest, op } : { ...when, op });
              }}
            >
              {CONDITION_OPS.map((op) => (
                <option key={op} value={op}>
                  {OPERATOR_LABELS[op] === op ? op : `${OPERATOR_LABELS[op]} (${op})`}
                </option>
              ))}
            </select>
          </Field>
          {!VALUELESS_OPS.includes(when.op) &&
            (yesNo ? (
              <Field label="Value">
                <select
                  value={when.value === undefined ? '' : String(when.value)}
                  onChange={(e) => set({ ...when, value: parseConditionValue(e.target.value) })}
                >
                  <option value="">Choose…</option>
                  <option value="true">yes</option>
                  <option value="false">no</option>
                </select>
              </Field>
            ) : (
              <Field label="Value" hint="Numbers compare as numbers; true/false as yes/no.">
                <input
                  value={when.value === undefined ? '' : String(when.value)}
                  onChange={(e) => set({ ...when, value: parseConditionValue(e.target.value) }, 'value')}
                />
              </Field>
            ))}
        </div>
      )}
      {when?.kind === 'outcome' &&
        (outcomes.length > 0 ? (
          <Field label="Outcome">
            <select value={when.equals} onChange={(e) => set({ kind: 'outcome', equals: e.target.value })}>
              {!outcomes.includes(when.equals) && (
                <option value={when.equals}>{when.equals} (not declared)</option>
              )}
              {outcomes.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          </Field>
        ) : (
          <Field label="Outcome" hint="Declare them on the LLM node to pick from a list.">
            <input
              value={when.equals}
              spellCheck={false}
              onChange={(e) => set({ kind: 'outcome', equals: e.target.value }, 'outcome')}
            />
          </Field>
        ))}
    </div>
  );
}
