import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';

/** `npm run migrate`: apply pending migrations to DATABASE_URL (or the embedded database) and exit. */
async function run(): Promise<void> {
  const config = loadConfig(process.env);
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    pgliteSharedBuffers: config.pgliteSharedBuffers,
    pgliteWasmTier: config.pgliteWasmTier,
    poolSize: 1,
    pooler: config.databasePooler,
  });
  try {
    const applied = await migrateToLatest(database.db);
    process.stdout.write(
      applied.length ? `applied: ${applied.join(', ')}\n` : `up to date (${database.kind})\n`,
    );
  } finally {
    await database.close();
  }
}

run().catch((error: unknown) => {
  const message =
    error instanceof ConfigError ? `invalid configuration: ${error.message}` : (error as Error).message;
  process.stderr.write(`roster migrate: ${message}\n`);
  process.exit(1);
});
