/**
 * One campaign (`/campaigns/:id`): its status and the actions valid for it (launch a draft, pause,
 * resume, cancel, edit settings: campaign managers only), live progress over server-sent events
 * (`GET /v1/campaigns/:id/events`: `progress` at once and on every change, `done` at the end;
 * reconnected with backoff when the stream drops, and replaced by polling
 * `GET /v1/campaigns/:id/progress` every 2 s when it keeps failing), the funnel and outcome mix,
 * then the campaign's contacts and dial attempts, each call linking to its page. Right after
 * creation it also shows the CSV import report.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { Link, useLocation, useParams } from 'react-router-dom';
import {
  CAMPAIGN_CONTACT_STATUSES as CONTACT_STATUSES,
  type CampaignContactStatus,
  type CampaignStatus,
} from '../../../contracts/statuses';
import { ApiError, api, streamEvents } from '../api';
import { FunnelChart } from '../charts';
import {
  CampaignSettingsForm,
  DAY_NAMES,
  RETRYABLE_OUTCOMES,
  WEEKDAYS,
  campaignFieldErrors,
  formValueOf,
  fromLocalInput,
  settingsChanges,
  validateCampaignForm,
  type Campaign,
  type CampaignFormValue,
  type ImportReport,
  type WindowWarning,
} from '../components/CampaignSettingsForm';
import { useSession } from '../session';
import {
  Badge,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  Notice,
  PageHeader,
  Pager,
  formatDate,
  shortId,
  useApi,
  usePaged,
} from '../ui';
import { contactsDone } from './Campaigns';

interface Progress {
  campaignId: string;
  status: CampaignStatus;
  paused: boolean;
  counts: Record<CampaignContactStatus, number> & { total: number };
  attempts: { total: number; notDialed: number; byOutcome: Record<string, number> };
  inFlight: number;
  nextAttemptAt: string | null;
  done: boolean;
  summary: Record<string, unknown> | null;
}

interface CampaignContact {
  contactId: string;
  phone: string;
  name: string | null;
  status: CampaignContactStatus;
  attempts: number;
  lastOutcome: string | null;
  nextAttemptAt: string | null;
  lastCallId: string | null;
  updatedAt: string;
}

interface CampaignAttempt {
  id: string;
  contactId: string;
  phone: string | null;
  attempt: number;
  callId: string | null;
  outcome: string | null;
  reason: string | null;
  scheduledFor: string | null;
  startedAt: string;
  endedAt: string | null;
}

interface CreationState {
  importReport?: ImportReport;
  warnings?: WindowWarning[];
  fileName?: string;
}

type Transport = 'connecting' | 'live' | 'reconnecting' | 'polling' | 'ended';

const POLL_MS = 2000;
/** Failed stream attempts in a row (no event received) before polling instead. */
const STREAM_FAILURES_BEFORE_POLLING = 3;

/**
 * The campaign's progress, live: the SSE stream while it works, reconnecting with exponential
 * backoff (1 s, 2 s, 4 s … 30 s, jittered) when it drops, polling every 2 s after repeated failures.
 * Stops when the campaign is done.
 */
function useCampaignProgress(id: string) {
  const [progress, setProgress] = useState<Progress | undefined>(undefined);
  const [transport, setTransport] = useState<Transport>('connecting');
  const [error, setError] = useState<unknown>(undefined);

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      });
    const take = (p: Progress) => {
      setProgress(p);
      setError(undefined);
    };

    void (async () => {
      let failures = 0;
      for (;;) {
        let received = false;
        let done = false;
        try {
          await streamEvents(
            `/v1/campaigns/${id}/events`,
            (message) => {
              if (message.event === 'progress' || message.event === 'done') {
                const p = JSON.parse(message.data) as Progress;
                received = true;
                take(p);
                setTransport('live');
                if (message.event === 'done' || p.done) done = true;
              } else if (message.event === 'error') {
                const e = JSON.parse(message.data) as { code?: string; message?: string };
                setError(new ApiError(500, e.code ?? 'STREAM_ERROR', e.message ?? 'Progress is unavailable'));
              }
            },
            { signal },
          );
        } catch (err) {
          if (signal.aborted) return;
          // A refusal (not found, forbidden) will not heal by retrying.
          if (
            err instanceof ApiError &&
            err.status >= 400 &&
            err.status < 500 &&
            ![408, 429].includes(err.status)
          ) {
            setError(err);
            setTransport('ended');
            return;
          }
        }
        if (signal.aborted) return;
        if (done) {
          setTransport('ended');
          return;
        }
        failures = received ? 1 : failures + 1;
        if (!received && failures >= STREAM_FAILURES_BEFORE_POLLING) break;
        setTransport('reconnecting');
        const backoff = Math.min(30_000, 1000 * 2 ** (failures - 1));
        await sleep(backoff * (0.75 + Math.random() * 0.5));
        if (signal.aborted) return;
      }
      setTransport('polling');
      while (!signal.aborted) {
        try {
          const p = await api.get<Progress>(`/v1/campaigns/${id}/progress`, undefined, signal);
          take(p);
          if (p.done) {
            setTransport('ended');
            return;
          }
        } catch (err) {
          if (signal.aborted) return;
          setError(err);
        }
        await sleep(POLL_MS);
      }
    })();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [id]);

  return { progress, transport, error };
}

