/**
 * Contacts from a CSV file, streamed: the file is read record by record (never held whole), each
 * row is checked on its own, and valid rows are stored in batches of BATCH_SIZE, one transaction
 * per batch, so a bad row never costs its neighbours their place. The answer reports every row by
 * its line in the file (accepted, duplicate or invalid, with the reason), and exact totals.
 *
 * Used by `POST /v1/contacts/import`, `POST /v1/contact-lists/:id/import`, and by any route that
 * takes a CSV of contacts (a campaign created with its contacts).
 *
 * The CSV reader is our own small RFC 4180 state machine rather than a library parser: the report
 * must name each row by the line it starts on (with CRLF, CR or LF line ends and quoted fields
 * spanning lines), and a malformed row (a stray quote) must cost only that row, which a general
 * parser's error recovery does not promise.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Request } from 'express';
import { isSupportedCountry } from 'libphonenumber-js';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ContactList, Tenant } from '../../db/entities';
import { withTenant } from '../../db/tenant-context';
import { toE164 } from '../../lib/phone';
import { normalizeTimeZone, timeZoneForNumber } from '../../lib/phone-time-zone';
import { AppError, NotFoundError, ValidationError } from '../errors';
import type { Actor } from '../routing';
import { recordAudit } from './audit';

/** Valid rows stored per transaction. */
export const BATCH_SIZE = 500;
/** Up to this many rows the report lists every row; beyond, only the first non-accepted ones. */
export const MAX_REPORTED_ROWS = 1000;
/** The largest CSV body taken. */
export const MAX_CSV_BYTES = 20 * 1024 * 1024;
/** A quoted field longer than this is taken to be a quote that was never closed. */
const MAX_QUOTED_FIELD_CHARS = 10_000;
/** Text read a second time after unclosed quotes, per file; past it, an unclosed quote ends the file. */
const MAX_REREAD_CHARS = 2_000_000;

// ---------------------------------------------------------------------------------------------
// Contact fields, as the API and the CSV both accept them
// ---------------------------------------------------------------------------------------------

/** Keys usable as `{{contact.<key>}}` in an agent's text. */
export const ATTRIBUTE_KEY = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
export const MAX_ATTRIBUTES = 50;
export const MAX_ATTRIBUTE_KEY_LENGTH = 64;
export const MAX_ATTRIBUTE_TEXT_LENGTH = 1000;
export const MAX_NAME_LENGTH = 200;

export type AttributeValue = string | number | boolean;

const emailFormat = z.email();

/** The address in lower case, or undefined when it is not an email address. */
export function normalizeEmail(input: string): string | undefined {
  const email = input.trim().toLowerCase();
  return email.length <= 254 && emailFormat.safeParse(email).success ? email : undefined;
}

/** 'US' for 'us'; undefined for a region libphonenumber does not know. */
export function normalizeRegion(input: string): string | undefined {
  const region = input.trim().toUpperCase();
  return isSupportedCountry(region) ? region : undefined;
}

// ---------------------------------------------------------------------------------------------
// CSV records
// ---------------------------------------------------------------------------------------------

export interface CsvRecord {
  /** 1-based line of the file on which the record starts. */
  line: number;
  fields: string[];
  /** Set when the record's quoting is malformed; `fields` are then a best effort. */
  error?: string;
}

type ReaderState = 'fieldStart' | 'unquoted' | 'quoted' | 'quoteInQuoted';

/**
 * Incremental RFC 4180 reader: `write()` text as it arrives, get back the records it completed.
 * Line ends may be CRLF, LF or CR (inside quoted fields they become `\n`); blank lines yield no
 * record; a quote inside an unquoted field is kept as text. Malformed quoting is reported on the
 * record (`error`) and costs only that record: text after a closing quote spoils its record, and a
 * quote that never closes (by the end of the file, or within MAX_QUOTED_FIELD_CHARS) spoils only
 * the line it opened on: the text after that line is read again as records of its own. Work stays
 * linear: once MAX_REREAD_CHARS have been read twice, a quote never closed spoils the rest of the file.
 */
