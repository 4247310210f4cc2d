/**
 * One call: its outcome at a glance, the recording (fetched with the bearer token only when asked
 * for), the transcript as the caller heard it, each agent turn's latency by stage, the post-call
 * analysis, the slots collected and what each CRM holds for it. Old calls lack some of these: each
 * missing piece says so in a line and the rest still shows.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { Link, useParams } from 'react-router-dom';
import { ApiError, getToken } from '../api';
import { BarChart } from '../charts';
import {
  Badge,
  ErrorBanner,
  Loading,
  PageHeader,
  errorMessage,
  formatDate,
  formatDuration,
  formatMs,
  shortId,
  useApi,
} from '../ui';
import { directionLabel, type CallSummary } from './Calls';

type Timings = Record<string, unknown>;

interface TranscriptTurn {
  seq: number;
  /** caller, agent, system or tool (older records may hold others). */
  role: string;
  text: string;
  heardText: string | null;
  interrupted: boolean;
  nodeId: string | null;
  timings: Timings | null;
  at: string;
}

interface CrmSync {
  provider: string;
  status: string;
  externalId: string | null;
  contactExternalId: string | null;
  contactCreated: boolean;
  error: string | null;
  errorCode: string | null;
  syncedAt: string | null;
  updatedAt: string;
}

/** activities/post-call-analysis.ts CallAnalysis, read defensively (old calls, hand-made rows). */
interface Analysis {
  status?: string;
  reason?: string;
  summary?: string;
  sentiment?: string;
  success?: { achieved?: boolean; reason?: string };
  csat?: number;
  structuredData?: Record<string, unknown> | null;
}

interface CallDetail extends CallSummary {
  answeredAt: string | null;
  endReason: string | null;
  slots: unknown;
  summary: string | null;
  /** Post-call analysis (CallAnalysis), or null; read through readAnalysis. */
  analysis: unknown;
  llmTokens: number | null;
  crmSyncStatus: string | null;
  crmSync: CrmSync[] | null;
  workflowId: string;
  temporalUrl: string;
  transcript: TranscriptTurn[] | null;
}

const SPEAKER: Record<string, string> = { agent: 'Agent', caller: 'Caller', system: 'System', tool: 'Tool' };

// ---- turn latency ---------------------------------------------------------------------------

