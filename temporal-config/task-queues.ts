/**
 * Task queue names. Written once here and imported by api/, workers/, realtime-relay/ and config/.
 */
export const TASK_QUEUES = {
  calls: 'calls',
  campaigns: 'campaigns',
  dialer: 'dialer',
  integrations: 'integrations',
  billing: 'billing',
} as const;

export type WorkerTaskQueue = (typeof TASK_QUEUES)[keyof typeof TASK_QUEUES];
export const WORKER_TASK_QUEUES: readonly WorkerTaskQueue[] = Object.values(TASK_QUEUES);

/** The relay process hosts `speak` on its own queue so audio never leaves the process holding the socket. */
export function relayTaskQueue(instanceId: string): string {
  return `relay.${instanceId}`;
}

/** An api instance hosts `speak` for streamed (SSE) text replies on its own queue. */
export function apiTaskQueue(instanceId: string): string {
  return `api.${instanceId}`;
}
