/**
 * Billing: the plan and its limits, the account's billing standing (and what to do about it), this
 * month's usage against the included minutes, usage per day as charts, and the closed periods with
 * their invoices (GET /v1/billing, GET /v1/billing/usage). Owners and admins reach it from the nav.
 */
import { ApiError } from '../api';
import { BarChart } from '../charts';
import { useSession } from '../session';
import {
  Badge,
  Empty,
  ErrorBanner,
  Loading,
  Notice,
  PageHeader,
  formatCents,
  formatDate,
  useApi,
} from '../ui';

/** contracts/plans PlanLimits, as GET /v1/billing returns it. */
interface PlanLimits {
  maxConcurrentCalls: number;
  includedMinutes: number;
  maxActiveCampaigns: number | null;
  overageCentsPerMinute: number | null;
  billingIncrementSeconds: number;
}

interface Period {
  period: string;
  periodStart: string;
  periodEnd: string;
  status: string;
  plan: string;
  billableSeconds: number;
  includedSeconds: number;
  overageSeconds: number;
  overageAmountCents: number;
  llmTokens: number;
  usageRecords: number;
  resentUsageRecords: number;
  stripeMeteredSeconds: number | null;
  meterDiscrepancySeconds: number | null;
  invoiceId: string | null;
  invoiceStatus: string | null;
  paymentFailures: number;
  lastPaymentError: string | null;
  paidAt: string | null;
}

interface BillingOverview {
  plan: string;
  limits?: PlanLimits;
  billingStatus: string;
  outboundSuspendedAt?: string | null;
  stripeCustomerId?: string | null;
  currentPeriod?: {
    since: string | null;
    calls: number;
    billableSeconds: number;
    includedSeconds: number;
    remainingSeconds: number;
    llmTokens: number;
  };
  periods: Period[];
}

interface UsageDay {
  day: string;
  calls: number;
  billableSeconds: number;
  llmTokens: number;
}

const PERIOD_STATUS: Record<string, { tone: string; text: string }> = {
  closing: { tone: 'live', text: 'The month is being closed: usage is being totalled and sent to Stripe.' },
  invoiced: { tone: 'live', text: 'The overage invoice was sent; Stripe is collecting the payment.' },
  paid: { tone: 'good', text: 'Settled: the overage was paid, or there was nothing to charge.' },
  past_due: { tone: 'bad', text: 'The payment failed; Stripe retries it.' },
  suspended: { tone: 'bad', text: 'Unpaid past the grace period: outbound calling is suspended.' },
  void: { tone: 'neutral', text: 'The invoice was voided: nothing is owed for this month.' },
};

const numberFormat = new Intl.NumberFormat();
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

function minutes(seconds: number): string {
  const m = seconds / 60;
  return `${numberFormat.format(Number.isInteger(m) ? m : Math.round(m * 10) / 10)} min`;
}

function capitalize(s: string): string {
  return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}

/** `YYYY-MM-DD` of an instant in a time zone (UTC if the zone is unknown to this browser). */
function dayKey(date: Date, timeZone: string): string {
  const parts = (tz: string) => {
    const out: Record<string, string> = {};
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    for (const p of format.formatToParts(date)) out[p.type] = p.value;
    return `${out.year}-${out.month}-${out.day}`;
  };
  try {
    return parts(timeZone);
  } catch {
    return parts('UTC');
  }
}

/** Every day of this month so far in the tenant's time zone, oldest first. */
function daysOfThisMonth(timeZone: string): string[] {
  const today = dayKey(new Date(), timeZone);
  const [y, m, d] = today.split('-').map(Number) as [number, number, number];
  return Array.from({ length: d }, (_, i) => new Date(Date.UTC(y, m - 1, i + 1)).toISOString().slice(0, 10));
}

function dayLabel(key: string): string {
  return new Date(`${key}T00:00:00Z`).toLocaleDateString(undefined, {
    month: 'short',
    day: 'numeric',
    timeZone: 'UTC',
  });
}

function periodLabel(period: string): string {
  const [y, m] = period.split('-').map(Number) as [number, number];
  if (!y || !m) return period;
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString(undefined, {
    month: 'long',
    year: 'numeric',
    timeZone: 'UTC',
  });
}

