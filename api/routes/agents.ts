/**
 * Agents: an editable draft and immutable published versions. Designers (and owners, admins) edit,
 * publish and roll back; every role may read. Drafts are validated on every write (422
 * AGENT_DEFINITION_INVALID naming each node at fault); tool signing secrets leave the API masked.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { agentDefinitionSchema } from '../../contracts/agent-definition';
import { Agent, AgentVersion, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import type { ApiDeps } from '../deps';
import { NotFoundError } from '../errors';
import type { ApiRouter, AuthContext } from '../routing';
import { idParams } from '../schemas';
import { recordAudit } from '../services/audit';
import {
  diffDefinitions,
  definitionsEqual,
  findLatestVersion,
  parseDefinitionOrThrow,
  publishDraft,
  redactSecrets,
  restoreMaskedSecrets,
} from '../services/agent-versions';

export const AGENT_DESIGNERS = ['owner', 'admin', 'designer'] as const satisfies readonly Role[];

const nameSchema = z.string().trim().min(1).max(200);
const descriptionSchema = z.string().trim().max(2000).nullable().optional();
const definitionInput = z.record(z.string(), z.unknown()).meta({
  description:
    'An agent definition (the shape of `definition` in the responses). Checked field by field and as a flow graph; problems come back as 422 AGENT_DEFINITION_INVALID with details.issues. A tool signingSecret sent back in its masked form (as returned) keeps the stored secret.',
});
const agentBody = z.object({ name: nameSchema, description: descriptionSchema, definition: definitionInput });

const versionNumber = z.coerce.number().int().min(1);
const versionParams = idParams.extend({ version: versionNumber });
const versionRef = z.union([z.literal('draft'), versionNumber]);

const definitionView = agentDefinitionSchema.meta({
  description: 'The agent definition; tool signing secrets are masked as ••••1234.',
});
const agentSummaryView = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  publishedVersion: z.number().int().nullable(),
  language: z.string().meta({ description: "The draft's language tag" }),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const agentView = agentSummaryView.extend({
  publishedVersionId: z.string().nullable(),
  latestVersion: z.number().int().nullable(),
  definition: definitionView,
});
const versionSummaryView = z.object({
  id: z.string(),
  version: z.number().int(),
  createdAt: z.string(),
  publishedBy: z.string().nullable().meta({ description: 'The publishing user id; null for an API key' }),
  current: z.boolean().meta({ description: 'Whether this is the published version calls use' }),
});
const versionView = versionSummaryView.extend({ definition: definitionView });
const publishedView = z.object({ id: z.string(), version: z.number().int(), createdAt: z.string() });
const diffView = z.object({
  from: z.union([z.number().int(), z.literal('draft')]),
  to: z.union([z.number().int(), z.literal('draft')]),
  changes: z.array(
    z.object({
      path: z.string(),
      kind: z.enum(['added', 'removed', 'changed']),
      before: z.unknown().optional(),
      after: z.unknown().optional(),
    }),
  ),
});

async function findAgent(em: EntityManager, id: string): Promise<Agent> {
  const agent = await em.findOne(Agent, { id, archivedAt: null });
  if (!agent) throw new NotFoundError('Agent', id);
  return agent;
}

async function findVersion(em: EntityManager, agent: Agent, version: number): Promise<AgentVersion> {
  const found = await em.findOne(AgentVersion, { agentId: agent.id, version });
  if (!found) throw new NotFoundError('Agent version', `${agent.id} v${version}`);
  return found;
}

async function publishedNumber(em: EntityManager, agent: Agent): Promise<number | null> {
  if (!agent.publishedVersionId) return null;
  const published = await em.findOne(AgentVersion, { id: agent.publishedVersionId });
  return published?.version ?? null;
}

async function toAgentView(em: EntityManager, agent: Agent): Promise<z.infer<typeof agentView>> {
  const latest = await findLatestVersion(em, agent.id);
  const published =
    latest && latest.id === agent.publishedVersionId ? latest.version : await publishedNumber(em, agent);
  return {
    id: agent.id,
    name: agent.name,
    description: agent.description ?? null,
    publishedVersion: published,
    language: languageOf(agent.draft),
    publishedVersionId: agent.publishedVersionId ?? null,
    latestVersion: latest?.version ?? null,
    createdAt: agent.createdAt.toISOString(),
    updatedAt: agent.updatedAt.toISOString(),
    definition: redactSecrets(agent.draft) as z.infer<typeof definitionView>,
  };
}

function toVersionSummary(
  agent: Agent,
  v: Pick<AgentVersion, 'id' | 'version' | 'createdAt' | 'publishedByUserId'>,
): z.infer<typeof versionSummaryView> {
  return {
    id: v.id,
    version: v.version,
    createdAt: v.createdAt.toISOString(),
    publishedBy: v.publishedByUserId ?? null,
    current: v.id === agent.publishedVersionId,
  };
}

/** A stored draft's language (drafts saved before it had a default lack it). */
function languageOf(draft: unknown): string {
  const language = (draft as { language?: unknown } | null)?.language;
  return typeof language === 'string' ? language : 'en-US';
}

