/**
 * Outbound campaigns: drafts written and checked here, launched into a `campaignWorkflow`, steered
 * with its updates (pause, resume, cancel, settings edits) and watched through progress read from
 * campaign_contacts and campaign_attempts (the tables are authoritative; the workflow's query only
 * adds what is live), also as server-sent events. Every role may read; owners, admins and campaign
 * managers write.
 */
import { Readable } from 'node:stream';
import type { EntityManager } from '@mikro-orm/postgresql';
import { LockMode } from '@mikro-orm/postgresql';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { z } from 'zod';
import {
  CAMPAIGN_CONTACT_STATUSES,
  CAMPAIGN_STATUSES,
  campaignProgressQuery,
  campaignWorkflowId,
  cancelCampaignUpdate,
  editCampaignUpdate,
  pauseCampaignUpdate,
  resumeCampaignUpdate,
  type CampaignContactStatus,
  type CampaignProgress,
  type CampaignSettings,
  type CampaignStatus,
} from '../../contracts/campaign';
import { AgentVersion, Campaign, PhoneNumber, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import type { ApiDeps } from '../deps';
import { AppError, ConflictError, NotFoundError, ServiceUnavailableError, ValidationError } from '../errors';
import type { ApiRouter, AuthContext } from '../routing';
import { idParams } from '../schemas';
import { recordAudit } from '../services/audit';
import { importContactsCsv } from '../services/contact-import';
import {
  checkCampaignPlan,
  contactTimeZones,
  launchCampaign,
  storedCampaignPlan,
  tenantQuota,
  checkOutboundAllowed,
  type CampaignPlan,
  type TenantQuota,
} from '../services/campaign-launch';
import {
  campaignSettingsInput,
  campaignSettingsView,
  checkCallingWindowsOpen,
  checkConcurrencyWithinPlan,
  defaultCampaignSettings,
  EDITABLE_WHILE_RUNNING,
  mergeCampaignSettings,
  resolveStoredSettings,
  settingsEditFrom,
} from '../services/campaign-settings';

export const CAMPAIGN_MANAGERS = ['owner', 'admin', 'campaign_manager'] as const satisfies readonly Role[];

export { CAMPAIGN_STATUSES };
const FINISHED: readonly string[] = ['completed', 'canceled', 'failed'];
const CONTACT_STATUSES = CAMPAIGN_CONTACT_STATUSES;

/** A CSV sent inline is imported into a new list; larger files go through the contacts API. */
export const CAMPAIGN_CSV_MAX_BYTES = 5 * 1024 * 1024;
/** JSON escaping may double a CSV (quotes): the create route's own body limit, set in app.ts. */
export const CAMPAIGN_CREATE_BODY_LIMIT = '11mb';

/** How long a settings edit, pause, resume or cancel may wait for the workflow. */
const UPDATE_TIMEOUT_MS = 15_000;
/** The workflow's live figures are a bonus: progress never waits long for them. */
const QUERY_TIMEOUT_MS = 1_000;
const EVENTS_POLL_MS = 500;
const EVENTS_PING_MS = 15_000;

// ---- request shapes -------------------------------------------------------------------------

const nameSchema = z.string().trim().min(1, 'must not be empty').max(190);
const agentVersionSchema = z
  .union([z.number().int().positive(), z.uuid('must be a version number or a version id')])
  .meta({
    description: 'A version number or version id of the agent; default: its published version (pinned)',
  });
const callerNumberSchema = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .meta({ description: 'A phone number of this account, as typed (E.164 or national format)' });
const dateSchema = z.iso.datetime({ offset: true }).transform((v) => new Date(v));
const csvSchema = z
  .string()
  .min(1, 'must not be empty')
  .refine((csv) => Buffer.byteLength(csv) <= CAMPAIGN_CSV_MAX_BYTES, 'must be at most 5 MB')
  .meta({
    description:
      'Contacts as CSV (header row: phone, name, email, time_zone, …); imported into a new list "<name> contacts"',
  });

const createBody = z
  .object({
    name: nameSchema,
    agentId: z.uuid('must be a UUID'),
    agentVersion: agentVersionSchema.optional(),
    callerNumberId: z.uuid('must be a UUID').optional(),
    callerNumber: callerNumberSchema.optional(),
    contactListId: z.uuid('must be a UUID').optional(),
    csv: csvSchema.optional(),
    startsAt: dateSchema.optional(),
    endsAt: dateSchema.optional(),
    settings: campaignSettingsInput.optional(),
  })
  .superRefine((body, ctx) => {
    oneOf(ctx, body, 'callerNumberId', 'callerNumber');
    oneOf(ctx, body, 'contactListId', 'csv');
  });

function oneOf(ctx: z.RefinementCtx, body: Record<string, unknown>, a: string, b: string): void {
  const given = [a, b].filter((key) => body[key] !== undefined);
  if (given.length === 1) return;
  ctx.addIssue({
    code: 'custom',
    path: [given.length ? b : a],
    message: given.length ? `give either ${a} or ${b}, not both` : `give ${a} or ${b}`,
  });
}

const patchBody = z
  .object({
    name: nameSchema.optional(),
    agentId: z.uuid('must be a UUID').optional(),
    agentVersion: agentVersionSchema.nullable().optional(),
    callerNumberId: z.uuid('must be a UUID').optional(),
    callerNumber: callerNumberSchema.optional(),
    contactListId: z.uuid('must be a UUID').optional(),
    startsAt: dateSchema.nullable().optional(),
    endsAt: dateSchema.nullable().optional(),
    settings: campaignSettingsInput.optional(),
  })
  .superRefine((body, ctx) => {
    if (body.callerNumberId !== undefined && body.callerNumber !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['callerNumber'],
        message: 'give either callerNumberId or callerNumber, not both',
      });
    }
  });
