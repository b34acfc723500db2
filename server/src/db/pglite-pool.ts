import type { PGlite } from '@electric-sql/pglite';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import { DatabaseUnavailableError } from './errors.js';

/**
 * A `pg.Pool`-shaped facade over one embedded PGlite instance, so that Kysely's own
 * PostgresDialect (and therefore the same SQL and the same transaction handling) serves both
 * drivers.
 *
 * PGlite is a single connection: two interleaved transactions on it would be one transaction.
 * `connect()` therefore hands out the connection to one holder at a time, in FIFO order, and the
 * next holder waits until `release()`. Code holding a transaction must not wait for another
 * connection (it would wait forever here, and starve a small pool on PostgreSQL too).
 */
export class PGlitePool implements PostgresPool {
  readonly #pg: PGlite;
  readonly #queueLimit: number;
  readonly #waitTimeoutMs: number;
  #tail: Promise<void> = Promise.resolve();
  #ended = false;
  #waiting = 0;

  /**
   * @param options.queueLimit most holders waiting for the connection; more fail at once.
   * @param options.waitTimeoutMs how long one waits before it gives up (its turn is skipped).
   * Both fail with DatabaseUnavailableError (answered 503): a stalled query must not pile up
   * requests without bound.
   */
  constructor(pg: PGlite, options: { queueLimit?: number; waitTimeoutMs?: number } = {}) {
    this.#pg = pg;
    this.#queueLimit = options.queueLimit ?? Number.POSITIVE_INFINITY;
    this.#waitTimeoutMs = options.waitTimeoutMs ?? 0;
  }

  async connect(): Promise<PostgresPoolClient> {
    if (this.#ended) throw new Error('the embedded database is closed');
    if (this.#waiting >= this.#queueLimit) {
      throw new DatabaseUnavailableError(`${this.#waiting} queries already wait for the embedded database`);
    }
    let release!: () => void;
    const previous = this.#tail;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#waiting++;
    try {
      await this.#wait(previous);
    } catch (error) {
      // Gave up waiting: pass the turn on as soon as it comes.
      void previous.then(release);
      throw error;
    } finally {
      this.#waiting--;
    }
    let released = false;
    const pg = this.#pg;
    const client = {
      async query<R>(sqlText: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
        const result = await pg.query<R>(sqlText, parameters as unknown[]);
        const command = commandOf(sqlText);
        return { command, rowCount: result.affectedRows ?? result.rows.length, rows: result.rows };
      },
      release() {
        if (released) return;
        released = true;
        release();
      },
    };
    return client as PostgresPoolClient;
  }

  #wait(previous: Promise<void>): Promise<void> {
    if (this.#waitTimeoutMs <= 0) return previous;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      previous,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new DatabaseUnavailableError(`the embedded database was busy for ${this.#waitTimeoutMs} ms`),
            ),
          this.#waitTimeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  }

  async end(): Promise<void> {
    this.#ended = true;
    await this.#tail;
  }
}

const COMMANDS = new Set(['UPDATE', 'DELETE', 'INSERT', 'SELECT', 'MERGE', 'COMMIT', 'ROLLBACK']);

function commandOf(sqlText: string): PostgresQueryResult<unknown>['command'] {
  const word = /^\s*([a-z]+)/i.exec(sqlText)?.[1]?.toUpperCase() ?? 'SELECT';
  return (COMMANDS.has(word) ? word : 'SELECT') as PostgresQueryResult<unknown>['command'];
}
