/**
 * Plans, quotas and the billing API against the real api, PostgreSQL and a Temporal dev server
 * (a worker on the billing queue only: admitted calls and launched campaigns start workflows that
 * nobody runs, and are terminated at the end).
 *
 * The plan table and its arithmetic (billing increments, overage), the billing period of a month in
 * a tenant's zone (DST, year roll) and the month a scheduled run closes; the free plan's minutes
 * quota as admission sees it (browser test calls refused with 402, inbound phone calls answered
 * with a sentence and recorded as rejected; usage of the month before in the tenant's zone does not
 * count; a plan with overage keeps calling); the active-campaign limit and billing suspension at
 * launch; the billing overview, the per-day usage series and the manual close of a month; Stripe's
 * webhook signature checks.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import request from 'supertest';
import Stripe from 'stripe';
import twilio from 'twilio';
import type { Client as PgClient } from 'pg';
import { periodBounds, previousPeriod } from '../activities/billing';
import { createApp } from '../api/app';
import { callIdForCallSid } from '../api/services/call-starts';
import { billingCycleWorkflowId, type BillingCycleState } from '../contracts/billing';
import { callWorkflowId } from '../contracts/call';
import { campaignWorkflowId } from '../contracts/campaign';
import { billableSeconds, concurrentCallLimit, PLAN_LIMITS, periodCharges } from '../contracts/plans';
import { wallTimeIn } from '../contracts/zoned-time';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { createLogger } from '../lib/logger';
import { toE164 } from '../lib/phone';
import {
  bearer,
  ownerClient,
  signUpTenant,
  startStack,
  testConfig,
  uniqueEmail,
  type SignedUp,
  type TestStack,
} from './support/stack';

const TWILIO_AUTH_TOKEN = randomBytes(16).toString('hex');
const PUBLIC_BASE_URL = 'https://parley.example.com';
const RELAY_PUBLIC_URL = 'wss://relay.parley.example.com';
const STRIPE_WEBHOOK_SECRET = `whsec_${randomBytes(16).toString('hex')}`;
const LA = 'America/Los_Angeles';
const TOKYO = 'Asia/Tokyo';
const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** The line a caller hears when the tenant cannot take calls (api/services/twiml.ts). */
const UNAVAILABLE = 'Sorry, we cannot take your call right now. Please try again later. Goodbye.';

let stack: TestStack;
let owner: PgClient;
const callSids: string[] = [];
const callWorkflowIds: string[] = [];
const launchedCampaigns: string[] = [];
const tenantIds: string[] = [];

// ---- helpers ----------------------------------------------------------------------------------

const iso = (ms: number | Date) => new Date(ms).toISOString();

/** A tenant on `plan` in `timeZone`, with a published booking agent. */
async function tenantOn(
  plan: 'free' | 'pro' | 'enterprise',
  timeZone: string,
  name: string,
): Promise<SignedUp & { agentId: string }> {
  const signed = await signUpTenant(stack.app, name);
  tenantIds.push(signed.tenantId);
  await owner.query(`update tenants set plan = $2, time_zone = $3 where id = $1`, [
    signed.tenantId,
    plan,
    timeZone,
  ]);
  const { bookingAgentId } = await seedDemoAgents(stack.orm, signed.tenantId, signed.userId);
  return { ...signed, agentId: bookingAgentId };
}

/** The month `now` falls in, in the zone, and its bounds. */
function currentPeriod(timeZone: string): { period: string; start: Date; end: Date } {
  const wall = wallTimeIn(new Date(), timeZone);
  const period = `${wall.year}-${String(wall.month).padStart(2, '0')}`;
  return { period, ...periodBounds(period, timeZone) };
}

/** A finished call of the tenant, for usage records to point at. */
async function seedCall(tenantId: string): Promise<string> {
  const id = randomUUID();
  await owner.query(
    `insert into calls (id, tenant_id, direction, channel, workflow_id, status, started_at, ended_at)
     values ($1, $2, 'inbound', 'voice', $3, 'completed', now() - interval '1 hour', now() - interval '59 minutes')`,
    [id, tenantId, `seeded-call:${id}`],
  );
  return id;
}

interface Usage {
  kind?: 'call_seconds' | 'llm_tokens';
  quantity: number;
  billable?: number | null;
  at: Date | number;
  callId?: string | null;
  reported?: boolean;
}

async function seedUsage(tenantId: string, rows: Usage[]): Promise<void> {
  for (const row of rows) {
    await owner.query(
      `insert into usage_records (tenant_id, call_id, kind, quantity, billable_quantity, period_start, created_at, reported_at)
       values ($1, $2, $3, $4, $5, $6, $6, $7)`,
      [
        tenantId,
        row.callId ?? null,
        row.kind ?? 'call_seconds',
        row.quantity,
        row.billable ?? null,
        iso(row.at),
        row.reported ? iso(row.at) : null,
      ],
    );
  }
}

async function callCount(tenantId: string): Promise<number> {
  const { rows } = await owner.query<{ n: number }>(
    `select count(*)::int as n from calls where tenant_id = $1`,
    [tenantId],
  );
  return rows[0]!.n;
}

function freshUsNumber(): string {
  for (;;) {
    const e164 = toE164(`+1415${randomInt(2_000_000, 10_000_000)}`, 'US');
    if (e164) return e164;
  }
}

async function registerNumber(
  token: string,
  agentId: string | null,
): Promise<{ id: string; number: string }> {
  const res = await request(stack.app)
    .post('/v1/phone-numbers')
    .set(bearer(token))
    .send({ number: freshUsNumber(), agentId });
  expect(res.status).toBe(201);
  return { id: res.body.id as string, number: res.body.number as string };
}

