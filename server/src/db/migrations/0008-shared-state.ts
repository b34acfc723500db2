import { type Kysely, sql } from 'kysely';

/**
 * State that the server processes share instead of each keeping its own in memory, so that it
 * holds however many processes serve: the rate limits' buckets and the SCIM page cursors. Both are
 * unlogged: a write costs no WAL and no flush at commit, and a crash of PostgreSQL empties them,
 * which only resets the buckets and makes the next page of a walk fall back to its offset.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // One row per limited key: the "theoretical arrival time" (ms since the epoch, on the database's
  // clock) of the generic cell rate algorithm.
  await sql`create unlogged table rate_limits (
    key text primary key,
    tat double precision not null
  )`.execute(db);
  await sql`create unlogged table scim_page_cursors (
    key text primary key,
    last_id text not null,
    created_at timestamptz not null default now()
  )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists scim_page_cursors`.execute(db);
  await sql`drop table if exists rate_limits`.execute(db);
}
