/**
 * Every activity, built by one factory from the clients a worker gives it. Workflows import
 * `Activities` as a type only.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type Stripe from 'stripe';
import type twilio from 'twilio';
import type { Config } from '../config';
import {
  billingSettingsFrom,
  createBillingActivities,
  createStripeClient,
  type BillingSettings,
} from './billing';
import { createCallRecordActivities } from './call-records';
import { createCampaignActivities } from './campaigns';
import { createCrmSyncActivities, crmClientConfigFrom, type CrmClientConfig } from './crm-sync';
import { createCustomerWebhookActivities } from './customer-webhooks';
import { createDialerActivities } from './dialer';
import { createLlmActivities, createLlmClients, type LlmClients } from './llm';
import { createPostCallAnalysisActivities } from './post-call-analysis';
import { createSpeakActivities, type SpeechSink } from './speak';
import { createTelephonyActivities, createTwilioClient } from './telephony';
import { createTenantProvisioningActivities } from './tenant-provisioning';
import { createToolCallActivities } from './tool-calls';

export interface ActivityDeps {
  orm: MikroORM;
  llmClients: LlmClients;
  encryptionKeys: Config['ENCRYPTION_KEYS'];
  twilio?: twilio.Twilio;
  fetchImpl?: typeof fetch;
  /** Where Twilio reaches the api: outbound calls name their webhooks under it. */
  publicBaseUrl: string;
  /** CRM clients' endpoints and the Salesforce connected app. */
  crm: CrmClientConfig;
  /** Absent when STRIPE_SECRET_KEY is unset: usage is recorded, not sent. */
  stripe?: Stripe;
  billing: BillingSettings;
}

export function createActivities(deps: ActivityDeps) {
  const callRecords = createCallRecordActivities(deps);
  return {
    ...createTenantProvisioningActivities(deps),
    ...callRecords,
    ...createSpeakActivities({ llmClients: deps.llmClients }),
    ...createLlmActivities({ llmClients: deps.llmClients }),
    ...createToolCallActivities({
      fetchImpl: deps.fetchImpl,
      resolveSigningSecret: (call) =>
        callRecords.toolSigningSecret({
          tenantId: call.tenantId,
          agentId: call.agentId,
          agentVersionId: call.agentVersionId,
          toolName: call.tool.name,
        }),
    }),
    ...createPostCallAnalysisActivities(deps.llmClients),
    ...createTelephonyActivities({ twilio: deps.twilio }),
    ...createDialerActivities({ orm: deps.orm, twilio: deps.twilio, publicBaseUrl: deps.publicBaseUrl }),
    ...createCampaignActivities({ orm: deps.orm }),
    ...createCustomerWebhookActivities({
      orm: deps.orm,
      encryptionKeys: deps.encryptionKeys,
      fetchImpl: deps.fetchImpl,
    }),
    ...createCrmSyncActivities({
      orm: deps.orm,
      encryptionKeys: deps.encryptionKeys,
      crm: deps.crm,
      publicBaseUrl: deps.publicBaseUrl,
    }),
    ...createBillingActivities({ orm: deps.orm, stripe: deps.stripe, billing: deps.billing }),
  };
}

export type Activities = ReturnType<typeof createActivities>;

/** The activities' outside-world clients, from configuration (the one place they are built). */
export function activityDepsFromConfig(config: Config, orm: MikroORM): ActivityDeps {
  return {
    orm,
    llmClients: llmClientsFromConfig(config),
    encryptionKeys: config.ENCRYPTION_KEYS,
    publicBaseUrl: config.PUBLIC_BASE_URL,
    crm: crmClientConfigFrom(config),
    billing: billingSettingsFrom(config),
    stripe: config.STRIPE_SECRET_KEY
      ? createStripeClient(config.STRIPE_SECRET_KEY, config.STRIPE_API_BASE_URL)
      : undefined,
    twilio:
      config.TWILIO_ACCOUNT_SID && config.TWILIO_AUTH_TOKEN
        ? createTwilioClient({
            accountSid: config.TWILIO_ACCOUNT_SID,
            authToken: config.TWILIO_AUTH_TOKEN,
            apiBaseUrl: config.TWILIO_API_BASE_URL,
          })
        : undefined,
  };
}

export function llmClientsFromConfig(config: Config): LlmClients {
  return createLlmClients({
    defaultApiKey: config.OPENAI_API_KEY,
    defaultBaseUrl: config.OPENAI_BASE_URL,
    keys: config.LLM_API_KEYS,
  });
}

/** The api's own `speak` (streamed SSE replies): only this activity, fed to the user's open stream. */
export function createApiSpeakActivities(
  llmClients: LlmClients,
  sinkFor: (callId: string, turnId: number) => SpeechSink | undefined,
) {
  return createSpeakActivities({ llmClients, sinkFor });
}
