/**
 * Contract of the CRM workflows: `crmSyncWorkflow` writes one finished call into one CRM exactly
 * once; `crmImportWorkflow` pulls a CRM's contacts into a Parley contact list, page by page.
 */
import { TASK_QUEUES } from '../temporal-config/task-queues';
import type { CrmImportSource, CrmProviderName } from '../activities/crm/types';

export type { CrmImportSource, CrmProviderName } from '../activities/crm/types';

export const CRM_PROVIDERS = ['hubspot', 'salesforce'] as const satisfies readonly CrmProviderName[];
export const CRM_SYNC_WORKFLOW = 'crmSyncWorkflow';
export const CRM_IMPORT_WORKFLOW = 'crmImportWorkflow';
export const CRM_QUEUE = TASK_QUEUES.integrations;

export function crmSyncWorkflowId(callId: string, provider: CrmProviderName): string {
  return `crm-sync:${callId}:${provider}`;
}

export function crmImportWorkflowId(importId: string): string {
  return `crm-import:${importId}`;
}

export interface CrmSyncInput {
  tenantId: string;
  callId: string;
  provider: CrmProviderName;
}

export type CrmSyncStatus = 'synced' | 'failed' | 'skipped';

/** What a call's sync record says: `pending` while the workflow is still at it. */
export type CrmSyncRecordStatus = CrmSyncStatus | 'pending';

export interface CrmSyncResult {
  status: CrmSyncStatus;
  /** The CRM's id of the call record (HubSpot call, Salesforce Task). */
  externalId?: string;
  contactExternalId?: string;
  contactCreated?: boolean;
  /** Why it failed or was skipped, in the provider's words where it gave them. */
  error?: string;
}

export type CrmSyncRecordUpdate = Omit<CrmSyncResult, 'status'> & { status: CrmSyncRecordStatus };

export interface CrmImportInput {
  tenantId: string;
  importId: string;
  provider: CrmProviderName;
  source: CrmImportSource;
  contactListId: string;
  /** Contacts per page read from the CRM (default 100). */
  pageSize?: number;
}

export interface CrmImportResult {
  status: 'completed' | 'failed';
  pages: number;
  imported: number;
  duplicates: number;
  invalid: number;
  error?: string;
}
