/**
 * The audit log read API and GDPR export/erase of one contact, on the real stack: admin actions
 * leave entries with before/after that owners and admins can filter and page through (tenant-scoped,
 * viewers refused); a contact's export holds its calls and transcripts; erase deletes or redacts
 * every table's personal data and the recording file, keeps call rows and usage for billing,
 * touches no other contact, writes an audit entry, and answers 404 the second time or for another
 * tenant's contact.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { DEMO_BOOKING_AGENT } from '../db/seed/demo-agents';
import { ERASED } from '../api/services/privacy';
import { HubSpotPeer } from './peers/hubspot-peer';
import {
  bearer,
  ownerClient,
  signUpTenant,
  startStack,
  type SignedUp,
  type TestStack,
} from './support/stack';

const HUBSPOT_TOKEN = 'pat-na1-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';

let stack: TestStack;
let hubspot: HubSpotPeer;
let tenant: SignedUp;
let other: SignedUp;
let viewerKey: string;

beforeAll(async () => {
  hubspot = new HubSpotPeer({ accessToken: HUBSPOT_TOKEN });
  const hubspotUrl = await hubspot.start();
  stack = await startStack({ env: { HUBSPOT_API_BASE_URL: hubspotUrl } });
  tenant = await signUpTenant(stack.app, 'Audit Co');
  other = await signUpTenant(stack.app, 'Other Audit Co');
  const key = await request(stack.app)
    .post('/v1/api-keys')
    .set(bearer(tenant.token))
    .send({ name: 'read only', role: 'viewer' });
  expect(key.status).toBe(201);
  viewerKey = key.body.key as string;
});
afterAll(async () => {
  await stack?.close();
  await hubspot?.stop();
});

const auditLog = (token: string, query: Record<string, string | number> = {}) =>
  request(stack.app).get('/v1/audit-log').query(query).set(bearer(token));

interface Entry {
  id: string;
  at: string;
  actor: { type: string; id: string | null; email: string | null; name: string | null };
  action: string;
  target: { type: string; id: string | null };
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  ip: string | null;
}

describe('audit log', () => {
  let userId: string;
  let agentId: string;

  beforeAll(async () => {
    const created = await request(stack.app)
      .post('/v1/users')
      .set(bearer(tenant.token))
      .send({
        email: `ann.${randomUUID()}@example.test`,
        name: 'Ann',
        role: 'designer',
        password: 'long enough pw',
      });
    expect(created.status).toBe(201);
    userId = created.body.id;
    const updated = await request(stack.app)
      .patch(`/v1/users/${userId}`)
      .set(bearer(tenant.token))
      .send({ role: 'admin' });
    expect(updated.status).toBe(200);
    const agent = await request(stack.app)
      .post('/v1/agents')
      .set(bearer(tenant.token))
      .send({ name: 'Booking', description: 'Books', definition: structuredClone(DEMO_BOOKING_AGENT) });
    expect(agent.status).toBe(201);
    agentId = agent.body.id;
    const published = await request(stack.app)
      .post(`/v1/agents/${agentId}/publish`)
      .set(bearer(tenant.token))
      .send({ note: 'first' });
    expect(published.status).toBe(201);
    const connected = await request(stack.app)
      .put('/v1/integrations/hubspot')
      .set(bearer(tenant.token))
      .send({ accessToken: HUBSPOT_TOKEN });
    expect(connected.status).toBe(200);
  });

  it('records admin actions with actor, before and after, newest first', async () => {
    const res = await auditLog(tenant.token, { limit: 200 });
    expect(res.status).toBe(200);
    const entries = res.body.data as Entry[];
    const actions = entries.map((e) => e.action);
    for (const a of [
      'user.created',
      'user.updated',
      'agent.created',
      'agent.published',
      'integration.connected',
    ]) {
      expect(actions).toContain(a);
    }
    const times = entries.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    const updated = entries.find((e) => e.action === 'user.updated')!;
    expect(updated.target).toEqual({ type: 'user', id: userId });
    expect(updated.before).toMatchObject({ role: 'designer' });
    expect(updated.after).toMatchObject({ role: 'admin' });
    expect(updated.actor).toMatchObject({
      type: 'user',
      id: tenant.userId,
      email: tenant.email,
      name: 'Owner',
    });

    const published = entries.find((e) => e.action === 'agent.published')!;
    expect(published.target).toEqual({ type: 'agent', id: agentId });
    expect(published.after).toMatchObject({ version: 1, note: 'first' });

    const connected = entries.find((e) => e.action === 'integration.connected')!;
    expect(connected.after).toMatchObject({ status: 'connected' });
    // The credentials never reach the audit log.
    expect(JSON.stringify(res.body)).not.toContain(HUBSPOT_TOKEN);
  });

  it('filters by action, actor, target and time, and pages with a cursor', async () => {
    const byAction = await auditLog(tenant.token, { action: 'user.updated' });
    expect(byAction.body.data.map((e: Entry) => e.action)).toEqual(['user.updated']);

    const byTarget = await auditLog(tenant.token, { targetType: 'agent', targetId: agentId });
    expect(byTarget.body.data.map((e: Entry) => e.action)).toEqual(['agent.published', 'agent.created']);

    const byActor = await auditLog(tenant.token, { actorId: tenant.userId, limit: 200 });
    expect(byActor.body.data.length).toBeGreaterThanOrEqual(5);
    expect(byActor.body.data.every((e: Entry) => e.actor.id === tenant.userId)).toBe(true);
    const none = await auditLog(tenant.token, { actorId: randomUUID() });
    expect(none.body.data).toEqual([]);

    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await auditLog(tenant.token, { from: future })).body.data).toEqual([]);
    const all = (await auditLog(tenant.token, { limit: 200 })).body.data as Entry[];
    expect((await auditLog(tenant.token, { to: future, limit: 200 })).body.data).toHaveLength(all.length);
    const oldest = all[all.length - 1]!;
    const upToOldest = await auditLog(tenant.token, {
      to: new Date(Date.parse(oldest.at) + 1).toISOString(),
    });
    expect(upToOldest.body.data.map((e: Entry) => e.id)).toContain(oldest.id);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await auditLog(tenant.token, { limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((e: Entry) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.map((e) => e.id));

    const bad = await auditLog(tenant.token, { cursor: 'nonsense' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
  });

  it('refuses a viewer, and shows another tenant none of these entries', async () => {
    const viewer = await auditLog(viewerKey);
    expect([viewer.status, viewer.body.error.code]).toEqual([403, 'INSUFFICIENT_ROLE']);

    const theirs = await auditLog(other.token, { limit: 200 });
    expect(theirs.status).toBe(200);
    const ids = new Set((await auditLog(tenant.token, { limit: 200 })).body.data.map((e: Entry) => e.id));
    expect(theirs.body.data.some((e: Entry) => ids.has(e.id))).toBe(false);
    expect((await auditLog(other.token, { targetId: agentId })).body.data).toEqual([]);
  });
});

describe('GDPR export and erase', () => {
  const ADA = '+14155550101';
  const BOB = '+14155550102';
  const TENANT_NUMBER = '+14155550199';
  let ada: string;
  let bob: string;
  let listId: string;
  let campaignId: string;
  let adaCalls: string[];
  let bobCall: string;
  let recording: string;

  async function contact(phone: string, name: string): Promise<string> {
    const res = await request(stack.app)
      .post('/v1/contacts')
      .set(bearer(tenant.token))
      .send({ phone, name, email: `${name.toLowerCase()}@example.test`, attributes: { plan: 'gold' } });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  beforeAll(async () => {
    ada = await contact(ADA, 'Ada');
    bob = await contact(BOB, 'Bob');
    const list = await request(stack.app)
      .post('/v1/contact-lists')
      .set(bearer(tenant.token))
      .send({ name: 'VIP' });
    listId = list.body.id;
    const members = await request(stack.app)
      .post(`/v1/contact-lists/${listId}/members`)
      .set(bearer(tenant.token))
      .send({ contactIds: [ada, bob] });
    expect(members.status).toBeLessThan(300);

    const db = await ownerClient(stack.config);
    try {
      const agent = await db.query<{ id: string }>('select id from agents where tenant_id = $1 limit 1', [
        tenant.tenantId,
      ]);
      const agentId = agent.rows[0]!.id;
      campaignId = randomUUID();
      await db.query(
        `insert into campaigns (id, tenant_id, name, agent_id, status) values ($1, $2, 'Spring', $3, 'completed')`,
        [campaignId, tenant.tenantId, agentId],
      );
      await db.query(
        `insert into campaign_contacts (tenant_id, campaign_id, contact_id, status, attempts) values ($1, $2, $3, 'completed', 1), ($1, $2, $4, 'completed', 1)`,
        [tenant.tenantId, campaignId, ada, bob],
      );
      const call = async (opts: {
        contactId: string | null;
        direction: 'inbound' | 'outbound';
        from: string;
        to: string;
        recordingPath?: string;
      }): Promise<string> => {
        const id = randomUUID();
        await db.query(
          `insert into calls (id, tenant_id, agent_id, campaign_id, contact_id, direction, channel, from_number, to_number,
                              workflow_id, status, duration_seconds, summary, analysis, slots, recording_path, recording_seconds)
           values ($1, $2, $3, $4, $5, $6, 'voice', $7, $8, $9, 'completed', 42, 'Talked about the booking',
                   '{"sentiment":"positive","email":"secret@example.test"}', '{"name":"Ada Byron","date":"2026-12-01"}', $10, 41.5)`,
          [
            id,
            tenant.tenantId,
            agentId,
            opts.direction === 'outbound' ? campaignId : null,
            opts.contactId,
            opts.direction,
            opts.from,
            opts.to,
            `call:test:${id}`,
            opts.recordingPath ?? null,
          ],
        );
        await db.query(
          `insert into call_turns (tenant_id, call_id, seq, role, text, heard_text) values
             ($1, $2, 1, 'agent', 'Hello, who is calling?', null),
             ($1, $2, 2, 'caller', 'This is Ada Byron, my card is 4111', null),
             ($1, $2, 3, 'agent', 'Thanks Ada, I will book you in', 'Thanks Ada')`,
          [tenant.tenantId, id],
        );
        await db.query(
          `insert into usage_records (tenant_id, call_id, kind, quantity, period_start) values ($1, $2, 'call_seconds', 42, date_trunc('month', now()))`,
          [tenant.tenantId, id],
        );
        return id;
      };
      const outboundId = randomUUID();
      recording = path.join(stack.config.RECORDINGS_DIR, tenant.tenantId, `${outboundId}.wav`);
      await mkdir(path.dirname(recording), { recursive: true });
      await writeFile(recording, Buffer.from('RIFF....WAVEfake'));
      // An outbound campaign call linked to Ada, and an inbound call from her number, not linked.
      const outbound = await call({ contactId: ada, direction: 'outbound', from: TENANT_NUMBER, to: ADA });
      await db.query('update calls set recording_path = $1 where id = $2', [
        path.relative(stack.config.RECORDINGS_DIR, recording),
        outbound,
      ]);
      const inbound = await call({ contactId: null, direction: 'inbound', from: ADA, to: TENANT_NUMBER });
      adaCalls = [outbound, inbound];
      bobCall = await call({ contactId: bob, direction: 'outbound', from: TENANT_NUMBER, to: BOB });
      await db.query(
        `insert into campaign_attempts (tenant_id, campaign_id, contact_id, attempt, attempt_key, call_id, outcome)
         values ($1, $2, $3, 1, $4, $5, 'completed')`,
        [tenant.tenantId, campaignId, ada, `campaign:${campaignId}:contact:${ada}:attempt:1`, outbound],
      );
      await db.query(
        `insert into crm_sync_records (tenant_id, call_id, provider, status, external_id, contact_external_id, error)
         values ($1, $2, 'hubspot', 'synced', 'hs-call-1', 'hs-contact-1', 'Ada Byron already exists')`,
        [tenant.tenantId, outbound],
      );
    } finally {
      await db.end();
    }
  });

  it('exports one document with the contact, its lists, campaign rows, calls with turns, CRM records and recordings', async () => {
    const res = await request(stack.app).get(`/v1/contacts/${ada}/export`).set(bearer(tenant.token));
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.contact).toMatchObject({ id: ada, phone: ADA, name: 'Ada', email: 'ada@example.test' });
    expect(doc.lists).toEqual([expect.objectContaining({ id: listId, name: 'VIP' })]);
    expect(doc.campaignContacts).toEqual([expect.objectContaining({ campaignId, campaignName: 'Spring' })]);
    expect(doc.campaignAttempts).toEqual([expect.objectContaining({ campaignId, callId: adaCalls[0] })]);
    expect(doc.calls.map((c: { id: string }) => c.id).sort()).toEqual([...adaCalls].sort());
    const outbound = doc.calls.find((c: { id: string }) => c.id === adaCalls[0]);
    expect(outbound.transcript.map((t: { text: string }) => t.text)).toEqual([
      'Hello, who is calling?',
      'This is Ada Byron, my card is 4111',
      'Thanks Ada, I will book you in',
    ]);
    expect(outbound.slots).toEqual({ name: 'Ada Byron', date: '2026-12-01' });
    expect(outbound.analysis).toMatchObject({ sentiment: 'positive' });
    expect(outbound.recording).toEqual({ url: `/v1/calls/${adaCalls[0]}/recording`, seconds: 41.5 });
    expect(outbound.crmSync).toEqual([
      expect.objectContaining({
        provider: 'hubspot',
        externalId: 'hs-call-1',
        contactExternalId: 'hs-contact-1',
      }),
    ]);
    expect(JSON.stringify(doc)).not.toContain(bobCall);

    const audit = await auditLog(tenant.token, { action: 'contact.exported', targetId: ada });
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0].after).toMatchObject({ calls: 2, turns: 6, lists: 1 });
    expect(JSON.stringify(audit.body.data[0])).not.toContain('Ada Byron');

    const viewer = await request(stack.app).get(`/v1/contacts/${ada}/export`).set(bearer(viewerKey));
    expect(viewer.status).toBe(403);
  });

  it("answers 404 for another tenant's contact and changes nothing", async () => {
    const exported = await request(stack.app).get(`/v1/contacts/${ada}/export`).set(bearer(other.token));
    expect([exported.status, exported.body.error.code]).toEqual([404, 'CONTACT_NOT_FOUND']);
    const erased = await request(stack.app)
      .delete(`/v1/contacts/${ada}/personal-data`)
      .set(bearer(other.token));
    expect([erased.status, erased.body.error.code]).toEqual([404, 'CONTACT_NOT_FOUND']);
    const db = await ownerClient(stack.config);
    try {
      const row = await db.query('select name from contacts where id = $1', [ada]);
      expect(row.rows).toEqual([{ name: 'Ada' }]);
      const turns = await db.query(
        'select count(*)::int as n from call_turns where text <> $1 and call_id = any($2)',
        [ERASED, adaCalls],
      );
      expect(turns.rows[0].n).toBe(6);
    } finally {
      await db.end();
    }
    expect(existsSync(recording)).toBe(true);
  });

  it("erases the contact's data everywhere, keeps calls and usage for billing, and leaves others untouched", async () => {
    const db = await ownerClient(stack.config);
    try {
      const usageBefore = await db.query(
        'select call_id, kind, quantity from usage_records where tenant_id = $1 order by call_id',
        [tenant.tenantId],
      );

      const res = await request(stack.app)
        .delete(`/v1/contacts/${ada}/personal-data`)
        .set(bearer(tenant.token));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        erased: true,
        counts: {
          lists: 1,
          campaignContacts: 1,
          campaignAttempts: 1,
          calls: 2,
          turns: 6,
          recordingFilesDeleted: 1,
        },
        crmRecords: [{ provider: 'hubspot', externalId: 'hs-call-1', contactExternalId: 'hs-contact-1' }],
      });

      expect((await db.query('select 1 from contacts where id = $1', [ada])).rowCount).toBe(0);
      expect(
        (await db.query('select 1 from contact_list_members where contact_id = $1', [ada])).rowCount,
      ).toBe(0);
      expect((await db.query('select 1 from campaign_contacts where contact_id = $1', [ada])).rowCount).toBe(
        0,
      );
      expect((await db.query('select 1 from campaign_attempts where contact_id = $1', [ada])).rowCount).toBe(
        0,
      );

      const calls = await db.query(
        `select id, from_number, to_number, contact_id, slots, summary, analysis, recording_path, duration_seconds, status
           from calls where id = any($1) order by direction`,
        [adaCalls],
      );
      expect(calls.rows).toHaveLength(2);
      for (const c of calls.rows) {
        expect([c.from_number, c.to_number]).toContain(ERASED);
        expect([c.from_number, c.to_number]).toContain(TENANT_NUMBER);
        expect(c).toMatchObject({
          contact_id: null,
          slots: {},
          summary: null,
          analysis: null,
          recording_path: null,
          duration_seconds: 42,
          status: 'completed',
        });
      }
      expect(
        (await db.query('select 1 from calls where from_number = $1 or to_number = $1', [ADA])).rowCount,
      ).toBe(0);
      const turns = await db.query('select text, heard_text from call_turns where call_id = any($1)', [
        adaCalls,
      ]);
      expect(turns.rows).toHaveLength(6);
      expect(
        turns.rows.every((t) => t.text === ERASED && (t.heard_text === null || t.heard_text === ERASED)),
      ).toBe(true);
      const crm = await db.query('select error, external_id from crm_sync_records where call_id = $1', [
        adaCalls[0],
      ]);
      expect(crm.rows).toEqual([{ error: null, external_id: 'hs-call-1' }]);
      expect(existsSync(recording)).toBe(false);

      // Billing sees the same usage.
      const usageAfter = await db.query(
        'select call_id, kind, quantity from usage_records where tenant_id = $1 order by call_id',
        [tenant.tenantId],
      );
      expect(usageAfter.rows).toEqual(usageBefore.rows);

      // Bob is untouched.
      const bobRow = await db.query('select name, phone_e164 from contacts where id = $1', [bob]);
      expect(bobRow.rows).toEqual([{ name: 'Bob', phone_e164: BOB }]);
      expect(
        (await db.query('select 1 from contact_list_members where contact_id = $1', [bob])).rowCount,
      ).toBe(1);
      expect((await db.query('select 1 from campaign_contacts where contact_id = $1', [bob])).rowCount).toBe(
        1,
      );
      const bobCallRow = await db.query('select to_number, summary, slots from calls where id = $1', [
        bobCall,
      ]);
      expect(bobCallRow.rows[0]).toMatchObject({ to_number: BOB, summary: 'Talked about the booking' });
      const bobTurns = await db.query('select text from call_turns where call_id = $1 order by seq', [
        bobCall,
      ]);
      expect(bobTurns.rows[1].text).toBe('This is Ada Byron, my card is 4111');
    } finally {
      await db.end();
    }

    const audit = await auditLog(tenant.token, { action: 'contact.erased', targetId: ada });
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0]).toMatchObject({
      actor: { type: 'user', id: tenant.userId },
      target: { type: 'contact', id: ada },
      after: { calls: 2, turns: 6, recordingFilesDeleted: 1 },
    });
    expect(JSON.stringify(audit.body.data[0])).not.toContain(ADA);

    // The call list still shows the calls, with the marker instead of the number.
    const listed = await request(stack.app).get(`/v1/calls/${adaCalls[0]}`).set(bearer(tenant.token));
    expect(listed.status).toBe(200);
    expect(listed.body).toMatchObject({ to: ERASED, recording: null, summary: null });
  });

  it('answers 404 to a second erase or export, and changes nothing', async () => {
    const again = await request(stack.app)
      .delete(`/v1/contacts/${ada}/personal-data`)
      .set(bearer(tenant.token));
    expect([again.status, again.body.error.code]).toEqual([404, 'CONTACT_NOT_FOUND']);
    const exported = await request(stack.app).get(`/v1/contacts/${ada}/export`).set(bearer(tenant.token));
    expect(exported.status).toBe(404);
    const audit = await auditLog(tenant.token, { action: 'contact.erased', targetId: ada });
    expect(audit.body.data).toHaveLength(1);
    const viewer = await request(stack.app)
      .delete(`/v1/contacts/${bob}/personal-data`)
      .set(bearer(viewerKey));
    expect(viewer.status).toBe(403);
  });
});
