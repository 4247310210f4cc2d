/**
 * Calls: every conversation (phone, web and text), newest first, filtered by status, agent,
 * campaign, direction, channel, disposition and date. The filters live in the URL, so a filtered
 * list can be shared and the back button returns to the previous filters.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import type { Query } from '../api';
import {
  Badge,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  PageHeader,
  Pager,
  formatDate,
  formatDuration,
  shortId,
  useApi,
  usePaged,
} from '../ui';
import { CALL_STATUSES } from '../../../contracts/statuses';

export interface CallSummary {
  id: string;
  agentId: string | null;
  agentVersionId: string | null;
  campaignId: string | null;
  direction: 'inbound' | 'outbound';
  channel: 'voice' | 'text' | 'web';
  from: string | null;
  to: string | null;
  status: string;
  disposition: string | null;
  startedAt: string | null;
  endedAt: string | null;
  durationSeconds: number | null;
  recording: { url: string; seconds: number | null } | null;
  createdAt: string;
}

export interface NamedItem {
  id: string;
  name: string;
}

const FILTER_KEYS = [
  'status',
  'agentId',
  'campaignId',
  'direction',
  'channel',
  'disposition',
  'from',
  'to',
] as const;
type FilterKey = (typeof FILTER_KEYS)[number];

/** `YYYY-MM-DD` → the instant the day starts in the browser's zone (ISO); `plusDays` moves it. */
export function localDayStart(date: string, plusDays = 0): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return undefined;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plusDays);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Agents (all of them) and campaigns (the 200 newest) for filter choices and names. */
export function useNames() {
  const agents = useApi<{ data: NamedItem[] }>('/v1/agents');
  const campaigns = useApi<{ data: NamedItem[] }>('/v1/campaigns', { limit: 200 });
  return useMemo(
    () => ({
      agents: agents.data?.data ?? [],
      campaigns: campaigns.data?.data ?? [],
      agentName: new Map((agents.data?.data ?? []).map((a) => [a.id, a.name])),
      campaignName: new Map((campaigns.data?.data ?? []).map((c) => [c.id, c.name])),
      error: agents.error ?? campaigns.error,
    }),
    [agents.data, agents.error, campaigns.data, campaigns.error],
  );
}

export function directionLabel(call: { direction: string; channel: string }): string {
  const channel = call.channel === 'voice' ? 'phone' : call.channel;
  return `${call.direction === 'inbound' ? 'Inbound' : 'Outbound'} · ${channel}`;
}

/** The disposition filter is typed: it reaches the URL once typing pauses, not at every key. */
function DispositionFilter({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  useEffect(() => {
    if (text === value) return;
    const timer = setTimeout(() => onChange(text.trim()), 400);
    return () => clearTimeout(timer);
  }, [text, value, onChange]);
  return (
    <Field label="Disposition">
      <input
        aria-label="Disposition"
        type="search"
        value={text}
        placeholder="e.g. booked"
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') onChange(text.trim());
        }}
      />
    </Field>
  );
}

