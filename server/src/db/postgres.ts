import { createHash } from 'node:crypto';
import {
  Kysely,
  PostgresAdapter,
  PostgresDialect,
  type PostgresPool,
  type PostgresPoolClient,
  sql,
} from 'kysely';
import pg from 'pg';
import {
  DATABASE_DEFAULTS,
  type Database,
  type DatabaseOptions,
  type Unlisten,
  withTimeout,
} from './database-api.js';
import { DatabaseUnavailableError } from './errors.js';
import type { DB } from './schema.js';

/**
 * The SET statement run on each new PostgreSQL connection. Sent after connecting rather than as
 * startup `options`, which PgBouncer refuses.
 */
export function sessionSettingsSql(options: DatabaseOptions): string {
  const ms = (value: number) => `'${Math.max(0, Math.trunc(value))}ms'`;
  return [
    // Prepared statements (see PreparingPool) keep one generic plan: for Roster's key lookups
    // PostgreSQL would otherwise re-plan every execution with a "custom" plan that is estimated
    // cheaper yet costs 0.3 ms of planning for 0.05 ms of execution (measured with
    // pg_stat_statements on the SCIM userName lookup).
    'set plan_cache_mode = force_generic_plan',
    `set statement_timeout = ${ms(options.statementTimeoutMs ?? DATABASE_DEFAULTS.statementTimeoutMs)}`,
    `set lock_timeout = ${ms(options.lockTimeoutMs ?? DATABASE_DEFAULTS.lockTimeoutMs)}`,
    `set idle_in_transaction_session_timeout = ${ms(options.idleInTransactionTimeoutMs ?? DATABASE_DEFAULTS.idleInTransactionTimeoutMs)}`,
  ].join('; ');
}

// int8 (counts, positions) and numeric as JS numbers on both drivers: every value Roster stores
// in them stays far below 2^53. PGlite already returns numbers for int8.
const pgTypes = new pg.TypeOverrides();
pgTypes.setTypeParser(pg.types.builtins.INT8, (value: string) => Number.parseInt(value, 10));

export async function openPostgres(url: string, options: DatabaseOptions): Promise<Database> {
  const pooled = options.pooler === 'transaction';
  const connectTimeoutMs = options.connectTimeoutMs ?? DATABASE_DEFAULTS.connectTimeoutMs;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    types: pgTypes,
    application_name: 'roster',
    // Bounds both opening a connection and waiting in pg-pool's queue for a busy pool.
    connectionTimeoutMillis: connectTimeoutMs,
  });
  pool.on('error', (error) => options.onError?.(error));
  // Behind a transaction-mode pooler a SET would stay on whichever server connection ran it, for
  // other clients, and be missing on the others: there the timeouts belong on the role.
  if (!pooled && (options.sessionSettings ?? 'connect') === 'connect') {
    const settings = sessionSettingsSql(options);
    // pg queues this before any query of whoever gets the new connection: no extra wait for them.
    pool.on('connect', (client) => {
      client.query(settings).catch((error: Error) => options.onError?.(error));
    });
  }
  const preparing = new PreparingPool(pool, {
    queueLimit: options.queueLimit ?? DATABASE_DEFAULTS.queueLimit,
    onError: options.onError,
    // Behind a pooler every statement runs unnamed: PgBouncer before 1.21 does not carry named
    // prepared statements from one transaction to the next.
    prepare: !pooled,
  });
  const db = new Kysely<DB>({ dialect: new RosterPostgresDialect({ pool: preparing }) });
  const listenUrl = options.directUrl ?? (pooled ? undefined : url);
  const listeners = listenUrl
    ? new PostgresListener(listenUrl, options.onError, connectTimeoutMs)
    : undefined;
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
 * {@link MAX_PREPARED_PER_CONNECTION} a connection runs new texts unnamed. Behind a
 * transaction-mode pooler it names nothing and only bounds the wait for a connection.
 */
