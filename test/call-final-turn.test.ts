/**
 * Regression: the turn that ends a call must answer even when its own activities are slow (a
 * database blip, a retried write, a slow Twilio hang-up). Before the fix the post-call work ran at
 * once and the workflow could complete before that turn's update did: the caller's last reply was
 * lost (422 "Workflow completed before the Update completed").
 */
import { randomUUID } from 'node:crypto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { activityDepsFromConfig, createActivities } from '../activities';
import {
  CALL_WORKFLOW,
  callWorkflowId,
  openConversationUpdate,
  userTurnUpdate,
  userTurnUpdateId,
  type CallWorkflowInput,
} from '../contracts/call';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { workflowBundle } from '../workers/create-workers';
import { signUpTenant, startStack } from './support/stack';

it('the final turn answers even when its status write takes 1.5 s', async () => {
  const stack = await startStack({ worker: true, queues: ['billing'] });
  const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS as string });
  // A queue of this test's own, so only this worker (with the slowed activity) runs these calls.
  const taskQueue = `calls-final-turn-${process.pid}`;
  const real = createActivities(activityDepsFromConfig(stack.config, stack.orm));
  const worker = await Worker.create({
    connection,
    namespace: stack.config.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: {
      ...real,
      async recordCallStatus(input: Parameters<typeof real.recordCallStatus>[0]) {
        if (input.status === 'completed') await new Promise((r) => setTimeout(r, 1500));
        return real.recordCallStatus(input);
      },
    },
  });
  const running = worker.run();
  try {
    const tenant = await signUpTenant(stack.app, 'Race Co');
    const { bookingAgentId } = await seedDemoAgents(stack.orm, tenant.tenantId, tenant.userId);
    const callId = randomUUID();
    const input: CallWorkflowInput = {
      callId,
      tenantId: tenant.tenantId,
      agentId: bookingAgentId,
      // The draft (same booking flow) keeps the test independent of version ids.
      agentVersionId: null,
      direction: 'inbound',
      channel: 'text',
    };
    const handle = await stack.temporal.workflow.start(CALL_WORKFLOW, {
      workflowId: callWorkflowId(callId),
      taskQueue,
      args: [input],
    });
    await handle.executeUpdate(openConversationUpdate, { args: [{}] });
    const turn = (turnId: number, text: string) =>
      handle.executeUpdate(userTurnUpdate, {
        args: [{ turnId, text }],
        updateId: userTurnUpdateId(callId, turnId),
      });
    await turn(1, 'Ada Lovelace');
    await turn(2, 'tomorrow at 3pm');
    const last = await turn(3, 'yes');
    expect(last).toMatchObject({ turnId: 3, ended: true, disposition: 'booked' });
    expect(last.text).toContain("You're booked");
    // And a retry of the same turn gets the same answer, not an error.
    expect(await turn(3, 'yes')).toEqual(last);
    await handle.result();
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
    await stack.close();
  }
});
