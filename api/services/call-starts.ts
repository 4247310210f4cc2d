/**
 * What every way of starting a `callWorkflow` from the api shares (text conversations, browser
 * test calls, Twilio's inbound webhook): which agent version a call is pinned to, the call id a
 * CallSid maps to, and the workflow start options with their search attributes.
 */
import type { WorkflowStartOptions } from '@temporalio/client';
import type { EntityManager } from '@mikro-orm/postgresql';
import { uuidFromName } from '../../activities/call-records';
import { SEARCH_ATTRIBUTES } from '../../contracts';
import { CALL_QUEUE, type CallWorkflowInput } from '../../contracts/call';
import { Agent, AgentVersion, Tenant } from '../../db/entities';
import { ConflictError, NotFoundError } from '../errors';

/** A version number, a version id or `'draft'`; undefined: the published version. */
export type AgentVersionRef = number | string | undefined;

export interface PinnedAgent {
  agentId: string;
  /** null: the draft (snapshotted by the workflow when it starts). */
  agentVersionId: string | null;
  version: number | null;
  tenant: Tenant;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The version a new call uses, read inside the tenant's transaction. A named version must exist
 * (404); with none named, the published one, else the draft when `fallbackToDraft`, else 409
 * AGENT_NOT_PUBLISHED.
 */
export async function pinAgentVersion(
  em: EntityManager,
  tenantId: string,
  agentId: string,
  ref: AgentVersionRef,
  options: { fallbackToDraft: boolean },
): Promise<PinnedAgent> {
  const agent = await em.findOne(Agent, { id: agentId, archivedAt: null });
  if (!agent) throw new NotFoundError('Agent', agentId);
  const tenant = await em.findOneOrFail(Tenant, { id: tenantId });
  const draft: PinnedAgent = { agentId, agentVersionId: null, version: null, tenant };
  if (ref === 'draft') return draft;
  if (ref !== undefined) {
    const version =
      typeof ref === 'number'
        ? await em.findOne(AgentVersion, { agentId, version: ref })
        : UUID.test(ref)
          ? await em.findOne(AgentVersion, { agentId, id: ref })
          : null;
    if (!version) throw new NotFoundError('Agent version', String(ref));
    return { agentId, agentVersionId: version.id, version: version.version, tenant };
  }
  const published = agent.publishedVersionId
    ? await em.findOne(AgentVersion, { id: agent.publishedVersionId })
    : null;
  if (published) return { agentId, agentVersionId: published.id, version: published.version, tenant };
  if (options.fallbackToDraft) return draft;
  throw new ConflictError(
    'AGENT_NOT_PUBLISHED',
    'The agent has no published version; publish it or use version "draft"',
  );
}

/** calls.id of a phone call, derived from Twilio's CallSid so a retried webhook finds the same row. */
export function callIdForCallSid(callSid: string): string {
  return uuidFromName(`twilio:${callSid}`);
}

/** Start options every call start shares; the caller adds its id conflict policy. */
export function callStartOptions(
  workflowId: string,
  input: CallWorkflowInput,
): Pick<WorkflowStartOptions, 'workflowId' | 'taskQueue' | 'args' | 'typedSearchAttributes'> {
  return {
    workflowId,
    taskQueue: CALL_QUEUE,
    args: [input],
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.AgentId, value: input.agentId },
    ],
  };
}
