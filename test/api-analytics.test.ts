/**
 * GET /v1/analytics: totals, day buckets in the tenant's (or the asked) time zone with no gaps,
 * handle time of connected calls, turn-latency percentiles from agent turns' timings, outcome and
 * sentiment mixes, per agent and per campaign; filters; tenant isolation; and its 400s.
 */
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { ownerClient, signUpTenant, startStack, type SignedUp, type TestStack } from './support/stack';

let stack: TestStack;
let tenant: SignedUp;
let other: SignedUp;
const agentA = randomUUID();
const agentB = randomUUID();
const otherAgent = randomUUID();
const campaignOne = randomUUID();
const campaignTwo = randomUUID();

/** Nov 10 00:00 to Nov 14 00:00 in Tokyo (UTC+9, no daylight saving): four local days. */
const FROM = '2026-11-09T15:00:00Z';
const TO = '2026-11-13T15:00:00Z';

interface SeedCall {
  tenantId: string;
  agentId: string;
  campaignId?: string;
  channel?: 'voice' | 'text';
  createdAt: string;
  status: string;
  disposition?: string;
  durationSeconds?: number;
  answered?: boolean;
  analysis?: Record<string, unknown>;
  /** Agent turns' timings (null: a turn without any); a caller turn is added between them. */
  agentTimings?: (Record<string, number> | null)[];
}

const calls: SeedCall[] = [];

