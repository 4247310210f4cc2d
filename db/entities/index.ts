/** Every entity schema, in dependency order, and the list of tenant-owned tables RLS protects. */
import { AgentSchema, AgentVersionSchema } from './agent';
import { ApiKeySchema } from './api-key';
import { AuditLogEntrySchema } from './audit-log';
import { CallSchema, CallTurnSchema } from './call';
import { CampaignAttemptSchema, CampaignContactSchema, CampaignSchema } from './campaign';
import { ContactSchema } from './contact';
import { ContactListMemberSchema, ContactListSchema } from './contact-list';
import { DoNotCallEntrySchema } from './do-not-call';
import { BillingPeriodSchema } from './billing-period';
import { CrmImportSchema, CrmSyncRecordSchema, IntegrationSchema } from './integration';
import { PhoneNumberSchema } from './phone-number';
import { TenantSchema } from './tenant';
import { UsageRecordSchema } from './usage-record';
import { UserSchema } from './user';
import { WebhookEndpointSchema } from './webhook-endpoint';

export * from './agent';
export * from './api-key';
export * from './audit-log';
export * from './billing-period';
export * from './call';
export * from './campaign';
export * from './contact';
export * from './contact-list';
export * from './do-not-call';
export * from './integration';
export * from './phone-number';
export * from './tenant';
export * from './usage-record';
export * from './user';
export * from './webhook-endpoint';

export const ENTITY_SCHEMAS = [
  TenantSchema,
  UserSchema,
  ApiKeySchema,
  AgentSchema,
  AgentVersionSchema,
  PhoneNumberSchema,
  ContactSchema,
  ContactListSchema,
  ContactListMemberSchema,
  DoNotCallEntrySchema,
  CallSchema,
  CallTurnSchema,
  CampaignSchema,
  CampaignContactSchema,
  CampaignAttemptSchema,
  IntegrationSchema,
  CrmSyncRecordSchema,
  CrmImportSchema,
  UsageRecordSchema,
  BillingPeriodSchema,
  WebhookEndpointSchema,
  AuditLogEntrySchema,
];

/** Tables with a `tenant_id` column and the `tenant_isolation` policy on it. */
export const TENANT_OWNED_TABLES = ENTITY_SCHEMAS.map((s) => s.meta.tableName ?? s.meta.collection).filter(
  (t): t is string => Boolean(t) && t !== 'tenants',
);
