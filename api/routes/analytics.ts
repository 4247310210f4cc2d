/**
 * Analytics for the dashboard: calls per day, handle time, outcomes, sentiment, turn latency, and
 * the same per agent and per campaign. One tenant's calls only (row-level security), over a range of
 * at most 366 days, with days bucketed in an IANA time zone (the tenant's unless the query names one).
 *
 * Definitions (also in the OpenAPI description):
 * - a call belongs to the day (and the range) of its `created_at`, as the calls list filters;
 * - handle time: `duration_seconds` of calls that connected (answered, or completed/transferred);
 * - turn latency: per agent turn, `timings.endpointedToFirstFrameMs` (voice: caller done speaking to
 *   the first audio frame) when present, else `timings.speakMs` (text: the whole scripted reply), else
 *   `timings.llmTotalMs` (text replies from the LLM, whose speak records no speakMs).
 */
import { z } from 'zod';
import { Tenant } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { normalizeTimeZone } from '../../lib/phone-time-zone';
import type { ApiDeps } from '../deps';
import { ValidationError } from '../errors';
import type { ApiRouter } from '../routing';

const DAY_MS = 86_400_000;
const DEFAULT_DAYS = 30;
const MAX_DAYS = 366;
const SENTIMENTS = ['positive', 'neutral', 'negative', 'unknown'] as const;

const timeZoneQuery = z
  .string()
  .max(64)
  .transform((value, ctx) => {
    const zone = normalizeTimeZone(value);
    if (!zone) {
      ctx.addIssue({ code: 'custom', message: `'${value}' is not an IANA time zone (e.g. America/Chicago)` });
      return z.NEVER;
    }
    return zone;
  })
  .optional()
  .meta({ description: "IANA time zone the days are bucketed in; the tenant's when absent" });

const analyticsQuery = z.object({
  from: z.iso
    .datetime({ offset: true })
    .optional()
    .meta({ description: 'Start (inclusive); default: 30 days before `to`' }),
  to: z.iso.datetime({ offset: true }).optional().meta({ description: 'End (exclusive); default: now' }),
  agentId: z.uuid().optional(),
  campaignId: z.uuid().optional(),
  timeZone: timeZoneQuery,
});

const latency = z
  .number()
  .nullable()
  .meta({ description: 'Milliseconds; null when no agent turn has timings' });

const analyticsView = z.object({
  from: z.string(),
  to: z.string(),
  timeZone: z.string(),
  totals: z.object({
    calls: z.number(),
    completed: z.number(),
    avgHandleSeconds: z.number().nullable(),
    turnLatencyP50Ms: latency,
    turnLatencyP95Ms: latency,
  }),
  days: z.array(
    z.object({
      day: z.string().meta({ description: 'YYYY-MM-DD in `timeZone`; every day of the range, calls or not' }),
      calls: z.number(),
      avgHandleSeconds: z.number().nullable(),
      turnLatencyP50Ms: latency,
      turnLatencyP95Ms: latency,
    }),
  ),
  outcomes: z.array(
    z.object({
      disposition: z.string().meta({ description: "The call's disposition, or its status when it has none" }),
      count: z.number(),
    }),
  ),
  sentiment: z.array(z.object({ sentiment: z.enum(SENTIMENTS), count: z.number() })),
  byAgent: z.array(
    z.object({
      agentId: z.string().nullable().meta({ description: 'null: calls whose agent was deleted' }),
      name: z.string().nullable(),
      calls: z.number(),
      avgHandleSeconds: z.number().nullable(),
      turnLatencyP95Ms: latency,
    }),
  ),
  byCampaign: z.array(
    z.object({
      campaignId: z.string(),
      name: z.string().nullable(),
      calls: z.number(),
      completed: z.number(),
      avgHandleSeconds: z.number().nullable(),
    }),
  ),
});

type Numeric = number | string | null | undefined;

/** `em.execute` hands back numeric/bigint as strings: a number, or null for SQL null. */
function num(value: Numeric): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

const seconds = (value: Numeric) => {
  const n = num(value);
  return n === null ? null : Math.round(n * 10) / 10;
};
const ms = (value: Numeric) => {
  const n = num(value);
  return n === null ? null : Math.round(n);
};

