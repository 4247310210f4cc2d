/** Sign-in with email and password; when the email belongs to several workspaces, pick one. */
import { useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { useSessionState, type Membership } from '../session';
import { ErrorBanner, Field } from '../ui';

export function SignInPage() {
  const { signIn, chooseWorkspace } = useSessionState();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [memberships, setMemberships] = useState<Membership[] | null>(null);
  const [tenantId, setTenantId] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [pending, setPending] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setPending(true);
    setError(undefined);
    try {
      if (memberships) {
        await chooseWorkspace(tenantId);
        return;
      }
      const several = await signIn(email, password);
      if (several) {
        // This email belongs to several workspaces: the user picks one.
        setMemberships(several);
        setTenantId(several[0]!.tenantId);
      }
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401 ? new Error('The email or password is wrong.') : err,
      );
    } finally {
      setPending(false);
    }
  }

  return (
    <main className="signin" id="main">
      <form onSubmit={(e) => void submit(e)} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to Parley</h1>
        <ErrorBanner error={error} />
        <Field label="Email">
          <input
            type="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => {
              setEmail(e.target.value);
              setMemberships(null);
            }}
          />
        </Field>
        <Field label="Password">
          <input
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => {
              setPassword(e.target.value);
              setMemberships(null);
            }}
          />
        </Field>
        {memberships && (
          <Field label="Workspace" hint="This email belongs to several workspaces.">
            <select value={tenantId} onChange={(e) => setTenantId(e.target.value)}>
              {memberships.map((m) => (
                <option key={m.tenantId} value={m.tenantId}>
                  {m.tenantName} ({m.role})
                </option>
              ))}
            </select>
          </Field>
        )}
        <button type="submit" className="btn primary" disabled={pending}>
          {pending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