const num = (t: Timings, key: string): number | undefined => {
  const v = t[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
};
const gap = (t: Timings, from: string, to: string): number | undefined => {
  const a = num(t, from);
  const b = num(t, to);
  return a !== undefined && b !== undefined ? Math.max(0, b - a) : undefined;
};

/** The stages of a reply, in the order they happen; together they make up the turn's latency. */
const STAGES = [
  { key: 'endpointing', name: 'Endpointing', color: '#64748b' },
  { key: 'stt', name: 'Speech to text', color: '#0891b2' },
  { key: 'workflow', name: 'Workflow', color: '#7c3aed' },
  { key: 'llm', name: 'LLM first token', color: '#2563eb' },
  { key: 'tts', name: 'Speech synthesis & playout', color: '#16a34a' },
  { key: 'reply', name: 'Rest of reply', color: '#f59e0b' },
] as const;
type StageKey = (typeof STAGES)[number]['key'];

interface TurnLatency {
  seq: number;
  nodeId: string | null;
  interrupted: boolean;
  stages: Partial<Record<StageKey, number>>;
  /** What analytics counts: voice endpointed→first frame, else text speakMs, else llmTotalMs. */
  total: number | undefined;
  speechEndToFirstFrame: number | undefined;
}

function turnLatency(turn: TranscriptTurn): TurnLatency | null {
  const t = turn.timings;
  if (!t || typeof t !== 'object') return null;
  const stages: Partial<Record<StageKey, number>> = {};
  const endpointed = num(t, 'endpointedToFirstFrameMs');
  const speechEnd = num(t, 'speechEndToFirstFrameMs');
  const voice =
    endpointed !== undefined || num(t, 'firstFrameAt') !== undefined || num(t, 'sttMs') !== undefined;
  if (voice) {
    if (speechEnd !== undefined && endpointed !== undefined)
      stages.endpointing = Math.max(0, speechEnd - endpointed);
    else if (gap(t, 'speechEndAt', 'endpointedAt') !== undefined)
      stages.endpointing = gap(t, 'speechEndAt', 'endpointedAt');
    stages.stt = num(t, 'sttMs');
    stages.workflow = num(t, 'updateToSpeakMs');
    stages.llm = num(t, 'llmFirstTokenMs');
    const fromRaw = gap(
      t,
      num(t, 'llmFirstTokenAt') !== undefined ? 'llmFirstTokenAt' : 'speakStartedAt',
      'firstFrameAt',
    );
    if (fromRaw !== undefined) stages.tts = fromRaw;
    else if (endpointed !== undefined) {
      stages.tts = Math.max(0, endpointed - (stages.stt ?? 0) - (stages.workflow ?? 0) - (stages.llm ?? 0));
    }
  } else {
    const firstToken = num(t, 'speakStartedToFirstTokenMs');
    const llmTotal = num(t, 'llmTotalMs');
    const speak = num(t, 'speakMs');
    if (firstToken !== undefined) stages.llm = firstToken;
    if (speak !== undefined) stages.reply = Math.max(0, speak - (firstToken ?? 0));
    else if (llmTotal !== undefined) stages.reply = Math.max(0, llmTotal - (firstToken ?? 0));
  }
  const total = endpointed ?? num(t, 'speakMs') ?? num(t, 'llmTotalMs');
  if (total === undefined && Object.values(stages).every((v) => v === undefined)) return null;
  return {
    seq: turn.seq,
    nodeId: turn.nodeId,
    interrupted: turn.interrupted,
    stages,
    total,
    speechEndToFirstFrame: speechEnd,
  };
}

/** Linear-interpolated percentile (as PostgreSQL's percentile_cont, which the analytics use). */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function LatencySection({ turns }: { turns: TranscriptTurn[] }) {
  const rows = turns
    .filter((t) => t.role === 'agent')
    .map(turnLatency)
    .filter((r): r is TurnLatency => r !== null);
  if (rows.length === 0) {
    return (
      <p className="none">
        No turn timings: this call recorded none (older calls and scripted test turns may not).
      </p>
    );
  }
  const totals = rows.map((r) => r.total).filter((v): v is number => v !== undefined);
  const used = STAGES.filter((s) => rows.some((r) => r.stages[s.key] !== undefined));
  const labels = rows.map((r) => `#${r.seq}`);
  return (
    <>
      <div className="stats" role="group" aria-label="Turn latency over the call">
        <Stat label="Agent turns measured" value={String(rows.length)} />
        <Stat label="p50 turn latency" value={formatMs(percentile(totals, 0.5))} />
        <Stat label="p95 turn latency" value={formatMs(percentile(totals, 0.95))} />
        <Stat label="Slowest turn" value={formatMs(totals.length ? Math.max(...totals) : null)} />
      </div>
      <BarChart
        title="Latency per agent turn, by stage"
        labels={labels}
        series={used.map((s) => ({
          name: s.name,
          color: s.color,
          values: rows.map((r) => r.stages[s.key] ?? null),
        }))}
        format={(v) => formatMs(v)}
      />
      <div className="table-scroll">
        <table className="latency-table">
          <caption className="sr-only">Latency of each agent turn, by stage, in milliseconds</caption>
          <thead>
            <tr>
              <th scope="col">Turn</th>
              <th scope="col">Node</th>
              {used.map((s) => (
                <th scope="col" key={s.key} className="num">
                  {s.name}
                </th>
              ))}
              <th scope="col" className="num">
                Turn latency
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.seq}>
                <th scope="row">
                  #{r.seq}
                  {r.interrupted && <span className="muted"> (interrupted)</span>}
                </th>
                <td>{r.nodeId ? <code>{r.nodeId}</code> : '—'}</td>
                {used.map((s) => (
                  <td key={s.key} className="num">
                    {formatMs(r.stages[s.key])}
                  </td>
                ))}
                <td className="num">
                  <strong>{formatMs(r.total)}</strong>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="hint muted">
        Turn latency: from the moment the caller was heard to be done (endpointed) to the agent&apos;s first
        audio frame; for text turns, the time to produce the reply.
      </p>
    </>
  );
}

// ---- pieces -----------------------------------------------------------------------------------

function Stat({ label, value }: { label: string; value: ReactNode }) {
  return (
    <div className="stat">
      <div className="label">{label}</div>
      <div className="value">{value}</div>
    </div>
  );
}

function Value({ value }: { value: unknown }) {
  if (value === null || value === undefined || value === '') return <span className="muted">—</span>;
  if (typeof value === 'boolean') return <>{value ? 'Yes' : 'No'}</>;
  if (typeof value === 'string' || typeof value === 'number') return <>{String(value)}</>;
  return <code className="json">{JSON.stringify(value)}</code>;
}

