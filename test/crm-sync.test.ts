/**
 * CRM sync against the HubSpot and Salesforce peers, through the whole stack: a tenant connects
 * both CRMs with the integrations API (credentials proven first, sealed at rest, never returned),
 * its outbound campaign calls end, and each call's workflow starts one `crmSyncWorkflow` per CRM
 * that logs the call exactly once. Then the sync workflow alone against scripted faults: a write
 * that times out after the CRM stored it, a 429 storm, a 400 refusal, an expired Salesforce session.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import request from 'supertest';
import { callWorkflowId } from '../contracts/call';
import {
  CRM_QUEUE,
  CRM_SYNC_WORKFLOW,
  crmImportWorkflowId,
  crmSyncWorkflowId,
  type CrmSyncResult,
} from '../contracts/crm';
import { workflowBundle } from '../workers/create-workers';
import { withTenant } from '../db/tenant-context';
import { waitUntil } from '../lib/net';
import { openSecret } from '../lib/secret-box';
import { HubSpotPeer } from './peers/hubspot-peer';
import { SalesforcePeer } from './peers/salesforce-peer';
import {
  createCampaign,
  launchCampaign,
  startCampaignStack,
  testNumber,
  waitForCampaignEnd,
  type CampaignStack,
} from './support/campaign-stack';
import { bearer } from './support/stack';

jest.setTimeout(120_000);

const ALWAYS_OPEN = Object.fromEntries(
  ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [{ start: '00:00', end: '24:00' }]]),
);

const HUBSPOT_TOKEN = 'pat-na1-11111111-2222-3333-4444-555555555555';
const SF_CLIENT_ID = '3MVG9parley.test.client';
const SF_CLIENT_SECRET = 'parley-sf-client-secret-0123456789';
const SF_REFRESH_TOKEN = '5Aep861parley.refresh.token';

let hubspot: HubSpotPeer;
let salesforce: SalesforcePeer;
let cs: CampaignStack;
/** Workflow runs kept as replay histories (RECORD_HISTORIES=1 writes them to test/histories). */
const toRecord: [string, string][] = [];

beforeAll(async () => {
  hubspot = new HubSpotPeer({ accessToken: HUBSPOT_TOKEN });
  salesforce = new SalesforcePeer({
    clientId: SF_CLIENT_ID,
    clientSecret: SF_CLIENT_SECRET,
    refreshToken: SF_REFRESH_TOKEN,
  });
  const [hubspotUrl, salesforceUrl] = await Promise.all([hubspot.start(), salesforce.start()]);
  cs = await startCampaignStack({
    peer: { fastMedia: true },
    env: {
      HUBSPOT_API_BASE_URL: hubspotUrl,
      SALESFORCE_LOGIN_URL: salesforceUrl,
      SALESFORCE_CLIENT_ID: SF_CLIENT_ID,
      SALESFORCE_CLIENT_SECRET: SF_CLIENT_SECRET,
    },
  });
});

afterAll(async () => {
  await cs?.close();
  await Promise.all([hubspot?.stop(), salesforce?.stop()]);
});

const api = () => cs.api();
const put = (path: string, body: object) =>
  request(cs.stack.app).put(path).set(bearer(cs.tenant.token)).send(body);

/** A finished outbound phone call of the tenant, written as the call workflow leaves it. */
async function finishedCall(phone: string, status = 'completed', disposition = 'reminded'): Promise<string> {
  const callId = randomUUID();
  await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
    em.execute(
      `insert into calls (id, tenant_id, agent_id, direction, channel, from_number, to_number, workflow_id,
         status, disposition, started_at, answered_at, ended_at, duration_seconds, summary)
       values (?, ?, ?, 'outbound', 'voice', ?, ?, ?, ?, ?, now() - interval '95 seconds',
         now() - interval '90 seconds', now(), 90, 'Confirmed the appointment for Tuesday.')`,
      [callId, cs.tenant.tenantId, cs.agentId, cs.callerNumber, phone, `call:${callId}`, status, disposition],
    ),
  );
  return callId;
}

