import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

export type CallDirection = 'inbound' | 'outbound';
export type CallChannel = 'voice' | 'text' | 'web';

/** One conversation; the workflow `call:<providerCallSid or id>` is its durable owner. */
export class Call {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  agentId?: string | null;
  agentVersionId?: string | null;
  campaignId?: string | null;
  contactId?: string | null;
  direction!: CallDirection;
  channel!: CallChannel;
  fromNumber?: string | null;
  toNumber?: string | null;
  providerCallSid?: string | null;
  workflowId!: string;
  status!: string;
  disposition?: string | null;
  startedAt?: Date | null;
  answeredAt?: Date | null;
  endedAt?: Date | null;
  durationSeconds?: number | null;
  summary?: string | null;
  analysis?: Record<string, unknown> | null;
  crmSyncStatus?: string | null;
  slots: Opt<Record<string, unknown>> = {};
  endReason?: string | null;
  llmTokens: Opt<number> = 0;
  /** Relative to RECORDINGS_DIR; written by the relay when the call's recording is complete. */
  recordingPath?: string | null;
  recordingSeconds?: number | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const CallSchema = new EntitySchema<Call>({
  class: Call,
  tableName: 'calls',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    agentId: { type: 'uuid', nullable: true },
    agentVersionId: { type: 'uuid', nullable: true },
    campaignId: { type: 'uuid', nullable: true },
    contactId: { type: 'uuid', nullable: true },
    direction: { type: 'text' },
    channel: { type: 'text' },
    fromNumber: { type: 'text', nullable: true },
    toNumber: { type: 'text', nullable: true },
    providerCallSid: { type: 'text', nullable: true },
    workflowId: { type: 'text' },
    status: { type: 'text' },
    disposition: { type: 'text', nullable: true },
    startedAt: { type: 'datetime', nullable: true },
    answeredAt: { type: 'datetime', nullable: true },
    endedAt: { type: 'datetime', nullable: true },
    durationSeconds: { type: 'integer', nullable: true },
    summary: { type: 'text', nullable: true },
    analysis: { type: 'json', nullable: true },
    crmSyncStatus: { type: 'text', nullable: true },
    slots: { type: 'json' },
    endReason: { type: 'text', nullable: true },
    llmTokens: { type: 'integer' },
    recordingPath: { type: 'text', nullable: true },
    recordingSeconds: { type: 'double', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});

export type TurnRole = 'caller' | 'agent' | 'system' | 'tool';

/** One utterance; `heardText` is what the caller actually heard when the agent was interrupted. */
export class CallTurn {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  callId!: string;
  seq!: number;
  role!: TurnRole;
  text!: string;
  heardText?: string | null;
  interrupted: Opt<boolean> = false;
  nodeId?: string | null;
  timings?: Record<string, number> | null;
  createdAt!: Opt<Date>;
}

export const CallTurnSchema = new EntitySchema<CallTurn>({
  class: CallTurn,
  tableName: 'call_turns',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    callId: { type: 'uuid' },
    seq: { type: 'integer' },
    role: { type: 'text' },
    text: { type: 'text' },
    heardText: { type: 'text', nullable: true },
    interrupted: { type: 'boolean' },
    nodeId: { type: 'text', nullable: true },
    timings: { type: 'json', nullable: true },
    createdAt: createdAtColumn,
  },
});
