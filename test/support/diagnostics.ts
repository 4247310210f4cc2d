/**
 * What a fault test appends to its failure: a timeline of what it did when, the processes' output
 * and the workflow's history, one line per event — so a red run on CI says what happened.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const { EventType } = temporal.api.enums.v1;

/** `+12.34s what` lines, from when it was created. */
export class Timeline {
  private readonly t0 = Date.now();
  readonly lines: string[] = [];

  mark(what: string): void {
    this.lines.push(`+${((Date.now() - this.t0) / 1000).toFixed(2)}s ${what}`);
  }

  toString(): string {
    return this.lines.join('\n');
  }
}

/** One line per history event: when, what, which activity and attempt, which worker, which update. */
export async function historyLines(handle: WorkflowHandle): Promise<string> {
  const activityNames = new Map<string, string>();
  const events = (await handle.fetchHistory()).events ?? [];
  return events
    .map((e) => {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled) activityNames.set(String(e.eventId), scheduled.activityType?.name ?? '');
      const ref =
        e.activityTaskStartedEventAttributes?.scheduledEventId ??
        e.activityTaskCompletedEventAttributes?.scheduledEventId ??
        e.activityTaskTimedOutEventAttributes?.scheduledEventId;
      return [
        e.eventId,
        new Date(Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6).toISOString(),
        EventType[e.eventType ?? 0]?.replace('EVENT_TYPE_', ''),
        scheduled?.activityType?.name ?? (ref != null ? activityNames.get(String(ref)) : ''),
        e.activityTaskStartedEventAttributes ? `attempt ${e.activityTaskStartedEventAttributes.attempt}` : '',
        e.workflowTaskCompletedEventAttributes?.identity ?? '',
        e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId ??
          e.workflowExecutionUpdateCompletedEventAttributes?.meta?.updateId ??
          '',
      ]
        .filter(Boolean)
        .join(' ');
    })
    .join('\n');
}

/**
 * Runs `test`; if it fails, the timeline, the processes' output and the history of the workflow
 * under test (when there is one) are appended to its error.
 */
export async function withDiagnostics(
  test: () => Promise<void>,
  context: { timeline: Timeline; output: () => string; workflow: () => WorkflowHandle | undefined },
): Promise<void> {
  try {
    await test();
  } catch (err) {
    const handle = context.workflow();
    const history = handle
      ? await historyLines(handle).catch((e: unknown) => `(no history: ${String(e)})`)
      : '(no workflow)';
    const detail = `\n\n--- timeline ---\n${context.timeline.toString()}\n${context.output()}\n--- history ---\n${history}`;
    if (err instanceof Error) {
      err.message += detail;
      throw err;
    }
    throw new Error(`${String(err)}${detail}`);
  }
}