async function runSync(
  callId: string,
  provider: 'hubspot' | 'salesforce',
  options: { writeTimeoutSeconds?: number } = {},
): Promise<CrmSyncResult> {
  return cs.stack.temporal.workflow.execute(CRM_SYNC_WORKFLOW, {
    workflowId: crmSyncWorkflowId(callId, provider),
    taskQueue: CRM_QUEUE,
    args: [{ tenantId: cs.tenant.tenantId, callId, provider, ...options }],
  });
}

describe('integrations API', () => {
  it('refuses credentials the CRM rejects and stores nothing', async () => {
    const bad = await put('/v1/integrations/hubspot', { accessToken: 'pat-na1-wrong-token-000000' });
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('CRM_CREDENTIALS_REJECTED');
    expect(JSON.stringify(bad.body)).not.toContain('pat-na1-wrong-token');
    const list = await api().get('/v1/integrations');
    expect(list.body.data).toEqual([]);

    const badUrl = await put('/v1/integrations/salesforce', {
      instanceUrl: 'http://example.com',
      accessToken: 'x'.repeat(20),
    });
    expect(badUrl.status).toBe(400);
    expect(badUrl.body.error.details[0].path).toBe('body.instanceUrl');
  });

  it('connects HubSpot and Salesforce: tested first, sealed at rest, never returned', async () => {
    const hs = await put('/v1/integrations/hubspot', { accessToken: HUBSPOT_TOKEN });
    expect(hs.status).toBe(200);
    expect(hs.body).toMatchObject({
      provider: 'hubspot',
      status: 'connected',
      account: expect.stringContaining(String(hubspot.portalId)),
    });
    // The connection test created the unique property that makes call logging idempotent.
    expect(hubspot.callPropertyDefinitions.find((p) => p.name === 'parley_call_id')).toMatchObject({
      hasUniqueValue: true,
    });

    const sf = await put('/v1/integrations/salesforce', {
      instanceUrl: salesforce.url,
      accessToken: salesforce.accessToken,
      refreshToken: SF_REFRESH_TOKEN,
    });
    expect(sf.status).toBe(200);
    expect(sf.body).toMatchObject({
      provider: 'salesforce',
      status: 'connected',
      account: expect.stringContaining(salesforce.orgName),
    });

    const listed = await api().get('/v1/integrations');
    expect(listed.body.data.map((i: { provider: string }) => i.provider)).toEqual(['hubspot', 'salesforce']);
    const everything = JSON.stringify([hs.body, sf.body, listed.body]);
    for (const secret of [HUBSPOT_TOKEN, salesforce.accessToken, SF_REFRESH_TOKEN])
      expect(everything).not.toContain(secret);

    const rows = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
      em.execute<{ provider: string; credentials_ciphertext: string; credentials_key_id: string }[]>(
        `select provider, credentials_ciphertext, credentials_key_id from integrations order by provider`,
      ),
    );
    for (const row of rows) {
      expect(row.credentials_ciphertext).not.toContain(HUBSPOT_TOKEN);
      expect(row.credentials_ciphertext).toMatch(/^v1\./);
      expect(row.credentials_key_id).toBe(cs.stack.config.ENCRYPTION_KEYS[0]!.id);
    }
    const opened = JSON.parse(openSecret(cs.stack.config.ENCRYPTION_KEYS, rows[0]!.credentials_ciphertext));
    expect(opened).toEqual({ provider: 'hubspot', accessToken: HUBSPOT_TOKEN });

    const tested = await api().post('/v1/integrations/hubspot/test');
    expect(tested.body).toMatchObject({ ok: true, error: null });
    // A test is an admin action too: it can change the integration's status and stored session.
    const audit = await api().get('/v1/audit-log?action=integration.tested');
    expect(audit.body.data[0]).toMatchObject({
      action: 'integration.tested',
      target: { type: 'integration', id: 'hubspot' },
      after: { status: 'connected', error: null, credentialsRenewed: false },
    });
  });
});

