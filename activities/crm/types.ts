/**
 * What Parley asks of a CRM, whichever it is: find or create the person called, log the call
 * exactly once (keyed by Parley's call id, so a retried write finds the record it already made),
 * test the connection, and page through contacts for an import. HubSpot and Salesforce each
 * implement it over their official SDK; the crm-sync activities see only this interface.
 *
 * Failures are classified here so the activities can map them onto Temporal's retry rules:
 * a rate limit waits as long as the provider asks, a validation error is final (and recorded on the
 * call), an expired session is refreshed by the adapter itself, anything else is transient.
 */

export type CrmProviderName = 'hubspot' | 'salesforce';

/** One finished call, as the CRM should remember it. */
export interface CrmCallLog {
  /** Parley's call id: the idempotency key of the log (HubSpot unique property, Salesforce external id). */
  callId: string;
  direction: 'inbound' | 'outbound';
  /** E.164 of the other party (the caller for inbound calls, the callee for outbound ones). */
  contactPhone: string;
  /** The Parley number on the call. */
  parleyNumber: string;
  startedAt: string;
  endedAt: string;
  /** Talk time (0 when nobody answered). */
  durationSeconds: number;
  /** Parley's call status: completed, no-answer, busy, failed, canceled, … */
  status: string;
  /** The agent's disposition, e.g. booked, voicemail, transferred, caller_hung_up. */
  disposition: string;
  /** Post-call summary, when analysis produced one. */
  summary?: string;
  agentName?: string;
  /** Link back to the call in Parley (shown in the CRM record's body). */
  callUrl?: string;
}

export interface CrmContactInput {
  phone: string;
  firstName?: string;
  lastName?: string;
  email?: string;
}

/** A contact read from the CRM for an import into Parley. */
export interface CrmImportedContact {
  externalId: string;
  phone?: string;
  firstName?: string;
  lastName?: string;
  email?: string;
}

/** Where an import reads from: a HubSpot list id, or a SOQL WHERE clause on Salesforce Contacts. */
export type CrmImportSource =
  { kind: 'hubspot_list'; listId: string } | { kind: 'salesforce_soql'; where: string };

export interface CrmImportPage {
  contacts: CrmImportedContact[];
  /** Opaque cursor of the next page; absent on the last page. */
  nextCursor?: string;
}

export interface CrmAdapter {
  readonly provider: CrmProviderName;
  /** Proves the credentials work (and prepares what logging needs, e.g. HubSpot's unique property). */
  testConnection(): Promise<{ account: string }>;
  findContactByPhone(phone: string): Promise<{ id: string } | null>;
  createContact(input: CrmContactInput): Promise<{ id: string }>;
  /**
   * Writes the call's record, associated with the contact when one is given. Idempotent on
   * `log.callId`: a second call updates the same record and returns the same id.
   */
  logCall(log: CrmCallLog, contactId: string | null): Promise<{ id: string; created: boolean }>;
  /** One page of contacts from `source`, starting at `cursor` (undefined: the first page). */
  listContacts(source: CrmImportSource, cursor: string | undefined, pageSize: number): Promise<CrmImportPage>;
}

/** The provider said to slow down; retry no sooner than `retryAfterMs`. */
export class CrmRateLimitedError extends Error {
  constructor(
    readonly provider: CrmProviderName,
    readonly retryAfterMs: number,
    /** HubSpot's policyName (TEN_SECONDLY_ROLLING, DAILY, …) or Salesforce's errorCode. */
    readonly policy: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'CrmRateLimitedError';
  }
}

/** The provider refused the data (HTTP 400/404/409/422 …): retrying cannot help. */
export class CrmValidationError extends Error {
  constructor(
    readonly provider: CrmProviderName,
    readonly status: number,
    /** The provider's own message (and error code, when it gives one), shown to the tenant. */
    readonly providerMessage: string,
    readonly providerCode?: string,
  ) {
    super(
      `${provider} rejected the request (${status}${providerCode ? ` ${providerCode}` : ''}): ${providerMessage}`,
    );
    this.name = 'CrmValidationError';
  }
}

/** The credentials are not accepted, even after a token refresh: the tenant must reconnect. */
export class CrmAuthError extends Error {
  constructor(
    readonly provider: CrmProviderName,
    message: string,
  ) {
    super(message);
    this.name = 'CrmAuthError';
  }
}
