/**
 * Text-turn scenarios of `npm run bench`, on the stack `bench/run.ts` starts (embedded PostgreSQL, the
 * Temporal dev server, the api in-process, ONE in-process worker serving calls, integrations and
 * billing, and an OpenAI-compatible peer in-process that answers every request at once with "Sure.").
 *
 * - deterministic turns: the demo booking agent (no LLM), `userTurn` updates sent with the Temporal
 *   client one at a time; each turn runs one engine step, `speak` and one turn persistence.
 * - LLM turns: an agent with one `llm` node; `speak` also streams one completion from the peer. The
 *   provider's share (`speak`'s own `llmTotalMs`, stored with the turn) is subtracted per turn.
 * - the LLM turn through `POST /v1/conversations/:id/messages`: the api's own share.
 * - concurrency: N conversations in flight on the one worker, each sending turns back to back.
 * - where a turn's time goes: scheduled/started/completed times of every task in the histories.
 * - the same turns on a second dev server whose history service may read its transfer queue more
 *   than 20 times a second (the default per shard, and the dev server has one shard): what the
 *   dispatch waits cost, measured rather than inferred.
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import type { ActivityDeps } from '../activities';
import { createApp } from '../api/app';
import type { Config } from '../config';
import type { AgentDefinitionInput } from '../contracts/agent-definition';
import {
  callWorkflowId,
  hangupSignal,
  userTurnUpdate,
  userTurnUpdateId,
  type UserTurnResult,
} from '../contracts/call';
import { seedDemoAgents } from '../db/seed/demo-agents';
import { withTenant } from '../db/tenant-context';
import type { Logger } from '../lib/logger';
import { freePort } from '../lib/net';
import { startDevServer } from '../temporal-config/dev-server';
import type { OpenAiPeer, PeerScriptEntry } from '../test/peers/openai-peer';
import { createWorkers } from '../workers/create-workers';
import { procCpuSeconds, progress, summarize, type Summary } from './stats';

export interface TextTurnsContext {
  /** The api's base URL, e.g. http://127.0.0.1:1234 */
  base: string;
  /** An owner's JWT for the tenant the conversations belong to. */
  token: string;
  tenantId: string;
  userId: string;
  orm: MikroORM;
  /** Client of the dev server the api and the worker use. */
  temporal: Client;
  /** That dev server's process, for its CPU time. */
  temporalPid?: number;
  peer: OpenAiPeer;
  log: (line: string) => void;
  /** For the second (tuned) dev server, its worker and its api. */
  config: Config;
  cliPath: string;
  scratchDir: string;
  activityDeps: ActivityDeps;
  logger: Logger;
}

/** The peer's one reply: no delay, a few characters, for as many requests as it gets. */
export const INSTANT_REPLY: PeerScriptEntry = (body) =>
  body.tools?.some((t) => t.function.name === 'record_analysis')
    ? {
        // Post-call analysis, when the bench ends its conversations.
        toolCalls: [
          {
            name: 'record_analysis',
            arguments: {
              summary: 'A bench conversation.',
              sentiment: 'neutral',
              success: { achieved: true, reason: 'It was a benchmark.' },
              csat: 3,
            },
          },
        ],
      }
    : { content: 'Sure.' };

/**
 * The second dev server's only difference: its history service may read its transfer queue (which
 * hands activity tasks, and workflow tasks after an activity, to matching) 1000 times a second
 * instead of 20 per shard.
 */
export const TUNED_DYNAMIC_CONFIG = ['history.transferProcessorMaxPollRPS=1000'];

/** The bench's sizes. */
export const TEXT_TURN_PLAN = {
  deterministicTurns: 1000,
  llmTurns: 1000,
  turnsPerConversation: 25,
  httpTurnsWithTurnId: 150,
  httpTurnsWithoutTurnId: 50,
  tunedTurns: 250,
  concurrencyLevels: [1, 4, 16, 64, 128],
  /**
   * Per conversation at each level: at least this many turns, and at least 50 turns per level (a
   * conversation stays under the llm node's 100 turns, the opening included).
   */
  concurrencyTurnsPerConversation: 15,
  concurrencyMinTurnsPerLevel: 50,
  /** A level stops the climb when its p95 exceeds this or it had errors… */
  concurrencyStopP95Ms: 1000,
  /** …and no new level starts once a ladder has run this long. */
  concurrencyBudgetMs: 150_000,
  /** "Sustains" = the highest level whose p95 stays below this, with no errors. */
  sustainP95Ms: 500,
};

// ------------------------------------------------------------------------------------------------
// plumbing

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function api(
  ctx: TextTurnsContext,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  base = ctx.base,
): Promise<Json> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${ctx.token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as Json;
}

/** The peer takes one script entry per request: keep at least `n` queued, and its request log empty. */
function ensurePeerReplies(peer: OpenAiPeer, n: number): void {
  const missing = n - peer.remaining();
  if (missing > 0) peer.script(Array.from({ length: missing }, () => INSTANT_REPLY));
  peer.requests.splice(0, peer.requests.length);
}

interface Conversation {
  callId: string;
  handle: WorkflowHandle;
  lastTurnId: number;
}