describe('after a call', () => {
  it('a campaign’s finished calls appear once in HubSpot and once in Salesforce, with the contact found or created', async () => {
    const answered = testNumber(628, 7101);
    const unanswered = testNumber(628, 7102);
    const known = hubspot.addContact({ phone: answered, firstname: 'Ada', lastname: 'Lovelace' });
    cs.twilio.script(answered, { outcome: 'answer' });
    cs.twilio.script(unanswered, { outcome: 'no-answer', ringMs: 100 });
    const campaign = await createCampaign(cs, {
      name: 'CRM sync',
      contacts: [
        { phone: answered, name: 'Ada Lovelace' },
        { phone: unanswered, name: 'Grace Hopper' },
      ],
      settings: {
        windows: ALWAYS_OPEN,
        retry: { 'no-answer': { maxAttempts: 1, backoffSeconds: 1, backoffMultiplier: 1 } },
      },
    });
    await launchCampaign(cs, campaign.id);
    await waitForCampaignEnd(cs, campaign.id, 60_000);

    const calls = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
      em.execute<{ id: string; to_number: string; status: string }[]>(
        `select id, to_number, status from calls where campaign_id = ?`,
        [campaign.id],
      ),
    );
    expect(calls).toHaveLength(2);
    await waitUntil(
      'both calls synced to both CRMs',
      async () => {
        const [n] = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
          em.execute<{ n: number }[]>(
            `select count(*)::int as n from crm_sync_records where call_id = any(?::uuid[]) and status = 'synced'`,
            [`{${calls.map((c) => c.id).join(',')}}`],
          ),
        );
        return (n?.n ?? 0) === 4;
      },
      30_000,
    ).catch(async (err: unknown) => {
      const records = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
        em.execute(`select call_id, provider, status, error from crm_sync_records`),
      );
      const runs: string[] = [];
      for await (const w of cs.stack.temporal.workflow.list({ query: `WorkflowType = 'crmSyncWorkflow'` }))
        runs.push(
          `${w.workflowId} ${w.status.name} ${JSON.stringify(
            (await cs.stack.temporal.workflow.getHandle(w.workflowId).describe()).raw.pendingActivities?.map(
              (a) => [a.activityType?.name, a.attempt, a.lastFailure?.message],
            ),
          )}`,
        );
      throw new Error(`${(err as Error).message}: ${JSON.stringify(records)} ${runs.join('; ')}`);
    });
    toRecord.push([
      'call-outbound-crm-sync.json',
      callWorkflowId(calls.find((c) => c.to_number === answered)!.id),
    ]);
    for (const call of calls) {
      const inHubSpot = hubspot.calls.filter((c) => c.properties.parley_call_id === call.id);
      expect(inHubSpot).toHaveLength(1);
      const tasks = salesforce.tasks.filter((t) => t.Parley_Call_Id__c === call.id);
      expect(tasks).toHaveLength(1);
      expect(tasks[0]).toMatchObject({ TaskSubtype: 'Call', CallType: 'Outbound', Status: 'Completed' });
      if (call.to_number === answered) {
        expect(inHubSpot[0]!.properties.hs_call_status).toBe('COMPLETED');
        // The contact HubSpot already had is the one the call is associated with.
        expect(
          hubspot.associations.filter((a) => a.callId === inHubSpot[0]!.id).map((a) => a.contactId),
        ).toEqual([known.id]);
      } else {
        expect(inHubSpot[0]!.properties.hs_call_status).toBe('NO_ANSWER');
        expect(inHubSpot[0]!.properties.hs_call_duration).toBe('0');
      }
      const detail = await api().get(`/v1/calls/${call.id}`);
      expect(detail.body.crmSyncStatus).toBe('synced');
      expect(
        detail.body.crmSync.map((s: { provider: string; status: string }) => [s.provider, s.status]),
      ).toEqual([
        ['hubspot', 'synced'],
        ['salesforce', 'synced'],
      ]);
    }
    // Salesforce had nobody with these numbers: the tenant's default creates them, named from Parley's contact.
    const grace = salesforce.contacts.find((c) => c.Phone === unanswered);
    expect(grace).toMatchObject({ FirstName: 'Grace', LastName: 'Hopper' });
  });
});

