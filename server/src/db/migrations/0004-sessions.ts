import { type Kysely, sql } from 'kysely';

/**
 * Sessions, as issue 5 needs them:
 * - `sessions.token_expires_at`: when the last JWT issued for the session expires. A revocation
 *   event carries it, so a revocation list (the SDK's revocation feed) can forget the session then.
 * - At most one `active` and one `next` signing key, enforced by the database: processes booting
 *   at once cannot both generate the first key.
 * - Listing a user's sessions, revoked ones included, by id.
 * - A session outlives the deletion of its membership (revoked, for audit and so that its refresh
 *   token answers `user_inactive` rather than "unknown"): the foreign key sets null instead of
 *   cascading.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table sessions add column token_expires_at timestamptz`.execute(db);
  await sql`create index sessions_user_all_idx on sessions (user_id, id)`.execute(db);
  await sql`alter table sessions alter column membership_id drop not null`.execute(db);
  await sql`alter table sessions drop constraint sessions_membership_id_fkey`.execute(db);
  await sql`alter table sessions add constraint sessions_membership_id_fkey
    foreign key (membership_id) references memberships (id) on delete set null`.execute(db);
  await sql`create unique index signing_keys_one_active on signing_keys (state) where state in ('active', 'next')`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists signing_keys_one_active`.execute(db);
  await sql`delete from sessions where membership_id is null`.execute(db);
  await sql`alter table sessions drop constraint sessions_membership_id_fkey`.execute(db);
  await sql`alter table sessions add constraint sessions_membership_id_fkey
    foreign key (membership_id) references memberships (id) on delete cascade`.execute(db);
  await sql`alter table sessions alter column membership_id set not null`.execute(db);
  await sql`drop index if exists sessions_user_all_idx`.execute(db);
  await sql`alter table sessions drop column if exists token_expires_at`.execute(db);
}