beforeAll(async () => {
  stack = await startStack();
  tenant = await signUpTenant(stack.app, 'Analytics Co');
  other = await signUpTenant(stack.app, 'Other Analytics Co');
  const completed = (sentiment: string) => ({
    status: 'completed',
    summary: 'A call.',
    sentiment,
    success: { achieved: true, reason: 'booked' },
    csat: 4,
    structuredData: null,
  });
  calls.push(
    // Tokyo Nov 10 01:00 (UTC: still Nov 9).
    {
      tenantId: tenant.tenantId,
      agentId: agentA,
      campaignId: campaignOne,
      createdAt: '2026-11-09T16:00:00Z',
      status: 'completed',
      disposition: 'booked',
      durationSeconds: 60,
      answered: true,
      analysis: completed('positive'),
      agentTimings: [
        { endpointedToFirstFrameMs: 100, sttMs: 40 },
        { endpointedToFirstFrameMs: 300, speakMs: 5000 },
      ],
    },
    // Tokyo Nov 10 23:30; endpointedToFirstFrameMs wins over speakMs.
    {
      tenantId: tenant.tenantId,
      agentId: agentA,
      campaignId: campaignOne,
      createdAt: '2026-11-10T14:30:00Z',
      status: 'completed',
      disposition: 'booked',
      durationSeconds: 120,
      answered: true,
      analysis: completed('neutral'),
      agentTimings: [{ endpointedToFirstFrameMs: 200, speakMs: 999 }, { endpointedToFirstFrameMs: 500 }],
    },
    // Tokyo Nov 11 00:30; never answered: its ringing time is no handle time.
    {
      tenantId: tenant.tenantId,
      agentId: agentB,
      campaignId: campaignTwo,
      createdAt: '2026-11-10T15:30:00Z',
      status: 'no-answer',
      durationSeconds: 30,
      analysis: { status: 'skipped', reason: 'nobody was spoken with' },
    },
    // Tokyo Nov 12 12:00; a text conversation: no answered_at, latency from speakMs (scripted) or
    // llmTotalMs (an LLM reply, which records no speakMs).
    {
      tenantId: tenant.tenantId,
      agentId: agentB,
      channel: 'text',
      createdAt: '2026-11-12T03:00:00Z',
      status: 'completed',
      durationSeconds: 90,
      analysis: completed('negative'),
      agentTimings: [{ speakMs: 400 }, { speakStartedToFirstTokenMs: 150, llmTotalMs: 800 }],
    },
    // Tokyo Nov 12 13:00; no analysis (an old call), turns without usable timings.
    {
      tenantId: tenant.tenantId,
      agentId: agentB,
      campaignId: campaignTwo,
      createdAt: '2026-11-12T04:00:00Z',
      status: 'transferred',
      disposition: 'transferred',
      durationSeconds: 50,
      answered: true,
      agentTimings: [null, {}],
    },
    // Just outside the range on either side (`to` is exclusive).
    {
      tenantId: tenant.tenantId,
      agentId: agentA,
      createdAt: '2026-11-09T14:59:59Z',
      status: 'completed',
      durationSeconds: 1000,
      answered: true,
      agentTimings: [{ endpointedToFirstFrameMs: 9000 }],
    },
    {
      tenantId: tenant.tenantId,
      agentId: agentA,
      createdAt: TO,
      status: 'completed',
      durationSeconds: 1000,
      answered: true,
      agentTimings: [{ endpointedToFirstFrameMs: 9000 }],
    },
    // Another tenant's call in the range.
    {
      tenantId: '',
      agentId: otherAgent,
      createdAt: '2026-11-11T00:00:00Z',
      status: 'completed',
      disposition: 'booked',
      durationSeconds: 5000,
      answered: true,
      analysis: completed('positive'),
      agentTimings: [{ endpointedToFirstFrameMs: 7000 }],
    },
  );
  calls[calls.length - 1]!.tenantId = other.tenantId;

  const owner = await ownerClient(stack.config);
  try {
    await owner.query(`update tenants set time_zone = 'Asia/Tokyo' where id = $1`, [tenant.tenantId]);
    for (const [id, tenantId, name] of [
      [agentA, tenant.tenantId, 'Alice agent'],
      [agentB, tenant.tenantId, 'Bob agent'],
      [otherAgent, other.tenantId, 'Other agent'],
    ] as const) {
      await owner.query('insert into agents (id, tenant_id, name) values ($1, $2, $3)', [id, tenantId, name]);
    }
    for (const [id, name, agentId] of [
      [campaignOne, 'Campaign One', agentA],
      [campaignTwo, 'Campaign Two', agentB],
    ] as const) {
      await owner.query('insert into campaigns (id, tenant_id, name, agent_id) values ($1, $2, $3, $4)', [
        id,
        tenant.tenantId,
        name,
        agentId,
      ]);
    }
    for (const c of calls) {
      const id = randomUUID();
      await owner.query(
        `insert into calls (id, tenant_id, agent_id, campaign_id, direction, channel, workflow_id, status,
                            disposition, created_at, started_at, answered_at, duration_seconds, analysis)
         values ($1, $2, $3, $4, 'outbound', $5, $6, $7, $8, $9, $9, $10, $11, $12)`,
        [
          id,
          c.tenantId,
          c.agentId,
          c.campaignId ?? null,
          c.channel ?? 'voice',
          `call:analytics-${id}`,
          c.status,
          c.disposition ?? null,
          c.createdAt,
          c.answered ? c.createdAt : null,
          c.durationSeconds ?? null,
          c.analysis ? JSON.stringify(c.analysis) : null,
        ],
      );
      let seq = 0;
      for (const timings of c.agentTimings ?? []) {
        // The caller's turns carry timings too at times: they never count as agent latency.
        await owner.query(
          `insert into call_turns (tenant_id, call_id, seq, role, text, timings) values ($1, $2, $3, 'caller', 'hi', $4)`,
          [c.tenantId, id, seq++, JSON.stringify({ endpointedToFirstFrameMs: 12345 })],
        );
        await owner.query(
          `insert into call_turns (tenant_id, call_id, seq, role, text, timings) values ($1, $2, $3, 'agent', 'hello', $4)`,
          [c.tenantId, id, seq++, timings === null ? null : JSON.stringify(timings)],
        );
      }
    }
  } finally {
    await owner.end();
  }
});

afterAll(async () => {
  await stack?.close();
});

const analytics = (query: Record<string, string>, who: SignedUp = tenant) =>
  request(stack.app)
    .get('/v1/analytics')
    .query(query)
    .set({ authorization: `Bearer ${who.token}` });

