/**
 * Campaigns through the public API on the real database and a real Temporal dev server: drafts
 * with their defaults and every refusal (nothing stored), roles and tenant isolation, the launch
 * (contacts queued, workflow started with its input and search attributes, undone when the start
 * fails), pause/resume/edit/cancel through the real campaign workflow, progress and its event stream.
 * Launched campaigns start tomorrow, so their workflows wait and never dial.
 */
import { randomInt, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import request from 'supertest';
import type { Client as PgClient } from 'pg';
import { createApp } from '../api/app';
import { createLogger } from '../lib/logger';
import { waitUntil } from '../lib/net';
import { toE164 } from '../lib/phone';
import {
  CAMPAIGN_QUEUE,
  CAMPAIGN_WORKFLOW,
  campaignWorkflowId,
  type CampaignWorkflowInput,
} from '../contracts/campaign';
import { SEARCH_ATTRIBUTES } from '../contracts';
import { DEMO_BOOKING_AGENT } from '../db/seed/demo-agents';
import { withTenant } from '../db/tenant-context';
import {
  bearer,
  ownerClient,
  signUpTenant,
  startStack,
  type SignedUp,
  type TestStack,
} from './support/stack';

let stack: TestStack;
let owner: PgClient;
let server: http.Server;
let baseUrl: string;
let tenant: SignedUp;
let other: SignedUp;
let viewerKey: string;
let managerKey: string;
let agentId: string;
let agentV1: string;
let agentV2: string;
let draftAgentId: string;
let numberId: string;
let numberE164: string;
let listId: string;
let theirs: { agentId: string; versionId: string; numberId: string; listId: string };
const launched: string[] = [];

const DAY = 86_400_000;
const WEEKDAY_WINDOW = [{ start: '09:00', end: '20:00' }];
const ALL_DAY = [{ start: '00:00', end: '24:00' }];
const everyDay = (window: { start: string; end: string }) =>
  Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [window]]));

function freshUsNumber(): string {
  for (;;) {
    const area = ['415', '628', '650', '212', '646', '312'][randomInt(6)]!;
    const e164 = toE164(
      `+1${area}${randomInt(200, 1000)}${String(randomInt(0, 10_000)).padStart(4, '0')}`,
      'US',
    );
    if (e164) return e164;
  }
}

/** The national format of a US number, as people type it. */
const national = (e164: string) => `(${e164.slice(2, 5)}) ${e164.slice(5, 8)}-${e164.slice(8)}`;

async function createAgent(token: string, name: string, publish: boolean): Promise<string> {
  const created = await request(stack.app)
    .post('/v1/agents')
    .set(bearer(token))
    .send({ name, definition: DEMO_BOOKING_AGENT });
  expect(created.status).toBe(201);
  if (publish) {
    const published = await request(stack.app)
      .post(`/v1/agents/${created.body.id}/publish`)
      .set(bearer(token));
    expect(published.status).toBe(201);
  }
  return created.body.id as string;
}

async function publishedVersions(token: string, id: string): Promise<Map<number, string>> {
  const res = await request(stack.app).get(`/v1/agents/${id}/versions`).set(bearer(token));
  expect(res.status).toBe(200);
  return new Map((res.body.data as { id: string; version: number }[]).map((v) => [v.version, v.id]));
}

async function registerNumber(token: string): Promise<{ id: string; number: string }> {
  const res = await request(stack.app)
    .post('/v1/phone-numbers')
    .set(bearer(token))
    .send({ number: freshUsNumber() });
  expect(res.status).toBe(201);
  return { id: res.body.id, number: res.body.number };
}

interface ListContact {
  phone?: string;
  name?: string;
  timeZone?: string | null;
}

/** A contact list written straight to the tenant's tables (as the contacts API would). */
async function createList(tenantId: string, contacts: ListContact[], name = 'Test list'): Promise<string> {
  return withTenant(stack.orm, tenantId, async (em) => {
    const [list] = await em.execute<{ id: string }[]>(
      `insert into contact_lists (tenant_id, name) values (?, ?) returning id`,
      [tenantId, name],
    );
    for (const contact of contacts) {
      const [row] = await em.execute<{ id: string }[]>(
        `insert into contacts (tenant_id, phone_e164, name, time_zone) values (?, ?, ?, ?) returning id`,
        [tenantId, contact.phone ?? freshUsNumber(), contact.name ?? 'Pat Doe', contact.timeZone ?? null],
      );
      await em.execute(`insert into contact_list_members (tenant_id, list_id, contact_id) values (?, ?, ?)`, [
        tenantId,
        list!.id,
        row!.id,
      ]);
    }
    return list!.id;
  });
}

/** Rows a failed request must not leave behind. */
async function stored(tenantId: string) {
  const { rows } = await owner.query<Record<string, number>>(
    `select (select count(*)::int from campaigns where tenant_id = $1) as campaigns,
            (select count(*)::int from contact_lists where tenant_id = $1) as lists,
            (select count(*)::int from contacts where tenant_id = $1) as contacts,
            (select count(*)::int from campaign_contacts where tenant_id = $1) as campaign_contacts,
            (select count(*)::int from audit_log where tenant_id = $1 and action like 'campaign.%') as audits`,
    [tenantId],
  );
  return rows[0]!;
}

async function auditActions(campaignId: string): Promise<string[]> {
  const { rows } = await owner.query<{ action: string }>(
    `select action from audit_log where target_id = $1 order by created_at, id`,
    [campaignId],
  );
  return rows.map((r) => r.action);
}

async function campaignRow(id: string) {
  const { rows } = await owner.query<{
    status: string;
    launched_at: Date | null;
    agent_version_id: string | null;
    settings: Record<string, unknown>;
    finished_at: Date | null;
    summary: Record<string, unknown> | null;
  }>(
    `select status, launched_at, agent_version_id, settings, finished_at, summary from campaigns where id = $1`,
    [id],
  );
  return rows[0];
}

async function campaignContacts(id: string): Promise<{ contact_id: string; status: string }[]> {
  const { rows } = await owner.query<{ contact_id: string; status: string }>(
    `select contact_id, status from campaign_contacts where campaign_id = $1 order by contact_id`,
    [id],
  );
  return rows;
}

const tomorrow = () => new Date(Date.now() + DAY).toISOString();

/** A valid body for the main tenant; tests override what they check. */
function body(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: `Renewals ${randomInt(1e6)}`,
    agentId,
    callerNumberId: numberId,
    contactListId: listId,
    ...overrides,
  };
}

const create = (token: string, payload: Record<string, unknown>) =>
  request(stack.app).post('/v1/campaigns').set(bearer(token)).send(payload);

