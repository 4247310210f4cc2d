/** Finishes a new tenant's set-up after sign-up. Later steps (Stripe customer, billing schedule) join here. */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { TenantProvisioningInput, TenantProvisioningResult } from '../contracts/tenant-provisioning';

const { activateTenant } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '10 seconds', maximumAttempts: 20 },
});

export async function tenantProvisioningWorkflow(
  input: TenantProvisioningInput,
): Promise<TenantProvisioningResult> {
  const { activatedNow } = await activateTenant({ tenantId: input.tenantId, actorUserId: input.ownerUserId });
  return { tenantId: input.tenantId, status: 'active', activatedNow };
}
