/**
 * What a campaign needs before it may dial, and its launch: the pinned agent version, the tenant's
 * caller number, a non-empty contact list, settings the plan allows and calling windows that open
 * before the end. Launching copies the list into campaign_contacts and marks the campaign running in
 * one transaction, then starts its `campaignWorkflow`; a start that fails undoes the transaction's
 * effects, so a campaign is either launched with a workflow or still a draft.
 */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import type { WorkflowStartOptions } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../contracts';
import {
  CAMPAIGN_QUEUE,
  CAMPAIGN_WORKFLOW,
  campaignWorkflowId,
  type CampaignOptions,
  type CampaignSettings,
  type CampaignWorkflowInput,
} from '../../contracts/campaign';
import { concurrentCallLimit, planLimits } from '../../contracts/plans';
import { Agent, AgentVersion, Campaign, PhoneNumber, Tenant } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { toE164 } from '../../lib/phone';
import type { ApiDeps } from '../deps';
import {
  AppError,
  ConflictError,
  NotFoundError,
  PaymentRequiredError,
  ServiceUnavailableError,
} from '../errors';
import type { AuthContext } from '../routing';
import { recordAudit } from './audit';
import {
  checkCallingWindowsOpen,
  checkCampaignDates,
  checkConcurrencyWithinPlan,
  resolveStoredSettings,
  type WindowWarning,
} from './campaign-settings';

/** How long the api waits for Temporal to accept a campaign's start. */
const START_TIMEOUT_MS = 10_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TenantQuota {
  tenant: Tenant;
  /** The tenant's concurrent-call limit (plan, or its negotiated override). */
  concurrencyLimit: number;
}

export async function tenantQuota(em: EntityManager, tenantId: string): Promise<TenantQuota> {
  const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
  return { tenant, concurrencyLimit: concurrentCallLimit(tenant.plan, tenant.settings) };
}

/**
 * 402 OUTBOUND_SUSPENDED while billing holds the tenant's outbound calling; 402
 * CAMPAIGN_LIMIT_REACHED when the plan's running-or-paused campaigns are all in use.
 */
export async function checkPlanAllowsLaunch(em: EntityManager, quota: TenantQuota): Promise<void> {
  checkOutboundAllowed(quota.tenant);
  const allowed = planLimits(quota.tenant.plan).maxActiveCampaigns;
  if (allowed === null) return;
  // Launches of one tenant take turns, so two at once cannot both see a free slot.
  await em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [
    `campaign-launch:${quota.tenant.id}`,
  ]);
  const [active] = await em.execute<{ n: number }[]>(
    `select count(*)::int as n from campaigns where status in ('running', 'paused')`,
  );
  if ((active?.n ?? 0) >= allowed) {
    throw new PaymentRequiredError(
      'CAMPAIGN_LIMIT_REACHED',
      `The ${quota.tenant.plan} plan allows ${allowed} running or paused campaign${allowed === 1 ? '' : 's'}; finish or cancel one, or upgrade`,
      { plan: quota.tenant.plan, allowed, active: active?.n ?? 0 },
    );
  }
}

/** 402 OUTBOUND_SUSPENDED when an unpaid invoice has suspended the tenant's outbound calling. */
export function checkOutboundAllowed(tenant: Tenant): void {
  if (tenant.billingStatus === 'suspended') {
    throw new PaymentRequiredError(
      'OUTBOUND_SUSPENDED',
      'Outbound calling is suspended until the overdue invoice is paid',
      { billingStatus: tenant.billingStatus },
    );
  }
}

export interface PinnedCampaignAgent {
  agentId: string;
  agentVersionId: string;
  version: number;
}

/**
 * The agent version a campaign calls with: the one named (a number or a version id of this agent),
 * else the published one. 404 AGENT_NOT_FOUND, 422 AGENT_VERSION_NOT_FOUND (also a version of
 * another agent or tenant), 422 AGENT_NOT_PUBLISHED.
 */
