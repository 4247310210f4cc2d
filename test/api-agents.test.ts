/**
 * Agents through the real api app (supertest) on real PostgreSQL under RLS: CRUD, validation,
 * roles, tenant isolation, publishing immutable versions, diff, rollback, masked signing secrets,
 * the demo seed and the audit trail.
 */
import request from 'supertest';
import type { AgentDefinitionInput } from '../contracts/agent-definition';
import { diffDefinitions, maskSecret, restoreMaskedSecrets } from '../api/services/agent-versions';
import {
  DEMO_BOOKING_AGENT,
  DEMO_BOOKING_AGENT_NAME,
  LLM_RECEPTIONIST_TEMPLATE_NAME,
  seedDemoAgents,
} from '../db/seed/demo-agents';
import { withTenant } from '../db/tenant-context';
import {
  signUpTenant,
  startStack,
  uniqueEmail,
  type SignedUp,
  type TestStack,
  bearer,
} from './support/stack';

let stack: TestStack;
let owner: SignedUp;

beforeAll(async () => {
  stack = await startStack({ worker: true });
  owner = await signUpTenant(stack.app, 'Agents Co');
});
afterAll(() => stack.close());

const UNKNOWN_ID = '00000000-0000-4000-8000-00000000abcd';
const SECRET = 'whsec_0123456789abcdefWXYZ';

interface FlowNodeJson {
  id: string;
  type: string;
  [key: string]: unknown;
}
interface DefinitionJson {
  greeting: string;
  tools: { name: string; signingSecret: string; [key: string]: unknown }[];
  flow: { startNodeId: string; nodes: FlowNodeJson[]; edges: Record<string, unknown>[] };
  [key: string]: unknown;
}

const booking = (): AgentDefinitionInput => structuredClone(DEMO_BOOKING_AGENT);

function withTool(secret = SECRET): AgentDefinitionInput {
  return {
    greeting: 'Let me look you up.',
    tools: [
      {
        name: 'crm',
        description: 'Finds the caller in the CRM',
        url: 'https://crm.example.test/hook',
        signingSecret: secret,
      },
    ],
    flow: {
      startNodeId: 'look_up',
      nodes: [
        { id: 'look_up', type: 'tool', tool: 'crm', resultSlot: 'customer' },
        { id: 'done', type: 'end', disposition: 'completed' },
      ],
      edges: [{ id: 'look_up_done', source: 'look_up', target: 'done' }],
    },
  };
}

async function addUser(role: string) {
  const email = uniqueEmail(role);
  const password = 'a long enough password';
  const res = await request(stack.app)
    .post('/v1/users')
    .set(bearer(owner.token))
    .send({ email, name: `A ${role}`, role, password });
  expect(res.status).toBe(201);
  const login = await request(stack.app).post('/v1/auth/login').send({ email, password });
  return { id: res.body.id as string, token: login.body.token as string };
}

async function createAgent(
  token: string,
  definition: unknown = booking(),
  name = 'Booking',
): Promise<{ id: string; definition: DefinitionJson }> {
  const res = await request(stack.app)
    .post('/v1/agents')
    .set(bearer(token))
    .send({ name, description: 'Books things', definition });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; definition: DefinitionJson };
}

async function countAgents(tenantId: string): Promise<number> {
  const rows = await withTenant(stack.orm, tenantId, (em) =>
    em.execute<{ n: string }[]>('select count(*) as n from agents'),
  );
  return Number(rows[0]!.n);
}

