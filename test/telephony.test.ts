/**
 * Call control through the official Twilio SDK against the local Twilio peer: the SDK's requests
 * really leave over HTTP, redirected by the custom RequestClient.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { createTelephonyActivities, createTwilioClient, rewriteTwilioUri } from '../activities/telephony';
import { randomSid, startTwilioPeer, type TwilioPeer } from './peers/twilio-peer';

let peer: TwilioPeer;

beforeAll(async () => {
  peer = await startTwilioPeer();
});
afterAll(() => peer.close());

function activitiesFor(authToken = peer.authToken) {
  const twilio = createTwilioClient({ accountSid: peer.accountSid, authToken, apiBaseUrl: peer.baseUrl });
  return createTelephonyActivities({ twilio });
}

function liveCall(status: 'in-progress' | 'completed' = 'in-progress') {
  const callSid = randomSid('CA');
  peer.addCall(callSid, { from: '+15005550006', to: '+15005550001', status });
  return callSid;
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('createTwilioClient', () => {
  it('rewrites every *.twilio.com host to the base URL, keeping path and query', () => {
    const base = new URL('http://127.0.0.1:4010/twilio/');
    expect(rewriteTwilioUri('https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?x=1', base)).toBe(
      'http://127.0.0.1:4010/twilio/2010-04-01/Accounts/AC1/Calls.json?x=1',
    );
    expect(rewriteTwilioUri('https://voice.us1.twilio.com/v1/x', base)).toBe(
      'http://127.0.0.1:4010/twilio/v1/x',
    );
    expect(rewriteTwilioUri('https://example.com/a', base)).toBe('https://example.com/a');
  });
});

describe('transferCall', () => {
  it('redirects the live call to TwiML that says the message and dials the number', async () => {
    const callSid = liveCall();
    const result = await activitiesFor().transferCall({
      callSid,
      to: '+15005550009',
      message: 'Connecting you to a person.',
      callerId: '+15005550006',
    });
    expect(result).toEqual({ status: 'in-progress' });

    const [sent, ...others] = peer.requestsTo(
      `/2010-04-01/Accounts/${peer.accountSid}/Calls/${callSid}.json`,
    );
    expect(others).toHaveLength(0);
    expect(sent!.headers['content-type']).toMatch(/application\/x-www-form-urlencoded/);
    expect(sent!.username).toBe(peer.accountSid);
    expect(sent!.params.Twiml).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Connecting you to a person.</Say>' +
        '<Dial callerId="+15005550006">+15005550009</Dial></Response>',
    );
    expect(peer.calls.get(callSid)!.twiml).toContain('<Dial');
  });

  it('without a message or caller id: a bare Dial, no Say and no callerId attribute', async () => {
    const callSid = liveCall();
    await activitiesFor().transferCall({ callSid, to: '+15005550009' });
    const twiml = peer.calls.get(callSid)!.twiml!;
    expect(twiml).toMatch(/<Response><Dial>\+15005550009<\/Dial><\/Response>$/);
  });

  it('escapes the message as XML text', async () => {
    const callSid = liveCall();
    await activitiesFor().transferCall({ callSid, to: '+15005550009', message: 'Tom & Jerry <support>' });
    expect(peer.calls.get(callSid)!.twiml).toContain('<Say>Tom &amp; Jerry &lt;support&gt;</Say>');
  });

  it('a call that has already ended: non-retryable with Twilio code 21220', async () => {
    const failure = await failureOf(
      activitiesFor().transferCall({ callSid: liveCall('completed'), to: '+1500' }),
    );
    expect(failure).toMatchObject({ type: 'TwilioRequestRejected', nonRetryable: true });
    expect(failure.details).toEqual([
      { status: 400, code: 21220, moreInfo: 'https://www.twilio.com/docs/errors/21220' },
    ]);
  });
});

describe('hangUpCall', () => {
  it('ends an in-progress call with Status=completed', async () => {
    const callSid = liveCall();
    expect(await activitiesFor().hangUpCall({ callSid })).toEqual({ status: 'completed' });
    const [sent] = peer.requestsTo(`/2010-04-01/Accounts/${peer.accountSid}/Calls/${callSid}.json`);
    expect(sent!.params).toEqual({ Status: 'completed' });
    expect(peer.calls.get(callSid)!.status).toBe('completed');
  });

  it('is idempotent: a retry after the call ended, or a call Twilio does not know, succeeds', async () => {
    const activities = activitiesFor();
    const callSid = liveCall();
    await activities.hangUpCall({ callSid });
    expect(await activities.hangUpCall({ callSid })).toEqual({ status: 'completed' });
    expect(peer.requestsTo(new RegExp(`/Calls/${callSid}\\.json$`)).map((r) => r.status)).toEqual([200, 400]);

    const unknown = randomSid('CA');
    expect(await activities.hangUpCall({ callSid: unknown })).toEqual({ status: 'completed' });
    expect(peer.requestsTo(new RegExp(`/Calls/${unknown}\\.json$`)).map((r) => r.status)).toEqual([404]);
  });
});

describe('failures', () => {
  it('bad credentials: non-retryable, carrying Twilio code 20003', async () => {
    const callSid = liveCall();
    const activities = activitiesFor('not-the-token');
    for (const attempt of [
      activities.hangUpCall({ callSid }),
      activities.transferCall({ callSid, to: '+15005550009' }),
    ]) {
      const failure = await failureOf(attempt);
      expect(failure).toMatchObject({ type: 'TwilioRequestRejected', nonRetryable: true });
      expect(failure.message).toContain('20003');
      expect(failure.details?.[0]).toMatchObject({ status: 401, code: 20003 });
    }
    expect(peer.calls.get(callSid)!.status).toBe('in-progress');
  });

  it('Twilio 5xx and 429: a plain (retryable) error, and the retry then succeeds', async () => {
    const callSid = liveCall();
    const activities = activitiesFor();
    for (const status of [503, 429]) {
      peer.failNext({ status, body: { code: 20500, message: 'Service unavailable', status } });
      const err = await activities.hangUpCall({ callSid: liveCall() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(ApplicationFailure);
      expect((err as { status?: number }).status).toBe(status);
    }
    expect(await activities.hangUpCall({ callSid })).toEqual({ status: 'completed' });
  });

  it('a network failure: a plain (retryable) error', async () => {
    const closed = await startTwilioPeer();
    const baseUrl = closed.baseUrl;
    await closed.close();
    const twilio = createTwilioClient({ accountSid: peer.accountSid, authToken: 'x', apiBaseUrl: baseUrl });
    const err = await createTelephonyActivities({ twilio })
      .hangUpCall({ callSid: randomSid('CA') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it('no Twilio configured: non-retryable TelephonyNotConfigured, before any request', async () => {
    const before = peer.requests.length;
    const activities = createTelephonyActivities({});
    for (const attempt of [
      activities.transferCall({ callSid: randomSid('CA'), to: '+15005550009' }),
      activities.hangUpCall({ callSid: randomSid('CA') }),
    ]) {
      const failure = await failureOf(attempt);
      expect(failure).toMatchObject({ type: 'TelephonyNotConfigured', nonRetryable: true });
      expect(failure.message).toContain('TWILIO_ACCOUNT_SID');
    }
    expect(peer.requests.length).toBe(before);
  });

  it('a malformed call SID is refused without a request (it would become part of the URL)', async () => {
    const before = peer.requests.length;
    const failure = await failureOf(activitiesFor().hangUpCall({ callSid: '../Messages' }));
    expect(failure).toMatchObject({ type: 'InvalidCallSid', nonRetryable: true });
    expect(peer.requests.length).toBe(before);
  });
});