/** A Temporal server with a worker on it, and an api in this process that talks to it. */
interface Target {
  base: string;
  temporal: Client;
  /** The server's process, for its CPU time. */
  temporalPid?: number;
  /** Starts a conversation through the api, as users start them. */
  start(agentId: string): Promise<Conversation>;
  /**
   * Ends every conversation started so far and waits for their workflows to finish (post-call work
   * included), so none of it runs during the next measurement and none reaches its maximum duration
   * mid-run. Not measured.
   */
  endAll(): Promise<void>;
}

function target(ctx: TextTurnsContext, base: string, temporal: Client, temporalPid?: number): Target {
  const open: Conversation[] = [];
  return {
    base,
    temporal,
    temporalPid,
    async start(agentId) {
      const started = await api(ctx, 'POST', '/v1/conversations', { agentId }, base);
      const callId = started.callId as string;
      const conversation = {
        callId,
        handle: temporal.workflow.getHandle(callWorkflowId(callId)),
        lastTurnId: 0,
      };
      open.push(conversation);
      return conversation;
    },
    async endAll() {
      const ending = open.splice(0, open.length);
      ensurePeerReplies(ctx.peer, ending.length + 10); // post-call analysis of LLM conversations
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(16, ending.length) }, async () => {
          while (next < ending.length) {
            const { handle } = ending[next++]!;
            await handle.signal(hangupSignal, { reason: 'bench: done' });
            await handle.result();
          }
        }),
      );
    },
  };
}

/** Starts `n` conversations, `parallel` at a time (not measured). */
async function startConversations(
  target: Target,
  agentId: string,
  n: number,
  parallel = 8,
): Promise<Conversation[]> {
  const out: Conversation[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, async () => {
      while (next < n) {
        next += 1;
        out.push(await target.start(agentId));
      }
    }),
  );
  return out;
}

/** One `userTurn` update sent with the Temporal client, as the api and the relay send it. */
async function clientTurn(
  conversation: Conversation,
  text: string,
): Promise<{ ms: number; reply: UserTurnResult }> {
  const turnId = conversation.lastTurnId + 1;
  conversation.lastTurnId = turnId;
  const t0 = performance.now();
  const reply = await conversation.handle.executeUpdate(userTurnUpdate, {
    args: [{ turnId, text }],
    updateId: userTurnUpdateId(conversation.callId, turnId),
  });
  return { ms: performance.now() - t0, reply };
}

/** Summary whose "per s" is turns per second of turn time (conversation starts excluded). */
function turnSummary(samples: number[]): Summary {
  return summarize(
    samples,
    samples.reduce((a, b) => a + b, 0),
  );
}

// ------------------------------------------------------------------------------------------------
// a. deterministic turns with the demo booking agent

/**
 * The booking agent asks name → day and time → yes/no, and gives up on a slot after three answers it
 * cannot parse, so "keep sending unparseable dates" would end the conversation at the third. This
 * script keeps it open: two unparseable dates (reprompt), a real one (confirmation prompt), two
 * unparseable yes/no answers (reprompt), then "no", which says "let's try another time" and asks for
 * the day again. `nodes`: how many nodes speak in the reply (each is its own `speak` activity).
 */
const BOOKING_CYCLE: { text: string; expectNode: string; nodes: 1 | 2 }[] = [
  { text: 'hmm, let me think', expectNode: 'ask_when', nodes: 1 },
  { text: 'I am not sure yet', expectNode: 'ask_when', nodes: 1 },
  { text: 'tomorrow at 3 pm', expectNode: 'ask_confirm', nodes: 1 },
  { text: 'maybe', expectNode: 'ask_confirm', nodes: 1 },
  { text: 'hmm, let me think', expectNode: 'ask_confirm', nodes: 1 },
  { text: 'no', expectNode: 'ask_when', nodes: 2 },
];

function bookingTurn(index: number): (typeof BOOKING_CYCLE)[number] {
  if (index === 0) return { text: 'Ada Lovelace', expectNode: 'ask_when', nodes: 1 };
  return BOOKING_CYCLE[(index - 1) % BOOKING_CYCLE.length]!;
}

export interface DeterministicResult {
  all: Summary;
  oneNode: Summary;
  twoNodes: Summary;
  conversations: number;
  callIds: string[];
}

export async function deterministicTurns(
  target: Target,
  agentId: string,
  total: number,
  label: string,
  perConversation = TEXT_TURN_PLAN.turnsPerConversation,
): Promise<DeterministicResult> {
  // Warm-up (not measured): the calls queue's pollers, the workflow cache, the activities' pools.
  const warm = await target.start(agentId);
  for (let i = 0; i < 13; i++) await clientTurn(warm, bookingTurn(i).text);

  const all: number[] = [];
  const one: number[] = [];
  const two: number[] = [];
  const callIds: string[] = [];
  while (all.length < total) {
    const conversation = await target.start(agentId);
    callIds.push(conversation.callId);
    for (let i = 0; i < perConversation && all.length < total; i++) {
      const step = bookingTurn(i);
      const { ms, reply } = await clientTurn(conversation, step.text);
      if (reply.ended || reply.nodeId !== step.expectNode) {
        throw new Error(
          `booking turn ${i} ("${step.text}"): expected node ${step.expectNode}, got ${reply.nodeId} (ended ${reply.ended}): ${reply.text}`,
        );
      }
      all.push(ms);
      (step.nodes === 1 ? one : two).push(ms);
      progress(label, all.length, total);
    }
  }
  return {
    all: turnSummary(all),
    oneNode: turnSummary(one),
    twoNodes: turnSummary(two),
    conversations: callIds.length,
    callIds,
  };
}

