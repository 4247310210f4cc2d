/**
 * Browser test calls: talk to an agent with the microphone from the dashboard. The api admits the
 * call (same concurrency limit as phone calls), starts its `callWorkflow` on the web channel and
 * hands the browser a signed token for the relay's `/web/stream`; from there the call runs like a
 * phone call, with the relay holding the audio.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CALL_WORKFLOW, callWorkflowId, type CallWorkflowInput } from '../../contracts/call';
import { concurrentCallLimit } from '../../contracts/plans';
import { withTenant } from '../../db/tenant-context';
import { signStreamToken } from '../../lib/stream-token';
import type { ApiDeps } from '../deps';
import { PaymentRequiredError, ServiceUnavailableError, TooManyRequestsError } from '../errors';
import type { ApiRouter } from '../routing';
import { admitCall, markCallFailed } from '../../db/call-admission';
import { callStartOptions, pinAgentVersion } from '../services/call-starts';

const TEST_CALL_ROLES = ['owner', 'admin', 'designer', 'campaign_manager'] as const;

/** Audio the browser sends and receives on the stream: 16-bit PCM at 16 kHz, or μ-law at 8 kHz. */
const SAMPLE_RATES = { pcm16: 16_000, mulaw: 8_000 } as const;

const testCallView = z.object({
  callId: z.string(),
  workflowId: z.string(),
  agentVersionId: z.string().nullable(),
  version: z.number().nullable().meta({ description: 'null: the draft' }),
  streamUrl: z.string().meta({ description: 'The relay WebSocket to open' }),
  token: z.string().meta({ description: 'Single-use; send it when opening the stream' }),
  expiresAt: z.string().meta({ description: 'Open the stream before this instant' }),
  encoding: z.enum(['pcm16', 'mulaw']),
  sampleRate: z.number(),
});

export function registerTestCallRoutes(api: ApiRouter, deps: ApiDeps): void {
  const { config } = deps;

  api.route({
    method: 'post',
    path: '/v1/agents/:agentId/test-calls',
    summary:
      'Start a browser voice call with an agent (its published version, else its draft; or the version named)',
    tag: 'agents',
    access: TEST_CALL_ROLES,
    params: z.object({ agentId: z.uuid('must be a UUID') }),
    body: z.object({
      version: z
        .union([z.literal('draft'), z.number().int().positive(), z.uuid()])
        .optional()
        .meta({ description: '"draft", a version number or a version id; default: published, else draft' }),
      encoding: z.enum(['pcm16', 'mulaw']).default('pcm16'),
    }),
    responses: {
      201: { description: 'Started; open streamUrl with the token', schema: testCallView },
      404: { description: 'AGENT_NOT_FOUND or AGENT_VERSION_NOT_FOUND' },
      402: { description: "MINUTES_EXHAUSTED: a plan without overage has used its month's minutes" },
      429: { description: 'CONCURRENCY_LIMIT: the tenant has as many live calls as its plan allows' },
    },
    handler: async ({ auth, params, body }) => {
      const callId = randomUUID();
      const workflowId = callWorkflowId(callId);
      const pinned = await withTenant(deps.orm, auth.tenantId, async (em) => {
        const pinned = await pinAgentVersion(em, auth.tenantId, params.agentId, body.version, {
          fallbackToDraft: true,
        });
        const limit = concurrentCallLimit(pinned.tenant.plan, pinned.tenant.settings);
        const admission = await admitCall(
          em,
          {
            id: callId,
            tenantId: auth.tenantId,
            workflowId,
            agentId: params.agentId,
            agentVersionId: pinned.agentVersionId,
            direction: 'inbound',
            channel: 'web',
          },
          { limit, recordRejection: false },
        );
        if (admission.outcome === 'rejected' && admission.reason === 'minutes_exhausted') {
          throw new PaymentRequiredError(
            'MINUTES_EXHAUSTED',
            "This month's included call minutes are used up; upgrade the plan to keep calling",
            { plan: pinned.tenant.plan },
          );
        }
        if (admission.outcome === 'rejected') {
          throw new TooManyRequestsError(
            'CONCURRENCY_LIMIT',
            `All ${limit} of this account's concurrent calls are in use; try again when one ends`,
            { limit, live: admission.live },
          );
        }
        return pinned;
      });

      const input: CallWorkflowInput = {
        callId,
        tenantId: auth.tenantId,
        agentId: params.agentId,
        agentVersionId: pinned.agentVersionId,
        direction: 'inbound',
        channel: 'web',
        timeZone: pinned.tenant.timeZone,
      };
      try {
        await deps.temporal.workflow.start(CALL_WORKFLOW, {
          ...callStartOptions(workflowId, input),
          workflowIdConflictPolicy: 'FAIL',
        });
      } catch (err) {
        const reason = `the call workflow could not be started: ${err instanceof Error ? err.message : String(err)}`;
        await withTenant(deps.orm, auth.tenantId, (em) => markCallFailed(em, callId, reason));
        throw new ServiceUnavailableError(
          'TEMPORAL_UNAVAILABLE',
          'Test calls are temporarily unavailable; try again shortly',
          err,
        );
      }

      const { token, claims } = signStreamToken(
        config.STREAM_TOKEN_SECRET,
        { callId, tenantId: auth.tenantId, workflowId, channel: 'web' },
        config.STREAM_TOKEN_TTL_SECONDS,
      );
      return {
        status: 201,
        body: {
          callId,
          workflowId,
          agentVersionId: pinned.agentVersionId,
          version: pinned.version,
          streamUrl: `${config.RELAY_PUBLIC_URL.replace(/\/+$/, '')}/web/stream`,
          token,
          expiresAt: new Date(claims.exp * 1000).toISOString(),
          encoding: body.encoding,
          sampleRate: SAMPLE_RATES[body.encoding],
        },
      };
    },
  });
}