type PatchBody = z.infer<typeof patchBody>;

const campaignOptionsSchema = z.strictObject({
  pageSize: z.number().int().min(1).max(1000).optional(),
  pagesPerRun: z.number().int().min(1).max(1000).optional(),
  call: z
    .strictObject({
      mediaHeartbeatTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
      mediaConnectTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
    })
    .optional(),
});
const launchBody = z.object({
  options: campaignOptionsSchema
    .optional()
    .meta({ description: 'Test-only knobs (page size, call timeouts); refused unless NODE_ENV is test' }),
});

const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
};

// ---- response shapes ------------------------------------------------------------------------

export const campaignView = z.object({
  id: z.string(),
  name: z.string(),
  status: z.enum(CAMPAIGN_STATUSES),
  agentId: z.string(),
  agentVersionId: z.string().nullable(),
  agentVersion: z.number().nullable(),
  callerNumberId: z.string().nullable(),
  callerNumber: z.string().nullable().meta({ description: 'E.164' }),
  contactListId: z.string().nullable(),
  settings: campaignSettingsView,
  startsAt: z.string().nullable(),
  endsAt: z.string().nullable(),
  launchedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  summary: z.record(z.string(), z.unknown()).nullable(),
  workflowId: z.string().nullable().meta({ description: 'Its campaignWorkflow, once launched' }),
  createdAt: z.string(),
  updatedAt: z.string(),
});
type CampaignView = z.infer<typeof campaignView>;

const countsView = z.object({
  ...Object.fromEntries(CONTACT_STATUSES.map((s) => [s, z.number()])),
  total: z.number(),
} as Record<CampaignContactStatus | 'total', z.ZodNumber>);

export const campaignProgressView = z.object({
  campaignId: z.string(),
  status: z.enum(CAMPAIGN_STATUSES),
  paused: z.boolean(),
  counts: countsView.meta({ description: 'Contacts per state, from campaign_contacts' }),
  attempts: z.object({
    total: z.number().meta({ description: 'Dials placed (or under way)' }),
    notDialed: z.number().meta({
      description: 'Attempts stopped before the dial: paused, canceled, or the window closed meanwhile',
    }),
    byOutcome: z.record(z.string(), z.number()).meta({ description: 'in_progress: not ended yet' }),
  }),
  inFlight: z.number(),
  nextAttemptAt: z.string().nullable(),
  done: z.boolean(),
  summary: z.record(z.string(), z.unknown()).nullable(),
});
export type CampaignProgressView = z.infer<typeof campaignProgressView>;

const campaignContactView = z.object({
  contactId: z.string(),
  phone: z.string(),
  name: z.string().nullable(),
  status: z.enum(CONTACT_STATUSES),
  attempts: z.number(),
  lastOutcome: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  lastCallId: z.string().nullable(),
  updatedAt: z.string(),
});

const campaignAttemptView = z.object({
  id: z.string(),
  contactId: z.string(),
  phone: z.string().nullable(),
  attempt: z.number(),
  callId: z.string().nullable(),
  outcome: z.string().nullable(),
  reason: z.string().nullable(),
  scheduledFor: z.string().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
});

// ---- helpers --------------------------------------------------------------------------------

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);