// ------------------------------------------------------------------------------------------------
// b. LLM turns with the instant peer

const BENCH_LLM_AGENT: AgentDefinitionInput = {
  persona: { systemPrompt: 'You are the front desk of a small business. Answer in one short sentence.' },
  greeting: 'Hi, this is the bench line.',
  llm: { model: 'bench', apiKeyRef: 'default' },
  flow: {
    startNodeId: 'chat',
    nodes: [
      {
        id: 'chat',
        type: 'llm',
        goal: "Answer the user's questions. Call complete_step with outcome 'done' when they say goodbye.",
        outcomes: ['done'],
        maxTurns: 100,
      },
      { id: 'done', type: 'end', disposition: 'done', message: 'Goodbye!' },
    ],
    edges: [{ id: 'on_done', source: 'chat', target: 'done', when: { kind: 'outcome', equals: 'done' } }],
  },
};

/** Creates and publishes the LLM agent through the api, as a designer would. */
export async function createLlmAgent(ctx: TextTurnsContext): Promise<string> {
  const created = await api(ctx, 'POST', '/v1/agents', {
    name: 'Bench LLM agent',
    definition: BENCH_LLM_AGENT,
  });
  const agentId = created.id as string;
  await api(ctx, 'POST', `/v1/agents/${agentId}/publish`, {});
  return agentId;
}

const llmText = (i: number) => `Question ${i + 1}: are you open on Saturdays?`;

export interface LlmTurnsResult {
  total: Summary;
  provider: Summary;
  overhead: Summary;
  conversations: number;
  callIds: string[];
}

/** `speak`'s own time with the provider (request sent → stream ended), per `callId:turnId`. */
async function providerTimes(ctx: TextTurnsContext, callIds: string[]): Promise<Map<string, number>> {
  const rows = await withTenant(ctx.orm, ctx.tenantId, (em) =>
    em.execute<{ call_id: string; turn_id: string; llm_ms: string }[]>(
      `select call_id, timings->>'turnId' as turn_id, timings->>'llmTotalMs' as llm_ms
         from call_turns
        where call_id in (${callIds.map(() => '?').join(', ')}) and role = 'agent'
          and timings->>'llmTotalMs' is not null`,
      callIds,
    ),
  );
  return new Map(rows.map((r) => [`${r.call_id}:${r.turn_id}`, Number(r.llm_ms)]));
}

export async function llmTurns(
  ctx: TextTurnsContext,
  target: Target,
  agentId: string,
  total: number,
  label: string,
  perConversation = TEXT_TURN_PLAN.turnsPerConversation,
): Promise<LlmTurnsResult> {
  ensurePeerReplies(ctx.peer, 20);
  const warm = await target.start(agentId);
  for (let i = 0; i < 12; i++) await clientTurn(warm, llmText(i));

  const samples: { callId: string; turnId: number; ms: number }[] = [];
  const callIds: string[] = [];
  while (samples.length < total) {
    ensurePeerReplies(ctx.peer, perConversation + 2);
    const conversation = await target.start(agentId);
    callIds.push(conversation.callId);
    for (let i = 0; i < perConversation && samples.length < total; i++) {
      const { ms, reply } = await clientTurn(conversation, llmText(i));
      if (reply.ended || reply.text !== 'Sure.')
        throw new Error(`LLM turn ${i}: unexpected reply ${JSON.stringify(reply)}`);
      samples.push({ callId: conversation.callId, turnId: reply.turnId, ms });
      progress(label, samples.length, total);
    }
  }
  const provider = await providerTimes(ctx, callIds);
  const providerMs: number[] = [];
  const overheadMs: number[] = [];
  for (const s of samples) {
    const p = provider.get(`${s.callId}:${s.turnId}`);
    if (p === undefined) continue;
    providerMs.push(p);
    overheadMs.push(s.ms - p);
  }
  if (providerMs.length < samples.length) {
    throw new Error(`only ${providerMs.length} of ${samples.length} LLM turns have llmTotalMs in call_turns`);
  }
  return {
    total: turnSummary(samples.map((s) => s.ms)),
    provider: turnSummary(providerMs),
    overhead: turnSummary(overheadMs),
    conversations: callIds.length,
    callIds,
  };
}

// ------------------------------------------------------------------------------------------------
// c. the same LLM turn through the api

export interface HttpResult {
  withTurnId: Summary;
  withoutTurnId: Summary;
}

