/**
 * The agent editor's test panel: chat with the draft or a published version by text (the streamed
 * reply endpoint, text appearing as it is generated), or call it with the microphone through the relay
 * (voice-call.ts holds the audio and WebSocket code). Every test is a real call, listed under Calls.
 */
import { useCallback, useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { Link } from 'react-router-dom';
import { ApiError, api, streamEvents } from '../api';
import { BarChart, type Series } from '../charts';
import { useSession } from '../session';
import { Badge, Empty, ErrorBanner, Field, formatMs, shortId } from '../ui';
import {
  VoiceCall,
  type TestCallTicket,
  type VoiceCallState,
  type VoiceTranscript,
  type VoiceTurn,
} from '../voice-call';

export interface TestPanelProps {
  agentId: string;
  /** Published version numbers of the agent. */
  versions: number[];
  /** Whether the draft is saved (only a saved draft can be tested). */
  draftSaved: boolean;
}

type Target = 'draft' | number;

interface AgentReply {
  text: string;
  nodeId: string;
  slots: Record<string, unknown>;
  ended: boolean;
  status: string;
  disposition?: string;
  turnId?: number;
}

interface OpenedConversation {
  callId: string;
  version: number | null;
  reply: AgentReply;
}

interface EndedConversation {
  status: string;
  disposition?: string;
}

interface ChatEntry {
  key: string;
  role: 'agent' | 'user';
  text: string;
  nodeId?: string;
  slots?: Record<string, unknown>;
  streaming?: boolean;
}

interface Chat {
  callId: string;
  label: string;
  entries: ChatEntry[];
  /** The next message's turn id (sent explicitly, so a retry of the same turn is answered once). */
  nextTurnId: number | undefined;
  ended?: EndedConversation;
}

function labelOf(version: number | null | undefined): string {
  return version ? `Version ${version}` : 'Draft';
}

function slotText(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** The status an SSE `error` event's code stands for (the same codes as the plain endpoint). */
function statusOfCode(code: string): number {
  if (code === 'TURN_STALE' || code === 'CONVERSATION_ENDED') return 409;
  if (code === 'TURN_REJECTED') return 422;
  if (code.endsWith('NOT_FOUND')) return 404;
  return 500;
}

function agentEntry(key: string, reply: AgentReply): ChatEntry {
  return { key, role: 'agent', text: reply.text, nodeId: reply.nodeId, slots: reply.slots };
}

export function TestPanel(props: TestPanelProps) {
  const { can } = useSession();
  if (!can('agents.test')) return <></>;
  return <TestPanelBody {...props} />;
}

function TestPanelBody({ agentId, versions, draftSaved }: TestPanelProps) {
  const hintId = useId();
  const sorted = [...new Set(versions)].sort((a, b) => b - a);
  const latest = sorted[0];
  const [choice, setChoice] = useState<string | null>(null);
  const valid = choice === 'draft' || (choice !== null && sorted.includes(Number(choice)));
  const selected = valid && choice !== null ? choice : latest !== undefined ? String(latest) : 'draft';
  const target: Target = selected === 'draft' ? 'draft' : Number(selected);
  const usable = target !== 'draft' || draftSaved;

  return (
    <section aria-label="Test panel" className="test-panel panel">
      <h2>Test</h2>
      <div className="test-target">
        <Field label="Test with">
          <select
            value={selected}
            onChange={(e) => setChoice(e.target.value)}
            aria-describedby={!draftSaved ? hintId : undefined}
          >
            <option value="draft" disabled={!draftSaved}>
              Draft
            </option>
            {sorted.map((v) => (
              <option key={v} value={String(v)}>
                {`Version ${v}`}
              </option>
            ))}
          </select>
        </Field>
        {!draftSaved && (
          <p id={hintId} className="hint">
            Save the draft to test it
            {sorted.length === 0 ? ', or publish a version.' : '.'}
          </p>
        )}
      </div>
      <div className="test-columns">
        <TextChat agentId={agentId} target={target} usable={usable} />
        <VoiceCallPanel agentId={agentId} target={target} usable={usable} />
      </div>
    </section>
  );
}

// --- text chat ----------------------------------------------------------------------------------

function TextChat({ agentId, target, usable }: { agentId: string; target: Target; usable: boolean }) {
  const [chat, setChat] = useState<Chat | null>(null);
  const [message, setMessage] = useState('');
  const [starting, setStarting] = useState(false);
  const [sending, setSending] = useState(false);
  const [ending, setEnding] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const chatRef = useRef<Chat | null>(null);
  const abortRef = useRef<AbortController | null>(null);
  const inputRef = useRef<HTMLTextAreaElement | null>(null);

  useEffect(() => {
    chatRef.current = chat;
  }, [chat]);

  // Leaving the page ends a conversation still running, so it does not wait for a timeout.
  useEffect(
    () => () => {
      abortRef.current?.abort();
      const c = chatRef.current;
      if (c && !c.ended) void api.post(`/v1/conversations/${c.callId}/end`).catch(() => undefined);
    },
    [],
  );

  const callId = chat?.callId;
  useEffect(() => {
    if (callId) inputRef.current?.focus();
  }, [callId]);

  /** Updates the chat only while it is still the one shown (a late answer of an old chat is dropped). */
  const update = useCallback((id: string, fn: (c: Chat) => Chat) => {
    setChat((c) => (c && c.callId === id ? fn(c) : c));
  }, []);

  const startChat = async () => {
    setError(undefined);
    setStarting(true);
    try {
      const res = await api.post<OpenedConversation>('/v1/conversations', { agentId, version: target });
      setMessage('');
      setChat({
        callId: res.callId,
        label: labelOf(res.version),
        entries: [agentEntry('greeting', res.reply)],
        nextTurnId: 1,
        ended: res.reply.ended ? { status: res.reply.status, disposition: res.reply.disposition } : undefined,
      });
    } catch (err) {
      setError(err);
    } finally {
      setStarting(false);
    }
  };

  const newChat = () => {
    abortRef.current?.abort();
    abortRef.current = null;
    setSending(false);
    const c = chatRef.current;
    if (c && !c.ended) void api.post(`/v1/conversations/${c.callId}/end`).catch(() => undefined);
    setChat(null);
    void startChat();
  };

  const endChat = async () => {
    const c = chatRef.current;
    if (!c || c.ended) return;
    setError(undefined);
    setEnding(true);
    try {
      const result = await api.post<EndedConversation>(`/v1/conversations/${c.callId}/end`);
      update(c.callId, (x) => ({ ...x, ended: { status: result.status, disposition: result.disposition } }));
    } catch (err) {
      setError(err);
    } finally {
      setEnding(false);
    }
  };

  const send = async (text: string) => {
    const c = chatRef.current;
    if (!c || c.ended || sending) return;
    const id = c.callId;
    const turnId = c.nextTurnId;
    const n = c.entries.length;
    const userKey = `u${n}`;
    const agentKey = `a${n}`;
    update(id, (x) => ({
      ...x,
      entries: [
        ...x.entries,
        { key: userKey, role: 'user', text },
        { key: agentKey, role: 'agent', text: '', streaming: true },
      ],
    }));
    setMessage('');
    setError(undefined);
    setSending(true);
    const controller = new AbortController();
    abortRef.current = controller;
    const body = turnId === undefined ? { text } : { text, turnId };
    try {
      const got: { reply?: AgentReply } = {};
      try {
        await streamEvents(
          `/v1/conversations/${id}/messages/stream`,
          (m) => {
            if (m.event === 'delta') {
              const delta = (JSON.parse(m.data) as { text?: string }).text ?? '';
              update(id, (x) => ({
                ...x,
                entries: x.entries.map((e) => (e.key === agentKey ? { ...e, text: e.text + delta } : e)),
              }));
            } else if (m.event === 'reply') {
              got.reply = JSON.parse(m.data) as AgentReply;
            } else if (m.event === 'error') {
              const e = JSON.parse(m.data) as { code?: string; message?: string };
              const code = e.code ?? 'INTERNAL_ERROR';
              throw new ApiError(statusOfCode(code), code, e.message ?? 'The turn failed');
            }
          },
          { signal: controller.signal, body },
        );
      } catch (err) {
        if (err instanceof ApiError || (err as Error).name === 'AbortError' || turnId === undefined)
          throw err;
        // The stream broke (proxy, network): the plain endpoint answers the same turn id exactly once.
      }
      const reply =
        got.reply ?? (await api.post<AgentReply>(`/v1/conversations/${id}/messages`, { text, turnId }));
      if (controller.signal.aborted) return;
      update(id, (x) => ({
        ...x,
        nextTurnId: reply.turnId !== undefined ? reply.turnId + 1 : x.nextTurnId && x.nextTurnId + 1,
        entries: x.entries.map((e) => (e.key === agentKey ? agentEntry(agentKey, reply) : e)),
        ended: reply.ended ? { status: reply.status, disposition: reply.disposition } : undefined,
      }));
    } catch (err) {
      if ((err as Error).name === 'AbortError') return;
      const code = err instanceof ApiError ? err.code : undefined;
      update(id, (x) => ({
        ...x,
        // A stale turn id: let the server number the next message.
        nextTurnId: code === 'TURN_STALE' ? undefined : x.nextTurnId,
        entries: x.entries.filter((e) => e.key !== userKey && e.key !== agentKey),
        ended: code === 'CONVERSATION_ENDED' ? (x.ended ?? { status: 'ended' }) : x.ended,
      }));
      if (code !== 'CONVERSATION_ENDED') setMessage((m) => m || text);
      setError(err);
    } finally {
      if (abortRef.current === controller) {
        abortRef.current = null;
        setSending(false);
      }
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const text = message.trim();
    if (text) void send(text);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      e.currentTarget.form?.requestSubmit();
    }
  };

  const ended = chat?.ended;
  return (
    <div className="test-chat">
      <div className="test-head">
        <h3>Text chat</h3>
        <div className="actions">
          {!chat && (
            <button
              type="button"
              className="btn primary"
              onClick={() => void startChat()}
              disabled={starting || !usable}
            >
              {starting ? 'Starting…' : 'Start chat'}
            </button>
          )}
          {chat && !ended && (
            <button type="button" className="btn danger" onClick={() => void endChat()} disabled={ending}>
              {ending ? 'Ending…' : 'End chat'}
            </button>
          )}
          {chat && (
            <button type="button" className="btn" onClick={newChat} disabled={starting || !usable}>
              New chat
            </button>
          )}
        </div>
      </div>
      <ErrorBanner error={error} title="Chat" />
      {!chat && !starting && (
        <Empty>
          Start a chat to talk to the agent by text. Each chat runs the real call flow and is saved under
          Calls.
        </Empty>
      )}
      {chat && (
        <>
          <p className="muted small">
            Chatting with {chat.label} · call {shortId(chat.callId)}
          </p>
          <ol aria-label="Conversation" aria-live="polite" className="transcript test-log">
            {chat.entries.map((e) => (
              <li key={e.key} className={e.role} aria-busy={e.streaming || undefined}>
                <span className="who">{e.role === 'agent' ? 'Agent' : 'You'}</span>
                {e.text ? (
                  <span className="text">{e.text}</span>
                ) : (
                  <span className="muted">{e.streaming ? '…' : '(no words this turn)'}</span>
                )}
                {e.role === 'agent' && !e.streaming && (
                  <div className="meta">
                    <span>node: {e.nodeId}</span>
                    {e.slots && Object.keys(e.slots).length > 0 && (
                      <ul className="slot-chips" aria-label="Slots collected">
                        {Object.entries(e.slots).map(([k, v]) => (
                          <li key={k}>
                            {k} = {slotText(v)}
                          </li>
                        ))}
                      </ul>
                    )}
                  </div>
                )}
              </li>
            ))}
          </ol>
          {ended && (
            <div className="test-ended" role="status">
              <strong>Conversation ended</strong>
              {ended.disposition ? (
                <Badge>{ended.disposition}</Badge>
              ) : (
                <Badge tone="neutral">{ended.status}</Badge>
              )}
              <Link to={`/calls/${chat.callId}`}>Open call details</Link>
            </div>
          )}
          <form className="test-compose" onSubmit={onSubmit}>
            <Field label="Message">
              <textarea
                ref={inputRef}
                rows={2}
                value={message}
                onChange={(e) => setMessage(e.target.value)}
                onKeyDown={onKeyDown}
                disabled={Boolean(ended)}
                placeholder={ended ? '' : 'Type a reply; Enter sends, Shift+Enter adds a line'}
              />
            </Field>
            <button
              type="submit"
              className="btn primary"
              disabled={sending || Boolean(ended) || !message.trim()}
            >
              Send
            </button>
          </form>
        </>
      )}
    </div>
  );
}

// --- voice call ---------------------------------------------------------------------------------

type VoicePhase = 'idle' | VoiceCallState;

interface VoiceLine extends VoiceTranscript {
  key: number;
}

const PHASE_TEXT: Record<VoicePhase, string> = {
  idle: 'Not in a call',
  connecting: 'Connecting…',
  live: 'Live',
  ended: 'Call ended',
};

const STAGES: { key: string; name: string }[] = [
  { key: 'sttMs', name: 'Speech to text' },
  { key: 'updateToSpeakMs', name: 'Workflow' },
  { key: 'llmFirstTokenMs', name: 'LLM first token' },
];

function totalOf(t: Record<string, number>): number | undefined {
  return t.endpointedToFirstFrameMs ?? t.speechEndToFirstFrameMs;
}

function LatencyView({ turns }: { turns: VoiceTurn[] }) {
  const measured = turns.filter(
    (t) => totalOf(t.timings) !== undefined || STAGES.some((s) => t.timings[s.key] !== undefined),
  );
  if (measured.length === 0) return null;
  const turnLabel = (t: VoiceTurn) => (t.turnId === 0 ? 'Greeting' : `Turn ${t.turnId}`);
  // The chart stacks the stages of caller turns (the greeting has no caller speech to measure from).
  const charted = measured.filter((t) => totalOf(t.timings) !== undefined);
  const series: Series[] = STAGES.map((s) => ({
    name: s.name,
    values: charted.map((t) => t.timings[s.key] ?? null),
  }));
  series.push({
    name: 'Speech synthesis and the rest',
    values: charted.map((t) => {
      const staged = STAGES.reduce((sum, s) => sum + (t.timings[s.key] ?? 0), 0);
      return Math.max(0, (totalOf(t.timings) ?? 0) - staged);
    }),
  });
  return (
    <div className="test-latency">
      {charted.length > 0 && (
        <BarChart
          title="Response latency per turn"
          labels={charted.map(turnLabel)}
          series={series}
          format={formatMs}
        />
      )}
      <table>
        <caption className="sr-only">Response latency per turn, by stage</caption>
        <thead>
          <tr>
            <th scope="col">Turn</th>
            <th scope="col">Endpointing</th>
            <th scope="col">STT</th>
            <th scope="col">Workflow</th>
            <th scope="col">LLM first token</th>
            <th scope="col">TTS first audio</th>
            <th scope="col">End of speech → first audio</th>
          </tr>
        </thead>
        <tbody>
          {measured.map((t) => (
            <tr key={t.turnId}>
              <th scope="row">{turnLabel(t)}</th>
              <td>{formatMs(t.timings.endpointingMs)}</td>
              <td>{formatMs(t.timings.sttMs)}</td>
              <td>{formatMs(t.timings.updateToSpeakMs)}</td>
              <td>{formatMs(t.timings.llmFirstTokenMs)}</td>
              <td>{formatMs(t.timings.ttsFirstMs)}</td>
              <td>{formatMs(t.timings.speechEndToFirstFrameMs ?? t.timings.endpointedToFirstFrameMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const KEYPAD = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];

function VoiceCallPanel({ agentId, target, usable }: { agentId: string; target: Target; usable: boolean }) {
  const [phase, setPhase] = useState<VoicePhase>('idle');
  const [lines, setLines] = useState<VoiceLine[]>([]);
  const [turns, setTurns] = useState<VoiceTurn[]>([]);
  const [level, setLevel] = useState(0);
  const [muted, setMuted] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [ticket, setTicket] = useState<TestCallTicket | null>(null);
  const callRef = useRef<VoiceCall | null>(null);
  const lineKey = useRef(0);

  useEffect(
    () => () => {
      const call = callRef.current;
      callRef.current = null;
      call?.hangUp();
    },
    [],
  );

  const startCall = () => {
    callRef.current?.hangUp();
    setLines([]);
    setTurns([]);
    setError(undefined);
    setTicket(null);
    setMuted(false);
    setLevel(0);
    const call: VoiceCall = new VoiceCall({
      onState: (state) => {
        if (callRef.current === call) setPhase(state);
      },
      onTranscript: (entry) => {
        if (callRef.current !== call) return;
        setLines((l) => [...l, { ...entry, key: lineKey.current++ }]);
      },
      onTurn: (turn) => {
        if (callRef.current !== call) return;
        setTurns((t) =>
          [...t.filter((x) => x.turnId !== turn.turnId), turn].sort((a, b) => a.turnId - b.turnId),
        );
      },
      onLevel: (value) => {
        if (callRef.current === call) setLevel(value);
      },
      onError: (message) => {
        if (callRef.current === call) setError(new Error(message));
      },
    });
    callRef.current = call;
    // Called straight from the click, so the browser lets the call play sound.
    call
      .start(async () => {
        const t = await api.post<TestCallTicket>(`/v1/agents/${agentId}/test-calls`, {
          version: target,
          encoding: 'pcm16',
        });
        if (callRef.current === call) setTicket(t);
        return t;
      })
      .catch((err: unknown) => {
        if (callRef.current !== call) return;
        setError(err);
        setPhase('idle');
      });
  };

  const hangUp = () => callRef.current?.hangUp();

  const toggleMute = () => {
    const call = callRef.current;
    if (!call) return;
    call.setMuted(!muted);
    setMuted(!muted);
  };

  const inCall = phase === 'connecting' || phase === 'live';
  return (
    <div className="test-voice">
      <div className="test-head">
        <h3>Voice call</h3>
        <div className="actions">
          {!inCall && (
            <button type="button" className="btn primary" onClick={startCall} disabled={!usable}>
              Start voice call
            </button>
          )}
          {inCall && (
            <>
              <button
                type="button"
                className={`btn${muted ? ' pressed' : ''}`}
                aria-pressed={muted}
                onClick={toggleMute}
                disabled={phase !== 'live'}
              >
                Mute
              </button>
              <button type="button" className="btn danger" onClick={hangUp}>
                Hang up
              </button>
            </>
          )}
        </div>
      </div>
      <div className="test-call-status">
        <p className={`voice-state ${phase}`} role="status" aria-live="polite">
          {PHASE_TEXT[phase]}
        </p>
        {inCall && (
          <meter
            className="mic-level"
            aria-label="Microphone level"
            min={0}
            max={1}
            low={0.15}
            high={0.9}
            optimum={0.5}
            value={muted ? 0 : level}
          />
        )}
        {ticket && (
          <span className="muted small">
            {labelOf(ticket.version)} · call {shortId(ticket.callId)}
          </span>
        )}
      </div>
      <ErrorBanner error={error} title="Voice call" />
      {phase === 'idle' && !error && (
        <Empty>
          Start a voice call to talk to the agent with your microphone; allow microphone access when the
          browser asks. Use headphones so the agent does not hear itself.
        </Empty>
      )}
      {phase !== 'idle' && (
        <ol aria-label="Call transcript" aria-live="polite" className="transcript test-log">
          {lines.length === 0 && phase !== 'ended' && (
            <li className="pending muted">The agent will greet you in a moment…</li>
          )}
          {lines.map((l) => (
            <li key={l.key} className={l.role}>
              <span className="who">{l.role === 'agent' ? 'Agent' : 'You'}</span>
              <span className="text">{l.text}</span>
              {l.interrupted && <span className="interrupted"> interrupted</span>}
            </li>
          ))}
        </ol>
      )}
      {phase === 'live' && (
        <div role="group" aria-label="Keypad" className="keypad">
          {KEYPAD.map((d) => (
            <button
              key={d}
              type="button"
              className="btn small"
              aria-label={`Dial ${d}`}
              onClick={() => callRef.current?.sendDigit(d)}
            >
              {d}
            </button>
          ))}
        </div>
      )}
      <LatencyView turns={turns} />
      {phase === 'ended' && ticket && (
        <p>
          <Link to={`/calls/${ticket.callId}`}>Voice call details</Link>
        </p>
      )}
    </div>
  );
}
