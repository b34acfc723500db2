import type { PGlite } from '@electric-sql/pglite';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';

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
  #tail: Promise<void> = Promise.resolve();
  #ended = false;

  constructor(pg: PGlite) {
    this.#pg = pg;
  }

  async connect(): Promise<PostgresPoolClient> {
    if (this.#ended) throw new Error('the embedded database is closed');
    let release!: () => void;
    const previous = this.#tail;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
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
