/**
 * Newest-first lists with an opaque cursor (the createdAt and id of the previous page's last row),
 * an optional [from, to) window on createdAt, and `limit` rows per page: the calls list and the
 * audit log page the same way.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { EntityName, FilterQuery } from '@mikro-orm/core';
import { ValidationError } from './errors';

interface NewestFirstRow {
  createdAt: Date;
  id: string;
}

function encodeCursor(row: NewestFirstRow): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const createdAt = new Date(at ?? '');
  if (!id || Number.isNaN(createdAt.getTime())) {
    throw new ValidationError('Invalid request: query.cursor: is not a cursor from a previous page', [
      { path: 'query.cursor', message: 'is not a cursor from a previous page' },
    ]);
  }
  return { createdAt, id };
}

export async function findNewestFirst<T extends NewestFirstRow>(
  em: EntityManager,
  entity: EntityName<T>,
  where: Record<string, unknown>,
  page: { limit: number; cursor?: string; from?: string; to?: string },
): Promise<{ rows: T[]; nextCursor: string | null }> {
  const filter: Record<string, unknown> = { ...where };
  const createdAt: Record<string, Date> = {};
  if (page.from) createdAt.$gte = new Date(page.from);
  if (page.to) createdAt.$lt = new Date(page.to);
  if (Object.keys(createdAt).length) filter.createdAt = createdAt;
  const conditions: Record<string, unknown>[] = [filter];
  if (page.cursor) {
    const c = decodeCursor(page.cursor);
    conditions.push({
      $or: [{ createdAt: { $lt: c.createdAt } }, { createdAt: c.createdAt, id: { $lt: c.id } }],
    });
  }
  const options = { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1 };
  const found = (await em.find(entity, { $and: conditions } as FilterQuery<T>, options)) as T[];
  const rows = found.slice(0, page.limit);
  const last = rows[rows.length - 1];
  return { rows, nextCursor: found.length > page.limit && last ? encodeCursor(last) : null };
}
