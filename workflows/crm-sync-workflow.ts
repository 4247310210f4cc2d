/**
 * crmSyncWorkflow (`crm-sync:<callId>:<provider>`, queue `integrations`): after a call ends, tells
 * one CRM about it exactly once — finds the person by phone (creates them when the tenant's
 * integration says so), logs the call on an idempotency key derived from the call id, and records
 * the outcome on the call. Started and abandoned by the call workflow, so a CRM outage never holds
 * a call open; a rate limit waits as long as the provider asks; a refusal is final and kept with
 * the provider's message.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CrmSyncInput, CrmSyncResult } from '../contracts/crm';

/** Test-only knobs; production runs with the defaults. */
export interface CrmSyncOptions {
  /** How long one CRM write may take before it is tried again (default 30 s). */
  writeTimeoutSeconds?: number;
  /** Give up on transient failures after this long in all (default 24 h). */
  giveUpAfterSeconds?: number;
}

const records = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

function crmCalls(options: CrmSyncOptions) {
  return proxyActivities<Activities>({
    startToCloseTimeout: `${options.writeTimeoutSeconds ?? 30} seconds`,
    scheduleToCloseTimeout: `${options.giveUpAfterSeconds ?? 24 * 3600} seconds`,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
  });
}

/** A final refusal (validation, credentials, not connected), with the type that says which. */
function finalFailure(err: unknown): { message: string; code: string } | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && (cause.nonRetryable || cause.type !== 'CrmRateLimited')) {
    return { message: cause.message, code: cause.type ?? 'CrmError' };
  }
  // Retries exhausted (the give-up time passed): the last failure is the reason.
  if (err instanceof ActivityFailure) {
    return { message: cause?.message ?? err.message, code: 'CrmUnavailable' };
  }
  return undefined;
}

export async function crmSyncWorkflow(input: CrmSyncInput & CrmSyncOptions): Promise<CrmSyncResult> {
  const crm = crmCalls(input);
  const key = { tenantId: input.tenantId, callId: input.callId, provider: input.provider };
  const context = await records.loadCrmSyncContext(key);
  if (context.skip !== undefined) {
    const result: CrmSyncResult = { status: 'skipped', error: context.skip };
    await records.recordCrmSync({ ...key, result });
    return result;
  }
  await records.recordCrmSync({ ...key, result: { status: 'pending' } });
  let result: CrmSyncResult;
  let errorCode: string | undefined;
  try {
    const contact = await crm.findOrCreateCrmContact({
      tenantId: input.tenantId,
      provider: input.provider,
      contact: context.contact,
      create: context.createContacts,
    });
    const logged = await crm.logCallToCrm({
      tenantId: input.tenantId,
      provider: input.provider,
      log: context.log,
      contactId: contact.contactId,
    });
    result = {
      status: 'synced',
      externalId: logged.externalId,
      ...(contact.contactId ? { contactExternalId: contact.contactId } : {}),
      contactCreated: contact.created,
    };
  } catch (err) {
    const failure = finalFailure(err);
    if (!failure) throw err;
    result = { status: 'failed', error: failure.message };
    errorCode = failure.code;
  }
  await records.recordCrmSync({ ...key, result, errorCode });
  return result;
}
