/**
 * Small building blocks every page uses: data loading with errors shown, labelled form fields,
 * page headers, tables, badges and formatting. Every control gets a visible label (or aria-label).
 */
import {
  cloneElement,
  isValidElement,
  useCallback,
  useEffect,
  useId,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import { ApiError, api, type Query } from './api';

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (value: T) => void;
}

/** GETs `path` (null: nothing yet) and reloads when path or query change. */
export function useApi<T>(path: string | null, query?: Query): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(path !== null);
  const [nonce, setNonce] = useState(0);
  const key = path === null ? null : `${path}?${JSON.stringify(query ?? {})}`;
  const queryRef = useRef(query);
  queryRef.current = query;
  useEffect(() => {
    if (key === null || path === null) return;
    const controller = new AbortController();
    setLoading(true);
    api
      .get<T>(path, queryRef.current, controller.signal)
      .then((value) => {
        setData(value);
        setError(undefined);
      })
      .catch((err: unknown) => {
        if ((err as Error).name !== 'AbortError') setError(err);
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
  }, [key, path, nonce]);
  const reload = useCallback(() => setNonce((n) => n + 1), []);
  return { data, error, loading, reload, setData };
}

/** Runs an action, keeping its pending state and error for the form that started it. */
export function useAction<A extends unknown[], R>(action: (...args: A) => Promise<R>) {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(
    async (...args: A): Promise<R | undefined> => {
      setPending(true);
      setError(undefined);
      try {
        return await action(...args);
      } catch (err) {
        setError(err);
        return undefined;
      } finally {
        setPending(false);
      }
    },
    [action],
  );
  return { run, pending, error, clearError: () => setError(undefined) };
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function ErrorBanner({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : undefined;
  const fields = error instanceof ApiError ? Object.entries(error.fieldErrors()) : [];
  return (
    <div className="banner error" role="alert">
      {title && <strong>{title}: </strong>}
      {errorMessage(error)}
      {code && <code className="code">{code}</code>}
      {fields.length > 0 && (
        <ul>
          {fields.map(([path, message]) => (
            <li key={path}>
              <code>{path}</code> {message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Notice({
  children,
  tone = 'info',
}: {
  children: ReactNode;
  tone?: 'info' | 'success' | 'warn';
}) {
  return (
    <div className={`banner ${tone}`} role="status">
      {children}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      {label}
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function PageHeader({
  title,
  subtitle,
  actions,
}: {
  title: ReactNode;
  subtitle?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {subtitle && <p className="muted">{subtitle}</p>}
      </div>
      {actions && <div className="actions">{actions}</div>}
    </header>
  );
}

/**
 * A labelled form control. The label names the control through `for`/`id` (not by wrapping it, so a
 * select's options never become part of its name), and the hint and error describe it.
 */
export function Field({
  label,
  hint,
  error,
  children,
  wide,
}: {
  label: string;
  hint?: ReactNode;
  error?: string;
  children: ReactNode;
  wide?: boolean;
}) {
  const id = useId();
  // A native control gets the label by id; anything else (a composite) is wrapped by the label.
  const control =
    isValidElement<Record<string, unknown>>(children) &&
    (children.type === 'input' || children.type === 'select' || children.type === 'textarea')
      ? children
      : null;
  const controlId = (control?.props.id as string | undefined) ?? `${id}-control`;
  const described = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  const labelled = control
    ? cloneElement(control, {
        id: controlId,
        'aria-describedby':
          [control.props['aria-describedby'] as string | undefined, described].filter(Boolean).join(' ') ||
          undefined,
        'aria-invalid': error ? true : control.props['aria-invalid'],
      })
    : children;
  const className = `field${wide ? ' wide' : ''}${error ? ' invalid' : ''}`;
  if (!control) {
    return (
      <label className={className}>
        <span className="field-label">{label}</span>
        {children}
        {hint && <span className="hint">{hint}</span>}
        {error && (
          <span className="field-error" role="alert">
            {error}
          </span>
        )}
      </label>
    );
  }
  return (
    <div className={className}>
      <label className="field-label" htmlFor={controlId}>
        {label}
      </label>
      {labelled}
      {hint && (
        <span className="hint" id={`${id}-hint`}>
          {hint}
        </span>
      )}
      {error && (
        <span className="field-error" id={`${id}-error`} role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

export function Badge({ children, tone }: { children: ReactNode; tone?: string }) {
  const word = typeof children === 'string' || typeof children === 'number' ? String(children) : '';
  return <span className={`badge ${tone ?? toneOf(word)}`}>{children}</span>;
}

/** A colour for common statuses, so the same word looks the same on every page. */
export function toneOf(status: string): string {
  if (/^(completed|done|active|connected|paid|published|ok|synced|answered|ended)$/.test(status))
    return 'good';
  if (
    /^(failed|error|canceled|cancelled|busy|no_answer|no-answer|past_due|suspended|invalid|refused)$/.test(
      status,
    )
  )
    return 'bad';
  if (/^(running|in_progress|ringing|live|queued|pending|scheduled|dialing|open)$/.test(status))
    return 'live';
  if (/^(paused|draft|partial)$/.test(status)) return 'warn';
  return 'neutral';
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return '—';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toLocaleString();
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export function formatCents(cents: number | null | undefined, currency = 'usd'): string {
  if (cents === null || cents === undefined) return '—';
  return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() }).format(
    cents / 100,
  );
}

export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : '—';
}

/** A cursor-paginated list (`{ data, nextCursor }`): pages are kept so "Previous" needs no refetch. */
export function usePaged<T>(path: string, query: Query) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const key = JSON.stringify(query);
  useEffect(() => setCursors([undefined]), [key]);
  const loaded = useApi<{ data: T[]; nextCursor: string | null }>(path, { ...query, cursor });
  return {
    ...loaded,
    page: cursors.length,
    hasPrevious: cursors.length > 1,
    hasNext: Boolean(loaded.data?.nextCursor),
    next: () => loaded.data?.nextCursor && setCursors((c) => [...c, loaded.data!.nextCursor!]),
    previous: () => setCursors((c) => (c.length > 1 ? c.slice(0, -1) : c)),
  };
}

export function Pager({
  page,
  hasPrevious,
  hasNext,
  next,
  previous,
}: {
  page: number;
  hasPrevious: boolean;
  hasNext: boolean;
  next: () => void;
  previous: () => void;
}) {
  return (
    <nav className="pager" aria-label="Pagination">
      <button type="button" className="btn" onClick={previous} disabled={!hasPrevious}>
        ← Previous
      </button>
      <span aria-live="polite">Page {page}</span>
      <button type="button" className="btn" onClick={next} disabled={!hasNext}>
        Next →
      </button>
    </nav>
  );
}
