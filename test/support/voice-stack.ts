/**
 * The whole phone path for a test file: the api listening on a real port (Twilio webhooks), a
 * worker, the relay (in-process, its own activity worker), the Twilio REST peer joined to the caller
 * simulator (a REST hang-up ends the simulated call as Twilio would), and helpers to publish agents
 * and register numbers through the public API.
 */
import type http from 'node:http';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import type OpenAI from 'openai';
import request from 'supertest';
import { llmClientsFromConfig } from '../../activities';
import type { AgentDefinitionInput } from '../../contracts/agent-definition';
import { createLogger } from '../../lib/logger';
import { freePort } from '../../lib/net';
import { createRelay, type Relay } from '../../realtime-relay/relay';
import type { SpeechProviders } from '../../realtime-relay/call-session';
import { CallerSimulator } from '../peers/caller-simulator';
import { TwilioPeer, type RouteContext } from '../peers/twilio-peer';
import { bearer, signUpTenant, startStack, type SignedUp, type TestStack } from './stack';

/** Twilio's REST peer: a hang-up through the API ends the simulated call, as on a real phone line. */
export class LinkedTwilioPeer extends TwilioPeer {
  readonly hangups: string[] = [];
  onHangup?: (callSid: string) => void;

  constructor() {
    super();
    this.route(
      'POST',
      /^\/2010-04-01\/Accounts\/(?<accountSid>[^/]+)\/Calls\/(?<callSid>[^/]+)\.json$/,
      (context: RouteContext) => {
        const callSid = context.match.callSid ?? '';
        // Calls reach the peer through the simulator's webhooks, not its REST API: know them on sight.
        if (!this.calls.has(callSid)) this.addCall(callSid, { from: '', to: '' });
        const reply = this.updateCall(context);
        if (context.request.params.Status === 'completed' && context.match.callSid) {
          this.hangups.push(context.match.callSid);
          this.onHangup?.(context.match.callSid);
        }
        return reply;
      },
    );
  }
}

export interface VoiceStack<P extends TwilioPeer = LinkedTwilioPeer> {
  stack: TestStack;
  tenant: SignedUp;
  relay: Relay;
  twilio: P;
  simulator: CallerSimulator;
  apiUrl: string;
  relayUrl: string;
  recordingsDir: string;
  /** Creates and publishes an agent; returns its id. */
  publishAgent(name: string, definition: AgentDefinitionInput): Promise<string>;
  /** Registers a fresh number for the agent; returns it in E.164. */
  registerNumber(agentId: string): Promise<string>;
  close(): Promise<void>;
}

let numberCounter = 0;

export async function startVoiceStack<P extends TwilioPeer = LinkedTwilioPeer>(
  options: {
    /** Twilio's REST side (default a LinkedTwilioPeer); started here if not listening yet. */
    twilio?: P;
    /** Queues of the in-process worker (default calls, integrations, billing); `worker: false` runs none. */
    queues?: string[];
    worker?: boolean;
    env?: Record<string, string>;
    speech?: SpeechProviders;
    startTimeoutMs?: number;
    /** Cloud speech (OpenAI provider) for the relay, e.g. pointed at the OpenAI peer. */
    openai?: OpenAI;
  } = {},
): Promise<VoiceStack<P>> {
  const twilio = (options.twilio ?? new LinkedTwilioPeer()) as P;
  if (!twilio.listening) await twilio.listen();
  const [apiPort, relayPort] = [await freePort(), await freePort()];
  const recordingsDir = mkdtempSync(path.join(os.tmpdir(), 'parley-recordings-'));
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const relayUrl = `ws://127.0.0.1:${relayPort}`;
  const stack = await startStack({
    worker: options.worker ?? true,
    queues: options.queues ?? ['calls', 'integrations', 'billing'],
    env: {
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_API_BASE_URL: twilio.baseUrl,
      PUBLIC_BASE_URL: apiUrl,
      RELAY_PUBLIC_URL: relayUrl,
      RECORDINGS_DIR: recordingsDir,
      ...options.env,
    },
  });
  const api: http.Server = await new Promise((resolve) => {
    const server = stack.app.listen(apiPort, '127.0.0.1', () => resolve(server));
  });
  const workerConnection = await NativeConnection.connect({
    address: stack.config.TEMPORAL_ADDRESS as string,
  });
  const relay = await createRelay({
    config: stack.config,
    logger: createLogger(stack.config, 'relay'),
    instanceId: `test-relay-${process.pid}-${Date.now()}`,
    temporal: stack.temporal,
    workerConnection,
    llmClients: llmClientsFromConfig(stack.config),
    speech: options.speech,
    startTimeoutMs: options.startTimeoutMs,
    openai: options.openai,
  });
  await relay.listen(relayPort, '127.0.0.1');
  const tenant = await signUpTenant(stack.app, 'Voice Co');
  const simulator = new CallerSimulator({
    apiBaseUrl: apiUrl,
    authToken: stack.config.TWILIO_AUTH_TOKEN as string,
    accountSid: stack.config.TWILIO_ACCOUNT_SID as string,
  });

  return {
    stack,
    tenant,
    relay,
    twilio,
    simulator,
    apiUrl,
    relayUrl,
    recordingsDir,
    async publishAgent(name, definition) {
      const created = await request(stack.app)
        .post('/v1/agents')
        .set(bearer(tenant.token))
        .send({ name, definition });
      if (created.status !== 201) throw new Error(`agent: ${created.status} ${JSON.stringify(created.body)}`);
      const published = await request(stack.app)
        .post(`/v1/agents/${created.body.id}/publish`)
        .set(bearer(tenant.token))
        .send({});
      if (published.status !== 201)
        throw new Error(`publish: ${published.status} ${JSON.stringify(published.body)}`);
      return created.body.id as string;
    },
    async registerNumber(agentId) {
      // Test files share one database and 10,000 suffixes: a number another file holds is skipped.
      for (let attempt = 1; ; attempt += 1) {
        numberCounter += 1;
        const suffix = String((process.pid * 37 + Date.now() + numberCounter * 7919) % 10_000).padStart(
          4,
          '0',
        );
        const number = `+1415555${suffix}`;
        const res = await request(stack.app)
          .post('/v1/phone-numbers')
          .set(bearer(tenant.token))
          .send({ number, agentId, label: 'test line' });
        if (res.status === 201) return res.body.number as string;
        const taken = res.status === 409 && res.body?.error?.code === 'PHONE_NUMBER_TAKEN';
        if (!taken || attempt >= 5) throw new Error(`number: ${res.status} ${JSON.stringify(res.body)}`);
      }
    },
    async close() {
      await relay.stop(2_000);
      await workerConnection.close();
      await new Promise<void>((resolve) => api.close(() => resolve()));
      api.closeAllConnections();
      await stack.close();
      await twilio.close();
    },
  };
}
