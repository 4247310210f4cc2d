/**
 * SalesforceCrm against the Salesforce peer over real sockets, through the real jsforce: the adapter's
 * SOQL, upserts and token refreshes as the org sees them, and every failure class it must produce
 * (auth, rate limit, validation, transient) from Salesforce's own wire answers.
 */
import { SalesforceCrm, type SalesforceCrmOptions } from '../activities/crm/salesforce';
import {
  CrmAuthError,
  CrmRateLimitedError,
  CrmValidationError,
  type CrmCallLog,
  type CrmImportedContact,
} from '../activities/crm/types';
import { SalesforcePeer } from './peers/salesforce-peer';

const API = '/services/data/v62.0';
const QUERY = { method: 'GET', path: /\/query$/ };
const INVALID_SESSION = [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }];

let peer: SalesforcePeer;
let url: string;
/** Tokens handed to onTokenRefreshed. */
let stored: string[];
/** Every credential the peer has issued in this test, none of which may appear in an error. */
let secrets: string[];

beforeEach(async () => {
  peer = new SalesforcePeer({ orgName: 'Bright Smiles Dental' });
  url = await peer.start();
  stored = [];
  secrets = [peer.accessToken, peer.refreshToken, peer.clientSecret];
});

afterEach(async () => {
  await peer.stop();
});

function crm(overrides: Partial<SalesforceCrmOptions> = {}): SalesforceCrm {
  return new SalesforceCrm({
    instanceUrl: url,
    loginUrl: url,
    accessToken: peer.accessToken,
    refreshToken: peer.refreshToken,
    clientId: peer.clientId,
    clientSecret: peer.clientSecret,
    onTokenRefreshed: (token) => {
      stored.push(token);
      secrets.push(token);
    },
    ...overrides,
  });
}