async function createDraft(overrides: Record<string, unknown> = {}): Promise<string> {
  const res = await create(tenant.token, body(overrides));
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function launch(id: string, payload: Record<string, unknown> = {}) {
  const res = await request(stack.app)
    .post(`/v1/campaigns/${id}/launch`)
    .set(bearer(tenant.token))
    .send(payload);
  if (res.status === 200) launched.push(id);
  return res;
}

/** A campaign launched to start tomorrow: its workflow runs and waits, and never dials. */
async function launchedCampaign(contacts = 3): Promise<{ id: string; listId: string }> {
  const list = await createList(
    tenant.tenantId,
    Array.from({ length: contacts }, () => ({})),
  );
  const id = await createDraft({ contactListId: list, startsAt: tomorrow() });
  const res = await launch(id);
  expect(res.status).toBe(200);
  return { id, listId: list };
}

// ---- server-sent events ---------------------------------------------------------------------

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

interface SseStream {
  status: number;
  contentType: string;
  events: SseEvent[];
  comments: string[];
  /** The event after the `index`th one (0: the first), waiting for it. */
  event(index: number, timeoutMs?: number): Promise<SseEvent>;
  ended: Promise<void>;
  close(): void;
}

function openEvents(path: string, token: string): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${baseUrl}${path}`, { headers: bearer(token) }, (res) => {
      res.setEncoding('utf8');
      const events: SseEvent[] = [];
      const comments: string[] = [];
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          comments.push(...lines.filter((l) => l.startsWith(':')));
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
          const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
          if (event) events.push({ event, data: data ? (JSON.parse(data) as Record<string, unknown>) : {} });
        }
      });
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      resolve({
        status: res.statusCode ?? 0,
        contentType: String(res.headers['content-type']),
        events,
        comments,
        async event(index, timeoutMs = 15_000) {
          await waitUntil(`event #${index + 1}`, () => Promise.resolve(events.length > index), timeoutMs, 50);
          return events[index]!;
        },
        ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

// ---- set-up ---------------------------------------------------------------------------------

