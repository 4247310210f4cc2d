/**
 * Phone numbers: the tenant's numbers and the agent each one rings (GET/POST/PATCH/DELETE
 * /v1/phone-numbers). Owners and admins register numbers, assign or unassign an agent per row and
 * remove numbers; everyone else reads. The empty state (and a help panel) explains how a call
 * reaches Parley: Twilio's voice webhook pointed at `/twilio/voice` on this server.
 */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link } from 'react-router-dom';
import { ApiError, api } from '../api';
import { useSession } from '../session';
import {
  Badge,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  Notice,
  PageHeader,
  errorMessage,
  formatDate,
  useApi,
} from '../ui';

interface PhoneNumber {
  id: string;
  number: string;
  label: string | null;
  provider: string;
  providerSid: string | null;
  agentId: string | null;
  agentName: string | null;
  createdAt: string;
  updatedAt: string;
}

interface AgentSummary {
  id: string;
  name: string;
  description: string | null;
  publishedVersion: number | null;
}

const SID_PATTERN = /^PN[0-9a-fA-F]{32}$/;
const FORM_FIELDS = ['number', 'label', 'providerSid', 'agentId'];

/** Field errors of a register/update failure, keyed by the form's field names. */
function fieldErrorsOf(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const out: Record<string, string> = {};
  for (const [path, message] of Object.entries(error.fieldErrors())) {
    out[path.replace(/^body\./, '')] = message;
  }
  if (error.code === 'PHONE_NUMBER_TAKEN' || error.code === 'PHONE_NUMBER_INVALID')
    out.number ??= error.message;
  if (error.code === 'AGENT_NOT_PUBLISHED' || error.code === 'AGENT_NOT_FOUND') out.agentId ??= error.message;
  return out;
}

/** The webhook URLs Twilio calls, on the server the dashboard is served from. */
function webhookUrls() {
  const origin = window.location.origin;
  return { voice: `${origin}/twilio/voice`, status: `${origin}/twilio/status` };
}

function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="btn small"
      aria-label={label}
      onClick={() => {
        void navigator.clipboard
          ?.writeText(text)
          .then(() => {
            setCopied(true);
            window.setTimeout(() => setCopied(false), 2000);
          })
          .catch(() => undefined);
      }}
    >
      {copied ? 'Copied' : 'Copy'}
    </button>
  );
}

/** How an inbound call reaches an agent: Twilio → Parley's voice webhook → the number's agent. */
function TwilioSetup({ canEdit }: { canEdit: boolean }) {
  const urls = webhookUrls();
  return (
    <ol className="numbers-setup">
      <li>
        Buy or port a number in the Twilio Console (<em>Phone Numbers → Manage</em>).
      </li>
      <li>
        In the number&apos;s <em>Voice configuration</em>, set <strong>A call comes in</strong> to
        <em> Webhook</em>, <em>HTTP POST</em>:
        <span className="webhook-url">
          <code>{urls.voice}</code>
          <CopyButton text={urls.voice} label="Copy voice webhook URL" />
        </span>
        and <strong>Call status changes</strong> to:
        <span className="webhook-url">
          <code>{urls.status}</code>
          <CopyButton text={urls.status} label="Copy status callback URL" />
        </span>
      </li>
      <li>
        {canEdit ? (
          <>
            Register the number here (<strong>Register number</strong>) and choose the agent that answers it.
          </>
        ) : (
          <>Ask an owner or admin of this workspace to register the number here and assign it an agent.</>
        )}{' '}
        The agent must have a published version; calls use the version published when they ring.
      </li>
    </ol>
  );
}

function AgentOptions({ agents, current }: { agents: AgentSummary[] | undefined; current?: PhoneNumber }) {
  const known = current?.agentId ? (agents ?? []).some((a) => a.id === current.agentId) : true;
  return (
    <>
      <option value="">No agent (calls are not answered)</option>
      {!known && current?.agentId && (
        <option value={current.agentId}>
          {current.agentName ?? current.agentId}
          {agents ? ' (archived)' : ''}
        </option>
      )}
      {(agents ?? []).map((a) =>
        a.publishedVersion === null ? (
          <option key={a.id} value={a.id} disabled>
            {a.name} (not published)
          </option>
        ) : (
          <option key={a.id} value={a.id}>
            {a.name}
          </option>
        ),
      )}
    </>
  );
}

