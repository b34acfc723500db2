import { sql } from 'kysely';
import type { Context } from '../../context.js';
import type { ListQuery } from '../../directory/scim-users.js';
import type { ScimCall } from './call.js';

/**
 * Remembers, per connection and query, the id that ends each page served in the default order, so
 * that the request for the next page (startIndex = previous startIndex + count) continues after it
 * instead of skipping rows with OFFSET. Continuing after the last id also keeps a walk stable while
 * the directory changes: with OFFSET, a user deleted from an earlier page would make the next page
 * skip one. A request without a remembered cursor uses OFFSET.
 *
 * On PostgreSQL the cursors live in an unlogged table, so that the next page continues after the
 * previous one whichever server process serves it (an IdP's walk is spread over all of them); the
 * page's own statement reads the cursor it continues after and writes the one it ends at, so a
 * page stays one round trip (see listPage). On the embedded database (one process) they are kept
 * in this process's memory.
 */
export class PageCursors {
  readonly #ctx: Context;
  /** The embedded database's cursors, bounded (oldest entries dropped). */
  readonly #local = new Map<string, string>();
  #sharedPages = 0;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  /**
   * Fetches one page of a list: after the remembered end of the previous page when the query is in
   * the default order (else with OFFSET), and remembers where this page ends for the next request.
   */
  async page<R extends { id: string }>(
    call: ScimCall,
    kind: string,
    source: Record<string, unknown>,
    query: ListQuery,
    fetch: (query: ListQuery) => Promise<{ rows: R[]; total: number }>,
  ): Promise<{ rows: R[]; total: number }> {
    if (query.sortBy || query.count === 0) return fetch(query);
    const key = (startIndex: number) =>
      pageCursorKey(call.connectionId, kind, source, startIndex, query.count);
    const next = key(query.startIndex + query.count);
    if (this.#ctx.dbKind === 'postgres') {
      const readKey = query.startIndex === 1 ? undefined : key(query.startIndex);
      const result = await fetch({ ...query, cursor: { readKey, writeKey: next } });
      // A walk takes minutes at most: forget cursors after an hour.
      if (++this.#sharedPages % 1000 === 0) {
        sql`delete from scim_page_cursors where created_at < now() - interval '1 hour'`
          .execute(this.#ctx.db)
          .catch(() => {});
      }
      return result;
    }
    const afterId = query.startIndex === 1 ? undefined : this.#local.get(key(query.startIndex));
    const result = await fetch({ ...query, cursor: afterId === undefined ? undefined : { afterId } });
    const last = result.rows[result.rows.length - 1];
    if (last && result.rows.length >= query.count) {
      if (this.#local.size >= 5000) this.#local.delete(this.#local.keys().next().value!);
      this.#local.set(next, last.id);
    }
    return result;
  }
}

function pageCursorKey(
  connectionId: string,
  kind: string,
  source: Record<string, unknown>,
  startIndex: number,
  count: number,
): string {
  let filter: unknown;
  for (const key of Object.keys(source)) {
    if (key.toLowerCase() === 'filter') {
      filter = source[key];
      break;
    }
  }
  return `${connectionId}|${kind}|${typeof filter === 'string' ? filter : ''}|${count}|${startIndex}`;
}
