/** Liveness (the process answers) and readiness (PostgreSQL and Temporal answer, each within a bound). */
import type { Request, Response, Router } from 'express';
import type { ApiDeps } from '../deps';

type CheckResult = { status: 'ok' } | { status: 'error'; error: string };

async function timed(
  check: () => Promise<unknown>,
  timeoutMs: number,
): Promise<CheckResult & { latencyMs: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { status: 'ok', latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    return {
      status: 'error',
      error: err instanceof Error ? err.message : String(err),
      latencyMs: Math.round(performance.now() - started),
    };
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(router: Router, deps: ApiDeps, version: string): void {
  const ready = async (_req: Request, res: Response) => {
    const [postgres, temporal] = await Promise.all([
      timed(() => deps.orm.em.fork().execute('select 1'), 2000),
      timed(() => deps.temporal.connection.workflowService.getSystemInfo({}), 2000),
    ]);
    const ok = postgres.status === 'ok' && temporal.status === 'ok';
    res
      .status(ok ? 200 : 503)
      .json({ status: ok ? 'ok' : 'unavailable', version, checks: { postgres, temporal } });
  };
  router.get('/health', ready);
  router.get('/health/ready', ready);
  router.get('/health/live', (_req, res) => {
    res.json({ status: 'ok', version, uptimeSeconds: Math.round(process.uptime()) });
  });
}