function StandingNotice({ status, suspendedAt }: { status: string; suspendedAt: string | null | undefined }) {
  if (status === 'active') return null;
  if (status === 'past_due') {
    return (
      <div className="banner warn" role="status">
        <strong>Payment past due.</strong> An overage invoice could not be charged; Stripe retries the
        payment. If it stays unpaid past the grace period, outbound calling (campaigns) is suspended.{' '}
        <strong>What to do:</strong> make sure the payment method on file can be charged, or pay the open
        invoice listed below.
      </div>
    );
  }
  if (status === 'suspended') {
    return (
      <div className="banner error" role="alert">
        <strong>Outbound calling is suspended</strong>
        {suspendedAt ? ` since ${formatDate(suspendedAt)}` : ''}: an invoice stayed unpaid past the grace
        period, so campaigns cannot launch or dial. Inbound calls are still answered.{' '}
        <strong>What to do:</strong> pay the open invoice listed below; calling resumes automatically as soon
        as Stripe reports it paid.
      </div>
    );
  }
  return (
    <div className="banner warn" role="status">
      Billing status: <strong>{status}</strong>.
    </div>
  );
}

function PlanCard({ data }: { data: BillingOverview }) {
  const limits = data.limits;
  return (
    <section className="panel" aria-labelledby="plan-title">
      <header className="billing-head">
        <h2 id="plan-title">{capitalize(data.plan)} plan</h2>
        <Badge tone={data.billingStatus === 'active' ? 'good' : 'bad'}>{data.billingStatus}</Badge>
      </header>
      <StandingNotice status={data.billingStatus} suspendedAt={data.outboundSuspendedAt} />
      {limits ? (
        <dl className="billing-facts">
          <dt>Included minutes</dt>
          <dd>{numberFormat.format(limits.includedMinutes)} min / month</dd>
          <dt>Concurrent lines</dt>
          <dd>{numberFormat.format(limits.maxConcurrentCalls)} calls at once</dd>
          <dt>Active campaigns</dt>
          <dd>
            {limits.maxActiveCampaigns === null
              ? 'Unlimited'
              : numberFormat.format(limits.maxActiveCampaigns)}
          </dd>
          <dt>Overage</dt>
          <dd>
            {limits.overageCentsPerMinute === null
              ? 'None: calls stop once the included minutes are used, until next month'
              : `${formatCents(limits.overageCentsPerMinute)} per minute over the included ones`}
          </dd>
          <dt>Billing increment</dt>
          <dd>Each call is rounded up to {limits.billingIncrementSeconds} s</dd>
          <dt>Stripe customer</dt>
          <dd>{data.stripeCustomerId ? <code>{data.stripeCustomerId}</code> : 'Not set up yet'}</dd>
        </dl>
      ) : (
        <p className="muted">The plan’s limits are not available.</p>
      )}
    </section>
  );
}