describe('crmSyncWorkflow under faults', () => {
  it('a HubSpot write that times out after HubSpot stored it is retried and still logs the call once', async () => {
    const callId = await finishedCall(testNumber(628, 7201));
    hubspot.stallAfterWrite({ method: 'POST', path: /\/crm\/v3\/objects\/calls\/batch\/upsert$/ }, 4_000);
    const result = await runSync(callId, 'hubspot', { writeTimeoutSeconds: 2 });
    expect(result.status).toBe('synced');
    toRecord.push(['crm-sync-retried-write.json', crmSyncWorkflowId(callId, 'hubspot')]);
    expect(
      hubspot
        .requestsTo(/\/crm\/v3\/objects\/calls\/batch\/upsert$/, 'POST')
        .filter((r) => JSON.stringify(r.body).includes(callId)),
    ).toHaveLength(2);
    const records = hubspot.calls.filter((c) => c.properties.parley_call_id === callId);
    expect(records).toHaveLength(1);
    expect(records[0]!.id).toBe(result.externalId);
    expect(records[0]!.properties.hs_call_duration).toBe('90000');
  });

  it('a Salesforce write that times out after Salesforce stored it is retried and still logs one Task', async () => {
    const callId = await finishedCall(testNumber(628, 7202));
    salesforce.stallAfterWrite({ method: 'PATCH', path: /\/sobjects\/Task\/Parley_Call_Id__c\// }, 4_000);
    const result = await runSync(callId, 'salesforce', { writeTimeoutSeconds: 2 });
    expect(result.status).toBe('synced');
    expect(
      salesforce
        .requestsTo({ method: 'PATCH', path: /\/sobjects\/Task\/Parley_Call_Id__c\// })
        .filter((r) => r.path.includes(callId)),
    ).toHaveLength(1);
    const tasks = salesforce.tasks.filter((t) => t.Parley_Call_Id__c === callId);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!.Id).toBe(result.externalId);
    expect(tasks[0]!.CallDurationInSeconds).toBe(90);
  });

  it('a 429 storm delays the sync as HubSpot asks, then it completes', async () => {
    const callId = await finishedCall(testNumber(628, 7203));
    const before = hubspot.requests.length;
    hubspot.rateLimitNext(4, 'TEN_SECONDLY_ROLLING', 1);
    const started = Date.now();
    const result = await runSync(callId, 'hubspot');
    const elapsed = Date.now() - started;
    expect(result.status).toBe('synced');
    const statuses = hubspot.requests.slice(before).map((r) => r.status);
    expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    // Four waits of Retry-After: 1 s each.
    expect(elapsed).toBeGreaterThanOrEqual(4_000);
    expect(hubspot.calls.filter((c) => c.properties.parley_call_id === callId)).toHaveLength(1);
  });

  it('Salesforce 429s with Retry-After delay the sync, then it completes', async () => {
    const callId = await finishedCall(testNumber(628, 7204));
    salesforce.failNext(
      { path: /\/query$/ },
      {
        status: 429,
        headers: { 'Retry-After': '1' },
        body: [{ message: 'Too many requests', errorCode: 'REQUEST_LIMIT_EXCEEDED' }],
      },
      2,
    );
    const started = Date.now();
    const result = await runSync(callId, 'salesforce');
    expect(result.status).toBe('synced');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(salesforce.tasks.filter((t) => t.Parley_Call_Id__c === callId)).toHaveLength(1);
  });

  it('a 400 marks the sync failed with HubSpot’s message, shown in the calls API and the failures list', async () => {
    const callId = await finishedCall(testNumber(628, 7205));
    const message = 'Property values were not valid: hs_call_body is too long';
    hubspot.failNext(
      { method: 'POST', path: /\/crm\/v3\/objects\/calls\/batch\/upsert$/ },
      {
        status: 400,
        body: { status: 'error', message, correlationId: randomUUID(), category: 'VALIDATION_ERROR' },
      },
    );
    const result = await runSync(callId, 'hubspot');
    expect(result).toMatchObject({ status: 'failed' });
    toRecord.push(['crm-sync-refused.json', crmSyncWorkflowId(callId, 'hubspot')]);
    expect(result.error).toContain(message);
    expect(hubspot.calls.filter((c) => c.properties.parley_call_id === callId)).toHaveLength(0);
    const detail = await api().get(`/v1/calls/${callId}`);
    expect(detail.body.crmSyncStatus).toBe('failed');
    expect(detail.body.crmSync[0]).toMatchObject({
      provider: 'hubspot',
      status: 'failed',
      errorCode: 'CrmValidationError',
    });
    expect(detail.body.crmSync[0].error).toContain(message);
    const failures = await api().get('/v1/integrations/sync-failures');
    expect(failures.body.data.find((f: { callId: string }) => f.callId === callId)).toMatchObject({
      provider: 'hubspot',
    });
  });

  it('a 401 on Salesforce refreshes the token once, succeeds, and keeps the new token sealed', async () => {
    const callId = await finishedCall(testNumber(628, 7206));
    salesforce.expireAccessToken();
    const refreshesBefore = salesforce.tokenRefreshes;
    const result = await runSync(callId, 'salesforce');
    expect(result.status).toBe('synced');
    expect(salesforce.tokenRefreshes - refreshesBefore).toBe(1);
    expect(salesforce.tasks.filter((t) => t.Parley_Call_Id__c === callId)).toHaveLength(1);
    const [row] = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
      em.execute<{ credentials_ciphertext: string }[]>(
        `select credentials_ciphertext from integrations where provider = 'salesforce'`,
      ),
    );
    const stored = JSON.parse(openSecret(cs.stack.config.ENCRYPTION_KEYS, row!.credentials_ciphertext)) as {
      accessToken: string;
    };
    expect(stored.accessToken).toBe(salesforce.accessToken);
    // The next sync uses the stored token: no second refresh.
    const next = await runSync(await finishedCall(testNumber(628, 7207)), 'salesforce');
    expect(next.status).toBe('synced');
    expect(salesforce.tokenRefreshes - refreshesBefore).toBe(1);
  });

  it('a rotated refresh token is stored, so the next expiry still refreshes', async () => {
    salesforce.rotateRefreshTokens = true;
    try {
      const first = salesforce.refreshToken;
      salesforce.expireAccessToken();
      expect((await runSync(await finishedCall(testNumber(628, 7209)), 'salesforce')).status).toBe('synced');
      expect(salesforce.refreshToken).not.toBe(first);
      const [row] = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
        em.execute<{ credentials_ciphertext: string }[]>(
          `select credentials_ciphertext from integrations where provider = 'salesforce'`,
        ),
      );
      const stored = JSON.parse(openSecret(cs.stack.config.ENCRYPTION_KEYS, row!.credentials_ciphertext)) as {
        refreshToken: string;
      };
      expect(stored.refreshToken).toBe(salesforce.refreshToken);
      // The retired one would be refused: the second expiry only works with the stored new one.
      salesforce.expireAccessToken();
      expect((await runSync(await finishedCall(testNumber(628, 7210)), 'salesforce')).status).toBe('synced');
    } finally {
      salesforce.rotateRefreshTokens = false;
    }
  });

  it('a refused refresh token fails the sync with CrmAuthError and marks the integration for reconnection', async () => {
    const callId = await finishedCall(testNumber(628, 7208));
    salesforce.expireAccessToken();
    salesforce.revokeRefreshToken();
    const result = await runSync(callId, 'salesforce');
    expect(result.status).toBe('failed');
    const listed = await api().get('/v1/integrations');
    const sf = listed.body.data.find((i: { provider: string }) => i.provider === 'salesforce');
    expect(sf.status).toBe('error');
    const detail = await api().get(`/v1/calls/${callId}`);
    expect(detail.body.crmSync[0]).toMatchObject({
      provider: 'salesforce',
      status: 'failed',
      errorCode: 'CrmAuthError',
    });
  });
});

describe('crmImportWorkflow', () => {
  async function waitForImport(id: string) {
    let last: { status: string } | undefined;
    await waitUntil(
      `import ${id} to end`,
      async () => {
        last = (await api().get(`/v1/integrations/imports/${id}`)).body as { status: string };
        return last.status !== 'running';
      },
      30_000,
      100,
    );
    return last as {
      status: string;
      pages: number;
      imported: number;
      duplicates: number;
      invalid: number;
      error: string | null;
      contactListId: string;
    };
  }

  async function listPhones(contactListId: string): Promise<string[]> {
    const rows = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
      em.execute<{ phone_e164: string }[]>(
        `select c.phone_e164 from contact_list_members m join contacts c on c.id = m.contact_id
          where m.list_id = ? order by c.phone_e164`,
        [contactListId],
      ),
    );
    return rows.map((r) => r.phone_e164);
  }

  it('pulls a HubSpot list page by page into a contact list: invalid numbers counted, existing contacts reused', async () => {
    const members = [
      hubspot.addContact({ phone: testNumber(628, 7301), firstname: 'Ida', lastname: 'One' }),
      hubspot.addContact({ mobilephone: testNumber(628, 7302), firstname: 'Ivo', lastname: 'Two' }),
      hubspot.addContact({ phone: 'not a number', firstname: 'Bad' }),
      // Parley already has this one (a campaign above called it): reused, counted as a duplicate.
      hubspot.addContact({ phone: testNumber(628, 7101), firstname: 'Ada' }),
      hubspot.addContact({ phone: testNumber(628, 7303), email: 'iris@import.example' }),
    ];
    hubspot.addList(
      '4242',
      members.map((m) => m.id),
    );

    const wrong = await api().post('/v1/integrations/hubspot/imports', {
      source: { where: "LastName = 'x'" },
    });
    expect(wrong.status).toBe(422);
    expect(wrong.body.error.code).toBe('CRM_SOURCE_MISMATCH');

    const started = await api().post('/v1/integrations/hubspot/imports', {
      source: { listId: '4242' },
      contactListName: 'From HubSpot',
      pageSize: 2,
    });
    expect(started.status).toBe(202);
    const done = await waitForImport(started.body.id);
    expect(done).toMatchObject({
      status: 'completed',
      pages: 3,
      imported: 3,
      duplicates: 1,
      invalid: 1,
      error: null,
    });
    toRecord.push(['crm-import-hubspot-list.json', crmImportWorkflowId(started.body.id)]);
    expect(await listPhones(done.contactListId)).toEqual(
      [testNumber(628, 7101), testNumber(628, 7301), testNumber(628, 7302), testNumber(628, 7303)].sort(),
    );
    // Three pages of memberships were read, each once.
    expect(hubspot.requestsTo(/\/crm\/v3\/lists\/4242\/memberships$/, 'GET')).toHaveLength(3);
    const [ivo] = await withTenant(cs.stack.orm, cs.tenant.tenantId, (em) =>
      em.execute<{ name: string; attributes: Record<string, unknown> }[]>(
        `select name, attributes from contacts where phone_e164 = ?`,
        [testNumber(628, 7302)],
      ),
    );
    expect(ivo).toMatchObject({ name: 'Ivo Two', attributes: { hubspotId: members[1]!.id } });
  });

  it('pulls Salesforce Contacts matching a SOQL condition, and a refused filter fails the import with the reason', async () => {
    // The tests above revoked the app; the admin connects Salesforce again.
    const reconnected = await put('/v1/integrations/salesforce', {
      instanceUrl: salesforce.url,
      accessToken: salesforce.reauthorize(),
      refreshToken: salesforce.refreshToken,
    });
    expect(reconnected.body.status).toBe('connected');
    for (let i = 0; i < 5; i++) {
      salesforce.addContact({
        FirstName: `Sam${i}`,
        LastName: 'Import',
        Phone: testNumber(628, 7400 + i),
        Email: i < 4 ? `sam${i}@import.example` : `sam${i}@elsewhere.example`,
      });
    }
    const started = await api().post('/v1/integrations/salesforce/imports', {
      source: { where: "Email LIKE '%@import.example'" },
      pageSize: 3,
    });
    expect(started.status).toBe(202);
    const done = await waitForImport(started.body.id);
    expect(done).toMatchObject({ status: 'completed', imported: 4, invalid: 0, error: null });
    expect(done.pages).toBe(2);
    expect(await listPhones(done.contactListId)).toEqual([0, 1, 2, 3].map((i) => testNumber(628, 7400 + i)));

    const refused = await api().post('/v1/integrations/salesforce/imports', {
      source: { where: "LastName = 'Import'; DELETE" },
    });
    expect(refused.status).toBe(202);
    const failed = await waitForImport(refused.body.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/;/);
  });
});

it("replays the recorded CRM workflow histories against today's code", async () => {
  expect(toRecord.map(([file]) => file).sort()).toEqual([
    'call-outbound-crm-sync.json',
    'crm-import-hubspot-list.json',
    'crm-sync-refused.json',
    'crm-sync-retried-write.json',
  ]);
  for (const [file, workflowId] of toRecord) {
    const history = await cs.stack.temporal.workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
    if (process.env.RECORD_HISTORIES)
      writeFileSync(path.join(__dirname, 'histories', file), historyToJSON(history));
  }
});
