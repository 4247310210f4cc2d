import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

export class Campaign {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  name!: string;
  agentId!: string;
  agentVersionId?: string | null;
  callerNumberId?: string | null;
  status: Opt<string> = 'draft';
  /** Calling windows, concurrency, rate, retry policy, voicemail action. */
  settings: Opt<Record<string, unknown>> = {};
  /** `billing` when billing suspended it (and only billing may resume it); else who paused it is in the audit log. */
  pausedBy?: string | null;
  startsAt?: Date | null;
  endsAt?: Date | null;
  /** The contacts it calls; copied into campaign_contacts at launch. */
  contactListId?: string | null;
  launchedAt?: Date | null;
  finishedAt?: Date | null;
  /** Written by the campaign workflow when it ends (CampaignSummary). */
  summary?: Record<string, unknown> | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const CampaignSchema = new EntitySchema<Campaign>({
  class: Campaign,
  tableName: 'campaigns',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    name: { type: 'text' },
    agentId: { type: 'uuid' },
    agentVersionId: { type: 'uuid', nullable: true },
    callerNumberId: { type: 'uuid', nullable: true },
    status: { type: 'text' },
    settings: { type: 'json' },
    pausedBy: { type: 'text', nullable: true },
    startsAt: { type: 'datetime', nullable: true },
    endsAt: { type: 'datetime', nullable: true },
    contactListId: { type: 'uuid', nullable: true },
    launchedAt: { type: 'datetime', nullable: true },
    finishedAt: { type: 'datetime', nullable: true },
    summary: { type: 'json', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});

export class CampaignContact {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  campaignId!: string;
  contactId!: string;
  status: Opt<string> = 'pending';
  attempts: Opt<number> = 0;
  lastOutcome?: string | null;
  nextAttemptAt?: Date | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const CampaignContactSchema = new EntitySchema<CampaignContact>({
  class: CampaignContact,
  tableName: 'campaign_contacts',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    campaignId: { type: 'uuid' },
    contactId: { type: 'uuid' },
    status: { type: 'text' },
    attempts: { type: 'integer' },
    lastOutcome: { type: 'text', nullable: true },
    nextAttemptAt: { type: 'datetime', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});

/** One dial attempt of a campaign contact (or one stopped before the dial: outcome `not_dialed:*`). */
export class CampaignAttempt {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  campaignId!: string;
  contactId!: string;
  attempt!: number;
  /** `campaign:<id>:contact:<id>:attempt:<n>`, unique. */
  attemptKey!: string;
  callId?: string | null;
  outcome?: string | null;
  reason?: string | null;
  scheduledFor?: Date | null;
  startedAt!: Opt<Date>;
  endedAt?: Date | null;
}

export const CampaignAttemptSchema = new EntitySchema<CampaignAttempt>({
  class: CampaignAttempt,
  tableName: 'campaign_attempts',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    campaignId: { type: 'uuid' },
    contactId: { type: 'uuid' },
    attempt: { type: 'integer' },
    attemptKey: { type: 'text', unique: true },
    callId: { type: 'uuid', nullable: true },
    outcome: { type: 'text', nullable: true },
    reason: { type: 'text', nullable: true },
    scheduledFor: { type: 'datetime', nullable: true },
    startedAt: { type: 'datetime', onCreate: () => new Date() },
    endedAt: { type: 'datetime', nullable: true },
  },
});
