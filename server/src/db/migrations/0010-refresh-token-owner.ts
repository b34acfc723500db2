import { type Kysely, sql } from 'kysely';

/**
 * A refresh token belongs to its organization through its session alone. The direct foreign key
 * to `organizations` made every token insert take a KEY SHARE lock on the organization row: one
 * per refresh, and with concurrent refreshes in one organization PostgreSQL has to record the
 * lockers as a MultiXact on that hot row. Deleting an organization still removes its tokens
 * (organization → sessions → refresh_tokens, both `on delete cascade`); the column stays for
 * lookups by organization.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table refresh_tokens drop constraint if exists refresh_tokens_organization_id_fkey`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table refresh_tokens add constraint refresh_tokens_organization_id_fkey
    foreign key (organization_id) references organizations (id) on delete cascade`.execute(db);
}