const startTestCall = (token: string, agentId: string) =>
  request(stack.app).post(`/v1/agents/${agentId}/test-calls`).set(bearer(token)).send({});

/** Twilio's inbound voice webhook, signed as Twilio signs it (public URL + sorted form). */
function inboundCall(callSid: string, to: string) {
  const form = {
    CallSid: callSid,
    AccountSid: `AC${'0'.repeat(32)}`,
    From: '+14155550100',
    To: to,
    CallStatus: 'ringing',
    ApiVersion: '2010-04-01',
    Direction: 'inbound',
  };
  const signature = twilio.getExpectedTwilioSignature(
    TWILIO_AUTH_TOKEN,
    `${PUBLIC_BASE_URL}/twilio/voice`,
    form,
  );
  return request(stack.app)
    .post('/twilio/voice')
    .type('form')
    .set('x-twilio-signature', signature)
    .send(form);
}

const newCallSid = () => `CA${randomBytes(16).toString('hex')}`;

const unescapeXml = (v: string) =>
  v
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The one sentence of a Say + Hangup answer. */
function spokenOf(twiml: string): string {
  const match = /^<\?xml[^>]*\?><Response><Say>([^<]*)<\/Say><Hangup\/><\/Response>$/.exec(twiml);
  if (!match) throw new Error(`not a Say + Hangup answer: ${twiml}`);
  return unescapeXml(match[1]!);
}

async function addUser(admin: SignedUp, role: string): Promise<string> {
  const email = uniqueEmail(role);
  const password = 'a long enough password';
  const res = await request(stack.app)
    .post('/v1/users')
    .set(bearer(admin.token))
    .send({ email, name: `A ${role}`, role, password });
  expect(res.status).toBe(201);
  const login = await request(stack.app).post('/v1/auth/login').send({ email, password });
  expect(login.status).toBe(200);
  return login.body.token as string;
}

// ---- set-up -----------------------------------------------------------------------------------

beforeAll(async () => {
  stack = await startStack({
    worker: true,
    queues: ['billing'],
    env: {
      TWILIO_AUTH_TOKEN,
      PUBLIC_BASE_URL,
      RELAY_PUBLIC_URL,
      STRIPE_WEBHOOK_SECRET,
    },
  });
  owner = await ownerClient(stack.config);
});

afterAll(async () => {
  for (const id of [
    ...callSids.map((sid) => callWorkflowId(sid)),
    ...callWorkflowIds,
    ...launchedCampaigns.map((id) => campaignWorkflowId(id)),
  ]) {
    await stack.temporal.workflow
      .getHandle(id)
      .terminate('test file finished')
      .catch(() => undefined);
  }
  // Nothing of this file stays live: its calls hold no line, its campaigns leave the dialer's list.
  if (tenantIds.length) {
    await owner.query(
      `update campaigns set status = 'canceled' where tenant_id = any($1::uuid[]) and status in ('running', 'paused')`,
      [tenantIds],
    );
    await owner.query(
      `update calls set status = 'failed', ended_at = now() where tenant_id = any($1::uuid[]) and status in ('ringing', 'in-progress')`,
      [tenantIds],
    );
  }
  await owner?.end();
  await stack?.close();
});

// ---- plans ------------------------------------------------------------------------------------

describe('plan limits and charges', () => {
  it('PLAN_LIMITS holds each plan’s lines, included minutes, campaigns, overage price and increment', () => {
    expect(PLAN_LIMITS).toEqual({
      free: {
        maxConcurrentCalls: 2,
        includedMinutes: 60,
        maxActiveCampaigns: 1,
        overageCentsPerMinute: null,
        billingIncrementSeconds: 60,
      },
      pro: {
        maxConcurrentCalls: 20,
        includedMinutes: 1000,
        maxActiveCampaigns: 25,
        overageCentsPerMinute: 9,
        billingIncrementSeconds: 6,
      },
      enterprise: {
        maxConcurrentCalls: 200,
        includedMinutes: 10000,
        maxActiveCampaigns: null,
        overageCentsPerMinute: 6,
        billingIncrementSeconds: 1,
      },
    });
  });

  it('billableSeconds rounds talk time up to the plan’s increment; no talk bills nothing', () => {
    expect([0, 1, 59, 60, 61, 3599, 3601].map((s) => billableSeconds('free', s))).toEqual([
      0, 60, 60, 60, 120, 3600, 3660,
    ]);
    expect([0, 1, 6, 7, 125, 126, 127].map((s) => billableSeconds('pro', s))).toEqual([
      0, 6, 6, 12, 126, 126, 132,
    ]);
    expect([0, 1, 125, 3601].map((s) => billableSeconds('enterprise', s))).toEqual([0, 1, 125, 3601]);
    expect(billableSeconds('pro', -5)).toBe(0);
    // A plan Parley does not know is billed as the free plan, not for free.
    expect(billableSeconds('platinum', 61)).toBe(120);
  });

  it('periodCharges: included minutes are free, overage minutes are rounded up and priced; free has no overage charge', () => {
    expect(periodCharges('pro', 0)).toEqual({
      includedSeconds: 60_000,
      overageSeconds: 0,
      overageAmountCents: 0,
    });
    expect(periodCharges('pro', 60_000)).toEqual({
      includedSeconds: 60_000,
      overageSeconds: 0,
      overageAmountCents: 0,
    });
    // One second over is a whole minute at 9 ¢; 61 s over are two.
    expect(periodCharges('pro', 60_001)).toEqual({
      includedSeconds: 60_000,
      overageSeconds: 1,
      overageAmountCents: 9,
    });
    expect(periodCharges('pro', 60_060).overageAmountCents).toBe(9);
    expect(periodCharges('pro', 60_061)).toEqual({
      includedSeconds: 60_000,
      overageSeconds: 61,
      overageAmountCents: 18,
    });
    expect(periodCharges('enterprise', 600_090)).toEqual({
      includedSeconds: 600_000,
      overageSeconds: 90,
      overageAmountCents: 12,
    });
    // Free: the seconds over are counted, but nothing is charged for them.
    expect(periodCharges('free', 10_000)).toEqual({
      includedSeconds: 3600,
      overageSeconds: 6400,
      overageAmountCents: 0,
    });
    expect(periodCharges('free', 3600)).toEqual({
      includedSeconds: 3600,
      overageSeconds: 0,
      overageAmountCents: 0,
    });
  });

  it('concurrentCallLimit: the plan’s, unless the tenant has a non-negative integer override', () => {
    expect(concurrentCallLimit('free', null)).toBe(2);
    expect(concurrentCallLimit('enterprise', {})).toBe(200);
    expect(concurrentCallLimit('free', { maxConcurrentCalls: 7 })).toBe(7);
    expect(concurrentCallLimit('pro', { maxConcurrentCalls: 0 })).toBe(0);
    expect(concurrentCallLimit('pro', { maxConcurrentCalls: -1 })).toBe(20);
    expect(concurrentCallLimit('pro', { maxConcurrentCalls: 2.5 })).toBe(20);
    expect(concurrentCallLimit('pro', { maxConcurrentCalls: '5' })).toBe(20);
  });
});