beforeAll(async () => {
  stack = await startStack({ worker: true, queues: ['billing', CAMPAIGN_QUEUE] });
  owner = await ownerClient(stack.config);
  server = await new Promise<http.Server>((resolve) => {
    const s = stack.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  tenant = await signUpTenant(stack.app, 'Campaigns Co');
  other = await signUpTenant(stack.app, 'Other Campaigns Co');
  // The main tenant: a plan with 20 lines, in Chicago.
  await owner.query(`update tenants set plan = 'pro', time_zone = 'America/Chicago' where id = $1`, [
    tenant.tenantId,
  ]);
  for (const role of ['viewer', 'campaign_manager']) {
    const key = await request(stack.app)
      .post('/v1/api-keys')
      .set(bearer(tenant.token))
      .send({ name: role, role });
    expect(key.status).toBe(201);
    if (role === 'viewer') viewerKey = key.body.key;
    else managerKey = key.body.key;
  }

  agentId = await createAgent(tenant.token, 'Renewals agent', true);
  const v2 = await request(stack.app)
    .put(`/v1/agents/${agentId}`)
    .set(bearer(tenant.token))
    .send({ name: 'Renewals agent', definition: { ...DEMO_BOOKING_AGENT, greeting: 'Hello again.' } });
  expect(v2.status).toBe(200);
  expect(
    (await request(stack.app).post(`/v1/agents/${agentId}/publish`).set(bearer(tenant.token))).status,
  ).toBe(201);
  const versions = await publishedVersions(tenant.token, agentId);
  agentV1 = versions.get(1)!;
  agentV2 = versions.get(2)!;
  draftAgentId = await createAgent(tenant.token, 'Unpublished', false);
  ({ id: numberId, number: numberE164 } = await registerNumber(tenant.token));
  listId = await createList(tenant.tenantId, [
    { name: 'Ann Lee' },
    { name: 'Bo Chan', timeZone: 'America/New_York' },
  ]);

  const theirAgent = await createAgent(other.token, 'Their agent', true);
  theirs = {
    agentId: theirAgent,
    versionId: (await publishedVersions(other.token, theirAgent)).get(1)!,
    numberId: (await registerNumber(other.token)).id,
    listId: await createList(other.tenantId, [{}]),
  };
}, 120_000);

afterAll(async () => {
  // Nothing of this file keeps running: its workflows end, its campaigns leave the dialer's list.
  for (const id of launched) {
    await stack.temporal.workflow
      .getHandle(campaignWorkflowId(id))
      .terminate('test file finished')
      .catch(() => undefined);
  }
  await owner.query(
    `update campaigns set status = 'canceled' where tenant_id = any($1::uuid[]) and status in ('running', 'paused')`,
    [[tenant.tenantId, other.tenantId]],
  );
  await owner.end();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await stack.close();
});

// ---- creating drafts ------------------------------------------------------------------------

it('creates a draft with the defaults: weekday windows in the tenant zone, the published version pinned', async () => {
  const before = await stored(tenant.tenantId);
  const res = await create(tenant.token, body({ name: 'Spring renewals' }));
  expect(res.status).toBe(201);
  expect(res.body).toMatchObject({
    name: 'Spring renewals',
    status: 'draft',
    agentId,
    agentVersionId: agentV2,
    agentVersion: 2,
    callerNumberId: numberId,
    callerNumber: numberE164,
    contactListId: listId,
    startsAt: null,
    endsAt: null,
    launchedAt: null,
    workflowId: null,
  });
  expect(res.body.settings).toEqual({
    windows: {
      mon: WEEKDAY_WINDOW,
      tue: WEEKDAY_WINDOW,
      wed: WEEKDAY_WINDOW,
      thu: WEEKDAY_WINDOW,
      fri: WEEKDAY_WINDOW,
    },
    defaultTimeZone: 'America/Chicago',
    maxConcurrentCalls: 5,
    maxCallsPerSecond: 1,
    retry: {
      'no-answer': { maxAttempts: 3, backoffSeconds: 3600, backoffMultiplier: 2 },
      busy: { maxAttempts: 3, backoffSeconds: 900, backoffMultiplier: 2 },
      failed: { maxAttempts: 2, backoffSeconds: 1800, backoffMultiplier: 1 },
      voicemail: { maxAttempts: 1, backoffSeconds: 3600, backoffMultiplier: 1 },
    },
    voicemail: { action: 'hangup' },
    ringTimeoutSeconds: 30,
    machineDetection: true,
    parkAfterSeconds: 120,
  });
  // Stored complete, so the launch runs with what was shown.
  expect((await campaignRow(res.body.id))!.settings).toEqual(res.body.settings);
  const after = await stored(tenant.tenantId);
  expect(after).toEqual({ ...before, campaigns: before.campaigns! + 1, audits: before.audits! + 1 });
  expect(await auditActions(res.body.id)).toEqual(['campaign.created']);

  const read = await request(stack.app).get(`/v1/campaigns/${res.body.id}`).set(bearer(viewerKey));
  expect(read.status).toBe(200);
  expect(read.body).toEqual(res.body);
});

it('takes a named version (number or id), a number as typed, and settings merged over the defaults', async () => {
  const res = await create(
    tenant.token,
    body({
      agentVersion: 1,
      callerNumberId: undefined,
      callerNumber: national(numberE164),
      startsAt: tomorrow(),
      endsAt: new Date(Date.now() + 10 * DAY).toISOString(),
      settings: {
        windows: { sat: [{ start: '10:00', end: '14:00' }], sun: [] },
        defaultTimeZone: 'Europe/Berlin',
        maxConcurrentCalls: 20,
        maxCallsPerSecond: 0.5,
        retry: { busy: { maxAttempts: 5, backoffSeconds: 1 }, voicemail: { backoffMultiplier: 3 } },
        voicemail: { action: 'leave_message', message: 'Please call us back.' },
        ringTimeoutSeconds: 5,
        machineDetection: false,
        parkAfterSeconds: 5,
      },
    }),
  );
  expect(res.status).toBe(201);
  expect(res.body).toMatchObject({ agentVersionId: agentV1, agentVersion: 1, callerNumberId: numberId });
  expect(res.body.callerNumber).toBe(numberE164);
  expect(res.body.settings).toMatchObject({
    windows: { sat: [{ start: '10:00', end: '14:00' }], sun: [] },
    defaultTimeZone: 'Europe/Berlin',
    maxConcurrentCalls: 20,
    maxCallsPerSecond: 0.5,
    retry: {
      'no-answer': { maxAttempts: 3, backoffSeconds: 3600, backoffMultiplier: 2 },
      busy: { maxAttempts: 5, backoffSeconds: 1, backoffMultiplier: 2 },
      voicemail: { maxAttempts: 1, backoffSeconds: 3600, backoffMultiplier: 3 },
    },
    voicemail: { action: 'leave_message', message: 'Please call us back.' },
    ringTimeoutSeconds: 5,
    machineDetection: false,
    parkAfterSeconds: 5,
  });
  expect(res.body.settings.windows.mon).toBeUndefined();

  const byId = await create(tenant.token, body({ agentVersion: agentV1 }));
  expect(byId.status).toBe(201);
  expect(byId.body).toMatchObject({ agentVersionId: agentV1, agentVersion: 1 });
});

it('a small plan gets fewer concurrent calls by default, and more is refused (422 CONCURRENCY_OVER_PLAN)', async () => {
  const theirBody = {
    name: 'Small plan',
    agentId: theirs.agentId,
    callerNumberId: theirs.numberId,
    contactListId: theirs.listId,
  };
  const res = await create(other.token, theirBody);
  expect(res.status).toBe(201);
  expect(res.body.settings.maxConcurrentCalls).toBe(2);
  expect(res.body.settings.defaultTimeZone).toBe('UTC');

  const before = await stored(other.tenantId);
  const over = await create(other.token, { ...theirBody, settings: { maxConcurrentCalls: 5 } });
  expect(over.status).toBe(422);
  expect(over.body.error).toMatchObject({
    code: 'CONCURRENCY_OVER_PLAN',
    details: { maxConcurrentCalls: 5, limit: 2 },
  });
  const overPro = await create(tenant.token, body({ settings: { maxConcurrentCalls: 21 } }));
  expect(overPro.status).toBe(422);
  expect(overPro.body.error.code).toBe('CONCURRENCY_OVER_PLAN');
  expect(await stored(other.tenantId)).toEqual(before);
});

it('refuses malformed bodies with 400 VALIDATION_FAILED naming the field, storing nothing', async () => {
  const before = await stored(tenant.tenantId);
  const cases: [Record<string, unknown>, string][] = [
    [body({ name: undefined }), 'body.name'],
    [body({ agentId: 'nope' }), 'body.agentId'],
    [body({ agentVersion: 0 }), 'body.agentVersion'],
    [body({ callerNumberId: undefined }), 'body.callerNumberId'],
    [body({ callerNumber: numberE164 }), 'body.callerNumber'],
    [body({ contactListId: undefined }), 'body.contactListId'],
    [body({ csv: 'phone\n+14155550100\n' }), 'body.csv'],
    [body({ startsAt: 'tomorrow' }), 'body.startsAt'],
    [
      body({ settings: { windows: { mon: [{ start: '25:00', end: '26:00' }] } } }),
      'body.settings.windows.mon.0',
    ],
    [
      body({
        settings: { windows: { mon: WEEKDAY_WINDOW, tue: [ALL_DAY[0], { start: '18:00', end: '09:00' }] } },
      }),
      'body.settings.windows.tue.1',
    ],
    [body({ settings: { windows: { someday: ALL_DAY } } }), 'body.settings.windows'],
    [body({ settings: { defaultTimeZone: 'Mars/Olympus' } }), 'body.settings.defaultTimeZone'],
    [body({ settings: { maxConcurrentCalls: 0 } }), 'body.settings.maxConcurrentCalls'],
    [body({ settings: { maxCallsPerSecond: 0 } }), 'body.settings.maxCallsPerSecond'],
    [body({ settings: { maxCallsPerSecond: 51 } }), 'body.settings.maxCallsPerSecond'],
    [body({ settings: { retry: { busy: { maxAttempts: 11 } } } }), 'body.settings.retry.busy.maxAttempts'],
    [
      body({ settings: { retry: { busy: { backoffSeconds: 0 } } } }),
      'body.settings.retry.busy.backoffSeconds',
    ],
    [
      body({ settings: { retry: { busy: { backoffSeconds: 604_801 } } } }),
      'body.settings.retry.busy.backoffSeconds',
    ],
    [body({ settings: { voicemail: { action: 'leave_message' } } }), 'body.settings.voicemail.message'],
    [
      body({ settings: { voicemail: { action: 'leave_message', message: 'x'.repeat(1001) } } }),
      'body.settings.voicemail.message',
    ],
    [body({ settings: { ringTimeoutSeconds: 4 } }), 'body.settings.ringTimeoutSeconds'],
    [body({ settings: { ringTimeoutSeconds: 121 } }), 'body.settings.ringTimeoutSeconds'],
    [body({ settings: { parkAfterSeconds: 4 } }), 'body.settings.parkAfterSeconds'],
    [body({ settings: { parkAfterSeconds: 86_401 } }), 'body.settings.parkAfterSeconds'],
    [body({ settings: { maxConcurentCalls: 3 } }), 'body.settings'],
  ];
  for (const [payload, path] of cases) {
    const res = await create(tenant.token, payload);
    expect({ path, status: res.status, code: res.body.error?.code }).toEqual({
      path,
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
  }
  expect(await stored(tenant.tenantId)).toEqual(before);
});

it('refuses what does not exist or is not this tenant’s, with stable codes, storing nothing', async () => {
  const emptyList = await createList(tenant.tenantId, []);
  const before = await stored(tenant.tenantId);
  const cases: [Record<string, unknown>, number, string][] = [
    [body({ agentId: randomUUID() }), 404, 'AGENT_NOT_FOUND'],
    [body({ agentId: theirs.agentId }), 404, 'AGENT_NOT_FOUND'],
    [body({ agentVersion: 3 }), 422, 'AGENT_VERSION_NOT_FOUND'],
    [body({ agentVersion: randomUUID() }), 422, 'AGENT_VERSION_NOT_FOUND'],
    [body({ agentVersion: theirs.versionId }), 422, 'AGENT_VERSION_NOT_FOUND'],
    [body({ agentId: draftAgentId }), 422, 'AGENT_NOT_PUBLISHED'],
    [body({ agentId: draftAgentId, agentVersion: agentV1 }), 422, 'AGENT_VERSION_NOT_FOUND'],
    [body({ callerNumberId: randomUUID() }), 422, 'CALLER_NUMBER_NOT_FOUND'],
    [body({ callerNumberId: theirs.numberId }), 422, 'CALLER_NUMBER_NOT_FOUND'],
    [body({ callerNumberId: undefined, callerNumber: freshUsNumber() }), 422, 'CALLER_NUMBER_NOT_FOUND'],
    [body({ callerNumberId: undefined, callerNumber: 'call me' }), 422, 'CALLER_NUMBER_NOT_FOUND'],
    [body({ contactListId: randomUUID() }), 422, 'CONTACT_LIST_NOT_FOUND'],
    [body({ contactListId: theirs.listId }), 422, 'CONTACT_LIST_NOT_FOUND'],
    [body({ contactListId: emptyList }), 422, 'CONTACT_LIST_EMPTY'],
  ];
  for (const [payload, status, code] of cases) {
    const res = await create(tenant.token, payload);
    expect({ code, status: res.status, got: res.body.error?.code }).toEqual({ code, status, got: code });
  }
  expect(await stored(tenant.tenantId)).toEqual(before);
});

it('refuses a schedule that ends before it starts, or windows that never open (also in a contact’s zone)', async () => {
  const soon = Date.now() + 3 * DAY;
  const day = new Date(soon - (soon % DAY)); // 00:00 UTC, three days ahead
  const at = (hours: number, minutes = 0) => new Date(day.getTime() + hours * 3_600_000 + minutes * 60_000);
  let saturdayMs = Math.ceil((Date.now() + DAY) / DAY) * DAY; // a midnight UTC, a day or more ahead
  while (new Date(saturdayMs).getUTCDay() !== 6) saturdayMs += DAY;
  const saturday = new Date(saturdayMs);
  const tokyoList = await createList(tenant.tenantId, [{ timeZone: 'UTC' }, { timeZone: 'Asia/Tokyo' }]);
  const utcList = await createList(tenant.tenantId, [{ timeZone: 'UTC' }, { timeZone: null }]);
  const onlyTokyoList = await createList(tenant.tenantId, [{ timeZone: 'Asia/Tokyo' }]);
  const nineToTen = {
    startsAt: at(9, 10).toISOString(),
    endsAt: at(9, 50).toISOString(),
    settings: { windows: everyDay({ start: '09:00', end: '10:00' }), defaultTimeZone: 'UTC' },
  };

  const before = await stored(tenant.tenantId);
  const cases: [Record<string, unknown>, string, Record<string, unknown>?][] = [
    [body({ startsAt: at(10).toISOString(), endsAt: at(9).toISOString() }), 'CAMPAIGN_ENDS_BEFORE_START'],
    [body({ startsAt: at(10).toISOString(), endsAt: at(10).toISOString() }), 'CAMPAIGN_ENDS_BEFORE_START'],
    [body({ endsAt: new Date(Date.now() - 60_000).toISOString() }), 'CAMPAIGN_ENDS_BEFORE_START'],
    [body({ settings: { windows: {} } }), 'CALLING_WINDOW_NEVER_OPENS'],
    [body({ settings: { windows: { sat: [], sun: [] } } }), 'CALLING_WINDOW_NEVER_OPENS'],
    [
      body({
        startsAt: saturday.toISOString(),
        endsAt: new Date(saturday.getTime() + 20 * 3_600_000).toISOString(),
        settings: { defaultTimeZone: 'UTC' },
        contactListId: utcList,
      }),
      'CALLING_WINDOW_NEVER_OPENS',
      { timeZones: ['UTC'] },
    ],
    [
      body({ ...nineToTen, contactListId: onlyTokyoList }),
      'CALLING_WINDOW_NEVER_OPENS',
      { timeZones: ['Asia/Tokyo'] },
    ],
  ];
  for (const [payload, code, details] of cases) {
    const res = await create(tenant.token, payload);
    expect({ code, status: res.status, got: res.body.error?.code }).toEqual({ code, status: 422, got: code });
    if (details) expect(res.body.error.details).toMatchObject(details);
  }
  expect(await stored(tenant.tenantId)).toEqual(before);

  // The same hour works when every contact is in a zone where it opens.
  const fine = await create(tenant.token, body({ ...nineToTen, contactListId: utcList }));
  expect(fine.status).toBe(201);
  expect(fine.body.warnings).toBeUndefined();
  // Some contacts in a zone where it never opens: created, with a warning naming the zone.
  const mixed = await create(tenant.token, body({ ...nineToTen, contactListId: tokyoList }));
  expect(mixed.status).toBe(201);
  expect(mixed.body.warnings).toEqual([
    expect.objectContaining({ code: 'CALLING_WINDOW_NEVER_OPENS_IN_ZONE', timeZone: 'Asia/Tokyo' }),
  ]);
});

it('creates the list from an inline CSV through the contacts importer, and leaves none behind on refusal', async () => {
  const [a, b] = [freshUsNumber(), freshUsNumber()];
  const csv = `phone,name,time_zone\n${national(a)},Ann Lee,America/Denver\n${b},Bo Chan,\nnot a number,Cy,\n`;
  const res = await create(tenant.token, body({ name: 'From CSV', contactListId: undefined, csv }));
  expect(res.status).toBe(201);
  expect(res.body.importReport.totals).toEqual({ rows: 3, accepted: 2, duplicate: 0, invalid: 1 });
  const { rows } = await owner.query<{ name: string; phone_e164: string }>(
    `select l.name, c.phone_e164 from contact_lists l
       join contact_list_members m on m.list_id = l.id join contacts c on c.id = m.contact_id
      where l.id = $1 order by c.phone_e164`,
    [res.body.contactListId],
  );
  expect(rows).toEqual([a, b].sort().map((phone) => ({ name: 'From CSV contacts', phone_e164: phone })));

  // Rows that are all invalid: no campaign and no list, the report in the error.
  let before = await stored(tenant.tenantId);
  const empty = await create(
    tenant.token,
    body({ contactListId: undefined, csv: 'phone,name\nnope,Ann\n12,Bo\n' }),
  );
  expect(empty.status).toBe(422);
  expect(empty.body.error.code).toBe('CONTACT_LIST_EMPTY');
  expect(empty.body.error.details.importReport.totals).toMatchObject({ accepted: 0, invalid: 2 });
  expect(await stored(tenant.tenantId)).toEqual(before);

  // A refusal found before the import reads nothing: not even the contacts are stored.
  const missingAgent = await create(
    tenant.token,
    body({ agentId: randomUUID(), contactListId: undefined, csv: `phone\n${freshUsNumber()}\n` }),
  );
  expect(missingAgent.status).toBe(404);
  expect(await stored(tenant.tenantId)).toEqual(before);

  // A refusal that depends on the contacts (a zone where the window never opens) drops the new list.
  const soon = Date.now() + 3 * DAY;
  const day = soon - (soon % DAY);
  before = await stored(tenant.tenantId);
  const tokyo = await create(
    tenant.token,
    body({
      contactListId: undefined,
      csv: `phone,time_zone\n${freshUsNumber()},Asia/Tokyo\n`,
      startsAt: new Date(day + 9 * 3_600_000 + 600_000).toISOString(),
      endsAt: new Date(day + 9 * 3_600_000 + 3_000_000).toISOString(),
      settings: { windows: everyDay({ start: '09:00', end: '10:00' }), defaultTimeZone: 'UTC' },
    }),
  );
  expect(tokyo.body.error.code).toBe('CALLING_WINDOW_NEVER_OPENS');
  const after = await stored(tenant.tenantId);
  expect({ ...after, contacts: before.contacts }).toEqual(before);

  // Over 5 MB is refused before anything is read.
  const big = await create(
    tenant.token,
    body({ contactListId: undefined, csv: 'x'.repeat(5 * 1024 * 1024 + 1) }),
  );
  expect(big.status).toBe(400);
  expect(big.body.error.details[0]).toMatchObject({ path: 'body.csv', message: 'must be at most 5 MB' });
});

it('viewers read but cannot write (403); campaign managers write', async () => {
  const id = await createDraft();
  expect((await request(stack.app).get('/v1/campaigns').set(bearer(viewerKey))).status).toBe(200);
  expect((await request(stack.app).get(`/v1/campaigns/${id}/progress`).set(bearer(viewerKey))).status).toBe(
    200,
  );
  const writes = [
    await create(viewerKey, body()),
    await request(stack.app).patch(`/v1/campaigns/${id}`).set(bearer(viewerKey)).send({ name: 'x' }),
    await request(stack.app).delete(`/v1/campaigns/${id}`).set(bearer(viewerKey)),
    await request(stack.app).post(`/v1/campaigns/${id}/launch`).set(bearer(viewerKey)).send({}),
    await request(stack.app).post(`/v1/campaigns/${id}/pause`).set(bearer(viewerKey)),
    await request(stack.app).post(`/v1/campaigns/${id}/resume`).set(bearer(viewerKey)),
    await request(stack.app).post(`/v1/campaigns/${id}/cancel`).set(bearer(viewerKey)),
  ];
  for (const res of writes) {
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('INSUFFICIENT_ROLE');
  }
  expect((await campaignRow(id))!.status).toBe('draft');
  expect((await create(managerKey, body())).status).toBe(201);
});

it("another tenant's campaign is not found, whatever is asked of it", async () => {
  const id = await createDraft();
  const as = bearer(other.token);
  const responses = [
    await request(stack.app).get(`/v1/campaigns/${id}`).set(as),
    await request(stack.app).patch(`/v1/campaigns/${id}`).set(as).send({ name: 'Mine' }),
    await request(stack.app).delete(`/v1/campaigns/${id}`).set(as),
    await request(stack.app).post(`/v1/campaigns/${id}/launch`).set(as).send({}),
    await request(stack.app).post(`/v1/campaigns/${id}/pause`).set(as),
    await request(stack.app).post(`/v1/campaigns/${id}/cancel`).set(as),
    await request(stack.app).get(`/v1/campaigns/${id}/progress`).set(as),
    await request(stack.app).get(`/v1/campaigns/${id}/events`).set(as),
    await request(stack.app).get(`/v1/campaigns/${id}/contacts`).set(as),
    await request(stack.app).get(`/v1/campaigns/${id}/attempts`).set(as),
  ];
  for (const res of responses) {
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('CAMPAIGN_NOT_FOUND');
  }
  const list = await request(stack.app).get('/v1/campaigns').set(as);
  expect(list.body.data.map((c: { id: string }) => c.id)).not.toContain(id);
  expect((await campaignRow(id))!.status).toBe('draft');
});

it('lists newest first, by status, a page at a time', async () => {
  const ids = [await createDraft(), await createDraft(), await createDraft()];
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: request.Response = await request(stack.app)
      .get('/v1/campaigns')
      .query({ status: 'draft', limit: 2, ...(cursor ? { cursor } : {}) })
      .set(bearer(tenant.token));
    expect(page.status).toBe(200);
    expect(page.body.data.length).toBeLessThanOrEqual(2);
    for (const c of page.body.data as { id: string; status: string }[]) {
      expect(c.status).toBe('draft');
      seen.push(c.id);
    }
    cursor = page.body.nextCursor;
  } while (cursor);
  expect(new Set(seen).size).toBe(seen.length);
  expect(seen.slice(0, 3)).toEqual([...ids].reverse());
  const running = await request(stack.app).get('/v1/campaigns?status=running').set(bearer(tenant.token));
  expect(running.body.data.every((c: { status: string }) => c.status === 'running')).toBe(true);
  expect((await request(stack.app).get('/v1/campaigns?status=bogus').set(bearer(tenant.token))).status).toBe(
    400,
  );
});

it('a draft changes any field, checked again; a refused change leaves it as it was', async () => {
  const id = await createDraft({ agentVersion: 1 });
  const otherList = await createList(tenant.tenantId, [{}]);
  const { number: secondNumber, id: secondNumberId } = await registerNumber(tenant.token);
  const res = await request(stack.app)
    .patch(`/v1/campaigns/${id}`)
    .set(bearer(managerKey))
    .send({
      name: 'Renamed',
      callerNumber: secondNumber,
      contactListId: otherList,
      startsAt: tomorrow(),
      settings: { maxConcurrentCalls: 7, retry: { failed: { maxAttempts: 4 } } },
    });
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({
    name: 'Renamed',
    agentVersion: 1,
    callerNumberId: secondNumberId,
    callerNumber: secondNumber,
    contactListId: otherList,
  });
  expect(res.body.settings.maxConcurrentCalls).toBe(7);
  expect(res.body.settings.retry.failed).toEqual({
    maxAttempts: 4,
    backoffSeconds: 1800,
    backoffMultiplier: 1,
  });
  expect(res.body.settings.retry.busy).toEqual({ maxAttempts: 3, backoffSeconds: 900, backoffMultiplier: 2 });

  // `agentVersion: null` re-pins the published version; clearing startsAt.
  const repinned = await request(stack.app)
    .patch(`/v1/campaigns/${id}`)
    .set(bearer(tenant.token))
    .send({ agentVersion: null, startsAt: null });
  expect(repinned.status).toBe(200);
  expect(repinned.body).toMatchObject({ agentVersion: 2, agentVersionId: agentV2, startsAt: null });

  const stateBefore = await request(stack.app).get(`/v1/campaigns/${id}`).set(bearer(tenant.token));
  const refused = [
    [{ agentVersion: 9 }, 'AGENT_VERSION_NOT_FOUND'],
    [{ contactListId: theirs.listId }, 'CONTACT_LIST_NOT_FOUND'],
    [{ settings: { maxConcurrentCalls: 21 } }, 'CONCURRENCY_OVER_PLAN'],
    [{ settings: { windows: {} } }, 'CALLING_WINDOW_NEVER_OPENS'],
    [{ settings: { windows: { mon: [{ start: '9', end: '10' }] } } }, 'VALIDATION_FAILED'],
  ] as const;
  for (const [change, code] of refused) {
    const r = await request(stack.app).patch(`/v1/campaigns/${id}`).set(bearer(tenant.token)).send(change);
    expect({ change, code: r.body.error?.code }).toEqual({ change, code });
  }
  const stateAfter = await request(stack.app).get(`/v1/campaigns/${id}`).set(bearer(tenant.token));
  expect(stateAfter.body).toEqual(stateBefore.body);
  expect(await auditActions(id)).toEqual(['campaign.created', 'campaign.updated', 'campaign.updated']);
});

it('deletes a draft only', async () => {
  const id = await createDraft();
  const deleted = await request(stack.app).delete(`/v1/campaigns/${id}`).set(bearer(tenant.token));
  expect(deleted.status).toBe(204);
  expect((await request(stack.app).get(`/v1/campaigns/${id}`).set(bearer(tenant.token))).status).toBe(404);
  expect(await auditActions(id)).toEqual(['campaign.created', 'campaign.deleted']);
  expect((await request(stack.app).delete(`/v1/campaigns/${id}`).set(bearer(tenant.token))).status).toBe(404);
});

// ---- launching ------------------------------------------------------------------------------

it('launch queues every contact, marks it running and starts its workflow with the pinned input', async () => {
  const contacts = await createList(tenant.tenantId, [{ name: 'A' }, { name: 'B' }, { name: 'C' }]);
  const startsAt = tomorrow();
  const id = await createDraft({
    contactListId: contacts,
    startsAt,
    agentVersion: 1,
    settings: { maxCallsPerSecond: 2 },
  });
  const before = await stored(tenant.tenantId);
  const res = await launch(id, { options: { pageSize: 10, call: { mediaConnectTimeoutSeconds: 5 } } });
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({
    id,
    status: 'running',
    agentVersionId: agentV1,
    workflowId: campaignWorkflowId(id),
    contactsQueued: 3,
  });
  expect(res.body.launchedAt).not.toBeNull();

  const row = await campaignRow(id);
  expect(row).toMatchObject({ status: 'running', agent_version_id: agentV1 });
  expect(row!.launched_at).toBeInstanceOf(Date);
  const queued = await campaignContacts(id);
  const { rows: members } = await owner.query<{ contact_id: string }>(
    `select contact_id from contact_list_members where list_id = $1 order by contact_id`,
    [contacts],
  );
  expect(queued).toEqual(members.map((m) => ({ contact_id: m.contact_id, status: 'pending' })));
  expect((await stored(tenant.tenantId)).campaign_contacts).toBe(before.campaign_contacts! + 3);

  const handle = stack.temporal.workflow.getHandle(campaignWorkflowId(id));
  const description = await handle.describe();
  expect(description.status.name).toBe('RUNNING');
  expect(description.type).toBe(CAMPAIGN_WORKFLOW);
  expect(description.taskQueue).toBe(CAMPAIGN_QUEUE);
  expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.TenantId)).toBe(tenant.tenantId);
  expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.CampaignId)).toBe(id);
  expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.AgentId)).toBe(agentId);
  const history = await handle.fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const input = defaultPayloadConverter.fromPayload<CampaignWorkflowInput>(
    started!.input!.payloads![0] as Payload,
  );
  expect(input).toEqual({
    campaignId: id,
    tenantId: tenant.tenantId,
    agentId,
    agentVersionId: agentV1,
    callerId: numberE164,
    settings: row!.settings,
    startsAt,
    options: { pageSize: 10, call: { mediaConnectTimeoutSeconds: 5 } },
  });
  expect(input.settings.maxCallsPerSecond).toBe(2);
  expect(await auditActions(id)).toEqual(['campaign.created', 'campaign.launched']);

  // Once launched: no second launch, no deletion, and only settings the workflow applies.
  const again = await launch(id);
  expect(again.status).toBe(409);
  expect(again.body.error.code).toBe('CAMPAIGN_NOT_DRAFT');
  expect((await campaignContacts(id)).length).toBe(3);
  const del = await request(stack.app).delete(`/v1/campaigns/${id}`).set(bearer(tenant.token));
  expect(del.status).toBe(409);
  expect(del.body.error.code).toBe('CAMPAIGN_NOT_DRAFT');
  for (const change of [{ name: 'New name' }, { startsAt: null }, { settings: { ringTimeoutSeconds: 20 } }]) {
    const locked = await request(stack.app)
      .patch(`/v1/campaigns/${id}`)
      .set(bearer(tenant.token))
      .send(change);
    expect(locked.status).toBe(409);
    expect(locked.body.error.code).toBe('CAMPAIGN_RUNNING_FIELD_LOCKED');
  }
  const overPlan = await request(stack.app)
    .patch(`/v1/campaigns/${id}`)
    .set(bearer(tenant.token))
    .send({ settings: { maxConcurrentCalls: 50 } });
  expect(overPlan.body.error.code).toBe('CONCURRENCY_OVER_PLAN');
});