/** Calls `fn` when `key` changes, at most once per `ms` (the last change always gets its call). */
/** A campaign in one of these has written its last contact and attempt rows. */
const FINISHED_STATUSES: readonly CampaignStatus[] = ['completed', 'canceled', 'failed'];

/** Reloads once when the campaign finishes, so the tables end on the final rows. */
function useReloadWhenFinished(status: CampaignStatus | undefined, reload: () => void) {
  const finished = status !== undefined && FINISHED_STATUSES.includes(status);
  useEffect(() => {
    if (finished) reload();
  }, [finished, reload]);
}

function useThrottledOnChange(key: string, ms: number, fn: () => void) {
  const last = useRef(0);
  const first = useRef(true);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const wait = Math.max(0, last.current + ms - Date.now());
    const t = setTimeout(() => {
      last.current = Date.now();
      fnRef.current();
    }, wait);
    return () => clearTimeout(t);
  }, [key, ms]);
}

const TRANSPORT_TEXT: Record<Transport, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  polling: 'Updating every 2 s',
  ended: '',
};

function outcomeText(outcome: string | null): string {
  if (!outcome) return 'in progress';
  if (outcome.startsWith('not_dialed:')) return `not dialed (${outcome.slice('not_dialed:'.length)})`;
  return outcome;
}

export function CampaignDetailPage() {
  const { id = '' } = useParams();
  return <CampaignDetail key={id} id={id} />;
}

