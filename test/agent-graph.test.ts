/**
 * The agent definition validator: each issue code from a minimal bad definition, with the node at
 * fault named in the message and in `nodeId`; the demo definitions pass.
 */
import type { AgentDefinitionInput } from '../contracts/agent-definition';
import {
  DEFINITION_ISSUE_CODES,
  validateAgentDefinition,
  type DefinitionIssue,
} from '../contracts/agent-graph';
import { DEMO_BOOKING_AGENT, LLM_RECEPTIONIST_TEMPLATE } from '../db/seed/demo-agents';

type Node = AgentDefinitionInput['flow']['nodes'][number];
type Edge = NonNullable<AgentDefinitionInput['flow']['edges']>[number];
type Def = Omit<AgentDefinitionInput, 'flow'> & {
  flow: { startNodeId: string; nodes: Node[]; edges: Edge[] };
};

/** collect `ask` → end `done`: the smallest valid flow, which each case then breaks. */
function base(): Def {
  return {
    greeting: 'Hello',
    flow: {
      startNodeId: 'ask',
      nodes: [
        { id: 'ask', type: 'collect', slot: 'answer', slotType: 'text', prompt: 'What is it?' },
        { id: 'done', type: 'end', disposition: 'completed' },
      ],
      edges: [{ id: 'ask_done', source: 'ask', target: 'done' }],
    },
  };
}

function withFlow(nodes: Node[], edges: Edge[], extra: Partial<AgentDefinitionInput> = {}): Def {
  const def = base();
  return { ...def, ...extra, flow: { startNodeId: 'ask', nodes, edges } };
}

const ask = { id: 'ask', type: 'collect', slot: 'answer', slotType: 'text', prompt: 'What is it?' } as const;
const done = { id: 'done', type: 'end', disposition: 'completed' } as const;
const tool = {
  name: 'lookup',
  description: 'Looks the caller up',
  url: 'https://crm.example.test/lookup',
  signingSecret: 'a-long-enough-signing-secret',
};
const llm = { model: 'gpt-4o-mini' };

const seen = new Set<string>();

function issuesOf(input: unknown): DefinitionIssue[] {
  const result = validateAgentDefinition(input);
  if (result.ok) throw new Error('expected the definition to be invalid');
  for (const issue of result.issues) seen.add(issue.code);
  return result.issues;
}

/** The one issue with `code`; when `nodeId` is given, the issue names that node (field and message). */
function expectIssue(input: unknown, code: string, nodeId?: string): DefinitionIssue {
  const issues = issuesOf(input);
  const matching = issues.filter((i) => i.code === code);
  if (matching.length !== 1) {
    throw new Error(`expected one ${code}, got: ${JSON.stringify(issues, null, 2)}`);
  }
  const issue = matching[0]!;
  if (nodeId) {
    expect(issue.nodeId).toBe(nodeId);
    expect(issue.message).toContain(`"${nodeId}"`);
  }
  return issue;
}

describe('valid definitions', () => {
  it('the minimal flow passes and comes back with defaults applied', () => {
    const result = validateAgentDefinition(base());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.definition.language).toBe('en-US');
    expect(result.definition.flow.nodes[0]).toMatchObject({ id: 'ask', maxAttempts: 3 });
  });

  it.each([
    ['the demo booking agent', DEMO_BOOKING_AGENT],
    ['the LLM receptionist template', LLM_RECEPTIONIST_TEMPLATE],
  ])('%s passes', (_name, def) => {
    const result = validateAgentDefinition(def);
    expect(result.ok ? [] : result.issues).toEqual([]);
  });

  it('the demo booking agent needs no LLM', () => {
    expect(DEMO_BOOKING_AGENT.llm).toBeUndefined();
    expect(DEMO_BOOKING_AGENT.flow.nodes.some((n) => n.type === 'llm')).toBe(false);
  });
});