class PreparingPool implements PostgresPool {
  readonly #pool: pg.Pool;
  readonly #wrappers = new WeakMap<
    pg.PoolClient,
    { connection: PostgresPoolClient; onError: (error: Error) => void }
  >();
  readonly #queueLimit: number;
  /** connect() calls not yet answered: the pool's wait queue, as this process sees it. */
  #waiting = 0;

  readonly #onError: ((error: Error) => void) | undefined;
  /** Whether to name statements at all (not behind a transaction-mode pooler). */
  readonly #prepare: boolean;

  constructor(
    pool: pg.Pool,
    options: { queueLimit: number; onError: ((error: Error) => void) | undefined; prepare: boolean },
  ) {
    this.#pool = pool;
    this.#queueLimit = options.queueLimit;
    this.#onError = options.onError;
    this.#prepare = options.prepare;
  }

  async connect(): Promise<PostgresPoolClient> {
    // A stalled database must not pile up requests: past the limit, fail at once (503).
    if (this.#waiting >= this.#queueLimit) {
      throw new DatabaseUnavailableError(`${this.#waiting} queries already wait for a database connection`);
    }
    this.#waiting++;
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw new DatabaseUnavailableError(`no database connection: ${(error as Error).message}`, {
        cause: error,
        retryAfterSeconds: 5,
      });
    } finally {
      this.#waiting--;
    }
    // One wrapper per pg client, reused on every checkout: Kysely keeps its connection object per
    // the client it is given, so a new wrapper per checkout made it build a new one per query too.
    let wrapper = this.#wrappers.get(client);
    if (!wrapper) {
      wrapper = this.#wrap(client);
      this.#wrappers.set(client, wrapper);
    }
    // pg-pool listens for errors of idle connections only: a connection that drops while checked
    // out (between two queries of a transaction) would otherwise throw an uncaught 'error' and
    // end the process. Its next query fails instead (answered 503), and the pool discards it.
    client.on('error', wrapper.onError);
    return wrapper.connection;
  }

  #wrap(client: pg.PoolClient): { connection: PostgresPoolClient; onError: (error: Error) => void } {
    const statements = new Map<string, string>();
    const prepare = this.#prepare;
    const onError = (error: Error) => this.#onError?.(error);
    const connection = {
      query(text: string, values: ReadonlyArray<unknown>) {
        if (values.length === 0) return client.query(text);
        let name = statements.get(text);
        if (name === undefined && prepare && statements.size < MAX_PREPARED_PER_CONNECTION) {
          name = `roster_${createHash('sha1').update(text).digest('base64url')}`;
          statements.set(text, name);
        }
        if (name === undefined) return client.query(text, values as unknown[]);
        // Not client.query({ name, text, values }): pg copies such a config through its property
        // descriptors (cloneQueryConfig, 1.5 % of a SCIM lookup's server CPU) and chains a second
        // promise to rewrite an error's stack. A Query made from the text is submitted as it is.
        const statement = name;
        return new Promise((resolve, reject) => {
          const query = new pg.Query(text, values as unknown[], (error, result) =>
            error ? reject(error) : resolve(result),
          );
          // The name pg's Query reads from a config (untyped in @types/pg; tested in database.test.ts).
          (query as unknown as { name: string }).name = statement;
          client.query(query);
        });
      },
      release(destroy?: boolean) {
        client.removeListener('error', onError);
        client.release(destroy);
      },
    } as unknown as PostgresPoolClient;
    return { connection, onError };
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

  readonly #connectTimeoutMs: number;

  constructor(url: string, onError: ((error: Error) => void) | undefined, connectTimeoutMs: number) {
    this.#url = url;
    this.#onError = onError;
    this.#connectTimeoutMs = connectTimeoutMs;
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
      const client = new pg.Client({
        connectionString: this.#url,
        application_name: 'roster-listen',
        connectionTimeoutMillis: this.#connectTimeoutMs,
      });
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
