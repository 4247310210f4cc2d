/**
 * Calls: a filterable, cursor-paginated list, one call's detail with its transcript, per-turn
 * timings, analysis, and a link to its run in the Temporal Web UI, and its recording.
 */
import { recordingFile } from '../services/recordings';
import type { Response } from 'express';
import { z } from 'zod';
import { Call, CallTurn, CrmSyncRecord } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { temporalUiUrl } from '../../temporal-config/connection';
import type { ApiDeps } from '../deps';
import { NotFoundError } from '../errors';
import { findNewestFirst } from '../pagination';
import type { ApiRouter } from '../routing';
import { idParams } from '../schemas';

const callSummary = z.object({
  id: z.string(),
  agentId: z.string().nullable(),
  agentVersionId: z.string().nullable(),
  campaignId: z.string().nullable(),
  direction: z.string(),
  channel: z.string(),
  from: z.string().nullable(),
  to: z.string().nullable(),
  status: z.string(),
  disposition: z.string().nullable(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  durationSeconds: z.number().nullable(),
  recording: z
    .object({ url: z.string(), seconds: z.number().nullable() })
    .nullable()
    .meta({ description: 'The call recording (WAV), when the agent records calls' }),
  createdAt: z.string(),
});

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

function toSummary(c: Call): z.infer<typeof callSummary> {
  return {
    id: c.id,
    agentId: c.agentId ?? null,
    agentVersionId: c.agentVersionId ?? null,
    campaignId: c.campaignId ?? null,
    direction: c.direction,
    channel: c.channel,
    from: c.fromNumber ?? null,
    to: c.toNumber ?? null,
    status: c.status,
    disposition: c.disposition ?? null,
    startedAt: iso(c.startedAt),
    endedAt: iso(c.endedAt),
    durationSeconds: c.durationSeconds ?? null,
    recording: c.recordingPath
      ? { url: `/v1/calls/${c.id}/recording`, seconds: c.recordingSeconds ?? null }
      : null,
    createdAt: c.createdAt.toISOString(),
  };
}

/** Sends the file (with Range support, so a player can seek); false when it vanished meanwhile. */
function sendWav(res: Response, file: string, downloadName: string): Promise<boolean> {
  const headers = {
    'content-type': 'audio/wav',
    'content-disposition': `inline; filename="${downloadName}"`,
  };
  return new Promise((resolve, reject) => {
    res.sendFile(file, { headers }, (err?: Error & { status?: number }) => {
      if (!err || res.headersSent) resolve(true);
      else if (err.status === 404) resolve(false);
      else reject(err);
    });
  });
}

export function registerCallRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/calls',
    summary: 'List calls, newest first, with filters and cursor pagination',
    tag: 'calls',
    access: 'authenticated',
    query: z.object({
      agentId: z.uuid().optional(),
      campaignId: z.uuid().optional(),
      status: z.string().max(32).optional(),
      direction: z.enum(['inbound', 'outbound']).optional(),
      channel: z.enum(['voice', 'text', 'web']).optional(),
      disposition: z.string().max(64).optional(),
      from: z.iso.datetime({ offset: true }).optional(),
      to: z.iso.datetime({ offset: true }).optional(),
      limit: z.coerce.number().int().min(1).max(200).default(50),
      cursor: z.string().max(200).optional(),
    }),
    responses: {
      200: {
        description: 'A page of calls',
        schema: z.object({ data: z.array(callSummary), nextCursor: z.string().nullable() }),
      },
    },
    handler: async ({ auth, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const where: Record<string, unknown> = {};
        if (query.agentId) where.agentId = query.agentId;
        if (query.campaignId) where.campaignId = query.campaignId;
        if (query.status) where.status = query.status;
        if (query.direction) where.direction = query.direction;
        if (query.channel) where.channel = query.channel;
        if (query.disposition) where.disposition = query.disposition;
        const { rows: page, nextCursor } = await findNewestFirst(em, Call, where, query);
        return { body: { data: page.map(toSummary), nextCursor } };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/calls/:id',
    summary:
      "One call: transcript (what the caller heard), turn timings, analysis, slots, and its workflow's link",
    tag: 'calls',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'The call' } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const call = await em.findOne(Call, { id: params.id });
        if (!call) throw new NotFoundError('Call', params.id);
        const turns = await em.find(CallTurn, { callId: call.id }, { orderBy: { seq: 'asc' } });
        const crmSync = await em.find(CrmSyncRecord, { callId: call.id }, { orderBy: { provider: 'asc' } });
        const namespace = encodeURIComponent(deps.config.TEMPORAL_NAMESPACE);
        return {
          body: {
            ...toSummary(call),
            answeredAt: iso(call.answeredAt),
            endReason: call.endReason ?? null,
            slots: call.slots,
            summary: call.summary ?? null,
            analysis: call.analysis ?? null,
            llmTokens: call.llmTokens,
            crmSyncStatus: call.crmSyncStatus ?? null,
            // Per CRM: what it holds for this call, or why it refused it (in the provider's words).
            crmSync: crmSync.map((r) => ({
              provider: r.provider,
              status: r.status,
              externalId: r.externalId ?? null,
              contactExternalId: r.contactExternalId ?? null,
              contactCreated: r.contactCreated,
              error: r.error ?? null,
              errorCode: r.errorCode ?? null,
              syncedAt: iso(r.syncedAt),
              updatedAt: r.updatedAt.toISOString(),
            })),
            workflowId: call.workflowId,
            temporalUrl: `${temporalUiUrl(deps.config)}/namespaces/${namespace}/workflows/${encodeURIComponent(call.workflowId)}`,
            transcript: turns.map((t) => ({
              seq: t.seq,
              role: t.role,
              text: t.text,
              heardText: t.heardText ?? null,
              interrupted: t.interrupted,
              nodeId: t.nodeId ?? null,
              timings: t.timings ?? null,
              at: t.createdAt.toISOString(),
            })),
          },
        };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/calls/:id/recording',
    summary: "The call's recording as WAV (stereo: caller left, agent right)",
    tag: 'calls',
    access: 'authenticated',
    params: idParams,
    responses: {
      200: { description: 'audio/wav' },
      404: { description: 'CALL_NOT_FOUND, or RECORDING_NOT_FOUND when the call has no recording' },
    },
    handler: async ({ auth, params, res }) => {
      const call = await withTenant(deps.orm, auth.tenantId, (em) => em.findOne(Call, { id: params.id }));
      if (!call) throw new NotFoundError('Call', params.id);
      const file = call.recordingPath
        ? await recordingFile(deps.config.RECORDINGS_DIR, call.recordingPath)
        : undefined;
      if (!file || !(await sendWav(res, file, `call-${call.id}.wav`))) {
        throw new NotFoundError('Recording', params.id);
      }
      return {};
    },
  });
}
