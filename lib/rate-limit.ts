/**
 * Fixed-window request counters: in memory for one process, or in Redis (one atomic INCR + PEXPIRE
 * per hit) when several api instances must share them. A Redis outage never refuses a request:
 * the counter fails open and the outage is logged once.
 */
import { Redis } from 'ioredis';
import type { Logger } from './logger';

export interface WindowCount {
  /** Hits in the current window, this one included. */
  count: number;
  /** Milliseconds until the window ends. */
  resetMs: number;
}

export interface RateLimitStore {
  /** Counts one hit for `key` in its window; undefined when the store cannot count (fail open). */
  hit(key: string, windowMs: number): Promise<WindowCount | undefined>;
  close(): Promise<void>;
}

function windowOf(windowMs: number, now: number): { index: number; resetMs: number } {
  const index = Math.floor(now / windowMs);
  return { index, resetMs: (index + 1) * windowMs - now };
}

/** Counters in this process's memory; expired windows are swept as time goes on. */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly counts = new Map<string, { count: number; expiresAt: number }>();
  private nextSweep = 0;

  constructor(private readonly now: () => number = Date.now) {}

  hit(key: string, windowMs: number): Promise<WindowCount> {
    return Promise.resolve(this.count(key, windowMs));
  }

  private count(key: string, windowMs: number): WindowCount {
    const now = this.now();
    this.sweep(now);
    const { index, resetMs } = windowOf(windowMs, now);
    const slot = `${key}:${index}`;
    const entry = this.counts.get(slot);
    if (entry) {
      entry.count += 1;
      return { count: entry.count, resetMs };
    }
    this.counts.set(slot, { count: 1, expiresAt: now + resetMs });
    return { count: 1, resetMs };
  }

  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + 10_000;
    for (const [slot, entry] of this.counts) if (entry.expiresAt <= now) this.counts.delete(slot);
  }

  close(): Promise<void> {
    this.counts.clear();
    return Promise.resolve();
  }
}

/** INCR, and on the window's first hit PEXPIRE, as one atomic step. */
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
`;

/** How long a hit may wait for Redis before the request goes on uncounted. */
const REDIS_COMMAND_TIMEOUT_MS = 500;

/** Counters shared by every api instance through one Redis. */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly client: Redis;
  /** Set by a connection error, cleared when Redis is ready again: until then hits skip Redis. */
  private down = false;
  private warned = false;
  private closing = false;

  constructor(
    url: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.client = new Redis(url, {
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: 2_000,
      // close() waits this long at most for a socket to finish (ioredis keeps a timer until then).
      disconnectTimeout: 200,
      retryStrategy: (times) => (this.closing ? null : Math.min(times * 500, 5_000)),
    });
    this.client.on('connect', () => {
      // The limiter alone must never keep a process alive (a test, or a shutting-down api).
      (this.client as unknown as { stream?: { unref?: () => void } }).stream?.unref?.();
    });
    this.client.on('ready', () => {
      if (this.down) this.logger.info('rate limits: Redis is reachable again; counters are shared');
      this.down = false;
      this.warned = false;
    });
    this.client.on('error', (err: Error) => {
      this.down = true;
      this.failed(err);
    });
  }

  private failed(err: unknown): void {
    if (this.warned) return;
    this.warned = true;
    this.logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      'rate limits: Redis is unreachable; requests are served without rate limiting until it is back',
    );
  }

  async hit(key: string, windowMs: number): Promise<WindowCount | undefined> {
    const { status } = this.client;
    if (status !== 'ready' && (this.down || status === 'end' || status === 'close')) return undefined;
    const { index, resetMs } = windowOf(windowMs, this.now());
    try {
      const count = (await this.client.eval(
        HIT_SCRIPT,
        1,
        `${key}:${index}`,
        String(resetMs + 1_000),
      )) as number;
      return { count: Number(count), resetMs };
    } catch (err) {
      this.failed(err);
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.client.status === 'end') return;
    const ended = new Promise<void>((resolve) => this.client.once('end', () => resolve()));
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1_000);
      timer.unref();
    });
    await Promise.race([ended, timeout]);
    clearTimeout(timer);
  }
}

export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Whole seconds until the window ends (at least 1): Retry-After and RateLimit-Reset. */
  resetSeconds: number;
}

/** One limit (e.g. per IP): `limit` hits per window for each key. */
export class RateLimiter {
  constructor(
    private readonly store: RateLimitStore,
    readonly options: { name: string; limit: number; windowMs: number; prefix?: string },
  ) {}

  /** Counts one hit for `id`; undefined when uncounted (the store failed open). */
  async consume(id: string): Promise<RateLimitDecision | undefined> {
    const { name, limit, windowMs, prefix = 'parley:rl' } = this.options;
    const counted = await this.store.hit(`${prefix}:${name}:${id}`, windowMs);
    if (!counted) return undefined;
    return {
      allowed: counted.count <= limit,
      limit,
      remaining: Math.max(0, limit - counted.count),
      resetSeconds: Math.max(1, Math.ceil(counted.resetMs / 1000)),
    };
  }
}

/** The store for `REDIS_URL`, else this process's memory. */
export function createRateLimitStore(redisUrl: string | undefined, logger: Logger): RateLimitStore {
  return redisUrl ? new RedisRateLimitStore(redisUrl, logger) : new MemoryRateLimitStore();
}
