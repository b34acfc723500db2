import { type Kysely, sql } from 'kysely';

/**
 * A deleted user is in no group. A SCIM deletion removes the user's group rows in the statement
 * that marks it deleted, but that statement sees the group rows of its snapshot: a member add
 * that committed after the snapshot, while the deletion waited for the user row (the add holds it
 * `for share` from its check that the user is live until it commits), would leave the deleted
 * user in the group and counted in `member_count`. This trigger looks again once the user row is
 * marked deleted, with a snapshot of its own (taken after that wait), and raises a serialization
 * failure when a group row is left: the deletion is rolled back and run again (Context.write and
 * Context.transaction retry 40001), and that run removes the row with its count and its event.
 * It costs one index probe per deleted user.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create function deleted_user_groups_check() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from group_members where user_id = new.id) then
        raise exception 'user % was added to a group while it was deleted', new.id
          using errcode = 'serialization_failure';
      end if;
      return null;
    end $$`.execute(db);
  await sql`create trigger deleted_user_groups_check after update of deleted_at on users for each row
    when (old.deleted_at is null and new.deleted_at is not null and new.connection_id is not null)
    execute function deleted_user_groups_check()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists deleted_user_groups_check on users`.execute(db);
  await sql`drop function if exists deleted_user_groups_check()`.execute(db);
}
