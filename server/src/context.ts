import type { Kysely, Transaction } from 'kysely';
import type { Config } from './config.js';
import type { DatabaseKind } from './db/database.js';
import type { DB } from './db/schema.js';
import type { Logger } from './log.js';

/**
 * What every service function receives: plain dependencies, no request or response objects and
 * no module-level singletons. `now` is injected so that expiry and retention are testable without
 * sleeping.
 */
export interface Context {
  readonly db: Kysely<DB>;
  readonly dbKind: DatabaseKind;
  readonly log: Logger;
  readonly now: () => Date;
  readonly settings: Settings;
  /**
   * Runs `fn` in one transaction; after it commits, the event sequencer is kicked so that the
   * events the transaction appended reach the feed promptly.
   */
  transaction<T>(fn: (trx: Transaction<DB>) => Promise<T>): Promise<T>;
}

/** The part of the configuration services need. */
export type Settings = Pick<
  Config,
  | 'sessionTtlMs'
  | 'sessionLifetimeMs'
  | 'scimTokenGraceMs'
  | 'deletedRetentionMs'
  | 'eventRetentionMs'
  | 'syncLogRetentionMs'
> & {
  /** Externally visible base URL, without a trailing slash. */
  readonly publicUrl: string;
};

export interface ContextOptions {
  db: Kysely<DB>;
  dbKind: DatabaseKind;
  log: Logger;
  settings: Settings;
  now?: () => Date;
  afterCommit?: () => void;
}

export function createContext(options: ContextOptions): Context {
  const afterCommit = options.afterCommit ?? (() => {});
  return {
    db: options.db,
    dbKind: options.dbKind,
    log: options.log,
    now: options.now ?? (() => new Date()),
    settings: options.settings,
    async transaction(fn) {
      const result = await options.db.transaction().execute(fn);
      afterCommit();
      return result;
    },
  };
}
