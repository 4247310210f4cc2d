/**
 * Contacts, contact lists and CSV imports. A contact is one phone number of the tenant (unique per
 * tenant, stored as E.164 read in the tenant's default region or a `region` given), with a name,
 * an email, the time zone its calling windows are read in (given, or derived from the number), a
 * Do-Not-Call flag and custom attributes agents quote as `{{contact.<key>}}`. Lists group contacts
 * for campaigns. Every role reads; owners, admins and campaign managers write.
 */
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { Contact, ContactList, Tenant, type Role } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { toE164 } from '../../lib/phone';
import { normalizeTimeZone, timeZoneForNumber } from '../../lib/phone-time-zone';
import type { ApiDeps } from '../deps';
import { AppError, ConflictError, NotFoundError, ValidationError } from '../errors';
import type { ApiRouter, AuthContext } from '../routing';
import { emailSchema, idParams } from '../schemas';
import { recordAudit } from '../services/audit';
import {
  ATTRIBUTE_KEY,
  MAX_ATTRIBUTE_KEY_LENGTH,
  MAX_ATTRIBUTE_TEXT_LENGTH,
  MAX_ATTRIBUTES,
  MAX_CSV_BYTES,
  MAX_NAME_LENGTH,
  MAX_REPORTED_ROWS,
  CsvTooLargeError,
  csvUploadStream,
  importContactsCsv,
  normalizeRegion,
  type AttributeValue,
} from '../services/contact-import';

export const CONTACT_WRITERS = ['owner', 'admin', 'campaign_manager'] as const satisfies readonly Role[];

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

export const regionSchema = z
  .string()
  .transform((value, ctx) => {
    const region = normalizeRegion(value);
    if (!region) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be an ISO 3166 country code with a phone numbering plan',
      });
      return z.NEVER;
    }
    return region;
  })
  .meta({
    description:
      "ISO 3166 country whose conventions national numbers follow; the tenant's default region when absent",
  });

const timeZoneSchema = z
  .string()
  .transform((value, ctx) => {
    const zone = normalizeTimeZone(value);
    if (!zone) {
      ctx.addIssue({ code: 'custom', message: `'${value}' is not an IANA time zone (e.g. America/Chicago)` });
      return z.NEVER;
    }
    return zone;
  })
  .nullable()
  .optional()
  .meta({ description: 'IANA time zone; null or absent: derived from the phone number' });

const nameSchema = z
  .string()
  .trim()
  .max(MAX_NAME_LENGTH)
  .transform((n) => n || null)
  .nullable()
  .optional();

const attributeKey = z
  .string()
  .max(MAX_ATTRIBUTE_KEY_LENGTH)
  .regex(ATTRIBUTE_KEY, 'must start with a letter or _ and hold only letters, digits and _');
const attributeValue = z.union([z.string().max(MAX_ATTRIBUTE_TEXT_LENGTH), z.number().finite(), z.boolean()]);
const tooManyAttributes = (a: Record<string, unknown>) => Object.keys(a).length <= MAX_ATTRIBUTES;

const attributesSchema = z
  .record(attributeKey, attributeValue)
  .refine(tooManyAttributes, `at most ${MAX_ATTRIBUTES} attributes`)
  .meta({ description: 'Custom fields, usable as {{contact.<key>}} in agent text' });

const attributesPatchSchema = z
  .record(attributeKey, attributeValue.nullable())
  .meta({ description: 'Merged into the attributes; a key set to null is removed' });