it('sums the range: totals, percentiles, outcomes, sentiment, per agent and per campaign', async () => {
  const res = await analytics({ from: FROM, to: TO });
  expect(res.status).toBe(200);
  expect(res.body.from).toBe('2026-11-09T15:00:00.000Z');
  expect(res.body.to).toBe('2026-11-13T15:00:00.000Z');
  // No timeZone asked: the tenant's.
  expect(res.body.timeZone).toBe('Asia/Tokyo');
  // Latencies 100, 200, 300, 400, 500, 800 (interpolated percentiles); handle 60, 120, 90, 50.
  expect(res.body.totals).toEqual({
    calls: 5,
    completed: 3,
    avgHandleSeconds: 80,
    turnLatencyP50Ms: 350,
    turnLatencyP95Ms: 725,
  });
  expect(res.body.outcomes).toEqual([
    { disposition: 'booked', count: 2 },
    { disposition: 'completed', count: 1 },
    { disposition: 'no-answer', count: 1 },
    { disposition: 'transferred', count: 1 },
  ]);
  expect(res.body.sentiment).toEqual([
    { sentiment: 'positive', count: 1 },
    { sentiment: 'neutral', count: 1 },
    { sentiment: 'negative', count: 1 },
    { sentiment: 'unknown', count: 2 },
  ]);
  expect(res.body.byAgent).toEqual([
    { agentId: agentB, name: 'Bob agent', calls: 3, avgHandleSeconds: 70, turnLatencyP95Ms: 780 },
    { agentId: agentA, name: 'Alice agent', calls: 2, avgHandleSeconds: 90, turnLatencyP95Ms: 470 },
  ]);
  expect(res.body.byCampaign).toEqual([
    { campaignId: campaignOne, name: 'Campaign One', calls: 2, completed: 2, avgHandleSeconds: 90 },
    { campaignId: campaignTwo, name: 'Campaign Two', calls: 2, completed: 0, avgHandleSeconds: 50 },
  ]);
});

it("buckets days in the tenant's zone, or the one asked for, with every day present", async () => {
  const tokyo = await analytics({ from: FROM, to: TO });
  expect(tokyo.body.days).toEqual([
    { day: '2026-11-10', calls: 2, avgHandleSeconds: 90, turnLatencyP50Ms: 250, turnLatencyP95Ms: 470 },
    { day: '2026-11-11', calls: 1, avgHandleSeconds: null, turnLatencyP50Ms: null, turnLatencyP95Ms: null },
    { day: '2026-11-12', calls: 2, avgHandleSeconds: 70, turnLatencyP50Ms: 600, turnLatencyP95Ms: 780 },
    { day: '2026-11-13', calls: 0, avgHandleSeconds: null, turnLatencyP50Ms: null, turnLatencyP95Ms: null },
  ]);

  const utc = await analytics({ from: FROM, to: TO, timeZone: 'UTC' });
  expect(utc.status).toBe(200);
  expect(utc.body.timeZone).toBe('UTC');
  expect(utc.body.days.map((d: { day: string; calls: number }) => [d.day, d.calls])).toEqual([
    ['2026-11-09', 1],
    ['2026-11-10', 2],
    ['2026-11-11', 0],
    ['2026-11-12', 2],
    ['2026-11-13', 0],
  ]);
  expect(utc.body.totals.calls).toBe(5);
  // New York (EST, UTC-5): the Nov 12 Tokyo calls fall on Nov 11 there.
  const ny = await analytics({ from: FROM, to: TO, timeZone: 'America/New_York' });
  expect(ny.body.days.map((d: { day: string; calls: number }) => [d.day, d.calls])).toEqual([
    ['2026-11-09', 1],
    ['2026-11-10', 2],
    ['2026-11-11', 2],
    ['2026-11-12', 0],
    ['2026-11-13', 0],
  ]);
});

