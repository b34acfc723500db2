import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import {
  Kysely,
  PostgresAdapter,
  PostgresDialect,
  type PostgresPool,
  type PostgresPoolClient,
  sql,
} from 'kysely';
import pg from 'pg';
import { PGlitePool } from './pglite-pool.js';
import type { DB } from './schema.js';

export type DatabaseKind = 'postgres' | 'pglite';

export type Unlisten = () => Promise<void>;

/**
 * The database as the rest of the server sees it: Kysely over one of two drivers, plus the two
 * things Kysely does not abstract (LISTEN and closing). Only this folder knows which driver it is.
 */
export interface Database {
  readonly db: Kysely<DB>;
  readonly kind: DatabaseKind;
  /**
   * Calls `onNotify` for each NOTIFY on `channel` (also for this process's own NOTIFYs). A no-op
   * when {@link notifies} is false.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<Unlisten>;
  /**
   * Whether {@link listen} hears other processes. False behind a transaction-mode pooler without
   * a direct URL: callers then learn of other processes' changes by polling.
   */
  readonly notifies: boolean;
  /** Resolves when the database answers a query, rejects otherwise (readiness). */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL, or undefined for embedded PGlite. */
  url?: string | undefined;
  /** PGlite data directory; undefined (with no url) means in memory. */
  dataDir?: string | undefined;
  poolSize?: number;
  /**
   * `transaction`: `url` is a transaction-mode pooler such as PgBouncer, which hands each
   * transaction to any server connection. Then nothing may rely on a session: no named prepared
   * statements, no `options` startup parameter (PgBouncer 1.18 refuses it), no LISTEN through it.
   */
  pooler?: 'none' | 'transaction';
  /** A direct connection to the same database, for LISTEN when `url` is a pooler. */
  directUrl?: string | undefined;
  /** Called for errors of idle pooled connections, which would otherwise crash the process. */
  onError?: (error: Error) => void;
}

// int8 (counts, positions) and numeric as JS numbers on both drivers: every value Roster stores
// in them stays far below 2^53. PGlite already returns numbers for int8.
const pgTypes = new pg.TypeOverrides();
pgTypes.setTypeParser(pg.types.builtins.INT8, (value: string) => Number.parseInt(value, 10));

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url ? openPostgres(options.url, options) : openPglite(options.dataDir);
}

async function openPostgres(url: string, options: DatabaseOptions): Promise<Database> {
  const pooled = options.pooler === 'transaction';
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    types: pgTypes,
    application_name: 'roster',
    // Prepared statements (see PreparingPool) keep one generic plan: for Roster's key lookups
    // PostgreSQL would otherwise re-plan every execution with a "custom" plan that is estimated
    // cheaper yet costs 0.3 ms of planning for 0.05 ms of execution (measured with
    // pg_stat_statements on the SCIM userName lookup). Behind a pooler there are no prepared
    // statements, and PgBouncer refuses the parameter.
    ...(pooled ? {} : { options: '-c plan_cache_mode=force_generic_plan' }),
  });
  pool.on('error', (error) => options.onError?.(error));
  const db = new Kysely<DB>({
    dialect: new RosterPostgresDialect({ pool: pooled ? pool : new PreparingPool(pool) }),
  });
  const listenUrl = options.directUrl ?? (pooled ? undefined : url);
  const listeners = listenUrl ? new PostgresListener(listenUrl, options.onError) : undefined;
  let closing: Promise<void> | undefined;

  return {
    db,
    kind: 'postgres',
    notifies: listeners !== undefined,
    listen: (channel, onNotify) => listeners?.listen(channel, onNotify) ?? Promise.resolve(async () => {}),
    ping: (timeoutMs = 2000) =>
      withTimeout(
        sql`select 1`.execute(db).then(() => undefined),
        timeoutMs,
      ),
    close() {
      closing ??= (listeners?.close() ?? Promise.resolve()).then(() => db.destroy());
      return closing;
    },
  };
}

async function openPglite(dataDir: string | undefined): Promise<Database> {
  let unlock = () => {};
  if (dataDir) {
    mkdirSync(path.resolve(dataDir), { recursive: true });
    unlock = lockDataDir(path.resolve(dataDir));
  }
  let pglite: PGlite;
  try {
    pglite = new PGlite(dataDir ? path.resolve(dataDir, 'pgdata') : undefined);
    await pglite.waitReady;
  } catch (error) {
    unlock();
    throw error;
  }
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: new PGlitePool(pglite) }) });
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

/** Advisory lock key of schema migrations ("rostmg" in ASCII, as a number). */
const MIGRATION_LOCK = 0x726f73746d67;

/**
 * Kysely's PostgreSQL migration lock is session-level and taken outside the migration's
 * transaction. Behind a transaction-mode pooler the lock, the migration and the unlock may each
 * run on a different server connection: the unlock then misses, and the lock stays held by a
 * pooled connection, so the next process to migrate waits on it for good. Here the lock opens a
 * transaction on the migration's connection and is scoped to it: the pooler keeps that server
 * connection for the whole migration, and commit or rollback (or a dead process) releases the
 * lock. Kysely's own `begin` then only draws a "transaction already in progress" warning, and its
 * commit or rollback ends the transaction opened here.
 */
