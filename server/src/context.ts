import type { Kysely, Transaction } from 'kysely';
import type { Config } from './config.js';
import type { DatabaseKind } from './db/database.js';
import { isSerializationFailure } from './db/errors.js';
import type { DB } from './db/schema.js';
import { PageAnchors } from './directory/scim-paging.js';
import { TtlCache } from './lib/ttl-cache.js';
import type { Logger } from './log.js';
import type { ScimAuthCheck } from './scim-principal.js';

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
   * The feed head this process last saw committed. A list reads it before its data, so its
   * `event_cursor` is never ahead of what the data reflects.
   */
  feedHead(): number;
  /** Per-process cache of SCIM token checks (see directory/scim-tokens.ts). */
  readonly scimAuthCache: TtlCache<ScimAuthCheck>;
  /** Per-process rank anchors of the SCIM lists' default order (see directory/scim-paging.ts). */
  readonly pageAnchors: PageAnchors;
  /**
   * Runs `fn` in one transaction; after it commits, the event sequencer is kicked so that the
   * events the transaction appended reach the feed promptly.
   */
  transaction<T>(fn: (trx: Transaction<DB>) => Promise<T>): Promise<T>;
  /**
   * Runs one self-contained write (a single statement, atomic on its own) without BEGIN/COMMIT
   * round trips, then kicks the sequencer like {@link transaction}.
   */
  write<T>(fn: (db: Kysely<DB>) => Promise<T>): Promise<T>;
}

/** The part of the configuration services need. */
export type Settings = Pick<
  Config,
  | 'sessionTtlMs'
  | 'sessionLifetimeMs'
  | 'refreshReuseIntervalMs'
  | 'refreshRateLimit'
  | 'refreshSynchronousCommit'
  | 'scimTokenGraceMs'
  | 'deletedRetentionMs'
  | 'eventRetentionMs'
  | 'syncLogRetentionMs'
  | 'portalSessionTtlMs'
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
  /** How long a SCIM token check is cached in this process; 0 disables the cache. */
  scimAuthCacheMs?: number;
  feedHead?: () => number;
}

export function createContext(options: ContextOptions): Context {
  const afterCommit = options.afterCommit ?? (() => {});
  return {
    db: options.db,
    dbKind: options.dbKind,
    log: options.log,
    now: options.now ?? (() => new Date()),
    settings: options.settings,
    scimAuthCache: new TtlCache<ScimAuthCheck>(options.scimAuthCacheMs ?? 1000),
    pageAnchors: new PageAnchors(options.db, {
      onBuildError: (error, where) =>
        options.log.warn(
          { err: error, connection_id: where.connectionId, resource: where.table },
          'building the rank anchors of SCIM pages failed; pages skip from the start meanwhile',
        ),
    }),
    feedHead: options.feedHead ?? (() => 0),
    async transaction(fn) {
      const result = await retryingConflicts(() => options.db.transaction().execute(fn));
      afterCommit();
      return result;
    },
    async write(fn) {
      const result = await retryingConflicts(() => fn(options.db));
      afterCommit();
      return result;
    },
  };
}

/** How often a transaction that PostgreSQL rolled back as a deadlock victim is run again. */
const CONFLICT_ATTEMPTS = 4;

/**
 * Runs `attempt` again when PostgreSQL rolled it back as a deadlock victim or a serialization
 * failure (40P01, 40001). Both roll back the whole transaction (or the one statement of a
 * `write`), so running it again is safe, and it is what PostgreSQL's documentation asks of the
 * client. The write paths take their locks in a fixed order so that this stays rare; it keeps a
 * cycle that slips through from reaching the client as a 500. A short random pause lets the
 * winner commit first.
 */
async function retryingConflicts<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (n >= CONFLICT_ATTEMPTS || !isSerializationFailure(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * n));
    }
  }
}
