/**
 * The one Do-Not-Call question, asked by the api (`GET /v1/do-not-call/check`) and by the dialer
 * right before it places a call: is this number on the tenant's Do-Not-Call list, or is it a
 * contact flagged `do_not_call`? Runs on a tenant-scoped EntityManager (`withTenant`), so row-level
 * security limits both lookups to the current tenant.
 */
import type { EntityManager } from '@mikro-orm/postgresql';

export interface DoNotCallStatus {
  /** Either source blocks the number. */
  doNotCall: boolean;
  /** On the tenant's Do-Not-Call list, with the reason given when it was added. */
  listed: boolean;
  reason: string | null;
  listedAt: Date | null;
  /** The contacts with this number that are flagged `do_not_call` (at most one per tenant). */
  contactIds: string[];
}

export async function doNotCallStatus(em: EntityManager, phoneE164: string): Promise<DoNotCallStatus> {
  const rows = await em.execute<
    { source: 'list' | 'contact'; id: string | null; reason: string | null; at: Date }[]
  >(
    `select 'list' as source, null::uuid as id, reason, created_at as at from do_not_call where phone_e164 = ?
     union all
     select 'contact', id, null, updated_at from contacts where phone_e164 = ? and do_not_call`,
    [phoneE164, phoneE164],
  );
  const listed = rows.find((r) => r.source === 'list');
  const contactIds = rows.filter((r) => r.source === 'contact' && r.id).map((r) => r.id as string);
  return {
    doNotCall: Boolean(listed) || contactIds.length > 0,
    listed: Boolean(listed),
    reason: listed?.reason ?? null,
    listedAt: listed ? new Date(listed.at) : null,
    contactIds,
  };
}

/** True when the tenant must not dial `phoneE164` (its Do-Not-Call list or a flagged contact). */
export async function isDoNotCall(em: EntityManager, phoneE164: string): Promise<boolean> {
  const [row] = await em.execute<{ blocked: boolean }[]>(
    `select exists (select 1 from do_not_call where phone_e164 = ?)
         or exists (select 1 from contacts where phone_e164 = ? and do_not_call) as blocked`,
    [phoneE164, phoneE164],
  );
  return row?.blocked ?? false;
}
