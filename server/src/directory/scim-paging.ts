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
  /**
   * This process's rank anchors (see PageAnchors): an unfiltered page in the default order
   * starts its skip from the nearest one when they still hold.
   */
  anchors?: PageAnchors | undefined;
}

/**
 * Reads a page and its exact `totalResults` in one statement (one round trip): the shared
 * cursor of a walk is read and the next one written by the same statement. The order is the sort
 * key, then the id (stable across pages); keyset paging applies in the default order only.
 *
 * Skipping rows (a page without a cursor) walks the (connection_id, id) index only, then reads
 * the page's rows: OFFSET on the rows themselves read every skipped user from the table (54 ms at
 * startIndex 50,001 of 100,000 users, against 6 ms for the index alone). An unfiltered page in the
 * default order skips from the nearest of this process's rank anchors instead, when the change
 * stamp the statement reads in its own snapshot says they still hold (see PageAnchors): fewer
 * than K entries, whatever the offset. The total of an unfiltered list is the connection's count
 * kept by triggers (scim_counts, migration 0009) instead of a count of its rows.
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
  type Row = R & { scim_total: string | number | bigint; scim_stamp?: string };
  const pageOf = (rows: Row[]): R[] => {
    const page: R[] = [];
    for (const { scim_total: _total, scim_stamp: _stamp, ...row } of rows) {
      // An empty page is one row of nulls beside the total (the left join below).
      if (typeof row.id === 'string') page.push(row as unknown as R);
    }
    return page;
  };

  if (filter && query.startIndex === 1 && query.count > 0) {
    const { rows } =
      source.shape && !sort && shapeCompiled(source.table, source.shape, query.count)
        ? await firstPageOnce(db, source as Required<Pick<PageSource, 'shape'>> & PageSource, query.count)
        : await firstPageSql<Row>(source, direction, filter, sql`${connectionId}`, query.count).execute(db);
    const page = pageOf(rows as Row[]);
    const last = page[page.length - 1];
    if (cursor?.writeKey !== undefined && last && page.length === query.count) {
      await rememberCursor(db, cursor.writeKey, last.id);
    }
    return { rows: page, total: Number(rows[0]?.scim_total ?? 0) };
  }

  const readKey = cursor?.afterId === undefined ? cursor?.readKey : undefined;
  const offset = query.startIndex - 1;
  const { anchors } = source;
  // A page that may skip K entries or more reads the counts once, for its total and for the change
  // stamp that decides whether the anchors hold, and returns the stamp (to build them again if not).
  const stamped =
    anchors !== undefined &&
    !filter &&
    !sort &&
    query.count > 0 &&
    cursor?.afterId === undefined &&
    offset >= anchors.spacing;
  const anchor = stamped ? anchors.at(source.table, connectionId, offset) : undefined;
  const ctes: RawBuilder<unknown>[] = [];
  if (stamped) {
    ctes.push(sql`counts as (select coalesce(sum(n), 0) as n,
      ${STAMP} as stamp
      from scim_counts where connection_id = ${connectionId} and resource = ${source.table})`);
  }
  if (readKey !== undefined) {
    ctes.push(sql`cursor as (select last_id from scim_page_cursors where key = ${readKey})`);
  }
  // The page: after the remembered id, or from the id at the offset found on the index alone.
  let start = sql``;
  if (cursor?.afterId !== undefined) start = sql`and ${id} > ${cursor.afterId}`;
  else if (!sort && (readKey !== undefined || offset > 0)) {
    const fromStart = sql`(select ${id} from ${table} ${a} where ${scope} order by ${id} offset ${offset} limit 1)`;
    // From the anchor only when no live row was added or removed since the anchors were read: the
    // anchor's rank is then still `offset - rest`. Otherwise from the start, as without anchors.
    const skipped = anchor
      ? sql`(case when (select stamp from counts) = ${anchor.stamp}
          then (select ${id} from ${table} ${a} where ${scope} and ${id} >= ${anchor.id}
            order by ${id} offset ${anchor.rest} limit 1)
          else ${fromStart} end)`
      : fromStart;
    // Only one of the two runs (a CASE evaluates its subqueries lazily). The offset is skipped
    // without an `id >` bound: that would be checked on every skipped entry, a collation-aware
    // text comparison each (20 times the cost of the skip itself, measured). The anchor's bound is
    // checked on fewer than K entries.
    start =
      readKey === undefined
        ? sql`and ${id} >= ${skipped}`
        : sql`and ${id} >= (case when exists (select from cursor)
            then (select ${id} from ${table} ${a} where ${scope} and ${id} > (select last_id from cursor) order by ${id} limit 1)
            else ${skipped} end)`;
  }
  if (query.count > 0) {
    ctes.push(sql`page as (
      select ${a}.* from ${table} ${a} where ${scope} ${start} order by ${order} limit ${literalCount(query.count)}
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
  const body = stamped
    ? sql`select ${selected}, total.n as scim_total, total.stamp as scim_stamp
          from (select n, stamp from counts) total left join page ${a} on true order by ${order}`
    : query.count > 0
      ? sql`select ${selected}, total.n as scim_total
          from (select ${total} as n) total left join page ${a} on true order by ${order}`
      : sql`select ${total} as scim_total`;
  const { rows } = await sql<Row>`${ctes.length > 0 ? sql`with ${sql.join(ctes)} ` : sql``}${body}`.execute(
    db,
  );
  if (stamped) anchors.seen(source.table, connectionId, offset, String(rows[0]?.scim_stamp), anchor);
  return { rows: pageOf(rows), total: Number(rows[0]?.scim_total ?? 0) };
}

/**
 * The change stamp of a connection's rows of one resource, as SQL over its `scim_counts` rows:
 * the sum of their `changes` (migration 0014), which grows with every live row added or removed,
 * after the database server's start time, which changes with every restart, promotion of a
 * replica and restore. A sum alone could come back: a database failed over to a replica that
 * had not received the last changes, or restored from a backup, starts below the sum a process
 * read before, and as many new changes bring it back to that value with other rows.
 */
