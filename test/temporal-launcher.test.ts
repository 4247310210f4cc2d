/** The Temporal CLI launcher: finds the binary, builds the dev-server flags, and fails fast and clearly. */
import path from 'node:path';
import { findTemporalCli, locateTemporalCli, TemporalCliNotFoundError } from '../temporal-config/cli';
import { devServerArgs, startDevServer } from '../temporal-config/dev-server';
import { freePort } from '../lib/net';

it('finds the CLI the harness uses (project .tools/bin or PATH)', () => {
  const found = findTemporalCli();
  expect(found).toBeDefined();
  expect(path.basename(found!)).toBe('temporal');
});

it('refuses a TEMPORAL_CLI_PATH that is not an executable, saying how to install one', async () => {
  const err = await locateTemporalCli({ explicitPath: '/nonexistent/temporal', log: () => undefined }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TemporalCliNotFoundError);
  expect((err as Error).message).toContain('go install github.com/temporalio/cli/cmd/temporal@v1.5.1');
});

it('asks the dev server for a SQLite file, the UI port and every custom search attribute', () => {
  const args = devServerArgs({
    cliPath: 'temporal',
    port: 7233,
    uiPort: 8233,
    dbFile: '.data/temporal.sqlite',
    namespace: 'parley',
  });
  expect(args.join(' ')).toContain('--db-filename .data/temporal.sqlite');
  expect(args.join(' ')).toContain('--ui-port 8233');
  expect(args.join(' ')).toContain('--namespace parley');
  for (const name of ['TenantId', 'AgentId', 'CampaignId', 'CallDirection', 'CallStatus', 'PhoneNumber']) {
    expect(args).toContain(`${name}=Keyword`);
  }
  expect(devServerArgs({ cliPath: 'temporal', port: 7233 })).toContain('--headless');
  // The history transfer queue's poll rate, which otherwise sets a 30-45 ms floor per task (bench/RESULTS.md).
  expect(args.join(' ')).toContain('--dynamic-config-value history.transferProcessorMaxPollRPS=1000');
  expect(devServerArgs({ cliPath: 'temporal', port: 7233, dynamicConfig: [] })).not.toContain(
    '--dynamic-config-value',
  );
});

it('a dev server that cannot start fails at once with its reason, not after the start timeout', async () => {
  const started = Date.now();
  const err = await startDevServer({
    cliPath: '/bin/false',
    port: await freePort(),
    startTimeoutMs: 30_000,
  }).catch((e: unknown) => e);
  expect((err as Error).message).toMatch(/did not start: it exited with code 1/);
  expect(Date.now() - started).toBeLessThan(10_000);
  const missing = await startDevServer({ cliPath: '/nonexistent/temporal', port: await freePort() }).catch(
    (e: unknown) => e,
  );
  expect((missing as Error).message).toMatch(/could not start: spawn \/nonexistent\/temporal ENOENT/);
});