export async function pinCampaignAgent(
  em: EntityManager,
  agentId: string,
  ref: number | string | null | undefined,
): Promise<PinnedCampaignAgent> {
  const agent = await em.findOne(Agent, { id: agentId, archivedAt: null });
  if (!agent) throw new NotFoundError('Agent', agentId);
  if (ref !== undefined && ref !== null) {
    const version =
      typeof ref === 'number'
        ? await em.findOne(AgentVersion, { agentId, version: ref })
        : UUID.test(ref)
          ? await em.findOne(AgentVersion, { agentId, id: ref })
          : null;
    if (!version) {
      throw new AppError(422, 'AGENT_VERSION_NOT_FOUND', `Agent ${agentId} has no version ${String(ref)}`, {
        agentId,
        agentVersion: ref,
      });
    }
    return { agentId, agentVersionId: version.id, version: version.version };
  }
  const published = agent.publishedVersionId
    ? await em.findOne(AgentVersion, { id: agent.publishedVersionId })
    : null;
  if (!published) {
    throw new AppError(
      422,
      'AGENT_NOT_PUBLISHED',
      `Agent ${agentId} has no published version; publish it or name a version`,
      { agentId },
    );
  }
  return { agentId, agentVersionId: published.id, version: published.version };
}

/** The tenant's number a campaign calls from, by id or as typed; 422 CALLER_NUMBER_NOT_FOUND. */
export async function findCallerNumber(
  em: EntityManager,
  tenant: Tenant,
  ref: { callerNumberId?: string | null; callerNumber?: string | null },
): Promise<PhoneNumber> {
  let found: PhoneNumber | null = null;
  if (ref.callerNumberId) found = await em.findOne(PhoneNumber, { id: ref.callerNumberId });
  else if (ref.callerNumber) {
    const e164 = toE164(ref.callerNumber, tenant.defaultRegion);
    found = e164 ? await em.findOne(PhoneNumber, { e164 }) : null;
  }
  if (!found) {
    const given = ref.callerNumberId ?? ref.callerNumber ?? '(none)';
    throw new AppError(
      422,
      'CALLER_NUMBER_NOT_FOUND',
      `${given} is not a phone number of this account; register it first`,
      { callerNumberId: ref.callerNumberId ?? null, callerNumber: ref.callerNumber ?? null },
    );
  }
  return found;
}

export interface ContactListInfo {
  id: string;
  name: string;
  members: number;
}

/** A contact list of the tenant with its member count; 422 CONTACT_LIST_NOT_FOUND. */
export async function findContactList(em: EntityManager, listId: string): Promise<ContactListInfo> {
  const [list] = await em.execute<{ id: string; name: string; members: number }[]>(
    `select l.id, l.name, (select count(*) from contact_list_members m where m.list_id = l.id)::int as members
       from contact_lists l where l.id = ?`,
    [listId],
  );
  if (!list) {
    throw new AppError(422, 'CONTACT_LIST_NOT_FOUND', `Contact list ${listId} was not found`, {
      contactListId: listId,
    });
  }
  return list;
}

/** 422 CONTACT_LIST_EMPTY: a campaign with no one to call. */
export function contactListEmpty(list: { id: string; name: string }, report?: unknown): AppError {
  return new AppError(422, 'CONTACT_LIST_EMPTY', `Contact list '${list.name}' has no contacts`, {
    contactListId: list.id,
    ...(report === undefined ? {} : { importReport: report }),
  });
}

/** The distinct time zones of a list's contacts; '' for contacts without one (called in the default zone). */
export async function contactTimeZones(em: EntityManager, listId: string): Promise<string[]> {
  const rows = await em.execute<{ time_zone: string }[]>(
    `select distinct coalesce(c.time_zone, '') as time_zone
       from contact_list_members m
       join contacts c on c.tenant_id = m.tenant_id and c.id = m.contact_id
      where m.list_id = ?`,
    [listId],
  );
  return rows.map((r) => r.time_zone);
}

/** A campaign as written (create, PATCH) or stored, before its references are checked. */
export interface CampaignPlan {
  agentId: string;
  /** A version number or id; null or undefined: the published version. */
  agentVersion?: number | string | null;
  callerNumberId?: string | null;
  callerNumber?: string | null;
  /** undefined: not known yet (a CSV still to import), so the list checks wait. */
  contactListId?: string;
  startsAt?: Date | null;
  endsAt?: Date | null;
  settings: CampaignSettings;
}

