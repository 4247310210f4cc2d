/** Side effects of tenant provisioning, all idempotent so a retried activity changes nothing twice. */
import { ApplicationFailure } from '@temporalio/activity';
import { LockMode, type MikroORM } from '@mikro-orm/postgresql';
import { AuditLogEntry, Tenant } from '../db/entities';
import { withTenant } from '../db/tenant-context';

export interface TenantProvisioningDeps {
  orm: MikroORM;
}

export function createTenantProvisioningActivities({ orm }: TenantProvisioningDeps) {
  return {
    /**
     * Moves a tenant from `provisioning` to `active` and records it in the audit log. Run twice,
     * it finds the tenant active and writes nothing.
     */
    async activateTenant(input: {
      tenantId: string;
      actorUserId: string;
    }): Promise<{ activatedNow: boolean }> {
      return withTenant(orm, input.tenantId, async (em) => {
        const tenant = await em.findOne(
          Tenant,
          { id: input.tenantId },
          { lockMode: LockMode.PESSIMISTIC_WRITE },
        );
        if (!tenant) {
          throw ApplicationFailure.create({
            type: 'TenantNotFound',
            message: `Tenant ${input.tenantId} does not exist`,
            nonRetryable: true,
          });
        }
        if (tenant.status !== 'provisioning') return { activatedNow: false };
        tenant.status = 'active';
        em.create(AuditLogEntry, {
          tenantId: tenant.id,
          actorType: 'user',
          actorId: input.actorUserId,
          action: 'tenant.activated',
          targetType: 'tenant',
          targetId: tenant.id,
          before: { status: 'provisioning' },
          after: { status: 'active' },
        });
        return { activatedNow: true };
      });
    },
  };
}