describe('CRUD', () => {
  it('creates, lists, reads, replaces and archives an agent', async () => {
    const designer = await addUser('designer');
    const created = await request(stack.app)
      .post('/v1/agents')
      .set(bearer(designer.token))
      .send({ name: 'Front desk', description: 'Books visits', definition: booking() });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'Front desk',
      description: 'Books visits',
      publishedVersion: null,
      publishedVersionId: null,
      latestVersion: null,
    });
    // Stored normalised: defaults applied.
    expect(created.body.definition.flow.nodes[0]).toMatchObject({ id: 'ask_name', maxAttempts: 3 });
    expect(created.body.definition.language).toBe('en-US');
    const id: string = created.body.id;

    const list = await request(stack.app).get('/v1/agents').set(bearer(owner.token));
    expect(list.status).toBe(200);
    expect(list.body.data).toContainEqual(
      expect.objectContaining({
        id,
        name: 'Front desk',
        description: 'Books visits',
        publishedVersion: null,
        language: 'en-US',
      }),
    );
    expect(list.body.data.find((a: { id: string }) => a.id === id)).not.toHaveProperty('definition');

    const got = await request(stack.app).get(`/v1/agents/${id}`).set(bearer(owner.token));
    expect(got.status).toBe(200);
    expect(got.body.definition).toEqual(created.body.definition);

    const definition = got.body.definition as DefinitionJson;
    definition.greeting = 'Hello from the front desk.';
    const put = await request(stack.app)
      .put(`/v1/agents/${id}`)
      .set(bearer(designer.token))
      .send({ name: 'Front desk 2', definition });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: 'Front desk 2', description: null });
    expect(put.body.definition.greeting).toBe('Hello from the front desk.');
    expect(new Date(put.body.updatedAt).getTime()).toBeGreaterThanOrEqual(
      new Date(created.body.updatedAt).getTime(),
    );

    const del = await request(stack.app).delete(`/v1/agents/${id}`).set(bearer(designer.token));
    expect(del.status).toBe(204);
    for (const res of [
      await request(stack.app).get(`/v1/agents/${id}`).set(bearer(owner.token)),
      await request(stack.app).delete(`/v1/agents/${id}`).set(bearer(owner.token)),
      await request(stack.app).post(`/v1/agents/${id}/publish`).set(bearer(owner.token)),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('AGENT_NOT_FOUND');
    }
    const after = await request(stack.app).get('/v1/agents').set(bearer(owner.token));
    expect(after.body.data.map((a: { id: string }) => a.id)).not.toContain(id);
    // Archived, not removed: versions and calls that used it keep their agent row.
    const rows = await withTenant(stack.orm, owner.tenantId, (em) =>
      em.execute<{ archived: boolean }[]>(
        'select archived_at is not null as archived from agents where id = ?',
        [id],
      ),
    );
    expect(rows).toEqual([{ archived: true }]);
  });
});

describe('validation', () => {
  it('an invalid definition is a 422 naming the node, and nothing is stored', async () => {
    const before = await countAgents(owner.tenantId);
    const definition = booking();
    const bad = definition.flow.nodes[1] as Record<string, unknown>;
    delete bad.slotType;
    const res = await request(stack.app)
      .post('/v1/agents')
      .set(bearer(owner.token))
      .send({ name: 'Broken', definition });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('AGENT_DEFINITION_INVALID');
    expect(res.body.error.details.issues).toContainEqual(
      expect.objectContaining({ code: 'FIELD_REQUIRED', nodeId: 'ask_when', path: 'flow.nodes[1].slotType' }),
    );
    expect(res.body.error.message).toContain('"ask_when"');
    expect(await countAgents(owner.tenantId)).toBe(before);
  });

  it('graph problems are 422 too, each with its code, node and edge', async () => {
    const definition = booking();
    definition.flow.edges!.push({ id: 'to_nowhere', source: 'try_again', target: 'nowhere' });
    const res = await request(stack.app)
      .post('/v1/agents')
      .set(bearer(owner.token))
      .send({ name: 'Broken graph', definition });
    expect(res.status).toBe(422);
    expect(res.body.error.details.issues).toEqual([
      expect.objectContaining({
        code: 'EDGE_TARGET_UNKNOWN',
        nodeId: 'try_again',
        edgeId: 'to_nowhere',
        path: 'flow.edges[9].target',
      }),
    ]);
  });

  it('an invalid replacement is refused and the stored draft stays as it was', async () => {
    const agent = await createAgent(owner.token);
    const definition = structuredClone(agent.definition);
    definition.flow.startNodeId = 'missing_start';
    const res = await request(stack.app)
      .put(`/v1/agents/${agent.id}`)
      .set(bearer(owner.token))
      .send({ name: 'Renamed', definition });
    expect(res.status).toBe(422);
    expect(res.body.error.details.issues[0]).toMatchObject({ code: 'START_NODE_MISSING' });
    const got = await request(stack.app).get(`/v1/agents/${agent.id}`).set(bearer(owner.token));
    expect(got.body.name).toBe('Booking');
    expect(got.body.definition.flow.startNodeId).toBe('ask_name');
  });

  it('a definition that is not an object, or a missing name, is a 400 from request validation', async () => {
    const res = await request(stack.app)
      .post('/v1/agents')
      .set(bearer(owner.token))
      .send({ definition: 'nope' });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(
      expect.arrayContaining(['body.name', 'body.definition']),
    );
  });
});