function RegisterForm({
  agents,
  region,
  onRegistered,
}: {
  agents: AgentSummary[] | undefined;
  region: string;
  onRegistered: (phone: PhoneNumber) => void;
}) {
  const [number, setNumber] = useState('');
  const [label, setLabel] = useState('');
  const [providerSid, setProviderSid] = useState('');
  const [agentId, setAgentId] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [clientErrors, setClientErrors] = useState<Record<string, string>>({});
  const [pending, setPending] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!number.trim()) problems.number = 'Enter the phone number, e.g. +14155550123.';
    if (providerSid.trim() && !SID_PATTERN.test(providerSid.trim()))
      problems.providerSid = 'A Twilio phone number SID is PN followed by 32 hexadecimal characters.';
    setClientErrors(problems);
    if (Object.keys(problems).length > 0) return;
    setPending(true);
    setError(undefined);
    try {
      const created = await api.post<PhoneNumber>('/v1/phone-numbers', {
        number: number.trim(),
        ...(label.trim() ? { label: label.trim() } : {}),
        ...(providerSid.trim() ? { providerSid: providerSid.trim() } : {}),
        ...(agentId ? { agentId } : {}),
      });
      setNumber('');
      setLabel('');
      setProviderSid('');
      setAgentId('');
      onRegistered(created);
    } catch (err) {
      setError(err);
    } finally {
      setPending(false);
    }
  }

  const apiFields = fieldErrorsOf(error);
  const fields = { ...apiFields, ...clientErrors };
  // Problems with a field are shown next to it; anything else (or more) in a banner.
  const placed = Object.keys(apiFields);
  const shownElsewhere = placed.length > 0 && placed.every((k) => FORM_FIELDS.includes(k));
  return (
    <form
      className="panel"
      onSubmit={(e) => void submit(e)}
      aria-labelledby="register-number-title"
      noValidate
    >
      <h2 id="register-number-title">Register number</h2>
      {error !== undefined && !shownElsewhere && <ErrorBanner error={error} />}
      <div className="row">
        <Field
          label="Phone number"
          hint={`E.164, e.g. +14155550123. Without a +, it is read as a ${region} number.`}
          error={fields.number}
        >
          <input
            type="tel"
            autoComplete="off"
            required
            value={number}
            onChange={(e) => setNumber(e.target.value)}
            aria-invalid={fields.number ? true : undefined}
          />
        </Field>
        <Field label="Label" hint="Optional, e.g. “Support line”." error={fields.label}>
          <input type="text" maxLength={200} value={label} onChange={(e) => setLabel(e.target.value)} />
        </Field>
        <Field
          label="Twilio SID"
          hint="Optional: the number's SID in Twilio (PN…)."
          error={fields.providerSid}
        >
          <input
            type="text"
            autoComplete="off"
            spellCheck={false}
            value={providerSid}
            onChange={(e) => setProviderSid(e.target.value)}
            aria-invalid={fields.providerSid ? true : undefined}
          />
        </Field>
        <Field
          label="Agent"
          hint={
            agents && !agents.some((a) => a.publishedVersion !== null) ? (
              <>
                No published agent yet: <Link to="/agents">publish one</Link> to answer calls.
              </>
            ) : (
              'Optional: who answers calls to this number.'
            )
          }
          error={fields.agentId}
        >
          <select value={agentId} onChange={(e) => setAgentId(e.target.value)}>
            <AgentOptions agents={agents} />
          </select>
        </Field>
      </div>
      <button type="submit" className="btn primary" disabled={pending}>
        {pending ? 'Registering…' : 'Register number'}
      </button>
    </form>
  );
}

