/** Percentiles, a one-line progress bar, process CPU from /proc, and the machine description for RESULTS.md. */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

export function percentile(sortedMs: number[], p: number): number {
  if (sortedMs.length === 0) return NaN;
  const index = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)]!;
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  perSecond: number;
}

export function summarize(samplesMs: number[], wallMs: number): Summary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    perSecond: (sorted.length / wallMs) * 1000,
  };
}

export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY && done !== total && done % Math.max(1, Math.floor(total / 10)) !== 0) return;
  const width = 30;
  const filled = Math.round((done / total) * width);
  const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
  const line = `  ${label.padEnd(34)} [${bar}] ${done}/${total}`;
  process.stderr.write(process.stderr.isTTY ? `\r${line}${done === total ? '\n' : ''}` : `${line}\n`);
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/** Runs `task` `total` times with at most `concurrency` in flight; returns each duration in ms. */
export async function measure(
  label: string,
  total: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<Summary> {
  const samples: number[] = [];
  let next = 0;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        await task(i);
        samples.push(performance.now() - t0);
        done += 1;
        progress(label, done, total);
      }
    }),
  );
  return summarize(samples, performance.now() - started);
}

export const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime of the processes `/proc/<pid>/stat` lists that `match`, in seconds; NaN without /proc. */
export function procCpuSeconds(match: (pid: number, comm: string) => boolean): number {
  try {
    let ticks = 0;
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!match(pid, comm)) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    }
    return ticks / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds of the whole machine from /proc/stat's `cpu` line: busy (user, nice, system, irq, softirq:
 * every process and the kernel's network work) and steal (time the hypervisor gave this VM's CPUs to
 * someone else: on a shared host, the machine itself got slower). NaN without /proc.
 */
export function machineCpuSeconds(): { busy: number; steal: number } {
  try {
    const [cpu] = readFileSync('/proc/stat', 'utf8').split('\n');
    const [user, nice, system, , , irq, softirq, steal] = cpu!.trim().split(/\s+/).slice(1).map(Number);
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0);
    return { busy: busy / CLOCK_TICKS_PER_SECOND, steal: (steal ?? 0) / CLOCK_TICKS_PER_SECOND };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

/** Resident memory of a process in bytes (VmRSS), NaN when it is gone or there is no /proc. */
export function rssBytes(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : NaN;
  } catch {
    return NaN;
  }
}
