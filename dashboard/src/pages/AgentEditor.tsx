/**
 * The agent editor (/agents/:id): the draft in tabs (Settings, Flow, Tools, Knowledge, Analysis,
 * Versions) beside the test panel. "Save draft" PUTs the whole draft; "Publish" saves first when
 * needed, then freezes the draft as the next version. The API's validation issues come back next
 * to their fields, on the flow's nodes, and in a summary that links to each tab. Users who cannot
 * edit see the same screens read-only.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { Link, useParams, useSearchParams } from 'react-router-dom';
import type { DefinitionIssue } from '../../../contracts/agent-graph';
import { ApiError, api } from '../api';
import {
  AgentSettings,
  AnalysisEditor,
  KnowledgeEditor,
  ToolsEditor,
  parseSchemaText,
  type AgentView,
  type Definition,
  type JsonDrafts,
  type UpdateDefinition,
  type VersionSummary,
} from '../components/AgentSettings';
import { FlowDesigner } from '../components/FlowDesigner';
import { TestPanel } from '../components/TestPanel';
import { VersionHistory } from '../components/VersionHistory';
import { useSession } from '../session';
import { ErrorBanner, Loading, Notice, formatDate, useApi } from '../ui';

const TABS = [
  { id: 'settings', label: 'Settings' },
  { id: 'flow', label: 'Flow' },
  { id: 'tools', label: 'Tools' },
  { id: 'knowledge', label: 'Knowledge' },
  { id: 'analysis', label: 'Analysis' },
  { id: 'versions', label: 'Versions' },
] as const;
type TabId = (typeof TABS)[number]['id'];

/** The tab where an issue can be fixed. */
function tabOf(issue: DefinitionIssue): TabId {
  if (issue.nodeId || issue.edgeId || issue.path.startsWith('flow')) return 'flow';
  if (issue.path.startsWith('tools')) return 'tools';
  if (issue.path.startsWith('knowledge')) return 'knowledge';
  if (issue.path.startsWith('analysis')) return 'analysis';
  return 'settings';
}

