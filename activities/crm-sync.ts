/**
 * The CRM side effects of `crmSyncWorkflow` and `crmImportWorkflow`: open the tenant's sealed
 * credentials, build the provider's adapter (activities/crm/hubspot.ts, salesforce.ts), and turn
 * its classified failures into Temporal's retry rules:
 *
 * - a rate limit is retried no sooner than the provider asked (`nextRetryDelay`);
 * - a validation error is final (`CrmValidationError`, non-retryable) and its message is kept;
 * - a credential the provider refuses even after a refresh is final (`CrmAuthError`) and marks the
 *   integration `error`, so the dashboard asks the tenant to reconnect;
 * - anything else is transient: Temporal retries it with backoff.
 *
 * Exactly once: the adapters write on an idempotency key derived from Parley's call id, so an
 * attempt that timed out after its write finds the record on the next attempt.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../config';
import type { CrmImportResult, CrmSyncRecordUpdate } from '../contracts/crm';
import { withTenant } from '../db/tenant-context';
import { crmSyncFailures } from '../lib/metrics';
import { toE164 } from '../lib/phone';
import { timeZoneForNumber } from '../lib/phone-time-zone';
import { openSecret, sealSecret, type EncryptionKeyRing } from '../lib/secret-box';
import { HubSpotCrm } from './crm/hubspot';
import { SalesforceCrm } from './crm/salesforce';
import {
  CrmAuthError,
  CrmRateLimitedError,
  CrmValidationError,
  type CrmAdapter,
  type CrmCallLog,
  type CrmImportSource,
  type CrmProviderName,
} from './crm/types';

/** What a tenant's integration row holds sealed, per provider. */
export type CrmCredentials =
  | { provider: 'hubspot'; accessToken: string }
  | { provider: 'salesforce'; instanceUrl: string; accessToken: string; refreshToken?: string };

/** Per-integration choices the tenant makes (the integrations API validates them). */
export interface CrmIntegrationSettings {
  /** Create the contact in the CRM when nobody has the call's number (default true). */
  createContacts?: boolean;
}

export interface CrmClientConfig {
  hubspotBasePath?: string;
  salesforceLoginUrl: string;
  salesforceClientId?: string;
  salesforceClientSecret?: string;
}

export function crmClientConfigFrom(config: Config): CrmClientConfig {
  return {
    hubspotBasePath: config.HUBSPOT_API_BASE_URL,
    salesforceLoginUrl: config.SALESFORCE_LOGIN_URL,
    salesforceClientId: config.SALESFORCE_CLIENT_ID,
    salesforceClientSecret: config.SALESFORCE_CLIENT_SECRET,
  };
}

export interface CrmSyncDeps {
  orm: MikroORM;
  encryptionKeys: EncryptionKeyRing;
  crm: CrmClientConfig;
  /** Where links in CRM records point (the dashboard's call page). */
  publicBaseUrl: string;
}

/**
 * Builds a provider's adapter from opened credentials. When the CRM hands out a new session (and
 * maybe rotates the refresh token), `onCredentialsRenewed` gets the credentials to keep from now on,
 * so the next call neither refreshes again nor presents a refresh token the CRM retired.
 */
export function createCrmAdapter(
  credentials: CrmCredentials,
  config: CrmClientConfig,
  onCredentialsRenewed?: (renewed: CrmCredentials) => Promise<void>,
): CrmAdapter {
  if (credentials.provider === 'hubspot') {
    return new HubSpotCrm({ accessToken: credentials.accessToken, basePath: config.hubspotBasePath });
  }
  return new SalesforceCrm({
    instanceUrl: credentials.instanceUrl,
    accessToken: credentials.accessToken,
    refreshToken: credentials.refreshToken,
    clientId: config.salesforceClientId,
    clientSecret: config.salesforceClientSecret,
    loginUrl: config.salesforceLoginUrl,
    onTokenRefreshed: onCredentialsRenewed
      ? (accessToken, refreshToken) =>
          onCredentialsRenewed({ ...credentials, accessToken, ...(refreshToken ? { refreshToken } : {}) })
      : undefined,
  });
}