const STAMP = sql<string>`extract(epoch from pg_postmaster_start_time())::text || ' ' || coalesce(sum(changes), 0)::text`;

/** How {@link PageAnchors} is tuned. */
export interface PageAnchorOptions {
  /** Every K-th id of the default order is an anchor (K, at least: see maxAnchors). Default 1,000. */
  spacing?: number;
  /** At most this many anchors per connection: K grows with a larger directory. Default 1,000. */
  maxAnchors?: number;
  /** Connections (and resources) whose anchors are kept, the least recently paged dropped. Default 256. */
  maxEntries?: number;
  /** The least time between two builds of one connection's anchors. Default 2 s. */
  minIntervalMs?: number;
  /** How long built anchors are used at most before they are built again. Default 10 min. */
  maxAgeMs?: number;
  /** Told when a background build fails (the pages keep skipping from the start meanwhile). */
  onBuildError?: (error: unknown, where: { table: PageSource['table']; connectionId: string }) => void;
}

/** The anchor a skip starts from: its id, the entries left to skip after it, the stamp it holds for. */
export interface Anchor {
  id: string;
  rest: number;
  stamp: string;
}

interface AnchorEntry {
  /** The change stamp read with the ids (undefined before the first build). */
  stamp: string | undefined;
  /** ids[j] is the id at rank j * spacing (0-based) of the default order, in that snapshot. */
  ids: string[];
  spacing: number;
  building: boolean;
  /** performance.now() when the last build started. */
  builtAt: number;
  /** The least time before the next build: doubled while built anchors go unused. */
  intervalMs: number;
  /** Whether a page started from these anchors since they were built. */
  used: boolean;
}

/** While a connection changes faster than it is paged, its builds back off up to this interval. */
const MAX_BUILD_INTERVAL_MS = 60_000;

/**
 * Rank anchors of the default order (id) per connection and resource, kept per process, so that a
 * page at startIndex 50,001 of 100,000 users skips fewer than K index entries instead of 50,000
 * (skipping was the one read whose latency grew with the directory: 6 ms at 10,000 users, 14 ms
 * at 100,000). One statement reads every K-th id together with the connection's change stamp
 * (the sum of `scim_counts.changes`, migration 0014, which grows with every row added or
 * removed); a page's statement starts from an anchor only when the stamp it reads in its own
 * snapshot is the anchors' stamp, so anchors read before a change cost the skip from the start
 * (the speed without them), never a wrong page: the page holds exactly what `order by id offset
 * N limit M` over its snapshot holds. Equal stamps mean equal live rows whichever process wrote:
 * the stamp is in the database, summed in each statement's snapshot.
 *
 * A page that skips K or more entries and finds no anchors, or stale ones, builds them in the
 * background (one build at a time per connection, at most one per `minIntervalMs`; one pass over
 * the connection's index entries). A connection that changes faster than it is paged (an IdP
 * provisioning while another client pages) backs off: each build whose anchors no page used
 * doubles the interval, up to a minute. One build runs at a time in a process (on PGlite a build
 * holds the only connection); a page that would start another while one runs leaves it to a later
 * page. Memory: at most `maxEntries` connections of at most `maxAnchors` ids (256 x 1,000 ids of
 * 30 characters: about 15 MB at most, far less in practice).
 *
 * What the stamp cannot see: changes that bypass the counting triggers (TRUNCATE, triggers
 * disabled, `scim_counts` edited or rebuilt by hand, a dump reloaded under running servers).
 * Anchors are therefore used for at most `maxAgeMs` after their build; after such maintenance,
 * restart the servers.
 */