it('a launch whose workflow cannot start is undone: still a draft, no contacts queued (503)', async () => {
  const contacts = await createList(tenant.tenantId, [{}, {}]);
  const id = await createDraft({ contactListId: contacts, startsAt: tomorrow() });
  const start = jest
    .spyOn(stack.temporal.workflow, 'start')
    .mockRejectedValueOnce(new Error('14 UNAVAILABLE: connection refused'));
  try {
    const res = await launch(id);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('TEMPORAL_UNAVAILABLE');
  } finally {
    start.mockRestore();
  }
  expect(await campaignRow(id)).toMatchObject({ status: 'draft', launched_at: null });
  expect(await campaignContacts(id)).toEqual([]);
  await expect(stack.temporal.workflow.getHandle(campaignWorkflowId(id)).describe()).rejects.toThrow();
  expect(await auditActions(id)).toEqual([
    'campaign.created',
    'campaign.launched',
    'campaign.launch_reverted',
  ]);

  // Nothing was half done: the next launch goes through.
  const retried = await launch(id);
  expect(retried.status).toBe(200);
  expect((await campaignContacts(id)).length).toBe(2);
});

it('launch checks the draft again: an emptied list, a smaller plan, a passed end', async () => {
  const contacts = await createList(tenant.tenantId, [{}]);
  const id = await createDraft({ contactListId: contacts, startsAt: tomorrow() });
  await owner.query(`delete from contact_list_members where list_id = $1`, [contacts]);
  let res = await launch(id);
  expect(res.status).toBe(422);
  expect(res.body.error.code).toBe('CONTACT_LIST_EMPTY');

  const id2 = await createDraft({ settings: { maxConcurrentCalls: 20 } });
  await owner.query(`update tenants set settings = settings || '{"maxConcurrentCalls": 10}' where id = $1`, [
    tenant.tenantId,
  ]);
  try {
    res = await launch(id2);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('CONCURRENCY_OVER_PLAN');
  } finally {
    await owner.query(`update tenants set settings = settings - 'maxConcurrentCalls' where id = $1`, [
      tenant.tenantId,
    ]);
  }

  const id3 = await createDraft({ endsAt: new Date(Date.now() + 3 * DAY).toISOString() });
  await owner.query(`update campaigns set ends_at = now() - interval '1 minute' where id = $1`, [id3]);
  res = await launch(id3);
  expect(res.body.error.code).toBe('CAMPAIGN_ENDS_BEFORE_START');

  for (const refused of [id, id2, id3]) {
    expect(await campaignRow(refused)).toMatchObject({ status: 'draft', launched_at: null });
    expect(await campaignContacts(refused)).toEqual([]);
  }
});

