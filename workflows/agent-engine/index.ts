/**
 * The agent engine: a pure, deterministic interpreter of an agent's flow graph, run inside the call
 * workflow. See engine.ts for the event/effect loop and contracts/agent-engine.ts for the contract.
 */
export { advanceEngine, listeningHints, matchGlobalIntent, startEngine } from './engine';
export { MAX_TRANSITIONS_PER_ADVANCE } from './flow-run';
export { interpolate, interpolateArgs, type InterpolationVars } from './interpolate';
export { evaluateSlotCondition } from './conditions';
export { parseDtmf, parseSlot, type SlotParseOptions, type SlotParseResult } from './slots';
