import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

export class PhoneNumber {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  e164!: string;
  provider: Opt<string> = 'twilio';
  providerSid?: string | null;
  label?: string | null;
  agentId?: string | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const PhoneNumberSchema = new EntitySchema<PhoneNumber>({
  class: PhoneNumber,
  tableName: 'phone_numbers',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    e164: { type: 'text' },
    provider: { type: 'text' },
    providerSid: { type: 'text', nullable: true },
    label: { type: 'text', nullable: true },
    agentId: { type: 'uuid', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});
