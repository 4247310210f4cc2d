/**
 * The HubSpot adapter against a local HubSpot (HubSpotPeer), through the real @hubspot/api-client
 * over real sockets: the connection test prepares the unique parley_call_id property once, contacts
 * are found and created (a 409 yields the existing id), a call is logged exactly once however often
 * the write is repeated, list imports page through memberships, and every failure leaves as the
 * right CRM error class without the access token in its message.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@hubspot/api-client';
import { HubSpotCrm, hubSpotCallStatus } from '../activities/crm/hubspot';
import {
  CrmAuthError,
  CrmRateLimitedError,
  CrmValidationError,
  type CrmCallLog,
} from '../activities/crm/types';
import { HubSpotPeer } from './peers/hubspot-peer';

const TOKEN = `pat-na1-${randomUUID()}`;
const PORTAL_ID = 44_556_677;
const UPSERT = /^\/crm\/v3\/objects\/calls\/batch\/upsert$/;
const SEARCH = /^\/crm\/v3\/objects\/contacts\/search$/;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The rejection of `promise` (fails the test when it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected a rejection, but the promise resolved');
}

function msUntilNextUtcMidnight(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) - now;
}

function callLog(overrides: Partial<CrmCallLog> = {}): CrmCallLog {
  return {
    callId: `call_${randomUUID()}`,
    direction: 'outbound',
    contactPhone: '+14155550101',
    parleyNumber: '+14155550199',
    startedAt: '2025-03-04T15:00:00.000Z',
    endedAt: '2025-03-04T15:01:23.000Z',
    durationSeconds: 83,
    status: 'completed',
    disposition: 'booked',
    summary: 'Booked a cleaning for Tuesday at 10 <am>.',
    agentName: 'Front desk',
    callUrl: 'https://app.parley.example/calls/c-1',
    ...overrides,
  };
}

let peer: HubSpotPeer;
let basePath: string;
let crm: HubSpotCrm;

beforeEach(async () => {
  peer = new HubSpotPeer({ accessToken: TOKEN, portalId: PORTAL_ID });
  basePath = await peer.start();
  crm = new HubSpotCrm({ accessToken: TOKEN, basePath });
});

afterEach(async () => {
  await peer.stop();
});

describe('testConnection', () => {
  it('names the portal and creates the unique parley_call_id calls property once', async () => {
    await expect(crm.testConnection()).resolves.toEqual({ account: `HubSpot portal ${PORTAL_ID}` });
    const definitions = peer.callPropertyDefinitions;
    expect(definitions).toHaveLength(1);
    expect(definitions[0]).toMatchObject({
      name: 'parley_call_id',
      label: 'Parley call id',
      type: 'string',
      fieldType: 'text',
      groupName: 'callinformation',
      hasUniqueValue: true,
    });

    // A second test (another adapter, as a later activity would build) finds it and creates nothing.
    await new HubSpotCrm({ accessToken: TOKEN, basePath }).testConnection();
    expect(peer.requestsTo(/^\/crm\/v3\/properties\/calls$/, 'POST')).toHaveLength(1);
    expect(peer.requestsTo(/^\/crm\/v3\/properties\/calls\/parley_call_id$/, 'GET')).toHaveLength(2);
    expect(peer.requestsTo(/^\/account-info\/v3\/details$/, 'GET')).toHaveLength(2);
    const sent = peer.requests[0]!;
    expect(sent.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('refuses a parley_call_id property that does not hold unique values', async () => {
    peer.defineCallProperty({ name: 'parley_call_id', hasUniqueValue: false });
    const err = await rejectionOf(crm.testConnection());
    expect(err).toBeInstanceOf(CrmValidationError);
    expect((err as CrmValidationError).providerMessage).toMatch(/not a unique single-line text property/);
    expect(peer.requestsTo(/^\/crm\/v3\/properties\/calls$/, 'POST')).toHaveLength(0);
  });
});

describe('contacts', () => {
  it('finds a contact by phone or mobile phone with two OR-ed filter groups', async () => {
    const byPhone = peer.addContact({ phone: '+14155550101', firstname: 'Ada' });
    const byMobile = peer.addContact({ mobilephone: '+14155550102', firstname: 'Grace' });

    await expect(crm.findContactByPhone('+14155550101')).resolves.toEqual({ id: byPhone.id });
    await expect(crm.findContactByPhone('+14155550102')).resolves.toEqual({ id: byMobile.id });
    await expect(crm.findContactByPhone('+14155550999')).resolves.toBeNull();

    const body = peer.requestsTo(SEARCH, 'POST')[0]!.body;
    expect(body).toMatchObject({
      filterGroups: [
        { filters: [{ propertyName: 'phone', operator: 'EQ', value: '+14155550101' }] },
        { filters: [{ propertyName: 'mobilephone', operator: 'EQ', value: '+14155550101' }] },
      ],
      limit: 1,
    });
  });

  it('creates a contact with only the fields it has', async () => {
    const { id } = await crm.createContact({ phone: '+14155550103', firstName: 'Alan' });
    expect(peer.contact(id)?.properties).toMatchObject({ phone: '+14155550103', firstname: 'Alan' });
    const sent = peer.requestsTo(/^\/crm\/v3\/objects\/contacts$/, 'POST')[0]!.body as {
      properties: Record<string, string>;
    };
    expect(sent.properties).toEqual({ phone: '+14155550103', firstname: 'Alan' });
  });

  it('answers the existing contact id when HubSpot says the contact already exists (409)', async () => {
    const existing = peer.addContact({ email: 'ada@example.com', phone: '+14155550104' });
    const result = await crm.createContact({
      phone: '+14155550105',
      email: 'Ada@example.com',
      lastName: 'L',
    });
    expect(result).toEqual({ id: existing.id });
    expect(peer.contacts).toHaveLength(1);
    expect(peer.requestsTo(/^\/crm\/v3\/objects\/contacts$/, 'POST')[0]!.status).toBe(409);
  });

  it("rejects HubSpot's 400 as a validation error carrying HubSpot's message", async () => {
    const err = await rejectionOf(crm.createContact({ phone: '+14155550106', email: 'not-an-email' }));
    expect(err).toBeInstanceOf(CrmValidationError);
    const validation = err as CrmValidationError;
    expect(validation.provider).toBe('hubspot');
    expect(validation.status).toBe(400);
    expect(validation.providerCode).toBe('VALIDATION_ERROR');
    expect(validation.providerMessage).toContain('Email address not-an-email is invalid');
    expect(peer.contacts).toHaveLength(0);
  });
});

describe('logCall', () => {
  it('writes one call record however often it is logged, associated once to the contact', async () => {
    await crm.testConnection();
    const contact = peer.addContact({ phone: '+14155550101' });
    const log = callLog();

    const first = await crm.logCall(log, contact.id);
    expect(first.created).toBe(true);
    const second = await crm.logCall({ ...log, summary: 'Booked, then moved to Wednesday.' }, contact.id);
    expect(second).toEqual({ id: first.id, created: false });

    expect(peer.calls).toHaveLength(1);
    const call = peer.call(first.id)!;
    expect(call.properties).toMatchObject({
      parley_call_id: log.callId,
      hs_timestamp: '2025-03-04T15:01:23.000Z',
      hs_call_title: 'Parley call — booked',
      hs_call_duration: '83000',
      hs_call_status: 'COMPLETED',
      hs_call_direction: 'OUTBOUND',
      hs_call_from_number: '+14155550199',
      hs_call_to_number: '+14155550101',
    });
    expect(call.properties.hs_call_body).toContain('Booked, then moved to Wednesday.');
    expect(call.properties.hs_call_body).toContain('Front desk');
    expect(call.properties.hs_call_body).toContain('href="https://app.parley.example/calls/c-1"');
    expect(peer.associations).toEqual([
      {
        callId: first.id,
        contactId: contact.id,
        associationCategory: 'HUBSPOT_DEFINED',
        associationTypeId: 194,
      },
    ]);
    expect(peer.requestsTo(/\/associations\/default\/contacts\//, 'PUT')).toHaveLength(2);

    const upserts = peer.requestsTo(UPSERT, 'POST');
    expect(upserts[0]!.body).toMatchObject({ inputs: [{ idProperty: 'parley_call_id', id: log.callId }] });
  });

  it('escapes the summary as HTML and writes inbound calls from the caller to Parley', async () => {
    await crm.testConnection();
    const { id } = await crm.logCall(callLog({ direction: 'inbound', durationSeconds: 0.4 }), null);
    const call = peer.call(id)!;
    expect(call.properties).toMatchObject({
      hs_call_direction: 'INBOUND',
      hs_call_from_number: '+14155550101',
      hs_call_to_number: '+14155550199',
      hs_call_duration: '400',
    });
    expect(call.properties.hs_call_body).toContain('Tuesday at 10 &#60;am&#62;.');
    expect(peer.associations).toHaveLength(0);
    expect(peer.requestsTo(/\/associations\//)).toHaveLength(0);
  });

  it("maps Parley's call statuses onto HubSpot's options", async () => {
    await crm.testConnection();
    const cases: [string, string][] = [
      ['completed', 'COMPLETED'],
      ['no-answer', 'NO_ANSWER'],
      ['busy', 'BUSY'],
      ['failed', 'FAILED'],
      ['canceled', 'CANCELED'],
      ['in-progress', 'IN_PROGRESS'],
      ['ringing', 'IN_PROGRESS'],
      ['voicemail-left', 'COMPLETED'],
    ];
    for (const [status, expected] of cases) {
      expect(hubSpotCallStatus(status)).toBe(expected);
      const { id } = await crm.logCall(callLog({ status }), null);
      expect(peer.call(id)?.properties.hs_call_status).toBe(expected);
    }
    expect(peer.calls).toHaveLength(cases.length);
  });

  it('creates the unique property itself when the portal lacks it, then logs', async () => {
    const { id, created } = await crm.logCall(callLog(), null);
    expect(created).toBe(true);
    expect(peer.call(id)).toBeDefined();
    expect(peer.callPropertyDefinitions.map((p) => [p.name, p.hasUniqueValue])).toEqual([
      ['parley_call_id', true],
    ]);
    expect(peer.requestsTo(UPSERT, 'POST').map((r) => r.status)).toEqual([400, 200]);
  });

  it('finds the record a timed-out write already made instead of making another', async () => {
    await crm.testConnection();
    const contact = peer.addContact({ phone: '+14155550101' });
    const log = callLog();
    peer.stallAfterWrite({ method: 'POST', path: UPSERT }, 1500);

    const stalled = crm.logCall(log, contact.id);
    const timedOut = await Promise.race([stalled.then(() => false), sleep(300).then(() => true)]);
    expect(timedOut).toBe(true);
    expect(peer.calls).toHaveLength(1);

    const retried = await crm.logCall(log, contact.id);
    expect(retried).toEqual({ id: peer.calls[0]!.id, created: false });
    await expect(stalled).resolves.toEqual({ id: retried.id, created: true });
    expect(peer.calls).toHaveLength(1);
    expect(peer.associations).toHaveLength(1);
  });

  it('refuses a second call record with the same parley_call_id', async () => {
    await crm.testConnection();
    const { id } = await crm.logCall(callLog({ callId: 'call_dup' }), null);
    const response = await fetch(`${basePath}/crm/v3/objects/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        properties: { hs_timestamp: '2025-03-04T15:01:23.000Z', parley_call_id: 'call_dup' },
      }),
    });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ status: 'error', category: 'CONFLICT' });
    expect(peer.calls.map((c) => c.id)).toEqual([id]);
  });
});

describe('listContacts', () => {
  it('pages through a list, reading each page of members in one batch', async () => {
    const members = [
      peer.addContact({
        phone: '+14155550111',
        firstname: 'Ada',
        lastname: 'Lovelace',
        email: 'ada@example.com',
      }),
      peer.addContact({ mobilephone: '+14155550112', firstname: 'Grace' }),
      peer.addContact({ phone: '+14155550113' }),
      peer.addContact({ phone: '+14155550114', mobilephone: '+14155550199', lastname: 'Hopper' }),
      peer.addContact({ email: 'nophone@example.com' }),
    ];
    // 99999 left the CRM after joining the list: HubSpot reports it as a batch error, it is skipped.
    const ids = members.map((m) => m.id);
    peer.addList('77', [ids[0]!, ids[1]!, '99999', ids[2]!, ids[3]!, ids[4]!]);

    const source = { kind: 'hubspot_list', listId: '77' } as const;
    const first = await crm.listContacts(source, undefined, 2);
    expect(first.contacts).toEqual([
      {
        externalId: ids[0],
        phone: '+14155550111',
        firstName: 'Ada',
        lastName: 'Lovelace',
        email: 'ada@example.com',
      },
      { externalId: ids[1], phone: '+14155550112', firstName: 'Grace' },
    ]);
    expect(first.nextCursor).toEqual(expect.any(String));

    const second = await crm.listContacts(source, first.nextCursor, 2);
    expect(second.contacts).toEqual([{ externalId: ids[2], phone: '+14155550113' }]);
    expect(second.nextCursor).toEqual(expect.any(String));
    expect(second.nextCursor).not.toBe(first.nextCursor);

    const third = await crm.listContacts(source, second.nextCursor, 2);
    expect(third.contacts).toEqual([
      { externalId: ids[3], phone: '+14155550114', lastName: 'Hopper' },
      { externalId: ids[4], email: 'nophone@example.com' },
    ]);
    expect(third.nextCursor).toBeUndefined();

    const pages = peer.requestsTo(/^\/crm\/v3\/lists\/77\/memberships$/, 'GET');
    expect(pages.map((r) => r.query)).toEqual([
      { limit: '2' },
      { limit: '2', after: first.nextCursor },
      { limit: '2', after: second.nextCursor },
    ]);
    expect(
      peer.requestsTo(/^\/crm\/v3\/objects\/contacts\/batch\/read$/, 'POST').map((r) => r.status),
    ).toEqual([200, 207, 200]);
  });

  it('refuses a Salesforce source and an unknown list', async () => {
    const soql = await rejectionOf(
      crm.listContacts({ kind: 'salesforce_soql', where: 'Id != null' }, undefined, 10),
    );
    expect(soql).toBeInstanceOf(CrmValidationError);
    expect(peer.requests).toHaveLength(0);

    const missing = await rejectionOf(
      crm.listContacts({ kind: 'hubspot_list', listId: '404' }, undefined, 10),
    );
    expect(missing).toBeInstanceOf(CrmValidationError);
    expect((missing as CrmValidationError).status).toBe(404);
    expect((missing as CrmValidationError).providerCode).toBe('OBJECT_NOT_FOUND');
  });
});

describe('rate limits', () => {
  it("waits the ten-second window's interval, and the SDK does not retry by itself", async () => {
    peer.failNext(
      { path: SEARCH },
      {
        status: 429,
        body: {
          status: 'error',
          message: 'You have reached your ten_secondly_rolling limit.',
          errorType: 'RATE_LIMIT',
          correlationId: randomUUID(),
          policyName: 'TEN_SECONDLY_ROLLING',
        },
        headers: { 'X-HubSpot-RateLimit-Interval-Milliseconds': '2500' },
      },
    );
    const err = await rejectionOf(crm.findContactByPhone('+14155550101'));
    expect(err).toBeInstanceOf(CrmRateLimitedError);
    expect(err).toMatchObject({ provider: 'hubspot', retryAfterMs: 2500, policy: 'TEN_SECONDLY_ROLLING' });
    expect(peer.requestsTo(SEARCH)).toHaveLength(1);
    // The next attempt (Temporal's) goes through.
    await expect(crm.findContactByPhone('+14155550101')).resolves.toBeNull();
  });

  it("uses the peer's real window when it is exhausted", async () => {
    await peer.stop();
    peer = new HubSpotPeer({ accessToken: TOKEN, rateLimitMax: 2, rateLimitIntervalMs: 4000 });
    const limited = new HubSpotCrm({ accessToken: TOKEN, basePath: await peer.start() });
    await limited.findContactByPhone('+14155550101');
    await limited.findContactByPhone('+14155550101');
    const err = await rejectionOf(limited.findContactByPhone('+14155550101'));
    expect(err).toMatchObject({ retryAfterMs: 4000, policy: 'TEN_SECONDLY_ROLLING' });
  });

  it('waits a second for SECONDLY and until the next UTC midnight for DAILY', async () => {
    peer.rateLimitNext(1, 'SECONDLY');
    const secondly = await rejectionOf(crm.findContactByPhone('+14155550101'));
    expect(secondly).toMatchObject({ retryAfterMs: 1000, policy: 'SECONDLY' });

    peer.rateLimitNext(1, 'DAILY');
    const latest = msUntilNextUtcMidnight(Date.now());
    const daily = await rejectionOf(crm.createContact({ phone: '+14155550101' }));
    const earliest = msUntilNextUtcMidnight(Date.now());
    expect(daily).toBeInstanceOf(CrmRateLimitedError);
    expect((daily as CrmRateLimitedError).policy).toBe('DAILY');
    expect((daily as CrmRateLimitedError).retryAfterMs).toBeLessThanOrEqual(latest);
    expect((daily as CrmRateLimitedError).retryAfterMs).toBeGreaterThanOrEqual(earliest);
  });

  it('honours Retry-After over the policy', async () => {
    await crm.testConnection();
    peer.rateLimitNext(1, 'TEN_SECONDLY_ROLLING', 7);
    const err = await rejectionOf(crm.logCall(callLog(), null));
    expect(err).toMatchObject({ retryAfterMs: 7000, policy: 'TEN_SECONDLY_ROLLING' });
    expect(peer.calls).toHaveLength(0);
  });
});

describe('failures', () => {
  it('rejects a wrong token as an auth error without echoing it', async () => {
    const wrong = `pat-na1-${randomUUID()}`;
    const err = await rejectionOf(new HubSpotCrm({ accessToken: wrong, basePath }).testConnection());
    expect(err).toBeInstanceOf(CrmAuthError);
    expect(err.message).toContain('INVALID_AUTHENTICATION');
    expect(err.message).not.toContain(wrong);
    expect(peer.requests[0]!.status).toBe(401);
  });

  it('rejects a 403 (missing scopes) as an auth error', async () => {
    peer.failNext(
      { path: /^\/crm\/v3\/lists\// },
      {
        status: 403,
        body: {
          status: 'error',
          message: "This app hasn't been granted all required scopes to make this call.",
          correlationId: randomUUID(),
          category: 'MISSING_SCOPES',
        },
      },
    );
    const err = await rejectionOf(crm.listContacts({ kind: 'hubspot_list', listId: '1' }, undefined, 10));
    expect(err).toBeInstanceOf(CrmAuthError);
    expect(err.message).toContain('MISSING_SCOPES');
  });

  it('leaves a 500 as a plain, retryable error naming HubSpot and the status', async () => {
    peer.failNext(
      { method: 'POST', path: UPSERT },
      { status: 500, body: { status: 'error', message: 'internal error', correlationId: 'c0ffee-1' } },
    );
    await crm.testConnection();
    const err = await rejectionOf(crm.logCall(callLog(), null));
    expect(err).not.toBeInstanceOf(CrmRateLimitedError);
    expect(err).not.toBeInstanceOf(CrmValidationError);
    expect(err).not.toBeInstanceOf(CrmAuthError);
    expect(err.message).toMatch(/HubSpot answered 500 .*log the call/);
    expect(err.message).toContain('c0ffee-1');
  });

  it('keeps the SDK from retrying even when a client made later asks it to', async () => {
    // The SDK's decorators are process-wide and reset by every `new Client`.
    new Client({ accessToken: 'another-tenant', numberOfApiCallRetries: 3 }).init();
    peer.failNext(
      { path: SEARCH },
      { status: 503, body: { status: 'error', message: 'Service Unavailable' } },
    );
    const err = await rejectionOf(crm.findContactByPhone('+14155550101'));
    expect(err.message).toMatch(/HubSpot answered 503/);
    expect(peer.requestsTo(SEARCH)).toHaveLength(1);
  });

  it('leaves an unreachable HubSpot as a plain error', async () => {
    await peer.stop();
    const err = await rejectionOf(crm.findContactByPhone('+14155550101'));
    expect(err.constructor).toBe(Error);
    expect(err.message).toMatch(/HubSpot request failed \(search contacts by phone\)/);
  });

  it('never puts the access token in an error message, even when HubSpot echoes it', async () => {
    peer.failNext(
      { path: SEARCH },
      {
        status: 400,
        body: { status: 'error', message: `Bad token ${TOKEN} in filter`, category: 'VALIDATION_ERROR' },
      },
    );
    peer.failNext(
      { path: SEARCH },
      { status: 502, body: { status: 'error', message: `upstream saw ${TOKEN}` } },
    );
    peer.rateLimitNext(1);
    const errors = [
      await rejectionOf(crm.findContactByPhone('+1')),
      await rejectionOf(crm.findContactByPhone('+1')),
      await rejectionOf(crm.findContactByPhone('+1')),
      await rejectionOf(new HubSpotCrm({ accessToken: `${TOKEN}x`, basePath }).findContactByPhone('+1')),
    ];
    expect(errors.map((e) => e.constructor.name)).toEqual([
      'CrmValidationError',
      'Error',
      'CrmRateLimitedError',
      'CrmAuthError',
    ]);
    for (const err of errors) {
      expect(err.message).not.toContain(TOKEN);
      expect(JSON.stringify(err)).not.toContain(TOKEN);
    }
    expect((errors[0] as CrmValidationError).providerMessage).toBe('Bad token [access token] in filter');
  });
});

describe('HubSpotPeer wire format', () => {
  it('sends the rate-limit headers on every response and 401s without the token', async () => {
    const ok = await fetch(`${basePath}/account-info/v3/details`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.status).toBe(200);
    const denied = await fetch(`${basePath}/account-info/v3/details`);
    expect(denied.status).toBe(401);
    expect(await denied.json()).toMatchObject({ status: 'error', category: 'INVALID_AUTHENTICATION' });
    for (const response of [ok, denied]) {
      expect(response.headers.get('x-hubspot-ratelimit-max')).toBe('190');
      expect(response.headers.get('x-hubspot-ratelimit-remaining')).toMatch(/^\d+$/);
      expect(response.headers.get('x-hubspot-ratelimit-interval-milliseconds')).toBe('10000');
    }
  });
});