export class CsvRecordReader {
  private state: ReaderState = 'fieldStart';
  private fields: string[] = [];
  private field = '';
  /** Line the reader is on. */
  private line = 1;
  /** Line the current record started on, or 0 between records. */
  private recordLine = 0;
  private error: string | undefined;
  /** The previous character was a CR already counted as a line end; a following LF belongs to it. */
  private afterCr = false;
  /** Raw text of the current record from its first character, to read again if a quote never closes. */
  private raw = '';
  private startOfInput = true;
  /** After an unclosed quote found on its own line: the rest of that line belongs to the bad record. */
  private skipRestOfLine = false;
  /** Text still to read: a chunk, or a record's text being read again. */
  private readonly queue: string[] = [];
  /** Characters that may still be read a second time (keeps the work linear in the file size). */
  private rereadBudget = MAX_REREAD_CHARS;
  /** Set once a quote was never closed after the recovery budget ran out: the rest is not read. */
  private abandoned = false;

  write(text: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    this.queue.push(text);
    this.drain(out);
    return out;
  }

  /** The last record, when the text did not end with a line end. */
  end(): CsvRecord[] {
    const out: CsvRecord[] = [];
    while (!this.abandoned && this.state === 'quoted') {
      this.recoverUnclosedQuote(out);
      this.drain(out);
    }
    if (this.recordLine && !this.abandoned) {
      // A record ending in a comma has an empty last field.
      if (this.state === 'fieldStart') this.fields.push('');
      this.endRecord(out);
    }
    return out;
  }

  private drain(out: CsvRecord[]): void {
    for (let text = this.queue.shift(); text !== undefined; text = this.queue.shift()) {
      if (!this.abandoned) this.consume(text, out);
    }
  }

