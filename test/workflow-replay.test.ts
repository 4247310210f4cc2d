/**
 * Determinism guard: every recorded history under test/histories replays against today's workflow
 * code. A change that would break running workflows (reordered activities, a removed step without
 * `patched()`) fails here. Record a new history with:
 *   temporal workflow show -w <workflow id> --output json > test/histories/<name>.json
 * (protobufjs@8 is a direct dependency so @temporalio/common and @temporalio/proto share one copy;
 * with two, historyFromJSON fails with "type must be a Type".)
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Resource } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../workers/create-workers';

const DIR = path.join(__dirname, 'histories');
const histories = readdirSync(DIR).filter((f) => f.endsWith('.json'));

it('has recorded histories to replay', () => {
  expect(histories.length).toBeGreaterThan(0);
});

it.each(histories)('replays %s without nondeterminism', async (file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(path.join(DIR, file), 'utf8')));
  await expect(
    Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, `replay-${file}`),
  ).resolves.toBeUndefined();
});

// Tracing (lib/tracing.ts) bundles OpenTelemetry's workflow interceptors into the workflow code; they
// add no commands, so a worker with tracing on replays histories recorded without it (a roll-out
// that turns tracing on mixes both on one queue).
it('replays every history with the tracing interceptors bundled in', async () => {
  const sinks = {
    exporter: makeWorkflowExporter(new SimpleSpanProcessor(new InMemorySpanExporter()), new Resource({})),
  };
  const bundle = await workflowBundle(true);
  for (const file of histories) {
    const history = historyFromJSON(JSON.parse(readFileSync(path.join(DIR, file), 'utf8')));
    await expect(
      Worker.runReplayHistory({ workflowBundle: bundle, sinks }, history, `traced-replay-${file}`),
    ).resolves.toBeUndefined();
  }
}, 120_000);
