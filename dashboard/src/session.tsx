/**
 * The signed-in user: token (kept in localStorage so a reload stays signed in), who they are, the
 * tenant they act in, the other tenants their email belongs to, and what their role may do. The
 * API enforces every permission itself; `can` only hides what would be refused.
 */
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import { api, setToken, setUnauthorizedHandler } from './api';

export type Role = 'owner' | 'admin' | 'designer' | 'campaign_manager' | 'viewer';

export interface Tenant {
  id: string;
  name: string;
  slug: string;
  status: string;
  plan: string;
  timeZone: string;
  defaultRegion: string;
}

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
}

export interface Membership {
  tenantId: string;
  tenantName: string;
  role: Role;
}

interface SessionResponse {
  token: string;
  expiresAt: string;
  user: User;
  tenant: Tenant;
  memberships?: Membership[];
}

interface MeResponse {
  actor: { type: 'user' | 'api_key'; id: string; role: Role };
  user: User | null;
  tenant: Tenant;
  memberships: Membership[];
}

/** What each role may change, mirroring the API's access lists (api/routes/*). */
const PERMISSIONS = {
  'agents.edit': ['owner', 'admin', 'designer'],
  'agents.test': ['owner', 'admin', 'designer', 'campaign_manager'],
  'campaigns.edit': ['owner', 'admin', 'campaign_manager'],
  'numbers.edit': ['owner', 'admin'],
  'integrations.edit': ['owner', 'admin'],
  'integrations.import': ['owner', 'admin', 'campaign_manager'],
  'billing.view': ['owner', 'admin'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export interface Session {
  user: User;
  tenant: Tenant;
  role: Role;
  memberships: Membership[];
  can: (permission: Permission) => boolean;
  switchTenant: (tenantId: string) => Promise<void>;
  signOut: () => void;
}

const STORAGE_KEY = 'parley.token';

const SessionContext = createContext<{
  session: Session | null;
  loading: boolean;
  /**
   * Checks the password once. One workspace: signed in. Several: returns them, and
   * `chooseWorkspace` finishes with the one picked (no second password check).
   */
  signIn: (email: string, password: string) => Promise<Membership[] | null>;
  chooseWorkspace: (tenantId: string) => Promise<void>;
} | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<MeResponse | null>(null);
  const [loading, setLoading] = useState(true);

  const signOut = useCallback(() => {
    localStorage.removeItem(STORAGE_KEY);
    setToken(null);
    setMe(null);
  }, []);

  const adopt = useCallback(async (token: string) => {
    setToken(token);
    localStorage.setItem(STORAGE_KEY, token);
    setMe(await api.get<MeResponse>('/v1/me'));
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(signOut);
    const stored = localStorage.getItem(STORAGE_KEY);
    if (!stored) {
      setLoading(false);
      return;
    }
    adopt(stored)
      .catch(() => signOut())
      .finally(() => setLoading(false));
  }, [adopt, signOut]);

  const pending = useRef<SessionResponse | null>(null);

  const signIn = useCallback(
    async (email: string, password: string) => {
      const res = await api.post<SessionResponse>('/v1/auth/login', { email, password });
      if (res.memberships && res.memberships.length > 1) {
        pending.current = res;
        return res.memberships;
      }
      await adopt(res.token);
      return null;
    },
    [adopt],
  );

  const chooseWorkspace = useCallback(
    async (tenantId: string) => {
      const signedIn = pending.current;
      if (!signedIn) throw new Error('Sign in first');
      if (tenantId === signedIn.tenant.id) return adopt(signedIn.token);
      setToken(signedIn.token);
      const res = await api.post<SessionResponse>('/v1/auth/switch-tenant', { tenantId });
      pending.current = null;
      await adopt(res.token);
    },
    [adopt],
  );

  const switchTenant = useCallback(
    async (tenantId: string) => {
      const res = await api.post<SessionResponse>('/v1/auth/switch-tenant', { tenantId });
      await adopt(res.token);
    },
    [adopt],
  );

  const session = useMemo<Session | null>(() => {
    if (!me?.user) return null;
    const role = me.actor.role;
    return {
      user: me.user,
      tenant: me.tenant,
      role,
      memberships: me.memberships,
      can: (permission) => (PERMISSIONS[permission] as readonly Role[]).includes(role),
      switchTenant,
      signOut,
    };
  }, [me, switchTenant, signOut]);

  return (
    <SessionContext.Provider value={{ session, loading, signIn, chooseWorkspace }}>
      {children}
    </SessionContext.Provider>
  );
}

export function useSessionState() {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSessionState outside SessionProvider');
  return value;
}

/** The session of a signed-in page (the router only renders those when signed in). */
export function useSession(): Session {
  const { session } = useSessionState();
  if (!session) throw new Error('useSession without a signed-in user');
  return session;
}
