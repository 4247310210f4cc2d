/**
 * Finishes a new tenant's set-up after sign-up: activates it, then gives it a Stripe customer
 * (with the plan's metered subscription) and the monthly Schedule that closes its billing periods.
 */
import { patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { TenantProvisioningInput, TenantProvisioningResult } from '../contracts/tenant-provisioning';

const { activateTenant } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '10 seconds', maximumAttempts: 20 },
});
/** Stripe or Temporal being down delays billing set-up; it never undoes the activation. */
const billingSetup = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '24 hours',
  retry: { initialInterval: '1 second', maximumInterval: '5 minutes' },
});

/** Patch id: provisioning also sets up billing (tenants provisioned before it had no such steps). */
const SET_UP_BILLING = 'set-up-billing';

export async function tenantProvisioningWorkflow(
  input: TenantProvisioningInput,
): Promise<TenantProvisioningResult> {
  const { activatedNow } = await activateTenant({ tenantId: input.tenantId, actorUserId: input.ownerUserId });
  if (patched(SET_UP_BILLING)) {
    await billingSetup.ensureStripeCustomer({ tenantId: input.tenantId });
    await billingSetup.ensureBillingSchedule({ tenantId: input.tenantId });
  }
  return { tenantId: input.tenantId, status: 'active', activatedNow };
}
