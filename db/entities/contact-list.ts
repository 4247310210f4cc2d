import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

/** A named set of a tenant's contacts: what a campaign calls, or what a CSV import fills. */
export class ContactList {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  name!: string;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const ContactListSchema = new EntitySchema<ContactList>({
  class: ContactList,
  tableName: 'contact_lists',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    name: { type: 'text' },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});

/** One contact in one list; a contact may be in many lists, once each. */
export class ContactListMember {
  tenantId!: string;
  listId!: string;
  contactId!: string;
  createdAt!: Opt<Date>;
}

export const ContactListMemberSchema = new EntitySchema<ContactListMember>({
  class: ContactListMember,
  tableName: 'contact_list_members',
  properties: {
    tenantId: tenantIdColumn,
    listId: { type: 'uuid', primary: true },
    contactId: { type: 'uuid', primary: true },
    createdAt: createdAtColumn,
  },
});
