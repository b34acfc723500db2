import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { DB } from '../db/schema.js';
import { compiledOnce } from '../db/sql.js';
import type { Filter } from '../scim/filter/ast.js';
import type { FilterShape } from './scim-filter-sql.js';

/** One page of a SCIM list (users or groups): the paging rules both share, in one place. */

export interface ListQuery {
  filter?: Filter | undefined;
  startIndex: number;
  count: number;
  sortBy?: string | undefined;
  sortOrder?: 'ascending' | 'descending' | undefined;
  /** Where a page of an IdP's walk continues (default order only): see PageCursor. */
  cursor?: PageCursor | undefined;
}

/**
 * The end of the previous page of a walk, so that the next page continues after it instead of
 * skipping `startIndex - 1` rows: that costs the same at page 1,000 as at page 1, and a row
 * deleted from an earlier page does not make the walk skip one (see PageCursors).
 */
export interface PageCursor {
  /** The id that ended the previous page, when this process remembers it (the embedded database). */
  afterId?: string | undefined;
  /**
   * The key of the shared cursor (scim_page_cursors) to continue after, read by the page's own
   * statement; a key with no row means OFFSET.
   */
  readKey?: string | undefined;
  /** The key under which the page's own statement remembers the id ending it, if the page is full. */
  writeKey?: string | undefined;
}

export interface ListResult<R> {
  rows: R[];
  total: number;
}

/** What a list reads: the live users or groups of one connection. */
export interface PageSource {
  table: 'users' | 'groups';
  /** The alias the filter and sort expressions are written against. */
  alias: 'u' | 'g';
  connectionId: string;
  filter: RawBuilder<boolean> | undefined;
  /** The sort key (sortBy), or undefined for the default order (id). */
  sort: RawBuilder<unknown> | undefined;
  /** Select items computed for the page's rows only (a user's groups), after `alias.*`. */
  columns?: RawBuilder<unknown> | undefined;
  /**
   * The filter as a shape (see FilterShape), when its SQL text does not depend on its values,
   * and `columnsKey` naming `columns`: the first page's statement is then compiled once per shape.
   */
  shape?: { filter: FilterShape; columnsKey: string } | undefined;
}

/**
 * Reads a page and its exact `totalResults` in one statement (one round trip): the shared
 * cursor of a walk is read and the next one written by the same statement. The order is the sort
 * key, then the id (stable across pages); keyset paging applies in the default order only.
 *
 * Skipping rows (a page without a cursor) walks the (connection_id, id) index only, then reads
 * the page's rows: OFFSET on the rows themselves read every skipped user from the table (54 ms at
 * startIndex 50,001 of 100,000 users, against 6 ms for the index alone). The total of an unfiltered
 * list is the connection's count kept by triggers (scim_counts, migration 0009) instead of a
 * count of its rows.
 *
 * The first page of a filtered list (an IdP's lookup, the most frequent SCIM read) takes a lighter
 * statement: it counts the matches only when the page is full (a page that is not full is the
 * whole result), and it writes the next page's cursor only then, in a second statement: carrying
 * that write in every lookup doubled the lookup's PostgreSQL CPU (0.065 to 0.13 ms, measured).
 */
export async function listPage<R extends { id: string }>(
  db: Kysely<DB>,
  query: ListQuery,
  source: PageSource,
): Promise<ListResult<R>> {
  const { alias, connectionId, filter, sort, columns } = source;
  const a = sql.raw(alias);
  const table = sql.raw(source.table);
  const id = sql.ref(`${alias}.id`);
  const scope = sql`${a}.connection_id = ${connectionId} and ${a}.deleted_at is null${filter ? sql` and ${filter}` : sql``}`;
  const direction = sql.raw(query.sortOrder === 'descending' ? 'desc' : 'asc');
  const order = sort ? sql`${sort} ${direction}, ${id}` : id;
  const selected = columns ? sql`${a}.*, ${columns}` : sql`${a}.*`;
  const counted = sql`(select count(*) from ${table} ${a} where ${scope})`;
  const cursor = sort || query.count === 0 ? undefined : query.cursor;
  type Row = R & { scim_total: string | number | bigint };
  const pageOf = (rows: Row[]): R[] => {
    const page: R[] = [];
    for (const { scim_total: _total, ...row } of rows) {
      // An empty page is one row of nulls beside the total (the left join below).
      if (typeof row.id === 'string') page.push(row as unknown as R);
    }
    return page;
  };

  if (filter && query.startIndex === 1 && query.count > 0) {
    const { rows } =
      source.shape && !sort && shapeCompiled(source.table, source.shape)
        ? await firstPageOnce(db, source as Required<Pick<PageSource, 'shape'>> & PageSource, query.count)
        : await firstPageSql<Row>(
            source,
            direction,
            filter,
            sql`${connectionId}`,
            sql`${query.count}`,
          ).execute(db);
    const page = pageOf(rows as Row[]);
    const last = page[page.length - 1];
    if (cursor?.writeKey !== undefined && last && page.length === query.count) {
      await rememberCursor(db, cursor.writeKey, last.id);
    }
    return { rows: page, total: Number(rows[0]?.scim_total ?? 0) };
  }

  const readKey = cursor?.afterId === undefined ? cursor?.readKey : undefined;
  const offset = query.startIndex - 1;
  const ctes: RawBuilder<unknown>[] = [];
  if (readKey !== undefined) {
    ctes.push(sql`cursor as (select last_id from scim_page_cursors where key = ${readKey})`);
  }
  // The page: after the remembered id, or from the id at the offset found on the index alone.
  let start = sql``;
  if (cursor?.afterId !== undefined) start = sql`and ${id} > ${cursor.afterId}`;
  else if (!sort && (readKey !== undefined || offset > 0)) {
    const skipped = sql`(select ${id} from ${table} ${a} where ${scope} order by ${id} offset ${offset} limit 1)`;
    // Only one of the two runs (a CASE evaluates its subqueries lazily). The offset is skipped
    // without an `id >` bound: that would be checked on every skipped entry, a collation-aware
    // text comparison each (20 times the cost of the skip itself, measured).
    start =
      readKey === undefined
        ? sql`and ${id} >= ${skipped}`
        : sql`and ${id} >= (case when exists (select from cursor)
            then (select ${id} from ${table} ${a} where ${scope} and ${id} > (select last_id from cursor) order by ${id} limit 1)
            else ${skipped} end)`;
  }
  if (query.count > 0) {
    ctes.push(sql`page as (
      select ${a}.* from ${table} ${a} where ${scope} ${start} order by ${order} limit ${query.count}
      ${sort ? sql`offset ${offset}` : sql``})`);
  }
  if (cursor?.writeKey !== undefined) {
    // A full page in the default order ends at its largest id (same column, same collation).
    ctes.push(sql`remembered as (
      insert into scim_page_cursors (key, last_id)
      select ${cursor.writeKey}, max(p.id) from page p having count(*) = ${query.count}
      on conflict (key) do update set last_id = excluded.last_id, created_at = now())`);
  }
  const total = filter
    ? counted
    : sql`(select coalesce(sum(n), 0) from scim_counts where connection_id = ${connectionId} and resource = ${source.table})`;
  const body =
    query.count > 0
      ? sql`select ${selected}, total.n as scim_total
          from (select ${total} as n) total left join page ${a} on true order by ${order}`
      : sql`select ${total} as scim_total`;
  const { rows } = await sql<Row>`${ctes.length > 0 ? sql`with ${sql.join(ctes)} ` : sql``}${body}`.execute(
    db,
  );
  return { rows: pageOf(rows), total: Number(rows[0]?.scim_total ?? 0) };
}