function CampaignDetail({ id }: { id: string }) {
  const { can } = useSession();
  const location = useLocation();
  const creation = (location.state ?? null) as CreationState | null;
  const campaign = useApi<Campaign>(`/v1/campaigns/${id}`);
  const agents = useApi<{ data: { id: string; name: string }[] }>('/v1/agents');
  const { progress, transport, error: progressError } = useCampaignProgress(id);
  const [actionError, setActionError] = useState<unknown>(undefined);
  const [pending, setPending] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const [editing, setEditing] = useState(false);

  // An action's own answer shows at once; the next progress event (which follows it) takes over.
  const [override, setOverride] = useState<CampaignStatus | undefined>(undefined);
  useEffect(() => setOverride(undefined), [progress]);
  const c = campaign.data;
  const status: CampaignStatus | undefined = override ?? progress?.status ?? c?.status;
  const reloadCampaign = campaign.reload;

  // The campaign row follows its status (launchedAt, finishedAt, summary, settings edited by the workflow).
  const progressStatus = progress?.status;
  const rowStatus = c?.status;
  useEffect(() => {
    if (progressStatus && rowStatus && progressStatus !== rowStatus) reloadCampaign();
  }, [progressStatus, rowStatus, reloadCampaign]);

  const act = useCallback(
    async (verb: 'launch' | 'pause' | 'resume' | 'cancel', done: string) => {
      setPending(verb);
      setActionError(undefined);
      setNotice(null);
      try {
        const res = await api.post<{ contactsQueued?: number; status?: CampaignStatus }>(
          `/v1/campaigns/${id}/${verb}`,
          {},
        );
        if (res?.status) setOverride(res.status);
        setNotice(
          verb === 'launch' && typeof res?.contactsQueued === 'number'
            ? `${done}: ${res.contactsQueued} contacts queued.`
            : `${done}.`,
        );
        reloadCampaign();
      } catch (err) {
        setActionError(err);
      } finally {
        setPending(null);
        setConfirmCancel(false);
      }
    },
    [id, reloadCampaign],
  );

  if (campaign.error && !c) {
    return (
      <>
        <PageHeader title="Campaign" />
        <ErrorBanner error={campaign.error} title="This campaign could not be loaded" />
        <p>
          <Link to="/campaigns">Back to campaigns</Link>
        </p>
      </>
    );
  }
  if (!c || !status) return <Loading />;

  const editor = can('campaigns.edit');
  const finished = status === 'completed' || status === 'canceled' || status === 'failed';
  const agentName = agents.data?.data.find((a) => a.id === c.agentId)?.name;

  return (
    <>
      <PageHeader
        title={c.name}
        subtitle={
          <>
            <span data-testid="campaign-status">
              <Badge>{status}</Badge>
            </span>{' '}
            Agent <Link to={`/agents/${c.agentId}`}>{agentName ?? shortId(c.agentId)}</Link>
            {c.agentVersion !== null && ` v${c.agentVersion}`} · from {c.callerNumber ?? '—'} · created{' '}
            {formatDate(c.createdAt)}
            {c.launchedAt && ` · launched ${formatDate(c.launchedAt)}`}
            {c.finishedAt && ` · finished ${formatDate(c.finishedAt)}`}
            {TRANSPORT_TEXT[transport] && (
              <span className="muted live-dot"> · {TRANSPORT_TEXT[transport]}</span>
            )}
          </>
        }
        actions={
          editor && (
            <>
              {status === 'draft' && (
                <button
                  type="button"
                  className="btn primary"
                  disabled={pending !== null}
                  onClick={() => void act('launch', 'Launched')}
                >
                  {pending === 'launch' ? 'Launching…' : 'Launch'}
                </button>
              )}
              {status === 'running' && (
                <button
                  type="button"
                  className="btn"
                  disabled={pending !== null}
                  onClick={() => void act('pause', 'Paused')}
                >
                  Pause
                </button>
              )}
              {status === 'paused' && (
                <button
                  type="button"
                  className="btn primary"
                  disabled={pending !== null}
                  onClick={() => void act('resume', 'Resumed')}
                >
                  Resume
                </button>
              )}
              {!finished && (
                <button
                  type="button"
                  className="btn"
                  aria-expanded={editing}
                  aria-controls="campaign-edit"
                  onClick={() => setEditing((e) => !e)}
                >
                  Edit settings
                </button>
              )}
              {(status === 'running' || status === 'paused') && (
                <button
                  type="button"
                  className="btn danger"
                  disabled={pending !== null}
                  onClick={() => setConfirmCancel(true)}
                >
                  Cancel campaign
                </button>
              )}
            </>
          )
        }
      />

      {confirmCancel && (
        <div
          className="banner warn confirm"
          role="alertdialog"
          aria-label="Confirm cancel"
          aria-describedby="cancel-text"
        >
          <p id="cancel-text">
            Cancel “{c.name}”? No new calls are placed; calls in progress finish, and contacts not yet reached
            end canceled. This cannot be undone.
          </p>
          <div className="actions">
            <button
              type="button"
              className="btn danger"
              disabled={pending !== null}
              onClick={() => void act('cancel', 'Canceled')}
              autoFocus
            >
              {pending === 'cancel' ? 'Canceling…' : 'Yes, stop calling'}
            </button>
            <button type="button" className="btn" onClick={() => setConfirmCancel(false)}>
              Keep it going
            </button>
          </div>
        </div>
      )}

      <ErrorBanner error={actionError} title="That did not work" />
      {notice && <Notice tone="success">{notice}</Notice>}
      {creation?.importReport && (
        <ImportReportNotice report={creation.importReport} fileName={creation.fileName} />
      )}
      {creation?.warnings && creation.warnings.length > 0 && (
        <Notice tone="warn">
          <ul>
            {creation.warnings.map((w) => (
              <li key={w.timeZone}>{w.message}</li>
            ))}
          </ul>
        </Notice>
      )}
      {status === 'draft' && !notice && (
        <Notice>This campaign is a draft: nobody is called until it is launched.</Notice>
      )}
      {progress?.done && status === 'completed' && <Notice tone="success">Campaign completed</Notice>}
      {progress?.done && status === 'canceled' && <Notice tone="warn">Campaign canceled</Notice>}
      {status === 'failed' && (
        <Notice tone="warn">Campaign failed: its workflow ended without finishing.</Notice>
      )}
      <ErrorBanner error={progressError} title="Live progress" />

      {editing && !finished && (
        <EditSettings
          campaign={c}
          status={status}
          onSaved={(view) => {
            campaign.setData(view);
            setEditing(false);
            setNotice('Settings saved.');
          }}
          onClose={() => setEditing(false)}
        />
      )}

      <ProgressSection progress={progress} />
      <SettingsSummary campaign={c} />
      <ContactsTable id={id} status={status} progress={progress} />
      <AttemptsTable id={id} status={status} progress={progress} />
    </>
  );
}

