/**
 * The app shell: sign-in when signed out; otherwise the navigation (only what the role can use
 * changes; everything is readable), the tenant switcher, and the pages.
 */
import { Suspense, lazy, useEffect, useRef } from 'react';
import { NavLink, Navigate, Route, Routes, useLocation } from 'react-router-dom';
import { useSession, useSessionState } from './session';
import { Loading } from './ui';
import { SignInPage } from './pages/SignIn';
import { AgentsPage } from './pages/Agents';
import { CallsPage } from './pages/Calls';
import { CallDetailPage } from './pages/CallDetail';
import { CampaignsPage } from './pages/Campaigns';
import { NewCampaignPage } from './pages/NewCampaign';
import { CampaignDetailPage } from './pages/CampaignDetail';
import { PhoneNumbersPage } from './pages/PhoneNumbers';
import { IntegrationsPage } from './pages/Integrations';
import { BillingPage } from './pages/Billing';
import { AnalyticsPage } from './pages/Analytics';

// The agent editor carries the flow designer (React Flow) and the definition schema: loaded when opened.
const AgentEditorPage = lazy(() =>
  import('./pages/AgentEditor').then((m) => ({ default: m.AgentEditorPage })),
);

const NAV = [
  { to: '/agents', label: 'Agents' },
  { to: '/calls', label: 'Calls' },
  { to: '/campaigns', label: 'Campaigns' },
  { to: '/numbers', label: 'Phone numbers' },
  { to: '/analytics', label: 'Analytics' },
  { to: '/integrations', label: 'Integrations' },
  { to: '/billing', label: 'Billing', permission: 'billing.view' as const },
];

const ROLE_NAMES: Record<string, string> = {
  owner: 'Owner',
  admin: 'Admin',
  designer: 'Designer',
  campaign_manager: 'Campaign manager',
  viewer: 'Viewer',
};

function TenantSwitcher() {
  const session = useSession();
  if (session.memberships.length < 2) {
    return <span className="tenant-name">{session.tenant.name}</span>;
  }
  return (
    <label className="tenant-switcher">
      <span className="sr-only">Workspace</span>
      <select
        value={session.tenant.id}
        onChange={(e) => void session.switchTenant(e.target.value)}
        aria-label="Switch workspace"
      >
        {session.memberships.map((m) => (
          <option key={m.tenantId} value={m.tenantId}>
            {m.tenantName} ({ROLE_NAMES[m.role] ?? m.role})
          </option>
        ))}
      </select>
    </label>
  );
}

function Shell() {
  const session = useSession();
  const location = useLocation();
  const main = useRef<HTMLElement>(null);
  // A page change moves focus to the page, so keyboard and screen-reader users start there.
  useEffect(() => {
    main.current?.focus();
  }, [location.pathname]);
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <div className="brand">Parley</div>
        <TenantSwitcher />
        <nav aria-label="Main">
          <ul>
            {NAV.filter((n) => !n.permission || session.can(n.permission)).map((n) => (
              <li key={n.to}>
                <NavLink to={n.to}>{n.label}</NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="whoami">
          <span>{session.user.name}</span>
          <span className="muted">{ROLE_NAMES[session.role] ?? session.role}</span>
          <button type="button" className="btn link" onClick={session.signOut}>
            Sign out
          </button>
        </div>
      </aside>
      <main id="main" ref={main} tabIndex={-1}>
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route path="/" element={<Navigate to="/agents" replace />} />
            <Route path="/signin" element={<Navigate to="/agents" replace />} />
            <Route path="/agents" element={<AgentsPage />} />
            <Route path="/agents/:id" element={<AgentEditorPage />} />
            <Route path="/calls" element={<CallsPage />} />
            <Route path="/calls/:id" element={<CallDetailPage />} />
            <Route path="/campaigns" element={<CampaignsPage />} />
            <Route path="/campaigns/new" element={<NewCampaignPage />} />
            <Route path="/campaigns/:id" element={<CampaignDetailPage />} />
            <Route path="/numbers" element={<PhoneNumbersPage />} />
            <Route path="/integrations" element={<IntegrationsPage />} />
            <Route path="/billing" element={<BillingPage />} />
            <Route path="/analytics" element={<AnalyticsPage />} />
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Suspense>
      </main>
    </div>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        Nothing lives at this address. <NavLink to="/agents">Go to agents</NavLink>.
      </p>
    </section>
  );
}

export function App() {
  const { session, loading } = useSessionState();
  if (loading) return <Loading label="Starting Parley…" />;
  if (!session) return <SignInPage />;
  // Another workspace is another world: every page and its loaded data start afresh.
  return <Shell key={session.tenant.id} />;
}