  private consume(input: string, out: CsvRecord[]): void {
    let text = input;
    if (this.startOfInput && text.length) {
      this.startOfInput = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let i = 0;
    // Where this text's part of the current record starts (-1: between records).
    let rawFrom = this.recordLine ? 0 : -1;
    const n = text.length;
    while (i < n) {
      const ch = text[i]!;
      if (this.afterCr) {
        this.afterCr = false;
        if (ch === '\n') {
          i += 1;
          continue;
        }
      }
      if (this.skipRestOfLine) {
        if (ch === '\n' || ch === '\r') {
          this.skipRestOfLine = false;
          this.lineEnd(ch);
        }
        i += 1;
        continue;
      }
      if (!this.recordLine) {
        if (ch === '\n' || ch === '\r') {
          // A blank line: no record.
          this.lineEnd(ch);
          i += 1;
          continue;
        }
        this.recordLine = this.line;
        rawFrom = i;
      }
      switch (this.state) {
        case 'fieldStart':
          if (ch === '"') {
            this.state = 'quoted';
            i += 1;
          } else if (ch === ',') {
            this.fields.push('');
            i += 1;
          } else if (ch === '\n' || ch === '\r') {
            // After a comma: the record's last field is empty.
            this.fields.push('');
            this.endRecord(out);
            this.lineEnd(ch);
            i += 1;
            rawFrom = -1;
          } else {
            this.state = 'unquoted';
          }
          break;
        case 'unquoted': {
          let j = i;
          while (j < n && text[j] !== ',' && text[j] !== '\n' && text[j] !== '\r') j += 1;
          this.field += text.slice(i, j);
          i = j;
          if (i < n) {
            const end = text[i]!;
            this.fields.push(this.field);
            this.field = '';
            this.state = 'fieldStart';
            i += 1;
            if (end !== ',') {
              this.endRecord(out);
              this.lineEnd(end);
              rawFrom = -1;
            }
          }
          break;
        }
        case 'quoted': {
          let j = i;
          while (j < n && text[j] !== '"' && text[j] !== '\n' && text[j] !== '\r') j += 1;
          this.field += text.slice(i, j);
          i = j;
          if (i < n) {
            const c = text[i]!;
            i += 1;
            if (c === '"') {
              this.state = 'quoteInQuoted';
            } else {
              this.field += '\n';
              this.lineEnd(c);
            }
          }
          if (this.state === 'quoted' && this.field.length > MAX_QUOTED_FIELD_CHARS) {
            this.raw += text.slice(rawFrom, i);
            this.queue.unshift(text.slice(i));
            this.recoverUnclosedQuote(out);
            return;
          }
          break;
        }
        case 'quoteInQuoted':
          if (ch === '"') {
            this.field += '"';
            this.state = 'quoted';
            i += 1;
          } else if (ch === ',') {
            this.fields.push(this.field);
            this.field = '';
            this.state = 'fieldStart';
            i += 1;
          } else if (ch === '\n' || ch === '\r') {
            this.fields.push(this.field);
            this.field = '';
            this.state = 'fieldStart';
            this.endRecord(out);
            this.lineEnd(ch);
            i += 1;
            rawFrom = -1;
          } else if (this.field.includes('\n')) {
            // A "closing" quote that is not one, after a quoted field ran over lines: the opening
            // quote was a stray one, so only its line is lost.
            this.raw += text.slice(rawFrom, i);
            this.queue.unshift(text.slice(i));
            this.recoverUnclosedQuote(out);
            return;
          } else {
            this.error ??= `line ${this.line}: text after the closing quote of field ${this.fields.length + 1}`;
            this.state = 'unquoted';
          }
          break;
      }
    }
    if (this.recordLine && rawFrom >= 0) this.raw += text.slice(rawFrom);
  }

  private lineEnd(ch: string): void {
    this.line += 1;
    if (ch === '\r') this.afterCr = true;
  }

  private endRecord(out: CsvRecord[]): void {
    if (this.state === 'unquoted' || this.state === 'quoteInQuoted') this.fields.push(this.field);
    const record: CsvRecord = { line: this.recordLine, fields: this.fields };
    if (this.error) record.error = this.error;
    out.push(record);
    this.reset();
  }

  private reset(): void {
    this.fields = [];
    this.field = '';
    this.state = 'fieldStart';
    this.error = undefined;
    this.recordLine = 0;
    this.raw = '';
  }

  /**
   * The current record opened a quote that never closes: report it as malformed on the line it
   * started, and queue the text after that line to be read again from a clean state.
   */
  private recoverUnclosedQuote(out: CsvRecord[]): void {
    const startLine = this.recordLine;
    const firstBreak = this.raw.search(/[\r\n]/);
    const again = firstBreak >= 0 ? this.raw.slice(firstBreak) : '';
    this.reset();
    this.afterCr = false;
    this.rereadBudget -= again.length;
    if (this.rereadBudget < 0) {
      out.push({
        line: startLine,
        fields: [],
        error: `line ${startLine}: a quote opened on this line is never closed; the rest of the file was not read`,
      });
      this.abandoned = true;
      this.queue.length = 0;
      return;
    }
    out.push({
      line: startLine,
      fields: [],
      error: `line ${startLine}: a quote opened on this line is never closed`,
    });
    this.line = startLine;
    // Without a line break yet (one huge quoted field), the rest of its line goes with it.
    if (again) this.queue.unshift(again);
    else this.skipRestOfLine = true;
  }
}

/** The stream ran past the byte limit while being read (batches before that point are stored). */
export class CsvTooLargeError extends AppError {
  constructor(maxBytes: number) {
    super(
      413,
      'PAYLOAD_TOO_LARGE',
      `The CSV exceeds the ${maxBytes} byte limit; the rows stored before that point stay imported`,
    );
  }
}

/** The records of a UTF-8 CSV stream, read as the bytes arrive (a leading BOM is dropped). */
export async function* readCsvRecords(stream: Readable, maxBytes = Infinity): AsyncGenerator<CsvRecord> {
  const reader = new CsvRecordReader();
  const decoder = new StringDecoder('utf8');
  let bytes = 0;
  // The caller decides what becomes of the rest of a stream it stops reading (a request is drained).
  for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    bytes += buffer.length;
    if (bytes > maxBytes) throw new CsvTooLargeError(maxBytes);
    yield* reader.write(decoder.write(buffer));
  }
  yield* reader.write(decoder.end());
  yield* reader.end();
}

// ---------------------------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------------------------

type KnownColumn = 'phone' | 'name' | 'firstName' | 'lastName' | 'email' | 'timeZone' | 'doNotCall';

