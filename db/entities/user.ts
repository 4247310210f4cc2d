import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

/** Roles from most to least powerful; `roleRank` orders them. */
export const ROLES = ['owner', 'admin', 'designer', 'campaign_manager', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export class User {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  email!: string;
  name!: string;
  passwordHash!: string;
  role!: Role;
  disabledAt?: Date | null;
  lastLoginAt?: Date | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const UserSchema = new EntitySchema<User>({
  class: User,
  tableName: 'users',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    email: { type: 'text' },
    name: { type: 'text' },
    passwordHash: { type: 'text', hidden: true },
    role: { type: 'text' },
    disabledAt: { type: 'datetime', nullable: true },
    lastLoginAt: { type: 'datetime', nullable: true },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});
