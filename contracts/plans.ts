/**
 * What each plan allows. The api's admission control reads the concurrent-call limit from here;
 * billing extends the same table with its prices and quotas.
 */
import type { Plan } from '../db/entities/tenant';

export interface PlanLimits {
  /** Live voice and browser calls (ringing or in progress) a tenant may have at once. */
  maxConcurrentCalls: number;
}

export const PLAN_LIMITS: Readonly<Record<Plan, Readonly<PlanLimits>>> = {
  free: { maxConcurrentCalls: 2 },
  pro: { maxConcurrentCalls: 20 },
  enterprise: { maxConcurrentCalls: 200 },
};

/**
 * The tenant's limit: `settings.maxConcurrentCalls` when it holds a non-negative integer (a deal
 * negotiated per tenant, or 0 to stop all calls), otherwise its plan's. An unknown plan gets the
 * free plan's limit rather than none.
 */
export function concurrentCallLimit(
  plan: string,
  settings: Record<string, unknown> | null | undefined,
): number {
  const override = settings?.maxConcurrentCalls;
  if (typeof override === 'number' && Number.isInteger(override) && override >= 0) return override;
  return (PLAN_LIMITS[plan as Plan] ?? PLAN_LIMITS.free).maxConcurrentCalls;
}
