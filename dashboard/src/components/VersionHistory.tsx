/**
 * An agent's published versions: who published each and when, which one calls use, a readable diff
 * between any two versions (or a version and the saved draft), and — for designers — a rollback
 * that copies a version into the draft (publishing it is a separate step).
 */
import { useEffect, useRef, useState } from 'react';
import { ApiError, api } from '../api';
import { Empty, ErrorBanner, Field, Loading, formatDate, shortId, useApi } from '../ui';
import type { AgentView, VersionSummary } from './AgentSettings';

type Ref = number | 'draft';

interface Change {
  path: string;
  kind: 'added' | 'removed' | 'changed';
  before?: unknown;
  after?: unknown;
}

interface DiffView {
  from: Ref;
  to: Ref;
  changes: Change[];
}

interface UserView {
  id: string;
  name: string;
  email: string;
}

const refLabel = (ref: Ref) => (ref === 'draft' ? 'the saved draft' : `version ${ref}`);

// ---------------------------------------------------------------------------------------------
// Reading a change

const FIELD_LABELS: Record<string, string> = {
  'persona.systemPrompt': 'System prompt',
  persona: 'Persona',
  greeting: 'Greeting',
  language: 'Language',
  voice: 'Voice settings',
  'voice.provider': 'Voice provider',
  'voice.voiceId': 'Voice',
  llm: 'Language model (LLM)',
  'llm.provider': 'LLM provider',
  'llm.model': 'LLM model',
  'llm.temperature': 'LLM temperature',
  'llm.maxTokens': 'LLM max tokens',
  'llm.baseUrl': 'LLM base URL',
  'llm.apiKeyRef': 'LLM API key name',
  stt: 'Speech-to-text',
  'stt.provider': 'Speech-to-text provider',
  'stt.model': 'Speech-to-text model',
  tts: 'Text-to-speech',
  'tts.provider': 'Text-to-speech provider',
  'tts.model': 'Text-to-speech model',
  'endpointing.silenceMs': 'Silence before end of turn (ms)',
  'interruption.enabled': 'Allow interruptions',
  'interruption.minSpeechMs': 'Minimum speech to interrupt (ms)',
  'recording.enabled': 'Record calls',
  maxCallDurationSeconds: 'Max call duration (s)',
  noInputTimeoutSeconds: 'No-input timeout (s)',
  'analysis.successCriteria': 'Success criteria',
  'analysis.structuredDataSchema': 'Structured data schema',
  analysis: 'Analysis',
  'flow.startNodeId': 'Start node',
  'flow.nodes': 'Order of nodes',
  'flow.edges': 'Order of edges (edges are tried in order)',
  tools: 'Order of tools',
  globalIntents: 'Order of global intents',
  knowledge: 'Knowledge',
};

type Category = 'node' | 'edge' | 'setting';

interface Described {
  category: Category;
  /** What changed, e.g. `Node "ask_date" · prompt`. */
  subject: string;
  /** A whole node, edge, tool... added or removed (shown as a summary, not a value). */
  element?: 'node' | 'edge' | 'tool' | 'intent' | 'snippet';
}

/** `flow.nodes[ask_date].prompt` → category, a readable subject and whether it is a whole element. */
function describe(path: string): Described {
  const element = /^(flow\.nodes|flow\.edges|tools|globalIntents|knowledge)\[([^\]]+)\](?:\.(.+))?$/.exec(
    path,
  );
  if (element) {
    const [, list, key, rest] = element;
    const kinds = {
      'flow.nodes': ['node', 'Node'],
      'flow.edges': ['edge', 'Edge'],
      tools: ['tool', 'Tool'],
      globalIntents: ['intent', 'Global intent'],
      knowledge: ['snippet', 'Knowledge snippet'],
    } as const;
    const [kind, label] = kinds[list as keyof typeof kinds];
    const name =
      list === 'knowledge' && /^\d+$/.test(key!) ? `${label} ${Number(key) + 1}` : `${label} “${key}”`;
    return {
      category: kind === 'node' ? 'node' : kind === 'edge' ? 'edge' : 'setting',
      subject: rest ? `${name} · ${rest}` : name,
      ...(rest ? {} : { element: kind }),
    };
  }
  const category: Category = path.startsWith('flow.nodes')
    ? 'node'
    : path.startsWith('flow.edges')
      ? 'edge'
      : 'setting';
  return { category, subject: FIELD_LABELS[path] ?? path };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One line saying what a whole node / edge / tool is. */
function summarize(kind: Described['element'], value: unknown): string {
  if (!isRecord(value)) return formatValue(value);
  const s = (k: string) => (typeof value[k] === 'string' ? value[k] : undefined);
  switch (kind) {
    case 'node': {
      const text =
        s('text') ?? s('prompt') ?? s('goal') ?? s('message') ?? (s('to') ? `to ${s('to')}` : undefined);
      return `${s('type') ?? 'node'}${text ? `: “${truncate(text, 120)}”` : ''}`;
    }
    case 'edge': {
      const when = isRecord(value.when) ? conditionText(value.when) : 'default';
      return `${s('source') ?? '?'} → ${s('target') ?? '?'} (${when})${s('label') ? ` “${s('label')}”` : ''}`;
    }
    case 'tool':
      return `${s('method') ?? 'POST'} ${s('url') ?? ''}`;
    case 'intent':
      return `${Array.isArray(value.phrases) ? value.phrases.map((p) => `“${String(p)}”`).join(', ') : ''} → ${s('target') ?? '?'}`;
    case 'snippet':
      return `${s('title') ?? ''}`;
    default:
      return formatValue(value);
  }
}

