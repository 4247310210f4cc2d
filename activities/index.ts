/**
 * Every activity, built by one factory from the clients a worker gives it. Workflows import
 * `Activities` as a type only.
 */
import { createTenantProvisioningActivities, type TenantProvisioningDeps } from './tenant-provisioning';

export type ActivityDeps = TenantProvisioningDeps;

export function createActivities(deps: ActivityDeps) {
  return {
    ...createTenantProvisioningActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