// ---- billing periods in a zone ----------------------------------------------------------------

describe('billing periods in the tenant’s time zone', () => {
  const bounds = (period: string, zone: string) => {
    const { start, end } = periodBounds(period, zone);
    return { start: start.toISOString(), end: end.toISOString() };
  };

  it('periodBounds: midnight of the 1st in the zone to the next 1st, across DST and the year’s end', () => {
    // New York: EST (-5) on March 1st, EDT (-4) on April 1st.
    expect(bounds('2026-03', 'America/New_York')).toEqual({
      start: '2026-03-01T05:00:00.000Z',
      end: '2026-04-01T04:00:00.000Z',
    });
    // November starts on EDT (clocks go back at 2:00 that same day) and ends on EST.
    expect(bounds('2026-11', 'America/New_York')).toEqual({
      start: '2026-11-01T04:00:00.000Z',
      end: '2026-12-01T05:00:00.000Z',
    });
    // December rolls into the next year.
    expect(bounds('2026-12', 'Europe/Paris')).toEqual({
      start: '2026-11-30T23:00:00.000Z',
      end: '2026-12-31T23:00:00.000Z',
    });
    expect(bounds('2026-12', 'UTC')).toEqual({
      start: '2026-12-01T00:00:00.000Z',
      end: '2027-01-01T00:00:00.000Z',
    });
    // Half-hour offset; the year's first month starts in the previous year in UTC.
    expect(bounds('2027-01', 'Asia/Kolkata')).toEqual({
      start: '2026-12-31T18:30:00.000Z',
      end: '2027-01-31T18:30:00.000Z',
    });
    expect(bounds('2027-01', 'Pacific/Kiritimati')).toEqual({
      start: '2026-12-31T10:00:00.000Z',
      end: '2027-01-31T10:00:00.000Z',
    });
    // Southern hemisphere: AEST (+10) on October 1st, AEDT (+11) from October 4th.
    expect(bounds('2026-10', 'Australia/Sydney')).toEqual({
      start: '2026-09-30T14:00:00.000Z',
      end: '2026-10-31T13:00:00.000Z',
    });
  });

  it('consecutive periods meet exactly: each month ends where the next begins', () => {
    for (const zone of ['America/New_York', LA, 'Europe/Paris', 'Australia/Sydney', 'Asia/Kolkata']) {
      for (let month = 1; month <= 12; month++) {
        const period = `2026-${String(month).padStart(2, '0')}`;
        const next = month === 12 ? '2027-01' : `2026-${String(month + 1).padStart(2, '0')}`;
        expect({ zone, period, end: bounds(period, zone).end }).toEqual({
          zone,
          period,
          end: bounds(next, zone).start,
        });
      }
    }
  });

  it('previousPeriod is the month before the instant’s month in the zone, not in UTC', () => {
    // 2026-12-01T02:00Z is still November 30th (21:00) in New York: the month before is October.
    expect(previousPeriod(new Date('2026-12-01T02:00:00Z'), 'America/New_York')).toBe('2026-10');
    expect(previousPeriod(new Date('2026-12-01T02:00:00Z'), 'Europe/Paris')).toBe('2026-11');
    expect(previousPeriod(new Date('2026-12-01T02:00:00Z'), 'UTC')).toBe('2026-11');
    // 2026-01-01T03:00Z is December 31st (19:00) in Los Angeles but New Year's Day in Paris.
    expect(previousPeriod(new Date('2026-01-01T03:00:00Z'), LA)).toBe('2025-11');
    expect(previousPeriod(new Date('2026-01-01T03:00:00Z'), 'Europe/Paris')).toBe('2025-12');
    // The Schedule fires at 00:00 on the 1st in the zone: that run closes the month just ended.
    expect(previousPeriod(new Date('2026-01-01T08:00:00Z'), LA)).toBe('2025-12');
    expect(previousPeriod(new Date('2026-03-01T05:00:00Z'), 'America/New_York')).toBe('2026-02');
    expect(previousPeriod(new Date(Date.parse('2026-03-01T05:00:00Z') - 1), 'America/New_York')).toBe(
      '2026-01',
    );
  });

  /** Where PostgreSQL (the quota and the billing overview) puts the start of `period` in `zone`. */
  async function databaseMonthStart(period: string, zone: string): Promise<string> {
    const { rows } = await owner.query<{ start: Date }>(`select ($1::timestamp at time zone $2) as start`, [
      `${period}-01 00:00:00`,
      zone,
    ]);
    return rows[0]!.start.toISOString();
  }

  it('periodBounds starts a month where the database’s month starts (the quota and the cycle count the same usage)', async () => {
    for (const [period, zone] of [
      ['2026-03', 'America/New_York'],
      ['2026-11', 'America/New_York'],
      ['2026-10', 'Australia/Sydney'],
      ['2027-01', 'Asia/Kolkata'],
      ['2026-04', 'America/Santiago'],
      ['2026-10', LA],
    ] as const) {
      expect({ period, zone, start: bounds(period, zone).start }).toEqual({
        period,
        zone,
        start: await databaseMonthStart(period, zone),
      });
    }
  });

  // Paraguay moved its clocks from 00:00 to 01:00 on October 1st, 2017 and 2023: that day has no
  // midnight. The month starts at 01:00 (-03) = 04:00Z; the hour before is still September 30th.
  it('periodBounds of a month whose 1st has no midnight (DST gap) starts at the first instant of the 1st', async () => {
    const { start } = periodBounds('2023-10', 'America/Asuncion');
    const wall = wallTimeIn(start, 'America/Asuncion');
    expect({
      start: start.toISOString(),
      wallDate: { month: wall.month, day: wall.day },
      database: await databaseMonthStart('2023-10', 'America/Asuncion'),
    }).toEqual({
      start: '2023-10-01T04:00:00.000Z',
      wallDate: { month: 10, day: 1 },
      database: '2023-10-01T04:00:00.000Z',
    });
  });
});