describe('not found and tenant isolation', () => {
  it('an unknown id is 404 AGENT_NOT_FOUND on every route', async () => {
    const definition = booking();
    for (const res of [
      await request(stack.app).get(`/v1/agents/${UNKNOWN_ID}`).set(bearer(owner.token)),
      await request(stack.app)
        .put(`/v1/agents/${UNKNOWN_ID}`)
        .set(bearer(owner.token))
        .send({ name: 'X', definition }),
      await request(stack.app).delete(`/v1/agents/${UNKNOWN_ID}`).set(bearer(owner.token)),
      await request(stack.app).post(`/v1/agents/${UNKNOWN_ID}/publish`).set(bearer(owner.token)),
      await request(stack.app).get(`/v1/agents/${UNKNOWN_ID}/versions`).set(bearer(owner.token)),
      await request(stack.app).get(`/v1/agents/${UNKNOWN_ID}/versions/1`).set(bearer(owner.token)),
      await request(stack.app).get(`/v1/agents/${UNKNOWN_ID}/diff?from=1`).set(bearer(owner.token)),
      await request(stack.app)
        .post(`/v1/agents/${UNKNOWN_ID}/rollback`)
        .set(bearer(owner.token))
        .send({ version: 1 }),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('AGENT_NOT_FOUND');
    }
  });

  it("another tenant's agent is not found, not listed and not changed", async () => {
    const other = await signUpTenant(stack.app, 'Other Agents Co');
    const theirs = await createAgent(other.token, booking(), 'Theirs');
    const published = await request(stack.app)
      .post(`/v1/agents/${theirs.id}/publish`)
      .set(bearer(other.token));
    expect(published.status).toBe(201);
    for (const res of [
      await request(stack.app).get(`/v1/agents/${theirs.id}`).set(bearer(owner.token)),
      await request(stack.app)
        .put(`/v1/agents/${theirs.id}`)
        .set(bearer(owner.token))
        .send({ name: 'Hijacked', definition: booking() }),
      await request(stack.app).delete(`/v1/agents/${theirs.id}`).set(bearer(owner.token)),
      await request(stack.app).post(`/v1/agents/${theirs.id}/publish`).set(bearer(owner.token)),
      await request(stack.app).get(`/v1/agents/${theirs.id}/versions/1`).set(bearer(owner.token)),
      await request(stack.app)
        .post(`/v1/agents/${theirs.id}/rollback`)
        .set(bearer(owner.token))
        .send({ version: 1 }),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('AGENT_NOT_FOUND');
    }
    const mine = await request(stack.app).get('/v1/agents').set(bearer(owner.token));
    expect(mine.body.data.map((a: { id: string }) => a.id)).not.toContain(theirs.id);
    const still = await request(stack.app).get(`/v1/agents/${theirs.id}`).set(bearer(other.token));
    expect(still.body).toMatchObject({ name: 'Theirs', publishedVersion: 1 });
  });

  it('an unknown version is 404 AGENT_VERSION_NOT_FOUND', async () => {
    const agent = await createAgent(owner.token);
    const res = await request(stack.app).get(`/v1/agents/${agent.id}/versions/7`).set(bearer(owner.token));
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('AGENT_VERSION_NOT_FOUND');
    const rollback = await request(stack.app)
      .post(`/v1/agents/${agent.id}/rollback`)
      .set(bearer(owner.token))
      .send({ version: 7 });
    expect(rollback.body.error.code).toBe('AGENT_VERSION_NOT_FOUND');
  });
});

describe('roles', () => {
  it('a viewer reads agents but cannot create, edit, publish, roll back or archive them', async () => {
    const viewer = await addUser('viewer');
    const agent = await createAgent(owner.token);
    expect(
      (await request(stack.app).post(`/v1/agents/${agent.id}/publish`).set(bearer(owner.token))).status,
    ).toBe(201);
    const before = await countAgents(owner.tenantId);
    for (const res of [
      await request(stack.app)
        .post('/v1/agents')
        .set(bearer(viewer.token))
        .send({ name: 'Nope', definition: booking() }),
      await request(stack.app).post(`/v1/agents/${agent.id}/publish`).set(bearer(viewer.token)),
      await request(stack.app)
        .put(`/v1/agents/${agent.id}`)
        .set(bearer(viewer.token))
        .send({ name: 'Nope', definition: booking() }),
      await request(stack.app)
        .post(`/v1/agents/${agent.id}/rollback`)
        .set(bearer(viewer.token))
        .send({ version: 1 }),
      await request(stack.app).delete(`/v1/agents/${agent.id}`).set(bearer(viewer.token)),
    ]) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('INSUFFICIENT_ROLE');
    }
    expect(await countAgents(owner.tenantId)).toBe(before);
    for (const path of [
      '/v1/agents',
      `/v1/agents/${agent.id}`,
      `/v1/agents/${agent.id}/versions`,
      `/v1/agents/${agent.id}/versions/1`,
      `/v1/agents/${agent.id}/diff?from=1&to=draft`,
    ]) {
      expect((await request(stack.app).get(path).set(bearer(viewer.token))).status).toBe(200);
    }
  });
});

describe('versions', () => {
  it('publish, edit, publish again; old versions stay frozen; diff by node id; rollback', async () => {
    const agent = await createAgent(owner.token, booking(), 'Versioned');
    const id = agent.id;
    const url = (p = '') => `/v1/agents/${id}${p}`;

    const v1 = await request(stack.app)
      .post(url('/publish'))
      .set(bearer(owner.token))
      .send({ note: 'first' });
    expect(v1.status).toBe(201);
    expect(v1.body).toMatchObject({ version: 1, id: expect.any(String), createdAt: expect.any(String) });

    const again = await request(stack.app).post(url('/publish')).set(bearer(owner.token));
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'NO_CHANGES', details: { version: 1 } });

    // Edit the draft: a new prompt for ask_when, and the nodes listed in another order.
    const draft = (await request(stack.app).get(url()).set(bearer(owner.token))).body
      .definition as DefinitionJson;
    draft.flow.nodes.find((n) => n.id === 'ask_when')!.prompt = 'When suits you?';
    draft.flow.nodes.reverse();
    expect(
      (
        await request(stack.app)
          .put(url())
          .set(bearer(owner.token))
          .send({ name: 'Versioned', definition: draft })
      ).status,
    ).toBe(200);

    const v2 = await request(stack.app).post(url('/publish')).set(bearer(owner.token));
    expect(v2.status).toBe(201);
    expect(v2.body.version).toBe(2);

    const got = await request(stack.app).get(url()).set(bearer(owner.token));
    expect(got.body).toMatchObject({ publishedVersion: 2, publishedVersionId: v2.body.id, latestVersion: 2 });
    const listed = await request(stack.app).get('/v1/agents').set(bearer(owner.token));
    expect(listed.body.data.find((a: { id: string }) => a.id === id).publishedVersion).toBe(2);

    const versions = await request(stack.app).get(url('/versions')).set(bearer(owner.token));
    expect(versions.status).toBe(200);
    expect(versions.body.data).toEqual([
      expect.objectContaining({ version: 2, id: v2.body.id, current: true, publishedBy: owner.userId }),
      expect.objectContaining({ version: 1, id: v1.body.id, current: false, publishedBy: owner.userId }),
    ]);

    // Version 1 is frozen: the edit did not reach it.
    const one = await request(stack.app).get(url('/versions/1')).set(bearer(owner.token));
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ version: 1, id: v1.body.id, current: false });
    expect(one.body.definition).toEqual(agent.definition);
    const two = await request(stack.app).get(url('/versions/2')).set(bearer(owner.token));
    expect(two.body.definition.flow.nodes.find((n: FlowNodeJson) => n.id === 'ask_when').prompt).toBe(
      'When suits you?',
    );

    // Nodes are matched by id: the prompt change is one change; the reordering is reported once.
    const diff = await request(stack.app)
      .get(url('/diff'))
      .query({ from: 1, to: 2 })
      .set(bearer(owner.token));
    expect(diff.status).toBe(200);
    expect(diff.body).toMatchObject({ from: 1, to: 2 });
    expect(diff.body.changes).toEqual([
      {
        path: 'flow.nodes[ask_when].prompt',
        kind: 'changed',
        before: 'What day and time would you like to come in?',
        after: 'When suits you?',
      },
      expect.objectContaining({ path: 'flow.nodes', kind: 'changed' }),
    ]);

    // Against the draft: nothing yet, then an added node and edge.
    const same = await request(stack.app)
      .get(url('/diff'))
      .query({ from: 2, to: 'draft' })
      .set(bearer(owner.token));
    expect(same.body).toEqual({ from: 2, to: 'draft', changes: [] });
    draft.flow.nodes.push({ id: 'goodbye', type: 'say', text: 'Bye for now.' });
    draft.flow.edges.push({ id: 'goodbye_edge', source: 'goodbye', target: 'booked' });
    draft.globalIntents = [
      ...(draft.globalIntents as Record<string, unknown>[]),
      { id: 'bye', phrases: ['goodbye'], target: 'goodbye' },
    ];
    expect(
      (
        await request(stack.app)
          .put(url())
          .set(bearer(owner.token))
          .send({ name: 'Versioned', definition: draft })
      ).status,
    ).toBe(200);
    const toDraft = await request(stack.app).get(url('/diff')).query({ from: 2 }).set(bearer(owner.token));
    expect(toDraft.body.to).toBe('draft');
    expect(toDraft.body.changes).toEqual(
      expect.arrayContaining([
        {
          path: 'flow.nodes[goodbye]',
          kind: 'added',
          after: { id: 'goodbye', type: 'say', text: 'Bye for now.' },
        },
        expect.objectContaining({ path: 'flow.edges[goodbye_edge]', kind: 'added' }),
        expect.objectContaining({ path: 'globalIntents[bye]', kind: 'added' }),
      ]),
    );
    const reverse = await request(stack.app)
      .get(url('/diff'))
      .query({ from: 'draft', to: 2 })
      .set(bearer(owner.token));
    expect(reverse.body.changes).toContainEqual(
      expect.objectContaining({ path: 'flow.nodes[goodbye]', kind: 'removed' }),
    );

    const badQuery = await request(stack.app)
      .get(url('/diff'))
      .query({ from: 'latest' })
      .set(bearer(owner.token));
    expect(badQuery.status).toBe(400);
    const missing = await request(stack.app)
      .get(url('/diff'))
      .query({ from: 1, to: 9 })
      .set(bearer(owner.token));
    expect(missing.body.error.code).toBe('AGENT_VERSION_NOT_FOUND');

    // Roll back: the draft becomes version 1 again; nothing is published until asked.
    const rollback = await request(stack.app)
      .post(url('/rollback'))
      .set(bearer(owner.token))
      .send({ version: 1 });
    expect(rollback.status).toBe(200);
    expect(rollback.body.definition).toEqual(one.body.definition);
    expect(rollback.body.publishedVersion).toBe(2);
    const afterRollback = await request(stack.app)
      .get(url('/diff'))
      .query({ from: 1 })
      .set(bearer(owner.token));
    expect(afterRollback.body.changes).toEqual([]);

    const v3 = await request(stack.app).post(url('/publish')).set(bearer(owner.token));
    expect(v3.body.version).toBe(3);
    const v3Diff = await request(stack.app)
      .get(url('/diff'))
      .query({ from: 1, to: 3 })
      .set(bearer(owner.token));
    expect(v3Diff.body.changes).toEqual([]);
  });

  it('concurrent publishes of one agent get distinct numbers', async () => {
    const agent = await createAgent(owner.token, booking(), 'Race');
    const results = await Promise.all(
      [0, 1, 2].map(() => request(stack.app).post(`/v1/agents/${agent.id}/publish`).set(bearer(owner.token))),
    );
    // The first publishes version 1; the others find nothing new.
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    const draft = agent.definition;
    const edits = await Promise.all(
      ['A', 'B'].map(async (suffix) => {
        const definition = { ...draft, greeting: `Hello ${suffix}` };
        await request(stack.app)
          .put(`/v1/agents/${agent.id}`)
          .set(bearer(owner.token))
          .send({ name: 'Race', definition });
        return request(stack.app).post(`/v1/agents/${agent.id}/publish`).set(bearer(owner.token));
      }),
    );
    const numbers = edits.filter((r) => r.status === 201).map((r) => r.body.version as number);
    expect(new Set(numbers).size).toBe(numbers.length);
    const versions = await request(stack.app).get(`/v1/agents/${agent.id}/versions`).set(bearer(owner.token));
    const all = versions.body.data.map((v: { version: number }) => v.version);
    expect(all).toEqual([...Array(all.length).keys()].map((i) => all.length - i));
  });

  it('publishing a draft that no longer validates is a 422 and creates no version', async () => {
    const agent = await createAgent(owner.token, booking(), 'Stale draft');
    await withTenant(stack.orm, owner.tenantId, (em) =>
      em.execute(`update agents set draft = jsonb_set(draft, '{flow,startNodeId}', '"gone"') where id = ?`, [
        agent.id,
      ]),
    );
    const res = await request(stack.app).post(`/v1/agents/${agent.id}/publish`).set(bearer(owner.token));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('AGENT_DEFINITION_INVALID');
    expect(res.body.error.details.issues[0]).toMatchObject({ code: 'START_NODE_MISSING' });
    const versions = await request(stack.app).get(`/v1/agents/${agent.id}/versions`).set(bearer(owner.token));
    expect(versions.body.data).toEqual([]);
  });
});