/**
 * The calls in range (`scope`) and their agent turns' latencies (`latency`). Parameters, in order:
 * time zone, from, to, agent id, campaign id.
 */
const SCOPE = `
  with p as (
    select ?::text as tz, ?::timestamptz as t_from, ?::timestamptz as t_to, ?::uuid as agent_id, ?::uuid as campaign_id
  ),
  scope as (
    select c.id, c.agent_id, c.campaign_id, c.status, c.disposition, c.analysis,
           (c.created_at at time zone p.tz)::date as day,
           case when c.duration_seconds is not null
                 and (c.answered_at is not null or c.status in ('completed', 'transferred'))
                then c.duration_seconds end as handle_seconds
      from calls c cross join p
     where c.created_at >= p.t_from and c.created_at < p.t_to
       and (p.agent_id is null or c.agent_id = p.agent_id)
       and (p.campaign_id is null or c.campaign_id = p.campaign_id)
  ),
  latency as (
    select s.id as call_id, s.day, s.agent_id,
           case when jsonb_typeof(t.timings -> 'endpointedToFirstFrameMs') = 'number'
                  then (t.timings ->> 'endpointedToFirstFrameMs')::float8
                when jsonb_typeof(t.timings -> 'speakMs') = 'number'
                  then (t.timings ->> 'speakMs')::float8
                when jsonb_typeof(t.timings -> 'llmTotalMs') = 'number'
                  then (t.timings ->> 'llmTotalMs')::float8 end as ms
      from scope s join call_turns t on t.call_id = s.id
     where t.role = 'agent'
  )`;

