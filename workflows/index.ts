/** Every workflow the workers host. Deterministic code only: see conventions §1 and eslint.config.mjs. */
export { tenantProvisioningWorkflow } from './tenant-provisioning';
export { callWorkflow } from './call-workflow';
export { customerWebhookWorkflow } from './customer-webhook-workflow';
export { campaignWorkflow, campaignContactWorkflow } from './campaign-workflow';
export { crmSyncWorkflow } from './crm-sync-workflow';
export { crmImportWorkflow } from './crm-import-workflow';
export { billingCycleWorkflow } from './billing-cycle-workflow';