it('test-only launch options are refused outside tests', async () => {
  const id = await createDraft({ startsAt: tomorrow() });
  const production = createApp({
    config: { ...stack.config, NODE_ENV: 'production' },
    orm: stack.orm,
    temporal: stack.temporal,
    logger: createLogger(stack.config, 'test'),
  });
  const res = await request(production)
    .post(`/v1/campaigns/${id}/launch`)
    .set(bearer(tenant.token))
    .send({ options: { pageSize: 1 } });
  expect(res.status).toBe(400);
  expect(res.body.error.details[0].path).toBe('body.options');
  expect(await campaignRow(id)).toMatchObject({ status: 'draft' });
});

// ---- controls -------------------------------------------------------------------------------

it('pause, resume and cancel need a launched, unfinished campaign', async () => {
  const id = await createDraft();
  for (const verb of ['pause', 'resume', 'cancel']) {
    const res = await request(stack.app).post(`/v1/campaigns/${id}/${verb}`).set(bearer(tenant.token));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('CAMPAIGN_NOT_LAUNCHED');
  }
  const finished = await createDraft();
  await owner.query(
    `update campaigns set status = 'completed', launched_at = now(), finished_at = now() where id = $1`,
    [finished],
  );
  for (const res of [
    await request(stack.app).post(`/v1/campaigns/${finished}/pause`).set(bearer(tenant.token)),
    await request(stack.app).post(`/v1/campaigns/${finished}/cancel`).set(bearer(tenant.token)),
    await request(stack.app)
      .patch(`/v1/campaigns/${finished}`)
      .set(bearer(tenant.token))
      .send({ settings: { maxCallsPerSecond: 2 } }),
  ]) {
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('CAMPAIGN_FINISHED');
  }
  const launchFinished = await launch(finished);
  expect(launchFinished.body.error.code).toBe('CAMPAIGN_NOT_DRAFT');
});

