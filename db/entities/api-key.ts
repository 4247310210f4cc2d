import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn } from './common';
import type { Role } from './user';

export class ApiKey {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  name!: string;
  /** First characters of the key, shown so people can tell keys apart; never enough to use. */
  prefix!: string;
  keyHash!: string;
  role!: Role;
  createdByUserId?: string | null;
  lastUsedAt?: Date | null;
  revokedAt?: Date | null;
  createdAt!: Opt<Date>;
}

export const ApiKeySchema = new EntitySchema<ApiKey>({
  class: ApiKey,
  tableName: 'api_keys',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    name: { type: 'text' },
    prefix: { type: 'text' },
    keyHash: { type: 'text', hidden: true },
    role: { type: 'text' },
    createdByUserId: { type: 'uuid', nullable: true },
    lastUsedAt: { type: 'datetime', nullable: true },
    revokedAt: { type: 'datetime', nullable: true },
    createdAt: createdAtColumn,
  },
});
