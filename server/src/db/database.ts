import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { DATABASE_DEFAULTS, type Database, type DatabaseOptions, withTimeout } from './database-api.js';
import { DEFAULT_PGLITE_SHARED_BUFFERS, openPgliteInstance } from './pglite.js';
import { PGlitePool } from './pglite-pool.js';
import { openPostgres } from './postgres.js';
import type { DB } from './schema.js';

export {
  DATABASE_DEFAULTS,
  type Database,
  type DatabaseKind,
  type DatabaseOptions,
  type Unlisten,
} from './database-api.js';
export { sessionSettingsSql } from './postgres.js';

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url ? openPostgres(options.url, options) : openPglite(options);
}

async function openPglite(options: DatabaseOptions): Promise<Database> {
  const { dataDir } = options;
  let unlock = () => {};
  if (dataDir) {
    mkdirSync(path.resolve(dataDir), { recursive: true });
    unlock = lockDataDir(path.resolve(dataDir));
  }
  let pglite: PGlite;
  try {
    pglite = await openPgliteInstance(dataDir ? path.resolve(dataDir, 'pgdata') : undefined, {
      sharedBuffers: options.pgliteSharedBuffers ?? DEFAULT_PGLITE_SHARED_BUFFERS,
      wasmTier: options.pgliteWasmTier ?? 'optimizing',
    });
  } catch (error) {
    unlock();
    throw error;
  }
  const pool = new PGlitePool(pglite, {
    queueLimit: options.queueLimit ?? DATABASE_DEFAULTS.queueLimit,
    waitTimeoutMs: options.connectTimeoutMs ?? DATABASE_DEFAULTS.connectTimeoutMs,
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    db,
    kind: 'pglite',
    notifies: true,
    async listen(channel, onNotify) {
      const unlisten = await pglite.listen(channel, onNotify);
      return async () => {
        if (!closed) await unlisten();
      };
    },
    ping: (timeoutMs = 2000) =>
      withTimeout(
        sql`select 1`.execute(db).then(() => undefined),
        timeoutMs,
      ),
    async close() {
      if (closed) return;
      await db.destroy();
      closed = true;
      await pglite.close();
      unlock();
    },
  };
}

/**
 * The embedded database is one PostgreSQL backend inside this process: a second process opening
 * the same files would corrupt them. A lock file holding the owner's pid keeps it to one process;
 * a lock left by a process that no longer runs is taken over.
 */
function lockDataDir(dir: string): () => void {
  const lockPath = path.join(dir, 'roster.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
      if (Number.isInteger(owner) && owner !== process.pid && isRunning(owner)) {
        throw new Error(
          `another Roster process (pid ${owner}) is using ${dir}; the embedded database serves one process, set DATABASE_URL to run several`,
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`cannot lock ${dir}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
