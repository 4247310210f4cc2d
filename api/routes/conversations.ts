/**
 * The text channel: talk to an agent (a published version, or the draft) without a phone. Each
 * conversation is a real `callWorkflow` with channel `text`, so it shows up in the calls list with
 * its transcript, analysis and usage like any phone call.
 */
import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { z } from 'zod';
import {
  CALL_WORKFLOW,
  callWorkflowId,
  hangupSignal,
  openConversationUpdate,
  stateQuery,
  transcriptQuery,
  userTurnUpdate,
  userTurnUpdateId,
  type CallWorkflowInput,
  type CallWorkflowResult,
  type UserTurnResult,
} from '../../contracts/call';
import { Call } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import type { ApiDeps } from '../deps';
import { AppError, ConflictError, NotFoundError, temporalUnavailable } from '../errors';
import type { ApiRouter } from '../routing';
import { callStartOptions, pinAgentVersion } from '../services/call-starts';

const CONVERSATION_ROLES = ['owner', 'admin', 'designer', 'campaign_manager'] as const;

const replySchema = z.object({
  text: z.string(),
  nodeId: z.string(),
  slots: z.record(z.string(), z.unknown()),
  ended: z.boolean(),
  status: z.string(),
  disposition: z.string().optional(),
  hints: z
    .object({ nodeId: z.string(), slotType: z.string().optional(), choices: z.array(z.string()).optional() })
    .loose(),
});
const callIdParams = z.object({ callId: z.uuid('must be a UUID') });
const messageBody = z.object({
  text: z.string().trim().min(1, 'must not be empty').max(4000),
  /** Strictly increasing; omitted: the next one. Sending the same id twice returns the same reply. */
  turnId: z.number().int().positive().optional(),
});

/** The turn id the client gave, or the one after the workflow's last accepted turn. */
async function turnIdFor(handle: WorkflowHandle, given: number | undefined): Promise<number> {
  return given ?? (await handle.query(stateQuery).catch(updateError)).lastTurnId + 1;
}

/** Maps a rejected or failed update to the API's error shape. */
function updateError(err: unknown): never {
  if (err instanceof WorkflowUpdateFailedError) {
    const message = err.cause instanceof Error ? err.cause.message : err.message;
    if (/stale/.test(message)) throw new ConflictError('TURN_STALE', message);
    if (/ended/.test(message)) throw new ConflictError('CONVERSATION_ENDED', 'The conversation has ended');
    throw new AppError(422, 'TURN_REJECTED', message);
  }
  if (err instanceof WorkflowNotFoundError) throw new NotFoundError('Conversation');
  throw err;
}