export function CallsPage() {
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => {
    const out = {} as Record<FilterKey, string>;
    for (const key of FILTER_KEYS) out[key] = params.get(key) ?? '';
    return out;
  }, [params]);
  const names = useNames();

  const setFilter = useCallback(
    (key: FilterKey, value: string) => {
      setParams((prev) => {
        const next = new URLSearchParams(prev);
        if (value) next.set(key, value);
        else next.delete(key);
        return next;
      });
    },
    [setParams],
  );
  const setDisposition = useCallback((v: string) => setFilter('disposition', v), [setFilter]);

  const rangeError =
    filters.from && filters.to && filters.from > filters.to
      ? '“From” is after “To”: no call can match.'
      : undefined;

  const query: Query = {
    limit: 50,
    status: filters.status || undefined,
    agentId: filters.agentId || undefined,
    campaignId: filters.campaignId || undefined,
    direction: filters.direction || undefined,
    channel: filters.channel || undefined,
    disposition: filters.disposition || undefined,
    from: filters.from ? localDayStart(filters.from) : undefined,
    // "To" is a whole day: calls up to the end of it.
    to: filters.to ? localDayStart(filters.to, 1) : undefined,
  };
  const paged = usePaged<CallSummary>('/v1/calls', query);
  const anyFilter = FILTER_KEYS.some((k) => filters[k]);
  const calls = paged.data?.data ?? [];

  return (
    <section>
      <PageHeader
        title="Calls"
        subtitle="Every conversation your agents had: phone, web and text, newest first."
        actions={<Link to="/analytics">View analytics</Link>}
      />
      <form
        className="filters calls-filters"
        role="search"
        aria-label="Filter calls"
        onSubmit={(e) => e.preventDefault()}
      >
        <Field label="Status">
          <select
            aria-label="Status"
            value={filters.status}
            onChange={(e) => setFilter('status', e.target.value)}
          >
            <option value="">Any status</option>
            {CALL_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Agent">
          <select
            aria-label="Agent"
            value={filters.agentId}
            onChange={(e) => setFilter('agentId', e.target.value)}
          >
            <option value="">All agents</option>
            {names.agents.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
            {filters.agentId && !names.agentName.has(filters.agentId) && (
              <option value={filters.agentId}>Agent {shortId(filters.agentId)}</option>
            )}
          </select>
        </Field>
        <Field label="Campaign">
          <select
            aria-label="Campaign"
            value={filters.campaignId}
            onChange={(e) => setFilter('campaignId', e.target.value)}
          >
            <option value="">All campaigns</option>
            {names.campaigns.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
            {filters.campaignId && !names.campaignName.has(filters.campaignId) && (
              <option value={filters.campaignId}>Campaign {shortId(filters.campaignId)}</option>
            )}
          </select>
        </Field>
        <Field label="Direction">
          <select
            aria-label="Direction"
            value={filters.direction}
            onChange={(e) => setFilter('direction', e.target.value)}
          >
            <option value="">Both</option>
            <option value="inbound">Inbound</option>
            <option value="outbound">Outbound</option>
          </select>
        </Field>
        <Field label="Channel">
          <select
            aria-label="Channel"
            value={filters.channel}
            onChange={(e) => setFilter('channel', e.target.value)}
          >
            <option value="">All channels</option>
            <option value="voice">Phone</option>
            <option value="web">Web</option>
            <option value="text">Text</option>
          </select>
        </Field>
        <DispositionFilter value={filters.disposition} onChange={setDisposition} />
        <Field label="From">
          <input
            aria-label="From"
            type="date"
            value={filters.from}
            max={filters.to || undefined}
            onChange={(e) => setFilter('from', e.target.value)}
          />
        </Field>
        <Field label="To" error={rangeError}>
          <input
            aria-label="To"
            type="date"
            value={filters.to}
            min={filters.from || undefined}
            onChange={(e) => setFilter('to', e.target.value)}
          />
        </Field>
        {anyFilter && (
          <button type="button" className="btn link" onClick={() => setParams(new URLSearchParams())}>
            Clear filters
          </button>
        )}
      </form>

      <ErrorBanner error={paged.error} title="Calls could not be loaded" />
      <ErrorBanner error={names.error} title="Agent and campaign names could not be loaded" />
      {paged.loading && !paged.data && <Loading label="Loading calls…" />}
      {paged.data && calls.length === 0 && !anyFilter && (
        <Empty>
          <p>
            <strong>No calls yet.</strong>
          </p>
          <p>
            Calls appear here as they happen: when someone calls one of your{' '}
            <Link to="/numbers">phone numbers</Link> (assign an agent to it first), when you talk to an agent
            in its test panel (open one under <Link to="/agents">Agents</Link>), or when a{' '}
            <Link to="/campaigns">campaign</Link> dials its contacts.
          </p>
        </Empty>
      )}
      {paged.data && calls.length === 0 && anyFilter && (
        <Empty>
          <p>No calls match these filters{paged.page > 1 ? ' on this page' : ''}.</p>
          <button type="button" className="btn" onClick={() => setParams(new URLSearchParams())}>
            Clear filters
          </button>
        </Empty>
      )}
      {calls.length > 0 && (
        <div className="table-scroll">
          <table className="calls-table" aria-busy={paged.loading}>
            <caption className="sr-only">Calls, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Agent</th>
                <th scope="col">Direction</th>
                <th scope="col">From → To</th>
                <th scope="col">Status</th>
                <th scope="col">Disposition</th>
                <th scope="col">Duration</th>
                <th scope="col">Campaign</th>
              </tr>
            </thead>
            <tbody>
              {calls.map((c) => {
                const started = formatDate(c.startedAt ?? c.createdAt);
                return (
                  <tr key={c.id}>
                    <td>
                      <Link
                        to={`/calls/${c.id}`}
                        aria-label={`Open call ${shortId(c.id)}, started ${started}`}
                      >
                        {started}
                      </Link>
                    </td>
                    <td>
                      {c.agentId ? (
                        <Link to={`/agents/${c.agentId}`}>
                          {names.agentName.get(c.agentId) ?? `Agent ${shortId(c.agentId)}`}
                        </Link>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td>{directionLabel(c)}</td>
                    <td className="numbers">
                      <span>{c.from ?? '—'}</span> → <span>{c.to ?? '—'}</span>
                    </td>
                    <td>
                      <Badge>{c.status}</Badge>
                    </td>
                    <td>{c.disposition ?? <span className="muted">—</span>}</td>
                    <td className="num">{formatDuration(c.durationSeconds)}</td>
                    <td>
                      {c.campaignId ? (
                        <Link to={`/campaigns/${c.campaignId}`}>
                          {names.campaignName.get(c.campaignId) ?? `Campaign ${shortId(c.campaignId)}`}
                        </Link>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {(calls.length > 0 || paged.hasPrevious) && <Pager {...paged} />}
    </section>
  );
}
