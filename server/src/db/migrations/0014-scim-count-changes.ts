import { type Kysely, sql } from 'kysely';

/**
 * A change stamp beside each count of migration 0009: `changes` grows by one on every +1 and every
 * -1 of `n`, in the same row update of the same trigger (no extra write per change). Summed over
 * a connection's shard rows for one resource, it only grows, so two reads of the sum, each in its
 * own snapshot, that are equal mean that no live row of that connection was added or removed
 * between the two snapshots (an update that keeps a row live, every PATCH, neither fires the
 * trigger nor moves the row in the default order: ids do not change).
 *
 * A SCIM page at an offset uses that (directory/scim-paging.ts, PageAnchors): a process keeps
 * every K-th id of a connection's default order with the stamp read by the same statement, and a
 * page's statement starts its skip from the nearest of those ids only when the stamp it reads in
 * its own snapshot is the same; otherwise it skips from the start, as before.
 *
 * Existing rows start at 0 (the column's default): only the equality of two sums read after this
 * migration means anything, never a sum's value.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table scim_counts add column changes bigint not null default 0`.execute(db);
  await sql`create or replace function scim_counts_apply() returns trigger language plpgsql as $$
    begin
      if tg_op <> 'INSERT' then
        if old.deleted_at is null and old.connection_id is not null then
          insert into scim_counts as c (organization_id, connection_id, resource, shard, n, changes)
          values (old.organization_id, old.connection_id, tg_table_name, pg_backend_pid() % 16, -1, 1)
          on conflict (connection_id, resource, shard) do update set n = c.n - 1, changes = c.changes + 1;
        end if;
      end if;
      if tg_op <> 'DELETE' then
        if new.deleted_at is null and new.connection_id is not null then
          insert into scim_counts as c (organization_id, connection_id, resource, shard, n, changes)
          values (new.organization_id, new.connection_id, tg_table_name, pg_backend_pid() % 16, 1, 1)
          on conflict (connection_id, resource, shard) do update set n = c.n + 1, changes = c.changes + 1;
        end if;
      end if;
      return null;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // The function of migration 0009, then the column.
  await sql`create or replace function scim_counts_apply() returns trigger language plpgsql as $$
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
  await sql`alter table scim_counts drop column if exists changes`.execute(db);
}
