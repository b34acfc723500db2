import { type Kysely, sql } from 'kysely';

/**
 * When a session is revoked, its `token_expires_at` (which the `session.revoked` event carries, and
 * which tells a revocation list how long to remember the session) becomes the latest time at which
 * a session token issued before the revocation can expire, not merely the expiry of the last token
 * the row remembers.
 *
 * The two differ when a rotation was lost: a refresh's rotation commits without waiting for the
 * WAL flush (ROSTER_REFRESH_SYNCHRONOUS_COMMIT=off), and a crash moments later may lose it after
 * its token was answered. The row then holds the previous rotation's expiry, earlier than that
 * token's, and a revocation list would forget the session while the token still verifies.
 *
 * Every token is issued for at most one token lifetime, so none issued before the revocation
 * expires after `revoked_at + lifetime`. The lifetime is read from the row itself: its last
 * recorded issue's expiry minus that time (one second more for the expiry's truncation to
 * the second), capped by the session's own expiry. A BEFORE trigger, so that every path that
 * revokes (each names `revoked_at` in its SET) reports the bound in the row it returns, and so in
 * its event, in the same statement.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create function sessions_revoked_token_bound() returns trigger language plpgsql as $$
    begin
      new.token_expires_at := least(new.expires_at, greatest(new.token_expires_at,
        new.revoked_at + (new.token_expires_at - coalesce(new.last_refreshed_at, new.created_at))
          + interval '1 second'));
      return new;
    end $$`.execute(db);
  await sql`create trigger sessions_revoked_token_bound before update of revoked_at on sessions
    for each row when (old.revoked_at is null and new.revoked_at is not null
      and new.token_expires_at is not null)
    execute function sessions_revoked_token_bound()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists sessions_revoked_token_bound on sessions`.execute(db);
  await sql`drop function if exists sessions_revoked_token_bound()`.execute(db);
}
