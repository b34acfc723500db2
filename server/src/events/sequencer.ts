import { sql } from 'kysely';
import type { Database, Unlisten } from '../db/database.js';
import type { Logger } from '../log.js';

/** NOTIFY channel on which a sequencer announces a new feed head (payload: the head). */
export const FEED_CHANNEL = 'roster_feed';

/** Advisory lock key of the numbering transaction ("roster" in ASCII, as a number). */
const SEQUENCER_LOCK = 0x726f73746572;

export interface SequencerOptions {
  database: Database;
  log: Logger;
  /** Fallback poll for events committed by a process that died before kicking. */
  pollIntervalMs?: number;
  batchSize?: number;
}

/**
 * Assigns feed positions to committed events, in commit order.
 *
 * Writers insert events with `position = null` in their own transactions and kick the sequencer
 * after committing. Numbering runs in a short transaction that first takes a transaction-scoped
 * advisory lock, so across all server processes one numbering transaction runs at a time; the
 * statement after the lock takes a fresh snapshot and so sees every event committed before it,
 * including the numbers the previous holder assigned. Positions therefore grow in the order in
 * which batches commit, a batch is visible to readers all at once, and readers (who see only
 * numbered events) can never read past an event that is numbered later: no gaps, no repeats.
 * Within a batch events are ordered by `seq`, which is taken at insert time; a change that waited
 * on another's row lock inserts its event after that one committed, so two changes to one
 * resource keep their order.
 *
 * A process killed mid-transaction leaves nothing (its events roll back with its changes); one
 * killed after committing but before kicking is covered by every other process's poll.
 */
export class Sequencer {
  readonly #database: Database;
  readonly #log: Logger;
  readonly #pollIntervalMs: number;
  readonly #batchSize: number;
  readonly #waiters = new Set<(head: number) => void>();
  #running: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: Unlisten | undefined;
  #stopped = false;
  #head = 0;

  constructor(options: SequencerOptions) {
    this.#database = options.database;
    this.#log = options.log;
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#batchSize = options.batchSize ?? 5000;
  }

  /** Starts polling and listening for other processes' announcements. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#unlisten = await this.#database.listen(FEED_CHANNEL, (payload) => {
      const head = Number(payload);
      if (Number.isFinite(head)) this.#advance(head);
    });
    const tick = () => {
      if (this.#stopped) return;
      this.kick();
      this.#timer = setTimeout(tick, this.#pollIntervalMs);
      this.#timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#unlisten?.();
    await this.#running;
    for (const waiter of this.#waiters) waiter(this.#head);
    this.#waiters.clear();
  }

  /** Asks for a numbering run soon; cheap and safe to call after every write transaction. */
  kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
  }

  /** Resolves when every event committed before this call has a position. */
  async flush(): Promise<void> {
    await this.#running;
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
    await this.#running;
  }

  /** The highest position this process has seen assigned. */
  get head(): number {
    return this.#head;
  }

  /**
   * Resolves with the new head once the feed advances past `after`, or with the current head
   * after `timeoutMs` or when `signal` aborts.
   */
  waitForAdvance(after: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    if (this.#head > after || this.#stopped) return Promise.resolve(this.#head);
    return new Promise((resolve) => {
      const done = (head: number) => {
        if (head <= after && !this.#stopped && !signal?.aborted && Date.now() < deadline) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(done);
        resolve(this.#head);
      };
      const deadline = Date.now() + timeoutMs;
      const onAbort = () => done(Number.POSITIVE_INFINITY);
      const timer = setTimeout(() => done(Number.POSITIVE_INFINITY), timeoutMs);
      signal?.addEventListener('abort', onAbort);
      this.#waiters.add(done);
    });
  }

  #advance(head: number) {
    if (head <= this.#head) return;
    this.#head = head;
    for (const waiter of [...this.#waiters]) waiter(head);
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      try {
        const numbered = await this.#numberBatch();
        if (numbered === this.#batchSize) this.#again = true;
      } catch (error) {
        if (this.#stopped) return;
        this.#log.error({ err: error }, 'event sequencer run failed; retrying at the next poll');
        return;
      }
    } while (this.#again && !this.#stopped);
  }

  async #numberBatch(): Promise<number> {
    // Most runs find nothing to do: answer those with one read instead of a write transaction.
    const { rows: probe } = await sql<{ head: number; pending: boolean }>`
      select (select head from event_feed where id = 1) as head,
             exists (select 1 from events where position is null) as pending`.execute(this.#database.db);
    if (!probe[0]?.pending) {
      this.#advance(probe[0]?.head ?? 0);
      return 0;
    }
    const result = await this.#database.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${SEQUENCER_LOCK}::bigint)`.execute(trx);
      const { rows } = await sql<{ numbered: number; head: number }>`
        with pending as (
          select seq, row_number() over (order by seq) as rn
          from events where position is null
          order by seq
          limit ${this.#batchSize}
        ), feed as (
          update event_feed set head = head + (select count(*) from pending)
          where id = 1
          returning head, head - (select count(*) from pending) as base
        ), numbered as (
          update events e set position = feed.base + pending.rn
          from pending, feed
          where e.seq = pending.seq and e.position is null
          returning e.position
        )
        select (select count(*) from numbered)::int as numbered, (select head from feed) as head`.execute(
        trx,
      );
      const row = rows[0] ?? { numbered: 0, head: 0 };
      if (row.numbered > 0) await sql`select pg_notify(${FEED_CHANNEL}, ${String(row.head)})`.execute(trx);
      return row;
    });
    this.#advance(result.head);
    return result.numbered;
  }
}
