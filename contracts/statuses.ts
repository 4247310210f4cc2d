/**
 * The status vocabularies of calls and campaigns, with no imports: the server's contracts re-export
 * them and the dashboard bundles this file as is (the other contracts pull in the Temporal SDK).
 */

/** calls.status, as the call workflow records it. */
export const CALL_STATUSES = [
  'ringing',
  'in-progress',
  'completed',
  'failed',
  'transferred',
  'voicemail',
  'no-answer',
  'busy',
  'canceled',
  /** Refused at admission (over the tenant's concurrent-call limit); never reached the workflow. */
  'rejected',
] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

export const FINAL_CALL_STATUSES: readonly CallStatus[] = [
  'completed',
  'failed',
  'transferred',
  'voicemail',
  'no-answer',
  'busy',
  'canceled',
  'rejected',
];

export const CAMPAIGN_STATUSES = ['draft', 'running', 'paused', 'completed', 'canceled', 'failed'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

/** campaign_contacts.status */
export const CAMPAIGN_CONTACT_STATUSES = [
  'pending',
  'in_progress',
  'scheduled',
  'completed',
  'voicemail',
  'no_answer',
  'busy',
  'failed',
  'dnc',
  'canceled',
  'expired',
] as const;
export type CampaignContactStatus = (typeof CAMPAIGN_CONTACT_STATUSES)[number];

export const FINAL_CONTACT_STATUSES: readonly CampaignContactStatus[] = [
  'completed',
  'voicemail',
  'no_answer',
  'busy',
  'failed',
  'dnc',
  'canceled',
  'expired',
];