describe('signing secrets', () => {
  it('are masked in every response, survive a masked round trip, and can be replaced', async () => {
    const agent = await createAgent(owner.token, withTool(), 'With tool');
    expect(agent.definition.tools[0]!.signingSecret).toBe('••••WXYZ');
    expect(JSON.stringify(agent)).not.toContain(SECRET);

    // The dashboard sends back what it got, with an edit.
    const definition = structuredClone(agent.definition);
    definition.greeting = 'One moment.';
    const put = await request(stack.app)
      .put(`/v1/agents/${agent.id}`)
      .set(bearer(owner.token))
      .send({ name: 'With tool', definition });
    expect(put.status).toBe(200);
    expect(put.body.definition.tools[0].signingSecret).toBe('••••WXYZ');
    const stored = async () =>
      (
        await withTenant(stack.orm, owner.tenantId, (em) =>
          em.execute<{ draft: DefinitionJson }[]>('select draft from agents where id = ?', [agent.id]),
        )
      )[0]!.draft.tools[0]!.signingSecret;
    expect(await stored()).toBe(SECRET);

    const published = await request(stack.app)
      .post(`/v1/agents/${agent.id}/publish`)
      .set(bearer(owner.token));
    expect(published.status).toBe(201);
    const version = await request(stack.app)
      .get(`/v1/agents/${agent.id}/versions/1`)
      .set(bearer(owner.token));
    expect(version.body.definition.tools[0].signingSecret).toBe('••••WXYZ');
    expect(JSON.stringify(version.body)).not.toContain(SECRET);

    // A masked secret under another tool name matches nothing stored: it must be entered again.
    const renamed = structuredClone(definition);
    renamed.tools[0]!.name = 'crm_v2';
    renamed.flow.nodes[0]!.tool = 'crm_v2';
    const refused = await request(stack.app)
      .put(`/v1/agents/${agent.id}`)
      .set(bearer(owner.token))
      .send({ name: 'With tool', definition: renamed });
    expect(refused.status).toBe(422);
    expect(refused.body.error.details.issues).toContainEqual(
      expect.objectContaining({ code: 'SIGNING_SECRET_MASKED', path: 'tools[0].signingSecret' }),
    );

    // A new full secret replaces the old one; the diff shows the change, masked.
    const rotated = structuredClone(definition);
    const NEW_SECRET = 'whsec_rotated_secret_value_9876';
    rotated.tools[0]!.signingSecret = NEW_SECRET;
    expect(
      (
        await request(stack.app)
          .put(`/v1/agents/${agent.id}`)
          .set(bearer(owner.token))
          .send({ name: 'With tool', definition: rotated })
      ).status,
    ).toBe(200);
    expect(await stored()).toBe(NEW_SECRET);
    const diff = await request(stack.app)
      .get(`/v1/agents/${agent.id}/diff?from=1&to=draft`)
      .set(bearer(owner.token));
    expect(diff.body.changes).toEqual([
      { path: 'tools[crm].signingSecret', kind: 'changed', before: '••••WXYZ', after: '••••9876' },
    ]);
    expect(JSON.stringify(diff.body)).not.toContain('rotated_secret');

    // A masked secret on create has nothing to keep.
    const create = await request(stack.app)
      .post('/v1/agents')
      .set(bearer(owner.token))
      .send({ name: 'Masked', definition: withTool('••••WXYZ') });
    expect(create.status).toBe(422);
    expect(create.body.error.details.issues[0].code).toBe('SIGNING_SECRET_MASKED');
  });
});

