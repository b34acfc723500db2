import { type Kysely, sql } from 'kysely';

/**
 * The number of live users and groups of each connection, kept by the database itself, so that a
 * SCIM list page answers its `totalResults` (which must be exact, RFC 7644 §3.4.2.4) without
 * counting the connection's rows on every page: at 100,000 users that count alone cost more than
 * the rest of the page (an index-only scan of 100,000 entries per page of an IdP's walk).
 *
 * Row triggers keep the counts in the same statement (and so the same transaction) as the change,
 * whichever code path makes it: SCIM creates and deletes, connection deletion, organization
 * deletion (cascades fire them too), purges. The trigger's WHEN clause is checked without calling
 * the function, so an update that keeps the row live (every PATCH) costs nothing. A count is the
 * sum of up to 16 rows per connection and resource: each server backend adds to its own row
 * (`pg_backend_pid() % 16`), so that concurrent creates do not queue on one row's lock until
 * their commits. Rows may go negative; only the sum means anything.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table scim_counts (
    organization_id text not null,
    connection_id text not null,
    resource text not null,
    shard smallint not null,
    n bigint not null,
    primary key (connection_id, resource, shard)
  )`.execute(db);
  // TG_TABLE_NAME ('users' or 'groups') names the resource. A row counts while it is live
  // (deleted_at is null) and belongs to a connection (/v1 users have none).
  await sql`create function scim_counts_apply() returns trigger language plpgsql as $$
    begin
      if tg_op <> 'INSERT' then
        if old.deleted_at is null and old.connection_id is not null then
          insert into scim_counts as c (organization_id, connection_id, resource, shard, n)
          values (old.organization_id, old.connection_id, tg_table_name, pg_backend_pid() % 16, -1)
          on conflict (connection_id, resource, shard) do update set n = c.n - 1;
        end if;
      end if;
      if tg_op <> 'DELETE' then
        if new.deleted_at is null and new.connection_id is not null then
          insert into scim_counts as c (organization_id, connection_id, resource, shard, n)
          values (new.organization_id, new.connection_id, tg_table_name, pg_backend_pid() % 16, 1)
          on conflict (connection_id, resource, shard) do update set n = c.n + 1;
        end if;
      end if;
      return null;
    end $$`.execute(db);
  for (const table of ['users', 'groups']) {
    const t = sql.raw(table);
    await sql`create trigger scim_counts_insert after insert on ${t} for each row
      when (new.deleted_at is null and new.connection_id is not null)
      execute function scim_counts_apply()`.execute(db);
    await sql`create trigger scim_counts_update after update of deleted_at, connection_id on ${t} for each row
      when ((old.deleted_at is null) <> (new.deleted_at is null)
            or old.connection_id is distinct from new.connection_id)
      execute function scim_counts_apply()`.execute(db);
    await sql`create trigger scim_counts_delete after delete on ${t} for each row
      when (old.deleted_at is null and old.connection_id is not null)
      execute function scim_counts_apply()`.execute(db);
  }
  // A hard-deleted connection (its organization deleted) leaves no counts behind. Deferred to the
  // commit: the cascades of an organization's deletion delete its users after its connections,
  // and each deletion adds to the rows this removes.
  await sql`create function scim_counts_forget() returns trigger language plpgsql as $$
    begin
      delete from scim_counts where connection_id = old.id;
      return null;
    end $$`.execute(db);
  await sql`create constraint trigger scim_counts_forget after delete on connections
    deferrable initially deferred for each row execute function scim_counts_forget()`.execute(db);
  // The counts of the rows that exist. The triggers above already hold their tables' locks (SHARE
  // ROW EXCLUSIVE, until this migration commits), so no write of another process falls between
  // the two: the counts start exact.
  await sql`insert into scim_counts (organization_id, connection_id, resource, shard, n)
    select organization_id, connection_id, 'users', 0, count(*) from users
    where deleted_at is null and connection_id is not null group by organization_id, connection_id
    union all
    select organization_id, connection_id, 'groups', 0, count(*) from groups
    where deleted_at is null group by organization_id, connection_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists scim_counts_forget on connections`.execute(db);
  for (const table of ['users', 'groups']) {
    const t = sql.raw(table);
    await sql`drop trigger if exists scim_counts_insert on ${t}`.execute(db);
    await sql`drop trigger if exists scim_counts_update on ${t}`.execute(db);
    await sql`drop trigger if exists scim_counts_delete on ${t}`.execute(db);
  }
  await sql`drop function if exists scim_counts_forget()`.execute(db);
  await sql`drop function if exists scim_counts_apply()`.execute(db);
  await sql`drop table if exists scim_counts`.execute(db);
}
