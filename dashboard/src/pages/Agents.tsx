/**
 * The agents list (/agents): every agent with its live version, language and last change. Designers,
 * admins and owners create agents (a valid starter draft: a greeting and a goodbye) and delete them.
 */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import type { AgentDefinitionInput } from '../../../contracts/agent-definition';
import { ApiError, api } from '../api';
import { Labeled, type AgentView } from '../components/AgentSettings';
import { useSession } from '../session';
import { Empty, ErrorBanner, Loading, Notice, PageHeader, formatDate, useApi } from '../ui';

interface AgentSummary {
  id: string;
  name: string;
  description: string | null;
  publishedVersion: number | null;
  language: string;
  createdAt: string;
  updatedAt: string;
}

/** The draft a new agent starts from: it validates and publishes as is (greet, then say goodbye). */
export function starterDefinition(): AgentDefinitionInput {
  return {
    greeting: 'Hello! Thanks for calling. How can I help you today?',
    language: 'en-US',
    flow: {
      startNodeId: 'end',
      nodes: [
        {
          id: 'end',
          type: 'end',
          disposition: 'completed',
          message: 'Thanks for calling. Goodbye!',
          position: { x: 0, y: 0 },
        },
      ],
      edges: [],
    },
  };
}

function NewAgentForm({ onCancel }: { onCancel: () => void }) {
  const navigate = useNavigate();
  const [name, setName] = useState('');
  const [nameError, setNameError] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [pending, setPending] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    setNameError(undefined);
    if (!name.trim()) {
      setNameError('Enter a name for the agent.');
      input.current?.focus();
      return;
    }
    setPending(true);
    try {
      const agent = await api.post<AgentView>('/v1/agents', {
        name: name.trim(),
        definition: starterDefinition(),
      });
      void navigate(`/agents/${agent.id}`);
    } catch (err) {
      if (err instanceof ApiError) setNameError(err.fieldErrors()['body.name']);
      setError(err);
      setPending(false);
    }
  };

  return (
    <form
      className="panel new-agent"
      aria-labelledby="new-agent-heading"
      onSubmit={(e) => void submit(e)}
      noValidate
    >
      <h2 id="new-agent-heading">Create an agent</h2>
      <p className="muted">
        It starts with a greeting and a goodbye, ready to publish; design the conversation in its Flow tab.
      </p>
      <ErrorBanner error={error} title="The agent was not created" />
      <Labeled label="Agent name" error={nameError} hint="e.g. Appointment reminders, Front desk.">
        <input ref={input} value={name} maxLength={200} onChange={(e) => setName(e.target.value)} />
      </Labeled>
      <div className="actions">
        <button type="submit" className="btn primary" disabled={pending}>
          {pending ? 'Creating…' : 'Create agent'}
        </button>
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function AgentsPage() {
  const session = useSession();
  const canEdit = session.can('agents.edit');
  const list = useApi<{ data: AgentSummary[] }>('/v1/agents');
  const agents = list.data?.data;
  const [creating, setCreating] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(undefined);
  const [deleted, setDeleted] = useState<string | null>(null);

  const remove = async (agent: AgentSummary) => {
    setDeleting(true);
    setDeleteError(undefined);
    try {
      await api.delete(`/v1/agents/${agent.id}`);
      setConfirmDelete(null);
      setDeleted(agent.name);
      if (list.data) list.setData({ data: list.data.data.filter((a) => a.id !== agent.id) });
    } catch (err) {
      setDeleteError(err);
    } finally {
      setDeleting(false);
    }
  };

  return (
    <section>
      <PageHeader
        title="Agents"
        subtitle="Phone agents: what they say, the conversation flow, tools and knowledge. Calls and campaigns use an agent's published version."
        actions={
          canEdit && (
            <button
              type="button"
              className="btn primary"
              aria-expanded={creating}
              onClick={() => setCreating((c) => !c)}
            >
              New agent
            </button>
          )
        }
      />
      {creating && canEdit && <NewAgentForm onCancel={() => setCreating(false)} />}
      {deleted && (
        <Notice tone="success">Deleted “{deleted}”. Its calls and versions stay in the history.</Notice>
      )}
      <ErrorBanner error={deleteError} title="The agent was not deleted" />
      {list.error ? (
        <>
          <ErrorBanner error={list.error} title="Could not load the agents" />
          <button type="button" className="btn" onClick={list.reload}>
            Try again
          </button>
        </>
      ) : !agents ? (
        <Loading label="Loading agents…" />
      ) : agents.length === 0 ? (
        <Empty>
          <strong>No agents yet.</strong>{' '}
          {canEdit
            ? 'Choose New agent above and give it a name: it starts with a greeting and a goodbye, ready to publish, and you design the rest in its Flow tab.'
            : 'Designers, admins and owners create agents; ask one of them to set up the first one.'}
        </Empty>
      ) : (
        <table className="agents-table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Version</th>
              <th scope="col">Language</th>
              <th scope="col">Updated</th>
              {canEdit && (
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {agents.map((agent) => (
              <tr key={agent.id}>
                <td>
                  <Link id={`agent-name-${agent.id}`} to={`/agents/${agent.id}`}>
                    {agent.name}
                  </Link>
                  {agent.description && <div className="muted small">{agent.description}</div>}
                </td>
                <td>
                  {agent.publishedVersion === null ? (
                    <span className="badge warn">Draft only</span>
                  ) : (
                    <span className="badge good">Live v{agent.publishedVersion}</span>
                  )}
                </td>
                <td>{agent.language}</td>
                <td>{formatDate(agent.updatedAt)}</td>
                {canEdit && (
                  <td className="row-actions">
                    {confirmDelete === agent.id ? (
                      <div className="confirm" role="group" aria-describedby={`agent-name-${agent.id}`}>
                        <span>Delete “{agent.name}”? New calls can no longer use it.</span>
                        <button
                          type="button"
                          className="btn small danger"
                          disabled={deleting}
                          onClick={() => void remove(agent)}
                        >
                          {deleting ? 'Deleting…' : 'Delete agent'}
                        </button>
                        <button type="button" className="btn small" onClick={() => setConfirmDelete(null)}>
                          Cancel
                        </button>
                      </div>
                    ) : (
                      <button
                        type="button"
                        className="btn small danger"
                        aria-describedby={`agent-name-${agent.id}`}
                        onClick={() => {
                          setDeleteError(undefined);
                          setConfirmDelete(agent.id);
                        }}
                      >
                        Delete
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