describe('demo seed', () => {
  it('creates the booking agent published as version 1 and the LLM template as a draft, once', async () => {
    const tenant = await signUpTenant(stack.app, 'Seed Co');
    const [first, concurrent] = await Promise.all([
      seedDemoAgents(stack.orm, tenant.tenantId, tenant.userId),
      seedDemoAgents(stack.orm, tenant.tenantId, tenant.userId),
    ]);
    expect(concurrent).toEqual(first);
    const again = await seedDemoAgents(stack.orm, tenant.tenantId);
    expect(again).toEqual(first);

    const list = await request(stack.app).get('/v1/agents').set(bearer(tenant.token));
    const agents = list.body.data as { id: string; name: string; publishedVersion: number | null }[];
    const byName = (name: string) => agents.filter((a) => a.name === name);
    expect(byName(DEMO_BOOKING_AGENT_NAME)).toEqual([
      expect.objectContaining({ id: first.bookingAgentId, publishedVersion: 1 }),
    ]);
    expect(byName(LLM_RECEPTIONIST_TEMPLATE_NAME)).toEqual([
      expect.objectContaining({ id: first.receptionistAgentId, publishedVersion: null }),
    ]);

    const versions = await request(stack.app)
      .get(`/v1/agents/${first.bookingAgentId}/versions`)
      .set(bearer(tenant.token));
    expect(versions.body.data).toEqual([
      expect.objectContaining({ version: 1, current: true, publishedBy: tenant.userId }),
    ]);
    // The draft equals the published version, so publishing again has nothing to do.
    const publish = await request(stack.app)
      .post(`/v1/agents/${first.bookingAgentId}/publish`)
      .set(bearer(tenant.token));
    expect(publish.body.error.code).toBe('NO_CHANGES');
    const template = await request(stack.app)
      .get(`/v1/agents/${first.receptionistAgentId}`)
      .set(bearer(tenant.token));
    expect(template.body.definition.llm).toMatchObject({ model: 'gpt-4o-mini', apiKeyRef: 'default' });
  });
});