export async function httpTurns(
  ctx: TextTurnsContext,
  target: Target,
  agentId: string,
  labelPrefix: string,
  withTurnId = TEXT_TURN_PLAN.httpTurnsWithTurnId,
  withoutTurnId = TEXT_TURN_PLAN.httpTurnsWithoutTurnId,
  perConversation = TEXT_TURN_PLAN.turnsPerConversation,
): Promise<HttpResult> {
  const run = async (label: string, total: number, sendTurnId: boolean) => {
    const samples: number[] = [];
    while (samples.length < total) {
      ensurePeerReplies(ctx.peer, perConversation + 2);
      const conversation = await target.start(agentId);
      for (let i = 0; i < perConversation && samples.length < total; i++) {
        const turnId = conversation.lastTurnId + 1;
        conversation.lastTurnId = turnId;
        const t0 = performance.now();
        const reply = await api(
          ctx,
          'POST',
          `/v1/conversations/${conversation.callId}/messages`,
          sendTurnId ? { text: llmText(i), turnId } : { text: llmText(i) },
          target.base,
        );
        samples.push(performance.now() - t0);
        if (reply.turnId !== turnId || reply.text !== 'Sure.') {
          throw new Error(`HTTP turn ${turnId}: unexpected reply ${JSON.stringify(reply)}`);
        }
        progress(label, samples.length, total);
      }
    }
    return turnSummary(samples);
  };
  return {
    withTurnId: await run(`${labelPrefix}HTTP (turnId) ×${withTurnId}`, withTurnId, true),
    withoutTurnId: await run(`${labelPrefix}HTTP (no turnId) ×${withoutTurnId}`, withoutTurnId, false),
  };
}

// ------------------------------------------------------------------------------------------------
// d. concurrent conversations on one worker

export interface ConcurrencyLevel {
  conversations: number;
  turnsPerConversation: number;
  turns: number;
  errors: number;
  firstError?: string;
  summary: Summary;
  /** Cores used during the level (CPU seconds / wall seconds); NaN where /proc cannot tell. */
  cores: { bench: number; temporal: number; postgres: number };
  /** Share of the level's wall time this process's main thread (api, activities, peer, client) was busy. */
  mainThreadBusy: number;
}

function cpuNow(temporalPid: number | undefined) {
  const own = process.cpuUsage();
  return {
    bench: (own.user + own.system) / 1e6,
    temporal: temporalPid ? procCpuSeconds((pid) => pid === temporalPid) : NaN,
    postgres: procCpuSeconds((_, comm) => comm === 'postgres'),
  };
}

export interface ConcurrencyResult {
  levels: ConcurrencyLevel[];
  /** The highest level whose p95 stayed under TEXT_TURN_PLAN.sustainP95Ms with no errors (0 if none). */
  sustains: number;
  stoppedBecause?: string;
}

export async function concurrentConversations(
  ctx: TextTurnsContext,
  target: Target,
  agentId: string,
  labelPrefix: string,
  plan = TEXT_TURN_PLAN,
): Promise<ConcurrencyResult> {
  const levels: ConcurrencyLevel[] = [];
  let stoppedBecause: string | undefined;
  const ladderStarted = performance.now();
  for (const n of plan.concurrencyLevels) {
    if (performance.now() - ladderStarted > plan.concurrencyBudgetMs) {
      stoppedBecause = `time budget of ${plan.concurrencyBudgetMs / 1000} s used before ${n} in flight`;
      break;
    }
    const perConversation = Math.max(
      plan.concurrencyTurnsPerConversation,
      Math.ceil(plan.concurrencyMinTurnsPerLevel / n),
    );
    ensurePeerReplies(ctx.peer, n * (perConversation + 1) + 10);
    const conversations = await startConversations(target, agentId, n);
    const samples: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const total = n * perConversation;
    const label = `${labelPrefix}${n} in flight ×${total}`;
    const cpu0 = cpuNow(target.temporalPid);
    const elu0 = performance.eventLoopUtilization();
    const started = performance.now();
    await Promise.all(
      conversations.map(async (conversation) => {
        for (let i = 0; i < perConversation; i++) {
          try {
            const { ms, reply } = await clientTurn(conversation, llmText(i));
            if (reply.text !== 'Sure.') throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
            samples.push(ms);
          } catch (err) {
            errors += 1;
            firstError ??= err instanceof Error ? err.message : String(err);
          }
          progress(label, samples.length + errors, total);
        }
      }),
    );
    const wallMs = performance.now() - started;
    const cpu1 = cpuNow(target.temporalPid);
    const cores = (key: keyof typeof cpu0) => (cpu1[key] - cpu0[key]) / (wallMs / 1000);
    const level: ConcurrencyLevel = {
      conversations: n,
      turnsPerConversation: perConversation,
      turns: total,
      errors,
      firstError,
      summary: summarize(samples, wallMs),
      cores: { bench: cores('bench'), temporal: cores('temporal'), postgres: cores('postgres') },
      mainThreadBusy: performance.eventLoopUtilization(elu0).utilization,
    };
    levels.push(level);
    await target.endAll();
    if (errors > 0) {
      stoppedBecause = `${errors} errors at ${n} in flight (first: ${firstError})`;
      break;
    }
    if (level.summary.p95 > plan.concurrencyStopP95Ms) {
      stoppedBecause = `p95 ${level.summary.p95.toFixed(0)} ms > ${plan.concurrencyStopP95Ms} ms at ${n} in flight`;
      break;
    }
  }
  const ok = levels.filter((l) => l.errors === 0 && l.summary.p95 < plan.sustainP95Ms);
  return { levels, sustains: ok.length ? Math.max(...ok.map((l) => l.conversations)) : 0, stoppedBecause };
}