/** A classified CRM failure as Temporal should treat it. */
export function crmFailure(err: unknown): Error {
  if (err instanceof CrmRateLimitedError) {
    return ApplicationFailure.create({
      type: 'CrmRateLimited',
      message: err.message,
      nonRetryable: false,
      nextRetryDelay: Math.max(1, err.retryAfterMs),
      details: [{ provider: err.provider, policy: err.policy ?? null, retryAfterMs: err.retryAfterMs }],
    });
  }
  if (err instanceof CrmValidationError) {
    return ApplicationFailure.create({
      type: 'CrmValidationError',
      message: err.providerMessage,
      nonRetryable: true,
      details: [{ provider: err.provider, status: err.status, code: err.providerCode ?? null }],
    });
  }
  if (err instanceof CrmAuthError) {
    return ApplicationFailure.create({
      type: 'CrmAuthError',
      message: err.message,
      nonRetryable: true,
      details: [{ provider: err.provider }],
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}

interface CallRow {
  id: string;
  direction: 'inbound' | 'outbound';
  channel: string;
  from_number: string | null;
  to_number: string | null;
  status: string;
  disposition: string | null;
  started_at: Date | string | null;
  answered_at: Date | string | null;
  ended_at: Date | string | null;
  duration_seconds: number | null;
  summary: string | null;
  agent_name: string | null;
  contact_name: string | null;
  contact_email: string | null;
}

export type CrmSyncContext =
  | { skip: string }
  | {
      skip?: undefined;
      log: CrmCallLog;
      createContacts: boolean;
      contact: { phone: string; firstName?: string; lastName?: string; email?: string };
    };

/** Raw queries return timestamps as text or Date depending on the driver's parsers: either way, ISO. */
function isoOf(value: Date | string | null): string | undefined {
  return value === null ? undefined : new Date(value).toISOString();
}

function splitName(name: string | null): { firstName?: string; lastName?: string } {
  const parts = (name ?? '').trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return {};
  if (parts.length === 1) return { firstName: parts[0] };
  return { firstName: parts.slice(0, -1).join(' '), lastName: parts[parts.length - 1] };
}

export function createCrmSyncActivities(deps: CrmSyncDeps) {
  const { orm, encryptionKeys } = deps;

  /** The tenant's adapter for `provider`, or null when it is not connected. */
  async function adapterFor(tenantId: string, provider: CrmProviderName): Promise<CrmAdapter | null> {
    const [integration] = await withTenant(orm, tenantId, (em) =>
      em.execute<{ id: string; credentials_ciphertext: string }[]>(
        `select id, credentials_ciphertext from integrations where provider = ? and status <> 'disconnected'`,
        [provider],
      ),
    );
    if (!integration) return null;
    const credentials = JSON.parse(
      openSecret(encryptionKeys, integration.credentials_ciphertext),
    ) as CrmCredentials;
    return createCrmAdapter(credentials, deps.crm, async (renewed) => {
      const sealed = sealSecret(encryptionKeys, JSON.stringify(renewed));
      await withTenant(orm, tenantId, (em) =>
        em.execute(
          `update integrations set credentials_ciphertext = ?, credentials_key_id = ?, updated_at = now() where id = ?`,
          [sealed, encryptionKeys[0]!.id, integration.id],
        ),
      );
    });
  }

  async function requireAdapter(tenantId: string, provider: CrmProviderName): Promise<CrmAdapter> {
    const adapter = await adapterFor(tenantId, provider);
    if (!adapter) {
      throw ApplicationFailure.create({
        type: 'CrmNotConnected',
        message: `${provider} is not connected for this tenant`,
        nonRetryable: true,
      });
    }
    return adapter;
  }

  /** Marks the integration broken when its credentials are refused (the tenant must reconnect). */
  async function noteAuthFailure(tenantId: string, provider: CrmProviderName, err: unknown): Promise<void> {
    if (!(err instanceof CrmAuthError)) return;
    await withTenant(orm, tenantId, (em) =>
      em.execute(
        `update integrations set status = 'error', last_error = ?, updated_at = now() where provider = ?`,
        [err.message, provider],
      ),
    );
  }

  async function run<T>(tenantId: string, provider: CrmProviderName, work: (crm: CrmAdapter) => Promise<T>) {
    const adapter = await requireAdapter(tenantId, provider);
    try {
      return await work(adapter);
    } catch (err) {
      await noteAuthFailure(tenantId, provider, err);
      throw crmFailure(err);
    }
  }

  return {
    /** What the CRM should hear about one call, or why there is nothing to sync. */
    async loadCrmSyncContext(input: {
      tenantId: string;
      callId: string;
      provider: CrmProviderName;
    }): Promise<CrmSyncContext> {
      return withTenant(orm, input.tenantId, async (em) => {
        const [integration] = await em.execute<{ status: string; settings: CrmIntegrationSettings }[]>(
          `select status, settings from integrations where provider = ?`,
          [input.provider],
        );
        if (!integration || integration.status === 'disconnected') {
          return { skip: `${input.provider} is not connected` };
        }
        const [call] = await em.execute<CallRow[]>(
          `select c.id, c.direction, c.channel, c.from_number, c.to_number, c.status, c.disposition,
                  c.started_at, c.answered_at, c.ended_at, c.duration_seconds, c.summary,
                  a.name as agent_name, k.name as contact_name, k.email as contact_email
             from calls c
             left join agents a on a.id = c.agent_id
             left join contacts k on k.id = c.contact_id
            where c.id = ?`,
          [input.callId],
        );
        if (!call) return { skip: 'the call is not recorded' };
        const phone = call.direction === 'inbound' ? call.from_number : call.to_number;
        const parleyNumber = call.direction === 'inbound' ? call.to_number : call.from_number;
        if (call.channel !== 'voice' || !phone) return { skip: 'not a phone call' };
        const endedAt = isoOf(call.ended_at) ?? new Date().toISOString();
        return {
          createContacts: integration.settings?.createContacts !== false,
          contact: {
            phone,
            ...splitName(call.contact_name),
            ...(call.contact_email ? { email: call.contact_email } : {}),
          },
          log: {
            callId: call.id,
            direction: call.direction,
            contactPhone: phone,
            parleyNumber: parleyNumber ?? '',
            startedAt: isoOf(call.answered_at) ?? isoOf(call.started_at) ?? endedAt,
            endedAt,
            // Talk time: a call nobody answered rang, but lasted nothing.
            durationSeconds: call.answered_at ? (call.duration_seconds ?? 0) : 0,
            status: call.status,
            disposition: call.disposition ?? call.status,
            ...(call.summary ? { summary: call.summary } : {}),
            ...(call.agent_name ? { agentName: call.agent_name } : {}),
            callUrl: `${deps.publicBaseUrl.replace(/\/$/, '')}/calls/${call.id}`,
          },
        };
      });
    },

    /** The CRM's contact for the number; created when allowed and nobody has it. */
    async findOrCreateCrmContact(input: {
      tenantId: string;
      provider: CrmProviderName;
      contact: { phone: string; firstName?: string; lastName?: string; email?: string };
      create: boolean;
    }): Promise<{ contactId: string | null; created: boolean }> {
      return run(input.tenantId, input.provider, async (crm) => {
        const found = await crm.findContactByPhone(input.contact.phone);
        if (found) return { contactId: found.id, created: false };
        if (!input.create) return { contactId: null, created: false };
        const made = await crm.createContact(input.contact);
        return { contactId: made.id, created: true };
      });
    },

    /** Writes the call's record (HubSpot call, Salesforce Task) on the call id: once, whatever the retries. */
    async logCallToCrm(input: {
      tenantId: string;
      provider: CrmProviderName;
      log: CrmCallLog;
      contactId: string | null;
    }): Promise<{ externalId: string; created: boolean }> {
      return run(input.tenantId, input.provider, async (crm) => {
        const logged = await crm.logCall(input.log, input.contactId);
        return { externalId: logged.id, created: logged.created };
      });
    },

    /** The sync's outcome on the call (calls API: `crmSync`) and its per-provider record. */
    async recordCrmSync(input: {
      tenantId: string;
      callId: string;
      provider: CrmProviderName;
      result: CrmSyncRecordUpdate;
      errorCode?: string;
    }): Promise<void> {
      const r = input.result;
      if (r.status === 'failed')
        crmSyncFailures.inc({ provider: input.provider, code: input.errorCode ?? 'unknown' });
      await withTenant(orm, input.tenantId, async (em) => {
        // Each CRM's sync writes here concurrently: the call's row lock makes the summary below see
        // the other CRMs' committed outcome rather than their state before this transaction.
        await em.execute(`select 1 from calls where id = ? for update`, [input.callId]);
        await em.execute(
          `insert into crm_sync_records (tenant_id, call_id, provider, status, external_id, contact_external_id,
             contact_created, error, error_code, attempts, synced_at)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ${r.status === 'synced' ? 'now()' : 'null'})
           on conflict (call_id, provider) do update set status = excluded.status,
             external_id = coalesce(excluded.external_id, crm_sync_records.external_id),
             contact_external_id = coalesce(excluded.contact_external_id, crm_sync_records.contact_external_id),
             contact_created = crm_sync_records.contact_created or excluded.contact_created,
             error = excluded.error, error_code = excluded.error_code,
             attempts = crm_sync_records.attempts + case when excluded.status = 'pending' then 1 else 0 end,
             synced_at = coalesce(excluded.synced_at, crm_sync_records.synced_at), updated_at = now()`,
          [
            input.tenantId,
            input.callId,
            input.provider,
            r.status,
            r.externalId ?? null,
            r.contactExternalId ?? null,
            r.contactCreated ?? false,
            r.error ?? null,
            input.errorCode ?? null,
          ],
        );
        // The call's summary status: failed if any CRM refused it, pending while one is still going.
        await em.execute(
          `update calls set crm_sync_status = (
             select case when bool_or(status = 'failed') then 'failed'
                         when bool_or(status = 'pending') then 'pending'
                         when bool_or(status = 'synced') then 'synced'
                         else 'skipped' end
               from crm_sync_records where call_id = ?), updated_at = now()
           where id = ?`,
          [input.callId, input.callId],
        );
      });
    },

    /**
     * One page of a CRM import: read it from the CRM, add its contacts to the tenant's contacts and
     * the import's list, and move the checkpoint — all in one transaction, and only if the
     * checkpoint is still where this page began (a retried page after a commit changes nothing).
     */
    async importCrmPage(input: {
      tenantId: string;
      importId: string;
      provider: CrmProviderName;
      source: CrmImportSource;
      contactListId: string;
      cursor: string | null;
      pageSize: number;
    }): Promise<{
      nextCursor: string | null;
      done: boolean;
      totals: Omit<CrmImportResult, 'status' | 'error'>;
    }> {
      const page = await run(input.tenantId, input.provider, (crm) =>
        crm.listContacts(input.source, input.cursor ?? undefined, input.pageSize),
      );
      return withTenant(orm, input.tenantId, async (em) => {
        const [state] = await em.execute<
          {
            cursor: string | null;
            pages: number;
            imported: number;
            duplicates: number;
            invalid: number;
            status: string;
            default_region: string;
          }[]
        >(
          `select i.cursor, i.pages, i.imported, i.duplicates, i.invalid, i.status, t.default_region
             from crm_imports i join tenants t on t.id = i.tenant_id where i.id = ? for update of i`,
          [input.importId],
        );
        if (!state)
          throw ApplicationFailure.create({
            type: 'CrmImportNotFound',
            message: 'import not found',
            nonRetryable: true,
          });
        const totals = () => ({
          pages: state.pages,
          imported: state.imported,
          duplicates: state.duplicates,
          invalid: state.invalid,
        });
        if ((state.cursor ?? null) !== (input.cursor ?? null) || state.status !== 'running') {
          // This page was committed by an earlier attempt: report where the import stands.
          return { nextCursor: state.cursor, done: state.status !== 'running', totals: totals() };
        }
        const rows: {
          phone_e164: string;
          name: string | null;
          email: string | null;
          time_zone: string | null;
          attributes: string;
        }[] = [];
        const seen = new Set<string>();
        let invalid = 0;
        for (const c of page.contacts) {
          const phone = c.phone ? toE164(c.phone, state.default_region) : undefined;
          if (!phone || seen.has(phone)) {
            invalid += phone ? 0 : 1;
            continue;
          }
          seen.add(phone);
          const name = [c.firstName, c.lastName].filter(Boolean).join(' ').trim();
          const email = c.email && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(c.email) ? c.email.toLowerCase() : null;
          rows.push({
            phone_e164: phone,
            name: name || null,
            email,
            time_zone: timeZoneForNumber(phone),
            attributes: JSON.stringify({ [`${input.provider}Id`]: c.externalId }),
          });
        }
        const inserted = rows.length
          ? await em.execute<{ id: string }[]>(
              `insert into contacts (tenant_id, phone_e164, name, email, time_zone, attributes)
               select ?::uuid, r.phone_e164, r.name, r.email, r.time_zone, r.attributes::jsonb
                 from jsonb_to_recordset(?::jsonb) as r(phone_e164 text, name text, email text, time_zone text, attributes text)
               on conflict (tenant_id, phone_e164) do nothing
               returning id`,
              [input.tenantId, JSON.stringify(rows)],
            )
          : [];
        if (rows.length) {
          await em.execute(
            `insert into contact_list_members (tenant_id, list_id, contact_id)
             select ?, ?, c.id from contacts c where c.phone_e164 = any(?::text[])
             on conflict do nothing`,
            [input.tenantId, input.contactListId, `{${rows.map((r) => `"${r.phone_e164}"`).join(',')}}`],
          );
        }
        const duplicates = page.contacts.length - invalid - inserted.length;
        const nextCursor = page.nextCursor ?? null;
        const done = nextCursor === null;
        const [after] = await em.execute<
          { pages: number; imported: number; duplicates: number; invalid: number }[]
        >(
          `update crm_imports set cursor = ?, pages = pages + 1, imported = imported + ?,
             duplicates = duplicates + ?, invalid = invalid + ?, updated_at = now(),
             status = ?, finished_at = ${done ? 'now()' : 'null'}
           where id = ? returning pages, imported, duplicates, invalid`,
          [nextCursor, inserted.length, duplicates, invalid, done ? 'completed' : 'running', input.importId],
        );
        return { nextCursor, done, totals: after ?? totals() };
      });
    },

    /** Ends an import that cannot go on, with the reason. */
    async failCrmImport(input: { tenantId: string; importId: string; error: string }): Promise<void> {
      await withTenant(orm, input.tenantId, (em) =>
        em.execute(
          `update crm_imports set status = 'failed', error = ?, finished_at = now(), updated_at = now()
            where id = ? and status = 'running'`,
          [input.error, input.importId],
        ),
      );
    },
  };
}

export type CrmSyncActivities = ReturnType<typeof createCrmSyncActivities>;