describe('audit log', () => {
  it('records create, update, publish, rollback and delete with the actor', async () => {
    const agent = await createAgent(owner.token, booking(), 'Audited');
    const url = `/v1/agents/${agent.id}`;
    await request(stack.app).post(`${url}/publish`).set(bearer(owner.token)).send({ note: 'go live' });
    const definition = { ...agent.definition, greeting: 'Changed.' };
    await request(stack.app).put(url).set(bearer(owner.token)).send({ name: 'Audited 2', definition });
    await request(stack.app).post(`${url}/rollback`).set(bearer(owner.token)).send({ version: 1 });
    await request(stack.app).delete(url).set(bearer(owner.token));

    const rows = await withTenant(stack.orm, owner.tenantId, (em) =>
      em.execute<
        {
          action: string;
          actor_id: string;
          before: Record<string, unknown> | null;
          after: Record<string, unknown> | null;
        }[]
      >('select action, actor_id, before, after from audit_log where target_id = ? order by created_at', [
        agent.id,
      ]),
    );
    expect(rows.map((r) => r.action)).toEqual([
      'agent.created',
      'agent.published',
      'agent.updated',
      'agent.rolled_back',
      'agent.deleted',
    ]);
    expect(rows.every((r) => r.actor_id === owner.userId)).toBe(true);
    expect(rows[1]!.after).toMatchObject({ version: 1, note: 'go live' });
    expect(rows[2]).toMatchObject({
      before: { name: 'Audited' },
      after: { name: 'Audited 2', definitionChanged: true },
    });
    expect(rows[3]!.after).toMatchObject({ draftFromVersion: 1 });
    expect(JSON.stringify(rows)).not.toContain('signingSecret');
  });
});

