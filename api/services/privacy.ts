/**
 * GDPR for one contact: everything the tenant holds about them as one document (export), and the
 * same data erased in one transaction (erase).
 *
 * Erase deletes the contact row (its list memberships, campaign contacts and campaign attempts go
 * with it, by foreign-key cascade), and keeps the calls to or from the contact — for usage, billing
 * and invoices — with the contact's number replaced by `ERASED`, slots, summary and analysis
 * cleared, every transcript turn's text replaced by `ERASED`, CRM sync errors cleared, and the
 * recording file deleted from disk. Usage records are not touched. A contact flagged Do-Not-Call
 * leaves its number on the tenant's Do-Not-Call list, so erasing never turns an opt-out into
 * permission to call. The audit log is append-only (the database refuses updates) and keeps earlier
 * `contact.*` entries as they were written.
 *
 * Idempotency: the contact row is gone after an erase, so a second erase (or export) of the same
 * id answers 404 CONTACT_NOT_FOUND and changes nothing.
 */
import { rm } from 'node:fs/promises';
import { recordingFile } from './recordings';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  Call,
  CallTurn,
  CampaignAttempt,
  CampaignContact,
  Contact,
  CrmSyncRecord,
  DoNotCallEntry,
} from '../../db/entities';
import { NotFoundError } from '../errors';

/** What replaces an erased number or text. */
export const ERASED = '[erased]';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

async function findContact(em: EntityManager, id: string): Promise<Contact> {
  const contact = await em.findOne(Contact, { id });
  if (!contact) throw new NotFoundError('Contact', id);
  return contact;
}

/** The tenant's calls with this contact: linked to it, or to or from its number. */
async function contactCalls(em: EntityManager, contact: Contact): Promise<Call[]> {
  return em.find(
    Call,
    {
      $or: [{ contactId: contact.id }, { fromNumber: contact.phoneE164 }, { toNumber: contact.phoneE164 }],
    },
    { orderBy: { createdAt: 'asc', id: 'asc' } },
  );
}

export interface ExportCounts {
  lists: number;
  campaignContacts: number;
  campaignAttempts: number;
  calls: number;
  turns: number;
  recordings: number;
  crmSyncRecords: number;
}

export async function exportContact(
  em: EntityManager,
  contactId: string,
): Promise<{ document: Record<string, unknown>; counts: ExportCounts }> {
  const contact = await findContact(em, contactId);
  const lists = await em.execute<{ list_id: string; name: string; created_at: Date }[]>(
    `select m.list_id, l.name, m.created_at from contact_list_members m
       join contact_lists l on l.id = m.list_id
      where m.contact_id = ? order by m.created_at`,
    [contact.id],
  );
  const campaignContacts = await em.execute<
    {
      id: string;
      campaign_id: string;
      campaign_name: string;
      status: string;
      attempts: number;
      last_outcome: string | null;
      next_attempt_at: Date | null;
      created_at: Date;
    }[]
  >(
    `select cc.id, cc.campaign_id, c.name as campaign_name, cc.status, cc.attempts, cc.last_outcome,
            cc.next_attempt_at, cc.created_at
       from campaign_contacts cc join campaigns c on c.id = cc.campaign_id
      where cc.contact_id = ? order by cc.created_at`,
    [contact.id],
  );
  const attempts = await em.find(
    CampaignAttempt,
    { contactId: contact.id },
    { orderBy: { startedAt: 'asc', attempt: 'asc' } },
  );
  const calls = await contactCalls(em, contact);
  const callIds = calls.map((c) => c.id);
  const turns = callIds.length
    ? await em.find(CallTurn, { callId: { $in: callIds } }, { orderBy: { callId: 'asc', seq: 'asc' } })
    : [];
  const crm = callIds.length
    ? await em.find(CrmSyncRecord, { callId: { $in: callIds } }, { orderBy: { createdAt: 'asc' } })
    : [];
  const dnc = await em.findOne(DoNotCallEntry, { phoneE164: contact.phoneE164 });

  const document = {
    exportedAt: new Date().toISOString(),
    contact: {
      id: contact.id,
      phone: contact.phoneE164,
      name: contact.name ?? null,
      email: contact.email ?? null,
      timeZone: contact.timeZone ?? null,
      attributes: contact.attributes,
      doNotCall: contact.doNotCall,
      createdAt: contact.createdAt.toISOString(),
      updatedAt: contact.updatedAt.toISOString(),
    },
    doNotCallList: dnc ? { reason: dnc.reason ?? null, listedAt: dnc.createdAt.toISOString() } : null,
    lists: lists.map((l) => ({ id: l.list_id, name: l.name, addedAt: iso(new Date(l.created_at)) })),
    campaignContacts: campaignContacts.map((cc) => ({
      id: cc.id,
      campaignId: cc.campaign_id,
      campaignName: cc.campaign_name,
      status: cc.status,
      attempts: cc.attempts,
      lastOutcome: cc.last_outcome,
      nextAttemptAt: cc.next_attempt_at ? new Date(cc.next_attempt_at).toISOString() : null,
      createdAt: new Date(cc.created_at).toISOString(),
    })),
    campaignAttempts: attempts.map((a) => ({
      id: a.id,
      campaignId: a.campaignId,
      attempt: a.attempt,
      callId: a.callId ?? null,
      outcome: a.outcome ?? null,
      reason: a.reason ?? null,
      scheduledFor: iso(a.scheduledFor),
      startedAt: iso(a.startedAt),
      endedAt: iso(a.endedAt),
    })),
    calls: calls.map((c) => ({
      id: c.id,
      direction: c.direction,
      channel: c.channel,
      from: c.fromNumber ?? null,
      to: c.toNumber ?? null,
      agentId: c.agentId ?? null,
      campaignId: c.campaignId ?? null,
      status: c.status,
      disposition: c.disposition ?? null,
      startedAt: iso(c.startedAt),
      answeredAt: iso(c.answeredAt),
      endedAt: iso(c.endedAt),
      durationSeconds: c.durationSeconds ?? null,
      endReason: c.endReason ?? null,
      slots: c.slots,
      summary: c.summary ?? null,
      analysis: c.analysis ?? null,
      recording: c.recordingPath
        ? { url: `/v1/calls/${c.id}/recording`, seconds: c.recordingSeconds ?? null }
        : null,
      transcript: turns
        .filter((t) => t.callId === c.id)
        .map((t) => ({
          seq: t.seq,
          role: t.role,
          text: t.text,
          heardText: t.heardText ?? null,
          interrupted: t.interrupted,
          at: t.createdAt.toISOString(),
        })),
      crmSync: crm
        .filter((r) => r.callId === c.id)
        .map((r) => ({
          provider: r.provider,
          status: r.status,
          externalId: r.externalId ?? null,
          contactExternalId: r.contactExternalId ?? null,
          error: r.error ?? null,
          syncedAt: iso(r.syncedAt),
        })),
      createdAt: c.createdAt.toISOString(),
    })),
  };
  return {
    document,
    counts: {
      lists: lists.length,
      campaignContacts: campaignContacts.length,
      campaignAttempts: attempts.length,
      calls: calls.length,
      turns: turns.length,
      recordings: calls.filter((c) => c.recordingPath).length,
      crmSyncRecords: crm.length,
    },
  };
}