// ------------------------------------------------------------------------------------------------
// where a turn's time goes: the conversations' histories

export interface TurnAnatomy {
  turns: number;
  workflowTasksPerTurn: number;
  activityTasksPerTurn: number;
  /** Means per task, ms. */
  workflowTaskDispatchMs: number;
  /** … of the workflow task an arriving update creates (straight to matching, no transfer task). */
  updateTaskDispatchMs: number;
  /** … of a workflow task scheduled by a completed activity (history's transfer queue → matching). */
  afterActivityTaskDispatchMs: number;
  workflowTaskRunMs: number;
  activityDispatchMs: number;
  activityRunMs: number;
  /** Per turn: the sum of all task times, ms. */
  perTurnMs: number;
  /** Per turn: dispatch waits alone (both kinds), ms. */
  dispatchPerTurnMs: number;
  /** Per activity type: count per turn and mean run time. */
  activities: Record<string, { perTurn: number; runMs: number }>;
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const eventMs = (e: HistoryEvent): number => {
  const t = e.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : NaN;
};
const idOf = (v: { toString(): string } | number | null | undefined): string => String(v);

/**
 * From each history, every workflow task and activity after the conversation's opening (the first
 * completed update): scheduled → started (the dispatch wait) and started → completed (the work).
 */
export async function turnAnatomy(client: Client, callIds: string[]): Promise<TurnAnatomy> {
  let turns = 0;
  const wftDispatch: number[] = [];
  const updateDispatch: number[] = [];
  const afterActivityDispatch: number[] = [];
  const wftRun: number[] = [];
  const actDispatch: number[] = [];
  const actRun: number[] = [];
  const byType = new Map<string, number[]>();
  for (const callId of callIds) {
    const history = await client.workflow.getHandle(callWorkflowId(callId)).fetchHistory();
    const events = history.events ?? [];
    const updatesDone = events.flatMap((e, i) =>
      e.workflowExecutionUpdateCompletedEventAttributes ? [i] : [],
    );
    if (updatesDone.length < 2) continue;
    // From the opening's reply to the last turn's: the turns only, not the call's start or end.
    const turnEvents = events.slice(updatesDone[0]! + 1, updatesDone.at(-1)! + 1);
    const scheduledAt = new Map<string, number>();
    const startedAt = new Map<string, number>();
    const activityType = new Map<string, string>();
    const afterActivity = new Set<string>();
    let previous: HistoryEvent | undefined;
    for (const e of turnEvents) {
      const id = idOf(e.eventId);
      const at = eventMs(e);
      if (e.workflowExecutionUpdateCompletedEventAttributes) turns += 1;
      if (e.workflowTaskScheduledEventAttributes) {
        scheduledAt.set(id, at);
        if (previous?.activityTaskCompletedEventAttributes) afterActivity.add(id);
      }
      previous = e;
      if (e.workflowTaskStartedEventAttributes) {
        const scheduledId = idOf(e.workflowTaskStartedEventAttributes.scheduledEventId);
        const scheduled = scheduledAt.get(scheduledId);
        if (scheduled !== undefined) {
          wftDispatch.push(at - scheduled);
          (afterActivity.has(scheduledId) ? afterActivityDispatch : updateDispatch).push(at - scheduled);
          startedAt.set(id, at);
        }
      }
      if (e.workflowTaskCompletedEventAttributes) {
        const started = startedAt.get(idOf(e.workflowTaskCompletedEventAttributes.startedEventId));
        if (started !== undefined) wftRun.push(at - started);
      }
      if (e.activityTaskScheduledEventAttributes) {
        scheduledAt.set(id, at);
        activityType.set(id, e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
      }
      if (e.activityTaskStartedEventAttributes) {
        const scheduled = scheduledAt.get(idOf(e.activityTaskStartedEventAttributes.scheduledEventId));
        if (scheduled !== undefined) {
          actDispatch.push(at - scheduled);
          startedAt.set(id, at);
        }
      }
      if (e.activityTaskCompletedEventAttributes) {
        const a = e.activityTaskCompletedEventAttributes;
        const started = startedAt.get(idOf(a.startedEventId));
        if (started !== undefined) {
          actRun.push(at - started);
          const type = activityType.get(idOf(a.scheduledEventId)) ?? '?';
          byType.set(type, [...(byType.get(type) ?? []), at - started]);
        }
      }
    }
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const mean = (xs: number[]) => (xs.length ? sum(xs) / xs.length : 0);
  const perTurn = (n: number) => (turns ? n / turns : 0);
  return {
    turns,
    workflowTasksPerTurn: perTurn(wftRun.length),
    activityTasksPerTurn: perTurn(actRun.length),
    workflowTaskDispatchMs: mean(wftDispatch),
    updateTaskDispatchMs: mean(updateDispatch),
    afterActivityTaskDispatchMs: mean(afterActivityDispatch),
    workflowTaskRunMs: mean(wftRun),
    activityDispatchMs: mean(actDispatch),
    activityRunMs: mean(actRun),
    perTurnMs: perTurn(sum(wftDispatch) + sum(wftRun) + sum(actDispatch) + sum(actRun)),
    dispatchPerTurnMs: perTurn(sum(wftDispatch) + sum(actDispatch)),
    activities: Object.fromEntries(
      [...byType].map(([type, runs]) => [type, { perTurn: perTurn(runs.length), runMs: mean(runs) }]),
    ),
  };
}

// ------------------------------------------------------------------------------------------------
// e. the tuned dev server

/**
 * A second dev server, started like run.ts's (same launcher, same search attributes) with
 * TUNED_DYNAMIC_CONFIG added through a wrapper around the CLI; a worker for `calls` and a second api
 * (same config, ORM and database) on it, both in this process.
 */
async function startTunedTarget(ctx: TextTurnsContext): Promise<{ target: Target; close(): Promise<void> }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const wrapper = path.join(ctx.scratchDir, 'temporal-tuned');
  const flags = TUNED_DYNAMIC_CONFIG.map((v) => `--dynamic-config-value ${quote(v)}`).join(' ');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${quote(ctx.cliPath)} "$@" ${flags}\n`, { mode: 0o755 });
  const server = await startDevServer({
    cliPath: wrapper,
    port: await freePort(),
    headless: true,
    dynamicConfig: [],
    log: ctx.log,
  });
  const connection = await Connection.connect({ address: server.address });
  const temporal = new Client({ connection });
  const workerConnection = await NativeConnection.connect({ address: server.address });
  const workers = await createWorkers({
    connection: workerConnection,
    namespace: 'default',
    taskQueues: ['calls'],
    activityDeps: ctx.activityDeps,
    logger: ctx.logger,
  });
  const runs = Promise.all(workers.map((w) => w.run()));
  const http = createApp({ config: ctx.config, orm: ctx.orm, temporal, logger: ctx.logger }).listen(
    0,
    '127.0.0.1',
  );
  await new Promise((resolve) => http.once('listening', resolve));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    target: target(ctx, base, temporal, server.child.pid),
    async close() {
      http.close();
      for (const w of workers) w.shutdown();
      await runs;
      await workerConnection.close();
      await connection.close();
      await server.stop();
    },
  };
}

// ------------------------------------------------------------------------------------------------
// all of it, and its section of RESULTS.md

export interface TextTurnsResults {
  deterministic: DeterministicResult;
  llm: LlmTurnsResult;
  http: HttpResult;
  concurrency: ConcurrencyResult;
  anatomy: { deterministic: TurnAnatomy; llm: TurnAnatomy };
  tuned: {
    deterministic: DeterministicResult;
    llm: LlmTurnsResult;
    http: HttpResult;
    concurrency: ConcurrencyResult;
    anatomy: { deterministic: TurnAnatomy; llm: TurnAnatomy };
  };
  elapsedMs: number;
}

export async function runTextTurnScenarios(ctx: TextTurnsContext): Promise<TextTurnsResults> {
  const started = performance.now();
  const plan = TEXT_TURN_PLAN;
  ctx.log(
    `text turns: ${plan.deterministicTurns} deterministic + ${plan.llmTurns} LLM turns, one at a time, ` +
      `${plan.httpTurnsWithTurnId + plan.httpTurnsWithoutTurnId} through HTTP, the concurrency ladder, then ` +
      `the same on a tuned dev server (about 12 minutes on two cores: a turn takes ≈ 0.2 s)`,
  );
  const main = target(ctx, ctx.base, ctx.temporal, ctx.temporalPid);
  const { bookingAgentId } = await seedDemoAgents(ctx.orm, ctx.tenantId, ctx.userId);
  const llmAgentId = await createLlmAgent(ctx);

  const deterministic = await deterministicTurns(
    main,
    bookingAgentId,
    plan.deterministicTurns,
    `deterministic turns ×${plan.deterministicTurns}`,
  );
  const deterministicAnatomy = await turnAnatomy(ctx.temporal, deterministic.callIds);
  await main.endAll();
  const llm = await llmTurns(ctx, main, llmAgentId, plan.llmTurns, `LLM turns ×${plan.llmTurns}`);
  const anatomy = { deterministic: deterministicAnatomy, llm: await turnAnatomy(ctx.temporal, llm.callIds) };
  await main.endAll();
  const http = await httpTurns(ctx, main, llmAgentId, '');
  await main.endAll();
  const concurrency = await concurrentConversations(ctx, main, llmAgentId, '');

  ctx.log(`text turns: a second dev server with ${TUNED_DYNAMIC_CONFIG.join(', ')}`);
  const tunedStack = await startTunedTarget(ctx);
  try {
    const t = tunedStack.target;
    const tunedDeterministic = await deterministicTurns(
      t,
      bookingAgentId,
      plan.tunedTurns,
      `tuned: deterministic ×${plan.tunedTurns}`,
    );
    const tunedDeterministicAnatomy = await turnAnatomy(t.temporal, tunedDeterministic.callIds);
    await t.endAll();
    const tunedLlm = await llmTurns(ctx, t, llmAgentId, plan.tunedTurns, `tuned: LLM ×${plan.tunedTurns}`);
    const tunedAnatomy = {
      deterministic: tunedDeterministicAnatomy,
      llm: await turnAnatomy(t.temporal, tunedLlm.callIds),
    };
    await t.endAll();
    const tunedHttp = await httpTurns(ctx, t, llmAgentId, 'tuned: ');
    await t.endAll();
    const tunedConcurrency = await concurrentConversations(ctx, t, llmAgentId, 'tuned: ');
    return {
      deterministic,
      llm,
      http,
      concurrency,
      anatomy,
      tuned: {
        deterministic: tunedDeterministic,
        llm: tunedLlm,
        http: tunedHttp,
        concurrency: tunedConcurrency,
        anatomy: tunedAnatomy,
      },
      elapsedMs: performance.now() - started,
    };
  } finally {
    await tunedStack.close();
  }
}

const f = (v: number) => v.toFixed(2);
const row = (name: string, s: Summary) =>
  `| ${name} | ${s.n} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${f(s.max)} | ${s.perSecond.toFixed(0)} |`;

function anatomyTable(columns: [string, TurnAnatomy][]): string {
  const line = (label: string, get: (x: TurnAnatomy) => string) =>
    `| ${label} | ${columns.map(([, x]) => get(x)).join(' | ')} |`;
  const activityNames = [...new Set(columns.flatMap(([, x]) => Object.keys(x.activities)))];
  return [
    `| per turn, from the histories | ${columns.map(([name]) => name).join(' | ')} |`,
    `|---|${columns.map(() => '---:').join('|')}|`,
    line('turns read', (x) => String(x.turns)),
    line('workflow tasks per turn', (x) => x.workflowTasksPerTurn.toFixed(2)),
    line('activity tasks per turn', (x) => x.activityTasksPerTurn.toFixed(2)),
    ...activityNames.map((name) =>
      line(`… \`${name}\`: per turn / mean run ms`, (x) => {
        const s = x.activities[name];
        return s ? `${s.perTurn.toFixed(2)} / ${f(s.runMs)}` : '–';
      }),
    ),
    line('workflow task dispatch (scheduled → started), mean ms', (x) => f(x.workflowTaskDispatchMs)),
    line('… of the task an arriving update creates', (x) => f(x.updateTaskDispatchMs)),
    line('… of a task scheduled by a completed activity', (x) => f(x.afterActivityTaskDispatchMs)),
    line('workflow task run (started → completed), mean ms', (x) => f(x.workflowTaskRunMs)),
    line('activity dispatch (scheduled → started), mean ms', (x) => f(x.activityDispatchMs)),
    line('activity run (started → completed), mean ms', (x) => f(x.activityRunMs)),
    line('dispatch waits per turn, ms', (x) => f(x.dispatchPerTurnMs)),
    line('all task time per turn, ms', (x) => f(x.perTurnMs)),
  ].join('\n');
}