function conditionText(when: Record<string, unknown>): string {
  if (when.kind === 'outcome') return `outcome = ${String(when.equals)}`;
  if (when.kind === 'failure') return 'on failure';
  if (when.kind === 'slot') {
    return `${String(when.slot)} ${String(when.op)}${when.value !== undefined ? ` ${JSON.stringify(when.value)}` : ''}`;
  }
  return JSON.stringify(when);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function formatValue(value: unknown): string {
  if (value === undefined) return '—';
  if (typeof value === 'string') return `“${value}”`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object'))
    return value.map((v) => String(v)).join(', ');
  return JSON.stringify(value, null, 2);
}

function Value({ value, tone }: { value: unknown; tone: 'before' | 'after' }) {
  if (value === undefined) return <span className="muted">—</span>;
  const text = formatValue(value);
  const Tag = tone === 'before' ? 'del' : 'ins';
  if (text.includes('\n') || text.length > 80) {
    return <Tag className={`diff-value block ${tone}`}>{text}</Tag>;
  }
  return <Tag className={`diff-value ${tone}`}>{text}</Tag>;
}

function ChangeRow({ change }: { change: Change }) {
  const d = describe(change.path);
  const kindLabel = { added: 'Added', removed: 'Removed', changed: 'Changed' }[change.kind];
  return (
    <li className={`diff-row diff-${change.kind}`}>
      <span
        className={`badge ${change.kind === 'added' ? 'good' : change.kind === 'removed' ? 'bad' : 'warn'}`}
      >
        {kindLabel}
      </span>{' '}
      <strong>{d.subject}</strong>
      {d.element && change.kind !== 'changed' ? (
        <>
          {' '}
          <span className="diff-summary">{summarize(d.element, change.after ?? change.before)}</span>
          <details>
            <summary>Details</summary>
            <pre>{JSON.stringify(change.after ?? change.before, null, 2)}</pre>
          </details>
        </>
      ) : (
        <div className="diff-values">
          {change.kind !== 'added' && <Value value={change.before} tone="before" />}
          {change.kind === 'changed' && (
            <span aria-hidden="true" className="arrow">
              →
            </span>
          )}
          {change.kind === 'changed' && <span className="sr-only">changed to</span>}
          {change.kind !== 'removed' && <Value value={change.after} tone="after" />}
        </div>
      )}
    </li>
  );
}

function DiffResult({ diff }: { diff: DiffView }) {
  const groups: { title: string; category: Category }[] = [
    { title: 'Settings, tools and knowledge', category: 'setting' },
    { title: 'Flow nodes', category: 'node' },
    { title: 'Flow edges', category: 'edge' },
  ];
  if (diff.changes.length === 0) {
    return (
      <p className="muted" role="status">
        No differences: {refLabel(diff.from)} and {refLabel(diff.to)} are identical.
      </p>
    );
  }
  const count = (kind: Change['kind']) => diff.changes.filter((c) => c.kind === kind).length;
  return (
    <div className="diff">
      <p role="status">
        {diff.changes.length} change{diff.changes.length === 1 ? '' : 's'} from {refLabel(diff.from)} to{' '}
        {refLabel(diff.to)}: {count('added')} added, {count('removed')} removed, {count('changed')} changed.
      </p>
      {groups.map((g) => {
        const changes = diff.changes.filter((c) => describe(c.path).category === g.category);
        if (changes.length === 0) return null;
        return (
          <section key={g.category} aria-label={g.title}>
            <h4>{g.title}</h4>
            <ul className="diff-list">
              {changes.map((c, i) => (
                <ChangeRow key={`${c.path}-${i}`} change={c} />
              ))}
            </ul>
          </section>
        );
      })}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// The history

export function VersionHistory({
  agentId,
  versions,
  loading,
  error,
  canEdit,
  dirty,
  draftUpdatedAt,
  onRolledBack,
}: {
  agentId: string;
  versions: VersionSummary[];
  loading: boolean;
  error: unknown;
  canEdit: boolean;
  /** The editor has unsaved changes (a rollback would discard them; the diff does not include them). */
  dirty: boolean;
  /** Changes when the saved draft changes, so a diff against the draft is fetched again. */
  draftUpdatedAt: string;
  onRolledBack: (agent: AgentView, version: number) => void;
}) {
  const users = useApi<{ data: UserView[] }>('/v1/users');
  const userName = (id: string | null) => {
    if (!id) return 'an API key';
    const user = users.data?.data.find((u) => u.id === id);
    return user ? user.name || user.email : `user ${shortId(id)}`;
  };

  const latest = versions[0]?.version;
  const [from, setFrom] = useState<Ref | undefined>(undefined);
  const [to, setTo] = useState<Ref>('draft');
  const fromRef: Ref | undefined = from ?? latest;
  const same = fromRef === to;
  const diff = useApi<DiffView>(
    fromRef !== undefined && !same ? `/v1/agents/${agentId}/diff` : null,
    fromRef !== undefined ? { from: String(fromRef), to: String(to) } : undefined,
  );

  const reloadDiff = diff.reload;
  const seenDraft = useRef(draftUpdatedAt);
  useEffect(() => {
    if (seenDraft.current === draftUpdatedAt) return;
    seenDraft.current = draftUpdatedAt;
    reloadDiff();
  }, [draftUpdatedAt, reloadDiff]);

  const [confirming, setConfirming] = useState<number | null>(null);
  const [rolling, setRolling] = useState(false);
  const [rollbackError, setRollbackError] = useState<unknown>(undefined);

  const rollback = async (version: number) => {
    setRolling(true);
    setRollbackError(undefined);
    try {
      const agent = await api.post<AgentView>(`/v1/agents/${agentId}/rollback`, { version });
      setConfirming(null);
      setTo('draft');
      onRolledBack(agent, version);
    } catch (err) {
      setRollbackError(err);
    } finally {
      setRolling(false);
    }
  };

  if (loading && versions.length === 0) return <Loading label="Loading versions…" />;
  if (error) return <ErrorBanner error={error} title="Could not load the versions" />;

  const parseRef = (value: string): Ref => (value === 'draft' ? 'draft' : Number(value));
  const refOptions = (
    <>
      <option value="draft">Draft (saved)</option>
      {versions.map((v) => (
        <option key={v.version} value={v.version}>
          Version {v.version}
          {v.current ? ' (live)' : ''}
        </option>
      ))}
    </>
  );

  return (
    <div className="version-history">
      <section className="panel agent-section" aria-labelledby="versions-heading">
        <h2 id="versions-heading">Published versions</h2>
        <p className="muted section-description">
          Publishing freezes the draft as a new version; calls use the live version. Rolling back copies a
          version into the draft, which you then publish.
        </p>
        <ErrorBanner error={rollbackError} title="Roll back failed" />
        {versions.length === 0 ? (
          <Empty>
            No published versions yet.{' '}
            {canEdit
              ? 'Save the draft and choose Publish to create version 1; calls and campaigns use published versions.'
              : 'A designer publishes the draft to create version 1.'}
          </Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Published</th>
                <th scope="col">By</th>
                <th scope="col">Status</th>
                {canEdit && (
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.id} className={v.current ? 'current' : undefined}>
                  <th scope="row">Version {v.version}</th>
                  <td>{formatDate(v.createdAt)}</td>
                  <td>{userName(v.publishedBy)}</td>
                  <td>
                    {v.current ? <span className="badge good">Live</span> : <span className="muted">—</span>}
                  </td>
                  {canEdit && (
                    <td className="row-actions">
                      {confirming === v.version ? (
                        <div
                          className="confirm"
                          role="group"
                          aria-label={`Confirm roll back to version ${v.version}`}
                        >
                          <span>
                            Replace the draft with version {v.version}?
                            {dirty ? ' Your unsaved changes will be lost.' : ''}
                          </span>
                          <button
                            type="button"
                            className="btn small danger"
                            disabled={rolling}
                            onClick={() => void rollback(v.version)}
                          >
                            {rolling ? 'Restoring…' : 'Confirm roll back'}
                          </button>
                          <button type="button" className="btn small" onClick={() => setConfirming(null)}>
                            Cancel
                          </button>
                        </div>
                      ) : (
                        <button type="button" className="btn small" onClick={() => setConfirming(v.version)}>
                          Roll back to version {v.version}
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      {versions.length > 0 && fromRef !== undefined && (
        <section className="panel agent-section" aria-labelledby="compare-heading">
          <h2 id="compare-heading">Compare</h2>
          <div className="form-row compare-row">
            <Field label="Compare from">
              <select value={String(fromRef)} onChange={(e) => setFrom(parseRef(e.target.value))}>
                {refOptions}
              </select>
            </Field>
            <Field label="Compare to">
              <select value={String(to)} onChange={(e) => setTo(parseRef(e.target.value))}>
                {refOptions}
              </select>
            </Field>
          </div>
          {dirty && (fromRef === 'draft' || to === 'draft') && (
            <p className="muted">The draft as last saved; save to include your unsaved changes.</p>
          )}
          <div aria-live="polite">
            {same ? (
              <p className="muted">Choose two different versions to compare.</p>
            ) : diff.error ? (
              <ErrorBanner
                error={diff.error}
                title={
                  diff.error instanceof ApiError && diff.error.status === 404
                    ? 'Version not found'
                    : 'Could not compare'
                }
              />
            ) : diff.loading || !diff.data ? (
              <Loading label="Comparing…" />
            ) : (
              <DiffResult diff={diff.data} />
            )}
          </div>
        </section>
      )}
    </div>
  );
}
