import type { Kysely } from 'kysely';
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
  /** PGlite's PostgreSQL `shared_buffers` in bytes (ROSTER_PGLITE_SHARED_BUFFERS). */
  pgliteSharedBuffers?: number;
  /** How V8 compiles PGlite's WebAssembly (ROSTER_PGLITE_WASM_TIER); default `optimizing`. */
  pgliteWasmTier?: 'optimizing' | 'baseline';
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
  /**
   * How long a query waits for a connection, opening one or for a busy pool to free one (ms);
   * then it fails with {@link DatabaseUnavailableError}. Default 5 s.
   */
  connectTimeoutMs?: number;
  /** Most queries waiting for a connection; more fail at once with DatabaseUnavailableError. Default 200. */
  queueLimit?: number;
  /** PostgreSQL `statement_timeout` (ms, 0 = none). Default 30 s. */
  statementTimeoutMs?: number;
  /** PostgreSQL `lock_timeout` (ms, 0 = none). Default 10 s. */
  lockTimeoutMs?: number;
  /** PostgreSQL `idle_in_transaction_session_timeout` (ms, 0 = none). Default 60 s. */
  idleInTransactionTimeoutMs?: number;
  /**
   * How the session settings (the timeouts and `plan_cache_mode`) reach PostgreSQL: `connect` sends
   * one SET statement on each new connection; `none` sends nothing, for poolers that do not keep
   * session state (PgBouncer in transaction mode): set them on the role instead.
   */
  sessionSettings?: 'connect' | 'none';
}

export const DATABASE_DEFAULTS = {
  connectTimeoutMs: 5000,
  queueLimit: 200,
  statementTimeoutMs: 30_000,
  lockTimeoutMs: 10_000,
  idleInTransactionTimeoutMs: 60_000,
} as const;

/** Rejects when `promise` has not settled within `ms` (for readiness pings). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`database did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