function concurrencyRows(server: string, c: ConcurrencyResult): string[] {
  const cores = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '–');
  return c.levels.map(
    (l) =>
      `| ${server} | ${l.conversations} | ${l.turnsPerConversation} | ${l.turns} | ${l.summary.perSecond.toFixed(1)} | ` +
      `${f(l.summary.p50)} | ${f(l.summary.p95)} | ${f(l.summary.p99)} | ${f(l.summary.max)} | ${l.errors} | ` +
      `${cores(l.cores.bench)} | ${(l.mainThreadBusy * 100).toFixed(0)} % | ${cores(l.cores.temporal)} | ${cores(l.cores.postgres)} |`,
  );
}

function sustainsLine(server: string, c: ConcurrencyResult): string {
  const best = c.levels.reduce((m, l) => (l.summary.perSecond > m.summary.perSecond ? l : m), c.levels[0]!);
  return (
    `- Sustains (${server}): **${c.sustains}** concurrent text conversations with p95 < ${TEXT_TURN_PLAN.sustainP95Ms} ms ` +
    `and no errors` +
    (c.stoppedBecause ? `; the climb stopped: ${c.stoppedBecause}` : ' (the highest level tried)') +
    `. Peak ${best.summary.perSecond.toFixed(1)} turns/s at ${best.conversations} in flight.`
  );
}

