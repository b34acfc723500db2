import { type Kysely, sql } from 'kysely';

/**
 * Scoped API keys and secrets at rest (issue 9):
 * - `api_keys` gains what a key created through `POST /v1/api_keys` carries: a name, the
 *   organization it is confined to (deleting the organization deletes its keys), its scopes and a
 *   hint (prefix and last four characters) to recognise it by. The secret itself is stored only as
 *   its SHA-256 digest, like the generated root key.
 * - Idempotent replays are now stored encrypted with the key ring. Replays stored before this
 *   migration hold plaintext secrets (SCIM tokens, refresh tokens, webhook secrets): they are
 *   dropped. A retry of such a request within a day of the upgrade runs again instead of replaying.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table api_keys
    add column name text,
    add column organization_id text references organizations (id) on delete cascade,
    add column scopes jsonb not null default '[]',
    add column hint text`.execute(db);
  await sql`create index api_keys_organization_idx on api_keys (organization_id, id)
    where source = 'api' and revoked_at is null`.execute(db);
  await sql`delete from idempotency_keys`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from api_keys where source = 'api'`.execute(db);
  await sql`drop index if exists api_keys_organization_idx`.execute(db);
  await sql`alter table api_keys
    drop column name, drop column organization_id, drop column scopes, drop column hint`.execute(db);
}