export interface EraseResult {
  counts: ExportCounts & { recordingFilesDeleted: number; keptOnDoNotCallList: boolean };
  /** Records in connected CRMs that hold this person: erase them there too. */
  crmRecords: { provider: string; externalId: string | null; contactExternalId: string | null }[];
}

/**
 * Erases the contact's personal data inside the caller's tenant transaction. Recording files are
 * deleted last, still inside it: if one cannot be deleted the transaction rolls back and the erase
 * can simply be retried.
 */
export async function eraseContact(
  em: EntityManager,
  contactId: string,
  recordingsDir: string,
): Promise<EraseResult> {
  const contact = await findContact(em, contactId);
  const phone = contact.phoneE164;
  const [{ count: lists } = { count: 0 }] = await em.execute<{ count: number }[]>(
    'select count(*)::int as count from contact_list_members where contact_id = ?',
    [contact.id],
  );
  const campaignContacts = await em.count(CampaignContact, { contactId: contact.id });
  const campaignAttempts = await em.count(CampaignAttempt, { contactId: contact.id });
  const calls = await contactCalls(em, contact);
  const callIds = calls.map((c) => c.id);

  // An opt-out outlives the contact: its number stays on the Do-Not-Call list.
  let keptOnDoNotCallList = false;
  if (contact.doNotCall) {
    await em.execute(
      `insert into do_not_call (tenant_id, phone_e164, reason) values (?, ?, ?)
       on conflict (tenant_id, phone_e164) do nothing`,
      [contact.tenantId, phone, 'opted out (contact erased)'],
    );
    keptOnDoNotCallList = true;
  }

  const recordings: string[] = [];
  for (const call of calls) {
    const contactSide = call.direction === 'inbound' ? 'fromNumber' : 'toNumber';
    if (call.fromNumber === phone || (call.contactId === contact.id && contactSide === 'fromNumber')) {
      call.fromNumber = ERASED;
    }
    if (call.toNumber === phone || (call.contactId === contact.id && contactSide === 'toNumber')) {
      call.toNumber = ERASED;
    }
    call.slots = {};
    call.summary = null;
    call.analysis = null;
    if (call.recordingPath) recordings.push(call.recordingPath);
    call.recordingPath = null;
    call.contactId = null;
    call.updatedAt = new Date();
  }
  let turns = 0;
  let crm: CrmSyncRecord[] = [];
  if (callIds.length) {
    turns = await em.nativeUpdate(CallTurn, { callId: { $in: callIds } }, { text: ERASED });
    await em.nativeUpdate(
      CallTurn,
      { callId: { $in: callIds }, heardText: { $ne: null } },
      { heardText: ERASED },
    );
    crm = await em.find(CrmSyncRecord, { callId: { $in: callIds } });
    for (const r of crm) r.error = null;
  }
  // Cascades to contact_list_members, campaign_contacts and campaign_attempts; calls keep their rows.
  em.remove(contact);
  await em.flush();

  let recordingFilesDeleted = 0;
  for (const stored of recordings) {
    const file = await recordingFile(recordingsDir, stored);
    if (!file) continue;
    await rm(file, { force: true });
    recordingFilesDeleted += 1;
  }

  return {
    counts: {
      lists,
      campaignContacts,
      campaignAttempts,
      calls: calls.length,
      turns,
      recordings: recordings.length,
      recordingFilesDeleted,
      crmSyncRecords: crm.length,
      keptOnDoNotCallList,
    },
    crmRecords: crm.map((r) => ({
      provider: r.provider,
      externalId: r.externalId ?? null,
      contactExternalId: r.contactExternalId ?? null,
    })),
  };
}
