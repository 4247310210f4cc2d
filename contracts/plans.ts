/**
 * What each plan allows and costs. Admission control reads the concurrent-call limit and the
 * minutes quota from here, campaign launch the number of active campaigns, and the billing cycle
 * the included minutes, the billing increment and the overage price.
 */
import type { Plan } from '../db/entities/tenant';

export interface PlanLimits {
  /** Live voice and browser calls (ringing or in progress) a tenant may have at once. */
  maxConcurrentCalls: number;
  /** Talk minutes included in the monthly price. */
  includedMinutes: number;
  /** Campaigns running or paused at once; null: no limit. */
  maxActiveCampaigns: number | null;
  /**
   * Price of each minute over the included ones, in US cents; null: the plan has no overage, so
   * calls stop (inbound refused, campaign dials held) once the included minutes are used.
   */
  overageCentsPerMinute: number | null;
  /** A call's talk time is billed in whole increments of this many seconds, rounded up. */
  billingIncrementSeconds: number;
}

export const PLAN_LIMITS: Readonly<Record<Plan, Readonly<PlanLimits>>> = {
  free: {
    maxConcurrentCalls: 2,
    includedMinutes: 60,
    maxActiveCampaigns: 1,
    overageCentsPerMinute: null,
    billingIncrementSeconds: 60,
  },
  pro: {
    maxConcurrentCalls: 20,
    includedMinutes: 1_000,
    maxActiveCampaigns: 25,
    overageCentsPerMinute: 9,
    billingIncrementSeconds: 6,
  },
  enterprise: {
    maxConcurrentCalls: 200,
    includedMinutes: 10_000,
    maxActiveCampaigns: null,
    overageCentsPerMinute: 6,
    billingIncrementSeconds: 1,
  },
};

/** The plan's limits; an unknown plan gets the free plan's rather than none. */
export function planLimits(plan: string): Readonly<PlanLimits> {
  return PLAN_LIMITS[plan as Plan] ?? PLAN_LIMITS.free;
}

/**
 * The tenant's limit: `settings.maxConcurrentCalls` when it holds a non-negative integer (a deal
 * negotiated per tenant, or 0 to stop all calls), otherwise its plan's.
 */
export function concurrentCallLimit(
  plan: string,
  settings: Record<string, unknown> | null | undefined,
): number {
  const override = settings?.maxConcurrentCalls;
  if (typeof override === 'number' && Number.isInteger(override) && override >= 0) return override;
  return planLimits(plan).maxConcurrentCalls;
}

/** Talk seconds rounded up to the plan's increment: what one call bills. */
export function billableSeconds(plan: string, talkSeconds: number): number {
  const step = planLimits(plan).billingIncrementSeconds;
  if (talkSeconds <= 0) return 0;
  return Math.ceil(talkSeconds / step) * step;
}

export interface PeriodCharges {
  includedSeconds: number;
  overageSeconds: number;
  /** Overage minutes (rounded up) × the plan's price; 0 for a plan without overage. */
  overageAmountCents: number;
}

/** What a period's billable seconds cost beyond the plan's included minutes. */
export function periodCharges(plan: string, billedSeconds: number): PeriodCharges {
  const limits = planLimits(plan);
  const includedSeconds = limits.includedMinutes * 60;
  const overageSeconds = Math.max(0, billedSeconds - includedSeconds);
  const overageAmountCents =
    limits.overageCentsPerMinute === null ? 0 : Math.ceil(overageSeconds / 60) * limits.overageCentsPerMinute;
  return { includedSeconds, overageSeconds, overageAmountCents };
}