function ImportReportNotice({ report, fileName }: { report: ImportReport; fileName?: string }) {
  const skipped = report.rows.filter((r) => r.status === 'invalid');
  return (
    <Notice tone={report.totals.invalid > 0 ? 'warn' : 'success'}>
      Contacts imported{fileName ? ` from ${fileName}` : ''}: {report.totals.accepted} new,{' '}
      {report.totals.duplicate} already known or repeated, {report.totals.invalid} invalid rows skipped.
      {skipped.length > 0 && (
        <details>
          <summary>Skipped rows</summary>
          <ul>
            {skipped.map((r) => (
              <li key={r.row}>
                Row {r.row}: {r.reason}
              </li>
            ))}
          </ul>
        </details>
      )}
    </Notice>
  );
}

function Tile({ label, value }: { label: string; value: string | number }) {
  return (
    <div className="stat">
      <div className="value">{value}</div>
      <div className="label">{label}</div>
    </div>
  );
}

function ProgressSection({ progress }: { progress: Progress | undefined }) {
  if (!progress) {
    return (
      <section aria-label="Progress" aria-live="polite" className="campaign-progress">
        <Loading label="Loading progress…" />
      </section>
    );
  }
  const { counts, attempts } = progress;
  const done = contactsDone(counts);
  const pending = (counts.pending ?? 0) + (counts.scheduled ?? 0);
  const pct = counts.total ? Math.round((100 * done) / counts.total) : 0;
  const outcomes = Object.entries(attempts.byOutcome)
    .filter(([outcome]) => !outcome.startsWith('not_dialed'))
    .sort((a, b) => b[1] - a[1])
    .map(([outcome, value]) => ({ label: outcomeText(outcome === 'in_progress' ? null : outcome), value }));
  if (attempts.notDialed > 0) outcomes.push({ label: 'not dialed', value: attempts.notDialed });
  const byStatus = CONTACT_STATUSES.filter((s) => (counts[s] ?? 0) > 0).map((s) => ({
    label: s.replace('_', ' '),
    value: counts[s] ?? 0,
  }));
  const answered = (attempts.byOutcome.completed ?? 0) + (attempts.byOutcome.transferred ?? 0);
  return (
    <section aria-label="Progress" aria-live="polite" className="campaign-progress">
      <div className="stats">
        <Tile label="Total contacts" value={counts.total} />
        <Tile label="Done" value={done} />
        <Tile label="In flight" value={progress.inFlight} />
        <Tile label="Pending" value={pending} />
        <Tile label="Dials" value={attempts.total} />
        <Tile label="Next attempt at" value={formatDate(progress.nextAttemptAt)} />
      </div>
      <div className="campaign-progress-bar">
        <label htmlFor="campaign-progress-bar">Contacts done</label>
        <progress id="campaign-progress-bar" value={done} max={Math.max(1, counts.total)} />
        <span>
          {done} of {counts.total} ({pct}%)
        </span>
      </div>
      <div className="grid-2">
        <div>
          <FunnelChart
            title="Funnel"
            steps={[
              { label: 'Contacts', value: counts.total, color: '#64748b' },
              { label: 'Dialed', value: attempts.total, color: '#2563eb' },
              { label: 'Answered', value: answered, color: '#0891b2' },
              { label: 'Completed', value: counts.completed ?? 0, color: '#16a34a' },
            ]}
          />
          <p className="muted small-print">
            Dialed and answered count dials (a contact may be dialed more than once); contacts and completed
            count people.
          </p>
        </div>
        {outcomes.length > 0 ? (
          <FunnelChart title="Outcome mix" steps={outcomes} />
        ) : (
          <Empty>No dials yet: outcomes appear here as calls end.</Empty>
        )}
      </div>
      {byStatus.length > 0 && <FunnelChart title="Contacts by status" steps={byStatus} />}
    </section>
  );
}

