/**
 * The one way code touches tenant data: a transaction with `app.tenant_id` set (transaction-local,
 * so a pooled connection never carries one tenant's id into another's request).
 */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function withTenant<T>(
  orm: MikroORM,
  tenantId: string,
  work: (em: EntityManager) => Promise<T>,
): Promise<T> {
  if (!UUID.test(tenantId)) throw new Error(`withTenant: '${tenantId}' is not a tenant id`);
  return orm.em.fork().transactional(async (em) => {
    await em.execute(`select set_config('app.tenant_id', ?, true)`, [tenantId]);
    return work(em);
  });
}

/**
 * Work that has no tenant yet (sign-in lookups through SECURITY DEFINER functions). Runs with no
 * tenant set, so every table read through RLS returns nothing.
 */
export async function withoutTenant<T>(orm: MikroORM, work: (em: EntityManager) => Promise<T>): Promise<T> {
  return orm.em.fork().transactional(async (em) => work(em));
}