it('pauses, resumes, edits and cancels through the workflow, which keeps the row in step', async () => {
  const { id } = await launchedCampaign(2);
  const post = (verb: string) =>
    request(stack.app).post(`/v1/campaigns/${id}/${verb}`).set(bearer(tenant.token));

  const paused = await post('pause');
  expect(paused.status).toBe(200);
  expect(paused.body).toMatchObject({ campaignId: id, status: 'paused', paused: true, inFlight: 0 });
  expect((await campaignRow(id))!.status).toBe('paused');
  const progress = await request(stack.app).get(`/v1/campaigns/${id}/progress`).set(bearer(tenant.token));
  expect(progress.body).toMatchObject({ status: 'paused', paused: true, done: false });

  const resumed = await post('resume');
  expect(resumed.body).toMatchObject({ status: 'running', paused: false });
  expect((await campaignRow(id))!.status).toBe('running');

  const windows = { sat: [{ start: '10:00', end: '12:00' }] };
  const edited = await request(stack.app)
    .patch(`/v1/campaigns/${id}`)
    .set(bearer(tenant.token))
    .send({ settings: { maxConcurrentCalls: 3, windows, retry: { busy: { maxAttempts: 2 } } } });
  expect(edited.status).toBe(200);
  expect(edited.body.settings).toMatchObject({
    maxConcurrentCalls: 3,
    windows,
    retry: { busy: { maxAttempts: 2, backoffSeconds: 900, backoffMultiplier: 2 } },
  });
  // The workflow persisted what it now runs with.
  expect((await campaignRow(id))!.settings).toEqual(edited.body.settings);

  const canceled = await post('cancel');
  expect(canceled.status).toBe(200);
  expect(canceled.body).toMatchObject({ status: 'canceled' });
  await waitUntil(
    'the campaign workflow to finish',
    async () => (await campaignRow(id))!.summary !== null,
    20_000,
  );
  expect(await campaignRow(id)).toMatchObject({ status: 'canceled' });
  expect((await campaignContacts(id)).map((c) => c.status)).toEqual(['canceled', 'canceled']);
  const again = await post('pause');
  expect(again.status).toBe(409);
  expect(again.body.error.code).toBe('CAMPAIGN_FINISHED');
  expect(await auditActions(id)).toEqual([
    'campaign.created',
    'campaign.launched',
    'campaign.paused',
    'campaign.resumed',
    'campaign.settings_edited',
    'campaign.canceled',
  ]);
});

