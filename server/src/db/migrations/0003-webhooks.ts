import { type Kysely, sql } from 'kysely';

/**
 * Webhook endpoints and their delivery log, and a small settings table (the generated encryption
 * key when ROSTER_ENCRYPTION_KEY is unset on PostgreSQL). An endpoint follows the feed with its own
 * cursor: deliveries are ordered per endpoint and survive restarts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table instance_settings (
    name text primary key,
    value text not null
  )`.execute(db);
  await sql`create table webhook_endpoints (
    id text primary key,
    organization_id text,
    url text not null,
    description text,
    types jsonb not null default '[]',
    secret text not null,
    enabled boolean not null default true,
    cursor_position bigint not null,
    attempts integer not null default 0,
    first_failure_at timestamptz,
    next_attempt_at timestamptz not null default now(),
    lease_owner text,
    lease_until timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  )`.execute(db);
  await sql`create table webhook_deliveries (
    id text primary key,
    endpoint_id text not null references webhook_endpoints (id) on delete cascade,
    organization_id text,
    event_id text not null,
    event_type text not null,
    position bigint not null,
    attempt integer not null,
    outcome text not null,
    response_status integer,
    error text,
    duration_ms real not null,
    created_at timestamptz not null default now()
  )`.execute(db);
  await sql`create index webhook_deliveries_endpoint_idx on webhook_deliveries (endpoint_id, id)`.execute(db);
  await sql`create index webhook_deliveries_created_idx on webhook_deliveries (created_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists webhook_deliveries`.execute(db);
  await sql`drop table if exists webhook_endpoints`.execute(db);
  await sql`drop table if exists instance_settings`.execute(db);
}