describe('schema issues name the node', () => {
  it('a collect without slotType: FIELD_REQUIRED at flow.nodes[i].slotType', () => {
    const def = withFlow(
      [{ id: 'ask', type: 'collect', slot: 'answer', prompt: 'What?' } as Node, done],
      [{ id: 'e', source: 'ask', target: 'done' }],
    );
    const issue = expectIssue(def, 'FIELD_REQUIRED', 'ask');
    expect(issue.path).toBe('flow.nodes[0].slotType');
    expect(issue.message).toContain('slotType');
  });

  it('an end without disposition: FIELD_REQUIRED naming the end node', () => {
    const def = withFlow(
      [ask, { id: 'bye', type: 'end' } as Node],
      [{ id: 'e', source: 'ask', target: 'bye' }],
    );
    expect(expectIssue(def, 'FIELD_REQUIRED', 'bye').path).toBe('flow.nodes[1].disposition');
  });

  it('a blank prompt on the fourth node: FIELD_INVALID at flow.nodes[3].prompt', () => {
    const def = withFlow(
      [
        ask,
        { id: 'a', type: 'say', text: 'A' },
        { id: 'b', type: 'say', text: 'B' },
        { id: 'collect_date', type: 'collect', slot: 'date', slotType: 'datetime', prompt: '   ' },
        done,
      ],
      [],
    );
    const issue = expectIssue(def, 'FIELD_INVALID', 'collect_date');
    expect(issue.path).toBe('flow.nodes[3].prompt');
  });

  it('a bad edge field names the edge and the node it leaves', () => {
    const def = withFlow([ask, done], [{ id: 'e1', source: 'ask' } as Edge]);
    const issue = expectIssue(def, 'FIELD_REQUIRED', 'ask');
    expect(issue).toMatchObject({ path: 'flow.edges[0].target', edgeId: 'e1' });
  });

  it('a non-object definition is one FIELD_INVALID at the root', () => {
    expect(issuesOf('nope')).toEqual([expect.objectContaining({ code: 'FIELD_INVALID', path: '' })]);
  });
});

