/**
 * Analytics: how many calls, how they ended, how long they took, how fast the agent answered and
 * how callers felt, per day over a date range (days in the workspace's time zone), per agent and
 * per campaign. Filters live in the URL so a view can be shared.
 */
import { useCallback } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { wallTimeIn, zonedTimeToInstant } from '../../../contracts/zoned-time';
import { BarChart, FunnelChart, LineChart } from '../charts';
import { useSession } from '../session';
import {
  Empty,
  ErrorBanner,
  Field,
  Loading,
  PageHeader,
  formatDuration,
  formatMs,
  shortId,
  useApi,
} from '../ui';
import { useNames } from './Calls';

interface Analytics {
  from: string;
  to: string;
  timeZone: string;
  totals: {
    calls: number;
    completed: number;
    avgHandleSeconds: number | null;
    turnLatencyP50Ms: number | null;
    turnLatencyP95Ms: number | null;
  };
  days: {
    day: string;
    calls: number;
    avgHandleSeconds: number | null;
    turnLatencyP50Ms: number | null;
    turnLatencyP95Ms: number | null;
  }[];
  outcomes: { disposition: string; count: number }[];
  sentiment: { sentiment: 'positive' | 'neutral' | 'negative' | 'unknown'; count: number }[];
  byAgent: {
    agentId: string | null;
    name: string | null;
    calls: number;
    avgHandleSeconds: number | null;
    turnLatencyP95Ms: number | null;
  }[];
  byCampaign: {
    campaignId: string;
    name: string | null;
    calls: number;
    completed: number;
    avgHandleSeconds: number | null;
  }[];
}

const DAY_MS = 86_400_000;
const MAX_DAYS = 366;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

const SENTIMENT_COLORS: Record<string, string> = {
  positive: '#16a34a',
  neutral: '#64748b',
  negative: '#dc2626',
  unknown: '#cbd5e1',
};

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** Today in `timeZone`, moved by `plusDays`, as YYYY-MM-DD. */
function dayIn(timeZone: string, plusDays = 0): string {
  const w = wallTimeIn(new Date(), timeZone);
  const d = new Date(Date.UTC(w.year, w.month - 1, w.day + plusDays));
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** The instant `date` (YYYY-MM-DD, moved by `plusDays`) starts in `timeZone`. */
function dayStart(date: string, timeZone: string, plusDays = 0): Date | undefined {
  const m = DATE.exec(date);
  if (!m) return undefined;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plusDays));
  if (Number.isNaN(d.getTime())) return undefined;
  const ms = zonedTimeToInstant(
    {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: 0,
      minute: 0,
      second: 0,
    },
    timeZone,
  );
  return new Date(ms);
}

function dayLabel(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  return Number.isNaN(d.getTime())
    ? day
    : d.toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
}

