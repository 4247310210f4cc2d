/**
 * The dialer's per-campaign workers. Each running (or paused) campaign dials through its own task
 * queue `dialer.<campaignId>`, served here by an activity-only worker whose
 * `maxTaskQueueActivitiesPerSecond` is the campaign's calls per second: Temporal's matching service
 * enforces that rate on the server, across every dialer process polling the queue.
 *
 * Campaigns are found by polling `parley_dialing_campaigns()` (a SECURITY DEFINER listing across
 * tenants); a changed rate replaces the campaign's worker (the old one drains first), a finished
 * campaign's worker is shut down.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { type NativeConnection, Worker } from '@temporalio/worker';
import type { DialerActivities } from '../activities/dialer';
import { campaignDialerQueue } from '../contracts/campaign';
import type { Logger } from '../lib/logger';

export interface CampaignDialersOptions {
  connection: NativeConnection;
  namespace: string;
  orm: MikroORM;
  activities: Pick<DialerActivities, 'placeOutboundCall'>;
  logger: Logger;
  /** How often the list of campaigns is read (default 1 s). */
  refreshMs?: number;
}

interface DialerWorker {
  worker: Worker;
  running: Promise<void>;
  callsPerSecond: number;
}

/** Shaped like a Worker (`run`, `shutdown`, `getState`), so a process runs it beside its workers. */
export class CampaignDialers {
  private readonly workers = new Map<string, DialerWorker>();
  private state: 'INITIALIZED' | 'RUNNING' | 'STOPPING' | 'STOPPED' = 'INITIALIZED';
  private timer?: NodeJS.Timeout;
  private stopped?: () => void;
  private refreshing = Promise.resolve();

  constructor(private readonly options: CampaignDialersOptions) {}

  getState(): string {
    return this.state;
  }

  /** Queues currently served, with their rate (for tests and /stats). */
  served(): Record<string, number> {
    return Object.fromEntries(
      [...this.workers].map(([id, w]) => [campaignDialerQueue(id), w.callsPerSecond]),
    );
  }

  async run(): Promise<void> {
    this.state = 'RUNNING';
    await this.refresh();
    const done = new Promise<void>((resolve) => (this.stopped = resolve));
    const tick = () => {
      this.timer = setTimeout(() => {
        this.refreshing = this.refresh().finally(() => {
          if (this.state === 'RUNNING') tick();
        });
      }, this.options.refreshMs ?? 1_000);
    };
    tick();
    await done;
  }

  shutdown(): void {
    if (this.state !== 'RUNNING') return;
    this.state = 'STOPPING';
    clearTimeout(this.timer);
    void this.refreshing.finally(async () => {
      await Promise.all([...this.workers.keys()].map((id) => this.retire(id)));
      this.state = 'STOPPED';
      this.stopped?.();
    });
  }

  /** Reads the running campaigns and brings the set of workers in line. */
  async refresh(): Promise<void> {
    let rows: { campaign_id: string; max_calls_per_second: number }[];
    try {
      rows = await this.options.orm.em
        .fork()
        .execute<{ campaign_id: string; max_calls_per_second: number }[]>(
          'select campaign_id, max_calls_per_second from parley_dialing_campaigns()',
        );
    } catch (err) {
      this.options.logger.warn({ err }, 'could not list the campaigns to dial for');
      return;
    }
    if (this.state !== 'RUNNING') return;
    const wanted = new Map(rows.map((r) => [r.campaign_id, Number(r.max_calls_per_second)]));
    for (const id of [...this.workers.keys()]) {
      if (!wanted.has(id)) await this.retire(id);
    }
    for (const [id, rate] of wanted) {
      const current = this.workers.get(id);
      if (current && current.callsPerSecond === rate) continue;
      if (current) await this.retire(id);
      await this.serve(id, rate);
    }
  }

  private async serve(campaignId: string, callsPerSecond: number): Promise<void> {
    try {
      const worker = await Worker.create({
        connection: this.options.connection,
        namespace: this.options.namespace,
        taskQueue: campaignDialerQueue(campaignId),
        activities: this.options.activities,
        maxTaskQueueActivitiesPerSecond: callsPerSecond,
        maxConcurrentActivityTaskExecutions: 50,
      });
      const running = worker.run().catch((err: unknown) => {
        this.options.logger.error({ err, campaignId }, 'campaign dialer worker stopped');
      });
      this.workers.set(campaignId, { worker, running, callsPerSecond });
      this.options.logger.info({ campaignId, callsPerSecond }, 'dialing for campaign');
    } catch (err) {
      this.options.logger.error({ err, campaignId }, 'could not start the campaign dialer worker');
    }
  }

  private async retire(campaignId: string): Promise<void> {
    const current = this.workers.get(campaignId);
    if (!current) return;
    this.workers.delete(campaignId);
    if (current.worker.getState() === 'RUNNING') current.worker.shutdown();
    await current.running;
  }
}
