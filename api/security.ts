/** Security middleware of the api: headers (helmet) and rate limits per IP and per tenant. */
import type { Express } from 'express';
import type { ApiDeps } from './deps';

export function installSecurity(_app: Express, _deps: ApiDeps): void {
  // filled in by the security change
}