const userId = (auth: AuthContext) => (auth.actor.type === 'user' ? auth.actor.id : null);
const snapshot = (a: Agent) => ({ name: a.name, description: a.description ?? null });

export function registerAgentRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/agents',
    summary: "List the tenant's agents (archived ones excluded)",
    tag: 'agents',
    access: 'authenticated',
    responses: { 200: { description: 'Agents', schema: z.object({ data: z.array(agentSummaryView) }) } },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const agents = await em.find(Agent, { archivedAt: null }, { orderBy: { updatedAt: 'desc' } });
        const publishedIds = agents
          .map((a) => a.publishedVersionId)
          .filter((id): id is string => Boolean(id));
        const versions = publishedIds.length
          ? await em.find(AgentVersion, { id: { $in: publishedIds } }, { fields: ['id', 'version'] })
          : [];
        const numbers = new Map(versions.map((v) => [v.id, v.version]));
        return {
          body: {
            data: agents.map((a) => ({
              id: a.id,
              name: a.name,
              description: a.description ?? null,
              publishedVersion: a.publishedVersionId ? (numbers.get(a.publishedVersionId) ?? null) : null,
              language: languageOf(a.draft),
              createdAt: a.createdAt.toISOString(),
              updatedAt: a.updatedAt.toISOString(),
            })),
          },
        };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/agents',
    summary: 'Create an agent from a definition (stored as its draft)',
    tag: 'agents',
    access: AGENT_DESIGNERS,
    body: agentBody,
    responses: {
      201: { description: 'Created', schema: agentView },
      422: { description: 'AGENT_DEFINITION_INVALID: details.issues names each problem and its node' },
    },
    handler: async ({ auth, body, req }) => {
      const restored = restoreMaskedSecrets(body.definition, null);
      const definition = parseDefinitionOrThrow(restored.definition, restored.issues);
      return withTenant(deps.orm, auth.tenantId, async (em) => {
        const agent = em.create(Agent, {
          tenantId: auth.tenantId,
          name: body.name,
          description: body.description ?? null,
          draft: definition,
        });
        await em.flush();
        recordAudit(
          em,
          auth,
          { action: 'agent.created', targetType: 'agent', targetId: agent.id, after: snapshot(agent) },
          req.ip,
        );
        return { status: 201, body: await toAgentView(em, agent) };
      });
    },
  });

  api.route({
    method: 'get',
    path: '/v1/agents/:id',
    summary: 'Get an agent with its draft definition and version numbers',
    tag: 'agents',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'Agent', schema: agentView } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => ({
        body: await toAgentView(em, await findAgent(em, params.id)),
      })),
  });

  api.route({
    method: 'put',
    path: '/v1/agents/:id',
    summary: "Replace an agent's name, description and draft definition",
    tag: 'agents',
    access: AGENT_DESIGNERS,
    params: idParams,
    body: agentBody,
    responses: {
      200: { description: 'Updated', schema: agentView },
      422: { description: 'AGENT_DEFINITION_INVALID: details.issues names each problem and its node' },
    },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const agent = await findAgent(em, params.id);
        const restored = restoreMaskedSecrets(body.definition, agent.draft);
        const definition = parseDefinitionOrThrow(restored.definition, restored.issues);
        const before = snapshot(agent);
        const definitionChanged = !definitionsEqual(agent.draft, definition);
        agent.name = body.name;
        agent.description = body.description ?? null;
        agent.draft = definition;
        // Touch the row even when only the definition changed, so updatedAt moves.
        agent.updatedAt = new Date();
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'agent.updated',
            targetType: 'agent',
            targetId: agent.id,
            before,
            after: { ...snapshot(agent), definitionChanged },
          },
          req.ip,
        );
        return { body: await toAgentView(em, agent) };
      }),
  });

  api.route({
    method: 'delete',
    path: '/v1/agents/:id',
    summary: 'Archive an agent; its versions stay for the calls that used them',
    tag: 'agents',
    access: AGENT_DESIGNERS,
    params: idParams,
    responses: { 204: { description: 'Archived' } },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const agent = await findAgent(em, params.id);
        agent.archivedAt = new Date();
        recordAudit(
          em,
          auth,
          { action: 'agent.deleted', targetType: 'agent', targetId: agent.id, before: snapshot(agent) },
          req.ip,
        );
        return { status: 204 };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/agents/:id/publish',
    summary: 'Freeze the draft as the next version and make it the one new calls use',
    tag: 'agents',
    access: AGENT_DESIGNERS,
    params: idParams,
    body: z.object({ note: z.string().trim().max(500).optional() }),
    responses: {
      201: { description: 'Published', schema: publishedView },
      409: { description: 'NO_CHANGES: the draft equals the latest version' },
      422: { description: 'AGENT_DEFINITION_INVALID: the draft no longer validates' },
    },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const { agent, version } = await publishDraft(em, params.id, userId(auth));
        recordAudit(
          em,
          auth,
          {
            action: 'agent.published',
            targetType: 'agent',
            targetId: agent.id,
            after: {
              version: version.version,
              versionId: version.id,
              ...(body.note ? { note: body.note } : {}),
            },
          },
          req.ip,
        );
        return {
          status: 201,
          body: { id: version.id, version: version.version, createdAt: version.createdAt.toISOString() },
        };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/agents/:id/versions',
    summary: "List an agent's published versions, newest first",
    tag: 'agents',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'Versions', schema: z.object({ data: z.array(versionSummaryView) }) } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const agent = await findAgent(em, params.id);
        const versions = await em.find(
          AgentVersion,
          { agentId: agent.id },
          {
            orderBy: { version: 'desc' },
            fields: ['id', 'version', 'createdAt', 'publishedByUserId'],
          },
        );
        return { body: { data: versions.map((v) => toVersionSummary(agent, v)) } };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/agents/:id/versions/:version',
    summary: 'Get one published version with its frozen definition',
    tag: 'agents',
    access: 'authenticated',
    params: versionParams,
    responses: { 200: { description: 'Version', schema: versionView } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const agent = await findAgent(em, params.id);
        const version = await findVersion(em, agent, params.version);
        return {
          body: {
            ...toVersionSummary(agent, version),
            definition: redactSecrets(version.definition) as z.infer<typeof definitionView>,
          },
        };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/agents/:id/diff',
    summary: 'What changed between two versions, or between a version and the draft',
    tag: 'agents',
    access: 'authenticated',
    params: idParams,
    query: z.object({ from: versionRef, to: versionRef.default('draft') }),
    responses: { 200: { description: 'Changes, nodes and edges matched by id', schema: diffView } },
    handler: async ({ auth, params, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const agent = await findAgent(em, params.id);
        const resolve = async (ref: 'draft' | number) =>
          ref === 'draft' ? agent.draft : (await findVersion(em, agent, ref)).definition;
        const changes = diffDefinitions(await resolve(query.from), await resolve(query.to));
        return { body: { from: query.from, to: query.to, changes } };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/agents/:id/rollback',
    summary: "Copy a version's definition into the draft (publish it to make calls use it)",
    tag: 'agents',
    access: AGENT_DESIGNERS,
    params: idParams,
    body: z.object({ version: z.number().int().min(1) }),
    responses: { 200: { description: 'The agent with its new draft', schema: agentView } },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const agent = await findAgent(em, params.id);
        const version = await findVersion(em, agent, body.version);
        agent.draft = structuredClone(version.definition);
        agent.updatedAt = new Date();
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'agent.rolled_back',
            targetType: 'agent',
            targetId: agent.id,
            after: { draftFromVersion: version.version, versionId: version.id },
          },
          req.ip,
        );
        return { body: await toAgentView(em, agent) };
      }),
  });
}
