/**
 * The demo agents every new tenant can start from: a deterministic appointment booking line that
 * runs with no LLM at all (published as version 1, ready to call), and an LLM receptionist
 * template left as a draft to fill in.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { AgentDefinition, AgentDefinitionInput } from '../../contracts/agent-definition';
import { validateAgentDefinition } from '../../contracts/agent-graph';
import { Agent, AgentVersion, AuditLogEntry } from '../entities';
import { withTenant } from '../tenant-context';

export const DEMO_BOOKING_AGENT_NAME = 'Demo booking line';
export const LLM_RECEPTIONIST_TEMPLATE_NAME = 'Receptionist (LLM template)';

const HUMAN_PHRASES = ['speak to a human', 'talk to a person', 'representative', 'operator'];

export const DEMO_BOOKING_AGENT: AgentDefinitionInput = {
  persona: { systemPrompt: '' },
  greeting: "Hi, this is Parley's demo booking line.",
  language: 'en-US',
  analysis: { successCriteria: 'The caller booked an appointment (disposition booked).' },
  globalIntents: [{ id: 'human', phrases: HUMAN_PHRASES, target: 'to_human' }],
  flow: {
    startNodeId: 'ask_name',
    nodes: [
      { id: 'ask_name', type: 'collect', slot: 'name', slotType: 'text', prompt: 'May I have your name?' },
      {
        id: 'ask_when',
        type: 'collect',
        slot: 'when',
        slotType: 'datetime',
        prompt: 'What day and time would you like to come in?',
        noMatchPrompt: 'Sorry, I did not catch a day and time. For example, say "tomorrow at 3 pm".',
      },
      {
        id: 'ask_confirm',
        type: 'collect',
        slot: 'confirm',
        slotType: 'yes_no',
        prompt: "Just to confirm, {{slots.name}}, you'd like {{slots.when}}. Is that right?",
        noMatchPrompt: 'Please say yes or no.',
      },
      { id: 'check_confirm', type: 'branch' },
      {
        id: 'booked',
        type: 'end',
        disposition: 'booked',
        message: "You're booked. See you then, {{slots.name}}. Goodbye!",
      },
      { id: 'try_again', type: 'say', text: "No problem, let's try another time." },
      {
        id: 'to_human',
        type: 'end',
        disposition: 'escalation_requested',
        message: 'Of course. A member of our team will call you back shortly. Goodbye!',
      },
      {
        id: 'not_understood',
        type: 'end',
        disposition: 'incomplete',
        message: "I'm sorry, I'm having trouble understanding. Please call us back later. Goodbye!",
      },
    ],
    edges: [
      { id: 'name_to_when', source: 'ask_name', target: 'ask_when' },
      { id: 'when_to_confirm', source: 'ask_when', target: 'ask_confirm' },
      { id: 'confirm_to_check', source: 'ask_confirm', target: 'check_confirm' },
      {
        id: 'confirmed',
        source: 'check_confirm',
        target: 'booked',
        when: { kind: 'slot', slot: 'confirm', op: 'eq', value: true },
        label: 'yes',
      },
      { id: 'not_confirmed', source: 'check_confirm', target: 'try_again', label: 'otherwise' },
      { id: 'retry_when', source: 'try_again', target: 'ask_when' },
      { id: 'name_failed', source: 'ask_name', target: 'not_understood', when: { kind: 'failure' } },
      { id: 'when_failed', source: 'ask_when', target: 'not_understood', when: { kind: 'failure' } },
      { id: 'confirm_failed', source: 'ask_confirm', target: 'not_understood', when: { kind: 'failure' } },
    ],
  },
};

export const LLM_RECEPTIONIST_TEMPLATE: AgentDefinitionInput = {
  persona: {
    systemPrompt:
      'You are a warm, efficient receptionist answering the phone for a small business. Keep answers short ' +
      'and spoken-friendly: one or two sentences, no lists, no markdown. Never invent prices, policies or ' +
      'availability you were not given; offer a call back from a team member instead.',
  },
  greeting: 'Thanks for calling. How can I help you today?',
  language: 'en-US',
  llm: { provider: 'openai-compatible', model: 'gpt-4o-mini', apiKeyRef: 'default' },
  analysis: {
    structuredDataSchema: {
      type: 'object',
      properties: {
        reason: { type: 'string', description: 'Why the caller called, in a few words' },
        callbackRequested: { type: 'boolean', description: 'Whether the caller asked to be called back' },
      },
    },
    successCriteria:
      "The caller's question was answered, or a call back was arranged with the caller's name and reason.",
  },
  globalIntents: [{ id: 'human', phrases: HUMAN_PHRASES, target: 'escalated' }],
  flow: {
    startNodeId: 'receptionist',
    nodes: [
      {
        id: 'receptionist',
        type: 'llm',
        goal:
          "Find out why the caller is calling and help them. When their question is answered, call complete_step with outcome 'resolved'. " +
          "If they want a person, need something you cannot do, or are unhappy, take their name and reason and call complete_step with outcome 'escalate'.",
        outcomes: ['resolved', 'escalate'],
        maxTurns: 20,
      },
      { id: 'resolved', type: 'end', disposition: 'resolved', message: 'Glad I could help. Goodbye!' },
      {
        id: 'escalated',
        type: 'end',
        disposition: 'escalated',
        message: "I'll have a member of our team call you back as soon as possible. Goodbye!",
      },
    ],
    edges: [
      {
        id: 'on_resolved',
        source: 'receptionist',
        target: 'resolved',
        when: { kind: 'outcome', equals: 'resolved' },
      },
      {
        id: 'on_escalate',
        source: 'receptionist',
        target: 'escalated',
        when: { kind: 'outcome', equals: 'escalate' },
      },
      { id: 'on_failure', source: 'receptionist', target: 'escalated', when: { kind: 'failure' } },
    ],
  },
};

function validated(name: string, input: AgentDefinitionInput): AgentDefinition {
  const result = validateAgentDefinition(input);
  if (!result.ok) {
    throw new Error(
      `${name} is not a valid agent definition: ${result.issues.map((i) => i.message).join('; ')}`,
    );
  }
  return result.definition;
}

export interface SeededDemoAgents {
  bookingAgentId: string;
  receptionistAgentId: string;
}

/**
 * Creates the demo agents for a tenant unless agents with these names exist already (archived ones
 * do not count). The booking agent is published as version 1; the receptionist stays a draft.
 * Concurrent calls for one tenant are serialised by a transaction-scoped advisory lock.
 */