export class PageAnchors {
  readonly #db: Kysely<DB>;
  readonly #entries = new Map<string, AnchorEntry>();
  readonly #maxAnchors: number;
  readonly #maxEntries: number;
  readonly #minIntervalMs: number;
  readonly #maxAgeMs: number;
  readonly #onBuildError: PageAnchorOptions['onBuildError'];
  /** Whether a build runs in this process (one at a time). */
  #building = false;
  /** The least K: offsets below it need no anchor. */
  readonly spacing: number;
  /** Builds finished, and pages that started from an anchor (hits) or found it stale (misses). */
  readonly stats = { builds: 0, hits: 0, misses: 0 };

  constructor(db: Kysely<DB>, options: PageAnchorOptions = {}) {
    this.#db = db;
    this.spacing = Math.max(1, Math.floor(options.spacing ?? 1000));
    this.#maxAnchors = Math.max(1, Math.floor(options.maxAnchors ?? 1000));
    this.#maxEntries = Math.max(1, Math.floor(options.maxEntries ?? 256));
    this.#minIntervalMs = options.minIntervalMs ?? 2000;
    this.#maxAgeMs = options.maxAgeMs ?? 600_000;
    this.#onBuildError = options.onBuildError;
  }

  /** Whether `entry` holds built anchors young enough to use. */
  #fresh(entry: AnchorEntry | undefined): entry is AnchorEntry & { stamp: string } {
    return entry?.stamp !== undefined && performance.now() - entry.builtAt < this.#maxAgeMs;
  }

  /** The anchor a skip of `offset` entries starts from, if this process has one past the start. */
  at(table: PageSource['table'], connectionId: string, offset: number): Anchor | undefined {
    const key = `${table} ${connectionId}`;
    const entry = this.#entries.get(key);
    if (!this.#fresh(entry) || entry.ids.length === 0) return undefined;
    // Most recently used last.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    const j = Math.min(Math.floor(offset / entry.spacing), entry.ids.length - 1);
    if (j === 0) return undefined;
    return { id: entry.ids[j]!, rest: offset - j * entry.spacing, stamp: entry.stamp };
  }

  /**
   * After a page that skipped `offset` entries, with the stamp its statement read: counts whether
   * its anchor held, and builds the anchors again (in the background) when they are missing or
   * older than that stamp.
   */
  seen(
    table: PageSource['table'],
    connectionId: string,
    offset: number,
    stamp: string,
    anchor: Anchor | undefined,
  ): void {
    const key = `${table} ${connectionId}`;
    const entry = this.#entries.get(key);
    if (anchor) {
      if (anchor.stamp === stamp) {
        this.stats.hits++;
        if (entry) entry.used = true;
        return;
      }
      this.stats.misses++;
    }
    if (offset < this.spacing || (this.#fresh(entry) && entry.stamp === stamp)) return;
    if (entry && (entry.building || performance.now() - entry.builtAt < entry.intervalMs)) return;
    if (this.#building) return;
    this.#building = true;
    this.build(table, connectionId)
      .catch((error: unknown) => {
        // The pages keep skipping from the start; the next stale page tries again.
        this.#onBuildError?.(error, { table, connectionId });
      })
      .finally(() => {
        this.#building = false;
      });
  }

  /** Builds one connection's anchors now (the pages start builds themselves; tests call it). */
  async build(table: PageSource['table'], connectionId: string): Promise<void> {
    const key = `${table} ${connectionId}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = {
        stamp: undefined,
        ids: [],
        spacing: this.spacing,
        building: false,
        builtAt: 0,
        intervalMs: 0,
        used: false,
      };
      if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(key, entry);
    }
    if (entry.building) return;
    entry.building = true;
    entry.intervalMs =
      entry.stamp !== undefined && !entry.used
        ? Math.min(Math.max(entry.intervalMs * 2, this.#minIntervalMs), MAX_BUILD_INTERVAL_MS)
        : this.#minIntervalMs;
    entry.builtAt = performance.now();
    try {
      const t = sql.raw(table);
      // One statement, so one snapshot: the ids and the stamp they hold for. The ranks come from one
      // pass over the connection's (connection_id, id) index entries.
      // The ids are capped at maxAnchors whatever the count says, so memory stays bounded.
      const { rows } = await sql<{ stamp: string; spacing: number; ids: string[] }>`
        with k as (select greatest(${this.spacing}::int, ceil(coalesce((select sum(n) from scim_counts
            where connection_id = ${connectionId} and resource = ${table}), 0) / ${this.#maxAnchors}::numeric))::int as k)
        select (select ${STAMP} from scim_counts where connection_id = ${connectionId} and resource = ${table})
            as stamp, (select k from k) as spacing,
          array(
            select ranked.id from (
              select x.id, row_number() over (order by x.id) - 1 as r from ${t} x
              where x.connection_id = ${connectionId} and x.deleted_at is null) ranked
            where ranked.r % (select k from k) = 0 order by ranked.id limit ${this.#maxAnchors}) as ids`.execute(
        this.#db,
      );
      const row = rows[0]!;
      entry.stamp = String(row.stamp);
      entry.spacing = Number(row.spacing);
      entry.ids = row.ids;
      entry.used = false;
      this.stats.builds++;
    } finally {
      entry.building = false;
    }
  }
}

/** A page size written into the statement (see firstPageSql): a whole number, whatever came in. */
const literalCount = (count: number) => sql.lit(Number.isSafeInteger(count) && count > 0 ? count : 0);

/**
 * The first page of a filtered list: the page, and the count of every match only when the page
 * is full (a page that is not full is the whole result).
 *
 * The count is written into the statement as a literal, not bound: with a bound LIMIT, the generic
 * plan (plan_cache_mode = force_generic_plan, db/postgres.ts) assumes it keeps a tenth of the
 * estimated matches, and for an IdP's lookup (`userName eq "…"`) around 5,000 users PostgreSQL
 * then walked the whole primary key in id order, filtering, instead of probing the userName index
 * and sorting the one match: 21.7 ms and 4,910 buffers against 0.32 ms and 6 (EXPLAIN ANALYZE,
 * 4,814 users). A compiled-once shape includes the count in its key.
 */
function firstPageSql<Row>(
  source: PageSource,
  direction: RawBuilder<unknown>,
  filter: RawBuilder<boolean>,
  connectionId: RawBuilder<unknown>,
  count: number,
): RawBuilder<Row> {
  const limit = literalCount(count);
  const a = sql.raw(source.alias);
  const table = sql.raw(source.table);
  const id = sql.ref(`${source.alias}.id`);
  const scope = sql`${a}.connection_id = ${connectionId} and ${a}.deleted_at is null and ${filter}`;
  const order = source.sort ? sql`${source.sort} ${direction}, ${id}` : id;
  const selected = source.columns ? sql`${a}.*, ${source.columns}` : sql`${a}.*`;
  const counted = sql`(select count(*) from ${table} ${a} where ${scope})`;
  return sql<Row>`
      select ${selected},
        case when count(*) over () < ${limit} then count(*) over () else ${counted} end as scim_total
      from (select ${a}.* from ${table} ${a} where ${scope} order by ${order} limit ${limit}) ${a}
      order by ${order}`;
}

/**
 * The sources of the shapes {@link firstPageOnce} has compiled, by template key; at most
 * {@link MAX_SHAPES}, so that filters of ever new shapes cannot grow it (they are compiled each time).
 */
const shapedSources = new Map<string, { source: PageSource; count: number }>();
const MAX_SHAPES = 64;

const firstPageTemplate = compiledOnce((_db, p: Record<string, unknown>, key) => {
  const { source, count } = shapedSources.get(key)!;
  const values = source.shape!.filter.values.map((_, i) => p[`v${i}`]);
  return firstPageSql<{ id: unknown; scim_total: unknown }>(
    source,
    sql``,
    source.shape!.filter.sql(values),
    sql`${p.connectionId}`,
    count,
  );
});

const shapeKey = (table: string, shape: NonNullable<PageSource['shape']>, count: number) =>
  `${table} ${shape.columnsKey} ${count} ${shape.filter.key}`;

/** Whether this shape's statement (with this count) is (or may now be) compiled once. */
function shapeCompiled(table: string, shape: NonNullable<PageSource['shape']>, count: number): boolean {
  return shapedSources.has(shapeKey(table, shape, count)) || shapedSources.size < MAX_SHAPES;
}

/** {@link firstPageSql} for a filter of a known shape, compiled once per shape (and table and columns). */
function firstPageOnce(
  db: Kysely<DB>,
  source: PageSource & Required<Pick<PageSource, 'shape'>>,
  count: number,
) {
  const key = shapeKey(source.table, source.shape, count);
  if (!shapedSources.has(key)) shapedSources.set(key, { source, count });
  const params: Record<string, unknown> = { connectionId: source.connectionId };
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
