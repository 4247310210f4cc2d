/**
 * New campaign (`/campaigns/new`): a name, an agent (its published version is pinned), a caller
 * number of the tenant, contacts as a CSV file, and the settings (CampaignSettingsForm, defaults
 * prefilled). Choosing the file checks it on the server, storing nothing
 * (`POST /v1/contacts/import/preview`, the import's own rules): the preview lists every row by its
 * line, invalid ones with the importer's reason. "Create campaign" sends the CSV inline to
 * `POST /v1/campaigns` (invalid rows are skipped by the import) and opens the new draft, which
 * shows the import report; refusals are shown next to the fields they concern.
 */
import { useMemo, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import { ApiError, api, request } from '../api';
import {
  CampaignSettingsForm,
  campaignFieldErrors,
  defaultSettings,
  fromLocalInput,
  settingsChanges,
  validateCampaignForm,
  type CampaignFormValue,
  type CreatedCampaign,
  type ImportReport,
} from '../components/CampaignSettingsForm';
import { useSession } from '../session';
import { Badge, ErrorBanner, Field, Loading, Notice, PageHeader, errorMessage, useApi } from '../ui';

interface AgentSummary {
  id: string;
  name: string;
  publishedVersion: number | null;
}

interface PhoneNumber {
  id: string;
  number: string;
  label: string | null;
}

export interface ImportPreview extends ImportReport {
  columns: {
    phone: string;
    name: string | null;
    firstName: string | null;
    lastName: string | null;
    email: string | null;
    timeZone: string | null;
    doNotCall: string | null;
    attributes: { column: string; key: string }[];
  };
}

/** The most a campaign takes inline (CAMPAIGN_CSV_MAX_BYTES). */
const MAX_CSV_BYTES = 5 * 1024 * 1024;
/** Rows drawn in the preview table; the summary counts them all. */
const PREVIEW_ROWS_SHOWN = 200;

const SAMPLE_CSV =
  'phone,name,email,time_zone,do_not_call,plan\n+14155550100,Ada Lovelace,ada@example.com,America/Los_Angeles,no,gold\n(212) 555-0102,Grace Hopper,,,,silver\n';

interface CsvFile {
  name: string;
  size: number;
  text: string;
}

export function NewCampaignPage() {
  const session = useSession();
  const navigate = useNavigate();
  const agents = useApi<{ data: AgentSummary[] }>('/v1/agents');
  const numbers = useApi<{ data: PhoneNumber[] }>('/v1/phone-numbers');
  const baseline = useMemo(() => defaultSettings(session.tenant.timeZone), [session.tenant.timeZone]);

  const [name, setName] = useState('');
  const [agentId, setAgentId] = useState('');
  const [callerNumberId, setCallerNumberId] = useState('');
  const [file, setFile] = useState<CsvFile | null>(null);
  const [preview, setPreview] = useState<ImportPreview | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(undefined);
  const [previewing, setPreviewing] = useState(false);
  const [form, setForm] = useState<CampaignFormValue>(() => ({
    settings: structuredClone(baseline),
    startsAt: '',
    endsAt: '',
  }));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [submitError, setSubmitError] = useState<unknown>(undefined);
  const [submitting, setSubmitting] = useState(false);
  const previewRun = useRef(0);

  if (!session.can('campaigns.edit')) {
    return (
      <>
        <PageHeader title="New campaign" />
        <Notice tone="warn">
          Your role ({session.role}) can read campaigns but not create them; an owner, admin or campaign
          manager can. <Link to="/campaigns">Back to campaigns</Link>
        </Notice>
      </>
    );
  }

  const agentList = agents.data?.data ?? [];
  const publishedAgents = agentList.filter((a) => a.publishedVersion !== null);
  const numberList = numbers.data?.data ?? [];
  const chosenAgent = agentList.find((a) => a.id === agentId);

  async function chooseFile(input: HTMLInputElement) {
    const chosen = input.files?.[0];
    const run = ++previewRun.current;
    setPreview(null);
    setPreviewError(undefined);
    setErrors(({ csv: _dropped, ...rest }) => rest);
    if (!chosen) {
      setFile(null);
      return;
    }
    if (chosen.size > MAX_CSV_BYTES) {
      setFile(null);
      setErrors((e) => ({
        ...e,
        csv: `${chosen.name} is ${(chosen.size / 1024 / 1024).toFixed(1)} MB; a campaign takes at most 5 MB of contacts inline. Split the file.`,
      }));
      return;
    }
    setPreviewing(true);
    try {
      const text = await chosen.text();
      if (run !== previewRun.current) return;
      setFile({ name: chosen.name, size: chosen.size, text });
      const report = await request<ImportPreview>('/v1/contacts/import/preview', {
        method: 'POST',
        rawBody: text,
        contentType: 'text/csv',
      });
      if (run === previewRun.current) setPreview(report);
    } catch (err) {
      if (run === previewRun.current) setPreviewError(err);
    } finally {
      if (run === previewRun.current) setPreviewing(false);
    }
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setSubmitError(undefined);
    const found: Record<string, string> = validateCampaignForm(form, 'create');
    if (!name.trim()) found.name = 'Give the campaign a name';
    if (!agentId) found.agentId = 'Choose an agent with a published version';
    if (!callerNumberId) found.callerNumberId = 'Choose the number to call from';
    if (!file) found.csv = errors.csv ?? 'Choose a CSV file of contacts';
    else if (previewError) found.csv = errorMessage(previewError);
    else if (preview && preview.totals.rows === preview.totals.invalid)
      found.csv = 'Every row of this file is invalid: fix the rows listed below';
    setErrors(found);
    if (Object.keys(found).length > 0 || !file) return;

    const settings = settingsChanges(form.settings, baseline, 'create');
    const startsAt = fromLocalInput(form.startsAt);
    const endsAt = fromLocalInput(form.endsAt);
    setSubmitting(true);
    try {
      const created = await api.post<CreatedCampaign>('/v1/campaigns', {
        name: name.trim(),
        agentId,
        callerNumberId,
        csv: file.text,
        ...(Object.keys(settings).length ? { settings } : {}),
        ...(startsAt ? { startsAt } : {}),
        ...(endsAt ? { endsAt } : {}),
      });
      void navigate(`/campaigns/${created.id}`, {
        state: { importReport: created.importReport, warnings: created.warnings, fileName: file.name },
      });
    } catch (err) {
      setSubmitError(err);
      setErrors(campaignFieldErrors(err));
      setSubmitting(false);
    }
  }

  const emptyListReport =
    submitError instanceof ApiError && submitError.code === 'CONTACT_LIST_EMPTY'
      ? ((submitError.details as { importReport?: ImportReport } | undefined)?.importReport ?? null)
      : null;

  return (
    <>
      <PageHeader
        title="New campaign"
        subtitle="An agent calls a list of contacts from one of your numbers, inside the calling windows you set."
        actions={
          <Link className="btn campaign-link-btn" to="/campaigns">
            Back to campaigns
          </Link>
        }
      />
      <form onSubmit={submit} noValidate className="campaign-form">
        <section className="panel" aria-labelledby="campaign-basics">
          <h2 id="campaign-basics">Campaign</h2>
          <div className="row">
            <Field label="Campaign name" error={errors.name}>
              <input value={name} maxLength={190} onChange={(e) => setName(e.target.value)} />
            </Field>
            <Field
              label="Agent"
              hint={
                <span id="agent-hint">
                  {chosenAgent?.publishedVersion
                    ? `Calls with its published version ${chosenAgent.publishedVersion}.`
                    : 'Only agents with a published version can launch a campaign.'}
                </span>
              }
              error={errors.agentId ?? errors.agentVersion}
            >
              <select
                aria-label="Agent"
                aria-describedby="agent-hint"
                value={agentId}
                onChange={(e) => setAgentId(e.target.value)}
                disabled={agents.loading}
              >
                <option value="">{agents.loading ? 'Loading…' : 'Choose…'}</option>
                {agentList.map((a) => (
                  <option key={a.id} value={a.id} disabled={a.publishedVersion === null}>
                    {a.publishedVersion === null ? `${a.name} — not published` : a.name}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Caller number" error={errors.callerNumberId ?? errors.callerNumber}>
              <select
                aria-label="Caller number"
                value={callerNumberId}
                onChange={(e) => setCallerNumberId(e.target.value)}
                disabled={numbers.loading}
              >
                <option value="">{numbers.loading ? 'Loading…' : 'Choose…'}</option>
                {numberList.map((n) => (
                  <option key={n.id} value={n.id}>
                    {n.number}
                  </option>
                ))}
              </select>
            </Field>
          </div>
          <ErrorBanner error={agents.error} title="Agents could not be loaded" />
          <ErrorBanner error={numbers.error} title="Phone numbers could not be loaded" />
          {agents.data && publishedAgents.length === 0 && (
            <Notice tone="warn">
              {agentList.length === 0 ? 'You have no agents yet. ' : 'None of your agents is published yet. '}
              <Link to="/agents">Go to Agents</Link> to build one and publish it; campaigns call with a
              published version.
            </Notice>
          )}
          {numbers.data && numberList.length === 0 && (
            <Notice tone="warn">
              You have no phone numbers to call from. <Link to="/numbers">Add a phone number</Link> first.
            </Notice>
          )}
        </section>

        <section className="panel" aria-labelledby="campaign-contacts">
          <h2 id="campaign-contacts">Contacts</h2>
          <Field label="Contacts CSV" error={errors.csv}>
            <input
              type="file"
              accept=".csv,text/csv"
              aria-describedby="csv-help"
              onChange={(e) => void chooseFile(e.currentTarget)}
            />
          </Field>
          <div id="csv-help" className="muted csv-help">
            <p>A header row, then one contact per row (UTF-8, up to 5 MB). Columns, in any order and case:</p>
            <ul>
              <li>
                <code>phone</code> (required; also <code>phone_number</code>, <code>mobile</code>,{' '}
                <code>number</code>
                ): +E.164 like +14155550100, or a national number read in your region (
                {session.tenant.defaultRegion})
              </li>
              <li>
                <code>name</code>, or <code>first_name</code> and <code>last_name</code>; <code>email</code>
              </li>
              <li>
                <code>time_zone</code> (IANA, e.g. America/New_York): the zone its calling windows are read
                in; when absent, the zone of the phone number
              </li>
              <li>
                <code>do_not_call</code> (yes/no)
              </li>
              <li>any other column is a custom field, usable in the flow as {'{{contact.<column>}}'}</li>
            </ul>
            <p>
              <a
                href={`data:text/csv;charset=utf-8,${encodeURIComponent(SAMPLE_CSV)}`}
                download="contacts-sample.csv"
              >
                Download a sample CSV
              </a>
            </p>
          </div>
          {previewing && <Loading label="Checking the file…" />}
          {previewError !== undefined && !errors.csv && (
            <ErrorBanner error={previewError} title="This file cannot be imported" />
          )}
          {preview && file && <CsvPreview preview={preview} fileName={file.name} />}
          {emptyListReport && (
            <Notice tone="warn">
              No contact of the file could be imported ({emptyListReport.totals.invalid} invalid rows);
              nothing was created.
            </Notice>
          )}
        </section>

        <section className="panel" aria-labelledby="campaign-settings">
          <h2 id="campaign-settings">Settings</h2>
          <CampaignSettingsForm value={form} onChange={setForm} errors={errors} mode="create" />
        </section>

        {submitError !== undefined && (
          <ErrorBanner error={submitError} title="The campaign was not created" />
        )}
        {Object.keys(errors).length > 0 && submitError === undefined && (
          <p className="field-error" role="alert">
            Some fields need attention: see the messages next to them.
          </p>
        )}
        <div className="actions">
          <button type="submit" className="btn primary" disabled={submitting || previewing}>
            {submitting ? 'Creating…' : 'Create campaign'}
          </button>
          <span className="muted">Creates a draft: nobody is called until you launch it.</span>
        </div>
      </form>
    </>
  );
}

function CsvPreview({ preview, fileName }: { preview: ImportPreview; fileName: string }) {
  const [onlyProblems, setOnlyProblems] = useState(false);
  const { totals, columns } = preview;
  const valid = totals.accepted + totals.duplicate;
  const rows = onlyProblems ? preview.rows.filter((r) => r.status !== 'accepted') : preview.rows;
  const shown = rows.slice(0, PREVIEW_ROWS_SHOWN);
  const pairs: [string, string | null][] = [
    ['phone', columns.phone],
    ['name', columns.name],
    ['first name', columns.firstName],
    ['last name', columns.lastName],
    ['email', columns.email],
    ['time zone', columns.timeZone],
    ['do not call', columns.doNotCall],
  ];
  const known = pairs.filter((c): c is [string, string] => Boolean(c[1]));
  return (
    <div className="csv-preview">
      <h3>Preview of {fileName}</h3>
      <p className="preview-summary" role="status">
        {valid} valid · {totals.invalid} invalid
      </p>
      <p className="muted">
        {totals.rows} rows read.{' '}
        {totals.invalid > 0 && 'Invalid rows are skipped when the campaign is created. '}
        {totals.duplicate > 0 &&
          `${totals.duplicate} of the valid rows are duplicates (already a contact, or a phone repeated in the file): each person is called once. `}
        Nothing is stored until you create the campaign.
      </p>
      <p className="muted">
        Columns read: {known.map(([field, header]) => `${field} ← “${header}”`).join(', ')}
        {columns.attributes.length > 0 &&
          `; custom fields: ${columns.attributes.map((a) => `{{contact.${a.key}}}`).join(', ')}`}
        .
      </p>
      {totals.invalid + totals.duplicate > 0 && (
        <label className="checkbox">
          <input type="checkbox" checked={onlyProblems} onChange={(e) => setOnlyProblems(e.target.checked)} />
          Only rows with problems
        </label>
      )}
      <div className="preview-table">
        <table aria-label="Contacts preview">
          <thead>
            <tr>
              <th scope="col">Row</th>
              <th scope="col">Status</th>
              <th scope="col">Phone</th>
              <th scope="col">Name</th>
              <th scope="col">Time zone</th>
              <th scope="col">Problem</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.row} className={r.status === 'invalid' ? 'invalid' : undefined}>
                <th scope="row">Row {r.row}</th>
                <td>
                  <Badge tone={r.status === 'invalid' ? 'bad' : r.status === 'duplicate' ? 'warn' : 'good'}>
                    {r.status === 'accepted' ? 'valid' : r.status}
                  </Badge>
                </td>
                <td>{r.phone ?? '—'}</td>
                <td>{r.name ?? '—'}</td>
                <td>{r.timeZone ?? '—'}</td>
                <td>{r.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {(rows.length > shown.length || preview.rowsTruncated) && (
        <p className="muted">
          Showing {shown.length} of {preview.rowsTruncated ? 'the reported' : rows.length} rows
          {preview.rowsTruncated && ' (a large file: the report lists the rows with problems)'}.
        </p>
      )}
    </div>
  );
}