function DataList({ data }: { data: Record<string, unknown> }) {
  return (
    <dl className="data-list">
      {Object.entries(data).map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>
            <Value value={v} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

function TranscriptSection({ turns }: { turns: TranscriptTurn[] }) {
  if (turns.length === 0) return <p className="none">No transcript: nothing was said on this call.</p>;
  return (
    <ol aria-label="Transcript" className="transcript">
      {turns.map((t) => {
        const who = SPEAKER[t.role] ?? t.role;
        const heard = t.heardText ?? '';
        const cut = t.interrupted
          ? heard && t.text.startsWith(heard)
            ? t.text.slice(heard.length).trim()
            : t.text
          : '';
        return (
          <li key={t.seq} className={`${t.role}${t.interrupted ? ' was-interrupted' : ''}`}>
            <span className="who">
              {who}
              {t.role === 'agent' && t.nodeId && (
                <>
                  {' · node '}
                  <code>{t.nodeId}</code>
                </>
              )}
              {' · '}
              <time dateTime={t.at}>{new Date(t.at).toLocaleTimeString()}</time>
            </span>
            {t.interrupted ? (
              <>
                <span className="said">{heard || <em className="muted">(nothing was heard)</em>}</span>
                <span className="interrupted">
                  Interrupted{cut ? ': not heard — ' : ''}
                  {cut && <del className="cut">{cut}</del>}
                </span>
              </>
            ) : (
              <span className="said">{t.text}</span>
            )}
          </li>
        );
      })}
    </ol>
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v : undefined);

/** The stored analysis with every field checked: a hand-made or older row never breaks the page. */
function readAnalysis(raw: unknown): Analysis | null {
  if (!isRecord(raw)) return null;
  const success = isRecord(raw.success) ? raw.success : undefined;
  return {
    status: str(raw.status),
    reason: str(raw.reason),
    summary: str(raw.summary),
    sentiment: str(raw.sentiment),
    success:
      success && typeof success.achieved === 'boolean'
        ? { achieved: success.achieved, reason: str(success.reason) }
        : undefined,
    csat: typeof raw.csat === 'number' && Number.isFinite(raw.csat) ? raw.csat : undefined,
    structuredData: isRecord(raw.structuredData) ? raw.structuredData : null,
  };
}

function AnalysisSection({ call }: { call: CallDetail }) {
  const a = readAnalysis(call.analysis);
  const summary = a?.summary ?? (typeof call.summary === 'string' && call.summary ? call.summary : undefined);
  return (
    <>
      {!a && !summary && (
        <p className="none">No analysis: this call has none (it may still be running, or predate it).</p>
      )}
      {a?.status === 'skipped' && (
        <p className="none">Analysis skipped: {a.reason ?? 'no reason recorded'}.</p>
      )}
      {(summary || (a && a.status !== 'skipped')) && (
        <dl className="data-list analysis">
          <div>
            <dt>Summary</dt>
            <dd>{summary ?? <span className="muted">none</span>}</dd>
          </div>
          {a && a.status !== 'skipped' && (
            <>
              <div>
                <dt>Sentiment</dt>
                <dd>
                  {a.sentiment ? (
                    <Badge
                      tone={
                        a.sentiment === 'positive' ? 'good' : a.sentiment === 'negative' ? 'bad' : 'neutral'
                      }
                    >
                      {a.sentiment}
                    </Badge>
                  ) : (
                    <span className="muted">none</span>
                  )}
                </dd>
              </div>
              <div>
                <dt>Success</dt>
                <dd>
                  {a.success && typeof a.success.achieved === 'boolean' ? (
                    <>
                      <Badge tone={a.success.achieved ? 'good' : 'bad'}>
                        {a.success.achieved ? 'achieved' : 'not achieved'}
                      </Badge>
                      {a.success.reason && <span className="reason"> {a.success.reason}</span>}
                    </>
                  ) : (
                    <span className="muted">none</span>
                  )}
                </dd>
              </div>
              <div>
                <dt>CSAT (estimated)</dt>
                <dd>{typeof a.csat === 'number' ? `${a.csat} / 5` : <span className="muted">none</span>}</dd>
              </div>
            </>
          )}
        </dl>
      )}
      <h3>Structured data</h3>
      {a?.structuredData && Object.keys(a.structuredData).length > 0 ? (
        <DataList data={a.structuredData} />
      ) : (
        <p className="none">
          No structured data: the agent defines no structured data schema, or nothing was extracted.
        </p>
      )}
      <h3>Slots collected</h3>
      {isRecord(call.slots) && Object.keys(call.slots).length > 0 ? (
        <DataList data={call.slots} />
      ) : (
        <p className="none">No slots were collected on this call.</p>
      )}
    </>
  );
}

function CrmSection({ call }: { call: CallDetail }) {
  const records = call.crmSync ?? [];
  if (records.length === 0) {
    return (
      <p className="none">
        Not synced to a CRM{call.crmSyncStatus ? ` (status: ${call.crmSyncStatus})` : ''}. Phone calls are
        sent to HubSpot or Salesforce once one is connected under <Link to="/integrations">Integrations</Link>
        .
      </p>
    );
  }
  return (
    <div className="table-scroll">
      <table className="crm-table">
        <caption className="sr-only">CRM sync per provider</caption>
        <thead>
          <tr>
            <th scope="col">Provider</th>
            <th scope="col">Status</th>
            <th scope="col">External id</th>
            <th scope="col">Contact</th>
            <th scope="col">Error</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {records.map((r) => (
            <tr key={r.provider}>
              <th scope="row">
                {r.provider === 'hubspot'
                  ? 'HubSpot'
                  : r.provider === 'salesforce'
                    ? 'Salesforce'
                    : r.provider}
              </th>
              <td>
                <Badge>{r.status}</Badge>
              </td>
              <td>{r.externalId ? <code>{r.externalId}</code> : '—'}</td>
              <td>
                {r.contactExternalId ? <code>{r.contactExternalId}</code> : '—'}
                {r.contactExternalId && (
                  <span className="muted">{r.contactCreated ? ' (created)' : ' (existing)'}</span>
                )}
              </td>
              <td>
                {r.error ? (
                  <span className="crm-error">
                    {r.error}
                    {r.errorCode && <code className="code"> {r.errorCode}</code>}
                  </span>
                ) : (
                  '—'
                )}
              </td>
              <td>{formatDate(r.syncedAt ?? r.updatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The recording needs the bearer token: fetched as a blob on request, played from an object URL. */
function Recording({ call }: { call: CallDetail }) {
  const [src, setSrc] = useState<string | null>(null);
  const [state, setState] = useState<'idle' | 'loading' | 'error'>('idle');
  const [error, setError] = useState<unknown>(undefined);
  const urlRef = useRef<string | null>(null);
  const audioRef = useRef<HTMLAudioElement>(null);
  useEffect(
    () => () => {
      if (urlRef.current) URL.revokeObjectURL(urlRef.current);
    },
    [],
  );
  if (!call.recording) {
    return (
      <p className="none">
        No recording:{' '}
        {call.channel === 'text'
          ? 'text conversations have no audio.'
          : "this agent doesn't record calls (turn recording on in its settings)."}
      </p>
    );
  }
  const recording = call.recording;
  const load = async () => {
    setState('loading');
    setError(undefined);
    try {
      const token = getToken();
      const res = await fetch(recording.url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      if (!res.ok) {
        let message = `The recording could not be loaded (HTTP ${res.status})`;
        let code = `HTTP_${res.status}`;
        try {
          const body = (await res.json()) as { error?: { code?: string; message?: string } };
          message = body.error?.message ?? message;
          code = body.error?.code ?? code;
        } catch {
          // not JSON
        }
        throw new ApiError(res.status, code, message);
      }
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      if (urlRef.current) URL.revokeObjectURL(urlRef.current);
      urlRef.current = url;
      setSrc(url);
      setState('idle');
      // Focus the player so keyboard users can start it straight away.
      setTimeout(() => audioRef.current?.focus(), 0);
    } catch (err) {
      setError(err);
      setState('error');
    }
  };
  return (
    <div className="recording">
      {src ? (
        <>
          <audio ref={audioRef} controls src={src} aria-label="Call recording">
            Your browser cannot play WAV audio.
          </audio>
          <a className="btn small" href={src} download={`call-${call.id}.wav`}>
            Download recording
          </a>
        </>
      ) : (
        <button type="button" className="btn" onClick={() => void load()} disabled={state === 'loading'}>
          {state === 'loading' ? 'Loading recording…' : 'Load recording'}
        </button>
      )}
      {recording.seconds !== null && (
        <span className="muted"> {formatDuration(recording.seconds)} (caller left, agent right)</span>
      )}
      {state === 'loading' && (
        <span className="sr-only" role="status" aria-live="polite">
          Loading recording
        </span>
      )}
      {error !== undefined && (
        <div className="banner error" role="alert">
          {errorMessage(error)}
        </div>
      )}
    </div>
  );
}

// ---- page -------------------------------------------------------------------------------------

export function CallDetailPage() {
  const { id = '' } = useParams();
  const loaded = useApi<CallDetail>(`/v1/calls/${encodeURIComponent(id)}`);
  const call = loaded.data?.id === id ? loaded.data : undefined;
  const agent = useApi<{ id: string; name: string }>(call?.agentId ? `/v1/agents/${call.agentId}` : null);
  const campaign = useApi<{ id: string; name: string }>(
    call?.campaignId ? `/v1/campaigns/${call.campaignId}` : null,
  );

  if (!call) {
    const notFound = loaded.error instanceof ApiError && loaded.error.status === 404;
    return (
      <section>
        <PageHeader title={`Call ${shortId(id)}`} />
        {loaded.loading && <Loading label="Loading call…" />}
        {notFound ? (
          <div className="banner error" role="alert">
            This call does not exist in this workspace (it may belong to another one).{' '}
            <Link to="/calls">Back to calls</Link>
          </div>
        ) : (
          <ErrorBanner error={loaded.error} title="The call could not be loaded" />
        )}
      </section>
    );
  }

  const turns = call.transcript ?? [];
  const live = call.status === 'ringing' || call.status === 'in-progress';
  return (
    <section className="call-detail">
      <PageHeader
        title={`Call ${shortId(call.id)}`}
        subtitle={
          <>
            {directionLabel(call)} · started {formatDate(call.startedAt ?? call.createdAt)}
          </>
        }
        actions={
          <>
            <Link to="/calls">Back to calls</Link>
            {live && (
              <button type="button" className="btn" onClick={loaded.reload}>
                Refresh
              </button>
            )}
            <a className="btn" href={call.temporalUrl} target="_blank" rel="noopener noreferrer">
              Open in Temporal Web UI
            </a>
          </>
        }
      />
      <ErrorBanner error={loaded.error} title="The call could not be refreshed" />

      <div className="stats call-stats">
        <Stat label="Status" value={<Badge>{call.status}</Badge>} />
        <Stat label="Disposition" value={call.disposition ?? '—'} />
        <Stat label="Direction / channel" value={directionLabel(call)} />
        <Stat
          label="From / to"
          value={
            <span className="numbers">
              {call.from ?? '—'} → {call.to ?? '—'}
            </span>
          }
        />
        <Stat label="Started" value={formatDate(call.startedAt ?? call.createdAt)} />
        <Stat label="Duration" value={formatDuration(call.durationSeconds)} />
        <Stat label="End reason" value={call.endReason ?? '—'} />
        <Stat
          label="Agent"
          value={
            call.agentId ? (
              <Link to={`/agents/${call.agentId}`}>
                {agent.data?.name ?? `Agent ${shortId(call.agentId)}`}
              </Link>
            ) : (
              'none'
            )
          }
        />
        <Stat
          label="Campaign"
          value={
            call.campaignId ? (
              <Link to={`/campaigns/${call.campaignId}`}>
                {campaign.data?.name ?? `Campaign ${shortId(call.campaignId)}`}
              </Link>
            ) : (
              'none'
            )
          }
        />
      </div>
      <p className="muted workflow-id">
        Workflow <code>{call.workflowId}</code>
        {call.llmTokens ? ` · ${call.llmTokens.toLocaleString()} LLM tokens` : ''}
      </p>

      <section className="panel" aria-labelledby="recording-h">
        <h2 id="recording-h">Recording</h2>
        <Recording call={call} />
      </section>

      <section className="panel" aria-labelledby="transcript-h">
        <h2 id="transcript-h">Transcript</h2>
        <TranscriptSection turns={turns} />
      </section>

      <section className="panel" aria-labelledby="latency-h">
        <h2 id="latency-h">Turn latency</h2>
        <LatencySection turns={turns} />
      </section>

      <section className="panel" aria-labelledby="analysis-h">
        <h2 id="analysis-h">Analysis</h2>
        <AnalysisSection call={call} />
      </section>

      <section className="panel" aria-labelledby="crm-h">
        <h2 id="crm-h">CRM sync</h2>
        {call.crmSyncStatus && (call.crmSync?.length ?? 0) > 0 && (
          <p>
            Overall: <Badge>{call.crmSyncStatus}</Badge>
          </p>
        )}
        <CrmSection call={call} />
      </section>
    </section>
  );
}