/** JSON with sorted keys and no undefined members, to tell whether anything changed. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(record[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

interface Editable {
  name: string;
  description: string;
  definition: Definition;
}

const editableOf = (agent: AgentView): Editable => ({
  name: agent.name,
  description: agent.description ?? '',
  definition: agent.definition,
});

function issuesOf(error: unknown): DefinitionIssue[] {
  if (!(error instanceof ApiError) || error.code !== 'AGENT_DEFINITION_INVALID') return [];
  const details = error.details as { issues?: unknown } | undefined;
  return Array.isArray(details?.issues) ? (details.issues as DefinitionIssue[]) : [];
}

export function AgentEditorPage() {
  const { id = '' } = useParams();
  const loaded = useApi<AgentView>(`/v1/agents/${id}`);
  if (loaded.error) {
    const missing = loaded.error instanceof ApiError && loaded.error.status === 404;
    return (
      <section>
        <h1>{missing ? 'Agent not found' : 'Agent'}</h1>
        <ErrorBanner error={loaded.error} title={missing ? undefined : 'Could not load the agent'} />
        <p>
          <Link to="/agents">Back to agents</Link>
          {!missing && (
            <>
              {' '}
              or{' '}
              <button type="button" className="btn link" onClick={loaded.reload}>
                try again
              </button>
            </>
          )}
        </p>
      </section>
    );
  }
  if (!loaded.data || loaded.data.id !== id) return <Loading label="Loading agent…" />;
  return <Editor key={id} initial={loaded.data} />;
}

function Editor({ initial }: { initial: AgentView }) {
  const session = useSession();
  const canEdit = session.can('agents.edit');
  const canTest = session.can('agents.test');
  const agentId = initial.id;

  // What the server has, and what the user is editing.
  const [agent, setAgent] = useState<AgentView>(initial);
  const [state, setState] = useState<Editable>(() => editableOf(initial));
  const [savedKey, setSavedKey] = useState(() => canonical(editableOf(initial)));
  const currentKey = useMemo(() => canonical(state), [state]);
  const dirty = canEdit && currentKey !== savedKey;
  const stateRef = useRef(state);
  stateRef.current = state;

  // JSON Schema textareas whose text is kept while the user types (invalid text blocks saving).
  const [rawJson, setRawJson] = useState<Record<string, string>>({});
  const json: JsonDrafts = useMemo(
    () => ({
      raw: rawJson,
      setRaw: (key, text) =>
        setRawJson((cur) => {
          const next = { ...cur };
          if (text === undefined) delete next[key];
          else next[key] = text;
          return next;
        }),
      clear: (prefix) =>
        setRawJson((cur) => Object.fromEntries(Object.entries(cur).filter(([k]) => !k.startsWith(prefix)))),
    }),
    [rawJson],
  );
  const jsonProblems = Object.entries(rawJson).filter(([, text]) => !parseSchemaText(text).ok);

  const [issues, setIssues] = useState<DefinitionIssue[]>([]);
  const [actionError, setActionError] = useState<{ error: unknown; title: string } | undefined>(undefined);
  const [nameError, setNameError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<{ tone: 'success' | 'info' | 'warn'; text: string } | null>(null);
  const [saving, setSaving] = useState(false);
  const [publishing, setPublishing] = useState(false);
  const [renaming, setRenaming] = useState(false);
  const [selectedTool, setSelectedTool] = useState<number | null>(null);

  const [params, setParams] = useSearchParams();
  const tabParam = params.get('tab');
  const tab: TabId = TABS.some((t) => t.id === tabParam) ? (tabParam as TabId) : 'settings';
  const selectTab = useCallback(
    (next: TabId) =>
      setParams(
        (cur) => {
          const out = new URLSearchParams(cur);
          if (next === 'settings') out.delete('tab');
          else out.set('tab', next);
          return out;
        },
        { replace: true },
      ),
    [setParams],
  );
  const tabRefs = useRef<Partial<Record<TabId, HTMLButtonElement | null>>>({});

  const versions = useApi<{ data: VersionSummary[] }>(`/v1/agents/${agentId}/versions`);
  const versionList = versions.data?.data ?? [];

  // Whether the saved draft differs from the live version (for the status line).
  const [unpublished, setUnpublished] = useState<boolean | null>(null);
  useEffect(() => {
    if (agent.publishedVersion === null) {
      setUnpublished(null);
      return;
    }
    const controller = new AbortController();
    api
      .get<{ changes: unknown[] }>(
        `/v1/agents/${agentId}/diff`,
        { from: agent.publishedVersion, to: 'draft' },
        controller.signal,
      )
      .then((d) => setUnpublished(d.changes.length > 0))
      .catch(() => setUnpublished(null));
    return () => controller.abort();
  }, [agentId, agent.publishedVersion, agent.updatedAt]);

  const update: UpdateDefinition = useCallback(
    (fn) => setState((cur) => ({ ...cur, definition: fn(cur.definition) })),
    [],
  );
  const onFlowChange = useCallback(
    (flow: Definition['flow']) => setState((cur) => ({ ...cur, definition: { ...cur.definition, flow } })),
    [],
  );
  // A node rename that global intents point at changes more than the flow.
  const onDefinitionChange = useCallback(
    (definition: Definition) => setState((cur) => ({ ...cur, definition })),
    [],
  );

  const adopt = (next: AgentView) => {
    setAgent(next);
    const editable = editableOf(next);
    setState(editable);
    setSavedKey(canonical(editable));
  };

  // Leaving with unsaved changes: the browser asks (reload, close, typed URL) and so do in-app links.
  useEffect(() => {
    if (!dirty) return;
    const beforeUnload = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = '';
    };
    const onClick = (e: MouseEvent) => {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      const link = (e.target as Element | null)?.closest?.('a[href]');
      if (!(link instanceof HTMLAnchorElement) || link.target === '_blank') return;
      const url = new URL(link.href, window.location.href);
      if (url.origin !== window.location.origin || url.pathname === window.location.pathname) return;
      if (!window.confirm('This agent has unsaved changes. Leave without saving them?')) {
        e.preventDefault();
        e.stopPropagation();
      }
    };
    window.addEventListener('beforeunload', beforeUnload);
    document.addEventListener('click', onClick, true);
    return () => {
      window.removeEventListener('beforeunload', beforeUnload);
      document.removeEventListener('click', onClick, true);
    };
  }, [dirty]);

  const fail = (err: unknown, title: string) => {
    setActionError({ error: err, title });
    setIssues(issuesOf(err));
    if (err instanceof ApiError && err.status === 400) {
      const fields = err.fieldErrors();
      if (fields['body.name']) {
        setNameError(fields['body.name']);
        setRenaming(true);
      }
    }
  };

  /** PUTs the draft; true when saved. */
  const save = async (): Promise<boolean> => {
    setNotice(null);
    setActionError(undefined);
    setNameError(undefined);
    const sent = stateRef.current;
    if (!sent.name.trim()) {
      setNameError('Enter a name for the agent.');
      setRenaming(true);
      setActionError({
        error: new Error('The agent needs a name before it can be saved.'),
        title: 'Draft not saved',
      });
      return false;
    }
    if (jsonProblems.length > 0) {
      const where = jsonProblems
        .map(([key]) =>
          key.startsWith('tools') ? 'a tool’s Parameters (JSON Schema)' : 'the Structured data schema',
        )
        .join(' and ');
      setActionError({
        error: new Error(`Fix the JSON in ${where} before saving.`),
        title: 'Draft not saved',
      });
      return false;
    }
    setSaving(true);
    try {
      const res = await api.put<AgentView>(`/v1/agents/${agentId}`, {
        name: sent.name.trim(),
        description: sent.description.trim() || null,
        definition: sent.definition,
      });
      setIssues([]);
      if (canonical(stateRef.current) === canonical(sent)) {
        adopt(res);
      } else {
        // Edited while saving: keep the edits, and count what was sent as saved.
        setAgent(res);
        setSavedKey(canonical(sent));
      }
      return true;
    } catch (err) {
      fail(err, 'Draft not saved');
      return false;
    } finally {
      setSaving(false);
    }
  };

  const onSave = async () => {
    if (await save()) setNotice({ tone: 'success', text: 'Draft saved' });
  };

  const onPublish = async () => {
    if (dirty && !(await save())) return;
    setNotice(null);
    setActionError(undefined);
    setPublishing(true);
    try {
      const res = await api.post<{ id: string; version: number; createdAt: string }>(
        `/v1/agents/${agentId}/publish`,
        {},
      );
      setIssues([]);
      setAgent((cur) => ({
        ...cur,
        publishedVersion: res.version,
        publishedVersionId: res.id,
        latestVersion: res.version,
      }));
      setUnpublished(false);
      setNotice({ tone: 'success', text: `Published version ${res.version}` });
      versions.reload();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'NO_CHANGES') {
        setNotice({ tone: 'info', text: `${err.message}.` });
      } else {
        fail(err, 'Not published');
      }
    } finally {
      setPublishing(false);
    }
  };

  const onRolledBack = (next: AgentView, version: number) => {
    adopt(next);
    setRawJson({});
    setIssues([]);
    setActionError(undefined);
    setSelectedTool(null);
    setNotice({
      tone: 'success',
      text: `Draft restored from version ${version}. Publish it to make calls use it.`,
    });
  };

  const onTabKey = (e: KeyboardEvent<HTMLDivElement>) => {
    const index = TABS.findIndex((t) => t.id === tab);
    let next = index;
    if (e.key === 'ArrowRight') next = (index + 1) % TABS.length;
    else if (e.key === 'ArrowLeft') next = (index - 1 + TABS.length) % TABS.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = TABS.length - 1;
    else return;
    e.preventDefault();
    const id = TABS[next]!.id;
    selectTab(id);
    tabRefs.current[id]?.focus();
  };

  const showIssue = (issue: DefinitionIssue) => {
    const target = tabOf(issue);
    const tool = /^tools\[(\d+)\]/.exec(issue.path);
    if (tool) setSelectedTool(Number(tool[1]));
    selectTab(target);
    tabRefs.current[target]?.focus();
  };

  const issueCount = (t: TabId) =>
    issues.filter((i) => tabOf(i) === t).length +
    jsonProblems.filter(([key]) => (key.startsWith('tools') ? 'tools' : 'analysis') === t).length;
  const flowIssues = useMemo(() => issues.filter((i) => tabOf(i) === 'flow'), [issues]);
  const busy = saving || publishing;

  let status: { text: string; tone: string };
  if (dirty) status = { text: 'Unsaved changes', tone: 'warn' };
  else if (agent.publishedVersion === null)
    status = { text: 'Draft saved · not published yet', tone: 'neutral' };
  else if (unpublished)
    status = { text: `Draft saved · live version is v${agent.publishedVersion}`, tone: 'live' };
  else status = { text: `Published v${agent.publishedVersion}`, tone: 'good' };

  const { definition } = state;

  return (
    <div className="agent-editor">
      <header className="page-header agent-header">
        <div className="agent-title">
          <p className="breadcrumb">
            <Link to="/agents">Agents</Link> /
          </p>
          {renaming && canEdit ? (
            <div className="rename">
              <label className={`field${nameError ? ' invalid' : ''}`}>
                <span className="sr-only">Agent name</span>
                <input
                  className="title-input"
                  aria-label="Agent name"
                  autoFocus
                  value={state.name}
                  maxLength={200}
                  onChange={(e) => setState((cur) => ({ ...cur, name: e.target.value }))}
                  onKeyDown={(e) => {
                    if (e.key === 'Enter' || e.key === 'Escape') setRenaming(false);
                  }}
                />
                {nameError && (
                  <span className="field-error" role="alert">
                    {nameError}
                  </span>
                )}
              </label>
              <label className="field">
                <span className="sr-only">Agent description</span>
                <input
                  aria-label="Agent description"
                  placeholder="Description (optional)"
                  value={state.description}
                  maxLength={2000}
                  onChange={(e) => setState((cur) => ({ ...cur, description: e.target.value }))}
                  onKeyDown={(e) => {
                    if (e.key === 'Enter' || e.key === 'Escape') setRenaming(false);
                  }}
                />
              </label>
              <button type="button" className="btn small" onClick={() => setRenaming(false)}>
                Done
              </button>
            </div>
          ) : (
            <div className="title-row">
              <h1>{state.name || 'Untitled agent'}</h1>
              {canEdit && (
                <button type="button" className="btn small link" onClick={() => setRenaming(true)}>
                  Rename
                </button>
              )}
            </div>
          )}
          {!renaming && state.description && <p className="muted">{state.description}</p>}
          <p className="agent-status" aria-live="polite">
            <span className={`badge ${status.tone}`}>{status.text}</span>
            <span className="muted"> Last saved {formatDate(agent.updatedAt)}</span>
          </p>
        </div>
        {canEdit && (
          <div className="actions">
            <button type="button" className="btn" onClick={() => void onSave()} disabled={busy}>
              {saving ? 'Saving…' : 'Save draft'}
            </button>
            <button type="button" className="btn primary" onClick={() => void onPublish()} disabled={busy}>
              {publishing ? 'Publishing…' : 'Publish'}
            </button>
          </div>
        )}
      </header>

      {!canEdit && (
        <Notice>You can read this agent; designers, admins and owners can change and publish it.</Notice>
      )}
      {notice && <Notice tone={notice.tone}>{notice.text}</Notice>}
      {(actionError !== undefined || issues.length > 0) && (
        <div className="issues-summary">
          {actionError && <ErrorBanner error={actionError.error} title={actionError.title} />}
          {issues.length > 0 && (
            <ul
              className="issue-list"
              aria-label={`${issues.length} problem${issues.length === 1 ? '' : 's'} to fix`}
            >
              {issues.map((issue, i) => (
                <li key={i}>
                  <span>{issue.message}</span> {issue.path && <code>{issue.path}</code>}{' '}
                  <button type="button" className="btn small link" onClick={() => showIssue(issue)}>
                    Show in {TABS.find((t) => t.id === tabOf(issue))!.label}
                    <span className="sr-only"> (problem {i + 1})</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}

      <div className={`agent-layout${canTest ? '' : ' solo'}`}>
        <div className="agent-main">
          <div className="tabs" role="tablist" aria-label="Agent sections" onKeyDown={onTabKey}>
            {TABS.map((t) => {
              const count = issueCount(t.id);
              return (
                <button
                  key={t.id}
                  ref={(el) => {
                    tabRefs.current[t.id] = el;
                  }}
                  type="button"
                  role="tab"
                  id={`agent-tab-${t.id}`}
                  aria-selected={tab === t.id}
                  aria-controls={`agent-panel-${t.id}`}
                  aria-describedby={count ? `agent-tab-${t.id}-problems` : undefined}
                  tabIndex={tab === t.id ? 0 : -1}
                  onClick={() => selectTab(t.id)}
                >
                  {t.label}
                  {count > 0 && (
                    <span className="tab-count" aria-hidden="true">
                      {count}
                    </span>
                  )}
                </button>
              );
            })}
          </div>
          {TABS.map((t) =>
            issueCount(t.id) ? (
              <span key={t.id} id={`agent-tab-${t.id}-problems`} className="sr-only">
                {issueCount(t.id)} problem{issueCount(t.id) === 1 ? '' : 's'}
              </span>
            ) : null,
          )}
          <div
            role="tabpanel"
            id={`agent-panel-${tab}`}
            aria-labelledby={`agent-tab-${tab}`}
            tabIndex={0}
            className="agent-panel"
          >
            {tab === 'settings' && (
              <AgentSettings definition={definition} onChange={update} readOnly={!canEdit} issues={issues} />
            )}
            {tab === 'flow' && (
              <FlowDesigner
                definition={definition}
                onChange={onFlowChange}
                onDefinitionChange={onDefinitionChange}
                readOnly={!canEdit}
                serverIssues={flowIssues}
              />
            )}
            {tab === 'tools' && (
              <ToolsEditor
                definition={definition}
                onChange={update}
                readOnly={!canEdit}
                issues={issues}
                json={json}
                selected={selectedTool}
                onSelect={setSelectedTool}
              />
            )}
            {tab === 'knowledge' && (
              <KnowledgeEditor
                definition={definition}
                onChange={update}
                readOnly={!canEdit}
                issues={issues}
              />
            )}
            {tab === 'analysis' && (
              <AnalysisEditor
                definition={definition}
                onChange={update}
                readOnly={!canEdit}
                issues={issues}
                json={json}
              />
            )}
            {tab === 'versions' && (
              <VersionHistory
                agentId={agentId}
                versions={versionList}
                loading={versions.loading}
                error={versions.error}
                canEdit={canEdit}
                dirty={dirty}
                draftUpdatedAt={agent.updatedAt}
                onRolledBack={onRolledBack}
              />
            )}
          </div>
        </div>
        {canTest && (
          <div className="agent-side">
            <TestPanel agentId={agentId} versions={versionList.map((v) => v.version)} draftSaved={!dirty} />
          </div>
        )}
      </div>
    </div>
  );
}
