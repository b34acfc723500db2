import { type Kysely, sql } from 'kysely';

/**
 * A refresh rotates one row: the session's. A refresh token names its session and a generation
 * and carries a random secret (`rst_rt_<session id>.<generation>.<secret>.<tag>`, the tag a keyed
 * digest of the three), and the session row keeps the hashes of its current and previous tokens,
 * so that a refresh is one UPDATE of the session row, where it was five row writes (the session
 * locked and updated, the spent token marked, its successor inserted, the rate limit's row
 * upserted) and a table growing by a row per refresh.
 * - `refresh_generation`: the generation of the session's current refresh token; 0 for sessions
 *   whose token is still a `refresh_tokens` row (issued before this migration, or by a process of
 *   the previous version during a rolling upgrade): those keep working, and their next rotation
 *   moves the session to generation 1.
 * - `refresh_token_hash`, `refresh_previous_hash`: SHA-256 of the current token and of the one it
 *   succeeded (the reuse interval answers the latter).
 * - `refresh_rotated_at`: when the current generation was issued (the reuse interval counts from it).
 * - `refresh_tat`: the session's refresh rate limit (generic cell rate algorithm, as the shared
 *   limiter keeps it: the theoretical arrival time of the next refresh, in epoch milliseconds of
 *   the database's clock), taken by the same UPDATE.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table sessions
    add column refresh_generation integer not null default 0,
    add column refresh_token_hash text,
    add column refresh_previous_hash text,
    add column refresh_rotated_at timestamptz,
    add column refresh_tat double precision`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Sessions on the new tokens have no refresh_tokens row: the previous version cannot refresh them.
  await sql`update sessions set revoked_at = now(), revoke_reason = 'revoked'
    where refresh_generation > 0 and revoked_at is null`.execute(db);
  await sql`alter table sessions
    drop column if exists refresh_generation,
    drop column if exists refresh_token_hash,
    drop column if exists refresh_previous_hash,
    drop column if exists refresh_rotated_at,
    drop column if exists refresh_tat`.execute(db);
}
