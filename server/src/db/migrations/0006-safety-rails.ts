import { type Kysely, sql } from 'kysely';

/**
 * Safety rails (issue 17):
 * - `deprovision_guards`: the per-connection deprovisioning circuit breaker. Its row is the lock
 *   that serialises the decision per connection (`for update` in the SCIM write transaction), so
 *   the count is right across server processes.
 * - `deprovisions`: one row per deactivation or deletion counted by an enabled guard, written in
 *   the transaction of the change itself (a rolled-back change is never counted).
 * - `directory_baseline`: each organization's members as of `event_feed.purged_through`. The
 *   retention purge folds the events it drops into it, so that the directory as of any retained
 *   cursor is the baseline plus the retained events.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table deprovision_guards (
    connection_id text primary key references connections (id) on delete cascade,
    organization_id text not null references organizations (id) on delete cascade,
    enabled boolean not null default false,
    max_in_window integer,
    max_percent real,
    window_seconds integer not null,
    counting_since timestamptz not null default now(),
    suspended_until timestamptz,
    held_at timestamptz,
    updated_at timestamptz not null default now()
  )`.execute(db);
  await sql`create table deprovisions (
    id bigserial primary key,
    organization_id text not null,
    connection_id text not null references connections (id) on delete cascade,
    user_id text not null,
    kind text not null,
    created_at timestamptz not null default now()
  )`.execute(db);
  await sql`create index deprovisions_connection_idx on deprovisions (connection_id, created_at)`.execute(db);
  await sql`create table directory_baseline (
    organization_id text not null,
    membership_id text not null,
    member jsonb not null,
    primary key (organization_id, membership_id)
  )`.execute(db);
  // The feed position the baseline reflects. An existing directory is taken as of the current
  // head: snapshots reach back to this upgrade, not before.
  await sql`alter table event_feed add column baseline_through bigint not null default 0`.execute(db);
  await sql`update event_feed set baseline_through = head`.execute(db);
  await sql`insert into directory_baseline (organization_id, membership_id, member)
    select m.organization_id, m.id, jsonb_build_object(
      'membership_id', m.id, 'user_id', u.id, 'user_name', u.user_name, 'email', u.email,
      'name', coalesce(u.display_name, u.attributes -> 'name' ->> 'formatted',
        nullif(concat_ws(' ', u.given_name, u.family_name), '')),
      'active', u.active, 'role', m.role_key, 'status', m.status, 'source', m.source, 'metadata', m.metadata)
    from memberships m join users u on u.id = m.user_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table event_feed drop column if exists baseline_through`.execute(db);
  await sql`drop table if exists directory_baseline`.execute(db);
  await sql`drop table if exists deprovisions`.execute(db);
  await sql`drop table if exists deprovision_guards`.execute(db);
  await sql`update connections set state = 'active' where state = 'deprovisioning_held'`.execute(db);
}