describe('OpenAPI', () => {
  it('documents every agent route', async () => {
    const doc = await request(stack.app).get('/openapi.json');
    expect(doc.status).toBe(200);
    const paths = doc.body.paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths['/v1/agents']!)).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(paths['/v1/agents/{id}']!)).toEqual(expect.arrayContaining(['get', 'put', 'delete']));
    for (const path of [
      '/v1/agents/{id}/publish',
      '/v1/agents/{id}/versions',
      '/v1/agents/{id}/versions/{version}',
      '/v1/agents/{id}/diff',
      '/v1/agents/{id}/rollback',
    ]) {
      expect(paths[path]).toBeDefined();
    }
  });
});

describe('diff and secret helpers', () => {
  it('matches nodes by id, tools by name, and compares plain lists whole', () => {
    const before = {
      flow: {
        nodes: [
          { id: 'a', type: 'say', text: 'A' },
          { id: 'b', type: 'say', text: 'B' },
        ],
      },
      tools: [{ name: 't', url: 'https://a.test' }],
      globalIntents: [{ id: 'h', phrases: ['help'], target: 'a' }],
    };
    const after = {
      flow: {
        nodes: [
          { id: 'b', type: 'say', text: 'B!' },
          { id: 'c', type: 'say', text: 'C' },
        ],
      },
      tools: [{ name: 't', url: 'https://b.test' }],
      globalIntents: [{ id: 'h', phrases: ['help', 'agent'], target: 'a' }],
    };
    expect(diffDefinitions(before, after)).toEqual([
      { path: 'flow.nodes[a]', kind: 'removed', before: { id: 'a', type: 'say', text: 'A' } },
      { path: 'flow.nodes[b].text', kind: 'changed', before: 'B', after: 'B!' },
      { path: 'flow.nodes[c]', kind: 'added', after: { id: 'c', type: 'say', text: 'C' } },
      { path: 'tools[t].url', kind: 'changed', before: 'https://a.test', after: 'https://b.test' },
      { path: 'globalIntents[h].phrases', kind: 'changed', before: ['help'], after: ['help', 'agent'] },
    ]);
  });

  it('restores a masked secret only for the tool with the same name and matching mask', () => {
    const stored = { tools: [{ name: 'crm', signingSecret: SECRET }] };
    const back = restoreMaskedSecrets(
      { tools: [{ name: 'crm', signingSecret: maskSecret(SECRET) }] },
      stored,
    );
    expect(back).toEqual({ definition: { tools: [{ name: 'crm', signingSecret: SECRET }] }, issues: [] });
    const wrongMask = restoreMaskedSecrets({ tools: [{ name: 'crm', signingSecret: '••••0000' }] }, stored);
    expect(wrongMask.issues).toEqual([expect.objectContaining({ code: 'SIGNING_SECRET_MASKED' })]);
  });
});
