/**
 * Custom search attributes, registered on the dev server at start and on a cluster with
 * `npm run temporal:search-attributes`, so engineers can filter runs in the Web UI.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  TenantId: defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD),
  AgentId: defineSearchAttributeKey('AgentId', SearchAttributeType.KEYWORD),
  CampaignId: defineSearchAttributeKey('CampaignId', SearchAttributeType.KEYWORD),
  CallDirection: defineSearchAttributeKey('CallDirection', SearchAttributeType.KEYWORD),
  CallStatus: defineSearchAttributeKey('CallStatus', SearchAttributeType.KEYWORD),
  PhoneNumber: defineSearchAttributeKey('PhoneNumber', SearchAttributeType.KEYWORD),
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;

/** `Name=Keyword` pairs for `temporal server start-dev --search-attribute`. */
export function devServerSearchAttributeFlags(): string[] {
  return Object.values(SEARCH_ATTRIBUTES).flatMap((key) => [
    '--search-attribute',
    `${key.name}=${DEV_SERVER_TYPE_NAMES[key.type]}`,
  ]);
}

const DEV_SERVER_TYPE_NAMES: Record<string, string> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};