/** The rejection of `promise`, checked to carry no credential anywhere a log could show it. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  if (!(error instanceof Error)) throw new Error('expected the call to reject with an Error');
  const visible = `${String(error)} ${error.stack ?? ''} ${JSON.stringify({ ...error })}`;
  for (const secret of [...secrets, peer.accessToken]) expect(visible).not.toContain(secret);
  return error;
}

function callLog(overrides: Partial<CrmCallLog> = {}): CrmCallLog {
  return {
    callId: 'call_01JQ8Z4K7M2N',
    direction: 'outbound',
    contactPhone: '+14155550123',
    parleyNumber: '+14155559900',
    startedAt: '2025-03-14T16:58:47.000Z',
    endedAt: '2025-03-14T17:00:00.000Z',
    durationSeconds: 73,
    status: 'completed',
    disposition: 'booked',
    summary: 'Booked a cleaning for Tuesday at 10am.',
    agentName: 'Ava',
    callUrl: 'https://app.parley.test/calls/call_01JQ8Z4K7M2N',
    ...overrides,
  };
}

describe('connection test', () => {
  it('names the org and checks Task has the call id external id field', async () => {
    await expect(crm().testConnection()).resolves.toEqual({ account: 'Salesforce org Bright Smiles Dental' });

    expect(peer.queries).toEqual(['SELECT Id, Name FROM Organization LIMIT 1']);
    const describe = peer.requestsTo({ method: 'GET', path: /\/sobjects\/Task\/describe$/ });
    expect(describe.map((r) => [r.path, r.status])).toEqual([[`${API}/sobjects/Task/describe`, 200]]);
    for (const request of peer.requests) {
      expect(request.path.startsWith(`${API}/`)).toBe(true);
      expect(request.headers.authorization).toBe(`Bearer ${peer.accessToken}`);
    }
  });

  it('refuses an org whose Task lacks the external id field', async () => {
    peer.callIdField = false;
    const error = await rejection(crm().testConnection());
    expect(error).toBeInstanceOf(CrmValidationError);
    expect(error).toMatchObject({
      provider: 'salesforce',
      status: 400,
      providerMessage:
        'Task has no external id field Parley_Call_Id__c: create a Text(64) field, External ID, Unique, on Task',
    });
  });
});

describe('contacts', () => {
  it('finds a contact by Phone or MobilePhone, with the number escaped for SOQL', async () => {
    const office = peer.addContact({ FirstName: 'Rita', LastName: 'Moreno', Phone: '+14155550101' });
    const mobile = peer.addContact({ LastName: 'Okafor', MobilePhone: '+14155550102' });
    const adapter = crm();

    await expect(adapter.findContactByPhone('+14155550101')).resolves.toEqual({ id: office.Id });
    await expect(adapter.findContactByPhone('+14155550102')).resolves.toEqual({ id: mobile.Id });
    await expect(adapter.findContactByPhone('+14155550199')).resolves.toBeNull();
    // A quote cannot end the literal: the whole string is compared, and nothing matches.
    await expect(adapter.findContactByPhone("+1' OR Name != '")).resolves.toBeNull();

    expect(peer.queries[0]).toBe(
      "SELECT Id, Name FROM Contact WHERE Phone = '+14155550101' OR MobilePhone = '+14155550101' LIMIT 1",
    );
    expect(peer.queries[3]).toBe(
      "SELECT Id, Name FROM Contact WHERE Phone = '+1\\' OR Name != \\'' OR MobilePhone = '+1\\' OR Name != \\'' LIMIT 1",
    );
    expect(office.Id).toMatch(/^003[a-zA-Z0-9]{15}$/);
  });

  it('creates a contact, falling back to the number for the required LastName', async () => {
    const adapter = crm();
    const bare = await adapter.createContact({ phone: '+14155550111' });
    const named = await adapter.createContact({
      phone: '+14155550112',
      firstName: 'Dana',
      lastName: 'Whitfield',
      email: 'dana@example.com',
    });

    expect(bare.id).toMatch(/^003[a-zA-Z0-9]{15}$/);
    expect(peer.contacts).toEqual([
      expect.objectContaining({
        Id: bare.id,
        LastName: '+14155550111',
        Phone: '+14155550111',
        FirstName: null,
      }),
      expect.objectContaining({
        Id: named.id,
        FirstName: 'Dana',
        LastName: 'Whitfield',
        Phone: '+14155550112',
        Email: 'dana@example.com',
        Name: 'Dana Whitfield',
      }),
    ]);
    const posts = peer.requestsTo({ method: 'POST', path: /\/sobjects\/Contact$/ });
    expect(posts.map((r) => r.body)).toEqual([
      { Phone: '+14155550111', LastName: '+14155550111' },
      { Phone: '+14155550112', FirstName: 'Dana', LastName: 'Whitfield', Email: 'dana@example.com' },
    ]);
  });

  it("passes Salesforce's refusals on as validation errors with its message", async () => {
    const adapter = crm();
    const missing = await rejection(adapter.createContact({ phone: '' }));
    expect(missing).toBeInstanceOf(CrmValidationError);
    expect(missing).toMatchObject({
      status: 400,
      providerCode: 'REQUIRED_FIELD_MISSING',
      providerMessage: 'Required fields are missing: [LastName]',
    });

    const rule = 'Phone must be in E.164 format for the Parley integration';
    peer.failNext(
      { method: 'POST', path: /\/sobjects\/Contact$/ },
      { status: 400, body: [{ message: rule, errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', fields: [] }] },
    );
    const custom = await rejection(adapter.createContact({ phone: '4155550113' }));
    expect(custom).toBeInstanceOf(CrmValidationError);
    expect(custom).toMatchObject({
      status: 400,
      providerCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION',
      providerMessage: rule,
    });
    expect(peer.contacts).toHaveLength(0);
  });
});

describe('call logging', () => {
  it('writes one call Task per call id: created first, then found again', async () => {
    const contact = peer.addContact({ FirstName: 'Rita', LastName: 'Moreno', Phone: '+14155550123' });
    const adapter = crm();
    const log = callLog();

    const first = await adapter.logCall(log, contact.Id);
    const second = await adapter.logCall(log, contact.Id);

    expect(first).toEqual({ id: expect.stringMatching(/^00T[a-zA-Z0-9]{15}$/), created: true });
    expect(second).toEqual({ id: first.id, created: false });
    expect(peer.tasks).toHaveLength(1);
    expect(peer.tasks[0]).toMatchObject({
      Id: first.id,
      Parley_Call_Id__c: 'call_01JQ8Z4K7M2N',
      Subject: 'Call: booked',
      WhoId: contact.Id,
      CallDurationInSeconds: 73,
      CallType: 'Outbound',
      CallDisposition: 'booked',
      TaskSubtype: 'Call',
      Status: 'Completed',
      ActivityDate: '2025-03-14',
    });
    const description = String(peer.tasks[0]!.Description);
    expect(description).toContain('Booked a cleaning for Tuesday at 10am.');
    expect(description).toContain('Status: completed');
    expect(description).toContain('Agent: Ava');
    expect(description).toContain('https://app.parley.test/calls/call_01JQ8Z4K7M2N');

    const patches = peer.requestsTo({ method: 'PATCH' });
    expect(patches.map((r) => [r.path, r.status])).toEqual([
      [`${API}/sobjects/Task/Parley_Call_Id__c/call_01JQ8Z4K7M2N`, 201],
    ]);
    expect(patches[0]!.body).not.toHaveProperty('Parley_Call_Id__c');
    expect(peer.queries.filter((q) => q.includes('FROM Task'))).toEqual([
      "SELECT Id FROM Task WHERE Parley_Call_Id__c = 'call_01JQ8Z4K7M2N' LIMIT 1",
      "SELECT Id FROM Task WHERE Parley_Call_Id__c = 'call_01JQ8Z4K7M2N' LIMIT 1",
    ]);

    const inbound = await adapter.logCall(
      callLog({
        callId: 'call_01JQ8Z9INBND',
        direction: 'inbound',
        disposition: 'caller_hung_up',
        durationSeconds: 0,
      }),
      null,
    );
    expect(inbound.created).toBe(true);
    expect(inbound.id).not.toBe(first.id);
    expect(peer.tasks[1]).toMatchObject({
      CallType: 'Inbound',
      WhoId: null,
      CallDurationInSeconds: 0,
      Subject: 'Call: caller_hung_up',
    });
  });

  it('keys the Task by the call id exactly, even with characters a URL path would mangle', async () => {
    const adapter = crm();
    const callId = "CA 12/34#5?x=1&y='2'";
    const first = await adapter.logCall(callLog({ callId }), null);
    const again = await adapter.logCall(callLog({ callId }), null);

    expect(again).toEqual({ id: first.id, created: false });
    expect(peer.tasks.map((t) => t.Parley_Call_Id__c)).toEqual([callId]);
    const [patch, ...others] = peer.requestsTo({ method: 'PATCH' });
    expect(others).toHaveLength(0);
    const [, value] = /^\/services\/data\/v62\.0\/sobjects\/Task\/Parley_Call_Id__c\/([^/]+)$/.exec(
      patch!.path,
    )!;
    expect(decodeURIComponent(value!)).toBe(callId);
  });

  it('returns the Task a concurrent attempt created when its own upsert became an update', async () => {
    const adapter = crm();
    // Both lookups are answered "none" before either upsert: the second upsert finds the first's Task,
    // and Salesforce refuses TaskSubtype on an update.
    peer.stallAfterWrite(QUERY, 150, 2);
    const results = await Promise.all([adapter.logCall(callLog(), null), adapter.logCall(callLog(), null)]);

    expect(peer.tasks).toHaveLength(1);
    expect(results.map((r) => r.id)).toEqual([peer.tasks[0]!.Id, peer.tasks[0]!.Id]);
    expect(results.map((r) => r.created).sort()).toEqual([false, true]);
    const patches = peer.requestsTo({ method: 'PATCH' });
    expect(patches.map((r) => r.status).sort()).toEqual([201, 400]);
  });

  it('finds the Task on retry when the upsert was applied but its answer lost', async () => {
    const adapter = crm({ requestTimeoutMs: 300 });
    peer.stallAfterWrite({ method: 'PATCH' }, 5_000);

    const lost = await rejection(adapter.logCall(callLog(), null));
    expect(lost).not.toBeInstanceOf(CrmValidationError);
    expect(lost).not.toBeInstanceOf(CrmRateLimitedError);
    expect(lost).not.toBeInstanceOf(CrmAuthError);
    expect(lost.message).toMatch(/Salesforce did not answer within 300 ms/);
    expect(peer.tasks).toHaveLength(1);

    await expect(adapter.logCall(callLog(), null)).resolves.toEqual({
      id: peer.tasks[0]!.Id,
      created: false,
    });
    expect(peer.tasks).toHaveLength(1);
    expect(peer.requestsTo({ method: 'PATCH' })).toHaveLength(1);
  });
});

describe('sessions', () => {
  it('refreshes an expired access token once, repeats the request and hands over the new token', async () => {
    const contact = peer.addContact({ LastName: 'Moreno', Phone: '+14155550123' });
    const oldToken = peer.accessToken;
    const adapter = crm();
    peer.expireAccessToken();

    await expect(adapter.findContactByPhone('+14155550123')).resolves.toEqual({ id: contact.Id });

    expect(peer.tokenRefreshes).toBe(1);
    expect(peer.accessToken).not.toBe(oldToken);
    expect(stored).toEqual([peer.accessToken]);
    const tokenRequests = peer.requestsTo({ method: 'POST', path: /^\/services\/oauth2\/token$/ });
    expect(tokenRequests.map((r) => r.body)).toEqual([
      {
        grant_type: 'refresh_token',
        refresh_token: peer.refreshToken,
        client_id: peer.clientId,
        client_secret: peer.clientSecret,
      },
    ]);
    const queries = peer.requestsTo(QUERY);
    expect(queries.map((r) => [r.headers.authorization, r.status])).toEqual([
      [`Bearer ${oldToken}`, 401],
      [`Bearer ${peer.accessToken}`, 200],
    ]);

    // The new token is kept: no further refresh; and a write after the next expiry is sent again once.
    await adapter.findContactByPhone('+14155550123');
    expect(peer.tokenRefreshes).toBe(1);
    peer.expireAccessToken();
    await adapter.createContact({ phone: '+14155550177', lastName: 'Sato' });
    expect(peer.tokenRefreshes).toBe(2);
    expect(peer.contacts.filter((c) => c.LastName === 'Sato')).toHaveLength(1);
    expect(stored).toEqual([expect.any(String), peer.accessToken]);
  });

  it('waits for onTokenRefreshed before the call returns', async () => {
    const events: string[] = [];
    const adapter = crm({
      onTokenRefreshed: async (token) => {
        secrets.push(token);
        await new Promise((resolve) => setTimeout(resolve, 100));
        events.push('stored');
      },
    });
    peer.expireAccessToken();
    await adapter.findContactByPhone('+14155550123');
    events.push('returned');
    expect(events).toEqual(['stored', 'returned']);
  });

  it('is a CrmAuthError when the refresh token is refused', async () => {
    const adapter = crm();
    peer.revokeRefreshToken();
    peer.expireAccessToken();
    const error = await rejection(adapter.findContactByPhone('+14155550123'));

    expect(error).toBeInstanceOf(CrmAuthError);
    expect(error.message).toMatch(/invalid_grant: expired access\/refresh token/);
    expect(peer.tokenRefreshes).toBe(0);
    expect(stored).toEqual([]);
    expect(peer.requestsTo({ path: /oauth2\/token$/ }).map((r) => r.status)).toEqual([400]);
  });

  it('is a CrmAuthError, after exactly one refresh, when the new session is refused too', async () => {
    peer.failNext(QUERY, { status: 401, body: INVALID_SESSION }, 2);
    const error = await rejection(crm().findContactByPhone('+14155550123'));

    expect(error).toBeInstanceOf(CrmAuthError);
    expect(peer.tokenRefreshes).toBe(1);
    expect(peer.requestsTo({ path: /oauth2\/token$/ })).toHaveLength(1);
    expect(peer.requestsTo(QUERY).map((r) => r.status)).toEqual([401, 401]);
  });

  it('is a CrmAuthError at once when there is no refresh token', async () => {
    peer.expireAccessToken();
    const adapter = crm({ refreshToken: undefined, clientId: undefined, clientSecret: undefined });
    const error = await rejection(adapter.findContactByPhone('+14155550123'));
    expect(error).toBeInstanceOf(CrmAuthError);
    expect(peer.requestsTo({ path: /oauth2\/token$/ })).toHaveLength(0);
  });

  it('is a transient error when the token endpoint itself fails', async () => {
    peer.expireAccessToken();
    peer.failNext(
      { path: /oauth2\/token$/ },
      { status: 503, body: '<html>Service Unavailable</html>', headers: { 'Content-Type': 'text/html' } },
    );
    const error = await rejection(crm().findContactByPhone('+14155550123'));
    expect(error).not.toBeInstanceOf(CrmAuthError);
    expect(error.constructor).toBe(Error);
    expect(error.message).toMatch(/Salesforce token refresh failed \(HTTP 503\)/);
  });
});

describe('rate limits and failures', () => {
  it('turns a 429 into CrmRateLimitedError honouring Retry-After, without retrying itself', async () => {
    peer.failNext(QUERY, {
      status: 429,
      body: 'Too Many Requests',
      headers: { 'Content-Type': 'text/plain', 'Retry-After': '7' },
    });
    const error = await rejection(crm().findContactByPhone('+14155550123'));

    expect(error).toBeInstanceOf(CrmRateLimitedError);
    expect(error).toMatchObject({ provider: 'salesforce', retryAfterMs: 7000, policy: 'ERROR_HTTP_429' });
    expect(peer.requestsTo(QUERY)).toHaveLength(1);
  });

  it('turns 403 REQUEST_LIMIT_EXCEEDED into CrmRateLimitedError, a minute by default', async () => {
    peer.failNext(
      { method: 'PATCH' },
      {
        status: 403,
        body: [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }],
      },
    );
    const error = await rejection(crm().logCall(callLog(), null));

    expect(error).toBeInstanceOf(CrmRateLimitedError);
    expect(error).toMatchObject({ retryAfterMs: 60_000, policy: 'REQUEST_LIMIT_EXCEEDED' });
    expect(error.message).toContain('TotalRequests Limit exceeded.');
    expect(peer.tasks).toHaveLength(0);
  });

  it('leaves a 500 as a plain error naming Salesforce and the status, sent once', async () => {
    peer.failNext(QUERY, {
      status: 500,
      body: [
        {
          message: 'An unexpected error occurred. ErrorId: 1873-2201 (-1551)',
          errorCode: 'UNKNOWN_EXCEPTION',
        },
      ],
    });
    const error = await rejection(crm().findContactByPhone('+14155550123'));

    expect(error.constructor).toBe(Error);
    expect(error.message).toMatch(/^Salesforce answered HTTP 500 UNKNOWN_EXCEPTION/);
    expect(peer.requestsTo(QUERY)).toHaveLength(1);
  });

  it('leaves an unreachable org as a plain error', async () => {
    const gone = new SalesforcePeer();
    const goneUrl = await gone.start();
    await gone.stop();
    const error = await rejection(crm({ instanceUrl: goneUrl }).findContactByPhone('+14155550123'));
    expect(error.constructor).toBe(Error);
    expect(error.message).toMatch(/^Salesforce request failed \(find the contact\): .*ECONNREFUSED/);
  });

  it('never lets a credential into an error message, even when Salesforce echoes one', async () => {
    peer.failNext(QUERY, {
      status: 400,
      body: [
        {
          message: `Bad header: Bearer ${peer.accessToken} (client secret ${peer.clientSecret})`,
          errorCode: 'INVALID_HEADER_TYPE',
        },
      ],
    });
    const error = await rejection(crm().findContactByPhone('+14155550123'));
    expect(error).toBeInstanceOf(CrmValidationError);
    expect((error as CrmValidationError).providerMessage).toBe(
      'Bad header: Bearer [redacted] (client secret [redacted])',
    );
  });
});

describe('contact import', () => {
  const WHERE = "Email LIKE '%@brightsmiles.test' AND (Phone != null OR MobilePhone != null)";

  it('pages by Id through the tenant filter, resumable from the cursor by a new adapter', async () => {
    const expected: CrmImportedContact[] = [];
    for (let i = 1; i <= 7; i += 1) {
      const mobileOnly = i % 3 === 0;
      const contact = peer.addContact({
        FirstName: `Patient${i}`,
        LastName: 'Import',
        Phone: mobileOnly ? null : `+1415555020${i}`,
        MobilePhone: mobileOnly ? `+1415555030${i}` : null,
        Email: `patient${i}@brightsmiles.test`,
      });
      expected.push({
        externalId: contact.Id,
        phone: mobileOnly ? `+1415555030${i}` : `+1415555020${i}`,
        firstName: `Patient${i}`,
        lastName: 'Import',
        email: `patient${i}@brightsmiles.test`,
      });
      // Interleaved contacts the filter excludes: another clinic, and one with no number at all.
      peer.addContact({ LastName: 'Other', Phone: `+1415555040${i}`, Email: `x${i}@elsewhere.test` });
      if (i === 4) peer.addContact({ LastName: 'NoPhone', Email: 'nophone@brightsmiles.test' });
    }
    const source = { kind: 'salesforce_soql', where: WHERE } as const;

    const page1 = await crm().listContacts(source, undefined, 3);
    const page2 = await crm().listContacts(source, page1.nextCursor, 3);
    const page3 = await crm().listContacts(source, page2.nextCursor, 3);

    expect(page1).toEqual({ contacts: expected.slice(0, 3), nextCursor: expected[2]!.externalId });
    expect(page2).toEqual({ contacts: expected.slice(3, 6), nextCursor: expected[5]!.externalId });
    expect(page3).toEqual({ contacts: expected.slice(6) });
    const select = 'SELECT Id, FirstName, LastName, Phone, MobilePhone, Email FROM Contact';
    expect(peer.queries).toEqual([
      `${select} WHERE (${WHERE}) ORDER BY Id LIMIT 3`,
      `${select} WHERE (${WHERE}) AND Id > '${page1.nextCursor}' ORDER BY Id LIMIT 3`,
      `${select} WHERE (${WHERE}) AND Id > '${page2.nextCursor}' ORDER BY Id LIMIT 3`,
    ]);
  });

  it('refuses filters that would break the paging, and HubSpot sources, before calling Salesforce', async () => {
    const adapter = crm();
    for (const where of [
      "LastName = 'Import'; DELETE",
      "LastName = 'Import' LIMIT 10",
      "LastName = 'Import' ORDER BY LastName",
      "Email != null) OR (LastName = 'Import'",
    ]) {
      const error = await rejection(adapter.listContacts({ kind: 'salesforce_soql', where }, undefined, 10));
      expect(error).toBeInstanceOf(CrmValidationError);
    }
    const hubspot = await rejection(
      adapter.listContacts({ kind: 'hubspot_list', listId: '42' }, undefined, 10),
    );
    expect(hubspot).toBeInstanceOf(CrmValidationError);
    expect(peer.requests).toHaveLength(0);

    // A word inside a string literal is data, not a clause.
    peer.addContact({ LastName: 'Limit', Phone: '+14155550601' });
    const page = await adapter.listContacts(
      { kind: 'salesforce_soql', where: "LastName = 'Limit'" },
      undefined,
      10,
    );
    expect(page.contacts.map((c) => c.lastName)).toEqual(['Limit']);
  });

  it("passes Salesforce's refusal of a malformed filter on as a validation error", async () => {
    const adapter = crm();
    const malformed = await rejection(
      adapter.listContacts({ kind: 'salesforce_soql', where: 'Email LIKE' }, undefined, 10),
    );
    expect(malformed).toMatchObject({ status: 400, providerCode: 'MALFORMED_QUERY' });
    expect(malformed).toBeInstanceOf(CrmValidationError);

    const unknown = await rejection(
      adapter.listContacts({ kind: 'salesforce_soql', where: "Clinic__c = 'North'" }, undefined, 10),
    );
    expect(unknown).toBeInstanceOf(CrmValidationError);
    expect(unknown).toMatchObject({ status: 400, providerCode: 'INVALID_FIELD' });
    expect((unknown as CrmValidationError).providerMessage).toMatch(
      /No such column 'Clinic__c' on entity 'Contact'/,
    );
  });
});