function UsageCard({ data }: { data: BillingOverview }) {
  const usage = data.currentPeriod;
  const limits = data.limits;
  if (!usage) return null;
  const included = usage.includedSeconds;
  const used = usage.billableSeconds;
  const overageSeconds = Math.max(0, used - included);
  const price = limits?.overageCentsPerMinute ?? null;
  const overageCents = price === null ? 0 : Math.ceil(overageSeconds / 60) * price;
  const share = included > 0 ? Math.min(100, Math.round((100 * used) / included)) : 0;
  return (
    <section className="panel" aria-labelledby="usage-title">
      <h2 id="usage-title">This month’s usage</h2>
      <p className="muted">Since {formatDate(usage.since)} (your workspace’s time zone).</p>
      <div className="minutes-used">
        <label htmlFor="billing-minutes-used">Minutes used</label>
        <progress
          id="billing-minutes-used"
          max={Math.max(1, included)}
          value={Math.min(used, Math.max(1, included))}
        >
          {share}%
        </progress>
        <span>
          <strong>{minutes(used)}</strong> of {minutes(included)} included ({share}%)
        </span>
      </div>
      <div className="stats">
        <div className="stat">
          <div className="value">{minutes(usage.remainingSeconds)}</div>
          <div className="label">Included minutes left</div>
        </div>
        <div className="stat">
          <div className="value">{overageSeconds > 0 ? minutes(overageSeconds) : '0 min'}</div>
          <div className="label">Overage so far</div>
        </div>
        <div className="stat">
          <div className="value">{price === null ? '—' : formatCents(overageCents)}</div>
          <div className="label">{price === null ? 'No overage on this plan' : 'Overage cost so far'}</div>
        </div>
        <div className="stat">
          <div className="value">{numberFormat.format(usage.calls)}</div>
          <div className="label">Calls</div>
        </div>
        <div className="stat">
          <div className="value">{compact.format(usage.llmTokens)}</div>
          <div className="label">LLM tokens</div>
        </div>
      </div>
      {price === null && usage.remainingSeconds <= 0 && included > 0 && (
        <div className="banner error" role="alert">
          The included minutes are used up and this plan has no overage: inbound calls are refused and
          campaign dials are held until next month. Upgrade the plan to keep calling.
        </div>
      )}
      {price !== null && overageSeconds > 0 && (
        <Notice tone="warn">
          You are {minutes(overageSeconds)} over the included minutes; the overage is invoiced when the month
          closes.
        </Notice>
      )}
    </section>
  );
}

function UsageCharts({ timeZone }: { timeZone: string }) {
  const days = daysOfThisMonth(timeZone);
  const usage = useApi<{ timeZone: string; data: UsageDay[] }>('/v1/billing/usage', {
    days: days.length + 1,
  });
  const zone = usage.data?.timeZone ?? timeZone;
  const keys = usage.data?.timeZone && usage.data.timeZone !== timeZone ? daysOfThisMonth(zone) : days;
  const byDay = new Map((usage.data?.data ?? []).map((d) => [d.day, d]));
  const labels = keys.map(dayLabel);
  const talk = keys.map((k) => (byDay.get(k)?.billableSeconds ?? 0) / 60);
  const tokens = keys.map((k) => byDay.get(k)?.llmTokens ?? 0);
  const hasTokens = tokens.some((t) => t > 0);
  return (
    <section aria-labelledby="usage-chart-title">
      <h2 id="usage-chart-title" className="sr-only">
        Usage per day
      </h2>
      <ErrorBanner error={usage.error} title="Usage per day could not be loaded" />
      {usage.loading && !usage.data ? (
        <Loading label="Loading usage…" />
      ) : usage.data ? (
        <>
          <BarChart
            title="Usage this period"
            labels={labels}
            series={[{ name: 'Talk minutes', values: talk }]}
            format={(v) => (v > 0 && v < 10 ? v.toFixed(1) : String(Math.round(v)))}
          />
          {talk.every((v) => v === 0) && (
            <p className="muted">
              No billable calls this month yet: talk minutes appear here once calls are made.
            </p>
          )}
          {hasTokens && (
            <BarChart
              title="LLM tokens this period"
              labels={labels}
              series={[{ name: 'LLM tokens', values: tokens, color: '#7c3aed' }]}
              format={(v) => compact.format(v)}
            />
          )}
        </>
      ) : null}
    </section>
  );
}

function discrepancyText(period: Period, diff: number): string {
  const amount = numberFormat.format(Math.abs(diff));
  const stripe =
    period.stripeMeteredSeconds !== null
      ? ` (Stripe: ${numberFormat.format(period.stripeMeteredSeconds)} s)`
      : '';
  const resent =
    period.resentUsageRecords > 0
      ? `; ${period.resentUsageRecords} usage record${period.resentUsageRecords === 1 ? ' was' : 's were'} re-sent to Stripe at close`
      : '';
  return (
    `Parley counted ${amount} s ${diff > 0 ? 'more' : 'less'} than Stripe’s usage meter received${stripe}. ` +
    `The overage is computed from Parley’s own call records${resent}. Contact support if this persists.`
  );
}

