/**
 * The inbound voice webhook as Twilio calls it: a signed form POST over HTTP, answered with
 * `<Connect><Stream>` TwiML after the number lookup, the admission transaction and the start of
 * the call's workflow. Target: p95 < 50 ms (design.md, "The turn protocol"). Each request is a new
 * call (fresh CallSid); the calls are terminated afterwards.
 *
 * Measured twice: back to back, where each call's first workflow task and activities (worker,
 * Temporal, PostgreSQL) run while the next webhook is being answered, and with calls arriving
 * `spacingMs` apart (the pause is not timed), where they do not.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import twilio from 'twilio';
import type { Config } from '../config';
import { callWorkflowId } from '../contracts/call';
import type { MikroORM } from '../db/orm';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { withTenant } from '../db/tenant-context';
import { measure, progress, summarize, type Summary } from './stats';

export interface VoiceWebhookBenchInput {
  /** The api's own address (the bench talks to it directly; Twilio signs the public URL). */
  base: string;
  config: Config;
  token: string;
  tenantId: string;
  userId: string;
  orm: MikroORM;
  temporal: Client;
  calls: number;
  spacingMs: number;
}

export async function measureVoiceWebhook(
  input: VoiceWebhookBenchInput,
): Promise<{ backToBack: Summary; spaced: Summary }> {
  const authToken = input.config.TWILIO_AUTH_TOKEN;
  if (!authToken) throw new Error('the voice webhook bench needs TWILIO_AUTH_TOKEN in its config');
  const { bookingAgentId } = await seedDemoAgents(input.orm, input.tenantId, input.userId);
  const number = `+1415555${String(Date.now()).slice(-4)}`; // 555 exchange: valid for libphonenumber
  const registered = await fetch(`${input.base}/v1/phone-numbers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${input.token}` },
    body: JSON.stringify({ number, agentId: bookingAgentId }),
  });
  if (!registered.ok)
    throw new Error(`registering ${number}: ${registered.status} ${await registered.text()}`);
  // Every benched call stays ringing: lift the plan's limit so none is refused.
  await withTenant(input.orm, input.tenantId, (em) =>
    em.execute(`update tenants set settings = settings || '{"maxConcurrentCalls": 100000}'::jsonb`),
  );

  const signedUrl = `${input.config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/twilio/voice`;
  const callSids: string[] = [];
  const ring = async () => {
    const callSid = `CA${randomBytes(16).toString('hex')}`;
    callSids.push(callSid);
    const form = {
      CallSid: callSid,
      AccountSid: `AC${'0'.repeat(32)}`,
      From: '+14155550100',
      To: number,
      CallStatus: 'ringing',
      ApiVersion: '2010-04-01',
      Direction: 'inbound',
    };
    const res = await fetch(`${input.base}/twilio/voice`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilio.getExpectedTwilioSignature(authToken, signedUrl, form),
      },
      body: new URLSearchParams(form),
    });
    const twiml = await res.text();
    if (!twiml.includes('<Connect><Stream')) throw new Error(`voice webhook did not connect: ${twiml}`);
  };

  try {
    for (let i = 0; i < 20; i++) await ring(); // warm-up: pools, JIT, the workflow bundle
    const backToBack = await measure(`twilio voice ×${input.calls}`, input.calls, 1, ring);
    const samples: number[] = [];
    for (let i = 0; i < input.calls; i++) {
      await new Promise((resolve) => setTimeout(resolve, input.spacingMs));
      const started = performance.now();
      await ring();
      samples.push(performance.now() - started);
      progress(`twilio voice ×${input.calls}, spaced`, i + 1, input.calls);
    }
    const total = samples.reduce((a, b) => a + b, 0);
    return { backToBack, spaced: summarize(samples, total) };
  } finally {
    for (const sid of callSids) {
      await input.temporal.workflow
        .getHandle(callWorkflowId(sid))
        .terminate('bench over')
        .catch(() => undefined);
    }
  }
}
