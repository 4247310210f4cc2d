/**
 * Branch conditions on slots. Numbers compare numerically (also numeric strings: a tool may return
 * "42"), other strings case-insensitively and trimmed, booleans only with booleans. A slot
 * that is not set matches only `neq` and `is_not_set`.
 */
import type { EdgeCondition } from '../../contracts/agent-definition';
import type { SlotValue } from '../../contracts/agent-engine';

export type SlotCondition = Extract<EdgeCondition, { kind: 'slot' }>;
type ConditionValue = SlotCondition['value'];

export function isSlotSet(value: SlotValue | undefined): boolean {
  return value !== undefined && value !== null && !(typeof value === 'string' && value.trim() === '');
}

export function evaluateSlotCondition(
  condition: SlotCondition,
  slots: Readonly<Record<string, SlotValue>>,
): boolean {
  const value = Object.prototype.hasOwnProperty.call(slots, condition.slot)
    ? slots[condition.slot]
    : undefined;
  const set = isSlotSet(value);
  switch (condition.op) {
    case 'is_set':
      return set;
    case 'is_not_set':
      return !set;
    case 'eq':
      return set && condition.value !== undefined && compare(value!, condition.value) === 0;
    case 'neq':
      return !(set && condition.value !== undefined && compare(value!, condition.value) === 0);
    case 'gt':
      return ordered(value, condition.value, (c) => c > 0);
    case 'gte':
      return ordered(value, condition.value, (c) => c >= 0);
    case 'lt':
      return ordered(value, condition.value, (c) => c < 0);
    case 'lte':
      return ordered(value, condition.value, (c) => c <= 0);
    case 'contains':
      return (
        set &&
        typeof value !== 'boolean' &&
        condition.value !== undefined &&
        typeof condition.value !== 'boolean' &&
        String(value).toLowerCase().includes(String(condition.value).toLowerCase().trim())
      );
  }
}

function ordered(
  value: SlotValue | undefined,
  expected: ConditionValue,
  test: (comparison: number) => boolean,
): boolean {
  if (!isSlotSet(value) || expected === undefined) return false;
  if (typeof value === 'boolean' || typeof expected === 'boolean') return false;
  const comparison = compare(value!, expected);
  return comparison !== undefined && test(comparison);
}

/** -1, 0 or 1; undefined when the two cannot be compared (a boolean against anything else). */
function compare(
  value: Exclude<SlotValue, null>,
  expected: Exclude<ConditionValue, undefined>,
): number | undefined {
  if (typeof value === 'boolean' || typeof expected === 'boolean') {
    if (typeof value !== 'boolean' || typeof expected !== 'boolean') return undefined;
    return value === expected ? 0 : value ? 1 : -1;
  }
  const left = asNumber(value);
  const right = asNumber(expected);
  // Both numeric (also "10" against "9", as slots from tools often are): compare as numbers.
  if (left !== undefined && right !== undefined) return Math.sign(left - right);
  const a = String(value).trim().toLowerCase();
  const b = String(expected).trim().toLowerCase();
  return a === b ? 0 : a < b ? -1 : 1;
}

function asNumber(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  const trimmed = value.trim();
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)$/.test(trimmed)) return undefined;
  return Number(trimmed);
}