function toView(
  c: Campaign,
  quota: TenantQuota,
  refs: { versions: Map<string, number>; numbers: Map<string, string> },
  settings?: CampaignSettings,
): CampaignView {
  return {
    id: c.id,
    name: c.name,
    status: c.status as CampaignStatus,
    agentId: c.agentId,
    agentVersionId: c.agentVersionId ?? null,
    agentVersion: c.agentVersionId ? (refs.versions.get(c.agentVersionId) ?? null) : null,
    callerNumberId: c.callerNumberId ?? null,
    callerNumber: c.callerNumberId ? (refs.numbers.get(c.callerNumberId) ?? null) : null,
    contactListId: c.contactListId ?? null,
    settings: settings ?? resolveStoredSettings(c.settings, quota.tenant.timeZone, quota.concurrencyLimit),
    startsAt: iso(c.startsAt),
    endsAt: iso(c.endsAt),
    launchedAt: iso(c.launchedAt),
    finishedAt: iso(c.finishedAt),
    summary: c.summary ?? null,
    workflowId: c.launchedAt ? campaignWorkflowId(c.id) : null,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

/** Views of campaigns, with their version numbers and caller numbers looked up at once. */
async function viewsOf(
  em: EntityManager,
  quota: TenantQuota,
  campaigns: Campaign[],
  settings?: CampaignSettings,
): Promise<CampaignView[]> {
  const versionIds = [...new Set(campaigns.flatMap((c) => (c.agentVersionId ? [c.agentVersionId] : [])))];
  const numberIds = [...new Set(campaigns.flatMap((c) => (c.callerNumberId ? [c.callerNumberId] : [])))];
  const [versions, numbers] = await Promise.all([
    versionIds.length
      ? em.find(AgentVersion, { id: { $in: versionIds } }, { fields: ['id', 'version'] })
      : [],
    numberIds.length ? em.find(PhoneNumber, { id: { $in: numberIds } }, { fields: ['id', 'e164'] }) : [],
  ]);
  const refs = {
    versions: new Map(versions.map((v) => [v.id, v.version])),
    numbers: new Map(numbers.map((n) => [n.id, n.e164])),
  };
  return campaigns.map((c) => toView(c, quota, refs, settings));
}

async function viewOf(
  em: EntityManager,
  quota: TenantQuota,
  campaign: Campaign,
  settings?: CampaignSettings,
): Promise<CampaignView> {
  return (await viewsOf(em, quota, [campaign], settings))[0]!;
}

async function findCampaign(em: EntityManager, id: string, lock = false): Promise<Campaign> {
  const campaign = await em.findOne(Campaign, { id }, lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {});
  if (!campaign) throw new NotFoundError('Campaign', id);
  return campaign;
}

function finishedError(campaign: Campaign): ConflictError {
  return new ConflictError('CAMPAIGN_FINISHED', `Campaign ${campaign.id} is ${campaign.status}`, {
    status: campaign.status,
  });
}

const snapshot = (c: Campaign) => ({
  name: c.name,
  status: c.status,
  agentId: c.agentId,
  agentVersionId: c.agentVersionId ?? null,
  callerNumberId: c.callerNumberId ?? null,
  contactListId: c.contactListId ?? null,
  startsAt: iso(c.startsAt),
  endsAt: iso(c.endsAt),
  settings: c.settings,
});

/** Runs one of the campaign workflow's updates, its failures in the API's terms. */
async function updateCampaignWorkflow(
  deps: ApiDeps,
  campaignId: string,
  run: (handle: WorkflowHandle) => Promise<CampaignProgress>,
): Promise<CampaignProgress> {
  const handle = deps.temporal.workflow.getHandle(campaignWorkflowId(campaignId));
  try {
    return await deps.temporal.withDeadline(Date.now() + UPDATE_TIMEOUT_MS, () => run(handle));
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const message = err.cause instanceof Error ? err.cause.message : err.message;
      throw new ConflictError('CAMPAIGN_UPDATE_REJECTED', message);
    }
    if (err instanceof WorkflowNotFoundError) {
      throw new ConflictError('CAMPAIGN_FINISHED', `Campaign ${campaignId} is no longer running`);
    }
    throw new ServiceUnavailableError(
      'TEMPORAL_UNAVAILABLE',
      'The campaign did not answer in time (Temporal or its worker is unavailable); try again',
      err,
    );
  }
}

function emptyCounts(): Record<CampaignContactStatus | 'total', number> {
  return { ...Object.fromEntries(CONTACT_STATUSES.map((s) => [s, 0])), total: 0 } as Record<
    CampaignContactStatus | 'total',
    number
  >;
}

/**
 * A campaign's progress from its tables; with `live`, the running workflow's query adds what only it
 * knows (contacts in flight, paused) when it answers within a second.
 */
export async function readCampaignProgress(
  deps: ApiDeps,
  tenantId: string,
  campaignId: string,
  live: boolean,
): Promise<CampaignProgressView> {
  const db = await withTenant(deps.orm, tenantId, async (em) => {
    const campaign = await findCampaign(em, campaignId);
    const contacts = await em.execute<{ status: CampaignContactStatus; n: number }[]>(
      `select status, count(*)::int as n from campaign_contacts where campaign_id = ? group by status`,
      [campaignId],
    );
    const attempts = await em.execute<{ outcome: string; n: number }[]>(
      `select coalesce(outcome, 'in_progress') as outcome, count(*)::int as n
         from campaign_attempts where campaign_id = ? group by 1 order by 1`,
      [campaignId],
    );
    const [next] = await em.execute<{ at: Date | string | null }[]>(
      `select min(next_attempt_at) as at from campaign_contacts where campaign_id = ? and status = 'scheduled'`,
      [campaignId],
    );
    return { campaign, contacts, attempts, nextAttemptAt: iso(next?.at) };
  });
  const counts = emptyCounts();
  for (const row of db.contacts) {
    counts[row.status] = row.n;
    counts.total += row.n;
  }
  const byOutcome = Object.fromEntries(db.attempts.map((r) => [r.outcome, r.n]));
  const status = db.campaign.status as CampaignStatus;
  let inFlight = counts.in_progress;
  let paused = status === 'paused';
  if (live && (status === 'running' || status === 'paused')) {
    try {
      const handle = deps.temporal.workflow.getHandle(campaignWorkflowId(campaignId));
      const progress = await deps.temporal.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () =>
        handle.query(campaignProgressQuery),
      );
      inFlight = progress.inFlight;
      paused = progress.paused;
    } catch {
      // No worker, a closing run, Temporal away: the tables alone answer.
    }
  }
  // A cancel marks the row at once; the campaign is done when its workflow has closed the waiting
  // contacts and written the summary (or has ended without one: terminated, failed).
  const done =
    FINISHED.includes(status) &&
    (Boolean(db.campaign.summary) || (live && !(await campaignWorkflowRuns(deps, campaignId))));
  return {
    campaignId,
    status,
    paused,
    counts,
    attempts: {
      total: db.attempts.filter((r) => !r.outcome.startsWith('not_dialed')).reduce((sum, r) => sum + r.n, 0),
      notDialed: db.attempts
        .filter((r) => r.outcome.startsWith('not_dialed'))
        .reduce((sum, r) => sum + r.n, 0),
      byOutcome,
    },
    inFlight,
    nextAttemptAt: db.nextAttemptAt,
    done,
    summary: db.campaign.summary ?? null,
  };
}