export const contactView = z.object({
  id: z.string(),
  phone: z.string().meta({ description: 'E.164' }),
  name: z.string().nullable(),
  email: z.string().nullable(),
  timeZone: z.string().nullable(),
  attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  doNotCall: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const contactDetailView = contactView.extend({
  listIds: z.array(z.string()).meta({ description: 'The lists the contact belongs to' }),
});

export const contactListView = z.object({
  id: z.string(),
  name: z.string(),
  memberCount: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const importReportView = z.object({
  listId: z.string().nullable(),
  region: z.string(),
  totals: z.object({
    rows: z.number().int(),
    accepted: z.number().int(),
    duplicate: z.number().int(),
    invalid: z.number().int(),
  }),
  rows: z.array(
    z.object({
      row: z
        .number()
        .int()
        .meta({ description: 'Line the row starts on in the file (the header is line 1)' }),
      status: z.enum(['accepted', 'duplicate', 'invalid']),
      contactId: z.string().optional(),
      phone: z.string().optional(),
      reason: z.string().optional(),
    }),
  ),
  rowsTruncated: z.boolean().meta({
    description: `More than ${MAX_REPORTED_ROWS} rows: \`rows\` lists only the first ${MAX_REPORTED_ROWS} that were not accepted`,
  }),
});

const previewRowView = z.object({
  row: z.number().int().meta({ description: 'Line the row starts on in the file (the header is line 1)' }),
  status: z
    .enum(['accepted', 'duplicate', 'invalid'])
    .meta({ description: 'What the import would make of the row' }),
  contactId: z.string().optional().meta({ description: 'A duplicate of an existing contact: its id' }),
  phone: z.string().optional().meta({ description: 'E.164, when the number is valid' }),
  name: z.string().nullable().optional(),
  timeZone: z
    .string()
    .nullable()
    .optional()
    .meta({ description: 'The zone its calling windows would be read in (given, or from the number)' }),
  reason: z
    .string()
    .optional()
    .meta({ description: 'Why the row is invalid or a duplicate, as the import says it' }),
});

export const importPreviewView = z.object({
  listId: z.null(),
  region: z.string(),
  totals: importReportView.shape.totals,
  rows: z.array(previewRowView),
  rowsTruncated: importReportView.shape.rowsTruncated,
  columns: z
    .object({
      phone: z.string(),
      name: z.string().nullable(),
      firstName: z.string().nullable(),
      lastName: z.string().nullable(),
      email: z.string().nullable(),
      timeZone: z.string().nullable(),
      doNotCall: z.string().nullable(),
      attributes: z.array(z.object({ column: z.string(), key: z.string() })),
    })
    .meta({ description: 'The header columns each field is read from; other columns become attributes' }),
});
export type ImportPreview = z.infer<typeof importPreviewView>;

export function toContactView(c: Contact): z.infer<typeof contactView> {
  return {
    id: c.id,
    phone: c.phoneE164,
    name: c.name ?? null,
    email: c.email ?? null,
    timeZone: c.timeZone ?? null,
    attributes: c.attributes as Record<string, AttributeValue>,
    doNotCall: c.doNotCall,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

const snapshot = (c: Contact) => ({
  phone: c.phoneE164,
  name: c.name ?? null,
  email: c.email ?? null,
  timeZone: c.timeZone ?? null,
  attributes: c.attributes,
  doNotCall: c.doNotCall,
});

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async function tenantRegion(em: EntityManager, tenantId: string): Promise<string> {
  return (await em.findOneOrFail(Tenant, { id: tenantId }, { fields: ['defaultRegion'] })).defaultRegion;
}

/** The number as E.164, or 422 PHONE_NUMBER_INVALID naming what was typed. */
export function phoneOrThrow(input: string, region: string, path: string): string {
  const e164 = toE164(input, region);
  if (!e164) {
    const message = `'${input}' is not a valid phone number for region ${region} (use +<country code> for other countries)`;
    throw new AppError(422, 'PHONE_NUMBER_INVALID', message, [{ path, message }]);
  }
  return e164;
}

async function findContact(em: EntityManager, id: string): Promise<Contact> {
  const contact = await em.findOne(Contact, { id });
  if (!contact) throw new NotFoundError('Contact', id);
  return contact;
}

async function findList(em: EntityManager, id: string): Promise<ContactList> {
  const list = await em.findOne(ContactList, { id });
  if (!list) throw new NotFoundError('Contact list', id);
  return list;
}

function phoneTaken(phone: string, contactId?: string): ConflictError {
  return new ConflictError('CONTACT_PHONE_TAKEN', `${phone} is already a contact`, {
    phone,
    ...(contactId ? { contactId } : {}),
  });
}

/** Flushes, turning the unique (tenant, phone) index's refusal into 409 CONTACT_PHONE_TAKEN. */
async function flushContact(em: EntityManager, contact: Contact): Promise<void> {
  try {
    await em.flush();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw phoneTaken(contact.phoneE164);
    throw err;
  }
}

async function memberCounts(em: EntityManager, listIds: string[]): Promise<Map<string, number>> {
  if (!listIds.length) return new Map();
  const rows = await em.execute<{ list_id: string; count: string }[]>(
    `select list_id, count(*) as count from contact_list_members
      where list_id in (select jsonb_array_elements_text(?::jsonb)::uuid) group by list_id`,
    [JSON.stringify(listIds)],
  );
  return new Map(rows.map((r) => [r.list_id, Number(r.count)]));
}

function toListView(list: ContactList, memberCount: number): z.infer<typeof contactListView> {
  return {
    id: list.id,
    name: list.name,
    memberCount,
    createdAt: list.createdAt.toISOString(),
    updatedAt: list.updatedAt.toISOString(),
  };
}

/**
 * Opaque keyset cursor: the created_at (as PostgreSQL prints it, to the microsecond) and the
 * tie-breaking key of the last row of the previous page. Rows written in one transaction (an import
 * batch) share a created_at, and a JavaScript Date would round it to the millisecond.
 */
export function encodeKeysetCursor(createdAtText: string, key: string): string {
  return Buffer.from(`${createdAtText}|${key}`).toString('base64url');
}

const PG_TIMESTAMPTZ = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2}){0,2}$/;

export function decodeKeysetCursor(
  cursor: string,
  key: (k: string) => boolean,
): { createdAt: string; key: string } {
  const text = Buffer.from(cursor, 'base64url').toString();
  const split = text.lastIndexOf('|');
  const createdAt = text.slice(0, Math.max(split, 0));
  const last = text.slice(split + 1);
  if (split < 0 || !PG_TIMESTAMPTZ.test(createdAt) || !key(last)) {
    throw new ValidationError('Invalid request: query.cursor: is not a cursor from a previous page', [
      { path: 'query.cursor', message: 'is not a cursor from a previous page' },
    ]);
  }
  return { createdAt, key: last };
}

const isUuid = (id: string) => z.uuid().safeParse(id).success;

const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Streams the request body into the import. A request it stops reading early is drained so the
 * error answer reaches the client, except one that ran past the size limit without declaring its
 * length: that connection is closed rather than read on.
 */
async function runImport(
  deps: ApiDeps,
  auth: AuthContext,
  req: Request,
  res: Response,
  listId: string | null,
  region: string | undefined,
) {
  try {
    const stream = csvUploadStream(req);
    const report = await importContactsCsv(deps, {
      tenantId: auth.tenantId,
      listId,
      stream,
      region,
      actor: auth.actor,
      ip: req.ip,
    });
    return { body: report };
  } catch (err) {
    if (err instanceof CsvTooLargeError) res.setHeader('connection', 'close');
    else if (!req.readableEnded) req.resume();
    throw err;
  }
}

const importResponses = {
  200: { description: 'Row-by-row report', schema: importReportView },
  400: { description: 'VALIDATION_FAILED (region)' },
  404: { description: 'CONTACT_LIST_NOT_FOUND' },
  413: { description: `PAYLOAD_TOO_LARGE: more than ${MAX_CSV_BYTES} bytes` },
  415: {
    description: 'UNSUPPORTED_MEDIA_TYPE (send Content-Type: text/csv) or UNSUPPORTED_ENCODING (UTF-8 only)',
  },
  422: { description: 'CSV_EMPTY, CSV_PHONE_COLUMN_MISSING or CSV_HEADER_INVALID: nothing was stored' },
};

const IMPORT_PATHS = ['/v1/contacts/import', '/v1/contact-lists/{id}/import', '/v1/contacts/import/preview'];

/**
 * The import routes take a raw `text/csv` body, which the route declarations (JSON bodies only)
 * cannot describe: this adds it to the OpenAPI document.
 */
export function documentContactImports(doc: { paths: Record<string, Record<string, unknown>> }): void {
  for (const path of IMPORT_PATHS) {
    const operation = doc.paths[path]?.post as Record<string, unknown> | undefined;
    if (!operation) continue;
    operation.requestBody = {
      required: true,
      description: `UTF-8 CSV, at most ${MAX_CSV_BYTES} bytes, header row first. Columns (any case): phone (or phone_number, number, mobile; required), name (or first_name + last_name), email, time_zone (or timezone), do_not_call (yes/no); every other column becomes an attribute. ${path.endsWith('/preview') ? 'Nothing is stored' : 'Valid rows are stored in batches'}; each row is reported by its line in the file.`,
      content: {
        'text/csv': {
          schema: { type: 'string' },
          example: 'phone,name,email,time_zone,plan\n+14155550100,Ada Lovelace,ada@example.com,,gold\n',
        },
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

export function registerContactRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/contacts',
    summary:
      'List contacts, newest first, with search (name, email, phone digits), a list filter and cursor pagination',
    tag: 'contacts',
    access: 'authenticated',
    query: z.object({
      search: z.string().trim().max(200).optional(),
      listId: z.uuid().optional().meta({ description: 'Only the members of this list' }),
      limit: z.coerce.number().int().min(1).max(200).default(50),
      cursor: z.string().max(200).optional(),
    }),
    responses: {
      200: {
        description: 'A page of contacts',
        schema: z.object({ data: z.array(contactView), nextCursor: z.string().nullable() }),
      },
      404: { description: 'CONTACT_LIST_NOT_FOUND' },
    },
    handler: async ({ auth, query }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const where: string[] = [];
        const params: unknown[] = [];
        if (query.listId) {
          await findList(em, query.listId);
          where.push(
            'exists (select 1 from contact_list_members m where m.contact_id = c.id and m.list_id = ?)',
          );
          params.push(query.listId);
        }
        if (query.search) {
          const text = likePattern(query.search);
          const digits = query.search.replace(/\D/g, '');
          const or = ['c.name ilike ?', 'c.email ilike ?'];
          params.push(text, text);
          if (digits.length >= 3) {
            or.push('c.phone_e164 like ?');
            params.push(likePattern(digits));
          }
          where.push(`(${or.join(' or ')})`);
        }
        if (query.cursor) {
          const c = decodeKeysetCursor(query.cursor, isUuid);
          where.push('(c.created_at, c.id) < (?::timestamptz, ?::uuid)');
          params.push(c.createdAt, c.key);
        }
        const rows = await em.execute<(Record<string, unknown> & { cursor_at: string })[]>(
          `select c.*, c.created_at::text as cursor_at from contacts c
            ${where.length ? `where ${where.join(' and ')}` : ''}
            order by c.created_at desc, c.id desc limit ?`,
          [...params, query.limit + 1],
        );
        const page = rows.slice(0, query.limit);
        const last = page[page.length - 1];
        const nextCursor =
          rows.length > query.limit && last ? encodeKeysetCursor(last.cursor_at, String(last.id)) : null;
        return { body: { data: page.map((row) => toContactView(em.map(Contact, row))), nextCursor } };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/contacts',
    summary: "Create a contact (phone in any common format, read in the tenant's default region or `region`)",
    tag: 'contacts',
    access: CONTACT_WRITERS,
    body: z.object({
      phone: z.string().trim().min(1, 'must not be empty').max(64),
      region: regionSchema.optional(),
      name: nameSchema,
      email: emailSchema.nullable().optional(),
      timeZone: timeZoneSchema,
      attributes: attributesSchema.optional(),
      doNotCall: z.boolean().optional(),
    }),
    responses: {
      201: { description: 'Created', schema: contactView },
      400: { description: 'VALIDATION_FAILED: details name the field (email, timeZone, attributes, region)' },
      409: { description: 'CONTACT_PHONE_TAKEN: details hold the existing contactId' },
      422: { description: 'PHONE_NUMBER_INVALID' },
    },
    handler: async ({ auth, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const region = body.region ?? (await tenantRegion(em, auth.tenantId));
        const phone = phoneOrThrow(body.phone, region, 'body.phone');
        const existing = await em.findOne(Contact, { phoneE164: phone }, { fields: ['id'] });
        if (existing) throw phoneTaken(phone, existing.id);
        const contact = em.create(Contact, {
          tenantId: auth.tenantId,
          phoneE164: phone,
          name: body.name ?? null,
          email: body.email ?? null,
          timeZone: body.timeZone ?? timeZoneForNumber(phone),
          attributes: body.attributes ?? {},
          doNotCall: body.doNotCall ?? false,
        });
        await flushContact(em, contact);
        recordAudit(
          em,
          auth,
          {
            action: 'contact.created',
            targetType: 'contact',
            targetId: contact.id,
            after: snapshot(contact),
          },
          req.ip,
        );
        return { status: 201, body: toContactView(contact) };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/contacts/import',
    summary: 'Import contacts from a CSV body (text/csv), not into any list',
    tag: 'contacts',
    access: CONTACT_WRITERS,
    query: z.object({ region: regionSchema.optional() }),
    responses: importResponses,
    handler: async ({ auth, query, req, res }) => runImport(deps, auth, req, res, null, query.region),
  });

  api.route({
    method: 'post',
    path: '/v1/contacts/import/preview',
    summary:
      'Check a CSV body (text/csv) as the import would, storing nothing: the same row-by-row report (each row by its line, invalid ones with the reason) and totals, plus the columns read',
    tag: 'contacts',
    access: CONTACT_WRITERS,
    query: z.object({ region: regionSchema.optional() }),
    responses: {
      ...importResponses,
      200: { description: 'Row-by-row report of what the import would do', schema: importPreviewView },
      422: { description: 'CSV_EMPTY, CSV_PHONE_COLUMN_MISSING or CSV_HEADER_INVALID, as the import' },
    },
    handler: async ({ auth, query, req, res }) => {
      try {
        const stream = csvUploadStream(req);
        return {
          body: await importContactsCsv(deps, {
            tenantId: auth.tenantId,
            listId: null,
            stream,
            region: query.region,
            actor: auth.actor,
            dryRun: true,
          }),
        };
      } catch (err) {
        if (err instanceof CsvTooLargeError) res.setHeader('connection', 'close');
        else if (!req.readableEnded) req.resume();
        throw err;
      }
    },
  });

  api.route({
    method: 'get',
    path: '/v1/contacts/:id',
    summary: 'Get one contact, with the lists it belongs to',
    tag: 'contacts',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'The contact', schema: contactDetailView } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const contact = await findContact(em, params.id);
        const lists = await em.execute<{ list_id: string }[]>(
          'select list_id from contact_list_members where contact_id = ? order by created_at',
          [contact.id],
        );
        return { body: { ...toContactView(contact), listIds: lists.map((l) => l.list_id) } };
      }),
  });

  api.route({
    method: 'patch',
    path: '/v1/contacts/:id',
    summary:
      'Change a contact. A new phone re-derives a time zone that was derived; timeZone null derives it again; attributes merge (null removes a key)',
    tag: 'contacts',
    access: CONTACT_WRITERS,
    params: idParams,
    body: z.object({
      phone: z.string().trim().min(1, 'must not be empty').max(64).optional(),
      region: regionSchema.optional(),
      name: nameSchema,
      email: emailSchema.nullable().optional(),
      timeZone: timeZoneSchema,
      attributes: attributesPatchSchema.optional(),
      doNotCall: z.boolean().optional(),
    }),
    responses: {
      200: { description: 'Updated', schema: contactView },
      400: { description: 'VALIDATION_FAILED: details name the field' },
      404: { description: 'CONTACT_NOT_FOUND' },
      409: { description: 'CONTACT_PHONE_TAKEN' },
      422: { description: 'PHONE_NUMBER_INVALID' },
    },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const contact = await findContact(em, params.id);
        const before = snapshot(contact);
        if (body.phone !== undefined) {
          const region = body.region ?? (await tenantRegion(em, auth.tenantId));
          const phone = phoneOrThrow(body.phone, region, 'body.phone');
          if (phone !== contact.phoneE164) {
            const other = await em.findOne(Contact, { phoneE164: phone }, { fields: ['id'] });
            if (other) throw phoneTaken(phone, other.id);
            // A zone that was derived from the old number follows the number.
            const derived = contact.timeZone === timeZoneForNumber(contact.phoneE164);
            contact.phoneE164 = phone;
            if (derived && body.timeZone === undefined) contact.timeZone = timeZoneForNumber(phone);
          }
        }
        if (body.timeZone !== undefined)
          contact.timeZone = body.timeZone ?? timeZoneForNumber(contact.phoneE164);
        if (body.name !== undefined) contact.name = body.name;
        if (body.email !== undefined) contact.email = body.email;
        if (body.doNotCall !== undefined) contact.doNotCall = body.doNotCall;
        if (body.attributes) {
          const merged: Record<string, unknown> = { ...contact.attributes };
          for (const [key, value] of Object.entries(body.attributes)) {
            if (value === null) delete merged[key];
            else merged[key] = value;
          }
          if (Object.keys(merged).length > MAX_ATTRIBUTES) {
            throw new ValidationError(
              `Invalid request: body.attributes: at most ${MAX_ATTRIBUTES} attributes`,
              [{ path: 'body.attributes', message: `at most ${MAX_ATTRIBUTES} attributes` }],
            );
          }
          contact.attributes = merged;
        }
        contact.updatedAt = new Date();
        await flushContact(em, contact);
        recordAudit(
          em,
          auth,
          {
            action: 'contact.updated',
            targetType: 'contact',
            targetId: contact.id,
            before,
            after: snapshot(contact),
          },
          req.ip,
        );
        return { body: toContactView(contact) };
      }),
  });

  api.route({
    method: 'delete',
    path: '/v1/contacts/:id',
    summary: 'Delete a contact: it leaves its lists and campaigns; its calls stay, unlinked',
    tag: 'contacts',
    access: CONTACT_WRITERS,
    params: idParams,
    responses: { 204: { description: 'Deleted' }, 404: { description: 'CONTACT_NOT_FOUND' } },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const contact = await findContact(em, params.id);
        const before = snapshot(contact);
        em.remove(contact);
        await em.flush();
        recordAudit(
          em,
          auth,
          { action: 'contact.deleted', targetType: 'contact', targetId: contact.id, before },
          req.ip,
        );
        return { status: 204 };
      }),
  });

  registerContactListRoutes(api, deps);
}

const listNameSchema = z.string().trim().min(1, 'must not be empty').max(200);
const contactIdsBody = z.object({
  contactIds: z.array(z.uuid('must be a UUID')).min(1).max(1000),
});

function registerContactListRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.route({
    method: 'get',
    path: '/v1/contact-lists',
    summary: 'List the contact lists, newest first, with their member counts',
    tag: 'contact-lists',
    access: 'authenticated',
    responses: {
      200: { description: 'Contact lists', schema: z.object({ data: z.array(contactListView) }) },
    },
    handler: async ({ auth }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const lists = await em.find(ContactList, {}, { orderBy: { createdAt: 'desc', id: 'desc' } });
        const counts = await memberCounts(
          em,
          lists.map((l) => l.id),
        );
        return { body: { data: lists.map((l) => toListView(l, counts.get(l.id) ?? 0)) } };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/contact-lists',
    summary: 'Create an empty contact list',
    tag: 'contact-lists',
    access: CONTACT_WRITERS,
    body: z.object({ name: listNameSchema }),
    responses: { 201: { description: 'Created', schema: contactListView } },
    handler: async ({ auth, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const list = em.create(ContactList, { tenantId: auth.tenantId, name: body.name });
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'contact_list.created',
            targetType: 'contact_list',
            targetId: list.id,
            after: { name: list.name },
          },
          req.ip,
        );
        return { status: 201, body: toListView(list, 0) };
      }),
  });

  api.route({
    method: 'get',
    path: '/v1/contact-lists/:id',
    summary: 'Get one contact list with its member count (its members: GET /v1/contacts?listId=)',
    tag: 'contact-lists',
    access: 'authenticated',
    params: idParams,
    responses: { 200: { description: 'The list', schema: contactListView } },
    handler: async ({ auth, params }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const list = await findList(em, params.id);
        const counts = await memberCounts(em, [list.id]);
        return { body: toListView(list, counts.get(list.id) ?? 0) };
      }),
  });

  api.route({
    method: 'patch',
    path: '/v1/contact-lists/:id',
    summary: 'Rename a contact list',
    tag: 'contact-lists',
    access: CONTACT_WRITERS,
    params: idParams,
    body: z.object({ name: listNameSchema }),
    responses: {
      200: { description: 'Renamed', schema: contactListView },
      404: { description: 'CONTACT_LIST_NOT_FOUND' },
    },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const list = await findList(em, params.id);
        const before = { name: list.name };
        list.name = body.name;
        list.updatedAt = new Date();
        await em.flush();
        recordAudit(
          em,
          auth,
          {
            action: 'contact_list.renamed',
            targetType: 'contact_list',
            targetId: list.id,
            before,
            after: { name: list.name },
          },
          req.ip,
        );
        const counts = await memberCounts(em, [list.id]);
        return { body: toListView(list, counts.get(list.id) ?? 0) };
      }),
  });

  api.route({
    method: 'delete',
    path: '/v1/contact-lists/:id',
    summary: 'Delete a contact list; its contacts stay',
    tag: 'contact-lists',
    access: CONTACT_WRITERS,
    params: idParams,
    responses: { 204: { description: 'Deleted' }, 404: { description: 'CONTACT_LIST_NOT_FOUND' } },
    handler: async ({ auth, params, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const list = await findList(em, params.id);
        const before = { name: list.name };
        em.remove(list);
        await em.flush();
        recordAudit(
          em,
          auth,
          { action: 'contact_list.deleted', targetType: 'contact_list', targetId: list.id, before },
          req.ip,
        );
        return { status: 204 };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/contact-lists/:id/members',
    summary: 'Add contacts to a list by id (contacts already in it are left as they are)',
    tag: 'contact-lists',
    access: CONTACT_WRITERS,
    params: idParams,
    body: contactIdsBody,
    responses: {
      200: {
        description: 'Added',
        schema: z.object({
          added: z.number().int(),
          alreadyMembers: z.number().int(),
          memberCount: z.number().int(),
        }),
      },
      404: {
        description: 'CONTACT_LIST_NOT_FOUND, or CONTACT_NOT_FOUND with details.contactIds (nothing added)',
      },
    },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const list = await findList(em, params.id);
        const ids = [...new Set(body.contactIds)];
        const found = await em.find(Contact, { id: { $in: ids } }, { fields: ['id'] });
        const known = new Set(found.map((c) => c.id));
        const missing = ids.filter((id) => !known.has(id));
        if (missing.length) {
          throw new AppError(404, 'CONTACT_NOT_FOUND', `${missing.length} of the contacts were not found`, {
            contactIds: missing,
          });
        }
        const added = await em.execute<{ contact_id: string }[]>(
          `insert into contact_list_members (tenant_id, list_id, contact_id)
           select ?::uuid, ?::uuid, id::uuid from jsonb_array_elements_text(?::jsonb) as id
           on conflict do nothing returning contact_id`,
          [auth.tenantId, list.id, JSON.stringify(ids)],
        );
        recordAudit(
          em,
          auth,
          {
            action: 'contact_list.members_added',
            targetType: 'contact_list',
            targetId: list.id,
            after: { contactIds: added.map((a) => a.contact_id) },
          },
          req.ip,
        );
        const counts = await memberCounts(em, [list.id]);
        return {
          body: {
            added: added.length,
            alreadyMembers: ids.length - added.length,
            memberCount: counts.get(list.id) ?? 0,
          },
        };
      }),
  });

  api.route({
    method: 'delete',
    path: '/v1/contact-lists/:id/members',
    summary: 'Remove contacts from a list by id (the contacts stay; ids not in the list are ignored)',
    tag: 'contact-lists',
    access: CONTACT_WRITERS,
    params: idParams,
    body: contactIdsBody,
    responses: {
      200: {
        description: 'Removed',
        schema: z.object({ removed: z.number().int(), memberCount: z.number().int() }),
      },
      404: { description: 'CONTACT_LIST_NOT_FOUND' },
    },
    handler: async ({ auth, params, body, req }) =>
      withTenant(deps.orm, auth.tenantId, async (em) => {
        const list = await findList(em, params.id);
        const removed = await em.execute<{ contact_id: string }[]>(
          `delete from contact_list_members
            where list_id = ? and contact_id in (select jsonb_array_elements_text(?::jsonb)::uuid)
           returning contact_id`,
          [list.id, JSON.stringify([...new Set(body.contactIds)])],
        );
        recordAudit(
          em,
          auth,
          {
            action: 'contact_list.members_removed',
            targetType: 'contact_list',
            targetId: list.id,
            before: { contactIds: removed.map((r) => r.contact_id) },
          },
          req.ip,
        );
        const counts = await memberCounts(em, [list.id]);
        return { body: { removed: removed.length, memberCount: counts.get(list.id) ?? 0 } };
      }),
  });

  api.route({
    method: 'post',
    path: '/v1/contact-lists/:id/import',
    summary:
      'Import contacts from a CSV body (text/csv) into the list; contacts already known join it unchanged',
    tag: 'contact-lists',
    access: CONTACT_WRITERS,
    params: idParams,
    query: z.object({ region: regionSchema.optional() }),
    responses: importResponses,
    handler: async ({ auth, params, query, req, res }) =>
      runImport(deps, auth, req, res, params.id, query.region),
  });
}