export interface ReadyCampaign {
  pinned: PinnedCampaignAgent;
  callerNumber: PhoneNumber;
  list?: ContactListInfo;
  /** Zones of the list where no window opens before the end (their contacts will expire). */
  warnings: WindowWarning[];
}

/**
 * Every check a campaign passes when it is written and again at launch (the agent, number or list
 * may have changed since, the plan may have shrunk, time has passed), in the order a person would
 * fix them: agent, version, number, list, settings, dates, windows.
 */
export async function checkCampaignPlan(
  em: EntityManager,
  quota: TenantQuota,
  plan: CampaignPlan,
  now: number,
  importReport?: unknown,
): Promise<ReadyCampaign> {
  const pinned = await pinCampaignAgent(em, plan.agentId, plan.agentVersion);
  const callerNumber = await findCallerNumber(em, quota.tenant, plan);
  const list = plan.contactListId === undefined ? undefined : await findContactList(em, plan.contactListId);
  if (list && list.members === 0) throw contactListEmpty(list, importReport);
  checkConcurrencyWithinPlan(plan.settings, quota.concurrencyLimit);
  const schedule = { startsAt: plan.startsAt, endsAt: plan.endsAt };
  checkCampaignDates(schedule, now);
  // Without a list yet (a CSV still to import) only the windows themselves can be checked.
  const warnings = list
    ? checkCallingWindowsOpen(plan.settings, schedule, await contactTimeZones(em, list.id), now)
    : checkCallingWindowsOpen(plan.settings, {}, [], now);
  return { pinned, callerNumber, list, warnings };
}

/** A stored campaign's plan: its pinned version, and its settings over the defaults. */
export function storedCampaignPlan(campaign: Campaign, quota: TenantQuota): CampaignPlan {
  return {
    agentId: campaign.agentId,
    agentVersion: campaign.agentVersionId ?? null,
    callerNumberId: campaign.callerNumberId ?? null,
    contactListId: campaign.contactListId ?? undefined,
    startsAt: campaign.startsAt ?? null,
    endsAt: campaign.endsAt ?? null,
    settings: resolveStoredSettings(campaign.settings, quota.tenant.timeZone, quota.concurrencyLimit),
  };
}

/** Start options of a campaign's workflow: its id, queue, input and search attributes. */
export function campaignStartOptions(
  input: CampaignWorkflowInput,
): Pick<
  WorkflowStartOptions,
  'workflowId' | 'taskQueue' | 'args' | 'typedSearchAttributes' | 'workflowIdReusePolicy'
> {
  return {
    workflowId: campaignWorkflowId(input.campaignId),
    taskQueue: CAMPAIGN_QUEUE,
    args: [input],
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.CampaignId, value: input.campaignId },
      { key: SEARCH_ATTRIBUTES.AgentId, value: input.agentId },
    ],
  };
}

export interface LaunchRequest {
  auth: AuthContext;
  campaignId: string;
  /** Test and benchmark knobs; the route accepts them only when NODE_ENV is `test`. */
  options?: CampaignOptions;
  ip?: string;
}

export interface LaunchResult {
  campaign: Campaign;
  workflowId: string;
  /** campaign_contacts rows written. */
  contacts: number;
}

/** True when the campaign's workflow runs (a start that timed out may still have reached Temporal). */
async function workflowRunning(deps: ApiDeps, workflowId: string): Promise<boolean> {
  try {
    const description = await deps.temporal.withDeadline(Date.now() + 5_000, () =>
      deps.temporal.workflow.getHandle(workflowId).describe(),
    );
    return description.status.name === 'RUNNING';
  } catch {
    return false;
  }
}

/** Back to a draft with no contacts: the launch did not happen. */
async function revertLaunch(deps: ApiDeps, request: LaunchRequest, cause: unknown): Promise<void> {
  try {
    await withTenant(deps.orm, request.auth.tenantId, async (em) => {
      await em.execute(`delete from campaign_contacts where campaign_id = ?`, [request.campaignId]);
      await em.execute(
        `update campaigns set status = 'draft', launched_at = null, updated_at = now()
          where id = ? and status = 'running'`,
        [request.campaignId],
      );
      recordAudit(
        em,
        request.auth,
        {
          action: 'campaign.launch_reverted',
          targetType: 'campaign',
          targetId: request.campaignId,
          after: { status: 'draft', reason: cause instanceof Error ? cause.message : String(cause) },
        },
        request.ip,
      );
      await em.flush();
    });
  } catch (err) {
    deps.logger.error({ err, campaignId: request.campaignId }, 'could not revert a failed campaign launch');
  }
}

