/**
 * The agent editor's form tabs: Settings (persona, greeting, language, voice, LLM, speech, turn
 * taking, call limits, global intents), Tools, Knowledge and Analysis, plus the small pieces the
 * editor and the version history share (the agent views, issue look-ups, JSON Schema fields).
 * Every control has a label; a user who cannot edit sees the same forms disabled, without buttons.
 */
import { useId, useRef, useState, type ReactNode } from 'react';
import type { AgentDefinitionInput } from '../../../contracts/agent-definition';
import type { DefinitionIssue } from '../../../contracts/agent-graph';
import { Empty, Field } from '../ui';

// ---------------------------------------------------------------------------------------------
// Shared types and helpers

interface Describable {
  'aria-describedby'?: string;
  'aria-invalid'?: boolean;
}

/**
 * A labelled control like `Field`, but the hint and the error sit outside the label (linked with
 * aria-describedby), so the control's accessible name is exactly `label` ("Model", not "Model e.g. …").
 */
/** The dashboard's labelled field (kept under this name for the agent pages). */
export const Labeled = Field;

export type Definition = AgentDefinitionInput;
export type UpdateDefinition = (update: (definition: Definition) => Definition) => void;

/** GET /v1/agents/:id (also PUT, POST, rollback). */
export interface AgentView {
  id: string;
  name: string;
  description: string | null;
  publishedVersion: number | null;
  publishedVersionId: string | null;
  latestVersion: number | null;
  createdAt: string;
  updatedAt: string;
  definition: Definition;
}

/** GET /v1/agents/:id/versions items. */
export interface VersionSummary {
  id: string;
  version: number;
  createdAt: string;
  publishedBy: string | null;
  current: boolean;
}

/** The issue messages at exactly `path` (e.g. `llm.model`), joined; undefined when none. */
export function issueAt(issues: readonly DefinitionIssue[], path: string): string | undefined {
  const found = issues.filter((i) => i.path === path).map((i) => i.message);
  return found.length ? found.join(' ') : undefined;
}

/** Issues at `path` or anywhere below it (`tools[0]` covers `tools[0].url`). */
export function issuesUnder(issues: readonly DefinitionIssue[], path: string): DefinitionIssue[] {
  return issues.filter(
    (i) => i.path === path || i.path.startsWith(`${path}.`) || i.path.startsWith(`${path}[`),
  );
}

/** Parses a JSON Schema textarea: empty is allowed (no schema); otherwise a JSON object of type "object". */
export function parseSchemaText(
  text: string,
): { ok: true; value: Record<string, unknown> | undefined } | { ok: false; error: string } {
  if (!text.trim()) return { ok: true, value: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `Not valid JSON: ${(err as Error).message}` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return {
      ok: false,
      error: 'The schema must be a JSON object, like {"type": "object", "properties": {}}',
    };
  }
  const schema = parsed as Record<string, unknown>;
  if (schema.type !== 'object') {
    return { ok: false, error: 'The schema\'s top-level "type" must be "object"' };
  }
  if (
    schema.properties !== undefined &&
    (typeof schema.properties !== 'object' || schema.properties === null || Array.isArray(schema.properties))
  ) {
    return { ok: false, error: '"properties" must be an object mapping each field name to its schema' };
  }
  return { ok: true, value: schema };
}