/** The per-row agent select: PATCHes on change, says "Saved" (or why not) next to it. */
function AgentAssign({
  phone,
  agents,
  onSaved,
}: {
  phone: PhoneNumber;
  agents: AgentSummary[] | undefined;
  onSaved: (phone: PhoneNumber) => void;
}) {
  const [state, setState] = useState<'idle' | 'saving' | 'saved'>('idle');
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);

  async function assign(agentId: string) {
    setState('saving');
    setError(null);
    try {
      const updated = await api.patch<PhoneNumber>(`/v1/phone-numbers/${phone.id}`, {
        agentId: agentId || null,
      });
      onSaved(updated);
      setState('saved');
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(() => setState('idle'), 3000);
    } catch (err) {
      setState('idle');
      setError(errorMessage(err));
    }
  }

  return (
    <div className="agent-assign">
      <select
        aria-label={`Agent for ${phone.number}`}
        value={phone.agentId ?? ''}
        disabled={state === 'saving'}
        onChange={(e) => void assign(e.target.value)}
        aria-invalid={error ? true : undefined}
      >
        <AgentOptions agents={agents} current={phone} />
      </select>
      <span className="save-state" role="status" aria-live="polite">
        {state === 'saving' ? 'Saving…' : state === 'saved' ? 'Saved' : ''}
      </span>
      {error && (
        <span className="field-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

function AnswersWith({ phone, agents }: { phone: PhoneNumber; agents: AgentSummary[] | undefined }) {
  if (!phone.agentId) return <Badge tone="warn">Not answering</Badge>;
  const agent = agents?.find((a) => a.id === phone.agentId);
  if (!agent) return <span className="muted">—</span>;
  if (agent.publishedVersion === null) return <Badge tone="bad">Agent not published</Badge>;
  return (
    <span title="Each call uses the version published when it rings">
      v{agent.publishedVersion} (published)
    </span>
  );
}

export function PhoneNumbersPage() {
  const session = useSession();
  const canEdit = session.can('numbers.edit');
  const numbers = useApi<{ data: PhoneNumber[] }>('/v1/phone-numbers');
  const agents = useApi<{ data: AgentSummary[] }>('/v1/agents');
  const [notice, setNotice] = useState<string | null>(null);
  const [rowErrors, setRowErrors] = useState<Record<string, string>>({});
  const [removing, setRemoving] = useState<string | null>(null);

  const list = numbers.data?.data ?? [];
  const agentList = agents.data?.data;

  function replace(phone: PhoneNumber) {
    if (!numbers.data) return;
    numbers.setData({ data: numbers.data.data.map((p) => (p.id === phone.id ? phone : p)) });
  }

  async function remove(phone: PhoneNumber) {
    if (!window.confirm(`Remove ${phone.number}? Calls to it will no longer be answered.`)) return;
    setRemoving(phone.id);
    setRowErrors((e) => ({ ...e, [phone.id]: '' }));
    try {
      await api.delete(`/v1/phone-numbers/${phone.id}`);
      if (numbers.data) numbers.setData({ data: numbers.data.data.filter((p) => p.id !== phone.id) });
      setNotice(`${phone.number} was removed.`);
    } catch (err) {
      setRowErrors((e) => ({ ...e, [phone.id]: errorMessage(err) }));
    } finally {
      setRemoving(null);
    }
  }

  return (
    <section aria-labelledby="numbers-title">
      <PageHeader
        title={<span id="numbers-title">Phone numbers</span>}
        subtitle="The numbers callers dial and the agent that answers each one."
      />
      <ErrorBanner error={numbers.error} title="Phone numbers could not be loaded" />
      <ErrorBanner error={agents.error} title="Agents could not be loaded" />
      {notice && <Notice tone="success">{notice}</Notice>}
      {canEdit && (
        <RegisterForm
          agents={agentList}
          region={session.tenant.defaultRegion}
          onRegistered={(phone) => {
            const rest = (numbers.data?.data ?? []).filter((p) => p.id !== phone.id);
            numbers.setData({ data: [...rest, phone].sort((a, b) => a.number.localeCompare(b.number)) });
            setNotice(
              phone.agentId
                ? `${phone.number} is registered and rings ${phone.agentName ?? 'its agent'}.`
                : `${phone.number} is registered. Assign an agent so calls to it are answered.`,
            );
          }}
        />
      )}
      {numbers.loading && !numbers.data ? (
        <Loading label="Loading phone numbers…" />
      ) : numbers.data && list.length === 0 ? (
        <Empty>
          <p>
            <strong>No phone numbers yet.</strong> Inbound calls reach an agent through a number registered
            here:
          </p>
          <TwilioSetup canEdit={canEdit} />
        </Empty>
      ) : list.length > 0 ? (
        <>
          <table>
            <caption className="sr-only">Phone numbers</caption>
            <thead>
              <tr>
                <th scope="col">Number</th>
                <th scope="col">Label</th>
                <th scope="col">Agent</th>
                <th scope="col">Answers with</th>
                <th scope="col">Twilio SID</th>
                <th scope="col">Created</th>
                {canEdit && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.map((phone) => (
                <tr key={phone.id}>
                  <td>
                    <code className="e164">{phone.number}</code>
                  </td>
                  <td>{phone.label ?? <span className="muted">—</span>}</td>
                  <td>
                    {canEdit ? <AgentAssign phone={phone} agents={agentList} onSaved={replace} /> : null}
                    {phone.agentId ? (
                      <Link to={`/agents/${phone.agentId}`}>{phone.agentName ?? 'Open agent'}</Link>
                    ) : (
                      !canEdit && <span className="muted">No agent</span>
                    )}
                  </td>
                  <td>
                    <AnswersWith phone={phone} agents={agentList} />
                  </td>
                  <td>
                    {phone.providerSid ? <code>{phone.providerSid}</code> : <span className="muted">—</span>}
                  </td>
                  <td>{formatDate(phone.createdAt)}</td>
                  {canEdit && (
                    <td>
                      <button
                        type="button"
                        className="btn danger small"
                        disabled={removing === phone.id}
                        onClick={() => void remove(phone)}
                      >
                        {removing === phone.id ? 'Removing…' : 'Remove'}
                      </button>
                      {rowErrors[phone.id] && (
                        <span className="field-error" role="alert">
                          {rowErrors[phone.id]}
                        </span>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          <details className="panel numbers-help">
            <summary>How inbound calls reach an agent</summary>
            <TwilioSetup canEdit={canEdit} />
          </details>
        </>
      ) : null}
    </section>
  );
}