it('an update the workflow rejects is a 409 CAMPAIGN_UPDATE_REJECTED with its reason', async () => {
  const { id } = await launchedCampaign(1);
  const realGetHandle = stack.temporal.workflow.getHandle.bind(stack.temporal.workflow);
  const rejected = new WorkflowUpdateFailedError(
    'Workflow Update failed',
    ApplicationFailure.create({ message: 'The campaign has been canceled', nonRetryable: true }),
  );
  // The workflow's own validators accept whatever the api lets through, so the rejection is stubbed.
  const getHandle = jest
    .spyOn(stack.temporal.workflow, 'getHandle')
    .mockImplementation((workflowId: string) => ({
      ...realGetHandle(workflowId),
      executeUpdate: () => Promise.reject(rejected),
    }));
  try {
    const res = await request(stack.app).post(`/v1/campaigns/${id}/pause`).set(bearer(tenant.token));
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({
      code: 'CAMPAIGN_UPDATE_REJECTED',
      message: 'The campaign has been canceled',
    });
  } finally {
    getHandle.mockRestore();
  }
  expect((await campaignRow(id))!.status).toBe('running');
});

// ---- progress -------------------------------------------------------------------------------

it('progress counts contacts and attempts from the tables; contacts and attempts page', async () => {
  const { id } = await launchedCampaign(3);
  const queued = await campaignContacts(id);
  const [first, second, third] = queued.map((c) => c.contact_id) as [string, string, string];
  const next = new Date(Date.now() + 3_600_000);
  await owner.query(
    `update campaign_contacts set status = 'scheduled', attempts = 1, last_outcome = 'busy', next_attempt_at = $2
      where campaign_id = $1 and contact_id = $3`,
    [id, next, first],
  );
  await owner.query(
    `update campaign_contacts set status = 'completed', attempts = 1, last_outcome = 'completed'
      where campaign_id = $1 and contact_id = $2`,
    [id, second],
  );
  const attempt = (contactId: string, outcome: string | null, secondsAgo: number) =>
    owner.query(
      `insert into campaign_attempts (tenant_id, campaign_id, contact_id, attempt, attempt_key, outcome, started_at)
       values ($1, $2, $3, 1, $4, $5, now() - make_interval(secs => $6))`,
      [tenant.tenantId, id, contactId, `campaign:${id}:contact:${contactId}:attempt:1`, outcome, secondsAgo],
    );
  await attempt(first, 'busy', 30);
  await attempt(second, 'completed', 20);
  await attempt(third, null, 10);

  const res = await request(stack.app).get(`/v1/campaigns/${id}/progress`).set(bearer(viewerKey));
  expect(res.status).toBe(200);
  expect(res.body).toEqual({
    campaignId: id,
    status: 'running',
    paused: false,
    counts: {
      pending: 1,
      in_progress: 0,
      scheduled: 1,
      completed: 1,
      voicemail: 0,
      no_answer: 0,
      busy: 0,
      failed: 0,
      dnc: 0,
      canceled: 0,
      expired: 0,
      total: 3,
    },
    attempts: { total: 3, notDialed: 0, byOutcome: { busy: 1, completed: 1, in_progress: 1 } },
    inFlight: 0,
    nextAttemptAt: next.toISOString(),
    done: false,
    summary: null,
  });

  const scheduled = await request(stack.app)
    .get(`/v1/campaigns/${id}/contacts?status=scheduled`)
    .set(bearer(viewerKey));
  expect(scheduled.body.data).toEqual([
    expect.objectContaining({
      contactId: first,
      status: 'scheduled',
      attempts: 1,
      lastOutcome: 'busy',
      nextAttemptAt: next.toISOString(),
      lastCallId: null,
      name: 'Pat Doe',
    }),
  ]);
  const phones: string[] = [];
  let cursor: string | null = null;
  do {
    const page: request.Response = await request(stack.app)
      .get(`/v1/campaigns/${id}/contacts`)
      .query({ limit: 2, ...(cursor ? { cursor } : {}) })
      .set(bearer(viewerKey));
    expect(page.status).toBe(200);
    phones.push(...page.body.data.map((c: { phone: string }) => c.phone));
    cursor = page.body.nextCursor;
  } while (cursor);
  expect(phones).toHaveLength(3);
  expect(phones).toEqual([...phones].sort());

  const attemptIds: string[] = [];
  cursor = null;
  do {
    const page: request.Response = await request(stack.app)
      .get(`/v1/campaigns/${id}/attempts`)
      .query({ limit: 2, ...(cursor ? { cursor } : {}) })
      .set(bearer(viewerKey));
    expect(page.status).toBe(200);
    attemptIds.push(...page.body.data.map((a: { contactId: string }) => a.contactId));
    cursor = page.body.nextCursor;
  } while (cursor);
  // Newest first: the third contact's attempt started last.
  expect(attemptIds).toEqual([third, second, first]);
  const busy = await request(stack.app)
    .get(`/v1/campaigns/${id}/attempts?outcome=busy`)
    .set(bearer(viewerKey));
  expect(busy.body.data).toEqual([
    expect.objectContaining({ contactId: first, attempt: 1, outcome: 'busy' }),
  ]);
  const bad = await request(stack.app).get(`/v1/campaigns/${id}/attempts?cursor=zzz`).set(bearer(viewerKey));
  expect(bad.status).toBe(400);
});

