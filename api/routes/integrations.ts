/**
 * A tenant's CRM integrations: connect HubSpot (private-app token) or Salesforce (instance URL and
 * OAuth tokens) — the credentials are proven against the CRM before anything is stored, then kept
 * sealed (lib/secret-box) and never returned or logged — test, change settings, disconnect; list
 * the calls a CRM refused; and import a CRM's contacts into a contact list (`crmImportWorkflow`).
 */
import { randomUUID } from 'node:crypto';
import { WorkflowIdReusePolicy } from '@temporalio/client';
import { z } from 'zod';
import { createCrmAdapter, crmClientConfigFrom, type CrmCredentials } from '../../activities/crm-sync';
import { CrmAuthError, CrmRateLimitedError, CrmValidationError } from '../../activities/crm/types';
import {
  CRM_IMPORT_WORKFLOW,
  CRM_PROVIDERS,
  CRM_QUEUE,
  crmImportWorkflowId,
  type CrmImportInput,
  type CrmProviderName,
} from '../../contracts/crm';
import { CrmImport, Integration, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { openSecret, sealSecret } from '../../lib/secret-box';
import type { ApiDeps } from '../deps';
import { AppError, NotFoundError, ServiceUnavailableError } from '../errors';
import type { ApiRouter, AuthContext } from '../routing';
import { idParams } from '../schemas';
import { recordAudit } from '../services/audit';

export const INTEGRATION_MANAGERS = ['owner', 'admin'] as const satisfies readonly Role[];
const IMPORTERS = ['owner', 'admin', 'campaign_manager'] as const satisfies readonly Role[];

const providerParams = z.object({ provider: z.enum(CRM_PROVIDERS) });
const settingsSchema = z
  .object({
    createContacts: z
      .boolean()
      .describe('Create the person in the CRM when no contact has the call’s number (default true)'),
  })
  .partial()
  .strict();

const integrationView = z.object({
  provider: z.enum(CRM_PROVIDERS),
  status: z.enum(['connected', 'error', 'disconnected']),
  account: z.string().nullable(),
  settings: settingsSchema,
  lastTestedAt: z.string().nullable(),
  lastError: z.string().nullable(),
  connectedAt: z.string(),
  updatedAt: z.string(),
});

function toIntegrationView(i: Integration): z.infer<typeof integrationView> {
  return {
    provider: i.provider,
    status: i.status as 'connected' | 'error' | 'disconnected',
    account: i.account ?? null,
    settings: i.settings as z.infer<typeof settingsSchema>,
    lastTestedAt: i.lastTestedAt?.toISOString() ?? null,
    lastError: i.lastError ?? null,
    connectedAt: i.createdAt.toISOString(),
    updatedAt: i.updatedAt.toISOString(),
  };
}

const token = z.string().trim().min(8, 'must be a token').max(4096);
const hubspotBody = z.object({ accessToken: token, settings: settingsSchema.optional() }).strict();
const salesforceBody = z
  .object({
    instanceUrl: z
      .url('must be a URL')
      .refine((u) => /^https:\/\//.test(u) || /^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(u), {
        message: 'must be an https URL (your My Domain, e.g. https://acme.my.salesforce.com)',
      }),
    accessToken: token,
    refreshToken: token.optional(),
    settings: settingsSchema.optional(),
  })
  .strict();

const importBody = z
  .object({
    source: z.union([
      z.object({ listId: z.string().trim().min(1).max(64).describe('HubSpot list id') }).strict(),
      z
        .object({
          where: z
            .string()
            .trim()
            .min(1)
            .max(2000)
            .describe("SOQL condition on Contact, e.g. LeadSource = 'Web'"),
        })
        .strict(),
    ]),
    contactListName: z.string().trim().min(1).max(200).optional(),
    pageSize: z.number().int().min(1).max(1000).optional(),
  })
  .strict();

