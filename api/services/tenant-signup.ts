/**
 * Sign-up: the tenant and its owner are written in one tenant-scoped transaction, then
 * `tenantProvisioningWorkflow` finishes the set-up durably. If Temporal cannot take the workflow,
 * the rows are removed again so a retry starts clean.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import {
  SEARCH_ATTRIBUTES,
  TENANT_PROVISIONING_QUEUE,
  TENANT_PROVISIONING_WORKFLOW,
  tenantProvisioningWorkflowId,
  type TenantProvisioningInput,
  type TenantProvisioningResult,
} from '../../contracts';
import { AuditLogEntry, Tenant, User } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { hashPassword } from '../auth/passwords';
import type { ApiDeps } from '../deps';
import { ServiceUnavailableError } from '../errors';

export interface SignUpInput {
  tenantName: string;
  name: string;
  email: string;
  password: string;
  timeZone?: string;
  defaultRegion?: string;
}

/** How long sign-up waits for provisioning before answering with status `provisioning`. */
const PROVISIONING_WAIT_MS = 5_000;

function slugFor(name: string): string {
  const base = name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `${base || 'tenant'}-${randomBytes(3).toString('hex')}`;
}

export async function signUp(
  deps: ApiDeps,
  input: SignUpInput,
  ip?: string,
): Promise<{ tenant: Tenant; user: User }> {
  const tenantId = randomUUID();
  const userId = randomUUID();
  const passwordHash = await hashPassword(input.password);
  const { tenant, user } = await withTenant(deps.orm, tenantId, async (em) => {
    const tenant = em.create(Tenant, {
      id: tenantId,
      name: input.tenantName,
      slug: slugFor(input.tenantName),
      status: 'provisioning',
      plan: 'free',
      timeZone: input.timeZone ?? 'UTC',
      defaultRegion: input.defaultRegion ?? 'US',
      settings: {},
    });
    // The tenant row must exist before rows that reference it.
    await em.flush();
    const user = em.create(User, {
      id: userId,
      tenantId,
      email: input.email,
      name: input.name,
      passwordHash,
      role: 'owner',
    });
    em.create(AuditLogEntry, {
      tenantId,
      actorType: 'user',
      actorId: userId,
      action: 'tenant.created',
      targetType: 'tenant',
      targetId: tenantId,
      after: { name: input.tenantName, owner: input.email },
      ip: ip ?? null,
    });
    return { tenant, user };
  });

  const workflowInput: TenantProvisioningInput = { tenantId, ownerUserId: userId };
  let handle;
  try {
    handle = await deps.temporal.workflow.start(TENANT_PROVISIONING_WORKFLOW, {
      taskQueue: TENANT_PROVISIONING_QUEUE,
      workflowId: tenantProvisioningWorkflowId(tenantId),
      args: [workflowInput],
      typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.TenantId, value: tenantId }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
      await withTenant(deps.orm, tenantId, (em) => em.nativeDelete(Tenant, { id: tenantId }));
      throw new ServiceUnavailableError(
        'TEMPORAL_UNAVAILABLE',
        'Sign-up is temporarily unavailable; try again shortly',
        err,
      );
    }
    handle = deps.temporal.workflow.getHandle(tenantProvisioningWorkflowId(tenantId));
  }

  // Wait briefly for provisioning; past the bound, answer with `provisioning` and stop polling
  // (the workflow goes on without us).
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), PROVISIONING_WAIT_MS);
  const finished = await deps.temporal.connection
    .withAbortSignal(abort.signal, () => handle.result() as Promise<TenantProvisioningResult>)
    .catch((err: unknown) => {
      if (!abort.signal.aborted) deps.logger.error({ err, tenantId }, 'tenant provisioning failed');
      return undefined;
    })
    .finally(() => clearTimeout(timer));
  if (finished) tenant.status = finished.status;
  return { tenant, user };
}