/**
 * The first page of a filtered list: the page, and the count of every match only when the page
 * is full (a page that is not full is the whole result).
 */
function firstPageSql<Row>(
  source: PageSource,
  direction: RawBuilder<unknown>,
  filter: RawBuilder<boolean>,
  connectionId: RawBuilder<unknown>,
  count: RawBuilder<unknown>,
): RawBuilder<Row> {
  const a = sql.raw(source.alias);
  const table = sql.raw(source.table);
  const id = sql.ref(`${source.alias}.id`);
  const scope = sql`${a}.connection_id = ${connectionId} and ${a}.deleted_at is null and ${filter}`;
  const order = source.sort ? sql`${source.sort} ${direction}, ${id}` : id;
  const selected = source.columns ? sql`${a}.*, ${source.columns}` : sql`${a}.*`;
  const counted = sql`(select count(*) from ${table} ${a} where ${scope})`;
  return sql<Row>`
      select ${selected},
        case when count(*) over () < ${count} then count(*) over () else ${counted} end as scim_total
      from (select ${a}.* from ${table} ${a} where ${scope} order by ${order} limit ${count}) ${a}
      order by ${order}`;
}

/**
 * The sources of the shapes {@link firstPageOnce} has compiled, by template key; at most
 * {@link MAX_SHAPES}, so that filters of ever new shapes cannot grow it (they are compiled each time).
 */
const shapedSources = new Map<string, PageSource>();
const MAX_SHAPES = 64;

const firstPageTemplate = compiledOnce((_db, p: Record<string, unknown>, key) => {
  const source = shapedSources.get(key)!;
  const values = source.shape!.filter.values.map((_, i) => p[`v${i}`]);
  return firstPageSql<{ id: unknown; scim_total: unknown }>(
    source,
    sql``,
    source.shape!.filter.sql(values),
    sql`${p.connectionId}`,
    sql`${p.count}`,
  );
});

const shapeKey = (table: string, shape: NonNullable<PageSource['shape']>) =>
  `${table} ${shape.columnsKey} ${shape.filter.key}`;

/** Whether this shape's statement is (or may now be) compiled once. */
function shapeCompiled(table: string, shape: NonNullable<PageSource['shape']>): boolean {
  return shapedSources.has(shapeKey(table, shape)) || shapedSources.size < MAX_SHAPES;
}

/** {@link firstPageSql} for a filter of a known shape, compiled once per shape (and table and columns). */
function firstPageOnce(
  db: Kysely<DB>,
  source: PageSource & Required<Pick<PageSource, 'shape'>>,
  count: number,
) {
  const key = shapeKey(source.table, source.shape);
  if (!shapedSources.has(key)) shapedSources.set(key, source);
  const params: Record<string, unknown> = { connectionId: source.connectionId, count };
  source.shape.filter.values.forEach((value, i) => {
    params[`v${i}`] = value;
  });
  return firstPageTemplate(db, params, key);
}

/** Remembers `lastId` as the end of a walk's page, for the request of the page after it. */
async function rememberCursor(db: Kysely<DB>, key: string, lastId: string): Promise<void> {
  await db
    .insertInto('scim_page_cursors')
    .values({ key, last_id: lastId })
    .onConflict((oc) => oc.column('key').doUpdateSet({ last_id: lastId, created_at: sql`now()` }))
    .execute();
}
