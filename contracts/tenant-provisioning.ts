/** Contract of `tenantProvisioningWorkflow`: started by sign-up, finishes a new tenant's set-up. */
import { TASK_QUEUES } from '../temporal-config/task-queues';

export const TENANT_PROVISIONING_WORKFLOW = 'tenantProvisioningWorkflow';
export const TENANT_PROVISIONING_QUEUE = TASK_QUEUES.billing;

export function tenantProvisioningWorkflowId(tenantId: string): string {
  return `tenant-provision:${tenantId}`;
}

export interface TenantProvisioningInput {
  tenantId: string;
  /** The user who signed up; recorded as the actor of the audit entries. */
  ownerUserId: string;
}

export interface TenantProvisioningResult {
  tenantId: string;
  status: 'active';
  /** False when a previous run had already activated the tenant (the activity is idempotent). */
  activatedNow: boolean;
}
