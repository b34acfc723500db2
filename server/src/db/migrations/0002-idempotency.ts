import { type Kysely, sql } from 'kysely';

/**
 * Idempotency keys of management API POSTs (Stripe-style): the first request with a key stores its
 * response; a retry with the same key and body gets that response again, for 24 hours.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table idempotency_keys (
    key_hash text primary key,
    request_hash text not null,
    status integer,
    response text,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
  )`.execute(db);
  await sql`create index idempotency_keys_expires_idx on idempotency_keys (expires_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists idempotency_keys`.execute(db);
}