interface TotalsRow {
  calls: Numeric;
  completed: Numeric;
  avg_handle: Numeric;
  p50: Numeric;
  p95: Numeric;
}
interface DayRow {
  day: string;
  calls: Numeric;
  avg_handle: Numeric;
  p50: Numeric;
  p95: Numeric;
}

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: query.${field}: ${message}`, [
    { path: `query.${field}`, message },
  ]);
}

/** PostgreSQL's own zone list may lack a name Node knows: say so as a 400, not a 500. */
function isUnknownZoneError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  return Boolean(e && e.code === '22023' && /time zone/i.test(e.message ?? ''));
}

export function registerAnalyticsRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/analytics',
    summary:
      'Call analytics over a range (default: the last 30 days): totals, every day (tenant time zone), outcomes, sentiment, per agent and per campaign. Days and range follow calls.created_at; handle time averages the duration of connected calls; turn latency is per agent turn (endpointedToFirstFrameMs, else speakMs, else llmTotalMs)',
    tag: 'analytics',
    access: 'authenticated',
    query: analyticsQuery,
    responses: {
      200: { description: 'Analytics', schema: analyticsView },
      400: {
        description:
          'VALIDATION_FAILED: a malformed parameter, `from` after `to`, a range over 366 days, or an unknown time zone',
      },
    },
    handler: async ({ auth, query }) => {
      const to = query.to ? new Date(query.to) : new Date();
      const from = query.from ? new Date(query.from) : new Date(to.getTime() - DEFAULT_DAYS * DAY_MS);
      if (from.getTime() > to.getTime()) throw invalid('from', 'must not be after to');
      if (to.getTime() - from.getTime() > MAX_DAYS * DAY_MS) {
        throw invalid('from', `the range may span at most ${MAX_DAYS} days`);
      }
      try {
        return await withTenant(deps.orm, auth.tenantId, async (em) => {
          const tenant = await em.findOneOrFail(Tenant, { id: auth.tenantId });
          const timeZone = query.timeZone ?? tenant.timeZone;
          const params = [
            timeZone,
            from.toISOString(),
            to.toISOString(),
            query.agentId ?? null,
            query.campaignId ?? null,
          ];
          const run = <R>(select: string) => em.execute<R[]>(`${SCOPE} ${select}`, params);

          const [totals] = await run<TotalsRow>(`
            select (select count(*) from scope) as calls,
                   (select count(*) from scope where status = 'completed') as completed,
                   (select avg(handle_seconds) from scope) as avg_handle,
                   (select percentile_cont(0.5) within group (order by ms) from latency) as p50,
                   (select percentile_cont(0.95) within group (order by ms) from latency) as p95`);

          const days = await run<DayRow>(`,
            days as (
              select g::date as day
                from p, generate_series((p.t_from at time zone p.tz)::date,
                                        ((p.t_to - interval '1 microsecond') at time zone p.tz)::date,
                                        interval '1 day') g
               where p.t_to > p.t_from
            ),
            per_day as (
              select day, count(*) as calls, avg(handle_seconds) as avg_handle from scope group by day
            ),
            latency_day as (
              select day, percentile_cont(0.5) within group (order by ms) as p50,
                     percentile_cont(0.95) within group (order by ms) as p95
                from latency group by day
            )
            select to_char(d.day, 'YYYY-MM-DD') as day, coalesce(c.calls, 0) as calls, c.avg_handle, l.p50, l.p95
              from days d left join per_day c on c.day = d.day left join latency_day l on l.day = d.day
             order by d.day`);

          const outcomes = await run<{ outcome: string; count: Numeric }>(`
            select coalesce(disposition, status) as outcome, count(*) as count
              from scope group by 1 order by 2 desc, 1`);

          const sentiments = await run<{ sentiment: string; count: Numeric }>(`
            select case when analysis ->> 'sentiment' in ('positive', 'neutral', 'negative')
                        then analysis ->> 'sentiment' else 'unknown' end as sentiment,
                   count(*) as count
              from scope group by 1`);

          const agents = await run<{
            agent_id: string | null;
            name: string | null;
            calls: Numeric;
            avg_handle: Numeric;
            p95: Numeric;
          }>(`,
            latency_agent as (
              select agent_id, percentile_cont(0.95) within group (order by ms) as p95 from latency group by agent_id
            )
            select s.agent_id, a.name, count(*) as calls, avg(s.handle_seconds) as avg_handle, max(la.p95) as p95
              from scope s
              left join agents a on a.id = s.agent_id
              left join latency_agent la on la.agent_id is not distinct from s.agent_id
             group by s.agent_id, a.name
             order by count(*) desc, a.name nulls last, s.agent_id`);

          const campaigns = await run<{
            campaign_id: string;
            name: string | null;
            calls: Numeric;
            completed: Numeric;
            avg_handle: Numeric;
          }>(`
            select s.campaign_id, c.name, count(*) as calls,
                   count(*) filter (where s.status = 'completed') as completed,
                   avg(s.handle_seconds) as avg_handle
              from scope s left join campaigns c on c.id = s.campaign_id
             where s.campaign_id is not null
             group by s.campaign_id, c.name
             order by count(*) desc, c.name, s.campaign_id`);

          const sentimentCounts = new Map(sentiments.map((r) => [r.sentiment, num(r.count) ?? 0]));
          const body: z.infer<typeof analyticsView> = {
            from: from.toISOString(),
            to: to.toISOString(),
            timeZone,
            totals: {
              calls: num(totals?.calls) ?? 0,
              completed: num(totals?.completed) ?? 0,
              avgHandleSeconds: seconds(totals?.avg_handle),
              turnLatencyP50Ms: ms(totals?.p50),
              turnLatencyP95Ms: ms(totals?.p95),
            },
            days: days.map((d) => ({
              day: d.day,
              calls: num(d.calls) ?? 0,
              avgHandleSeconds: seconds(d.avg_handle),
              turnLatencyP50Ms: ms(d.p50),
              turnLatencyP95Ms: ms(d.p95),
            })),
            outcomes: outcomes.map((o) => ({ disposition: o.outcome, count: num(o.count) ?? 0 })),
            sentiment: SENTIMENTS.map((s) => ({ sentiment: s, count: sentimentCounts.get(s) ?? 0 })),
            byAgent: agents.map((a) => ({
              agentId: a.agent_id,
              name: a.name,
              calls: num(a.calls) ?? 0,
              avgHandleSeconds: seconds(a.avg_handle),
              turnLatencyP95Ms: ms(a.p95),
            })),
            byCampaign: campaigns.map((c) => ({
              campaignId: c.campaign_id,
              name: c.name,
              calls: num(c.calls) ?? 0,
              completed: num(c.completed) ?? 0,
              avgHandleSeconds: seconds(c.avg_handle),
            })),
          };
          return { body };
        });
      } catch (err) {
        if (isUnknownZoneError(err)) throw invalid('timeZone', 'is not a time zone the database knows');
        throw err;
      }
    },
  });
}
