/**
 * The first workflow round trip through the real dev server: sign-up starts
 * tenantProvisioningWorkflow, whose activity writes to PostgreSQL under the tenant's RLS context.
 */
import { Client, Connection } from '@temporalio/client';
import request from 'supertest';
import { createApp } from '../api/app';
import { activityDepsFromConfig, createActivities } from '../activities';
import { SEARCH_ATTRIBUTES, billingScheduleId, tenantProvisioningWorkflowId } from '../contracts';
import { withTenant } from '../db/tenant-context';
import { createLogger } from '../lib/logger';
import { ownerClient, signUpTenant, startStack, uniqueEmail, type TestStack } from './support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(() => stack.close());

async function auditActions(tenantId: string): Promise<string[]> {
  const rows = await withTenant(stack.orm, tenantId, (em) =>
    em.execute<{ action: string }[]>('select action from audit_log order by created_at'),
  );
  return rows.map((r) => r.action);
}

it('sign-up runs tenantProvisioningWorkflow to completion, visible and searchable in Temporal', async () => {
  const tenant = await signUpTenant(stack.app, 'Workflow Co');
  const handle = stack.temporal.workflow.getHandle(tenantProvisioningWorkflowId(tenant.tenantId));
  expect(await handle.result()).toEqual({ tenantId: tenant.tenantId, status: 'active', activatedNow: true });

  const description = await handle.describe();
  expect(description.status.name).toBe('COMPLETED');
  expect(description.taskQueue).toBe('billing');
  expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.TenantId)).toBe(tenant.tenantId);

  const history = await handle.fetchHistory();
  const scheduled = history.events?.filter((e) => e.activityTaskScheduledEventAttributes) ?? [];
  expect(scheduled.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)).toEqual([
    'activateTenant',
    'ensureStripeCustomer',
    'ensureBillingSchedule',
  ]);
  // The monthly Schedule that closes the tenant's billing periods, on the 1st in its time zone.
  const schedule = await stack.temporal.schedule.getHandle(billingScheduleId(tenant.tenantId)).describe();
  expect(schedule.spec.timezone).toBe('UTC');
  expect(schedule.spec.calendars?.[0]).toMatchObject({
    dayOfMonth: [{ start: 1, end: 1, step: 1 }],
    hour: [{ start: 0, end: 0, step: 1 }],
  });
  expect(schedule.action).toMatchObject({
    type: 'startWorkflow',
    workflowType: 'billingCycleWorkflow',
    taskQueue: 'billing',
  });

  // The activity's write landed in PostgreSQL, under the tenant, exactly once.
  const owner = await ownerClient(stack.config);
  try {
    const { rows } = await owner.query('select status from tenants where id = $1', [tenant.tenantId]);
    expect(rows).toEqual([{ status: 'active' }]);
  } finally {
    await owner.end();
  }
  expect(await auditActions(tenant.tenantId)).toEqual(['tenant.created', 'tenant.activated']);
});

it('a repeated activation (a retried activity or a re-run workflow) changes nothing twice', async () => {
  const tenant = await signUpTenant(stack.app, 'Twice Co');
  await stack.temporal.workflow.getHandle(tenantProvisioningWorkflowId(tenant.tenantId)).result();

  const rerun = await stack.temporal.workflow.execute('tenantProvisioningWorkflow', {
    taskQueue: 'billing',
    workflowId: `${tenantProvisioningWorkflowId(tenant.tenantId)}:rerun`,
    args: [{ tenantId: tenant.tenantId, ownerUserId: tenant.userId }],
  });
  expect(rerun).toMatchObject({ status: 'active', activatedNow: false });
  const direct = await createActivities(activityDepsFromConfig(stack.config, stack.orm)).activateTenant({
    tenantId: tenant.tenantId,
    actorUserId: tenant.userId,
  });
  expect(direct.activatedNow).toBe(false);
  expect(await auditActions(tenant.tenantId)).toEqual(['tenant.created', 'tenant.activated']);
});

it('a tenant that does not exist fails the workflow with a non-retryable TenantNotFound', async () => {
  const missing = '00000000-0000-4000-8000-00000000beef';
  const err = await stack.temporal.workflow
    .execute('tenantProvisioningWorkflow', {
      taskQueue: 'billing',
      workflowId: `tenant-provision-missing-${Date.now()}`,
      args: [{ tenantId: missing, ownerUserId: missing }],
    })
    .catch((e: unknown) => e);
  expect(String((err as { cause?: { cause?: { type?: string } } }).cause?.cause?.type)).toBe(
    'TenantNotFound',
  );
});

it('when Temporal cannot take the workflow, sign-up answers 503 TEMPORAL_UNAVAILABLE and leaves no tenant behind', async () => {
  const deadConnection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS as string });
  await deadConnection.close();
  const app = createApp({
    config: stack.config,
    orm: stack.orm,
    temporal: new Client({ connection: deadConnection }),
    logger: createLogger(stack.config, 'test'),
  });
  const email = uniqueEmail('nope');
  const res = await request(app)
    .post('/v1/auth/signup')
    .send({ tenantName: 'Ghost Co', name: 'G', email, password: 'a long enough password' });
  expect(res.status).toBe(503);
  expect(res.body.error.code).toBe('TEMPORAL_UNAVAILABLE');
  const owner = await ownerClient(stack.config);
  try {
    const { rows } = await owner.query('select count(*)::int as n from users where email = $1', [email]);
    expect(rows[0].n).toBe(0);
  } finally {
    await owner.end();
  }
});