export function registerConversationRoutes(api: ApiRouter, deps: ApiDeps): void {
  /** The conversation's workflow, after checking (under RLS) that the call belongs to the tenant. */
  const conversation = async (
    tenantId: string,
    callId: string,
  ): Promise<{ handle: WorkflowHandle; call: Call }> => {
    const call = await withTenant(deps.orm, tenantId, (em) =>
      em.findOne(Call, { id: callId, channel: 'text' }),
    );
    if (!call) throw new NotFoundError('Conversation', callId);
    return { handle: deps.temporal.workflow.getHandle(call.workflowId), call };
  };

  api.route({
    method: 'post',
    path: '/v1/conversations',
    summary: 'Start a text conversation with an agent (its published version, a given version, or the draft)',
    tag: 'conversations',
    access: CONVERSATION_ROLES,
    body: z.object({
      agentId: z.uuid(),
      version: z.union([z.number().int().positive(), z.literal('draft')]).optional(),
      contact: z.record(z.string(), z.unknown()).optional(),
      from: z.string().max(64).optional(),
    }),
    responses: {
      201: {
        description: 'Started; the reply holds the greeting and first prompt',
        schema: z.object({
          callId: z.string(),
          workflowId: z.string(),
          agentVersionId: z.string().nullable(),
          version: z.number().nullable(),
          reply: replySchema,
        }),
      },
    },
    handler: async ({ auth, body }) => {
      const pinned = await withTenant(deps.orm, auth.tenantId, (em) =>
        pinAgentVersion(em, auth.tenantId, body.agentId, body.version, { fallbackToDraft: false }),
      );
      const callId = randomUUID();
      const workflowId = callWorkflowId(callId);
      const input: CallWorkflowInput = {
        callId,
        tenantId: auth.tenantId,
        agentId: body.agentId,
        agentVersionId: pinned.agentVersionId,
        direction: 'inbound',
        channel: 'text',
        from: body.from,
        contact: body.contact,
        timeZone: pinned.tenant.timeZone,
      };
      const start = new WithStartWorkflowOperation(CALL_WORKFLOW, {
        ...callStartOptions(workflowId, input),
        workflowIdConflictPolicy: 'FAIL',
      });
      const reply = await deps.temporal.workflow
        .executeUpdateWithStart(openConversationUpdate, { args: [{}], startWorkflowOperation: start })
        .catch(updateError);
      return {
        status: 201,
        body: { callId, workflowId, agentVersionId: pinned.agentVersionId, version: pinned.version, reply },
      };
    },
  });

  api.route({
    method: 'post',
    path: '/v1/conversations/:callId/messages',
    summary: "Send the user's message; the response is the agent's reply",
    tag: 'conversations',
    access: CONVERSATION_ROLES,
    params: callIdParams,
    body: messageBody,
    responses: {
      200: { description: "The agent's reply", schema: replySchema.extend({ turnId: z.number() }) },
      503: {
        description: 'TEMPORAL_UNAVAILABLE: Temporal cannot be reached; send the same turnId again to retry',
      },
    },
    handler: async ({ auth, params, body }) => {
      const { handle } = await conversation(auth.tenantId, params.callId);
      const turnId = await turnIdFor(handle, body.turnId);
      const reply: UserTurnResult = await handle
        .executeUpdate(userTurnUpdate, {
          args: [{ turnId, text: body.text }],
          updateId: userTurnUpdateId(params.callId, turnId),
        })
        .catch(updateError);
      return { body: reply };
    },
  });

  api.route({
    method: 'post',
    path: '/v1/conversations/:callId/messages/stream',
    summary:
      "Send the user's message; the reply streams back as server-sent events: `delta` events with text as it is generated, then one `reply` event (or `error`)",
    tag: 'conversations',
    access: CONVERSATION_ROLES,
    params: callIdParams,
    body: messageBody,
    responses: { 200: { description: 'text/event-stream of delta, reply and error events' } },
    handler: async ({ auth, params, body, res }) => {
      const { handle } = await conversation(auth.tenantId, params.callId);
      const turnId = await turnIdFor(handle, body.turnId);
      res
        .status(200)
        .set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.flushHeaders();
      const send = (event: string, data: unknown) =>
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      const streams = deps.speechStreams;
      const close = streams?.open(params.callId, turnId, (text) => send('delta', { text }));
      try {
        const reply = await handle.executeUpdate(userTurnUpdate, {
          args: [{ turnId, text: body.text, speakTaskQueue: streams?.taskQueue }],
          updateId: userTurnUpdateId(params.callId, turnId),
        });
        send('reply', reply);
      } catch (err) {
        try {
          updateError(err);
        } catch (mapped) {
          const e =
            mapped instanceof AppError
              ? mapped
              : (temporalUnavailable(mapped) ?? new AppError(500, 'INTERNAL_ERROR', 'The turn failed'));
          send('error', { code: e.code, message: e.message });
        }
      } finally {
        close?.();
        res.end();
      }
      return {};
    },
  });

  api.route({
    method: 'get',
    path: '/v1/conversations/:callId',
    summary: 'The live state of a conversation and its recent transcript',
    tag: 'conversations',
    access: 'authenticated',
    params: callIdParams,
    responses: { 200: { description: 'State' } },
    handler: async ({ auth, params }) => {
      const { handle, call } = await conversation(auth.tenantId, params.callId);
      const description = await handle.describe();
      if (description.status.name !== 'RUNNING') {
        return { body: { callId: call.id, status: call.status, disposition: call.disposition, ended: true } };
      }
      const [state, transcript] = await Promise.all([
        handle.query(stateQuery),
        handle.query(transcriptQuery),
      ]);
      return { body: { ...state, transcript } };
    },
  });

  api.route({
    method: 'post',
    path: '/v1/conversations/:callId/end',
    summary: 'End the conversation; answers with the final status and disposition',
    tag: 'conversations',
    access: CONVERSATION_ROLES,
    params: callIdParams,
    responses: { 200: { description: 'Ended' } },
    handler: async ({ auth, params }) => {
      const { handle } = await conversation(auth.tenantId, params.callId);
      const description = await handle.describe();
      if (description.status.name === 'RUNNING')
        await handle.signal(hangupSignal, { reason: 'ended by the user' });
      const result = (await handle.result()) as CallWorkflowResult;
      return { body: result };
    },
  });
}
