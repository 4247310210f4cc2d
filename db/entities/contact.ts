import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

export class Contact {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  phoneE164!: string;
  name?: string | null;
  email?: string | null;
  timeZone?: string | null;
  attributes: Opt<Record<string, unknown>> = {};
  doNotCall: Opt<boolean> = false;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const ContactSchema = new EntitySchema<Contact>({
  class: Contact,
  tableName: 'contacts',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    phoneE164: { type: 'text' },
    name: { type: 'text', nullable: true },
    email: { type: 'text', nullable: true },
    timeZone: { type: 'text', nullable: true },
    attributes: { type: 'json' },
    doNotCall: { type: 'boolean' },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});