const importView = z.object({
  id: z.string(),
  provider: z.enum(CRM_PROVIDERS),
  status: z.enum(['running', 'completed', 'failed']),
  contactListId: z.string(),
  pages: z.number(),
  imported: z.number(),
  duplicates: z.number(),
  invalid: z.number(),
  error: z.string().nullable(),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
});

function toImportView(i: CrmImport): z.infer<typeof importView> {
  return {
    id: i.id,
    provider: i.provider,
    status: i.status as 'running' | 'completed' | 'failed',
    contactListId: i.contactListId,
    pages: i.pages,
    imported: i.imported,
    duplicates: i.duplicates,
    invalid: i.invalid,
    error: i.error ?? null,
    createdAt: i.createdAt.toISOString(),
    finishedAt: i.finishedAt?.toISOString() ?? null,
  };
}

/** 422 CRM_CONNECTION_FAILED / CRM_CREDENTIALS_REJECTED, 503 CRM_UNAVAILABLE: the CRM's own words. */
function connectionError(provider: CrmProviderName, err: unknown): AppError {
  if (err instanceof CrmAuthError) {
    return new AppError(
      422,
      'CRM_CREDENTIALS_REJECTED',
      `${provider} refused the credentials: ${err.message}`,
      {
        provider,
      },
    );
  }
  if (err instanceof CrmValidationError) {
    return new AppError(422, 'CRM_CONNECTION_FAILED', `${provider}: ${err.providerMessage}`, {
      provider,
      providerStatus: err.status,
      providerCode: err.providerCode ?? null,
    });
  }
  if (err instanceof CrmRateLimitedError) {
    return new AppError(
      503,
      'CRM_RATE_LIMITED',
      `${provider} asks to wait ${Math.ceil(err.retryAfterMs / 1000)} s`,
      {
        provider,
        retryAfterMs: err.retryAfterMs,
      },
    );
  }
  return new ServiceUnavailableError(
    'CRM_UNAVAILABLE',
    `${provider} could not be reached: ${err instanceof Error ? err.message : String(err)}`,
  );
}

