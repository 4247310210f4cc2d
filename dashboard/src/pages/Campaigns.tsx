/**
 * Campaigns (`/campaigns`): newest first with a status filter and cursor pagination
 * (GET /v1/campaigns), each with its agent, status, progress (done / total contacts, from
 * GET /v1/campaigns/:id/progress per launched row) and creation time. Campaign managers get
 * "New campaign"; everyone else reads.
 */
import { useState } from 'react';
import { Link } from 'react-router-dom';
import {
  CAMPAIGN_STATUSES as STATUSES,
  FINAL_CONTACT_STATUSES,
  type CampaignContactStatus,
} from '../../../contracts/statuses';
import type { Campaign } from '../components/CampaignSettingsForm';
import { useSession } from '../session';
import {
  Badge,
  Empty,
  ErrorBanner,
  Field,
  Loading,
  PageHeader,
  Pager,
  formatDate,
  useApi,
  usePaged,
} from '../ui';

interface ProgressCounts {
  counts: Partial<Record<CampaignContactStatus, number>> & { total: number };
}

interface AgentSummary {
  id: string;
  name: string;
}

export function contactsDone(counts: ProgressCounts['counts']): number {
  return FINAL_CONTACT_STATUSES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
}

function ProgressCell({ campaign }: { campaign: Campaign }) {
  const progress = useApi<ProgressCounts>(
    campaign.status === 'draft' ? null : `/v1/campaigns/${campaign.id}/progress`,
  );
  if (campaign.status === 'draft') return <span className="muted">Not launched</span>;
  if (progress.error) return <span className="muted">—</span>;
  if (!progress.data) return <span className="muted">…</span>;
  const { counts } = progress.data;
  const done = contactsDone(counts);
  return (
    <span className="progress-cell">
      <progress value={done} max={Math.max(1, counts.total)} aria-label={`${campaign.name} progress`} />
      <span>
        {done}/{counts.total}
      </span>
    </span>
  );
}

export function CampaignsPage() {
  const { can } = useSession();
  const [status, setStatus] = useState('');
  const campaigns = usePaged<Campaign>('/v1/campaigns', { status, limit: 25 });
  const agents = useApi<{ data: AgentSummary[] }>('/v1/agents');
  const agentName = new Map((agents.data?.data ?? []).map((a) => [a.id, a.name]));
  const rows = campaigns.data?.data ?? [];

  return (
    <>
      <PageHeader
        title="Campaigns"
        subtitle="Outbound calling: an agent calls a list of contacts inside your calling windows, retrying as you set."
        actions={
          can('campaigns.edit') && (
            <Link className="btn primary campaign-link-btn" to="/campaigns/new">
              New campaign
            </Link>
          )
        }
      />
      <div className="filters">
        <Field label="Status">
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">All</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <ErrorBanner error={campaigns.error} title="Campaigns could not be loaded" />
      {campaigns.loading && !campaigns.data && <Loading />}
      {campaigns.data && rows.length === 0 && (
        <Empty>
          {status ? (
            <>
              No {status} campaigns.{' '}
              <button type="button" className="btn link" onClick={() => setStatus('')}>
                Show all campaigns
              </button>
            </>
          ) : can('campaigns.edit') ? (
            <>
              No campaigns yet. A campaign calls a CSV of contacts with a published agent from one of your
              numbers. <Link to="/campaigns/new">Create your first campaign</Link>.
            </>
          ) : (
            <>No campaigns yet. An owner, admin or campaign manager can create one.</>
          )}
        </Empty>
      )}
      {rows.length > 0 && (
        <>
          <table aria-label="Campaigns">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Agent</th>
                <th scope="col">Status</th>
                <th scope="col">Progress</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link to={`/campaigns/${c.id}`}>{c.name}</Link>
                  </td>
                  <td>
                    {agentName.get(c.agentId) ?? <span className="muted">{c.agentId.slice(0, 8)}</span>}
                    {c.agentVersion !== null && <span className="muted"> v{c.agentVersion}</span>}
                  </td>
                  <td>
                    <Badge>{c.status}</Badge>
                  </td>
                  <td>
                    <ProgressCell campaign={c} />
                  </td>
                  <td>{formatDate(c.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager {...campaigns} />
        </>
      )}
    </>
  );
}
