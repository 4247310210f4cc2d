/**
 * Agent drafts and their frozen versions: validation into a 422, publishing (next version number
 * under a row lock), the structural diff the dashboard shows, and the masking of tool signing
 * secrets so they never leave the API in full.
 */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import type { AgentDefinition } from '../../contracts/agent-definition';
import { validateAgentDefinition, type DefinitionIssue } from '../../contracts/agent-graph';
import { Agent, AgentVersion } from '../../db/entities';
import { AppError, ConflictError, NotFoundError } from '../errors';

// ---------------------------------------------------------------------------------------------
// Validation

export class AgentDefinitionInvalidError extends AppError {
  constructor(readonly issues: DefinitionIssue[]) {
    const shown = issues
      .slice(0, 3)
      .map((i) => i.message)
      .join('; ');
    const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : '';
    super(
      422,
      'AGENT_DEFINITION_INVALID',
      `The agent definition has ${issues.length} problem${issues.length === 1 ? '' : 's'}: ${shown}${more}`,
      { issues },
    );
  }
}

/** The validated, normalised definition (defaults applied), or a 422 listing every issue. */
export function parseDefinitionOrThrow(input: unknown, extraIssues: DefinitionIssue[] = []): AgentDefinition {
  const result = validateAgentDefinition(input);
  const issues = [...extraIssues, ...(result.ok ? [] : result.issues)];
  if (issues.length || !result.ok) throw new AgentDefinitionInvalidError(issues);
  return result.definition;
}

// ---------------------------------------------------------------------------------------------
// Signing secrets

const MASK = '••••';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `••••` and the last 4 characters: enough to recognise a secret, not to use it. */
export function maskSecret(secret: string): string {
  return `${MASK}${secret.slice(-4)}`;
}

export function isMaskedSecret(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(MASK) && value.length <= MASK.length + 4;
}

/** A deep copy in which every `signingSecret` string is masked. */
export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => redactSecrets(v)) as T;
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = key === 'signingSecret' && typeof v === 'string' ? maskSecret(v) : redactSecrets(v);
  }
  return out as T;
}

/**
 * Lets the dashboard send back a definition it received masked: a tool whose `signingSecret` is
 * the masked form of the stored secret of the tool with the same name keeps that stored secret. A
 * masked value that matches nothing stored is an issue (the secret must be entered again).
 */
export function restoreMaskedSecrets(
  incoming: unknown,
  stored: unknown,
): { definition: unknown; issues: DefinitionIssue[] } {
  if (!isRecord(incoming) || !Array.isArray(incoming.tools)) return { definition: incoming, issues: [] };
  const storedSecrets = new Map<string, string>();
  if (isRecord(stored) && Array.isArray(stored.tools)) {
    for (const tool of stored.tools as unknown[]) {
      if (isRecord(tool) && typeof tool.name === 'string' && typeof tool.signingSecret === 'string') {
        storedSecrets.set(tool.name, tool.signingSecret);
      }
    }
  }
  const issues: DefinitionIssue[] = [];
  const tools = (incoming.tools as unknown[]).map((tool, index) => {
    if (!isRecord(tool) || !isMaskedSecret(tool.signingSecret)) return tool;
    const name = typeof tool.name === 'string' ? tool.name : undefined;
    const secret = name === undefined ? undefined : storedSecrets.get(name);
    if (secret !== undefined && maskSecret(secret) === tool.signingSecret)
      return { ...tool, signingSecret: secret };
    issues.push({
      code: 'SIGNING_SECRET_MASKED',
      message: `Tool "${name ?? `#${index}`}": the signing secret ${tool.signingSecret} is masked and no stored secret of a tool with this name matches it; enter the full secret`,
      path: `tools[${index}].signingSecret`,
    });
    return tool;
  });
  return { definition: { ...incoming, tools }, issues };
}

// ---------------------------------------------------------------------------------------------
// Equality and diff

/** JSON with object keys sorted, so equal definitions compare equal whatever their key order (jsonb reorders keys). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    const entries = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function definitionsEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

export interface DefinitionChange {
  /** e.g. `flow.nodes[collect_date].prompt`: nodes, edges and intents by id, tools by name. */
  path: string;
  kind: 'added' | 'removed' | 'changed';
  before?: unknown;
  after?: unknown;
}

/** The field that identifies the elements of an array, when every element has a distinct one. */
function identityKey(...arrays: unknown[][]): 'id' | 'name' | undefined {
  for (const key of ['id', 'name'] as const) {
    const distinct = arrays.every((array) => {
      const seen = new Set<string>();
      return array.every((el) => {
        if (!isRecord(el) || typeof el[key] !== 'string' || seen.has(el[key])) return false;
        seen.add(el[key]);
        return true;
      });
    });
    if (distinct) return key;
  }
  return undefined;
}

const child = (path: string, key: string) => (path ? `${path}.${key}` : key);

