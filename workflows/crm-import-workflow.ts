/**
 * crmImportWorkflow (`crm-import:<importId>`, queue `integrations`): pulls contacts from a HubSpot
 * list or a Salesforce SOQL filter into a Parley contact list, one page per activity. Each page is
 * committed together with its checkpoint (the CRM's cursor) in `crm_imports`, so a retry, a worker
 * crash or a continue-as-new resumes at the next page and never imports a page twice. A refusal
 * from the CRM (bad list id, bad filter, credentials) ends the import as `failed` with its reason.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CrmImportInput, CrmImportResult } from '../contracts/crm';

const DEFAULT_PAGE_SIZE = 100;
/** Pages per run before continuing as new (each page is a handful of history events). */
const PAGES_PER_RUN = 500;

const db = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
const crm = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '24 hours',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

export async function crmImportWorkflow(
  input: CrmImportInput & { cursor?: string | null },
): Promise<CrmImportResult> {
  let cursor = input.cursor ?? null;
  for (let page = 0; ; page++) {
    if (page >= PAGES_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof crmImportWorkflow>({ ...input, cursor });
    }
    try {
      const step = await crm.importCrmPage({
        tenantId: input.tenantId,
        importId: input.importId,
        provider: input.provider,
        source: input.source,
        contactListId: input.contactListId,
        cursor,
        pageSize: input.pageSize ?? DEFAULT_PAGE_SIZE,
      });
      if (step.done) return { status: 'completed', ...step.totals };
      cursor = step.nextCursor;
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      const error = cause instanceof ApplicationFailure || cause ? cause.message : String(err);
      await db.failCrmImport({ tenantId: input.tenantId, importId: input.importId, error });
      return { status: 'failed', pages: page, imported: 0, duplicates: 0, invalid: 0, error };
    }
  }
}
