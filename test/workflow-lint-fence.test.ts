/** The lint fence of conventions §1: workflow code that does I/O, reads time or randomness is rejected. */
import { spawnSync } from 'node:child_process';
import { unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

function lintWorkflowSource(source: string): string[] {
  const probe = path.join(ROOT, 'workflows', `lint-probe-${process.pid}.ts`);
  writeFileSync(probe, source);
  try {
    // ESLint loads its flat config with import(), which jest's VM does not allow: run the real CLI.
    const run = spawnSync(
      process.execPath,
      [path.join(ROOT, 'node_modules/eslint/bin/eslint.js'), '--format', 'json', probe],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    const [result] = JSON.parse(run.stdout) as { messages: { ruleId: string | null; message: string }[] }[];
    return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
  } finally {
    unlinkSync(probe);
  }
}

it('rejects I/O, clocks, randomness and value imports of activities inside workflows/', () => {
  const messages = lintWorkflowSource(`
import { readFileSync } from 'node:fs';
import { createActivities } from '../activities';
import { MikroORM } from '@mikro-orm/postgresql';
export async function badWorkflow(): Promise<number> {
  void readFileSync; void createActivities; void MikroORM;
  setTimeout(() => undefined, 10);
  return Date.now() + Math.random() + (process.env.X ? 1 : 0);
}
`);
  const rules = messages.map((m) => m.split(':')[0]);
  expect(messages.filter((m) => m.includes('Node built-ins'))).toHaveLength(1);
  expect(messages.filter((m) => m.includes('as types only'))).toHaveLength(1);
  expect(messages.filter((m) => m.includes('must not do I/O'))).toHaveLength(1);
  expect(rules.filter((r) => r === 'no-restricted-properties')).toHaveLength(2);
  expect(rules.filter((r) => r === 'no-restricted-globals')).toHaveLength(2);
}, 120_000);

it('accepts a workflow that imports activities as types and uses proxyActivities', () => {
  const messages = lintWorkflowSource(`
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
const { activateTenant } = proxyActivities<Activities>({ startToCloseTimeout: '10 seconds' });
export async function goodWorkflow(tenantId: string): Promise<boolean> {
  const { activatedNow } = await activateTenant({ tenantId, actorUserId: tenantId });
  return activatedNow;
}
`);
  expect(messages).toEqual([]);
}, 120_000);