// ---- the minutes quota at admission -----------------------------------------------------------

describe('the free plan’s minutes quota (month in the tenant’s zone)', () => {
  let free: SignedUp & { agentId: string };
  let pro: SignedUp & { agentId: string };
  let freeLine: string;
  let proLine: string;

  /** Usage both tenants get: a huge record in the previous month (in LA), then this month's. */
  async function seedPreviousMonth(tenantId: string): Promise<void> {
    const { start } = currentPeriod(LA);
    // One second before midnight of the 1st in Los Angeles: the month before there, this month in UTC.
    await seedUsage(tenantId, [{ quantity: 100_000, billable: 100_020, at: start.getTime() - 1000 }]);
  }

  beforeAll(async () => {
    free = await tenantOn('free', LA, 'Quota Free Co');
    pro = await tenantOn('pro', LA, 'Quota Pro Co');
    freeLine = (await registerNumber(free.token, free.agentId)).number;
    proLine = (await registerNumber(pro.token, pro.agentId)).number;
    await seedPreviousMonth(free.tenantId);
    await seedPreviousMonth(pro.tenantId);
  });

  it('admits a call while the month’s billable seconds are under 3,600 and refuses it (402) once they reach 3,600', async () => {
    const { start } = currentPeriod(LA);
    // 3,060 billable (3,000 talked) at midnight of the 1st, 480 not yet rounded: 3,540 s.
    await seedUsage(free.tenantId, [
      { quantity: 3000, billable: 3060, at: start },
      { quantity: 480, at: Math.max(start.getTime() + 60_000, Date.now() - HOUR) },
    ]);
    const under = await startTestCall(free.token, free.agentId);
    expect(under.status).toBe(201);
    callWorkflowIds.push(under.body.workflowId as string);

    // One more minute: 3,600 s, the free plan's 60 minutes.
    await seedUsage(free.tenantId, [{ quantity: 60, at: Date.now() - 60_000 }]);
    const before = await callCount(free.tenantId);
    const refused = await startTestCall(free.token, free.agentId);
    expect(refused.status).toBe(402);
    expect(refused.body.error).toMatchObject({ code: 'MINUTES_EXHAUSTED', details: { plan: 'free' } });
    // Nothing left behind: no call row, no workflow.
    expect(await callCount(free.tenantId)).toBe(before);
  });

  it('an inbound phone call to the exhausted tenant hears the unavailable line, hangs up, and is listed as rejected (minutes_exhausted)', async () => {
    const callSid = newCallSid();
    callSids.push(callSid);
    const res = await inboundCall(callSid, freeLine);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/xml/);
    expect(spokenOf(res.text)).toBe(UNAVAILABLE);

    const list = await request(stack.app)
      .get('/v1/calls')
      .query({ status: 'rejected', channel: 'voice' })
      .set(bearer(free.token));
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(1);
    expect(list.body.data[0]).toMatchObject({
      id: callIdForCallSid(callSid),
      direction: 'inbound',
      channel: 'voice',
      from: '+14155550100',
      to: freeLine,
      status: 'rejected',
      disposition: 'rejected',
    });
    const detail = await request(stack.app)
      .get(`/v1/calls/${callIdForCallSid(callSid)}`)
      .set(bearer(free.token));
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ status: 'rejected', endReason: 'minutes_exhausted' });
    expect(detail.body.endedAt).not.toBeNull();
    // No workflow was started for it.
    await expect(stack.temporal.workflow.getHandle(callWorkflowId(callSid)).describe()).rejects.toThrow();
  });

  it('Twilio retrying the webhook of a call refused for minutes gets the same answer again', async () => {
    const callSid = newCallSid();
    callSids.push(callSid);
    const first = await inboundCall(callSid, freeLine);
    expect(spokenOf(first.text)).toBe(UNAVAILABLE);
    const retry = await inboundCall(callSid, freeLine);
    expect(retry.status).toBe(200);
    // The call is not "busy": telling the caller to ring back in a few minutes is wrong when the
    // month's minutes are used up.
    expect(spokenOf(retry.text)).toBe(spokenOf(first.text));
  });

  it('a pro tenant over its included minutes is still admitted: overage is billed, not refused', async () => {
    const { start } = currentPeriod(LA);
    // 61,000 s this month: over the pro plan's 60,000 included.
    await seedUsage(pro.tenantId, [
      { quantity: 3000, billable: 3060, at: start },
      { quantity: 57_940, billable: 57_940, at: Date.now() - HOUR },
    ]);
    const testCall = await startTestCall(pro.token, pro.agentId);
    expect(testCall.status).toBe(201);
    callWorkflowIds.push(testCall.body.workflowId as string);

    const callSid = newCallSid();
    callSids.push(callSid);
    const res = await inboundCall(callSid, proLine);
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/<Connect><Stream url="wss:\/\/relay\.parley\.example\.com\/twilio\/stream"/);
    const { rows } = await owner.query<{ status: string; end_reason: string | null }>(
      `select status, end_reason from calls where provider_call_sid = $1`,
      [callSid],
    );
    expect(rows).toEqual([{ status: 'ringing', end_reason: null }]);
  });

  it('usage of the month before (in the tenant’s zone) does not count, however large', async () => {
    // Only the 100,000 s of last month in Los Angeles; this month empty.
    const fresh = await tenantOn('free', LA, 'Quota Fresh Co');
    await seedPreviousMonth(fresh.tenantId);
    // And one record of the month before in UTC terms too.
    const { start } = currentPeriod(LA);
    await seedUsage(fresh.tenantId, [{ quantity: 9_000, at: start.getTime() - 40 * DAY }]);
    const res = await startTestCall(fresh.token, fresh.agentId);
    expect(res.status).toBe(201);
    callWorkflowIds.push(res.body.workflowId as string);
  });
});