export async function seedDemoAgents(
  orm: MikroORM,
  tenantId: string,
  publishedByUserId?: string,
): Promise<SeededDemoAgents> {
  const booking = validated(DEMO_BOOKING_AGENT_NAME, DEMO_BOOKING_AGENT);
  const receptionist = validated(LLM_RECEPTIONIST_TEMPLATE_NAME, LLM_RECEPTIONIST_TEMPLATE);

  return withTenant(orm, tenantId, async (em) => {
    await em.execute('select pg_advisory_xact_lock(hashtext(?))', [`seed:demo-agents:${tenantId}`]);
    const audit = (action: string, targetId: string, after: Record<string, unknown>) =>
      em.create(AuditLogEntry, {
        tenantId,
        actorType: 'system',
        actorId: null,
        action,
        targetType: 'agent',
        targetId,
        after: { ...after, seeded: true },
      });

    const ensure = async (name: string, description: string, definition: AgentDefinition) => {
      const existing = await em.findOne(Agent, { name, archivedAt: null }, { orderBy: { createdAt: 'asc' } });
      if (existing) return { agent: existing, created: false };
      const agent = em.create(Agent, { tenantId, name, description, draft: definition });
      audit('agent.created', agent.id, { name, description });
      return { agent, created: true };
    };

    const bookingAgent = await ensure(
      DEMO_BOOKING_AGENT_NAME,
      'Books an appointment with fixed prompts; needs no LLM.',
      booking,
    );
    const receptionistAgent = await ensure(
      LLM_RECEPTIONIST_TEMPLATE_NAME,
      'An LLM receptionist that answers questions and escalates; set the LLM and publish when ready.',
      receptionist,
    );

    // Agents first: agent_versions references them (immediate foreign key).
    await em.flush();
    if (bookingAgent.created) {
      const version = em.create(AgentVersion, {
        tenantId,
        agentId: bookingAgent.agent.id,
        version: 1,
        definition: booking,
        publishedByUserId: publishedByUserId ?? null,
      });
      bookingAgent.agent.publishedVersionId = version.id;
      audit('agent.published', bookingAgent.agent.id, { version: 1, versionId: version.id });
    }
    await em.flush();
    return { bookingAgentId: bookingAgent.agent.id, receptionistAgentId: receptionistAgent.agent.id };
  });
}
