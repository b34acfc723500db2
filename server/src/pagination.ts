import { ApiError } from './errors.js';

/**
 * Keyset pagination for /v1 lists. A cursor is opaque to clients: base64url of a version tag and
 * the sort key of the last row returned. Ordering by a unique key and continuing strictly after it
 * means rows that exist for the whole walk are seen exactly once, whatever is inserted or deleted
 * meanwhile.
 */

const CURSOR_VERSION = 'c1';

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export function encodeCursor(key: string): string {
  return Buffer.from(`${CURSOR_VERSION}:${key}`, 'utf8').toString('base64url');
}

/** @throws ApiError 400 when the cursor was not produced by {@link encodeCursor}. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const decoded = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const prefix = `${CURSOR_VERSION}:`;
  if (!decoded.startsWith(prefix) || decoded.length === prefix.length) {
    throw new ApiError(400, 'validation_failed', 'after: not a cursor returned by this API', {
      details: [{ path: 'after', code: 'invalid_cursor', message: 'not a cursor returned by this API' }],
    });
  }
  return decoded.slice(prefix.length);
}

/** Turns `limit + 1` fetched rows into a page: the extra row only says that there is a next page. */
export function toPage<R, T>(rows: R[], limit: number, key: (row: R) => string, map: (row: R) => T): Page<T> {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return {
    data: pageRows.map(map),
    next_cursor: hasMore && last !== undefined ? encodeCursor(key(last)) : null,
  };
}