class TransactionLockAdapter extends PostgresAdapter {
  // biome-ignore lint/suspicious/noExplicitAny: the migrator's connection has no typed schema
  override async acquireMigrationLock(db: Kysely<any>): Promise<void> {
    await sql`begin`.execute(db);
    await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK}::bigint)`.execute(db);
  }

  override async releaseMigrationLock(): Promise<void> {}
}

class RosterPostgresDialect extends PostgresDialect {
  override createAdapter() {
    return new TransactionLockAdapter();
  }
}

/** Most distinct statements one connection prepares; the rest run unnamed (bounded server memory). */
const MAX_PREPARED_PER_CONNECTION = 256;

/**
 * Runs parameterised queries as named prepared statements, per connection. PostgreSQL then parses
 * and plans each distinct statement once per connection instead of on every execution: for the
 * short indexed queries of the SCIM path, planning was most of the database's work (0.3 ms of
 * planning for 0.04 ms of execution, measured on the userName lookup). Filters are compiled with
 * bound values, so a handful of statement texts cover the traffic; past
 * {@link MAX_PREPARED_PER_CONNECTION} a connection runs new texts unnamed.
 */
class PreparingPool implements PostgresPool {
  readonly #pool: pg.Pool;
  readonly #prepared = new WeakMap<pg.PoolClient, Map<string, string>>();

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async connect(): Promise<PostgresPoolClient> {
    const client = await this.#pool.connect();
    let names = this.#prepared.get(client);
    if (!names) {
      names = new Map();
      this.#prepared.set(client, names);
    }
    const statements = names;
    return {
      query(text: string, values: ReadonlyArray<unknown>) {
        if (values.length === 0) return client.query(text);
        let name = statements.get(text);
        if (name === undefined && statements.size < MAX_PREPARED_PER_CONNECTION) {
          name = `roster_${createHash('sha1').update(text).digest('base64url')}`;
          statements.set(text, name);
        }
        return name === undefined
          ? client.query(text, values as unknown[])
          : client.query({ name, text, values: values as unknown[] });
      },
      release(destroy?: boolean) {
        client.release(destroy);
      },
    } as unknown as PostgresPoolClient;
  }

  end(): Promise<void> {
    return this.#pool.end();
  }
}

/**
 * One dedicated `pg` connection per process for LISTEN, re-established with back-off when it
 * drops (a restarted PostgreSQL must not silence the sequencer or long-polls for good).
 */
class PostgresListener {
  readonly #url: string;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #handlers = new Map<string, Set<(payload: string) => void>>();
  #client: pg.Client | undefined;
  #connecting: Promise<pg.Client> | undefined;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(url: string, onError?: (error: Error) => void) {
    this.#url = url;
    this.#onError = onError;
  }

  async listen(channel: string, onNotify: (payload: string) => void): Promise<Unlisten> {
    let handlers = this.#handlers.get(channel);
    const first = !handlers;
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(channel, handlers);
    }
    handlers.add(onNotify);
    const client = await this.#connect();
    if (first) await client.query(`listen ${pg.escapeIdentifier(channel)}`);
    return async () => {
      handlers.delete(onNotify);
      if (handlers.size === 0 && this.#handlers.get(channel) === handlers) {
        this.#handlers.delete(channel);
        if (this.#client && !this.#closed) {
          await this.#client.query(`unlisten ${pg.escapeIdentifier(channel)}`).catch(() => {});
        }
      }
    };
  }

  #connect(): Promise<pg.Client> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.#url, application_name: 'roster-listen' });
      client.on('notification', (message) => {
        for (const handler of this.#handlers.get(message.channel) ?? []) handler(message.payload ?? '');
      });
      client.on('error', (error) => {
        this.#onError?.(error);
        this.#reconnectLater(client);
      });
      client.on('end', () => this.#reconnectLater(client));
      try {
        await client.connect();
      } catch (error) {
        this.#connecting = undefined;
        throw error;
      }
      for (const channel of this.#handlers.keys())
        await client.query(`listen ${pg.escapeIdentifier(channel)}`);
      this.#client = client;
      this.#connecting = undefined;
      return client;
    })();
    return this.#connecting;
  }

  #reconnectLater(client: pg.Client, delayMs = 500) {
    if (this.#client !== client && this.#client !== undefined) return;
    this.#client = undefined;
    if (this.#closed || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closed || this.#handlers.size === 0) return;
      this.#connect().catch((error: Error) => {
        this.#onError?.(error);
        this.#reconnectLater(client, Math.min(delayMs * 2, 10_000));
      });
    }, delayMs);
    this.#retryTimer.unref();
  }

  async close() {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const client = this.#client ?? (await this.#connecting?.catch(() => undefined));
    this.#client = undefined;
    await client?.end().catch(() => {});
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`database did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
