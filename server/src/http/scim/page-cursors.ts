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
 */
export class PageCursors {
  readonly #store: CursorStore;

  constructor(ctx: Context) {
    this.#store = ctx.dbKind === 'postgres' ? new SharedCursorStore(ctx.db) : new LocalCursorStore();
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
    const key = (startIndex: number) =>
      pageCursorKey(call.connectionId, kind, source, startIndex, query.count);
    let from = query;
    if (!query.sortBy && query.startIndex !== 1 && query.count !== 0) {
      const afterId = await this.#store.get(key(query.startIndex));
      if (afterId) from = { ...query, afterId };
    }
    const result = await fetch(from);
    const last = result.rows[result.rows.length - 1];
    if (!query.sortBy && last && result.rows.length >= query.count) {
      await this.#store.set(key(query.startIndex + result.rows.length), last.id);
    }
    return result;
  }
}

interface CursorStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, lastId: string): Promise<void>;
}

function pageCursorKey(
  connectionId: string,
  kind: string,
  source: Record<string, unknown>,
  startIndex: number,
  count: number,
): string {
  const filter = Object.entries(source).find(([k]) => k.toLowerCase() === 'filter')?.[1];
  return `${connectionId}|${kind}|${typeof filter === 'string' ? filter : ''}|${count}|${startIndex}`;
}

/** In this process's memory, bounded (oldest entries dropped): for the embedded database. */
class LocalCursorStore implements CursorStore {
  readonly #entries = new Map<string, string>();

  async get(key: string): Promise<string | undefined> {
    return this.#entries.get(key);
  }

  async set(key: string, lastId: string): Promise<void> {
    if (this.#entries.size >= 5000) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, lastId);
  }
}

/**
 * In PostgreSQL (an unlogged table), so that the next page continues after the previous one
 * whichever server process serves it: an IdP's walk is spread over all of them.
 */
class SharedCursorStore implements CursorStore {
  readonly #db: Context['db'];
  #writes = 0;

  constructor(db: Context['db']) {
    this.#db = db;
  }

  async get(key: string): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('scim_page_cursors')
      .select('last_id')
      .where('key', '=', key)
      .executeTakeFirst();
    return row?.last_id;
  }

  async set(key: string, lastId: string): Promise<void> {
    await this.#db
      .insertInto('scim_page_cursors')
      .values({ key, last_id: lastId })
      .onConflict((oc) => oc.column('key').doUpdateSet({ last_id: lastId, created_at: sql`now()` }))
      .execute();
    // A walk takes minutes at most: forget cursors after an hour.
    if (++this.#writes % 1000 === 0) {
      sql`delete from scim_page_cursors where created_at < now() - interval '1 hour'`
        .execute(this.#db)
        .catch(() => {});
    }
  }
}
