import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

export type CrmProvider = 'hubspot' | 'salesforce';

/** A tenant's CRM connection; credentials are stored encrypted with the key named by `credentialsKeyId`. */
export class Integration {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  provider!: CrmProvider;
  status: Opt<string> = 'connected';
  credentialsCiphertext!: string;
  credentialsKeyId!: string;
  settings: Opt<Record<string, unknown>> = {};
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const IntegrationSchema = new EntitySchema<Integration>({
  class: Integration,
  tableName: 'integrations',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    provider: { type: 'text' },
    status: { type: 'text' },
    credentialsCiphertext: { type: 'text', hidden: true },
    credentialsKeyId: { type: 'text' },
    settings: { type: 'json' },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});

/** What the CRM holds for one call: written once, found again on retry. */
export class CrmSyncRecord {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  callId!: string;
  provider!: CrmProvider;
  status: Opt<string> = 'pending';
  externalId?: string | null;
  error?: string | null;
  attempts: Opt<number> = 0;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const CrmSyncRecordSchema = new EntitySchema<CrmSyncRecord>({
  class: CrmSyncRecord,
  tableName: 'crm_sync_records',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    callId: { type: 'uuid' },
    provider: { type: 'text' },
    status: { type: 'text' },
    externalId: { type: 'text', nullable: true },
    error: { type: 'text', nullable: true },
    attempts: { type: 'integer' },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});