export function textTurnsSection(r: TextTurnsResults, machineLine: string, date: string): string {
  const { deterministic: d, llm, http, concurrency: c, anatomy: a, tuned: t } = r;
  const plan = TEXT_TURN_PLAN;
  const turnTable = [
    '| scenario | n | p50 ms | p95 ms | p99 ms | max ms | per s |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row('deterministic turn (demo booking agent), Temporal client, 1 at a time', d.all),
    row('… replies from one node (one `speak`)', d.oneNode),
    row('… replies from two nodes ("no": `try_again` + `ask_when`, two `speak`s)', d.twoNodes),
    row('LLM turn (instant peer), Temporal client, 1 at a time', llm.total),
    row('… the provider’s share (`speak`’s `llmTotalMs`)', llm.provider),
    row('… overhead (turn − provider, per turn)', llm.overhead),
    row('LLM turn, `POST /v1/conversations/:id/messages` with `turnId`, 1 at a time', http.withTurnId),
    row('… without `turnId` (the api first queries `lastTurnId`)', http.withoutTurnId),
    row('tuned server: deterministic turn, 1 at a time', t.deterministic.all),
    row('… replies from one node', t.deterministic.oneNode),
    row('… replies from two nodes', t.deterministic.twoNodes),
    row('tuned server: LLM turn, 1 at a time', t.llm.total),
    row('… overhead (turn − provider, per turn)', t.llm.overhead),
    row('tuned server: LLM turn, `POST …/messages` with `turnId`', t.http.withTurnId),
    row('… without `turnId`', t.http.withoutTurnId),
  ].join('\n');

  const concurrencyTable = [
    '| server | conversations in flight | turns each | turns | turns/s | p50 ms | p95 ms | p99 ms | max ms | errors | ' +
      'bench process, cores | its main thread busy | Temporal, cores | PostgreSQL, cores |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...concurrencyRows('default', c),
    ...concurrencyRows('tuned', t.concurrency),
  ].join('\n');

  const ratio = (x: number, y: number) => (x / y).toFixed(2);
  return [
    `## ${date} — text turns: the \`userTurn\` round trip and concurrent conversations`,
    '',
    `- Machine: ${machineLine}`,
    '- Command: `npm run bench` (same run and stack as the section above: embedded PostgreSQL, Temporal dev ' +
      'server, api in-process; ONE in-process worker serving `calls`, `integrations` and `billing`; an ' +
      'OpenAI-compatible peer in the same process answering every completion at once with "Sure."). ' +
      `The text scenarios took ${(r.elapsedMs / 60_000).toFixed(1)} min of the run.`,
    `- Deterministic turns: ${d.conversations} conversations with the demo booking agent, ` +
      `${plan.turnsPerConversation} turns each, kept open (the agent gives up on a slot after three ` +
      'unparseable answers, so the script cycles: two unparseable dates, a date, two unparseable yes/no ' +
      'answers, "no" → "let\'s try another time" + the date prompt again). Conversation starts are not measured; every scenario’s conversations are ended, and their post-call work awaited, before the next scenario starts.',
    `- LLM turns: ${llm.conversations} conversations of ${plan.turnsPerConversation} turns with one \`llm\` node ` +
      '(model `bench`, apiKeyRef `default`); every turn streams one completion from the peer. "per s" of ' +
      'one-at-a-time rows: turns per second of turn time.',
    `- Tuned server: a second dev server, the only difference \`--dynamic-config-value ${TUNED_DYNAMIC_CONFIG.join(' ')}\` ` +
      '(default 20 reads/s per history shard; the dev server has one shard), with its own worker for `calls` ' +
      'and its own api instance in this process (same database); conversations started through that api, ' +
      'turns as above.',
    '',
    turnTable,
    '',
    'Where a turn’s time goes (scheduled/started/completed times of every task after the opening, from the ' +
      'workflow histories):',
    '',
    anatomyTable([
      ['deterministic', a.deterministic],
      ['LLM', a.llm],
      ['tuned: deterministic', t.anatomy.deterministic],
      ['tuned: LLM', t.anatomy.llm],
    ]),
    '',
    'Concurrent LLM conversations on one worker (each conversation sends its turns back to back; fresh ' +
      'conversations per level; "turns/s" over the level’s wall time; CPU from process.cpuUsage() and ' +
      '/proc over the level — the bench process holds the worker, the api, the peer and the client):',
    '',
    concurrencyTable,
    '',
    sustainsLine('default dev server', c),
    sustainsLine('tuned dev server', t.concurrency),
    `- Ratios (p50): LLM / deterministic one-node turn = ${ratio(llm.total.p50, d.oneNode.p50)}×; ` +
      `two-node / one-node turn = ${ratio(d.twoNodes.p50, d.oneNode.p50)}×; ` +
      `HTTP / client LLM turn = ${ratio(http.withTurnId.p50, llm.total.p50)}× ` +
      `(${f(http.withTurnId.p50 - llm.total.p50)} ms), without turnId ${ratio(http.withoutTurnId.p50, llm.total.p50)}×; ` +
      `on the tuned server ${ratio(t.http.withTurnId.p50, t.llm.total.p50)}× ` +
      `(${f(t.http.withTurnId.p50 - t.llm.total.p50)} ms), without turnId ${ratio(t.http.withoutTurnId.p50, t.llm.total.p50)}× ` +
      `(${f(t.http.withoutTurnId.p50 - t.llm.total.p50)} ms); ` +
      `dispatch waits / all task time per deterministic turn = ${ratio(a.deterministic.dispatchPerTurnMs, a.deterministic.perTurnMs)}; ` +
      `default / tuned server: deterministic one-node turn ${ratio(d.oneNode.p50, t.deterministic.oneNode.p50)}×, ` +
      `LLM turn ${ratio(llm.total.p50, t.llm.total.p50)}×.`,
    '',
  ].join('\n');
}
