/**
 * Integrations: the tenant's CRMs (HubSpot, Salesforce). Owners and admins connect one (the API
 * proves the credentials against the CRM before storing them), test it, switch contact creation
 * and disconnect it; everyone sees the calls a CRM refused; owners, admins and campaign managers
 * import a CRM's contacts into a new contact list and watch the import's progress.
 */
import { useEffect, useState, type FormEvent } from 'react';
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
  formatDate,
  shortId,
  useApi,
} from '../ui';

type Provider = 'hubspot' | 'salesforce';

/** The providers the API knows (contracts/crm CRM_PROVIDERS), in card order. */
const PROVIDERS: readonly Provider[] = ['hubspot', 'salesforce'];
const PROVIDER_NAMES: Record<Provider, string> = { hubspot: 'HubSpot', salesforce: 'Salesforce' };
const PROVIDER_BLURBS: Record<Provider, string> = {
  hubspot: 'Each finished call is logged as a HubSpot call on the contact with the caller’s number.',
  salesforce:
    'Each finished call is logged as a completed Task on the Contact with the caller’s number. Task needs an External ID, Unique text field Parley_Call_Id__c.',
};

interface Integration {
  provider: Provider;
  status: 'connected' | 'error' | 'disconnected';
  account: string | null;
  settings: { createContacts?: boolean };
  lastTestedAt: string | null;
  lastError: string | null;
  connectedAt: string;
  updatedAt: string;
}

interface TestResult {
  ok: boolean;
  account: string | null;
  error: string | null;
}

interface SyncFailure {
  callId: string;
  provider: string;
  error: string | null;
  errorCode: string | null;
  direction: string;
  from: string | null;
  to: string | null;
  failedAt: string;
}