function describeWindows(c: Campaign): string {
  const days = WEEKDAYS.filter((d) => (c.settings.windows[d] ?? []).length > 0);
  if (days.length === 0) return 'none';
  return days
    .map(
      (d) =>
        `${DAY_NAMES[d].slice(0, 3)} ${(c.settings.windows[d] ?? []).map((w) => `${w.start}–${w.end}`).join(', ')}`,
    )
    .join('; ');
}

function SettingsSummary({ campaign: c }: { campaign: Campaign }) {
  const s = c.settings;
  return (
    <details className="panel campaign-summary">
      <summary>Settings</summary>
      <dl>
        <dt>Calling windows (contact&apos;s local time)</dt>
        <dd>{describeWindows(c)}</dd>
        <dt>Default time zone</dt>
        <dd>{s.defaultTimeZone}</dd>
        <dt>Max concurrent calls</dt>
        <dd>{s.maxConcurrentCalls}</dd>
        <dt>Calls per minute</dt>
        <dd>{Math.round(s.maxCallsPerSecond * 60 * 1000) / 1000}</dd>
        <dt>Retry</dt>
        <dd>
          {RETRYABLE_OUTCOMES.map((o) => {
            const r = s.retry[o];
            return r.maxAttempts <= 1
              ? `${o}: no retry`
              : `${o}: ${r.maxAttempts} attempts, ${Math.round(r.backoffSeconds / 6) / 10} min apart (×${r.backoffMultiplier})`;
          }).join('; ')}
        </dd>
        <dt>Voicemail</dt>
        <dd>
          {s.voicemail.action === 'hangup' ? 'Hang up' : `Leave a message: “${s.voicemail.message}”`}
          {s.machineDetection ? ' (answering machines detected)' : ' (no answering-machine detection)'}
        </dd>
        <dt>Ring timeout</dt>
        <dd>{s.ringTimeoutSeconds} s</dd>
        <dt>Schedule</dt>
        <dd>
          {c.startsAt ? `from ${formatDate(c.startsAt)}` : 'from launch'}
          {c.endsAt ? ` until ${formatDate(c.endsAt)}` : ', no end date'}
        </dd>
      </dl>
    </details>
  );
}

function EditSettings({
  campaign,
  status,
  onSaved,
  onClose,
}: {
  campaign: Campaign;
  status: CampaignStatus;
  onSaved: (view: Campaign) => void;
  onClose: () => void;
}) {
  const mode = status === 'draft' ? 'draft' : 'running';
  const [value, setValue] = useState<CampaignFormValue>(() => formValueOf(campaign));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [saving, setSaving] = useState(false);

  async function save(event: FormEvent) {
    event.preventDefault();
    setError(undefined);
    const found = validateCampaignForm(value, mode);
    setErrors(found);
    if (Object.keys(found).length) return;
    const settings = settingsChanges(value.settings, campaign.settings, mode);
    const body: Record<string, unknown> = {};
    if (Object.keys(settings).length) body.settings = settings;
    if (mode === 'draft') {
      const startsAt = fromLocalInput(value.startsAt);
      const endsAt = fromLocalInput(value.endsAt);
      const same = (a: string | null, b: string | null) =>
        (a === null && b === null) ||
        (a !== null && b !== null && new Date(a).getTime() === new Date(b).getTime());
      if (!same(startsAt, campaign.startsAt)) body.startsAt = startsAt;
      if (!same(endsAt, campaign.endsAt)) body.endsAt = endsAt;
    }
    if (Object.keys(body).length === 0) {
      onClose();
      return;
    }
    setSaving(true);
    try {
      onSaved(await api.patch<Campaign>(`/v1/campaigns/${campaign.id}`, body));
    } catch (err) {
      setError(err);
      setErrors(campaignFieldErrors(err));
    } finally {
      setSaving(false);
    }
  }

  return (
    <section id="campaign-edit" className="panel" aria-label="Edit settings">
      <h2>Edit settings</h2>
      <form onSubmit={save} noValidate>
        <CampaignSettingsForm value={value} onChange={setValue} errors={errors} mode={mode} />
        <ErrorBanner error={error} title="Settings not saved" />
        <div className="actions">
          <button type="submit" className="btn primary" disabled={saving}>
            {saving ? 'Saving…' : 'Save settings'}
          </button>
          <button type="button" className="btn" onClick={onClose}>
            Discard changes
          </button>
          {mode === 'running' && <span className="muted">Applied by the running campaign at once.</span>}
        </div>
      </form>
    </section>
  );
}