/** Axis ticks of a count: whole numbers as such, halves with one decimal. */
function count(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString() : v.toFixed(1);
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${Math.round((100 * part) / whole)}%` : '—';
}

function Stat({ label, value, hint }: { label: string; value: string; hint?: string }) {
  return (
    <div className="stat">
      <div className="label">{label}</div>
      <div className="value">{value}</div>
      {hint && <div className="hint muted">{hint}</div>}
    </div>
  );
}

export function AnalyticsPage() {
  const { tenant } = useSession();
  const timeZone = tenant.timeZone || 'UTC';
  const [params, setParams] = useSearchParams();
  const from = params.get('from') ?? dayIn(timeZone, -29);
  const to = params.get('to') ?? dayIn(timeZone);
  const agentId = params.get('agentId') ?? '';
  const campaignId = params.get('campaignId') ?? '';
  const names = useNames();

  const setFilter = useCallback(
    (key: string, value: string) =>
      setParams((prev) => {
        const next = new URLSearchParams(prev);
        if (value) next.set(key, value);
        else next.delete(key);
        return next;
      }),
    [setParams],
  );

  const start = dayStart(from, timeZone);
  const end = dayStart(to, timeZone, 1);
  let fromError: string | undefined;
  let toError: string | undefined;
  if (!start) fromError = 'Pick a start date.';
  if (!end) toError = 'Pick an end date.';
  if (start && end && start >= end) fromError = '“From” must be on or before “To”.';
  else if (start && end && end.getTime() - start.getTime() > MAX_DAYS * DAY_MS) {
    fromError = `At most ${MAX_DAYS} days at a time.`;
  }
  const query =
    start && end && !fromError && !toError
      ? {
          from: start.toISOString(),
          to: end.toISOString(),
          timeZone,
          agentId: agentId || undefined,
          campaignId: campaignId || undefined,
        }
      : undefined;
  const loaded = useApi<Analytics>(query ? '/v1/analytics' : null, query);
  const data = loaded.data;

  const callsLink = (extra: Record<string, string>) => {
    const q = new URLSearchParams({ from, to, ...extra });
    return `/calls?${q.toString()}`;
  };

  const labels = data?.days.map((d) => dayLabel(d.day)) ?? [];
  const totals = data?.totals;

  return (
    <section className="analytics">
      <PageHeader
        title="Analytics"
        subtitle={
          <>
            Calls, outcomes, handle time and latency. Days are counted in the workspace&apos;s time zone (
            {data?.timeZone ?? timeZone}).
          </>
        }
        actions={
          <Link to={callsLink({ ...(agentId ? { agentId } : {}), ...(campaignId ? { campaignId } : {}) })}>
            View these calls
          </Link>
        }
      />
      <form
        className="filters"
        role="search"
        aria-label="Analytics filters"
        onSubmit={(e) => e.preventDefault()}
      >
        <Field label="From" error={fromError}>
          <input
            aria-label="From"
            type="date"
            value={from}
            max={to}
            onChange={(e) => setFilter('from', e.target.value)}
          />
        </Field>
        <Field label="To" error={toError}>
          <input
            aria-label="To"
            type="date"
            value={to}
            min={from}
            onChange={(e) => setFilter('to', e.target.value)}
          />
        </Field>
        <Field label="Agent">
          <select aria-label="Agent" value={agentId} onChange={(e) => setFilter('agentId', e.target.value)}>
            <option value="">All agents</option>
            {names.agents.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
            {agentId && !names.agentName.has(agentId) && (
              <option value={agentId}>Agent {shortId(agentId)}</option>
            )}
          </select>
        </Field>
        <Field label="Campaign">
          <select
            aria-label="Campaign"
            value={campaignId}
            onChange={(e) => setFilter('campaignId', e.target.value)}
          >
            <option value="">All campaigns</option>
            {names.campaigns.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
            {campaignId && !names.campaignName.has(campaignId) && (
              <option value={campaignId}>Campaign {shortId(campaignId)}</option>
            )}
          </select>
        </Field>
        <div className="quick-ranges" role="group" aria-label="Quick ranges">
          {[7, 30, 90].map((n) => (
            <button
              key={n}
              type="button"
              className="btn small"
              onClick={() =>
                setParams((prev) => {
                  const next = new URLSearchParams(prev);
                  next.set('from', dayIn(timeZone, -(n - 1)));
                  next.set('to', dayIn(timeZone));
                  return next;
                })
              }
            >
              Last {n} days
            </button>
          ))}
        </div>
      </form>

      <ErrorBanner error={loaded.error} title="Analytics could not be loaded" />
      {loaded.loading && !data && <Loading label="Loading analytics…" />}
      {data && totals && (
        <div aria-busy={loaded.loading}>
          <div className="stats analytics-stats">
            <Stat label="Calls" value={totals.calls.toLocaleString()} />
            <Stat
              label="Completion rate"
              value={percent(totals.completed, totals.calls)}
              hint={`${totals.completed.toLocaleString()} completed`}
            />
            <Stat
              label="Average handle time"
              value={formatDuration(totals.avgHandleSeconds)}
              hint="Connected calls"
            />
            <Stat label="p50 turn latency" value={formatMs(totals.turnLatencyP50Ms)} />
            <Stat label="p95 turn latency" value={formatMs(totals.turnLatencyP95Ms)} />
          </div>

          {totals.calls === 0 ? (
            <Empty>
              <p>
                <strong>
                  No calls in this range{agentId || campaignId ? ' for this agent or campaign' : ''}.
                </strong>
              </p>
              <p>
                Widen the dates or clear the filters. Calls come from your{' '}
                <Link to="/numbers">phone numbers</Link>, an agent&apos;s test panel (
                <Link to="/agents">Agents</Link>) and <Link to="/campaigns">campaigns</Link>.
              </p>
            </Empty>
          ) : (
            <>
              <div className="grid-2 analytics-charts">
                <BarChart
                  title="Calls per day"
                  labels={labels}
                  series={[{ name: 'Calls', values: data.days.map((d) => d.calls) }]}
                  format={count}
                />
                <LineChart
                  title="Average handle time per day"
                  labels={labels}
                  series={[{ name: 'Average handle time', values: data.days.map((d) => d.avgHandleSeconds) }]}
                  format={(v) => formatDuration(v)}
                />
                <LineChart
                  title="Turn latency per day"
                  labels={labels}
                  series={[
                    { name: 'p50', values: data.days.map((d) => d.turnLatencyP50Ms), color: '#2563eb' },
                    { name: 'p95', values: data.days.map((d) => d.turnLatencyP95Ms), color: '#dc2626' },
                  ]}
                  format={(v) => formatMs(v)}
                />
                <div>
                  <FunnelChart
                    title="Outcomes"
                    steps={data.outcomes.map((o) => ({ label: o.disposition, value: o.count }))}
                  />
                  <FunnelChart
                    title="Caller sentiment"
                    steps={data.sentiment.map((s) => ({
                      label: s.sentiment === 'unknown' ? 'not analysed' : s.sentiment,
                      value: s.count,
                      color: SENTIMENT_COLORS[s.sentiment],
                    }))}
                  />
                </div>
              </div>

              <h2>By agent</h2>
              <div className="table-scroll">
                <table>
                  <caption className="sr-only">Calls per agent</caption>
                  <thead>
                    <tr>
                      <th scope="col">Agent</th>
                      <th scope="col" className="num">
                        Calls
                      </th>
                      <th scope="col" className="num">
                        Average handle time
                      </th>
                      <th scope="col" className="num">
                        p95 turn latency
                      </th>
                      <th scope="col">
                        <span className="sr-only">Calls list</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.byAgent.map((a) => (
                      <tr key={a.agentId ?? 'none'}>
                        <th scope="row">
                          {a.agentId ? (
                            <Link to={`/agents/${a.agentId}`}>{a.name ?? `Agent ${shortId(a.agentId)}`}</Link>
                          ) : (
                            <span className="muted">Deleted agent</span>
                          )}
                        </th>
                        <td className="num">{a.calls.toLocaleString()}</td>
                        <td className="num">{formatDuration(a.avgHandleSeconds)}</td>
                        <td className="num">{formatMs(a.turnLatencyP95Ms)}</td>
                        <td>
                          {a.agentId && (
                            <Link
                              to={callsLink({ agentId: a.agentId })}
                              aria-label={`View calls of ${a.name ?? `agent ${shortId(a.agentId)}`}`}
                            >
                              View calls
                            </Link>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>

              <h2>By campaign</h2>
              {data.byCampaign.length === 0 ? (
                <p className="none">
                  No campaign calls in this range. <Link to="/campaigns">Campaigns</Link> dial a list of
                  contacts with an agent.
                </p>
              ) : (
                <div className="table-scroll">
                  <table>
                    <caption className="sr-only">Calls per campaign</caption>
                    <thead>
                      <tr>
                        <th scope="col">Campaign</th>
                        <th scope="col" className="num">
                          Calls
                        </th>
                        <th scope="col" className="num">
                          Completed
                        </th>
                        <th scope="col" className="num">
                          Completion rate
                        </th>
                        <th scope="col" className="num">
                          Average handle time
                        </th>
                        <th scope="col">
                          <span className="sr-only">Calls list</span>
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {data.byCampaign.map((c) => (
                        <tr key={c.campaignId}>
                          <th scope="row">
                            <Link to={`/campaigns/${c.campaignId}`}>
                              {c.name ?? `Campaign ${shortId(c.campaignId)}`}
                            </Link>
                          </th>
                          <td className="num">{c.calls.toLocaleString()}</td>
                          <td className="num">{c.completed.toLocaleString()}</td>
                          <td className="num">{percent(c.completed, c.calls)}</td>
                          <td className="num">{formatDuration(c.avgHandleSeconds)}</td>
                          <td>
                            <Link
                              to={callsLink({ campaignId: c.campaignId })}
                              aria-label={`View calls of ${c.name ?? `campaign ${shortId(c.campaignId)}`}`}
                            >
                              View calls
                            </Link>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </>
          )}
        </div>
      )}
    </section>
  );
}