it('streams progress as server-sent events: at once, on each change, then done and the end', async () => {
  const { id } = await launchedCampaign(2);
  const stream = await openEvents(`/v1/campaigns/${id}/events`, viewerKey);
  try {
    expect(stream.status).toBe(200);
    expect(stream.contentType).toMatch(/^text\/event-stream/);
    const first = await stream.event(0);
    expect(first.event).toBe('progress');
    expect(first.data).toMatchObject({
      campaignId: id,
      status: 'running',
      done: false,
      counts: expect.objectContaining({ pending: 2, completed: 0, total: 2 }),
    });

    const [contact] = await campaignContacts(id);
    await owner.query(
      `update campaign_contacts set status = 'completed' where campaign_id = $1 and contact_id = $2`,
      [id, contact!.contact_id],
    );
    const second = await stream.event(1);
    expect(second.event).toBe('progress');
    expect(second.data.counts).toMatchObject({ pending: 1, completed: 1, total: 2 });
    // Nothing changed: nothing sent.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(stream.events).toHaveLength(2);

    // Cancel through the API: the workflow closes the waiting contact and finishes.
    expect(
      (await request(stack.app).post(`/v1/campaigns/${id}/cancel`).set(bearer(tenant.token))).status,
    ).toBe(200);
    await stream.ended;
    const last = stream.events[stream.events.length - 1]!;
    expect(last.event).toBe('done');
    expect(last.data).toMatchObject({ status: 'canceled', done: true });
    expect(last.data.counts).toMatchObject({ completed: 1, canceled: 1, pending: 0, total: 2 });
  } finally {
    stream.close();
  }
}, 60_000);

it('a client that goes away is let go; a finished campaign streams once and ends', async () => {
  const { id } = await launchedCampaign(1);
  // Every poll of a running campaign asks its workflow for live figures (a handle per poll).
  const polls = jest.spyOn(stack.temporal.workflow, 'getHandle');
  try {
    const stream = await openEvents(`/v1/campaigns/${id}/events`, tenant.token);
    await stream.event(0);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(polls).toHaveBeenCalled();
    stream.close();
    await stream.ended;
    await new Promise((resolve) => setTimeout(resolve, 700)); // a poll already under way may finish
    polls.mockClear();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(polls).not.toHaveBeenCalled();
  } finally {
    polls.mockRestore();
  }

  const done = await createDraft();
  await owner.query(
    `update campaigns set status = 'completed', launched_at = now(), finished_at = now(), summary = '{"status":"completed"}' where id = $1`,
    [done],
  );
  const finished = await openEvents(`/v1/campaigns/${done}/events`, tenant.token);
  await finished.ended;
  expect(finished.events.map((e) => e.event)).toEqual(['progress', 'done']);
  expect(finished.events[1]!.data).toMatchObject({
    status: 'completed',
    done: true,
    summary: { status: 'completed' },
  });
});

it('is done once the workflow wrote its summary, or ended without one, not when the row first says canceled', async () => {
  // A cancel marks the row before the workflow has closed the waiting contacts.
  const { id } = await launchedCampaign(1);
  await owner.query(`update campaigns set status = 'canceled' where id = $1`, [id]);
  const stream = await openEvents(`/v1/campaigns/${id}/events`, tenant.token);
  try {
    expect((await stream.event(0)).data).toMatchObject({ status: 'canceled', done: false });
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(stream.events.map((e) => e.event)).toEqual(['progress']);
    await owner.query(`update campaigns set summary = '{"status":"canceled"}' where id = $1`, [id]);
    await stream.ended;
    expect(stream.events.map((e) => e.event)).toEqual(['progress', 'progress', 'done']);
    expect(stream.events[2]!.data).toMatchObject({ done: true, summary: { status: 'canceled' } });
  } finally {
    stream.close();
  }

  // A workflow that ended without a summary (terminated): done as well.
  const { id: ended } = await launchedCampaign(1);
  await owner.query(`update campaigns set status = 'canceled' where id = $1`, [ended]);
  const progress = () => request(stack.app).get(`/v1/campaigns/${ended}/progress`).set(bearer(tenant.token));
  expect((await progress()).body).toMatchObject({ status: 'canceled', done: false });
  await stack.temporal.workflow.getHandle(campaignWorkflowId(ended)).terminate('test');
  expect((await progress()).body).toMatchObject({ status: 'canceled', done: true, summary: null });
});

it('is described in the OpenAPI document', async () => {
  const doc = await request(stack.app).get('/openapi.json');
  expect(Object.keys(doc.body.paths['/v1/campaigns']).sort()).toEqual(['get', 'post']);
  expect(Object.keys(doc.body.paths['/v1/campaigns/{id}']).sort()).toEqual(['delete', 'get', 'patch']);
  for (const path of ['launch', 'pause', 'resume', 'cancel', 'progress', 'events', 'contacts', 'attempts']) {
    expect(doc.body.paths[`/v1/campaigns/{id}/${path}`]).toBeDefined();
  }
});