interface CrmImport {
  id: string;
  provider: Provider;
  status: 'running' | 'completed' | 'failed';
  contactListId: string;
  pages: number;
  imported: number;
  duplicates: number;
  invalid: number;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

/** A 400/422's field problems keyed by the body field (`body.accessToken` → `accessToken`). */
function fieldErrorsOf(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const out: Record<string, string> = {};
  for (const [path, message] of Object.entries(error.fieldErrors()))
    out[path.replace(/^body\./, '')] = message;
  return out;
}

function statusOf(integration: Integration | undefined): { label: string; tone: string } {
  if (!integration || integration.status === 'disconnected')
    return { label: 'not connected', tone: 'neutral' };
  if (integration.status === 'error') return { label: 'error', tone: 'bad' };
  return { label: 'connected', tone: 'good' };
}

function ConnectForm({
  provider,
  reconnect,
  onConnected,
  onCancel,
}: {
  provider: Provider;
  reconnect: boolean;
  onConnected: (integration: Integration) => void;
  onCancel?: () => void;
}) {
  const [accessToken, setAccessToken] = useState('');
  const [instanceUrl, setInstanceUrl] = useState('');
  const [refreshToken, setRefreshToken] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [pending, setPending] = useState(false);
  const name = PROVIDER_NAMES[provider];

  async function submit(e: FormEvent) {
    e.preventDefault();
    setPending(true);
    setError(undefined);
    try {
      const body =
        provider === 'hubspot'
          ? { accessToken: accessToken.trim() }
          : {
              instanceUrl: instanceUrl.trim(),
              accessToken: accessToken.trim(),
              ...(refreshToken.trim() ? { refreshToken: refreshToken.trim() } : {}),
            };
      const connected = await api.put<Integration>(`/v1/integrations/${provider}`, body);
      setAccessToken('');
      setRefreshToken('');
      onConnected(connected);
    } catch (err) {
      setError(err);
    } finally {
      setPending(false);
    }
  }

  const fields = fieldErrorsOf(error);
  return (
    <form className="connect-form" onSubmit={(e) => void submit(e)} aria-label={`Connect ${name}`}>
      {/* The CRM's own reason (CRM_CREDENTIALS_REJECTED, CRM_CONNECTION_FAILED…), nothing stored. */}
      {error !== undefined && Object.keys(fields).length === 0 && <ErrorBanner error={error} />}
      {provider === 'hubspot' ? (
        <Field
          label="HubSpot private app token"
          hint="HubSpot → Settings → Integrations → Private apps; the app needs access to contacts, calls and lists."
          error={fields.accessToken}
        >
          <input
            type="password"
            autoComplete="off"
            required
            value={accessToken}
            onChange={(e) => setAccessToken(e.target.value)}
          />
        </Field>
      ) : (
        <>
          <Field
            label="Instance URL"
            hint="Your My Domain URL, e.g. https://acme.my.salesforce.com"
            error={fields.instanceUrl}
          >
            <input
              type="url"
              autoComplete="off"
              required
              placeholder="https://acme.my.salesforce.com"
              value={instanceUrl}
              onChange={(e) => setInstanceUrl(e.target.value)}
            />
          </Field>
          <Field
            label="Access token"
            hint="An OAuth access token of a connected app."
            error={fields.accessToken}
          >
            <input
              type="password"
              autoComplete="off"
              required
              value={accessToken}
              onChange={(e) => setAccessToken(e.target.value)}
            />
          </Field>
          <Field
            label="Refresh token"
            hint="Optional but recommended: renews the session when the access token expires."
            error={fields.refreshToken}
          >
            <input
              type="password"
              autoComplete="off"
              value={refreshToken}
              onChange={(e) => setRefreshToken(e.target.value)}
            />
          </Field>
        </>
      )}
      <p className="muted small-print">
        The credentials are tested against {name} before they are stored, kept encrypted, and never shown
        again.
      </p>
      <div className="actions">
        <button type="submit" className="btn primary" disabled={pending}>
          {pending ? 'Connecting…' : `Connect ${name}`}
        </button>
        {reconnect && onCancel && (
          <button type="button" className="btn" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

function IntegrationCard({
  provider,
  integration,
  canEdit,
  onChanged,
  onRemoved,
}: {
  provider: Provider;
  integration: Integration | undefined;
  canEdit: boolean;
  onChanged: (integration: Integration) => void;
  onRemoved: () => void;
}) {
  const name = PROVIDER_NAMES[provider];
  const status = statusOf(integration);
  const connected = integration !== undefined && integration.status !== 'disconnected';
  const [replacing, setReplacing] = useState(false);
  const [testing, setTesting] = useState(false);
  const [test, setTest] = useState<TestResult | null>(null);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  const [disconnecting, setDisconnecting] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const titleId = `integration-${provider}-title`;

  async function runTest() {
    setTesting(true);
    setTest(null);
    setError(undefined);
    try {
      const result = await api.post<TestResult>(`/v1/integrations/${provider}/test`);
      setTest(result);
      if (integration) {
        onChanged({
          ...integration,
          status: result.ok ? 'connected' : 'error',
          account: result.account ?? integration.account,
          lastError: result.error,
          lastTestedAt: new Date().toISOString(),
        });
      }
    } catch (err) {
      setError(err);
    } finally {
      setTesting(false);
    }
  }

  async function setCreateContacts(value: boolean) {
    setSaving(true);
    setSaved(false);
    setError(undefined);
    try {
      onChanged(
        await api.patch<Integration>(`/v1/integrations/${provider}`, { settings: { createContacts: value } }),
      );
      setSaved(true);
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  }

  async function disconnect() {
    if (
      !window.confirm(
        `Disconnect ${name}? Its credentials are erased; calls will no longer be logged in ${name}.`,
      )
    )
      return;
    setDisconnecting(true);
    setError(undefined);
    try {
      await api.delete(`/v1/integrations/${provider}`);
      setTest(null);
      onRemoved();
    } catch (err) {
      setError(err);
    } finally {
      setDisconnecting(false);
    }
  }

  return (
    <section className="panel integration-card" aria-labelledby={titleId}>
      <header className="integration-head">
        <h2 id={titleId}>{name}</h2>
        <Badge tone={status.tone}>{status.label}</Badge>
      </header>
      <p className="muted">{PROVIDER_BLURBS[provider]}</p>
      {connected && integration && (
        <dl className="integration-facts">
          <dt>Account</dt>
          <dd>{integration.account ?? '—'}</dd>
          <dt>Connected</dt>
          <dd>{formatDate(integration.connectedAt)}</dd>
          <dt>Last tested</dt>
          <dd>{formatDate(integration.lastTestedAt)}</dd>
          {integration.lastError && (
            <>
              <dt>Last error</dt>
              <dd className="integration-error">{integration.lastError}</dd>
            </>
          )}
          {!canEdit && (
            <>
              <dt>Create contacts when missing</dt>
              <dd>{integration.settings.createContacts === false ? 'No' : 'Yes'}</dd>
            </>
          )}
        </dl>
      )}
      <ErrorBanner error={error} />
      <div role="status" aria-live="polite">
        {test &&
          (test.ok ? (
            <Notice tone="success">Connection works{test.account ? `: ${test.account}` : ''}.</Notice>
          ) : (
            <div className="banner error">
              <strong>Connection test failed: </strong>
              {test.error ?? 'the CRM refused the stored credentials.'} Replace the credentials to reconnect.
            </div>
          ))}
      </div>
      {canEdit && connected && integration && !replacing && (
        <>
          <div className="checkbox-row">
            <label className="checkbox">
              <input
                type="checkbox"
                checked={integration.settings.createContacts !== false}
                disabled={saving}
                onChange={(e) => void setCreateContacts(e.target.checked)}
              />
              Create contacts when missing
            </label>
            <span className="muted save-state" role="status" aria-live="polite">
              {saving ? 'Saving…' : saved ? 'Saved' : ''}
            </span>
          </div>
          <p className="muted hint-line">
            When no {name} contact has the caller’s number, create one (otherwise the call is not logged).
          </p>
          <div className="actions">
            <button type="button" className="btn" disabled={testing} onClick={() => void runTest()}>
              {testing ? 'Testing…' : 'Test connection'}
            </button>
            <button type="button" className="btn" onClick={() => setReplacing(true)}>
              Replace credentials
            </button>
            <button
              type="button"
              className="btn danger"
              disabled={disconnecting}
              onClick={() => void disconnect()}
            >
              {disconnecting ? 'Disconnecting…' : 'Disconnect'}
            </button>
          </div>
        </>
      )}
      {canEdit && (!connected || replacing) && (
        <ConnectForm
          provider={provider}
          reconnect={replacing}
          onCancel={() => setReplacing(false)}
          onConnected={(i) => {
            setReplacing(false);
            setTest(null);
            onChanged(i);
          }}
        />
      )}
      {!canEdit && !connected && (
        <p className="muted">Not connected. An owner or admin of this workspace can connect {name} here.</p>
      )}
    </section>
  );
}

function SyncFailures() {
  const failures = useApi<{ data: SyncFailure[] }>('/v1/integrations/sync-failures', { limit: 50 });
  return (
    <section aria-labelledby="sync-failures-title">
      <div className="section-head">
        <h2 id="sync-failures-title">Sync failures</h2>
        <button type="button" className="btn small" onClick={failures.reload} disabled={failures.loading}>
          Refresh
        </button>
      </div>
      <ErrorBanner error={failures.error} title="Sync failures could not be loaded" />
      {failures.loading && !failures.data ? (
        <Loading label="Loading sync failures…" />
      ) : failures.data && failures.data.data.length === 0 ? (
        <Empty>
          No failed syncs. When a CRM refuses a call’s record, the call and the CRM’s reason appear here.
        </Empty>
      ) : failures.data ? (
        <table>
          <caption className="sr-only">Calls a CRM refused, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Call</th>
              <th scope="col">Provider</th>
              <th scope="col">Error</th>
              <th scope="col">Code</th>
            </tr>
          </thead>
          <tbody>
            {failures.data.data.map((f) => (
              <tr key={`${f.callId}:${f.provider}`}>
                <td>{formatDate(f.failedAt)}</td>
                <td>
                  <Link to={`/calls/${f.callId}`}>
                    {f.direction === 'inbound'
                      ? 'Inbound'
                      : f.direction === 'outbound'
                        ? 'Outbound'
                        : f.direction}{' '}
                    {f.from || f.to ? `${f.from ?? '?'} → ${f.to ?? '?'}` : shortId(f.callId)}
                  </Link>
                </td>
                <td>{PROVIDER_NAMES[f.provider as Provider] ?? f.provider}</td>
                <td>{f.error ?? '—'}</td>
                <td>{f.errorCode ? <code>{f.errorCode}</code> : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function ImportProgress({ importId }: { importId: string }) {
  const [row, setRow] = useState<CrmImport | null>(null);
  const [error, setError] = useState<unknown>(undefined);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const controller = new AbortController();
    const poll = async () => {
      try {
        const next = await api.get<CrmImport>(
          `/v1/integrations/imports/${importId}`,
          undefined,
          controller.signal,
        );
        if (stopped) return;
        setRow(next);
        setError(undefined);
        if (next.status !== 'running') return;
      } catch (err) {
        if (stopped || (err as Error).name === 'AbortError') return;
        setError(err);
      }
      timer = window.setTimeout(() => void poll(), 2000);
    };
    void poll();
    return () => {
      stopped = true;
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [importId]);

  return (
    <div className="import-progress" role="region" aria-label="Import progress" aria-live="polite">
      <ErrorBanner error={error} title="Progress could not be read (retrying)" />
      {!row ? (
        <Loading label="Starting the import…" />
      ) : (
        <>
          <p>
            {PROVIDER_NAMES[row.provider]} import <Badge>{row.status}</Badge>{' '}
            <span className="muted">
              started {formatDate(row.createdAt)}
              {row.finishedAt ? `, finished ${formatDate(row.finishedAt)}` : ''}
            </span>
          </p>
          {row.status === 'running' && <progress aria-label="Import running" />}
          <div className="stats">
            <div className="stat">
              <div className="value">{row.pages}</div>
              <div className="label">Pages read</div>
            </div>
            <div className="stat">
              <div className="value">{row.imported}</div>
              <div className="label">Imported</div>
            </div>
            <div className="stat">
              <div className="value">{row.duplicates}</div>
              <div className="label">Duplicates</div>
            </div>
            <div className="stat">
              <div className="value">{row.invalid}</div>
              <div className="label">Invalid numbers</div>
            </div>
          </div>
          {row.error && (
            <div className="banner error" role="alert">
              <strong>The import failed: </strong>
              {row.error}
            </div>
          )}
          {row.status === 'completed' && (
            <Notice tone="success">
              {row.imported} contacts are in the new contact list (<code>{shortId(row.contactListId)}</code>).{' '}
              <Link to="/campaigns/new">Start a campaign</Link> to call them.
            </Notice>
          )}
        </>
      )}
    </div>
  );
}

function ImportContacts({ integrations }: { integrations: Integration[] }) {
  const available = integrations.filter((i) => i.status !== 'disconnected').map((i) => i.provider);
  const [provider, setProvider] = useState<Provider | ''>('');
  const [listId, setListId] = useState('');
  const [where, setWhere] = useState('');
  const [contactListName, setContactListName] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [pending, setPending] = useState(false);
  const [importId, setImportId] = useState<string | null>(null);
  const chosen: Provider | undefined = provider && available.includes(provider) ? provider : available[0];

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!chosen) return;
    setPending(true);
    setError(undefined);
    try {
      const started = await api.post<CrmImport>(`/v1/integrations/${chosen}/imports`, {
        source: chosen === 'hubspot' ? { listId: listId.trim() } : { where: where.trim() },
        ...(contactListName.trim() ? { contactListName: contactListName.trim() } : {}),
      });
      setImportId(started.id);
    } catch (err) {
      setError(err);
    } finally {
      setPending(false);
    }
  }

  const fields = fieldErrorsOf(error);
  const sourceError = fields['source.listId'] ?? fields['source.where'] ?? fields.source;
  return (
    <section className="panel" aria-labelledby="import-title">
      <h2 id="import-title">Import contacts</h2>
      <p className="muted">
        Copy a CRM’s contacts into a new Parley contact list, ready for a campaign. Contacts without a valid
        phone number are counted as invalid; numbers already in the list as duplicates.
      </p>
      {available.length === 0 ? (
        <p>Connect HubSpot or Salesforce above first; then import its contacts here.</p>
      ) : (
        <form onSubmit={(e) => void submit(e)} aria-label="Import contacts">
          {error !== undefined && <ErrorBanner error={error} />}
          <div className="row">
            <Field label="CRM">
              <select value={chosen} onChange={(e) => setProvider(e.target.value as Provider)}>
                {available.map((p) => (
                  <option key={p} value={p}>
                    {PROVIDER_NAMES[p]}
                  </option>
                ))}
              </select>
            </Field>
            {chosen === 'hubspot' ? (
              <Field
                label="HubSpot list id"
                hint="The list's ID in HubSpot (Contacts → Lists → the list's details)."
                error={sourceError}
              >
                <input type="text" required value={listId} onChange={(e) => setListId(e.target.value)} />
              </Field>
            ) : (
              <Field
                label="Salesforce SOQL condition"
                hint="A WHERE clause on Contact, e.g. LeadSource = 'Web'"
                error={sourceError}
                wide
              >
                <input
                  type="text"
                  required
                  spellCheck={false}
                  placeholder="LeadSource = 'Web'"
                  value={where}
                  onChange={(e) => setWhere(e.target.value)}
                />
              </Field>
            )}
            <Field
              label="Contact list name"
              hint="Optional; defaults to the CRM and the date."
              error={fields.contactListName}
            >
              <input
                type="text"
                maxLength={200}
                value={contactListName}
                onChange={(e) => setContactListName(e.target.value)}
              />
            </Field>
          </div>
          <button type="submit" className="btn primary" disabled={pending}>
            {pending ? 'Starting…' : 'Import contacts'}
          </button>
        </form>
      )}
      {importId && <ImportProgress key={importId} importId={importId} />}
    </section>
  );
}

export function IntegrationsPage() {
  const session = useSession();
  const canEdit = session.can('integrations.edit');
  const canImport = session.can('integrations.import');
  const loaded = useApi<{ data: Integration[] }>('/v1/integrations');
  const integrations = loaded.data?.data ?? [];

  function upsert(integration: Integration) {
    loaded.setData({
      data: [...integrations.filter((i) => i.provider !== integration.provider), integration],
    });
  }

  return (
    <section aria-labelledby="integrations-title">
      <PageHeader
        title={<span id="integrations-title">Integrations</span>}
        subtitle="Log every call in your CRM and import its contacts for campaigns."
      />
      <ErrorBanner error={loaded.error} title="Integrations could not be loaded" />
      {loaded.loading && !loaded.data ? (
        <Loading label="Loading integrations…" />
      ) : loaded.data ? (
        <>
          <div className="grid-2">
            {PROVIDERS.map((provider) => (
              <IntegrationCard
                key={provider}
                provider={provider}
                integration={integrations.find((i) => i.provider === provider)}
                canEdit={canEdit}
                onChanged={upsert}
                onRemoved={() =>
                  loaded.setData({ data: integrations.filter((i) => i.provider !== provider) })
                }
              />
            ))}
          </div>
          <SyncFailures />
          {canImport && <ImportContacts integrations={integrations} />}
        </>
      ) : null}
    </section>
  );
}