// ---- campaign launch --------------------------------------------------------------------------

describe('campaign launch under the plan', () => {
  interface CampaignTenant {
    tenant: SignedUp & { agentId: string };
    numberId: string;
    listId: string;
  }

  async function campaignTenant(name: string): Promise<CampaignTenant> {
    const tenant = await tenantOn('free', 'UTC', name);
    const { id: numberId } = await registerNumber(tenant.token, null);
    const { rows: lists } = await owner.query<{ id: string }>(
      `insert into contact_lists (tenant_id, name) values ($1, 'Renewals') returning id`,
      [tenant.tenantId],
    );
    const listId = lists[0]!.id;
    for (let i = 0; i < 3; i++) {
      const { rows } = await owner.query<{ id: string }>(
        `insert into contacts (tenant_id, phone_e164, name) values ($1, $2, $3) returning id`,
        [tenant.tenantId, freshUsNumber(), `Pat ${i}`],
      );
      await owner.query(
        `insert into contact_list_members (tenant_id, list_id, contact_id) values ($1, $2, $3)`,
        [tenant.tenantId, listId, rows[0]!.id],
      );
    }
    return { tenant, numberId, listId };
  }

  /** A draft that starts tomorrow: once launched its workflow waits and never dials. */
  async function draft(ct: CampaignTenant): Promise<string> {
    const res = await request(stack.app)
      .post('/v1/campaigns')
      .set(bearer(ct.tenant.token))
      .send({
        name: `Renewals ${randomInt(1e6)}`,
        agentId: ct.tenant.agentId,
        callerNumberId: ct.numberId,
        contactListId: ct.listId,
        startsAt: iso(Date.now() + DAY),
      });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  async function launch(ct: CampaignTenant, id: string) {
    const res = await request(stack.app)
      .post(`/v1/campaigns/${id}/launch`)
      .set(bearer(ct.tenant.token))
      .send({});
    if (res.status === 200) launchedCampaigns.push(id);
    return res;
  }

  async function stateOf(id: string): Promise<{ status: string; contacts: number }> {
    const { rows } = await owner.query<{ status: string; contacts: number }>(
      `select status, (select count(*)::int from campaign_contacts where campaign_id = $1) as contacts
         from campaigns where id = $1`,
      [id],
    );
    return rows[0]!;
  }

  let first: CampaignTenant;

  beforeAll(async () => {
    first = await campaignTenant('Free Campaigns Co');
  });

  it('the free plan runs one campaign: a second launch is 402 CAMPAIGN_LIMIT_REACHED and stays a draft without contacts; paused counts, canceled frees the slot', async () => {
    const a = await draft(first);
    const b = await draft(first);
    expect((await launch(first, a)).status).toBe(200);
    expect(await stateOf(a)).toEqual({ status: 'running', contacts: 3 });

    const refused = await launch(first, b);
    expect(refused.status).toBe(402);
    expect(refused.body.error).toMatchObject({
      code: 'CAMPAIGN_LIMIT_REACHED',
      details: { plan: 'free', allowed: 1, active: 1 },
    });
    expect(await stateOf(b)).toEqual({ status: 'draft', contacts: 0 });

    // Paused still holds the plan's one slot.
    await stack.temporal.workflow.getHandle(campaignWorkflowId(a)).terminate('test: paused by hand');
    await owner.query(`update campaigns set status = 'paused' where id = $1`, [a]);
    const whilePaused = await launch(first, b);
    expect(whilePaused.status).toBe(402);
    expect(whilePaused.body.error.details).toEqual({ plan: 'free', allowed: 1, active: 1 });
    expect(await stateOf(b)).toEqual({ status: 'draft', contacts: 0 });

    // Once it is canceled the slot is free.
    await owner.query(`update campaigns set status = 'canceled' where id = $1`, [a]);
    expect((await launch(first, b)).status).toBe(200);
    expect(await stateOf(b)).toEqual({ status: 'running', contacts: 3 });
  });

  it('a tenant whose outbound calling billing suspended cannot launch (402 OUTBOUND_SUSPENDED); another tenant’s running campaign does not count against it', async () => {
    const suspended = await campaignTenant('Suspended Campaigns Co');
    const id = await draft(suspended);
    await owner.query(`update tenants set billing_status = 'suspended' where id = $1`, [
      suspended.tenant.tenantId,
    ]);
    const refused = await launch(suspended, id);
    expect(refused.status).toBe(402);
    expect(refused.body.error).toMatchObject({
      code: 'OUTBOUND_SUSPENDED',
      details: { billingStatus: 'suspended' },
    });
    expect(await stateOf(id)).toEqual({ status: 'draft', contacts: 0 });

    // Paid again: it launches, though the other free tenant has its one campaign running.
    await owner.query(`update tenants set billing_status = 'active' where id = $1`, [
      suspended.tenant.tenantId,
    ]);
    expect((await launch(suspended, id)).status).toBe(200);
    expect(await stateOf(id)).toEqual({ status: 'running', contacts: 3 });
  });

  it('two launches at once on the free plan: one runs, the other is refused', async () => {
    const racing = await campaignTenant('Racing Campaigns Co');
    const a = await draft(racing);
    const b = await draft(racing);
    const results = await Promise.all([launch(racing, a), launch(racing, b)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 402]);
    const { rows } = await owner.query<{ n: number }>(
      `select count(*)::int as n from campaigns where tenant_id = $1 and status in ('running', 'paused')`,
      [racing.tenant.tenantId],
    );
    expect(rows[0]!.n).toBe(1);
  });
});

// ---- billing API ------------------------------------------------------------------------------

describe('billing API', () => {
  it('GET /v1/billing: plan, limits, standing and this month’s usage in the tenant’s zone', async () => {
    const tokyo = await tenantOn('pro', TOKYO, 'Billing Overview Co');
    const { start } = currentPeriod(TOKYO);
    const c1 = await seedCall(tokyo.tenantId);
    const c2 = await seedCall(tokyo.tenantId);
    const c3 = await seedCall(tokyo.tenantId);
    await seedUsage(tokyo.tenantId, [
      // Midnight of the 1st in Tokyo is 15:00Z the day before: the month's first instant counts…
      { quantity: 125, billable: 126, at: start, callId: c1, reported: true },
      { kind: 'llm_tokens', quantity: 900, billable: 900, at: start, callId: c1 },
      // …one not yet rounded counts as talked…
      { quantity: 40, at: start.getTime() + 30 * 60_000, callId: c2 },
      // …and one second earlier is the month before (though the same UTC day as the first).
      { quantity: 5000, billable: 5004, at: start.getTime() - 1000, callId: c3 },
      { kind: 'llm_tokens', quantity: 7000, at: start.getTime() - 1000, callId: c3 },
    ]);

    const res = await request(stack.app).get('/v1/billing').set(bearer(tokyo.token));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      plan: 'pro',
      limits: PLAN_LIMITS.pro,
      billingStatus: 'active',
      outboundSuspendedAt: null,
      periods: [],
    });
    expect(res.body.currentPeriod).toEqual({
      since: start.toISOString(),
      calls: 2,
      billableSeconds: 166,
      includedSeconds: 60_000,
      remainingSeconds: 59_834,
      llmTokens: 900,
    });

    // A free tenant past its minutes: nothing remains (never negative).
    const free = await tenantOn('free', 'UTC', 'Billing Free Co');
    await seedUsage(free.tenantId, [{ quantity: 4000, billable: 4020, at: Date.now() - HOUR }]);
    const freeView = await request(stack.app).get('/v1/billing').set(bearer(free.token));
    expect(freeView.body).toMatchObject({ plan: 'free', limits: PLAN_LIMITS.free });
    expect(freeView.body.currentPeriod).toMatchObject({
      calls: 0,
      billableSeconds: 4020,
      includedSeconds: 3600,
      remainingSeconds: 0,
      llmTokens: 0,
    });
  });

  it('GET /v1/billing/usage: one entry per day in the tenant’s zone, within the days asked for', async () => {
    const tokyo = await tenantOn('pro', TOKYO, 'Billing Usage Co');
    // Three days ago in Tokyo (UTC+9, no DST): the day D, and its instants.
    const tokyoToday = Date.parse(new Date(Date.now() + 9 * HOUR).toISOString().slice(0, 10));
    const dayD = tokyoToday - 3 * DAY;
    const at = (dayOffset: number, hour: number, minute = 0) =>
      dayD + dayOffset * DAY + hour * HOUR + minute * 60_000 - 9 * HOUR;
    const label = (dayOffset: number) => iso(dayD + dayOffset * DAY).slice(0, 10);
    const [c1, c2, c3, c4] = [
      await seedCall(tokyo.tenantId),
      await seedCall(tokyo.tenantId),
      await seedCall(tokyo.tenantId),
      await seedCall(tokyo.tenantId),
    ];
    await seedUsage(tokyo.tenantId, [
      // 00:30 in Tokyo is the previous day in UTC: it belongs to D.
      { quantity: 55, billable: 60, at: at(0, 0, 30), callId: c1 },
      { quantity: 30, at: at(0, 23, 30), callId: c2 },
      { kind: 'llm_tokens', quantity: 500, billable: 500, at: at(0, 23, 30), callId: c2 },
      { quantity: 118, billable: 120, at: at(1, 8), callId: c3 },
      // Twenty days before: outside a 10-day window, inside a 31-day one.
      { quantity: 999, billable: 1002, at: Date.now() - 20 * DAY, callId: c4 },
    ]);

    const res = await request(stack.app)
      .get('/v1/billing/usage')
      .query({ days: 10 })
      .set(bearer(tokyo.token));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      timeZone: TOKYO,
      data: [
        { day: label(0), calls: 2, billableSeconds: 90, llmTokens: 500 },
        { day: label(1), calls: 1, billableSeconds: 120, llmTokens: 0 },
      ],
    });

    const month = await request(stack.app).get('/v1/billing/usage').set(bearer(tokyo.token));
    expect(month.status).toBe(200);
    expect(month.body.data).toHaveLength(3);
    expect(month.body.data[0]).toEqual({
      day: iso(Date.now() - 20 * DAY + 9 * HOUR).slice(0, 10),
      calls: 1,
      billableSeconds: 1002,
      llmTokens: 0,
    });

    for (const days of [0, 367, 'week']) {
      const bad = await request(stack.app).get('/v1/billing/usage').query({ days }).set(bearer(tokyo.token));
      expect(bad.status).toBe(400);
    }
  });

  describe('POST /v1/billing/cycles', () => {
    let la: SignedUp & { agentId: string };

    beforeAll(async () => {
      la = await tenantOn('pro', LA, 'Billing Cycles Co');
    });

    const closeMonth = (token: string, body: unknown) =>
      request(stack.app)
        .post('/v1/billing/cycles')
        .set(bearer(token))
        .send(body as object);

    it('refuses a month not yet over (422) and a malformed period (400)', async () => {
      const { period, end } = currentPeriod(LA);
      const current = await closeMonth(la.token, { period });
      expect(current.status).toBe(422);
      expect(current.body.error).toMatchObject({ code: 'BILLING_PERIOD_NOT_CLOSED', details: { period } });
      const nextWall = wallTimeIn(new Date(end.getTime() + HOUR), LA);
      const next = `${nextWall.year}-${String(nextWall.month).padStart(2, '0')}`;
      expect((await closeMonth(la.token, { period: next })).status).toBe(422);
      expect((await closeMonth(la.token, { period: '2099-01' })).status).toBe(422);

      for (const body of [
        { period: '2026-13' },
        { period: '2026-1' },
        { period: '26-01' },
        {},
        { period: '2025-01', x: 1 },
      ]) {
        const bad = await closeMonth(la.token, body);
        expect({ body, status: bad.status }).toEqual({ body, status: 400 });
      }
      // None of these started a cycle.
      await expect(
        stack.temporal.workflow.getHandle(billingCycleWorkflowId(la.tenantId, period)).describe(),
      ).rejects.toThrow();
    });

    it('a viewer cannot close a month (403), and nothing starts', async () => {
      const viewerToken = await addUser(la, 'viewer');
      const res = await closeMonth(viewerToken, { period: '2025-02' });
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'INSUFFICIENT_ROLE', details: { actual: 'viewer' } });
      await expect(
        stack.temporal.workflow.getHandle(billingCycleWorkflowId(la.tenantId, '2025-02')).describe(),
      ).rejects.toThrow();
      // The viewer may still read the billing overview.
      expect((await request(stack.app).get('/v1/billing').set(bearer(viewerToken))).status).toBe(200);
    });

    it('closes last month (in the tenant’s zone) once: its usage totalled within the zone’s bounds, the overage priced', async () => {
      const period = previousPeriod(new Date(), LA);
      const { start, end } = periodBounds(period, LA);
      await seedUsage(la.tenantId, [
        // The first instant of the month, already reported with its rounded value.
        { quantity: 59_000, billable: 59_004, at: start, reported: true },
        // The last second: not reported yet, so the cycle rounds it (1,997 → 1,998 on pro).
        { quantity: 1_997, at: end.getTime() - 1000 },
        { kind: 'llm_tokens', quantity: 2_500, billable: 2_500, at: start.getTime() + DAY },
        // Outside the month in Los Angeles, on either side.
        { quantity: 7_000, billable: 7_002, at: start.getTime() - 1000 },
        { quantity: 5_000, billable: 5_004, at: end },
      ]);

      const started = await closeMonth(la.token, { period });
      expect(started.status).toBe(202);
      expect(started.body).toEqual({ workflowId: billingCycleWorkflowId(la.tenantId, period), period });
      const again = await closeMonth(la.token, { period });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('BILLING_CYCLE_EXISTS');

      const state = (await stack.temporal.workflow
        .getHandle(started.body.workflowId as string)
        .result()) as BillingCycleState;
      // 59,004 + 1,998 = 61,002 s; 1,002 s over 60,000 = 17 min × 9 ¢. No Stripe customer: nothing to charge.
      expect(state).toMatchObject({
        period,
        status: 'paid',
        usageRecords: 3,
        // No Stripe here: nothing is sent (and nothing marked sent), but the month is still totalled.
        resentUsageRecords: 0,
        billableSeconds: 61_002,
        overageSeconds: 1_002,
        overageAmountCents: 153,
      });

      const view = await request(stack.app).get('/v1/billing').set(bearer(la.token));
      expect(view.status).toBe(200);
      expect(view.body.periods).toEqual([
        expect.objectContaining({
          period,
          periodStart: start.toISOString(),
          periodEnd: end.toISOString(),
          status: 'paid',
          plan: 'pro',
          billableSeconds: 61_002,
          includedSeconds: 60_000,
          overageSeconds: 1_002,
          overageAmountCents: 153,
          llmTokens: 2_500,
          usageRecords: 3,
          invoiceId: null,
        }),
      ]);
    });

    // A month is over for a tenant once it is over in the tenant's zone. At 12:00Z on January 31st,
    // January has ended in UTC+14 but Los Angeles still has 20 hours of it (it ends 08:00Z Feb 1st):
    // closing it now would total the month without the calls of its last day.
    it('refuses to close a month that has ended in UTC+14 but not yet in the tenant’s zone', async () => {
      const early = await tenantOn('pro', LA, 'Early Close Co');
      jest.useFakeTimers({
        now: new Date('2026-01-31T12:00:00Z'),
        doNotFake: [
          'hrtime',
          'nextTick',
          'performance',
          'queueMicrotask',
          'requestAnimationFrame',
          'cancelAnimationFrame',
          'requestIdleCallback',
          'cancelIdleCallback',
          'setImmediate',
          'clearImmediate',
          'setInterval',
          'clearInterval',
          'setTimeout',
          'clearTimeout',
        ],
      });
      let res: request.Response;
      try {
        res = await closeMonth(early.token, { period: '2026-01' });
      } finally {
        jest.useRealTimers();
      }
      callWorkflowIds.push(billingCycleWorkflowId(early.tenantId, '2026-01'));
      expect({ status: res.status, code: res.body.error?.code }).toEqual({
        status: 422,
        code: 'BILLING_PERIOD_NOT_CLOSED',
      });
    });
  });
});