/**
 * Launches a draft: 409 CAMPAIGN_NOT_DRAFT unless it is one, the 422s of `checkCampaignReady`,
 * 503 TEMPORAL_UNAVAILABLE (and still a draft) when its workflow cannot be started.
 */
export async function launchCampaign(deps: ApiDeps, request: LaunchRequest): Promise<LaunchResult> {
  const { auth, campaignId } = request;
  const now = Date.now();
  const launched = await withTenant(deps.orm, auth.tenantId, async (em) => {
    const campaign = await em.findOne(Campaign, { id: campaignId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!campaign) throw new NotFoundError('Campaign', campaignId);
    if (campaign.status !== 'draft') {
      throw new ConflictError(
        'CAMPAIGN_NOT_DRAFT',
        `Campaign ${campaignId} is ${campaign.status}, not a draft`,
        {
          status: campaign.status,
        },
      );
    }
    const quota = await tenantQuota(em, auth.tenantId);
    await checkPlanAllowsLaunch(em, quota);
    if (!campaign.contactListId) {
      throw new AppError(422, 'CONTACT_LIST_NOT_FOUND', 'The campaign has no contact list', {
        contactListId: null,
      });
    }
    const plan = storedCampaignPlan(campaign, quota);
    const ready = await checkCampaignPlan(em, quota, plan, now);
    const [inserted] = await em.execute<{ n: number }[]>(
      `with added as (
         insert into campaign_contacts (tenant_id, campaign_id, contact_id, status)
         select m.tenant_id, ?, m.contact_id, 'pending' from contact_list_members m where m.list_id = ?
         on conflict (campaign_id, contact_id) do nothing
         returning 1)
       select count(*)::int as n from added`,
      [campaignId, campaign.contactListId],
    );
    campaign.status = 'running';
    campaign.launchedAt = new Date(now);
    campaign.agentVersionId = ready.pinned.agentVersionId;
    campaign.updatedAt = new Date(now);
    recordAudit(
      em,
      auth,
      {
        action: 'campaign.launched',
        targetType: 'campaign',
        targetId: campaign.id,
        after: {
          contacts: inserted?.n ?? 0,
          agentVersionId: ready.pinned.agentVersionId,
          callerId: ready.callerNumber.e164,
        },
      },
      request.ip,
    );
    await em.flush();
    const input: CampaignWorkflowInput = {
      campaignId,
      tenantId: auth.tenantId,
      agentId: campaign.agentId,
      agentVersionId: ready.pinned.agentVersionId,
      callerId: ready.callerNumber.e164,
      settings: plan.settings,
      ...(campaign.startsAt ? { startsAt: campaign.startsAt.toISOString() } : {}),
      ...(campaign.endsAt ? { endsAt: campaign.endsAt.toISOString() } : {}),
      ...(request.options ? { options: request.options } : {}),
    };
    return { campaign, input, contacts: inserted?.n ?? 0 };
  });

  const options = campaignStartOptions(launched.input);
  try {
    await deps.temporal.withDeadline(Date.now() + START_TIMEOUT_MS, () =>
      deps.temporal.workflow.start(CAMPAIGN_WORKFLOW, options),
    );
  } catch (err) {
    if (!(await workflowRunning(deps, options.workflowId))) {
      await revertLaunch(deps, request, err);
      throw new ServiceUnavailableError(
        'TEMPORAL_UNAVAILABLE',
        'The campaign could not be started (Temporal is unavailable); it is still a draft, try again',
        err,
      );
    }
    deps.logger.warn({ err, campaignId }, 'campaign start reported an error, but its workflow runs');
  }
  return { campaign: launched.campaign, workflowId: options.workflowId, contacts: launched.contacts };
}