export function registerIntegrationRoutes(api: ApiRouter, deps: ApiDeps): void {
  const crmConfig = crmClientConfigFrom(deps.config);

  /** Tests the credentials; returns them renewed when the CRM refreshed the session meanwhile. */
  async function testCredentials(
    credentials: CrmCredentials,
  ): Promise<{ account: string; renewed?: CrmCredentials }> {
    let renewed: CrmCredentials | undefined;
    const adapter = createCrmAdapter(credentials, crmConfig, (fresh) => {
      renewed = fresh;
      return Promise.resolve();
    });
    const { account } = await adapter.testConnection();
    return { account, ...(renewed ? { renewed } : {}) };
  }

  async function connect(
    auth: AuthContext,
    ip: string | undefined,
    credentials: CrmCredentials,
    settings: z.infer<typeof settingsSchema> | undefined,
  ) {
    const provider = credentials.provider;
    let tested: { account: string; renewed?: CrmCredentials };
    try {
      tested = await testCredentials(credentials);
    } catch (err) {
      throw connectionError(provider, err);
    }
    const stored = tested.renewed ?? credentials;
    const sealed = sealSecret(deps.config.ENCRYPTION_KEYS, JSON.stringify(stored));
    const keyId = deps.config.ENCRYPTION_KEYS[0]!.id;
    return withTenant(deps.orm, auth.tenantId, async (em) => {
      let integration = await em.findOne(Integration, { provider });
      const before = integration
        ? { status: integration.status, account: integration.account ?? null }
        : undefined;
      const now = new Date();
      if (!integration) {
        integration = em.create(Integration, {
          tenantId: auth.tenantId,
          provider,
          credentialsCiphertext: sealed,
          credentialsKeyId: keyId,
          settings: settings ?? {},
        });
      } else {
        integration.credentialsCiphertext = sealed;
        integration.credentialsKeyId = keyId;
        if (settings) integration.settings = settings;
      }
      integration.status = 'connected';
      integration.account = tested.account;
      integration.lastTestedAt = now;
      integration.lastError = null;
      integration.updatedAt = now;
      await em.flush();
      recordAudit(
        em,
        auth,
        {
          action: 'integration.connected',
          targetType: 'integration',
          targetId: provider,
          ...(before ? { before } : {}),
          after: { status: 'connected', account: tested.account, settings: integration.settings },
        },
        ip,
      );
      return { status: 200, body: toIntegrationView(integration) };
    });
  }

  api.route({
    method: 'get',
    path: '/v1/integrations',
    summary: "The tenant's CRM integrations (never their credentials)",
    tag: 'integrations',
    access: 'authenticated',
    responses: { 200: { description: 'Integrations', schema: z.object({ data: z.array(integrationView) }) } },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const rows = await em.find(Integration, {}, { orderBy: { provider: 'asc' } });
        return { body: { data: rows.map(toIntegrationView) } };
      }),
  });

  api.route({
    method: 'put',
    path: '/v1/integrations/hubspot',
    summary: 'Connect HubSpot with a private-app access token (tested before it is stored, sealed at rest)',
    tag: 'integrations',
    access: INTEGRATION_MANAGERS,
    body: hubspotBody,
    responses: {
      200: { description: 'Connected', schema: integrationView },
      422: { description: 'CRM_CREDENTIALS_REJECTED, CRM_CONNECTION_FAILED: nothing stored' },
      503: { description: 'CRM_UNAVAILABLE, CRM_RATE_LIMITED: nothing stored' },
    },
    handler: async ({ auth, body, req }) =>
      connect(auth, req.ip, { provider: 'hubspot', accessToken: body.accessToken }, body.settings),
  });

  api.route({
    method: 'put',
    path: '/v1/integrations/salesforce',
    summary:
      'Connect Salesforce with the org’s instance URL and OAuth tokens; the refresh token renews an expired session',
    tag: 'integrations',
    access: INTEGRATION_MANAGERS,
    body: salesforceBody,
    responses: {
      200: { description: 'Connected', schema: integrationView },
      422: { description: 'CRM_CREDENTIALS_REJECTED, CRM_CONNECTION_FAILED: nothing stored' },
      503: { description: 'CRM_UNAVAILABLE, CRM_RATE_LIMITED: nothing stored' },
    },
    handler: async ({ auth, body, req }) =>
      connect(
        auth,
        req.ip,
        {
          provider: 'salesforce',
          instanceUrl: body.instanceUrl.replace(/\/$/, ''),
          accessToken: body.accessToken,
          ...(body.refreshToken ? { refreshToken: body.refreshToken } : {}),
        },
        body.settings,
      ),
  });

  api.route({
    method: 'post',
    path: '/v1/integrations/:provider/test',
    summary: 'Test a connected CRM with its stored credentials; the result is kept on the integration',
    tag: 'integrations',
    access: INTEGRATION_MANAGERS,
    params: providerParams,
    responses: {
      200: {
        description: 'The test ran (ok false: the CRM refused, with its reason)',
        schema: z.object({ ok: z.boolean(), account: z.string().nullable(), error: z.string().nullable() }),
      },
      404: { description: 'INTEGRATION_NOT_FOUND' },
    },
    handler: async ({ auth, params, req }) => {
      const ip = req.ip;
      const integration = await withTenant(deps.orm, auth.tenantId, (em) =>
        em.findOne(Integration, { provider: params.provider }),
      );
      if (!integration) throw new NotFoundError('Integration', params.provider);
      const before = { status: integration.status, account: integration.account ?? null };
      const credentials = JSON.parse(
        openSecret(deps.config.ENCRYPTION_KEYS, integration.credentialsCiphertext),
      ) as CrmCredentials;
      let outcome: { ok: boolean; account: string | null; error: string | null; renewed?: CrmCredentials };
      try {
        const tested = await testCredentials(credentials);
        outcome = { ok: true, account: tested.account, error: null, renewed: tested.renewed };
      } catch (err) {
        outcome = {
          ok: false,
          account: integration.account ?? null,
          error: connectionError(params.provider, err).message,
        };
      }
      await withTenant(deps.orm, auth.tenantId, async (em) => {
        const row = await em.findOneOrFail(Integration, { provider: params.provider });
        row.status = outcome.ok ? 'connected' : 'error';
        row.lastTestedAt = new Date();
        row.lastError = outcome.error;
        if (outcome.account) row.account = outcome.account;
        if (outcome.renewed) {
          row.credentialsCiphertext = sealSecret(
            deps.config.ENCRYPTION_KEYS,
            JSON.stringify(outcome.renewed),
          );
          row.credentialsKeyId = deps.config.ENCRYPTION_KEYS[0]!.id;
        }
        row.updatedAt = new Date();
        recordAudit(
          em,
          auth,
          {
            action: 'integration.tested',
            targetType: 'integration',
            targetId: params.provider,
            before,
            after: {
              status: row.status,
              account: row.account ?? null,
              error: outcome.error,
              credentialsRenewed: Boolean(outcome.renewed),
            },
          },
          ip,
        );
      });
      return { body: { ok: outcome.ok, account: outcome.account, error: outcome.error } };
    },
  });

  api.route({
    method: 'patch',
    path: '/v1/integrations/:provider',
    summary: 'Change an integration’s settings (createContacts)',
    tag: 'integrations',
    access: INTEGRATION_MANAGERS,
    params: providerParams,
    body: z.object({ settings: settingsSchema }).strict(),
    responses: {
      200: { description: 'Updated', schema: integrationView },
      404: { description: 'INTEGRATION_NOT_FOUND' },
    },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const integration = await em.findOne(Integration, { provider: params.provider });
        if (!integration) throw new NotFoundError('Integration', params.provider);
        const before = { settings: integration.settings };
        integration.settings = { ...integration.settings, ...body.settings };
        integration.updatedAt = new Date();
        recordAudit(
          em,
          auth,
          {
            action: 'integration.updated',
            targetType: 'integration',
            targetId: params.provider,
            before,
            after: { settings: integration.settings },
          },
          req.ip,
        );
        return { body: toIntegrationView(integration) };
      }),
  });

  api.route({
    method: 'delete',
    path: '/v1/integrations/:provider',
    summary: 'Disconnect a CRM: its credentials are erased; calls already synced keep their records',
    tag: 'integrations',
    access: INTEGRATION_MANAGERS,
    params: providerParams,
    responses: { 204: { description: 'Disconnected' }, 404: { description: 'INTEGRATION_NOT_FOUND' } },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const integration = await em.findOne(Integration, { provider: params.provider });
        if (!integration) throw new NotFoundError('Integration', params.provider);
        recordAudit(
          em,
          auth,
          {
            action: 'integration.disconnected',
            targetType: 'integration',
            targetId: params.provider,
            before: { status: integration.status, account: integration.account ?? null },
          },
          req.ip,
        );
        em.remove(integration);
        return { status: 204 };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/integrations/sync-failures',
    summary: 'Calls a CRM refused, newest first, with the provider’s message',
    tag: 'integrations',
    access: 'authenticated',
    query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }),
    responses: { 200: { description: 'Failed syncs' } },
    handler: async ({ auth, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const rows = await em.execute<
          {
            call_id: string;
            provider: string;
            error: string | null;
            error_code: string | null;
            updated_at: Date;
            from_number: string | null;
            to_number: string | null;
            direction: string;
          }[]
        >(
          `select r.call_id, r.provider, r.error, r.error_code, r.updated_at, c.from_number, c.to_number, c.direction
             from crm_sync_records r join calls c on c.id = r.call_id
            where r.status = 'failed' order by r.updated_at desc limit ?`,
          [query.limit],
        );
        return {
          body: {
            data: rows.map((r) => ({
              callId: r.call_id,
              provider: r.provider,
              error: r.error,
              errorCode: r.error_code,
              direction: r.direction,
              from: r.from_number,
              to: r.to_number,
              failedAt: new Date(r.updated_at).toISOString(),
            })),
          },
        };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/integrations/:provider/imports',
    summary:
      'Import contacts from a HubSpot list ({listId}) or a Salesforce SOQL condition ({where}) into a new contact list; runs as a workflow, checkpointed per page',
    tag: 'integrations',
    access: IMPORTERS,
    params: providerParams,
    body: importBody,
    responses: {
      202: { description: 'Started', schema: importView },
      404: { description: 'INTEGRATION_NOT_FOUND' },
      422: { description: 'CRM_SOURCE_MISMATCH: a list id for Salesforce or a SOQL condition for HubSpot' },
      503: { description: 'TEMPORAL_UNAVAILABLE: nothing was stored' },
    },
    handler: async ({ auth, params, body, req }) => {
      const source =
        'listId' in body.source
          ? ({ kind: 'hubspot_list', listId: body.source.listId } as const)
          : ({ kind: 'salesforce_soql', where: body.source.where } as const);
      if ((source.kind === 'hubspot_list') !== (params.provider === 'hubspot')) {
        throw new AppError(
          422,
          'CRM_SOURCE_MISMATCH',
          params.provider === 'hubspot'
            ? 'A HubSpot import reads a list: give source.listId'
            : 'A Salesforce import reads Contacts matching a SOQL condition: give source.where',
          { provider: params.provider },
        );
      }
      const importId = randomUUID();
      const created = await withTenant(deps.orm, auth.tenantId, async (em) => {
        const integration = await em.findOne(Integration, { provider: params.provider });
        if (!integration) throw new NotFoundError('Integration', params.provider);
        const [list] = await em.execute<{ id: string }[]>(
          `insert into contact_lists (tenant_id, name) values (?, ?) returning id`,
          [
            auth.tenantId,
            body.contactListName ?? `${params.provider} import ${new Date().toISOString().slice(0, 16)}`,
          ],
        );
        const row = em.create(CrmImport, {
          id: importId,
          tenantId: auth.tenantId,
          provider: params.provider,
          source,
          contactListId: list!.id,
        });
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'crm_import.started',
            targetType: 'crm_import',
            targetId: importId,
            after: { provider: params.provider, source },
          },
          req.ip,
        );
        return row;
      });
      const input: CrmImportInput = {
        tenantId: auth.tenantId,
        importId,
        provider: params.provider,
        source,
        contactListId: created.contactListId,
        ...(body.pageSize ? { pageSize: body.pageSize } : {}),
      };
      try {
        await deps.temporal.workflow.start(CRM_IMPORT_WORKFLOW, {
          workflowId: crmImportWorkflowId(importId),
          taskQueue: CRM_QUEUE,
          args: [input],
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        });
      } catch (err) {
        // Nothing half-made stays behind: the import and its empty list go.
        await withTenant(deps.orm, auth.tenantId, (em) =>
          em.execute(`delete from contact_lists where id = ?`, [created.contactListId]),
        );
        throw new ServiceUnavailableError(
          'TEMPORAL_UNAVAILABLE',
          'The import could not be started; try again',
          err,
        );
      }
      return { status: 202, body: toImportView(created) };
    },
  });

  api.route({
    method: 'get',
    path: '/v1/integrations/imports/:id',
    summary: 'A CRM import’s progress: pages read, contacts imported, duplicates, invalid numbers',
    tag: 'integrations',
    access: 'authenticated',
    params: idParams,
    responses: {
      200: { description: 'The import', schema: importView },
      404: { description: 'CRM_IMPORT_NOT_FOUND' },
    },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const row = await em.findOne(CrmImport, { id: params.id });
        if (!row) throw new NotFoundError('CRM import', params.id);
        return { body: toImportView(row) };
      }),
  });
}
