import { randomUUID } from 'node:crypto';
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { createdAtColumn, idColumn, tenantIdColumn, updatedAtColumn } from './common';

/** A tenant's own URL that receives call and billing events, signed with its secret. */
export class WebhookEndpoint {
  id: Opt<string> = randomUUID();
  tenantId!: string;
  url!: string;
  secretCiphertext!: string;
  events: Opt<string[]> = [];
  enabled: Opt<boolean> = true;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
}

export const WebhookEndpointSchema = new EntitySchema<WebhookEndpoint>({
  class: WebhookEndpoint,
  tableName: 'webhook_endpoints',
  properties: {
    id: idColumn,
    tenantId: tenantIdColumn,
    url: { type: 'text' },
    secretCiphertext: { type: 'text', hidden: true },
    events: { type: 'text[]' },
    enabled: { type: 'boolean' },
    createdAt: createdAtColumn,
    updatedAt: updatedAtColumn,
  },
});