function Discrepancy({ period }: { period: Period }) {
  const diff = period.meterDiscrepancySeconds;
  if (diff === null) return <span className="muted">Not compared</span>;
  if (diff === 0) return <span className="muted">None</span>;
  return (
    <div className="discrepancy">
      <Badge tone="warn">
        {diff > 0 ? '+' : '−'}
        {numberFormat.format(Math.abs(diff))} s
      </Badge>
      <p className="muted">{discrepancyText(period, diff)}</p>
    </div>
  );
}

function Invoices({ periods, timeZone }: { periods: Period[]; timeZone: string }) {
  return (
    <section aria-labelledby="invoices-title">
      <h2 id="invoices-title">Invoices</h2>
      {periods.length === 0 ? (
        <Empty>
          No closed months yet. Each month closes on the 1st (time zone {timeZone}); its usage, any overage
          and its invoice then appear here.
        </Empty>
      ) : (
        <table>
          <caption className="sr-only">Closed billing periods, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Period</th>
              <th scope="col">Status</th>
              <th scope="col">Billable minutes</th>
              <th scope="col">Overage</th>
              <th scope="col">Invoice</th>
              <th scope="col">Meter discrepancy</th>
            </tr>
          </thead>
          <tbody>
            {periods.map((p) => {
              const status = PERIOD_STATUS[p.status];
              return (
                <tr key={p.period}>
                  <td>
                    {periodLabel(p.period)}
                    <div className="muted small-print">{capitalize(p.plan)} plan</div>
                  </td>
                  <td>
                    <Badge tone={status?.tone}>{p.status}</Badge>
                    {status && <div className="muted small-print">{status.text}</div>}
                  </td>
                  <td>
                    {minutes(p.billableSeconds)}
                    <div className="muted small-print">of {minutes(p.includedSeconds)} included</div>
                  </td>
                  <td>
                    {p.overageSeconds > 0 ? (
                      <>
                        {minutes(p.overageSeconds)}
                        <div>{formatCents(p.overageAmountCents)}</div>
                      </>
                    ) : (
                      <span className="muted">None</span>
                    )}
                  </td>
                  <td>
                    {p.invoiceId ? (
                      <>
                        <code>{p.invoiceId}</code>
                        {p.invoiceStatus && (
                          <div>
                            <Badge>{p.invoiceStatus}</Badge>
                          </div>
                        )}
                        {p.paidAt && <div className="muted small-print">Paid {formatDate(p.paidAt)}</div>}
                        {p.paymentFailures > 0 && (
                          <div className="field-error">
                            {p.paymentFailures} failed payment{p.paymentFailures === 1 ? '' : 's'}
                            {p.lastPaymentError ? `: ${p.lastPaymentError}` : ''}
                          </div>
                        )}
                      </>
                    ) : (
                      <span className="muted">
                        {p.overageAmountCents > 0 ? 'Pending' : 'No invoice needed'}
                      </span>
                    )}
                  </td>
                  <td>
                    <Discrepancy period={p} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function BillingPage() {
  const session = useSession();
  const billing = useApi<BillingOverview>('/v1/billing');
  const forbidden = billing.error instanceof ApiError && billing.error.status === 403;
  const timeZone = session.tenant.timeZone || 'UTC';

  return (
    <section aria-labelledby="billing-title">
      <PageHeader
        title={<span id="billing-title">Billing</span>}
        subtitle="Your plan, this month’s usage and your invoices."
      />
      {forbidden ? (
        <div className="banner warn" role="alert">
          <strong>Billing is visible to workspace owners and admins only.</strong> Your role (
          {session.role.replace('_', ' ')}) cannot see it; ask an owner or admin of {session.tenant.name} for
          access.
        </div>
      ) : (
        <ErrorBanner error={billing.error} title="Billing could not be loaded" />
      )}
      {billing.loading && !billing.data ? (
        <Loading label="Loading billing…" />
      ) : billing.data ? (
        <>
          <div className="grid-2">
            <PlanCard data={billing.data} />
            <UsageCard data={billing.data} />
          </div>
          <UsageCharts timeZone={timeZone} />
          <Invoices periods={billing.data.periods} timeZone={timeZone} />
        </>
      ) : null}
    </section>
  );
}
