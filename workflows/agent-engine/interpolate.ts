/**
 * Templates in an agent's texts and tool arguments: `{{slots.name}}`, `{{contact.firstName}}`,
 * `{{call.from}}`. Paths may go deeper (`{{contact.address.city}}`), also into a slot that holds a
 * tool's JSON result (`{{slots.account.balance}}`). Anything that does not resolve renders as ''.
 */
import type { EngineContext, SlotValue } from '../../contracts/agent-engine';

export interface InterpolationVars {
  slots: Readonly<Record<string, SlotValue>>;
  contact: Readonly<Record<string, unknown>>;
  call: Readonly<Partial<EngineContext['call']>>;
  /** Dates and times in spoken text are said in this zone and language (default UTC, en-US). */
  timeZone?: string;
  language?: string;
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A datetime slot holds ISO 8601 (exact, for tools); said aloud it reads like speech:
 * "Monday, March 10 at 3:00 PM". Intl is deterministic for a given zone, so this is replay-safe.
 */
function spoken(value: string, vars: InterpolationVars): string {
  const locale = vars.language ?? 'en-US';
  try {
    if (ISO_DATE_TIME.test(value)) {
      return new Intl.DateTimeFormat(locale, {
        timeZone: vars.timeZone ?? 'UTC',
        weekday: 'long',
        month: 'long',
        day: 'numeric',
        hour: 'numeric',
        minute: '2-digit',
      })
        .format(new Date(value))
        .replace(/, (\d{1,2}:\d{2})/, ' at $1');
    }
    if (ISO_DATE.test(value)) {
      return new Intl.DateTimeFormat(locale, {
        timeZone: 'UTC',
        weekday: 'long',
        month: 'long',
        day: 'numeric',
      }).format(new Date(`${value}T12:00:00Z`));
    }
  } catch {
    // An unknown zone or locale: say the value as stored.
  }
  return value;
}

const TEMPLATE = /\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}/g;
const WHOLE_TEMPLATE = /^\s*\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}\s*$/;

/** Renders every `{{path}}` in the template as text. */
export function interpolate(template: string, vars: InterpolationVars): string {
  return template.replace(TEMPLATE, (_whole, path: string) => {
    const value = resolvePath(path, vars);
    return typeof value === 'string' ? spoken(value, vars) : render(value);
  });
}

/**
 * Tool arguments: every string inside (objects and arrays too) is interpolated. A string that is
 * exactly one template ("{{slots.guests}}") takes the value itself, keeping its type (a number stays
 * a number; a missing value becomes null).
 */
export function interpolateArgs(value: unknown, vars: InterpolationVars): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_TEMPLATE.exec(value);
    if (whole) return resolvePath(whole[1]!, vars) ?? null;
    return interpolate(value, vars);
  }
  if (Array.isArray(value)) return value.map((item) => interpolateArgs(item, vars));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = interpolateArgs(item, vars);
    return out;
  }
  return value;
}

/** The value at a dotted path rooted at `slots`, `contact` or `call`; undefined when absent. */
export function resolvePath(path: string, vars: InterpolationVars): unknown {
  const [root, ...rest] = path.split('.');
  let current: unknown =
    root === 'slots'
      ? vars.slots
      : root === 'contact'
        ? vars.contact
        : root === 'call'
          ? vars.call
          : undefined;
  for (const segment of rest) {
    if (typeof current === 'string') current = parseJsonContainer(current);
    if (Array.isArray(current) && /^\d+$/.test(segment)) current = current[Number(segment)];
    else if (isRecord(current) && Object.prototype.hasOwnProperty.call(current, segment))
      current = current[segment];
    else return undefined;
  }
  return current;
}

function render(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

/** A slot holding a tool's JSON result, so templates can reach inside it. */
function parseJsonContainer(text: string): unknown {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return undefined;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
