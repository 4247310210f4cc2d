/** The audit log: who did what, with before/after, for admins. */
import type { ApiDeps } from '../deps';
import type { ApiRouter } from '../routing';

export function registerAuditLogRoutes(_api: ApiRouter, _deps: ApiDeps): void {
  // filled in by the audit change
}