it('filters by agent and by campaign', async () => {
  const a = await analytics({ from: FROM, to: TO, agentId: agentA });
  expect(a.status).toBe(200);
  expect(a.body.totals).toEqual({
    calls: 2,
    completed: 2,
    avgHandleSeconds: 90,
    turnLatencyP50Ms: 250,
    turnLatencyP95Ms: 470,
  });
  expect(a.body.outcomes).toEqual([{ disposition: 'booked', count: 2 }]);
  expect(a.body.byAgent.map((r: { agentId: string }) => r.agentId)).toEqual([agentA]);
  expect(a.body.byCampaign.map((r: { campaignId: string }) => r.campaignId)).toEqual([campaignOne]);

  const two = await analytics({ from: FROM, to: TO, campaignId: campaignTwo });
  expect(two.body.totals).toEqual({
    calls: 2,
    completed: 0,
    avgHandleSeconds: 50,
    turnLatencyP50Ms: null,
    turnLatencyP95Ms: null,
  });
  expect(two.body.outcomes).toEqual([
    { disposition: 'no-answer', count: 1 },
    { disposition: 'transferred', count: 1 },
  ]);
  expect(two.body.sentiment).toEqual([
    { sentiment: 'positive', count: 0 },
    { sentiment: 'neutral', count: 0 },
    { sentiment: 'negative', count: 0 },
    { sentiment: 'unknown', count: 2 },
  ]);

  const both = await analytics({ from: FROM, to: TO, agentId: agentA, campaignId: campaignTwo });
  expect(both.body.totals.calls).toBe(0);
  expect(both.body.totals.avgHandleSeconds).toBeNull();
  expect(both.body.days.every((d: { calls: number }) => d.calls === 0)).toBe(true);
});

it("never counts another tenant's calls", async () => {
  const mine = await analytics({ from: FROM, to: TO });
  expect(mine.body.byAgent.map((r: { agentId: string }) => r.agentId)).not.toContain(otherAgent);
  const theirs = await analytics({ from: FROM, to: TO, timeZone: 'UTC' }, other);
  expect(theirs.body.totals).toEqual({
    calls: 1,
    completed: 1,
    avgHandleSeconds: 5000,
    turnLatencyP50Ms: 7000,
    turnLatencyP95Ms: 7000,
  });
  expect(theirs.body.byCampaign).toEqual([]);
  // Naming our agent or campaign shows them nothing of ours.
  const peek = await analytics({ from: FROM, to: TO, agentId: agentA }, other);
  expect(peek.body.totals.calls).toBe(0);
  const peekCampaign = await analytics({ from: FROM, to: TO, campaignId: campaignOne }, other);
  expect(peekCampaign.body.byCampaign).toEqual([]);
});

it('defaults to the last 30 days', async () => {
  const before = Date.now();
  const res = await analytics({});
  expect(res.status).toBe(200);
  const to = Date.parse(res.body.to);
  expect(to).toBeGreaterThanOrEqual(before - 1000);
  expect(to - Date.parse(res.body.from)).toBe(30 * 86_400_000);
  expect([30, 31]).toContain(res.body.days.length);
  const explicit = await analytics({ from: res.body.from, to: res.body.to });
  expect(res.body.totals).toEqual(explicit.body.totals);
  const justFrom = await analytics({ to: TO });
  expect(justFrom.body.from).toBe(new Date(Date.parse(TO) - 30 * 86_400_000).toISOString());
  expect(justFrom.body.totals.calls).toBe(5 + 1);
});

it('takes up to 366 days', async () => {
  const res = await analytics({ from: '2025-11-13T00:00:00Z', to: '2026-11-14T00:00:00Z', timeZone: 'UTC' });
  expect(res.status).toBe(200);
  expect(res.body.days).toHaveLength(366);
  expect(res.body.days[0].day).toBe('2025-11-13');
  expect(res.body.days[365].day).toBe('2026-11-13');
});

it('refuses bad ranges and parameters with 400 VALIDATION_FAILED naming the field', async () => {
  const cases: [Record<string, string>, string][] = [
    [{ from: TO, to: FROM }, 'query.from'],
    [{ from: '2025-11-12T14:59:59Z', to: TO }, 'query.from'],
    [{ from: 'yesterday' }, 'query.from'],
    [{ to: '2026-13-01' }, 'query.to'],
    [{ agentId: 'agent-a' }, 'query.agentId'],
    [{ campaignId: '42' }, 'query.campaignId'],
    [{ timeZone: 'Mars/Olympus_Mons' }, 'query.timeZone'],
  ];
  for (const [query, path] of cases) {
    const res = await analytics(query);
    expect({ query, status: res.status, code: res.body.error?.code }).toEqual({
      query,
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
  }
});

it('needs credentials', async () => {
  const res = await request(stack.app).get('/v1/analytics');
  expect(res.status).toBe(401);
});