/** A random signing secret (48 hex characters). */
export function generateSecret(): string {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A number input that lets the user type freely ("0.", "") and reports a number or undefined. */
export function NumberInput({
  value,
  onChange,
  min,
  max,
  step,
  disabled,
  ...aria
}: {
  value: number | undefined;
  onChange: (value: number | undefined) => void;
  min?: number;
  max?: number;
  step?: number | 'any';
  disabled?: boolean;
} & Describable) {
  const [text, setText] = useState(value === undefined ? '' : String(value));
  const parsed = text.trim() === '' ? undefined : Number(text);
  const shown =
    parsed === value || (Number.isNaN(parsed) && value === undefined)
      ? text
      : value === undefined
        ? ''
        : String(value);
  return (
    <input
      {...aria}
      type="number"
      inputMode="decimal"
      value={shown}
      min={min}
      max={max}
      step={step}
      disabled={disabled}
      onChange={(e) => {
        const next = e.target.value;
        setText(next);
        if (next.trim() === '') onChange(undefined);
        else if (Number.isFinite(Number(next))) onChange(Number(next));
      }}
    />
  );
}

/** A textarea of one entry per line, reported as a trimmed list without blank lines. */
function LinesTextarea({
  value,
  onChange,
  rows = 3,
  ...aria
}: {
  value: readonly string[];
  onChange: (value: string[]) => void;
  rows?: number;
} & Describable) {
  const [text, setText] = useState(value.join('\n'));
  const lines = (t: string) =>
    t
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  const same = lines(text).join('\n') === value.join('\n');
  return (
    <textarea
      {...aria}
      rows={rows}
      value={same ? text : value.join('\n')}
      onChange={(e) => {
        setText(e.target.value);
        onChange(lines(e.target.value));
      }}
    />
  );
}

/**
 * A JSON Schema textarea. Its text lives in the editor (`raw`), so an invalid schema survives a tab
 * switch and blocks saving; a valid one updates the definition as the user types.
 */
export function SchemaField({
  label,
  value,
  raw,
  onRaw,
  onValue,
  issue,
  hint,
  disabled,
  placeholder,
}: {
  label: string;
  value: Record<string, unknown> | undefined;
  raw: string | undefined;
  onRaw: (text: string | undefined) => void;
  onValue: (value: Record<string, unknown> | undefined) => void;
  issue?: string;
  hint?: ReactNode;
  disabled?: boolean;
  placeholder?: string;
}) {
  const text = raw ?? (value === undefined ? '' : JSON.stringify(value, null, 2));
  const parsed = raw === undefined ? undefined : parseSchemaText(raw);
  const error = parsed && !parsed.ok ? parsed.error : issue;
  return (
    <Labeled label={label} hint={hint} error={error} wide>
      <textarea
        className="code-input"
        rows={8}
        spellCheck={false}
        value={text}
        disabled={disabled}
        placeholder={placeholder}
        onChange={(e) => {
          onRaw(e.target.value);
          const result = parseSchemaText(e.target.value);
          if (result.ok) onValue(result.value);
        }}
      />
    </Labeled>
  );
}

function Section({
  title,
  children,
  description,
}: {
  title: string;
  description?: ReactNode;
  children: ReactNode;
}) {
  const id = useId();
  return (
    <section className="panel agent-section" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {description && <p className="muted section-description">{description}</p>}
      {children}
    </section>
  );
}

function Checkbox({
  label,
  checked,
  onChange,
  hint,
}: {
  label: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
  hint?: string;
}) {
  const id = useId();
  return (
    <div className="checkbox-field">
      <label className="checkbox">
        <input
          type="checkbox"
          checked={checked}
          aria-describedby={hint ? id : undefined}
          onChange={(e) => onChange(e.target.checked)}
        />
        {label}
      </label>
      {hint && (
        <span id={id} className="hint muted">
          {hint}
        </span>
      )}
    </div>
  );
}

const PROVIDERS = [
  { value: 'local', label: 'Local (built in)' },
  { value: 'openai', label: 'OpenAI' },
] as const;

const LANGUAGES = [
  'en-US',
  'en-GB',
  'en-AU',
  'es-ES',
  'es-MX',
  'fr-FR',
  'de-DE',
  'it-IT',
  'pt-BR',
  'nl-NL',
  'ja-JP',
];

type Provider = 'local' | 'openai';

interface SectionProps {
  definition: Definition;
  onChange: UpdateDefinition;
  readOnly: boolean;
  issues: readonly DefinitionIssue[];
}

// ---------------------------------------------------------------------------------------------
// Settings

/** Provider and model of one speech engine (speech-to-text or text-to-speech). */
function SpeechEngineRow({
  engine,
  label,
  definition,
  onChange,
  at,
}: {
  engine: 'stt' | 'tts';
  label: string;
  definition: Definition;
  onChange: UpdateDefinition;
  at: (path: string) => string | undefined;
}) {
  const current = definition[engine];
  const set = (patch: { provider?: Provider; model?: string }) =>
    onChange((cur) => ({ ...cur, [engine]: { ...cur[engine], ...patch } }));
  return (
    <div className="form-row">
      <Labeled label={`${label} provider`} error={at(`${engine}.provider`)}>
        <select
          value={current?.provider ?? 'local'}
          onChange={(e) => set({ provider: e.target.value as Provider })}
        >
          {PROVIDERS.map((p) => (
            <option key={p.value} value={p.value}>
              {p.label}
            </option>
          ))}
        </select>
      </Labeled>
      <Labeled
        label={`${label} model`}
        error={at(`${engine}.model`)}
        hint="Optional; empty uses the provider default."
      >
        <input value={current?.model ?? ''} onChange={(e) => set({ model: e.target.value || undefined })} />
      </Labeled>
    </div>
  );
}

const DEFAULT_LLM = {
  provider: 'openai-compatible' as const,
  model: 'gpt-4o-mini',
  temperature: 0.7,
  maxTokens: 512,
  apiKeyRef: 'default',
};

export function AgentSettings({ definition, onChange, readOnly, issues }: SectionProps) {
  const d = definition;
  const at = (path: string) => issueAt(issues, path);
  // Switching the LLM off and on again in one session restores what was typed.
  const lastLlm = useRef(d.llm);
  if (d.llm) lastLlm.current = d.llm;
  const llmNeeded = issues.some((i) => i.code === 'LLM_NOT_CONFIGURED');
  const llm = d.llm;
  const setLlm = (patch: Partial<NonNullable<Definition['llm']>>) =>
    onChange((cur) => ({ ...cur, llm: { ...(cur.llm ?? DEFAULT_LLM), ...patch } }));

  return (
    <fieldset className="plain" disabled={readOnly}>
      <Section
        title="Conversation"
        description="What the agent says first, how it behaves, and in which language."
      >
        <Labeled
          label="System prompt"
          wide
          error={at('persona.systemPrompt')}
          hint="The agent's role, tone and rules. Used by every LLM step (with the knowledge snippets)."
        >
          <textarea
            rows={6}
            value={d.persona?.systemPrompt ?? ''}
            onChange={(e) => onChange((cur) => ({ ...cur, persona: { systemPrompt: e.target.value } }))}
          />
        </Labeled>
        <Labeled label="Greeting" wide error={at('greeting')} hint="Said as soon as the call connects.">
          <textarea
            rows={2}
            value={d.greeting}
            onChange={(e) => onChange((cur) => ({ ...cur, greeting: e.target.value }))}
          />
        </Labeled>
        <div className="form-row">
          <Labeled label="Language" error={at('language')} hint="A language tag like en-US.">
            <input
              list="agent-languages"
              value={d.language ?? ''}
              onChange={(e) => onChange((cur) => ({ ...cur, language: e.target.value || undefined }))}
            />
          </Labeled>
          <datalist id="agent-languages">
            {LANGUAGES.map((l) => (
              <option key={l} value={l} />
            ))}
          </datalist>
        </div>
      </Section>

      <Section
        title="Voice and speech"
        description="Which engines turn speech into text and text into speech."
      >
        <div className="form-row">
          <Labeled label="Voice provider" error={at('voice.provider')}>
            <select
              value={d.voice?.provider ?? 'local'}
              onChange={(e) =>
                onChange((cur) => ({
                  ...cur,
                  voice: { ...cur.voice, provider: e.target.value as Provider },
                }))
              }
            >
              {PROVIDERS.map((p) => (
                <option key={p.value} value={p.value}>
                  {p.label}
                </option>
              ))}
            </select>
          </Labeled>
          <Labeled
            label="Voice"
            error={at('voice.voiceId')}
            hint="The voice id, e.g. en-us (local) or alloy (OpenAI)."
          >
            <input
              value={d.voice?.voiceId ?? ''}
              onChange={(e) =>
                onChange((cur) => ({ ...cur, voice: { ...cur.voice, voiceId: e.target.value || undefined } }))
              }
            />
          </Labeled>
        </div>
        <SpeechEngineRow engine="stt" label="Speech-to-text" definition={d} onChange={onChange} at={at} />
        <SpeechEngineRow engine="tts" label="Text-to-speech" definition={d} onChange={onChange} at={at} />
      </Section>

      <Section
        title="Language model (LLM)"
        description="LLM steps in the flow talk to any OpenAI-compatible endpoint (OpenAI, Azure, Groq, Ollama, vLLM)."
      >
        {llmNeeded && !llm && (
          <p className="field-error" role="alert">
            The flow has LLM steps: tick Enable LLM below and choose a model.
          </p>
        )}
        <Checkbox
          label="Enable LLM"
          checked={Boolean(llm)}
          onChange={(on) =>
            onChange((cur) => {
              if (on) return { ...cur, llm: lastLlm.current ?? DEFAULT_LLM };
              const { llm: _off, ...rest } = cur;
              return rest;
            })
          }
        />
        {llm && (
          <>
            <div className="form-row">
              <Labeled label="Model" error={at('llm.model')} hint="e.g. gpt-4o-mini, llama-3.1-8b-instant.">
                <input value={llm.model} onChange={(e) => setLlm({ model: e.target.value })} />
              </Labeled>
              <Labeled label="Temperature" error={at('llm.temperature')} hint="0 (focused) to 2 (creative).">
                <NumberInput
                  value={llm.temperature}
                  min={0}
                  max={2}
                  step={0.1}
                  onChange={(temperature) => setLlm({ temperature })}
                />
              </Labeled>
              <Labeled label="Max tokens" error={at('llm.maxTokens')} hint="Per reply, 1 to 16000.">
                <NumberInput
                  value={llm.maxTokens}
                  min={1}
                  max={16000}
                  step={1}
                  onChange={(maxTokens) => setLlm({ maxTokens })}
                />
              </Labeled>
            </div>
            <div className="form-row">
              <Labeled
                label="Base URL"
                error={at('llm.baseUrl')}
                hint="Optional; empty uses the server's default endpoint."
              >
                <input
                  type="url"
                  placeholder="https://api.openai.com/v1"
                  value={llm.baseUrl ?? ''}
                  onChange={(e) => setLlm({ baseUrl: e.target.value || undefined })}
                />
              </Labeled>
              <Labeled
                label="API key name"
                error={at('llm.apiKeyRef')}
                hint="The name of a key configured on the server (LLM_API_KEYS), never the key itself."
              >
                <input
                  value={llm.apiKeyRef ?? ''}
                  onChange={(e) => setLlm({ apiKeyRef: e.target.value || undefined })}
                />
              </Labeled>
            </div>
          </>
        )}
        {at('llm') && <p className="field-error">{at('llm')}</p>}
      </Section>

      <Section
        title="Turn taking"
        description="When the caller has finished speaking, and when they may cut in."
      >
        <div className="form-row">
          <Labeled
            label="Silence before end of turn (ms)"
            error={at('endpointing.silenceMs')}
            hint="100 to 5000; shorter feels snappier, longer lets callers pause."
          >
            <NumberInput
              value={d.endpointing?.silenceMs}
              min={100}
              max={5000}
              step={50}
              onChange={(silenceMs) => onChange((cur) => ({ ...cur, endpointing: { silenceMs } }))}
            />
          </Labeled>
          <Labeled
            label="No-input timeout (s)"
            error={at('noInputTimeoutSeconds')}
            hint="Silence after a prompt before the caller counts as not answering (1 to 120)."
          >
            <NumberInput
              value={d.noInputTimeoutSeconds}
              min={1}
              max={120}
              step={1}
              onChange={(noInputTimeoutSeconds) => onChange((cur) => ({ ...cur, noInputTimeoutSeconds }))}
            />
          </Labeled>
        </div>
        <Checkbox
          label="Allow interruptions"
          hint="The caller can talk over the agent to stop it."
          checked={d.interruption?.enabled ?? true}
          onChange={(enabled) =>
            onChange((cur) => ({ ...cur, interruption: { ...cur.interruption, enabled } }))
          }
        />
        <div className="form-row">
          <Labeled
            label="Minimum speech to interrupt (ms)"
            error={at('interruption.minSpeechMs')}
            hint="50 to 3000; how long the caller must speak before the agent stops."
          >
            <NumberInput
              value={d.interruption?.minSpeechMs}
              min={50}
              max={3000}
              step={50}
              disabled={readOnly || d.interruption?.enabled === false}
              onChange={(minSpeechMs) =>
                onChange((cur) => ({ ...cur, interruption: { ...cur.interruption, minSpeechMs } }))
              }
            />
          </Labeled>
        </div>
      </Section>

      <Section title="Calls">
        <Checkbox
          label="Record calls"
          hint="Keep a stereo recording (caller, agent) of each voice call."
          checked={d.recording?.enabled ?? false}
          onChange={(enabled) => onChange((cur) => ({ ...cur, recording: { enabled } }))}
        />
        <div className="form-row">
          <Labeled
            label="Max call duration (s)"
            error={at('maxCallDurationSeconds')}
            hint="10 to 14400; the call ends politely when reached."
          >
            <NumberInput
              value={d.maxCallDurationSeconds}
              min={10}
              max={14400}
              step={1}
              onChange={(maxCallDurationSeconds) => onChange((cur) => ({ ...cur, maxCallDurationSeconds }))}
            />
          </Labeled>
        </div>
      </Section>

      <GlobalIntents definition={definition} onChange={onChange} readOnly={readOnly} issues={issues} />
    </fieldset>
  );
}

function GlobalIntents({ definition, onChange, readOnly, issues }: SectionProps) {
  const intents = definition.globalIntents ?? [];
  const nodeIds = definition.flow.nodes.map((n) => n.id);
  const setIntent = (index: number, patch: Partial<(typeof intents)[number]>) =>
    onChange((cur) => ({
      ...cur,
      globalIntents: (cur.globalIntents ?? []).map((intent, i) =>
        i === index ? { ...intent, ...patch } : intent,
      ),
    }));
  const add = () =>
    onChange((cur) => {
      const list = cur.globalIntents ?? [];
      let n = list.length + 1;
      while (list.some((i) => i.id === `intent_${n}`)) n++;
      return {
        ...cur,
        globalIntents: [...list, { id: `intent_${n}`, phrases: [], target: cur.flow.startNodeId }],
      };
    });
  return (
    <Section
      title="Global intents"
      description="Phrases that jump to a node from anywhere in the call, e.g. “speak to a human” → a transfer node."
    >
      {intents.length === 0 && (
        <p className="muted">
          No global intents.{' '}
          {readOnly
            ? ''
            : 'Add one to let callers jump to a node (a transfer, a goodbye) whenever they say a phrase.'}
        </p>
      )}
      {intents.map((intent, i) => {
        const base = `globalIntents[${i}]`;
        const n = i + 1;
        const targetKnown = nodeIds.includes(intent.target);
        return (
          <fieldset key={i} className="intent">
            <legend>Intent {n}</legend>
            <div className="form-row">
              <Labeled
                label={`Intent ${n} ID`}
                error={issueAt(issues, `${base}.id`)}
                hint="Letters, digits, _ or -."
              >
                <input value={intent.id} onChange={(e) => setIntent(i, { id: e.target.value })} />
              </Labeled>
              <Labeled label={`Intent ${n} target node`} error={issueAt(issues, `${base}.target`)}>
                <select value={intent.target} onChange={(e) => setIntent(i, { target: e.target.value })}>
                  {!targetKnown && (
                    <option value={intent.target}>{intent.target || '—'} (not in the flow)</option>
                  )}
                  {nodeIds.map((id) => (
                    <option key={id} value={id}>
                      {id}
                    </option>
                  ))}
                </select>
              </Labeled>
            </div>
            <Labeled
              label={`Intent ${n} phrases`}
              wide
              error={issueAt(issues, `${base}.phrases`) ?? issuesUnder(issues, `${base}.phrases`)[0]?.message}
              hint="One phrase per line; matched anywhere in what the caller says, ignoring case."
            >
              <LinesTextarea value={intent.phrases} onChange={(phrases) => setIntent(i, { phrases })} />
            </Labeled>
            {!readOnly && (
              <button
                type="button"
                className="btn small danger"
                onClick={() =>
                  onChange((cur) => ({
                    ...cur,
                    globalIntents: (cur.globalIntents ?? []).filter((_, j) => j !== i),
                  }))
                }
              >
                Remove intent {n}
              </button>
            )}
          </fieldset>
        );
      })}
      {!readOnly && (
        <button type="button" className="btn" onClick={add}>
          Add global intent
        </button>
      )}
    </Section>
  );
}

// ---------------------------------------------------------------------------------------------
// Tools

type ToolInput = NonNullable<Definition['tools']>[number];

/** Points the flow's tool and llm nodes that used `from` at `to` (after a tool is renamed). */
function renameToolReferences(definition: Definition, from: string, to: string): Definition {
  let changed = false;
  const nodes = definition.flow.nodes.map((node) => {
    if (node.type === 'tool' && node.tool === from) {
      changed = true;
      return { ...node, tool: to };
    }
    if (node.type === 'llm' && node.tools?.includes(from)) {
      changed = true;
      return { ...node, tools: node.tools.map((t) => (t === from ? to : t)) };
    }
    return node;
  });
  return changed ? { ...definition, flow: { ...definition.flow, nodes } } : definition;
}

export interface JsonDrafts {
  raw: Record<string, string>;
  setRaw: (key: string, text: string | undefined) => void;
  /** Drops every draft whose key starts with `prefix`. */
  clear: (prefix: string) => void;
}

export function ToolsEditor({
  definition,
  onChange,
  readOnly,
  issues,
  json,
  selected,
  onSelect,
}: SectionProps & { json: JsonDrafts; selected: number | null; onSelect: (index: number | null) => void }) {
  const tools = definition.tools ?? [];
  const current = selected !== null ? tools[selected] : undefined;
  const nameAtFocus = useRef<string | null>(null);

  const setTool = (index: number, patch: Partial<ToolInput>) =>
    onChange((cur) => ({
      ...cur,
      tools: (cur.tools ?? []).map((t, i) => (i === index ? { ...t, ...patch } : t)),
    }));

  const add = () => {
    let n = tools.length + 1;
    while (tools.some((t) => t.name === `tool_${n}`)) n++;
    onChange((cur) => ({
      ...cur,
      tools: [
        ...(cur.tools ?? []),
        {
          name: `tool_${n}`,
          description: '',
          url: 'https://',
          method: 'POST',
          timeoutMs: 5000,
          signingSecret: generateSecret(),
          parameters: { type: 'object', properties: {} },
        },
      ],
    }));
    onSelect(tools.length);
  };

  const remove = (index: number) => {
    onChange((cur) => ({ ...cur, tools: (cur.tools ?? []).filter((_, i) => i !== index) }));
    json.clear('tools[');
    onSelect(null);
  };

  return (
    <div className="tools-editor">
      <Section
        title="Tools"
        description="HTTP endpoints the agent can call from tool steps and LLM steps (booking, lookups, CRM updates). Each request body is signed with the tool's secret (HMAC-SHA256, header X-Parley-Signature)."
      >
        {tools.length === 0 ? (
          <Empty>
            No tools yet.{' '}
            {readOnly
              ? 'Designers can add HTTP tools here.'
              : 'Add a tool, then use it from a tool step or an LLM step in the Flow tab.'}
          </Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Method</th>
                <th scope="col">URL</th>
                <th scope="col">Timeout</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tools.map((tool, i) => {
                const problems = issuesUnder(issues, `tools[${i}]`).length;
                return (
                  <tr key={i} className={`${problems ? 'invalid' : ''}${i === selected ? ' selected' : ''}`}>
                    <td>
                      <code id={`tool-name-${i}`}>{tool.name || '(unnamed)'}</code>
                      {problems > 0 && (
                        <span className="badge bad issue-count">
                          {problems} problem{problems === 1 ? '' : 's'}
                        </span>
                      )}
                    </td>
                    <td>{tool.method ?? 'POST'}</td>
                    <td className="break">{tool.url}</td>
                    <td>{tool.timeoutMs ?? 5000} ms</td>
                    <td className="row-actions">
                      <button
                        type="button"
                        className="btn small"
                        aria-pressed={i === selected}
                        aria-describedby={`tool-name-${i}`}
                        onClick={() => onSelect(i === selected ? null : i)}
                      >
                        {readOnly ? 'View' : 'Edit'}
                      </button>
                      {!readOnly && (
                        <button
                          type="button"
                          className="btn small danger"
                          aria-describedby={`tool-name-${i}`}
                          onClick={() => remove(i)}
                        >
                          Remove
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {!readOnly && (
          <p>
            <button type="button" className="btn" onClick={add}>
              Add tool
            </button>
          </p>
        )}
      </Section>

      {current && selected !== null && (
        <section className="panel agent-section" aria-label={`Tool ${current.name}`}>
          <h2>
            Tool <code>{current.name}</code>
          </h2>
          <fieldset className="plain" disabled={readOnly}>
            <div className="form-row">
              <Labeled
                label="Tool name"
                error={issueAt(issues, `tools[${selected}].name`)}
                hint="Letters, digits, _ or -. Flow steps refer to the tool by this name."
              >
                <input
                  value={current.name}
                  onFocus={() => (nameAtFocus.current = current.name)}
                  onBlur={(e) => {
                    const from = nameAtFocus.current;
                    const to = e.target.value;
                    nameAtFocus.current = null;
                    if (from && to && from !== to) onChange((cur) => renameToolReferences(cur, from, to));
                  }}
                  onChange={(e) => setTool(selected, { name: e.target.value })}
                />
              </Labeled>
              <Labeled label="Method" error={issueAt(issues, `tools[${selected}].method`)}>
                <select
                  value={current.method ?? 'POST'}
                  onChange={(e) => setTool(selected, { method: e.target.value as 'POST' | 'PUT' })}
                >
                  <option value="POST">POST</option>
                  <option value="PUT">PUT</option>
                </select>
              </Labeled>
              <Labeled
                label="Timeout (ms)"
                error={issueAt(issues, `tools[${selected}].timeoutMs`)}
                hint="100 to 30000."
              >
                <NumberInput
                  value={current.timeoutMs}
                  min={100}
                  max={30000}
                  step={100}
                  onChange={(timeoutMs) => setTool(selected, { timeoutMs })}
                />
              </Labeled>
            </div>
            <Labeled
              label="Description"
              wide
              error={issueAt(issues, `tools[${selected}].description`)}
              hint="Tells the model what the tool does and when to use it."
            >
              <textarea
                rows={2}
                value={current.description}
                onChange={(e) => setTool(selected, { description: e.target.value })}
              />
            </Labeled>
            <Labeled
              label="URL"
              wide
              error={issueAt(issues, `tools[${selected}].url`)}
              hint="An http(s) URL."
            >
              <input
                type="url"
                value={current.url}
                onChange={(e) => setTool(selected, { url: e.target.value })}
              />
            </Labeled>
            <div className="form-row secret-row">
              <Labeled
                label="Signing secret"
                error={issueAt(issues, `tools[${selected}].signingSecret`)}
                hint="At least 16 characters. A saved secret is shown masked (••••1234) and kept as is; type or generate a new one to replace it."
              >
                <input
                  value={current.signingSecret}
                  autoComplete="off"
                  spellCheck={false}
                  onChange={(e) => setTool(selected, { signingSecret: e.target.value })}
                />
              </Labeled>
              {!readOnly && (
                <button
                  type="button"
                  className="btn small"
                  onClick={() => setTool(selected, { signingSecret: generateSecret() })}
                >
                  Generate secret
                </button>
              )}
            </div>
            <SchemaField
              label="Parameters (JSON Schema)"
              value={current.parameters}
              raw={json.raw[`tools[${selected}].parameters`]}
              onRaw={(text) => json.setRaw(`tools[${selected}].parameters`, text)}
              onValue={(parameters) =>
                setTool(selected, { parameters: parameters as ToolInput['parameters'] })
              }
              issue={issuesUnder(issues, `tools[${selected}].parameters`)[0]?.message}
              disabled={readOnly}
              placeholder={
                '{\n  "type": "object",\n  "properties": {\n    "date": { "type": "string" }\n  },\n  "required": ["date"]\n}'
              }
              hint="The arguments the tool takes, as a JSON Schema object. Empty means no arguments."
            />
          </fieldset>
          <button type="button" className="btn" onClick={() => onSelect(null)}>
            Close tool
          </button>
        </section>
      )}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Knowledge

export function KnowledgeEditor({ definition, onChange, readOnly, issues }: SectionProps) {
  const snippets = definition.knowledge ?? [];
  const setSnippet = (index: number, patch: Partial<{ title: string; content: string }>) =>
    onChange((cur) => ({
      ...cur,
      knowledge: (cur.knowledge ?? []).map((s, i) => (i === index ? { ...s, ...patch } : s)),
    }));
  return (
    <Section
      title="Knowledge"
      description="Facts the agent can draw on in LLM steps: opening hours, prices, policies, FAQs. Every snippet is given to the model with the system prompt."
    >
      {snippets.length === 0 && (
        <Empty>
          No knowledge snippets yet.{' '}
          {readOnly
            ? 'Designers can add them here.'
            : 'Add one with a short title and the facts the agent should know.'}
        </Empty>
      )}
      <fieldset className="plain" disabled={readOnly}>
        {snippets.map((snippet, i) => {
          const n = i + 1;
          return (
            <fieldset key={i} className="snippet">
              <legend>Snippet {n}</legend>
              <Labeled label={`Snippet ${n} title`} wide error={issueAt(issues, `knowledge[${i}].title`)}>
                <input value={snippet.title} onChange={(e) => setSnippet(i, { title: e.target.value })} />
              </Labeled>
              <Labeled label={`Snippet ${n} content`} wide error={issueAt(issues, `knowledge[${i}].content`)}>
                <textarea
                  rows={5}
                  value={snippet.content}
                  onChange={(e) => setSnippet(i, { content: e.target.value })}
                />
              </Labeled>
              {!readOnly && (
                <button
                  type="button"
                  className="btn small danger"
                  onClick={() =>
                    onChange((cur) => ({
                      ...cur,
                      knowledge: (cur.knowledge ?? []).filter((_, j) => j !== i),
                    }))
                  }
                >
                  Remove snippet {n}
                </button>
              )}
            </fieldset>
          );
        })}
      </fieldset>
      {!readOnly && (
        <button
          type="button"
          className="btn"
          onClick={() =>
            onChange((cur) => ({ ...cur, knowledge: [...(cur.knowledge ?? []), { title: '', content: '' }] }))
          }
        >
          Add snippet
        </button>
      )}
    </Section>
  );
}

// ---------------------------------------------------------------------------------------------
// Analysis

export function AnalysisEditor({
  definition,
  onChange,
  readOnly,
  issues,
  json,
}: SectionProps & { json: JsonDrafts }) {
  const analysis = definition.analysis ?? {};
  return (
    <Section
      title="Analysis"
      description="After each call the transcript is evaluated against the success criteria and the structured data is extracted."
    >
      <fieldset className="plain" disabled={readOnly}>
        <Labeled
          label="Success criteria"
          wide
          error={issueAt(issues, 'analysis.successCriteria')}
          hint="What a successful call looks like, e.g. “The caller booked an appointment or was told when to call back.”"
        >
          <textarea
            rows={4}
            value={analysis.successCriteria ?? ''}
            onChange={(e) =>
              onChange((cur) => ({
                ...cur,
                analysis: { ...cur.analysis, successCriteria: e.target.value || undefined },
              }))
            }
          />
        </Labeled>
        <SchemaField
          label="Structured data schema (JSON Schema)"
          value={analysis.structuredDataSchema}
          raw={json.raw['analysis.structuredDataSchema']}
          onRaw={(text) => json.setRaw('analysis.structuredDataSchema', text)}
          onValue={(schema) =>
            onChange((cur) => ({
              ...cur,
              analysis: {
                ...cur.analysis,
                structuredDataSchema: schema as NonNullable<Definition['analysis']>['structuredDataSchema'],
              },
            }))
          }
          issue={issuesUnder(issues, 'analysis.structuredDataSchema')[0]?.message}
          disabled={readOnly}
          placeholder={
            '{\n  "type": "object",\n  "properties": {\n    "appointmentDate": { "type": "string" },\n    "interested": { "type": "boolean" }\n  }\n}'
          }
          hint="The fields to extract from each transcript, as a JSON Schema object. Empty: nothing is extracted."
        />
      </fieldset>
    </Section>
  );
}