function progressKey(p: Progress | undefined): string {
  return p ? JSON.stringify([p.counts, p.attempts, p.inFlight, p.status]) : '';
}

function ContactsTable({
  id,
  status,
  progress,
}: {
  id: string;
  status: CampaignStatus;
  progress?: Progress;
}) {
  const [filter, setFilter] = useState('');
  const contacts = usePaged<CampaignContact>(`/v1/campaigns/${id}/contacts`, { status: filter, limit: 25 });
  useThrottledOnChange(progressKey(progress), 2000, contacts.reload);
  useReloadWhenFinished(status, contacts.reload);
  const rows = contacts.data?.data ?? [];
  return (
    <section className="campaign-table" aria-labelledby="campaign-contacts-title">
      <h2 id="campaign-contacts-title">Contacts</h2>
      <div className="filters">
        <Field label="Contact status">
          <select value={filter} onChange={(e) => setFilter(e.target.value)}>
            <option value="">All</option>
            {CONTACT_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <ErrorBanner error={contacts.error} title="Contacts could not be loaded" />
      {contacts.loading && !contacts.data && <Loading />}
      {contacts.data && rows.length === 0 && (
        <Empty>
          {filter
            ? `No contacts are ${filter}.`
            : status === 'draft'
              ? 'The contacts of its list join the campaign when it is launched.'
              : 'This campaign has no contacts.'}
        </Empty>
      )}
      {rows.length > 0 && (
        <>
          <table aria-label="Campaign contacts">
            <thead>
              <tr>
                <th scope="col">Phone</th>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last outcome</th>
                <th scope="col">Next attempt</th>
                <th scope="col">Last call</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.contactId}>
                  <td>{r.phone}</td>
                  <td>{r.name ?? '—'}</td>
                  <td>
                    <Badge>{r.status}</Badge>
                  </td>
                  <td>{r.attempts}</td>
                  <td>{r.lastOutcome ?? '—'}</td>
                  <td>{formatDate(r.nextAttemptAt)}</td>
                  <td>
                    {r.lastCallId ? (
                      <Link
                        to={`/calls/${r.lastCallId}`}
                        aria-label={`Call ${shortId(r.lastCallId)} to ${r.phone}`}
                      >
                        {shortId(r.lastCallId)}
                      </Link>
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager {...contacts} />
        </>
      )}
    </section>
  );
}

function AttemptsTable({
  id,
  status,
  progress,
}: {
  id: string;
  status: CampaignStatus;
  progress?: Progress;
}) {
  const attempts = usePaged<CampaignAttempt>(`/v1/campaigns/${id}/attempts`, { limit: 25 });
  useThrottledOnChange(progressKey(progress), 2000, attempts.reload);
  useReloadWhenFinished(status, attempts.reload);
  const rows = attempts.data?.data ?? [];
  return (
    <section className="campaign-table" aria-labelledby="campaign-attempts-title">
      <h2 id="campaign-attempts-title">Attempts</h2>
      <ErrorBanner error={attempts.error} title="Attempts could not be loaded" />
      {attempts.loading && !attempts.data && <Loading />}
      {attempts.data && rows.length === 0 && <Empty>No dial attempts yet.</Empty>}
      {rows.length > 0 && (
        <>
          <table aria-label="Dial attempts">
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Phone</th>
                <th scope="col">Attempt</th>
                <th scope="col">Outcome</th>
                <th scope="col">Reason</th>
                <th scope="col">Ended</th>
                <th scope="col">Call</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((a) => (
                <tr key={a.id}>
                  <td>{formatDate(a.startedAt)}</td>
                  <td>{a.phone ?? '—'}</td>
                  <td>#{a.attempt}</td>
                  <td>
                    <Badge>{outcomeText(a.outcome)}</Badge>
                  </td>
                  <td>{a.reason ?? '—'}</td>
                  <td>{formatDate(a.endedAt)}</td>
                  <td>
                    {a.callId ? (
                      <Link
                        to={`/calls/${a.callId}`}
                        aria-label={`Call ${shortId(a.callId)}, attempt ${a.attempt} to ${a.phone ?? 'contact'}`}
                      >
                        {shortId(a.callId)}
                      </Link>
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager {...attempts} />
        </>
      )}
    </section>
  );
}
