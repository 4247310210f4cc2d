/** GDPR: export and erase one contact's data. */
import type { ApiDeps } from '../deps';
import type { ApiRouter } from '../routing';

export function registerPrivacyRoutes(_api: ApiRouter, _deps: ApiDeps): void {
  // filled in by the privacy change
}