describe('graph issues', () => {
  it('START_NODE_MISSING', () => {
    const def = base();
    def.flow.startNodeId = 'nowhere';
    const issue = expectIssue(def, 'START_NODE_MISSING');
    expect(issue.path).toBe('flow.startNodeId');
    expect(issue.message).toContain('"nowhere"');
  });

  it('DUPLICATE_NODE_ID', () => {
    const def = withFlow(
      [ask, done, { ...done, disposition: 'other' }],
      [{ id: 'e', source: 'ask', target: 'done' }],
    );
    expect(expectIssue(def, 'DUPLICATE_NODE_ID', 'done').path).toBe('flow.nodes[2].id');
  });

  it('DUPLICATE_EDGE_ID', () => {
    const def = withFlow(
      [ask, done, { id: 'failed', type: 'end', disposition: 'failed' }],
      [
        { id: 'e', source: 'ask', target: 'done' },
        { id: 'e', source: 'ask', target: 'failed', when: { kind: 'failure' } },
      ],
    );
    expect(expectIssue(def, 'DUPLICATE_EDGE_ID', 'ask')).toMatchObject({
      edgeId: 'e',
      path: 'flow.edges[1].id',
    });
  });

  it('DUPLICATE_TOOL_NAME', () => {
    const def = { ...base(), tools: [tool, { ...tool }] };
    expect(expectIssue(def, 'DUPLICATE_TOOL_NAME').path).toBe('tools[1].name');
  });

  it('EDGE_SOURCE_UNKNOWN names the edge and the missing node', () => {
    const def = base();
    def.flow.edges.push({ id: 'ghost_edge', source: 'ghost', target: 'done' });
    const issue = expectIssue(def, 'EDGE_SOURCE_UNKNOWN');
    expect(issue).toMatchObject({ edgeId: 'ghost_edge', path: 'flow.edges[1].source' });
    expect(issue.message).toContain('"ghost_edge"');
    expect(issue.message).toContain('"ghost"');
  });

  it('EDGE_TARGET_UNKNOWN names the edge, its source node and the missing node', () => {
    const def = withFlow([ask, done], [{ id: 'to_ghost', source: 'ask', target: 'ghost' }]);
    const issues = issuesOf(def);
    const issue = issues.find((i) => i.code === 'EDGE_TARGET_UNKNOWN')!;
    expect(issue).toMatchObject({ nodeId: 'ask', edgeId: 'to_ghost', path: 'flow.edges[0].target' });
    expect(issue.message).toContain('"ghost"');
  });

  it('NODE_UNREACHABLE; a global intent target counts as reachable', () => {
    const island = { id: 'island', type: 'end', disposition: 'lost' } as const;
    const def = withFlow([ask, done, island], [{ id: 'e', source: 'ask', target: 'done' }]);
    expect(expectIssue(def, 'NODE_UNREACHABLE', 'island').path).toBe('flow.nodes[2]');

    const viaIntent = { ...def, globalIntents: [{ id: 'help', phrases: ['help'], target: 'island' }] };
    expect(validateAgentDefinition(viaIntent).ok).toBe(true);
  });

  it('INTENT_TARGET_UNKNOWN', () => {
    const def = { ...base(), globalIntents: [{ id: 'human', phrases: ['operator'], target: 'nobody' }] };
    const issue = expectIssue(def, 'INTENT_TARGET_UNKNOWN');
    expect(issue.path).toBe('globalIntents[0].target');
    expect(issue.message).toContain('"nobody"');
  });

  it('COLLECT_CHOICES_MISSING: no choices, or just one', () => {
    const pick = {
      id: 'pick',
      type: 'collect',
      slot: 'color',
      slotType: 'choice',
      prompt: 'Red or blue?',
    } as const;
    const edges = [{ id: 'e', source: 'pick', target: 'done' }];
    const none = {
      ...withFlow([pick, done], edges),
      flow: { startNodeId: 'pick', nodes: [pick, done], edges },
    };
    expect(expectIssue(none, 'COLLECT_CHOICES_MISSING', 'pick').path).toBe('flow.nodes[0].choices');
    const one = {
      ...none,
      flow: { ...none.flow, nodes: [{ ...pick, choices: ['red'] }, done] },
    };
    expect(expectIssue(one, 'COLLECT_CHOICES_MISSING', 'pick').path).toBe('flow.nodes[0].choices');
  });

  it('TERMINAL_HAS_EDGES for end and transfer nodes', () => {
    const transfer = { id: 'xfer', type: 'transfer', to: '+14155550100' } as const;
    const def = withFlow(
      [ask, done, transfer],
      [
        { id: 'e', source: 'ask', target: 'done' },
        { id: 'after_end', source: 'done', target: 'xfer' },
      ],
    );
    expect(expectIssue(def, 'TERMINAL_HAS_EDGES', 'done')).toMatchObject({ edgeId: 'after_end' });
    const fromTransfer = withFlow(
      [ask, done, transfer],
      [
        { id: 'e', source: 'ask', target: 'xfer' },
        { id: 'after_xfer', source: 'xfer', target: 'done' },
      ],
    );
    expect(expectIssue(fromTransfer, 'TERMINAL_HAS_EDGES', 'xfer')).toMatchObject({ edgeId: 'after_xfer' });
  });

  it('DEAD_END: a say with no edge, a collect with only a failure edge, a branch with no edge', () => {
    const say = withFlow([{ id: 'ask', type: 'say', text: 'Hi' }], []);
    expect(expectIssue(say, 'DEAD_END', 'ask').path).toBe('flow.nodes[0]');

    const onlyFailure = withFlow(
      [ask, done],
      [{ id: 'f', source: 'ask', target: 'done', when: { kind: 'failure' } }],
    );
    expect(expectIssue(onlyFailure, 'DEAD_END', 'ask').message).toContain('default edge');

    const branch = withFlow(
      [ask, { id: 'route', type: 'branch' }],
      [{ id: 'e', source: 'ask', target: 'route' }],
    );
    expect(expectIssue(branch, 'DEAD_END', 'route').path).toBe('flow.nodes[1]');
  });

  it('BRANCH_NO_DEFAULT when every edge of a branch has a condition', () => {
    const def = withFlow(
      [ask, { id: 'route', type: 'branch' }, done],
      [
        { id: 'e', source: 'ask', target: 'route' },
        {
          id: 'yes',
          source: 'route',
          target: 'done',
          when: { kind: 'slot', slot: 'answer', op: 'eq', value: 'yes' },
        },
      ],
    );
    expect(expectIssue(def, 'BRANCH_NO_DEFAULT', 'route').path).toBe('flow.nodes[1]');
  });

  it('CONDITION_SLOT_UNKNOWN unless a collect or tool sets the slot, or an llm node could', () => {
    const nodes: Node[] = [ask, { id: 'route', type: 'branch' }, done];
    const edges = (slot: string): Edge[] => [
      { id: 'e', source: 'ask', target: 'route' },
      { id: 'test', source: 'route', target: 'done', when: { kind: 'slot', slot, op: 'is_set' } },
      { id: 'else', source: 'route', target: 'done' },
    ];
    const issue = expectIssue(withFlow(nodes, edges('mystery')), 'CONDITION_SLOT_UNKNOWN', 'route');
    expect(issue).toMatchObject({ edgeId: 'test', path: 'flow.edges[1].when.slot' });
    expect(issue.message).toContain('"mystery"');
    expect(validateAgentDefinition(withFlow(nodes, edges('answer'))).ok).toBe(true);

    const withTool = withFlow(
      [
        ask,
        { id: 'look', type: 'tool', tool: 'lookup', resultSlot: 'customer' },
        { id: 'route', type: 'branch' },
        done,
      ],
      [
        { id: 'e0', source: 'ask', target: 'look' },
        { id: 'e1', source: 'look', target: 'route' },
        ...edges('customer').slice(1),
      ],
      { tools: [tool] },
    );
    expect(validateAgentDefinition(withTool).ok).toBe(true);

    const withLlm = withFlow(
      [ask, { id: 'chat', type: 'llm', goal: 'Chat' }, { id: 'route', type: 'branch' }, done],
      [
        { id: 'e0', source: 'ask', target: 'chat' },
        { id: 'e1', source: 'chat', target: 'route' },
        ...edges('anything').slice(1),
      ],
      { llm },
    );
    expect(validateAgentDefinition(withLlm).ok).toBe(true);
  });

  it('TOOL_UNKNOWN for a tool node and for an llm node', () => {
    const toolNode = withFlow(
      [ask, { id: 'look', type: 'tool', tool: 'missing_tool' }, done],
      [
        { id: 'e0', source: 'ask', target: 'look' },
        { id: 'e1', source: 'look', target: 'done' },
      ],
    );
    const issue = expectIssue(toolNode, 'TOOL_UNKNOWN', 'look');
    expect(issue.path).toBe('flow.nodes[1].tool');
    expect(issue.message).toContain('"missing_tool"');

    const llmNode = withFlow(
      [ask, { id: 'chat', type: 'llm', goal: 'Help', tools: ['lookup', 'nope'] }, done],
      [
        { id: 'e0', source: 'ask', target: 'chat' },
        { id: 'e1', source: 'chat', target: 'done' },
      ],
      { llm, tools: [tool] },
    );
    expect(expectIssue(llmNode, 'TOOL_UNKNOWN', 'chat').path).toBe('flow.nodes[1].tools[1]');
  });

  it('LLM_NOT_CONFIGURED', () => {
    const def = withFlow(
      [ask, { id: 'chat', type: 'llm', goal: 'Help' }, done],
      [
        { id: 'e0', source: 'ask', target: 'chat' },
        { id: 'e1', source: 'chat', target: 'done' },
      ],
    );
    expect(expectIssue(def, 'LLM_NOT_CONFIGURED', 'chat').path).toBe('flow.nodes[1]');
  });

  it('OUTCOME_UNKNOWN; an llm node whose outcomes all have edges needs no default edge', () => {
    const chat: Node = { id: 'chat', type: 'llm', goal: 'Help', outcomes: ['resolved', 'escalate'] };
    const failed = { id: 'failed', type: 'end', disposition: 'escalated' } as const;
    const covered = withFlow(
      [ask, chat, done, failed],
      [
        { id: 'e0', source: 'ask', target: 'chat' },
        { id: 'ok', source: 'chat', target: 'done', when: { kind: 'outcome', equals: 'resolved' } },
        { id: 'esc', source: 'chat', target: 'failed', when: { kind: 'outcome', equals: 'escalate' } },
      ],
      { llm },
    );
    expect(validateAgentDefinition(covered).ok).toBe(true);

    const typo = withFlow(
      [ask, chat, done, failed],
      [
        { id: 'e0', source: 'ask', target: 'chat' },
        { id: 'ok', source: 'chat', target: 'done', when: { kind: 'outcome', equals: 'resolved' } },
        { id: 'esc', source: 'chat', target: 'failed', when: { kind: 'outcome', equals: 'escalated' } },
        { id: 'else', source: 'chat', target: 'failed' },
      ],
      { llm },
    );
    const issue = expectIssue(typo, 'OUTCOME_UNKNOWN', 'chat');
    expect(issue).toMatchObject({ edgeId: 'esc', path: 'flow.edges[2].when.equals' });
    expect(issue.message).toContain('"escalated"');

    const uncovered = withFlow(
      [ask, chat, done],
      [
        { id: 'e0', source: 'ask', target: 'chat' },
        { id: 'ok', source: 'chat', target: 'done', when: { kind: 'outcome', equals: 'resolved' } },
      ],
      { llm },
    );
    expect(expectIssue(uncovered, 'DEAD_END', 'chat')).toBeDefined();
  });

  it('EDGE_CONDITION_MISPLACED: an outcome test on a non-llm node, a failure edge on a node that cannot fail', () => {
    const outcome = withFlow(
      [ask, done],
      [
        { id: 'e', source: 'ask', target: 'done' },
        { id: 'odd', source: 'ask', target: 'done', when: { kind: 'outcome', equals: 'x' } },
      ],
    );
    expect(expectIssue(outcome, 'EDGE_CONDITION_MISPLACED', 'ask')).toMatchObject({ edgeId: 'odd' });

    const failure = withFlow(
      [ask, { id: 'hello', type: 'say', text: 'Hi' }, done],
      [
        { id: 'e0', source: 'ask', target: 'hello' },
        { id: 'e1', source: 'hello', target: 'done' },
        { id: 'oops', source: 'hello', target: 'done', when: { kind: 'failure' } },
      ],
    );
    const issue = expectIssue(failure, 'EDGE_CONDITION_MISPLACED', 'hello');
    expect(issue).toMatchObject({ edgeId: 'oops', path: 'flow.edges[2].when' });
  });

  it('reports every problem at once, not just the first', () => {
    const def = withFlow(
      [ask, { id: 'island', type: 'say', text: 'Alone' }],
      [{ id: 'e', source: 'ask', target: 'ghost' }],
    );
    const codes = issuesOf(def).map((i) => i.code);
    expect(codes).toEqual(expect.arrayContaining(['EDGE_TARGET_UNKNOWN', 'NODE_UNREACHABLE', 'DEAD_END']));
  });
});

afterAll(() => {
  // Every documented code is exercised above.
  expect([...DEFINITION_ISSUE_CODES].filter((code) => !seen.has(code))).toEqual([]);
});
