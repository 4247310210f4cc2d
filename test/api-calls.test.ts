/** The calls list: filters, stable cursor pagination, tenant isolation; and the detail's 404. */
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { ownerClient, signUpTenant, startStack, type SignedUp, type TestStack } from './support/stack';

let stack: TestStack;
let tenant: SignedUp;
let other: SignedUp;
const agentA = randomUUID();
const agentB = randomUUID();
const ids: string[] = [];

beforeAll(async () => {
  stack = await startStack({ worker: true });
  tenant = await signUpTenant(stack.app, 'Calls Co');
  other = await signUpTenant(stack.app, 'Other Calls Co');
  const owner = await ownerClient(stack.config);
  try {
    for (const [id, name] of [
      [agentA, 'A'],
      [agentB, 'B'],
    ]) {
      await owner.query('insert into agents (id, tenant_id, name) values ($1, $2, $3)', [
        id,
        tenant.tenantId,
        name,
      ]);
    }
    // Seven calls a minute apart, newest last; two share a timestamp to exercise the id tie-break.
    const base = Date.parse('2026-11-01T10:00:00Z');
    for (let i = 0; i < 7; i++) {
      const id = randomUUID();
      ids.push(id);
      const createdAt = new Date(base + Math.min(i, 5) * 60_000).toISOString();
      await owner.query(
        `insert into calls (id, tenant_id, agent_id, direction, channel, workflow_id, status, disposition, created_at)
         values ($1, $2, $3, $4, 'text', $5, 'completed', $6, $7)`,
        [
          id,
          tenant.tenantId,
          i % 2 ? agentB : agentA,
          i < 4 ? 'inbound' : 'outbound',
          `call:${id}`,
          i % 3 ? 'booked' : 'no_answer',
          createdAt,
        ],
      );
    }
    await owner.query(
      `insert into calls (id, tenant_id, direction, channel, workflow_id, status) values ($1, $2, 'inbound', 'text', $3, 'completed')`,
      [randomUUID(), other.tenantId, `call:other-${randomUUID()}`],
    );
  } finally {
    await owner.end();
  }
});
afterAll(() => stack.close());

const auth = () => ({ authorization: `Bearer ${tenant.token}` });

async function allPages(query: Record<string, string | number>): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 20; page++) {
    const res: request.Response = await request(stack.app)
      .get('/v1/calls')
      .query({ ...query, ...(cursor ? { cursor } : {}) })
      .set(auth());
    expect(res.status).toBe(200);
    seen.push(...res.body.data.map((c: { id: string }) => c.id));
    cursor = res.body.nextCursor;
    if (!cursor) return seen;
  }
  throw new Error('pagination did not end');
}

it('pages through every call newest first, each exactly once, with a stable order on equal timestamps', async () => {
  const seen = await allPages({ limit: 2 });
  expect(seen).toHaveLength(7);
  expect(new Set(seen).size).toBe(7);
  const newestFirst = [...ids].reverse();
  // The two calls created at the same instant come in id order (descending); the rest by time.
  expect(seen.slice(2)).toEqual(newestFirst.slice(2));
  expect(seen.slice(0, 2).sort()).toEqual(newestFirst.slice(0, 2).sort());
});

it('filters by agent, direction, disposition and date range', async () => {
  expect((await allPages({ agentId: agentB })).sort()).toEqual(ids.filter((_, i) => i % 2).sort());
  expect((await allPages({ direction: 'outbound' })).sort()).toEqual(ids.slice(4).sort());
  expect((await allPages({ disposition: 'no_answer' })).sort()).toEqual(
    ids.filter((_, i) => i % 3 === 0).sort(),
  );
  const window = await allPages({ from: '2026-11-01T10:01:00Z', to: '2026-11-01T10:03:00Z' });
  expect(window.sort()).toEqual([ids[1], ids[2]].sort());
});

it('refuses a forged cursor and bad filters with 400 naming the parameter', async () => {
  const bad = await request(stack.app).get('/v1/calls').query({ cursor: 'not-a-cursor' }).set(auth());
  expect(bad.status).toBe(400);
  expect(bad.body.error.details[0].path).toBe('query.cursor');
  const badDate = await request(stack.app).get('/v1/calls').query({ from: 'yesterday' }).set(auth());
  expect(badDate.status).toBe(400);
  expect(badDate.body.error.details[0].path).toBe('query.from');
});

it("never shows another tenant's calls, in the list or by id", async () => {
  const otherList = await request(stack.app)
    .get('/v1/calls')
    .set({ authorization: `Bearer ${other.token}` });
  expect(otherList.body.data).toHaveLength(1);
  const res = await request(stack.app)
    .get(`/v1/calls/${ids[0]}`)
    .set({ authorization: `Bearer ${other.token}` });
  expect(res.status).toBe(404);
  expect(res.body.error.code).toBe('CALL_NOT_FOUND');
});
