import { type Kysely, sql } from 'kysely';

/**
 * The Admin Portal (issue 15):
 * - `portal_links`: one-time links an app hands to a customer's IT admin. Only the SHA-256 of the
 *   link token is stored; `used_at` makes a link work once (a conditional update claims it).
 * - `portal_sessions`: what an opened link becomes, bound to one organization; the cookie holds a
 *   random secret whose SHA-256 is `token_hash`.
 * - `events.actor`: who made a change when it was not the management API or SCIM. Filled by the
 *   column default from the transaction-local setting `roster.actor`, which the portal sets at
 *   the start of its transactions (see portal/actor.ts), so the service functions that append
 *   events stay unaware of who calls them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table portal_links (
    id text primary key,
    organization_id text not null references organizations (id) on delete cascade,
    token_hash text not null unique,
    intent text not null,
    return_url text,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz
  )`.execute(db);
  await sql`create table portal_sessions (
    id text primary key,
    organization_id text not null references organizations (id) on delete cascade,
    link_id text not null references portal_links (id) on delete cascade,
    token_hash text not null unique,
    return_url text,
    created_at timestamptz not null,
    expires_at timestamptz not null
  )`.execute(db);
  await sql`create index portal_links_expires_idx on portal_links (expires_at)`.execute(db);
  await sql`create index portal_sessions_expires_idx on portal_sessions (expires_at)`.execute(db);
  await sql`alter table events add column actor jsonb
    default nullif(current_setting('roster.actor', true), '')::jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table events drop column if exists actor`.execute(db);
  await sql`drop table if exists portal_sessions`.execute(db);
  await sql`drop table if exists portal_links`.execute(db);
}