function diffValues(beforeValue: unknown, afterValue: unknown, path: string, out: DefinitionChange[]): void {
  if (definitionsEqual(beforeValue, afterValue)) return;
  if (Array.isArray(beforeValue) && Array.isArray(afterValue)) {
    const before = beforeValue as unknown[];
    const after = afterValue as unknown[];
    const key = before.length || after.length ? identityKey(before, after) : undefined;
    if (key) {
      const keyOf = (el: unknown) => (el as Record<string, string>)[key]!;
      const beforeByKey = new Map(before.map((el) => [keyOf(el), el]));
      const afterKeys = new Set(after.map(keyOf));
      for (const el of before) {
        if (afterKeys.has(keyOf(el))) continue;
        out.push({ path: `${path}[${keyOf(el)}]`, kind: 'removed', before: el });
      }
      for (const el of after) {
        const k = keyOf(el);
        if (beforeByKey.has(k)) diffValues(beforeByKey.get(k), el, `${path}[${k}]`, out);
        else out.push({ path: `${path}[${k}]`, kind: 'added', after: el });
      }
      // Order can matter (edges are tried in order), so a reordering is reported on the array itself.
      const beforeOrder = before.map(keyOf).filter((k) => afterKeys.has(k));
      const afterOrder = after.map(keyOf).filter((k) => beforeByKey.has(k));
      if (beforeOrder.join('\u0000') !== afterOrder.join('\u0000')) {
        out.push({ path, kind: 'changed', before: beforeOrder, after: afterOrder });
      }
      return;
    }
    if ([...before, ...after].every(isRecord)) {
      for (let i = 0; i < Math.max(before.length, after.length); i++) {
        if (i >= after.length) out.push({ path: `${path}[${i}]`, kind: 'removed', before: before[i] });
        else if (i >= before.length) out.push({ path: `${path}[${i}]`, kind: 'added', after: after[i] });
        else diffValues(before[i], after[i], `${path}[${i}]`, out);
      }
      return;
    }
    // Lists of plain values (phrases, choices, outcomes) read best whole.
    out.push({ path, kind: 'changed', before, after });
    return;
  }
  const before = beforeValue;
  const after = afterValue;
  if (isRecord(before) && isRecord(after)) {
    for (const [key, value] of Object.entries(before)) {
      if (value === undefined) continue;
      if (after[key] === undefined) out.push({ path: child(path, key), kind: 'removed', before: value });
      else diffValues(value, after[key], child(path, key), out);
    }
    for (const [key, value] of Object.entries(after)) {
      if (value !== undefined && before[key] === undefined) {
        out.push({ path: child(path, key), kind: 'added', after: value });
      }
    }
    return;
  }
  if (before === undefined) out.push({ path, kind: 'added', after });
  else if (after === undefined) out.push({ path, kind: 'removed', before });
  else out.push({ path, kind: 'changed', before, after });
}

function redactChange(change: DefinitionChange): DefinitionChange {
  const secretLeaf = change.path.endsWith('.signingSecret');
  const redact = (v: unknown) => (secretLeaf && typeof v === 'string' ? maskSecret(v) : redactSecrets(v));
  return {
    path: change.path,
    kind: change.kind,
    ...(change.before !== undefined ? { before: redact(change.before) } : {}),
    ...(change.after !== undefined ? { after: redact(change.after) } : {}),
  };
}

/**
 * A readable structural diff: nodes, edges and global intents are matched by `id` and tools by
 * `name`, not by position, so moving a node in the list is not a change of every node after it.
 * Signing secrets in the result are masked.
 */
export function diffDefinitions(before: unknown, after: unknown): DefinitionChange[] {
  const out: DefinitionChange[] = [];
  diffValues(before, after, '', out);
  return out.map(redactChange);
}

// ---------------------------------------------------------------------------------------------
// Versions

export async function findLatestVersion(em: EntityManager, agentId: string): Promise<AgentVersion | null> {
  return em.findOne(AgentVersion, { agentId }, { orderBy: { version: 'desc' } });
}

/**
 * Freezes the agent's draft as its next version and makes it the published one. The agent row is
 * locked (FOR UPDATE) for the rest of the transaction, so concurrent publishes of one agent queue
 * up and each gets its own number; the unique (agent_id, version) constraint backs this.
 */
export async function publishDraft(
  em: EntityManager,
  agentId: string,
  publishedByUserId: string | null,
): Promise<{ agent: Agent; version: AgentVersion }> {
  const agent = await em.findOne(
    Agent,
    { id: agentId, archivedAt: null },
    { lockMode: LockMode.PESSIMISTIC_WRITE },
  );
  if (!agent) throw new NotFoundError('Agent', agentId);
  const definition = parseDefinitionOrThrow(agent.draft);
  const latest = await findLatestVersion(em, agent.id);
  if (latest && definitionsEqual(latest.definition, definition)) {
    throw new ConflictError(
      'NO_CHANGES',
      `The draft is identical to version ${latest.version}; there is nothing new to publish`,
      { version: latest.version },
    );
  }
  const version = em.create(AgentVersion, {
    tenantId: agent.tenantId,
    agentId: agent.id,
    version: (latest?.version ?? 0) + 1,
    definition,
    publishedByUserId,
  });
  agent.publishedVersionId = version.id;
  await em.flush();
  return { agent, version };
}
