/**
 * The workflow clock. Inside a workflow, Temporal replaces `Date` with the time of the current
 * workflow task, so it is deterministic on replay; this is the one place workflow code reads it
 * (deadlines, timestamps of turns), so every use of time is easy to find.
 */
export function workflowNow(): number {
  // eslint-disable-next-line no-restricted-properties -- Temporal's deterministic workflow clock, see above.
  return Date.now();
}

export function workflowNowIso(): string {
  return new Date(workflowNow()).toISOString();
}