// ---- Stripe webhook ---------------------------------------------------------------------------

describe('POST /stripe/webhook', () => {
  const stripe = new Stripe('sk_test_x');

  function event(type: string, object: Record<string, unknown>): string {
    return JSON.stringify({
      id: `evt_${randomUUID().replace(/-/g, '')}`,
      object: 'event',
      type,
      api_version: '2025-10-29.clover',
      created: Math.floor(Date.now() / 1000),
      data: { object },
    });
  }

  function post(payload: string, signature: string | null, app = stack.app) {
    const req = request(app).post('/stripe/webhook').set('content-type', 'application/json');
    if (signature !== null) req.set('stripe-signature', signature);
    return req.send(payload);
  }

  const sign = (payload: string, secret = STRIPE_WEBHOOK_SECRET) =>
    stripe.webhooks.generateTestHeaderString({ payload, secret });

  it('refuses a body without a signature (400 STRIPE_SIGNATURE_MISSING) or signed with another secret or tampered (400 STRIPE_SIGNATURE_INVALID)', async () => {
    const payload = event('invoice.paid', { id: 'in_test_1', object: 'invoice', metadata: {} });
    const missing = await post(payload, null);
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('STRIPE_SIGNATURE_MISSING');

    const otherSecret = await post(payload, sign(payload, 'whsec_someone_else'));
    expect(otherSecret.status).toBe(400);
    expect(otherSecret.body.error.code).toBe('STRIPE_SIGNATURE_INVALID');

    const tampered = await post(payload.replace('in_test_1', 'in_test_2'), sign(payload));
    expect(tampered.status).toBe(400);
    expect(tampered.body.error.code).toBe('STRIPE_SIGNATURE_INVALID');
  });

  it('acknowledges a signed event it does not handle (200, handled: false)', async () => {
    const payload = event('customer.created', { id: 'cus_test_1', object: 'customer' });
    const res = await post(payload, sign(payload));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: true, handled: false });
  });

  it('a signed invoice.paid with no billing cycle to signal is acknowledged without being handled', async () => {
    const tenant = await signUpTenant(stack.app, 'Webhook Co');
    tenantIds.push(tenant.tenantId);
    // Parley's metadata, but that period never had a cycle.
    const named = event('invoice.paid', {
      id: 'in_test_no_cycle',
      object: 'invoice',
      status: 'paid',
      metadata: { parley_tenant_id: tenant.tenantId, parley_period: '2024-07' },
    });
    const res = await post(named, sign(named));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ received: true, handled: false });

    // No metadata and an invoice no period knows (e.g. the subscription's own).
    const anonymous = event('invoice.paid', {
      id: `in_${randomBytes(8).toString('hex')}`,
      object: 'invoice',
    });
    const other = await post(anonymous, sign(anonymous));
    expect(other.status).toBe(200);
    expect(other.body).toEqual({ received: true, handled: false });
  });

  it('without STRIPE_WEBHOOK_SECRET the webhook answers 503 STRIPE_WEBHOOK_NOT_CONFIGURED', async () => {
    const config = testConfig({ STRIPE_WEBHOOK_SECRET: '' });
    expect(config.STRIPE_WEBHOOK_SECRET).toBeFalsy();
    const app = createApp({
      config,
      orm: stack.orm,
      temporal: stack.temporal,
      logger: createLogger(config, 'test'),
    });
    const payload = event('invoice.paid', { id: 'in_test_3', object: 'invoice' });
    const res = await post(payload, sign(payload), app);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('STRIPE_WEBHOOK_NOT_CONFIGURED');
  });
});
