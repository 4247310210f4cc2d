/**
 * What the call workflow writes to PostgreSQL: the call row, its turns, its end, its analysis and
 * its usage record. Every write is idempotent on business keys (call id, turn seq, usage per call),
 * so a retried activity or a replayed workflow never duplicates a row.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { agentDefinitionSchema, type AgentDefinition } from '../contracts/agent-definition';
import type { CallChannel, CallDirection, CallStatus, TranscriptEntry } from '../contracts/call';
import { billableSeconds } from '../contracts/plans';
import { Agent, AgentVersion } from '../db/entities';
import { withTenant } from '../db/tenant-context';
import type { CrmProviderName } from './crm/types';

export interface CallRecordDeps {
  orm: MikroORM;
}

/** A stable UUID from a name (UUIDv5-style, SHA-1): business ids become row ids. */
/** Talk seconds rounded up to the tenant's plan's billing increment. */
async function planRounded(em: EntityManager, tenantId: string, seconds: number): Promise<number> {
  const [tenant] = await em.execute<{ plan: string }[]>(`select plan from tenants where id = ?`, [tenantId]);
  return billableSeconds(tenant?.plan ?? 'free', seconds);
}

export function uuidFromName(name: string): string {
  const hash = createHash('sha1').update(`parley:${name}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export interface LoadedAgent {
  definition: AgentDefinition;
  agentVersionId: string | null;
  version: number | null;
}

export function createCallRecordActivities({ orm }: CallRecordDeps) {
  return {
    /** The pinned version's definition, or a snapshot of the draft for test conversations. */
    async loadAgentDefinition(input: {
      tenantId: string;
      agentId: string;
      agentVersionId: string | null;
    }): Promise<LoadedAgent> {
      return withTenant(orm, input.tenantId, async (em) => {
        let raw: unknown;
        let version: number | null = null;
        if (input.agentVersionId) {
          const found = await em.findOne(AgentVersion, { id: input.agentVersionId, agentId: input.agentId });
          if (!found) {
            throw ApplicationFailure.create({
              type: 'AgentVersionNotFound',
              message: `Agent version ${input.agentVersionId} of agent ${input.agentId} does not exist`,
              nonRetryable: true,
            });
          }
          raw = found.definition;
          version = found.version;
        } else {
          const agent = await em.findOne(Agent, { id: input.agentId });
          if (!agent) {
            throw ApplicationFailure.create({
              type: 'AgentNotFound',
              message: `Agent ${input.agentId} does not exist`,
              nonRetryable: true,
            });
          }
          raw = agent.draft;
        }
        const parsed = agentDefinitionSchema.safeParse(raw);
        if (!parsed.success) {
          throw ApplicationFailure.create({
            type: 'AgentDefinitionInvalid',
            message: `The agent definition is invalid: ${parsed.error.issues[0]?.message ?? 'unknown'}`,
            nonRetryable: true,
          });
        }
        // Tool signing secrets stay in PostgreSQL: history (and the Web UI) never shows them.
        const definition = {
          ...parsed.data,
          tools: parsed.data.tools.map((tool) => ({ ...tool, signingSecret: '' })),
        };
        return { definition, agentVersionId: input.agentVersionId, version };
      });
    },

    /** The signing secret of one of an agent's tools, read where the definition lives. */
    async toolSigningSecret(input: {
      tenantId: string;
      agentId?: string;
      agentVersionId?: string | null;
      toolName: string;
    }): Promise<string> {
      if (!input.agentId) return '';
      return withTenant(orm, input.tenantId, async (em) => {
        const raw = input.agentVersionId
          ? (await em.findOne(AgentVersion, { id: input.agentVersionId, agentId: input.agentId }))?.definition
          : (await em.findOne(Agent, { id: input.agentId }))?.draft;
        const tools =
          (raw as { tools?: { name?: string; signingSecret?: string }[] } | undefined)?.tools ?? [];
        return tools.find((t) => t.name === input.toolName)?.signingSecret ?? '';
      });
    },

    async recordCallStarted(input: {
      tenantId: string;
      callId: string;
      workflowId: string;
      agentId: string;
      agentVersionId: string | null;
      direction: CallDirection;
      channel: CallChannel;
      from?: string;
      to?: string;
      contactId?: string;
      campaignId?: string;
      providerCallSid?: string;
      status: CallStatus;
      startedAt: string;
    }): Promise<void> {
      await withTenant(orm, input.tenantId, (em) =>
        em.execute(
          `insert into calls (id, tenant_id, workflow_id, agent_id, agent_version_id, direction, channel,
             from_number, to_number, contact_id, campaign_id, provider_call_sid, status, started_at)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           on conflict (id) do nothing`,
          [
            input.callId,
            input.tenantId,
            input.workflowId,
            input.agentId,
            input.agentVersionId,
            input.direction,
            input.channel,
            input.from ?? null,
            input.to ?? null,
            input.contactId ?? null,
            input.campaignId ?? null,
            input.providerCallSid ?? null,
            input.status,
            input.startedAt,
          ],
        ),
      );
    },

    async recordCallStatus(input: {
      tenantId: string;
      callId: string;
      status: CallStatus;
      answeredAt?: string;
    }): Promise<void> {
      await withTenant(orm, input.tenantId, (em) =>
        em.execute(
          `update calls set status = ?, answered_at = coalesce(answered_at, ?), updated_at = now() where id = ?`,
          [input.status, input.answeredAt ?? null, input.callId],
        ),
      );
    },

    /** Appends turns; a seq already stored is left as it was (a retry or replay writes nothing twice). */
    async recordTurns(input: {
      tenantId: string;
      callId: string;
      turns: TranscriptEntry[];
    }): Promise<number> {
      if (input.turns.length === 0) return 0;
      return withTenant(orm, input.tenantId, async (em) => {
        const values = input.turns.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?)').join(', ');
        const params = input.turns.flatMap((t) => [
          uuidFromName(`turn:${input.callId}:${t.seq}`),
          input.tenantId,
          input.callId,
          t.seq,
          t.role,
          t.text,
          t.heardText ?? null,
          t.interrupted,
          t.nodeId ?? null,
          JSON.stringify({ ...(t.timings ?? {}), ...(t.turnId !== undefined ? { turnId: t.turnId } : {}) }),
          t.at,
        ]);
        const inserted = await em.execute<{ id: string }[]>(
          `insert into call_turns (id, tenant_id, call_id, seq, role, text, heard_text, interrupted, node_id, timings, created_at)
           values ${values} on conflict (call_id, seq) do nothing returning id`,
          params,
        );
        return inserted.length;
      });
    },

    /** The whole transcript, across continue-as-new runs, for post-call analysis. */
    async loadTranscript(input: {
      tenantId: string;
      callId: string;
    }): Promise<{ role: 'caller' | 'agent' | 'tool' | 'system'; text: string }[]> {
      return withTenant(orm, input.tenantId, async (em) => {
        const rows = await em.execute<
          { role: 'caller' | 'agent' | 'tool' | 'system'; text: string; heard_text: string | null }[]
        >('select role, text, heard_text from call_turns where call_id = ? order by seq', [input.callId]);
        return rows.map((r) => ({ role: r.role, text: r.heard_text ?? r.text }));
      });
    },

    async recordCallEnded(input: {
      tenantId: string;
      callId: string;
      status: CallStatus;
      disposition: string;
      reason?: string;
      endedAt: string;
      durationSeconds: number;
      slots: Record<string, unknown>;
      llmTokens: number;
      /** Relative to the recording store (RECORDINGS_DIR). */
      recording?: { path: string; seconds: number };
    }): Promise<{ webhookSubscribers: number; crmProviders?: CrmProviderName[]; billedByStripe?: boolean }> {
      return withTenant(orm, input.tenantId, async (em) => {
        await em.execute(
          `update calls set status = ?, disposition = ?, end_reason = ?, ended_at = ?, duration_seconds = ?,
             slots = ?::jsonb, llm_tokens = ?,
             recording_path = coalesce(?, recording_path), recording_seconds = coalesce(?, recording_seconds),
             updated_at = now() where id = ?`,
          [
            input.status,
            input.disposition,
            input.reason ?? null,
            input.endedAt,
            input.durationSeconds,
            JSON.stringify(input.slots),
            input.llmTokens,
            input.recording?.path ?? null,
            input.recording?.seconds ?? null,
            input.callId,
          ],
        );
        // Whether the call.ended webhook has anyone to go to (most campaign tenants have no endpoint).
        const [subscribers] = await em.execute<{ n: number }[]>(
          `select count(*)::int as n from webhook_endpoints where enabled and 'call.ended' = any(events)`,
        );
        // The CRMs to tell about the call (connected ones; a broken one records its failure), and
        // whether the tenant's usage goes to Stripe.
        const crm = await em.execute<{ provider: CrmProviderName }[]>(
          `select provider from integrations where status <> 'disconnected' order by provider`,
        );
        const [tenant] = await em.execute<{ stripe_customer_id: string | null }[]>(
          `select stripe_customer_id from tenants where id = ?`,
          [input.tenantId],
        );
        return {
          webhookSubscribers: subscribers?.n ?? 0,
          crmProviders: crm.map((r) => r.provider),
          billedByStripe: Boolean(tenant?.stripe_customer_id),
        };
      });
    },

    async saveCallAnalysis(input: {
      tenantId: string;
      callId: string;
      analysis: Record<string, unknown>;
      summary?: string;
    }): Promise<void> {
      await withTenant(orm, input.tenantId, (em) =>
        em.execute(`update calls set analysis = ?::jsonb, summary = ?, updated_at = now() where id = ?`, [
          JSON.stringify(input.analysis),
          input.summary ?? null,
          input.callId,
        ]),
      );
    },

    /**
     * One usage record per call; its id (derived from the call id) is the Stripe meter event
     * identifier later, so re-reporting can never double-bill.
     */
    async recordUsage(input: {
      tenantId: string;
      callId: string;
      billableSeconds: number;
      llmTokens: number;
      periodStart: string;
    }): Promise<{ usageRecordId: string }> {
      const usageRecordId = uuidFromName(`usage:${input.callId}`);
      await withTenant(orm, input.tenantId, async (em) => {
        // Talk seconds, and what they bill once rounded up to the plan's increment.
        await em.execute(
          `insert into usage_records (id, tenant_id, call_id, kind, quantity, billable_quantity, llm_tokens, period_start)
           values (?, ?, ?, 'call_seconds', ?, ?, ?, ?) on conflict (call_id, kind) do nothing`,
          [
            usageRecordId,
            input.tenantId,
            input.callId,
            input.billableSeconds,
            await planRounded(em, input.tenantId, input.billableSeconds),
            input.llmTokens,
            input.periodStart,
          ],
        );
        // LLM tokens are metered as their own record (their own meter event identifier).
        if (input.llmTokens > 0) {
          await em.execute(
            `insert into usage_records (id, tenant_id, call_id, kind, quantity, billable_quantity, period_start)
             values (?, ?, ?, 'llm_tokens', ?, ?, ?) on conflict (call_id, kind) do nothing`,
            [
              uuidFromName(`usage:${input.callId}:llm_tokens`),
              input.tenantId,
              input.callId,
              input.llmTokens,
              input.llmTokens,
              input.periodStart,
            ],
          );
        }
      });
      return { usageRecordId };
    },
  };
}
