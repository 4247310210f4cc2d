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
  /** Who the credentials belong to, as the provider named it at the last connection test. */
  account?: string | null;
  lastTestedAt?: Date | null;
  lastError?: string | null;
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
    account: { type: 'text', nullable: true },
    lastTestedAt: { type: 'datetime', nullable: true },
    lastError: { type: 'text', nullable: true },
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
  errorCode?: string | null;
  contactExternalId?: string | null;
  contactCreated: Opt<boolean> = false;
  attempts: Opt<number> = 0;
  syncedAt?: Date | null;
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
    errorCode: { type: 'text', nullable: true },
    contactExternalId: { type: 'text', nullable: true },
    contactCreated: { type: 'boolean' },
    attempts: { type: 'integer' },
    syncedAt: { type: 'datetime', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});

/** A pull of contacts from a CRM into a contact list, checkpointed after every page. */
export class CrmImport {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  provider!: CrmProvider;
  source!: Record<string, unknown>;
  contactListId!: string;
  status: Opt<string> = 'running';
  cursor?: string | null;
  pages: Opt<number> = 0;
  imported: Opt<number> = 0;
  duplicates: Opt<number> = 0;
  invalid: Opt<number> = 0;
  error?: string | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
  finishedAt?: Date | null;
}

export const CrmImportSchema = new EntitySchema<CrmImport>({
  class: CrmImport,
  tableName: 'crm_imports',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    provider: { type: 'text' },
    source: { type: 'json' },
    contactListId: { type: 'uuid' },
    status: { type: 'text' },
    cursor: { type: 'text', nullable: true },
    pages: { type: 'integer' },
    imported: { type: 'integer' },
    duplicates: { type: 'integer' },
    invalid: { type: 'integer' },
    error: { type: 'text', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
    finishedAt: { type: 'datetime', nullable: true },
  },
});
