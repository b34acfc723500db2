import { type Kysely, type Migration, type MigrationResultSet, Migrator } from 'kysely';
import * as m0001 from './migrations/0001-initial.js';
import * as m0002 from './migrations/0002-idempotency.js';
import * as m0003 from './migrations/0003-webhooks.js';
import * as m0004 from './migrations/0004-sessions.js';
import * as m0005 from './migrations/0005-api-keys.js';
import * as m0006 from './migrations/0006-safety-rails.js';
import * as m0007 from './migrations/0007-portal.js';
import * as m0008 from './migrations/0008-shared-state.js';
import * as m0009 from './migrations/0009-scim-counts.js';
import * as m0010 from './migrations/0010-refresh-token-owner.js';
import * as m0011 from './migrations/0011-deleted-user-groups.js';
import * as m0013 from './migrations/0013-refresh-generation.js';
import * as m0014 from './migrations/0014-scim-count-changes.js';
import * as m0015 from './migrations/0015-revoked-token-bound.js';

/**
 * Migrations are imported statically (not read from a folder at run time) so that the bundled
 * server carries them. Names sort in the order they apply; never rename or edit one that has
 * shipped: add a new one.
 */
const migrations: Record<string, Migration> = {
  '0001-initial': m0001,
  '0002-idempotency': m0002,
  '0003-webhooks': m0003,
  '0004-sessions': m0004,
  '0005-api-keys': m0005,
  '0006-safety-rails': m0006,
  '0007-portal': m0007,
  '0008-shared-state': m0008,
  '0009-scim-counts': m0009,
  '0010-refresh-token-owner': m0010,
  '0011-deleted-user-groups': m0011,
  // 0012 was reserved for a change that was not made, and must stay unused: Kysely refuses a
  // migration that sorts before one a database has already applied.
  '0013-refresh-generation': m0013,
  '0014-scim-count-changes': m0014,
  '0015-revoked-token-bound': m0015,
};

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * Brings the schema up to date. Safe to call from several processes at once (Kysely holds an
 * advisory lock for the duration) and a no-op when nothing is pending.
 * @returns the names of the migrations applied by this call.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations run before any typed schema exists
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'roster_migrations',
    migrationLockTableName: 'roster_migrations_lock',
  });
  const { error, results }: MigrationResultSet = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(`migration ${failed} failed: ${(error as Error).message ?? String(error)}`, {
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