/** False once the campaign's workflow has closed (or never ran); true while it runs or when unknown. */
async function campaignWorkflowRuns(deps: ApiDeps, campaignId: string): Promise<boolean> {
  try {
    const description = await deps.temporal.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () =>
      deps.temporal.workflow.getHandle(campaignWorkflowId(campaignId)).describe(),
    );
    return description.status.name === 'RUNNING';
  } catch (err) {
    return !(err instanceof WorkflowNotFoundError);
  }
}

function encodeCursor(value: string): string {
  return Buffer.from(value).toString('base64url');
}

function decodeCursor(cursor: string, valid: (value: string) => boolean): string {
  const value = Buffer.from(cursor, 'base64url').toString();
  if (!valid(value)) {
    throw new ValidationError('Invalid request: query.cursor: is not a cursor from a previous page', [
      { path: 'query.cursor', message: 'is not a cursor from a previous page' },
    ]);
  }
  return value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const E164 = /^\+[1-9][0-9]{6,14}$/;

/** What a PATCH on a draft leaves: the stored campaign with the body over it. */
function patchedPlan(
  campaign: Campaign,
  quota: TenantQuota,
  body: PatchBody,
): CampaignPlan & { name: string } {
  const stored = storedCampaignPlan(campaign, quota);
  const agentChanged = body.agentId !== undefined && body.agentId !== campaign.agentId;
  const callerChanged = body.callerNumberId !== undefined || body.callerNumber !== undefined;
  return {
    name: body.name ?? campaign.name,
    agentId: body.agentId ?? campaign.agentId,
    // Another agent, or `agentVersion: null`: its published version; otherwise the one pinned.
    agentVersion:
      body.agentVersion !== undefined ? body.agentVersion : agentChanged ? null : stored.agentVersion,
    callerNumberId: callerChanged ? (body.callerNumberId ?? null) : stored.callerNumberId,
    callerNumber: callerChanged ? (body.callerNumber ?? null) : null,
    contactListId: body.contactListId ?? stored.contactListId,
    startsAt: body.startsAt !== undefined ? body.startsAt : stored.startsAt,
    endsAt: body.endsAt !== undefined ? body.endsAt : stored.endsAt,
    settings: mergeCampaignSettings(stored.settings, body.settings),
  };
}

/** Fields a PATCH sets that a launched campaign no longer accepts. */
function lockedFields(body: PatchBody): string[] {
  const { settings, ...rest } = body;
  const locked = Object.entries(rest)
    .filter(([, value]) => value !== undefined)
    .map(([key]) => key);
  for (const [key, value] of Object.entries(settings ?? {})) {
    if (value !== undefined && !(EDITABLE_WHILE_RUNNING as readonly string[]).includes(key)) {
      locked.push(`settings.${key}`);
    }
  }
  return locked;
}

// ---- routes ---------------------------------------------------------------------------------

export function registerCampaignRoutes(api: ApiRouter, deps: ApiDeps): void {
  const audit = (auth: AuthContext, action: string, campaignId: string, ip: string | undefined, extra = {}) =>
    withTenant(deps.orm, auth.tenantId, async (em) => {
      recordAudit(em, auth, { action, targetType: 'campaign', targetId: campaignId, ...extra }, ip);
      await em.flush();
    });

  api.route({
    method: 'get',
    path: '/v1/campaigns',
    summary: 'List campaigns, newest first, optionally by status, with cursor pagination',
    tag: 'campaigns',
    access: 'authenticated',
    query: z.object({ status: z.enum(CAMPAIGN_STATUSES).optional(), ...pageQuery }),
    responses: {
      200: {
        description: 'A page of campaigns',
        schema: z.object({ data: z.array(campaignView), nextCursor: z.string().nullable() }),
      },
    },
    handler: async ({ auth, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const conditions: Record<string, unknown>[] = [query.status ? { status: query.status } : {}];
        if (query.cursor) {
          const [at, id] = decodeCursor(query.cursor, (v) => {
            const [d, i] = v.split('|');
            return Boolean(i && UUID.test(i) && !Number.isNaN(new Date(d ?? '').getTime()));
          }).split('|');
          const createdAt = new Date(at!);
          conditions.push({ $or: [{ createdAt: { $lt: createdAt } }, { createdAt, id: { $lt: id } }] });
        }
        const rows = await em.find(
          Campaign,
          { $and: conditions },
          { orderBy: { createdAt: 'desc', id: 'desc' }, limit: query.limit + 1 },
        );
        const page = rows.slice(0, query.limit);
        const last = page[page.length - 1];
        const nextCursor =
          rows.length > query.limit && last
            ? encodeCursor(`${last.createdAt.toISOString()}|${last.id}`)
            : null;
        const quota = await tenantQuota(em, auth.tenantId);
        return { body: { data: await viewsOf(em, quota, page), nextCursor } };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/campaigns',
    summary:
      'Create a draft campaign: an agent (its published version unless named; pinned), a caller number of this account, a contact list (or a CSV imported into a new one) and settings over the defaults',
    tag: 'campaigns',
    access: CAMPAIGN_MANAGERS,
    body: createBody,
    responses: {
      201: {
        description: 'The draft; with a CSV, also the import report',
        schema: campaignView.extend({
          importReport: z.unknown().optional(),
          warnings: z
            .array(z.object({ code: z.string(), timeZone: z.string(), message: z.string() }))
            .optional()
            .meta({ description: 'Time zones of the list where no calling window opens before the end' }),
        }),
      },
      400: {
        description: 'VALIDATION_FAILED: details name each field (windows: settings.windows.<day>.<n>)',
      },
      404: { description: 'AGENT_NOT_FOUND' },
      422: {
        description:
          'AGENT_VERSION_NOT_FOUND, AGENT_NOT_PUBLISHED, CALLER_NUMBER_NOT_FOUND, CONTACT_LIST_NOT_FOUND, CONTACT_LIST_EMPTY (details.importReport for a CSV), CONCURRENCY_OVER_PLAN, CAMPAIGN_ENDS_BEFORE_START, CALLING_WINDOW_NEVER_OPENS',
      },
    },
    handler: async ({ auth, body, req }) => {
      const now = Date.now();
      const planOf = (quota: TenantQuota, contactListId: string | undefined): CampaignPlan => ({
        agentId: body.agentId,
        agentVersion: body.agentVersion,
        callerNumberId: body.callerNumberId,
        callerNumber: body.callerNumber,
        contactListId,
        startsAt: body.startsAt ?? null,
        endsAt: body.endsAt ?? null,
        settings: mergeCampaignSettings(
          defaultCampaignSettings(quota.tenant.timeZone, quota.concurrencyLimit),
          body.settings,
        ),
      });
      /** Checks everything and writes the draft, in the caller's transaction. */
      const create = async (em: EntityManager, contactListId: string, importReport?: unknown) => {
        const quota = await tenantQuota(em, auth.tenantId);
        const plan = planOf(quota, contactListId);
        const ready = await checkCampaignPlan(em, quota, plan, now, importReport);
        const campaign = em.create(Campaign, {
          tenantId: auth.tenantId,
          name: body.name,
          agentId: ready.pinned.agentId,
          agentVersionId: ready.pinned.agentVersionId,
          callerNumberId: ready.callerNumber.id,
          contactListId,
          settings: plan.settings as unknown as Record<string, unknown>,
          startsAt: plan.startsAt,
          endsAt: plan.endsAt,
        });
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'campaign.created',
            targetType: 'campaign',
            targetId: campaign.id,
            after: snapshot(campaign),
          },
          req.ip,
        );
        const view = await viewOf(em, quota, campaign, plan.settings);
        return {
          status: 201,
          body: {
            ...view,
            ...(importReport === undefined ? {} : { importReport }),
            ...(ready.warnings.length > 0 ? { warnings: ready.warnings } : {}),
          },
        };
      };

      if (body.csv === undefined) {
        return withTenant(deps.orm, auth.tenantId, (em) => create(em, body.contactListId!));
      }
      // A CSV: everything that does not depend on the contacts is checked before importing them; the
      // list the import fills is removed again if the campaign is not created after all.
      const region = await withTenant(deps.orm, auth.tenantId, async (em) => {
        const quota = await tenantQuota(em, auth.tenantId);
        await checkCampaignPlan(em, quota, planOf(quota, undefined), now);
        return quota.tenant.defaultRegion;
      });
      const listId = await withTenant(deps.orm, auth.tenantId, async (em) => {
        const [list] = await em.execute<{ id: string }[]>(
          `insert into contact_lists (tenant_id, name) values (?, ?) returning id`,
          [auth.tenantId, `${body.name} contacts`],
        );
        return list!.id;
      });
      try {
        const report = await importContactsCsv(deps, {
          tenantId: auth.tenantId,
          listId,
          stream: Readable.from([Buffer.from(body.csv)]),
          region,
          actor: auth.actor,
          ip: req.ip,
          maxBytes: CAMPAIGN_CSV_MAX_BYTES,
        });
        return await withTenant(deps.orm, auth.tenantId, (em) => create(em, listId, report));
      } catch (err) {
        await withTenant(deps.orm, auth.tenantId, (em) =>
          em.execute(`delete from contact_lists where id = ?`, [listId]),
        ).catch((cleanup: unknown) =>
          deps.logger.error({ err: cleanup, listId }, 'could not remove the list of a campaign not created'),
        );
        throw err;
      }
    },
  });

  api.route({
    method: 'get',
    path: '/v1/campaigns/:id',
    summary: 'Get one campaign',
    tag: 'campaigns',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'The campaign', schema: campaignView } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const campaign = await findCampaign(em, params.id);
        return { body: await viewOf(em, await tenantQuota(em, auth.tenantId), campaign) };
      }),
  });

  api.route({
    method: 'patch',
    path: '/v1/campaigns/:id',
    summary:
      'Change a campaign: a draft any field (checked again as on create); a running or paused one only settings.maxConcurrentCalls, maxCallsPerSecond, windows, retry and voicemail, applied by its workflow at once',
    tag: 'campaigns',
    access: CAMPAIGN_MANAGERS,
    params: idParams,
    body: patchBody,
    responses: {
      200: { description: 'The campaign as changed', schema: campaignView },
      409: {
        description:
          'CAMPAIGN_RUNNING_FIELD_LOCKED (details.fields), CAMPAIGN_FINISHED, CAMPAIGN_UPDATE_REJECTED',
      },
      422: { description: 'As on create' },
      503: { description: 'TEMPORAL_UNAVAILABLE: the running campaign did not take the change' },
    },
    handler: async ({ auth, params, body, req }) => {
      const now = Date.now();
      const outcome = await withTenant(deps.orm, auth.tenantId, async (em) => {
        const campaign = await findCampaign(em, params.id, true);
        if (FINISHED.includes(campaign.status)) throw finishedError(campaign);
        const quota = await tenantQuota(em, auth.tenantId);
        if (campaign.status === 'draft') {
          const before = snapshot(campaign);
          const plan = patchedPlan(campaign, quota, body);
          const ready = await checkCampaignPlan(em, quota, plan, now);
          campaign.name = plan.name;
          campaign.agentId = ready.pinned.agentId;
          campaign.agentVersionId = ready.pinned.agentVersionId;
          campaign.callerNumberId = ready.callerNumber.id;
          campaign.contactListId = plan.contactListId ?? null;
          campaign.startsAt = plan.startsAt ?? null;
          campaign.endsAt = plan.endsAt ?? null;
          campaign.settings = plan.settings as unknown as Record<string, unknown>;
          campaign.updatedAt = new Date(now);
          await em.flush();
          recordAudit(
            em,
            auth,
            {
              action: 'campaign.updated',
              targetType: 'campaign',
              targetId: campaign.id,
              before,
              after: snapshot(campaign),
            },
            req.ip,
          );
          return { view: await viewOf(em, quota, campaign, plan.settings) };
        }
        const locked = lockedFields(body);
        if (locked.length > 0) {
          throw new ConflictError(
            'CAMPAIGN_RUNNING_FIELD_LOCKED',
            `A ${campaign.status} campaign only takes changes to settings.${EDITABLE_WHILE_RUNNING.join(', settings.')}; not to ${locked.join(', ')}`,
            {
              status: campaign.status,
              fields: locked,
              editable: EDITABLE_WHILE_RUNNING.map((f) => `settings.${f}`),
            },
          );
        }
        const current = storedCampaignPlan(campaign, quota);
        const edit = body.settings ? settingsEditFrom(current.settings, body.settings) : {};
        if (!body.settings || Object.keys(edit).length === 0) {
          return { view: await viewOf(em, quota, campaign, current.settings) };
        }
        const merged = mergeCampaignSettings(current.settings, body.settings);
        checkConcurrencyWithinPlan(merged, quota.concurrencyLimit);
        if (body.settings.windows && campaign.contactListId) {
          const zones = await contactTimeZones(em, campaign.contactListId);
          checkCallingWindowsOpen(
            merged,
            { startsAt: campaign.startsAt, endsAt: campaign.endsAt },
            zones,
            now,
          );
        }
        return { edit, before: current.settings, quota };
      });
      if ('view' in outcome) return { body: outcome.view };

      // The workflow checks and persists the edit itself; never hold the campaign's row meanwhile.
      const progress = await updateCampaignWorkflow(deps, params.id, (handle) =>
        handle.executeUpdate(editCampaignUpdate, { args: [outcome.edit] }),
      );
      return withTenant(deps.orm, auth.tenantId, async (em) => {
        recordAudit(
          em,
          auth,
          {
            action: 'campaign.settings_edited',
            targetType: 'campaign',
            targetId: params.id,
            before: { settings: outcome.before },
            after: { edit: outcome.edit, settings: progress.settings },
          },
          req.ip,
        );
        const campaign = await findCampaign(em, params.id);
        return { body: await viewOf(em, outcome.quota, campaign, progress.settings) };
      });
    },
  });

  api.route({
    method: 'delete',
    path: '/v1/campaigns/:id',
    summary: 'Delete a draft campaign (a launched one is canceled instead, and kept)',
    tag: 'campaigns',
    access: CAMPAIGN_MANAGERS,
    params: idParams,
    responses: { 204: { description: 'Deleted' }, 409: { description: 'CAMPAIGN_NOT_DRAFT' } },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const campaign = await findCampaign(em, params.id, true);
        if (campaign.status !== 'draft') {
          throw new ConflictError(
            'CAMPAIGN_NOT_DRAFT',
            `Campaign ${campaign.id} is ${campaign.status}; only drafts are deleted (cancel it instead)`,
            { status: campaign.status },
          );
        }
        const before = snapshot(campaign);
        em.remove(campaign);
        await em.flush();
        recordAudit(
          em,
          auth,
          { action: 'campaign.deleted', targetType: 'campaign', targetId: params.id, before },
          req.ip,
        );
        return { status: 204 };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/campaigns/:id/launch',
    summary:
      'Launch a draft: checks it again, queues every contact of its list and starts its workflow; if the start fails it stays a draft',
    tag: 'campaigns',
    access: CAMPAIGN_MANAGERS,
    params: idParams,
    body: launchBody,
    responses: {
      200: {
        description: 'Running',
        schema: campaignView.extend({ contactsQueued: z.number() }),
      },
      402: { description: "OUTBOUND_SUSPENDED, CAMPAIGN_LIMIT_REACHED (the plan's active campaigns)" },
      409: { description: 'CAMPAIGN_NOT_DRAFT' },
      422: { description: 'As on create' },
      503: { description: 'TEMPORAL_UNAVAILABLE: nothing was launched; still a draft' },
    },
    handler: async ({ auth, params, body, req }) => {
      if (body.options && deps.config.NODE_ENV !== 'test') {
        throw new ValidationError('Invalid request: body.options: is accepted only in tests', [
          { path: 'body.options', message: 'is accepted only in tests (NODE_ENV=test)' },
        ]);
      }
      const launched = await launchCampaign(deps, {
        auth,
        campaignId: params.id,
        options: body.options,
        ip: req.ip,
      });
      return withTenant(deps.orm, auth.tenantId, async (em) => {
        const quota = await tenantQuota(em, auth.tenantId);
        const view = await viewOf(em, quota, launched.campaign);
        return { body: { ...view, contactsQueued: launched.contacts } };
      });
    },
  });

  const controls = [
    {
      verb: 'pause',
      action: 'campaign.paused',
      update: pauseCampaignUpdate,
      summary: 'Pause: no new dial; calls in progress finish',
    },
    {
      verb: 'resume',
      action: 'campaign.resumed',
      update: resumeCampaignUpdate,
      summary: 'Resume a paused campaign',
    },
    {
      verb: 'cancel',
      action: 'campaign.canceled',
      update: cancelCampaignUpdate,
      summary: 'Cancel: no new dial; contacts not yet reached end canceled; the campaign ends',
    },
  ] as const;
  for (const control of controls) {
    api.route({
      method: 'post',
      path: `/v1/campaigns/:id/${control.verb}`,
      summary: control.summary,
      tag: 'campaigns',
      access: CAMPAIGN_MANAGERS,
      params: idParams,
      responses: {
        200: { description: "The workflow's progress after the change" },
        402: { description: 'OUTBOUND_SUSPENDED (resume while an unpaid invoice suspends outbound calling)' },
        409: { description: 'CAMPAIGN_NOT_LAUNCHED, CAMPAIGN_FINISHED, CAMPAIGN_UPDATE_REJECTED' },
        503: { description: 'TEMPORAL_UNAVAILABLE' },
      },
      handler: async ({ auth, params, req }) => {
        const campaign = await withTenant(deps.orm, auth.tenantId, (em) => findCampaign(em, params.id));
        if (campaign.status === 'draft') {
          throw new ConflictError(
            'CAMPAIGN_NOT_LAUNCHED',
            `Campaign ${campaign.id} is a draft; launch it first`,
            {
              status: campaign.status,
            },
          );
        }
        if (FINISHED.includes(campaign.status)) throw finishedError(campaign);
        if (control.verb === 'resume') {
          const quota = await withTenant(deps.orm, auth.tenantId, (em) => tenantQuota(em, auth.tenantId));
          checkOutboundAllowed(quota.tenant);
        }
        const progress = await updateCampaignWorkflow(deps, campaign.id, (handle) =>
          handle.executeUpdate(control.update),
        );
        await audit(auth, control.action, campaign.id, req.ip, {
          before: { status: campaign.status },
          after: { status: progress.status, paused: progress.paused },
        });
        return { body: progress };
      },
    });
  }

  api.route({
    method: 'get',
    path: '/v1/campaigns/:id/progress',
    summary:
      'Progress: contacts per state and attempts per outcome from the database, contacts in flight, the next scheduled attempt, and the summary once done',
    tag: 'campaigns',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'Progress', schema: campaignProgressView } },
    handler: async ({ auth, params }) => ({
      body: await readCampaignProgress(deps, auth.tenantId, params.id, true),
    }),
  });

  api.route({
    method: 'get',
    path: '/v1/campaigns/:id/events',
    summary:
      'Progress as server-sent events: a `progress` event at once and on every change, a `: ping` comment every 15 s, and `done` when the campaign ends (then the stream closes)',
    tag: 'campaigns',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'text/event-stream of progress and done events' } },
    handler: async ({ auth, params, res }) => {
      let last = JSON.stringify(await readCampaignProgress(deps, auth.tenantId, params.id, true));
      res
        .status(200)
        .set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.flushHeaders();
      const send = (event: string, data: string) => res.write(`event: ${event}\ndata: ${data}\n\n`);
      await new Promise<void>((resolve) => {
        let closed = false;
        let poll: NodeJS.Timeout | undefined;
        const ping = setInterval(() => res.write(': ping\n\n'), EVENTS_PING_MS);
        const finish = () => {
          if (closed) return;
          closed = true;
          clearTimeout(poll);
          clearInterval(ping);
          res.end();
          resolve();
        };
        res.on('close', finish);
        const emit = (json: string): boolean => {
          send('progress', json);
          if (!(JSON.parse(json) as CampaignProgressView).done) return false;
          send('done', json);
          finish();
          return true;
        };
        const tick = async () => {
          try {
            const json = JSON.stringify(await readCampaignProgress(deps, auth.tenantId, params.id, true));
            if (closed) return;
            if (json !== last) {
              last = json;
              if (emit(json)) return;
            }
          } catch (err) {
            if (closed) return;
            const e =
              err instanceof AppError ? err : new AppError(500, 'INTERNAL_ERROR', 'Progress is unavailable');
            if (!(err instanceof AppError))
              deps.logger.error({ err, campaignId: params.id }, 'campaign events');
            send('error', JSON.stringify({ code: e.code, message: e.message }));
            finish();
            return;
          }
          poll = setTimeout(() => void tick(), EVENTS_POLL_MS);
        };
        if (!emit(last)) poll = setTimeout(() => void tick(), EVENTS_POLL_MS);
      });
      return {};
    },
  });

  api.route({
    method: 'get',
    path: '/v1/campaigns/:id/contacts',
    summary: "The campaign's contacts with their state, attempts and last outcome, by phone number",
    tag: 'campaigns',
    access: 'authenticated',
    params: idParams,
    query: z.object({ status: z.enum(CONTACT_STATUSES).optional(), ...pageQuery }),
    responses: {
      200: {
        description: 'A page of contacts',
        schema: z.object({ data: z.array(campaignContactView), nextCursor: z.string().nullable() }),
      },
    },
    handler: async ({ auth, params, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        await findCampaign(em, params.id);
        const after = query.cursor ? decodeCursor(query.cursor, (v) => E164.test(v)) : null;
        const rows = await em.execute<
          {
            contact_id: string;
            phone_e164: string;
            name: string | null;
            status: CampaignContactStatus;
            attempts: number;
            last_outcome: string | null;
            next_attempt_at: Date | null;
            last_call_id: string | null;
            updated_at: Date;
          }[]
        >(
          `select cc.contact_id, c.phone_e164, c.name, cc.status, cc.attempts, cc.last_outcome,
                  cc.next_attempt_at, cc.last_call_id, cc.updated_at
             from campaign_contacts cc
             join contacts c on c.tenant_id = cc.tenant_id and c.id = cc.contact_id
            where cc.campaign_id = ?
              and (?::text is null or cc.status = ?)
              and (?::text is null or c.phone_e164 > ?)
            order by c.phone_e164
            limit ?`,
          [params.id, query.status ?? null, query.status ?? null, after, after, query.limit + 1],
        );
        const page = rows.slice(0, query.limit);
        const last = page[page.length - 1];
        return {
          body: {
            data: page.map((r) => ({
              contactId: r.contact_id,
              phone: r.phone_e164,
              name: r.name,
              status: r.status,
              attempts: r.attempts,
              lastOutcome: r.last_outcome,
              nextAttemptAt: iso(r.next_attempt_at),
              lastCallId: r.last_call_id,
              updatedAt: iso(r.updated_at)!,
            })),
            nextCursor: rows.length > query.limit && last ? encodeCursor(last.phone_e164) : null,
          },
        };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/campaigns/:id/attempts',
    summary: "The campaign's dial attempts, newest first, optionally for one contact or outcome",
    tag: 'campaigns',
    access: 'authenticated',
    params: idParams,
    query: z.object({
      contactId: z.uuid().optional(),
      outcome: z.string().max(64).optional(),
      ...pageQuery,
    }),
    responses: {
      200: {
        description: 'A page of attempts',
        schema: z.object({ data: z.array(campaignAttemptView), nextCursor: z.string().nullable() }),
      },
    },
    handler: async ({ auth, params, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        await findCampaign(em, params.id);
        // The cursor is the last attempt's id; its exact (started_at, id) is read back from the row.
        const after = query.cursor ? decodeCursor(query.cursor, (v) => UUID.test(v)) : null;
        const rows = await em.execute<
          {
            id: string;
            contact_id: string;
            phone_e164: string | null;
            attempt: number;
            call_id: string | null;
            outcome: string | null;
            reason: string | null;
            scheduled_for: Date | null;
            started_at: Date;
            ended_at: Date | null;
          }[]
        >(
          `select a.id, a.contact_id, c.phone_e164, a.attempt, a.call_id, a.outcome, a.reason,
                  a.scheduled_for, a.started_at, a.ended_at
             from campaign_attempts a
             left join contacts c on c.tenant_id = a.tenant_id and c.id = a.contact_id
            where a.campaign_id = ?
              and (?::uuid is null or a.contact_id = ?)
              and (?::text is null or a.outcome = ?)
              and (?::uuid is null or (a.started_at, a.id) <
                    (select p.started_at, p.id from campaign_attempts p where p.id = ?))
            order by a.started_at desc, a.id desc
            limit ?`,
          [
            params.id,
            query.contactId ?? null,
            query.contactId ?? null,
            query.outcome ?? null,
            query.outcome ?? null,
            after,
            after,
            query.limit + 1,
          ],
        );
        const page = rows.slice(0, query.limit);
        const last = page[page.length - 1];
        return {
          body: {
            data: page.map((r) => ({
              id: r.id,
              contactId: r.contact_id,
              phone: r.phone_e164,
              attempt: r.attempt,
              callId: r.call_id,
              outcome: r.outcome,
              reason: r.reason,
              scheduledFor: iso(r.scheduled_for),
              startedAt: iso(r.started_at)!,
              endedAt: iso(r.ended_at),
            })),
            nextCursor: rows.length > query.limit && last ? encodeCursor(last.id) : null,
          },
        };
      }),
  });
}