/** Header names (lower case, spaces and dashes as `_`) that mean a known field, best first. */
const COLUMN_ALIASES: Record<KnownColumn, readonly string[]> = {
  phone: ['phone', 'phone_number', 'mobile', 'number', 'mobile_number', 'telephone'],
  name: ['name', 'full_name'],
  firstName: ['first_name', 'firstname', 'given_name'],
  lastName: ['last_name', 'lastname', 'surname', 'family_name'],
  email: ['email', 'email_address', 'e_mail'],
  timeZone: ['time_zone', 'timezone', 'tz'],
  doNotCall: ['do_not_call', 'donotcall', 'dnc'],
};

export interface CsvColumns {
  /** Number of fields the header has; every row must have as many. */
  width: number;
  known: Partial<Record<KnownColumn, number>>;
  /** Attribute key → column index. */
  attributes: [key: string, index: number][];
}

const headerKey = (name: string) =>
  name
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');

/** `Account #` → `Account`, `2nd line` → `_2nd_line`: a header as an attribute key. */
function attributeKeyOf(header: string): string {
  let key = header
    .trim()
    .replace(/[^A-Za-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (/^[0-9]/.test(key)) key = `_${key}`;
  return key.slice(0, MAX_ATTRIBUTE_KEY_LENGTH);
}

function headerError(message: string, details?: Record<string, unknown>): AppError {
  return new AppError(422, 'CSV_HEADER_INVALID', message, details);
}

/** Maps the header row to the fields; every column it does not know becomes an attribute. */
export function mapColumns(header: string[]): CsvColumns {
  const known: Partial<Record<KnownColumn, number>> = {};
  const normalized = header.map(headerKey);
  for (const [column, aliases] of Object.entries(COLUMN_ALIASES) as [KnownColumn, readonly string[]][]) {
    for (const alias of aliases) {
      const matches = normalized.flatMap((h, i) => (h === alias ? [i] : []));
      if (matches.length > 1) {
        throw headerError(`The header names the column '${header[matches[1]!]!.trim()}' twice`, {
          column: header[matches[1]!]!.trim(),
        });
      }
      if (matches.length === 1) {
        known[column] = matches[0]!;
        break;
      }
    }
  }
  if (known.phone === undefined) {
    throw new AppError(
      422,
      'CSV_PHONE_COLUMN_MISSING',
      `The CSV has no phone column: name one of ${COLUMN_ALIASES.phone.join(', ')} in the header`,
      { header: header.map((h) => h.trim()) },
    );
  }
  const used = new Set<number>(Object.values(known));
  // With a full name column, first and last names are attributes like any other column.
  if (known.name !== undefined) {
    for (const column of ['firstName', 'lastName'] as const) {
      const index = known[column];
      if (index !== undefined) {
        used.delete(index);
        delete known[column];
      }
    }
  }
  const attributes: [string, number][] = [];
  const byKey = new Map<string, number>();
  header.forEach((name, index) => {
    if (used.has(index) || !name.trim()) return;
    const key = attributeKeyOf(name) || `column_${index + 1}`;
    const clash = byKey.get(key);
    if (clash !== undefined) {
      throw headerError(
        `The columns '${header[clash]!.trim()}' and '${name.trim()}' would both be the attribute '${key}'`,
        { attribute: key },
      );
    }
    byKey.set(key, index);
    attributes.push([key, index]);
  });
  if (attributes.length > MAX_ATTRIBUTES) {
    throw headerError(
      `The CSV has ${attributes.length} attribute columns; at most ${MAX_ATTRIBUTES} are kept`,
    );
  }
  return { width: header.length, known, attributes };
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

export interface ContactFields {
  phoneE164: string;
  name: string | null;
  email: string | null;
  timeZone: string | null;
  attributes: Record<string, AttributeValue>;
  doNotCall: boolean;
}

const YES = new Set(['true', 'yes', 'y', '1', 'x']);
const NO = new Set(['false', 'no', 'n', '0', '']);

/** A CSV row as a contact, or the reasons it cannot be one. */
export function contactFromRow(
  fields: string[],
  columns: CsvColumns,
  region: string,
): { contact: ContactFields } | { reason: string; phone?: string } {
  const value = (column: KnownColumn) => {
    const index = columns.known[column];
    return index === undefined ? '' : (fields[index] ?? '').trim();
  };
  const problems: string[] = [];
  const phoneText = value('phone');
  const phoneE164 = phoneText ? toE164(phoneText, region) : undefined;
  if (!phoneText) problems.push('phone: missing');
  else if (!phoneE164) problems.push(`phone: '${phoneText}' is not a valid number for region ${region}`);

  const name =
    columns.known.name !== undefined
      ? value('name')
      : [value('firstName'), value('lastName')].filter(Boolean).join(' ');
  if (name.length > MAX_NAME_LENGTH) problems.push(`name: longer than ${MAX_NAME_LENGTH} characters`);

  const emailText = value('email');
  const email = emailText ? normalizeEmail(emailText) : undefined;
  if (emailText && !email) problems.push(`email: '${emailText}' is not an email`);

  const zoneText = value('timeZone');
  const explicitZone = zoneText ? normalizeTimeZone(zoneText) : undefined;
  if (zoneText && !explicitZone) problems.push(`time_zone: '${zoneText}' is not a time zone`);

  const dncText = value('doNotCall').toLowerCase();
  if (!YES.has(dncText) && !NO.has(dncText)) {
    problems.push(`do_not_call: '${value('doNotCall')}' is not yes/no`);
  }

  const attributes: Record<string, AttributeValue> = {};
  for (const [key, index] of columns.attributes) {
    const text = (fields[index] ?? '').trim();
    if (!text) continue;
    if (text.length > MAX_ATTRIBUTE_TEXT_LENGTH) {
      problems.push(`${key}: longer than ${MAX_ATTRIBUTE_TEXT_LENGTH} characters`);
    }
    attributes[key] = text;
  }

  if (problems.length || !phoneE164) {
    return { reason: problems.join('; '), ...(phoneE164 ? { phone: phoneE164 } : {}) };
  }
  return {
    contact: {
      phoneE164,
      name: name || null,
      email: email ?? null,
      timeZone: explicitZone ?? timeZoneForNumber(phoneE164),
      attributes,
      doNotCall: YES.has(dncText),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The import
// ---------------------------------------------------------------------------------------------

export type ImportRowStatus = 'accepted' | 'duplicate' | 'invalid';

export interface ImportRowReport {
  /** Line of the file the row starts on (the header is line 1). */
  row: number;
  status: ImportRowStatus;
  contactId?: string;
  phone?: string;
  reason?: string;
  /** A dry run (the preview) also shows who the row is and the zone its calls would use. */
  name?: string | null;
  timeZone?: string | null;
}

/** Which header column each field is read from (a dry run reports it for the preview). */
export interface ImportColumnsView {
  phone: string;
  name: string | null;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  timeZone: string | null;
  doNotCall: string | null;
  attributes: { column: string; key: string }[];
}

export interface ImportReport {
  listId: string | null;
  /** The region national numbers were read in. */
  region: string;
  totals: { rows: number; accepted: number; duplicate: number; invalid: number };
  rows: ImportRowReport[];
  /**
   * The file had more than MAX_REPORTED_ROWS rows, so `rows` lists only the first
   * MAX_REPORTED_ROWS rows that were not accepted; `totals` still count every row.
   */
  rowsTruncated: boolean;
  /** Dry runs only. */
  columns?: ImportColumnsView;
}

export interface ContactImportDeps {
  orm: MikroORM;
}

export interface ContactImportInput {
  tenantId: string;
  /** Accepted and duplicate contacts are added to this list. */
  listId: string | null;
  /** The CSV, UTF-8, header row first. */
  stream: Readable;
  /** Region for national numbers; the tenant's default region when absent. */
  region?: string;
  actor: Actor;
  ip?: string;
  maxBytes?: number;
  /**
   * Check the file exactly as the import would and report the same rows, storing nothing (no
   * contact, list membership or audit entry): existing contacts are looked up read-only.
   */
  dryRun?: boolean;
}

type PendingRow =
  | { row: number; kind: 'invalid'; reason: string; phone?: string }
  | { row: number; kind: 'new'; contact: ContactFields }
  | { row: number; kind: 'repeat'; contact: ContactFields; firstRow: number };

/** Collects row reports in file order, keeping the list short for big files. */
class ReportRows {
  readonly rows: ImportRowReport[] = [];
  truncated = false;
  private seen = 0;

  add(entry: ImportRowReport): void {
    this.seen += 1;
    if (this.seen > MAX_REPORTED_ROWS && !this.truncated) {
      this.truncated = true;
      const kept = this.rows.filter((r) => r.status !== 'accepted');
      this.rows.length = 0;
      this.rows.push(...kept);
    }
    if (this.truncated && (entry.status === 'accepted' || this.rows.length >= MAX_REPORTED_ROWS)) return;
    this.rows.push(entry);
  }
}

/** A dry run's batch: which of these numbers are already contacts (nothing is written). */
async function lookUpBatch(
  em: EntityManager,
  contacts: ContactFields[],
): Promise<{ inserted: Map<string, string>; existing: Map<string, string> }> {
  const existing = new Map<string, string>();
  if (contacts.length) {
    const found = await em.execute<{ id: string; phone_e164: string }[]>(
      `select id, phone_e164 from contacts
        where phone_e164 in (select jsonb_array_elements_text(?::jsonb))`,
      [JSON.stringify(contacts.map((c) => c.phoneE164))],
    );
    for (const r of found) existing.set(r.phone_e164, r.id);
  }
  return { inserted: new Map(), existing };
}

function describeColumns(header: string[], columns: CsvColumns): ImportColumnsView {
  const named = (index: number | undefined) => (index === undefined ? null : (header[index] ?? '').trim());
  return {
    phone: named(columns.known.phone) ?? '',
    name: named(columns.known.name),
    firstName: named(columns.known.firstName),
    lastName: named(columns.known.lastName),
    email: named(columns.known.email),
    timeZone: named(columns.known.timeZone),
    doNotCall: named(columns.known.doNotCall),
    attributes: columns.attributes.map(([key, index]) => ({ column: (header[index] ?? '').trim(), key })),
  };
}

/** Stores one batch: new contacts inserted (an existing number is left as it is), all added to the list. */
async function storeBatch(
  em: EntityManager,
  tenantId: string,
  listId: string | null,
  contacts: ContactFields[],
): Promise<{ inserted: Map<string, string>; existing: Map<string, string> }> {
  const inserted = new Map<string, string>();
  const existing = new Map<string, string>();
  if (!contacts.length) return { inserted, existing };
  const rows = contacts.map((c) => ({
    phone_e164: c.phoneE164,
    name: c.name,
    email: c.email,
    time_zone: c.timeZone,
    attributes: c.attributes,
    do_not_call: c.doNotCall,
  }));
  const created = await em.execute<{ id: string; phone_e164: string }[]>(
    `insert into contacts (tenant_id, phone_e164, name, email, time_zone, attributes, do_not_call)
     select ?::uuid, r.phone_e164, r.name, r.email, r.time_zone, coalesce(r.attributes, '{}'::jsonb), r.do_not_call
       from jsonb_to_recordset(?::jsonb)
         as r(phone_e164 text, name text, email text, time_zone text, attributes jsonb, do_not_call boolean)
     on conflict (tenant_id, phone_e164) do nothing
     returning id, phone_e164`,
    [tenantId, JSON.stringify(rows)],
  );
  for (const r of created) inserted.set(r.phone_e164, r.id);
  const missing = contacts.map((c) => c.phoneE164).filter((p) => !inserted.has(p));
  if (missing.length) {
    const found = await em.execute<{ id: string; phone_e164: string }[]>(
      `select id, phone_e164 from contacts
        where phone_e164 in (select jsonb_array_elements_text(?::jsonb))`,
      [JSON.stringify(missing)],
    );
    for (const r of found) existing.set(r.phone_e164, r.id);
  }
  if (listId) {
    const ids = [...inserted.values(), ...existing.values()];
    await em.execute(
      `insert into contact_list_members (tenant_id, list_id, contact_id)
       select ?::uuid, ?::uuid, id::uuid from jsonb_array_elements_text(?::jsonb) as id
       on conflict do nothing`,
      [tenantId, listId, JSON.stringify(ids)],
    );
  }
  return { inserted, existing };
}

/**
 * Imports contacts from a CSV stream into the tenant (and into `listId` when given). Rows are
 * stored in batches, each in its own transaction; the report names every row by its line.
 *
 * Throws (before anything is stored) 404 CONTACT_LIST_NOT_FOUND, 422 CSV_PHONE_COLUMN_MISSING,
 * 422 CSV_HEADER_INVALID, 400 VALIDATION_FAILED for an unknown region; 422 CSV_EMPTY when the file
 * has no data row; 413 PAYLOAD_TOO_LARGE when the stream passes `maxBytes` (the batches stored
 * before that point stay).
 */
export async function importContactsCsv(
  deps: ContactImportDeps,
  input: ContactImportInput,
): Promise<ImportReport> {
  const { tenantId, listId } = input;
  const dryRun = input.dryRun === true;
  const tenantRegion = await withTenant(deps.orm, tenantId, async (em) => {
    if (listId && !(await em.findOne(ContactList, { id: listId }, { fields: ['id'] }))) {
      throw new NotFoundError('Contact list', listId);
    }
    return (await em.findOneOrFail(Tenant, { id: tenantId }, { fields: ['defaultRegion'] })).defaultRegion;
  });
  const region = normalizeRegion(input.region ?? tenantRegion);
  if (!region) {
    throw new ValidationError(`Invalid request: region: '${input.region}' is not a known region`, [
      { path: 'query.region', message: 'must be an ISO 3166 country code' },
    ]);
  }

  const totals = { rows: 0, accepted: 0, duplicate: 0, invalid: 0 };
  const report = new ReportRows();
  /** Phone → the first row that had it and the contact it became. */
  const firstSeen = new Map<string, { row: number; contactId?: string }>();
  let pending: PendingRow[] = [];
  let pendingContacts = 0;
  let flushed = false;

  const flush = async () => {
    const batch = pending;
    pending = [];
    pendingContacts = 0;
    const contacts = batch.flatMap((p) => (p.kind === 'new' ? [p.contact] : []));
    const stored = await withTenant(deps.orm, tenantId, (em) =>
      dryRun ? lookUpBatch(em, contacts) : storeBatch(em, tenantId, listId, contacts),
    );
    flushed = !dryRun;
    for (const p of batch) {
      if (p.kind === 'invalid') {
        totals.invalid += 1;
        report.add({
          row: p.row,
          status: 'invalid',
          ...(p.phone ? { phone: p.phone } : {}),
          reason: p.reason,
        });
      } else if (p.kind === 'new') {
        const phone = p.contact.phoneE164;
        const newId = stored.inserted.get(phone);
        const oldId = stored.existing.get(phone);
        const contactId = newId ?? oldId;
        const first = firstSeen.get(phone);
        if (first) first.contactId = contactId;
        const who = dryRun ? { name: p.contact.name, timeZone: p.contact.timeZone } : {};
        // A dry run inserts nothing: a number that is not a contact yet would be accepted.
        if (newId || (dryRun && !oldId)) {
          totals.accepted += 1;
          report.add({
            row: p.row,
            status: 'accepted',
            ...(newId ? { contactId: newId } : {}),
            phone,
            ...who,
          });
        } else {
          totals.duplicate += 1;
          report.add({
            row: p.row,
            status: 'duplicate',
            ...(oldId ? { contactId: oldId } : {}),
            phone,
            ...who,
            reason: 'already a contact',
          });
        }
      } else {
        totals.duplicate += 1;
        const phone = p.contact.phoneE164;
        const contactId = firstSeen.get(phone)?.contactId;
        report.add({
          row: p.row,
          status: 'duplicate',
          ...(contactId ? { contactId } : {}),
          phone,
          ...(dryRun ? { name: p.contact.name, timeZone: p.contact.timeZone } : {}),
          reason: `same phone as row ${p.firstRow}`,
        });
      }
    }
  };

  /** One audit entry per import, also for one stopped part-way with rows already stored. */
  const auditImport = async (stoppedBy?: string) => {
    if (dryRun) return;
    await withTenant(deps.orm, tenantId, async (em) => {
      recordAudit(
        em,
        { tenantId, actor: input.actor },
        {
          action: 'contacts.imported',
          targetType: listId ? 'contact_list' : 'contact',
          targetId: listId ?? undefined,
          after: { listId, region, totals, ...(stoppedBy ? { stoppedBy } : {}) },
        },
        input.ip,
      );
      if (listId) await em.nativeUpdate(ContactList, { id: listId }, { updatedAt: new Date() });
    });
  };

  let columns: CsvColumns | undefined;
  let header: string[] = [];
  try {
    for await (const record of readCsvRecords(input.stream, input.maxBytes ?? MAX_CSV_BYTES)) {
      if (!columns) {
        if (record.error) throw headerError(`The header row is malformed (${record.error})`);
        if (record.fields.every((f) => !f.trim())) continue;
        header = record.fields;
        columns = mapColumns(record.fields);
        continue;
      }
      const blank = !record.error && record.fields.every((f) => !f.trim());
      if (blank) continue;
      totals.rows += 1;
      if (record.error) {
        pending.push({ row: record.line, kind: 'invalid', reason: `malformed CSV (${record.error})` });
      } else if (record.fields.length !== columns.width) {
        pending.push({
          row: record.line,
          kind: 'invalid',
          reason: `row has ${record.fields.length} fields, header has ${columns.width}`,
        });
      } else {
        const parsed = contactFromRow(record.fields, columns, region);
        if ('reason' in parsed) {
          pending.push({ row: record.line, kind: 'invalid', reason: parsed.reason, phone: parsed.phone });
        } else {
          const phone = parsed.contact.phoneE164;
          const first = firstSeen.get(phone);
          if (first) {
            pending.push({ row: record.line, kind: 'repeat', contact: parsed.contact, firstRow: first.row });
          } else {
            firstSeen.set(phone, { row: record.line });
            pending.push({ row: record.line, kind: 'new', contact: parsed.contact });
            pendingContacts += 1;
          }
        }
      }
      if (pendingContacts >= BATCH_SIZE || pending.length >= BATCH_SIZE * 4) await flush();
    }
    if (!columns || totals.rows === 0) {
      throw new AppError(
        422,
        'CSV_EMPTY',
        columns
          ? 'The CSV has a header row but no data rows'
          : 'The CSV is empty: send a header row and data rows',
      );
    }
    if (pending.length) await flush();
  } catch (err) {
    if (flushed) {
      // Best effort: the error the client must see is the one that stopped the import.
      await auditImport(err instanceof AppError ? err.code : 'INTERNAL_ERROR').catch(() => undefined);
    }
    throw err;
  }
  await auditImport();
  return {
    listId,
    region,
    totals,
    rows: report.rows,
    rowsTruncated: report.truncated,
    ...(dryRun ? { columns: describeColumns(header, columns) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP upload
// ---------------------------------------------------------------------------------------------

const CSV_MEDIA_TYPES = new Set(['text/csv', 'application/csv', 'text/plain', 'application/vnd.ms-excel']);

/**
 * The request body as a CSV stream, after checking what can be checked before reading it: media
 * type (text/csv), charset (UTF-8), no content encoding, and a declared length within the limit.
 */
export function csvUploadStream(req: Request, maxBytes = MAX_CSV_BYTES): Readable {
  const contentType = req.headers['content-type'] ?? '';
  const [mediaType = '', ...params] = contentType.split(';').map((p) => p.trim().toLowerCase());
  if (!CSV_MEDIA_TYPES.has(mediaType)) {
    throw new AppError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `Send the CSV as the raw request body with Content-Type: text/csv (got '${contentType || 'none'}')`,
    );
  }
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length);
  if (charset && !['utf-8', 'utf8', 'us-ascii'].includes(charset.replace(/"/g, ''))) {
    throw new AppError(415, 'UNSUPPORTED_ENCODING', `The CSV must be UTF-8 (got charset ${charset})`);
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') {
    throw new AppError(415, 'UNSUPPORTED_ENCODING', `Content-Encoding ${encoding} is not accepted for a CSV`);
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new AppError(413, 'PAYLOAD_TOO_LARGE', `The CSV exceeds the ${maxBytes} byte limit`);
  }
  return req;
}
