import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

/** An agent's editable draft; publishing freezes it into an `AgentVersion`. */
export class Agent {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  name!: string;
  description?: string | null;
  draft: Opt<Record<string, unknown>> = {};
  publishedVersionId?: string | null;
  archivedAt?: Date | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const AgentSchema = new EntitySchema<Agent>({
  class: Agent,
  tableName: 'agents',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    name: { type: 'text' },
    description: { type: 'text', nullable: true },
    draft: { type: 'json' },
    publishedVersionId: { type: 'uuid', nullable: true },
    archivedAt: { type: 'datetime', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});

/** Immutable: a call pins one, so a replayed history always meets the definition that handled it. */
export class AgentVersion {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  agentId!: string;
  version!: number;
  definition!: Record<string, unknown>;
  publishedByUserId?: string | null;
  createdAt!: Opt<Date>;
}

export const AgentVersionSchema = new EntitySchema<AgentVersion>({
  class: AgentVersion,
  tableName: 'agent_versions',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    agentId: { type: 'uuid' },
    version: { type: 'integer' },
    definition: { type: 'json' },
    publishedByUserId: { type: 'uuid', nullable: true },
    createdAt: createdAtColumn,
  },
});
