/**
 * Delivers one customer webhook event to every endpoint of the tenant that subscribed to it,
 * retrying for up to a day. Started (and abandoned) by the workflow that produced the event, so a
 * customer's outage never holds a call open.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { WebhookEvent } from '../activities/customer-webhooks';

export interface CustomerWebhookInput {
  tenantId: string;
  event: WebhookEvent;
  eventId: string;
  payload: Record<string, unknown>;
}

const { deliverWebhook } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '24 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '30 minutes' },
});

export async function customerWebhookWorkflow(
  input: CustomerWebhookInput,
): Promise<{ delivered: number; endpoints: number }> {
  return deliverWebhook(input);
}
