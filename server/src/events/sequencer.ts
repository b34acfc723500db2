import { sql } from 'kysely';
import type { Database, Unlisten } from '../db/database.js';
import type { Logger } from '../log.js';

/** NOTIFY channel on which a sequencer announces a new feed head (payload: the head). */
export const FEED_CHANNEL = 'roster_feed';

export interface SequencerOptions {
  database: Database;
  log: Logger;
  /**
   * Fallback poll for events committed by a process that died before kicking, and the way other
   * processes' feed heads are learned when the database cannot LISTEN (behind a transaction-mode
   * pooler without a direct URL). Default 1 s, or 250 ms without LISTEN.
   */
  pollIntervalMs?: number;
  batchSize?: number;
  /**
   * Under load, the pause between consecutive numbering runs, so that one run numbers the events
   * of many commits (fewer, larger transactions) at the cost of that much feed latency. A kick
   * after a quiet period runs at once. Default 50 ms: under 16-way SCIM load one run (one
   * statement) then numbers the events of 10 and more changes (`npm run bench:scim -- --round-trips`).
   */
  coalesceMs?: number;
}

/**
 * Assigns feed positions to committed events, in commit order.
 *
 * Writers insert each event together with its seq in `event_queue`, in their own transactions, and
 * kick the sequencer after committing. Numbering is one autocommit statement (one round trip):
 * it deletes a batch of queue entries, adds their count to the head in `event_feed`, and inserts
 * their feed rows. Runs in several processes serialise on the `event_feed` row: a run that starts
 * while another is uncommitted waits for that row, and then (READ COMMITTED re-reads a row it
 * waited for) numbers from the head the other run committed; queue entries the other run took are
 * gone by then and skipped, so no event is numbered twice, and entries that run did not see are
 * numbered by this one, after it. Positions therefore grow in the order in which batches commit,
 * a batch is visible to readers all at once, and readers (who see only numbered events) can never
 * read past an event that is numbered later: no gaps, no repeats.
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
  readonly #coalesceMs: number;
  readonly #waiters = new Set<(head: number) => void>();
  readonly #listeners = new Set<(head: number) => void>();
  #running: Promise<void> | undefined;
  #again = false;
  /** A commit in this process queued events: the next run can skip the "anything pending?" probe. */
  #committed = false;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: Unlisten | undefined;
  #stopped = false;
  /** Shutting down: long-polls answer at once instead of holding the shutdown. */
  #draining = false;
  #head = 0;

  constructor(options: SequencerOptions) {
    this.#database = options.database;
    this.#log = options.log;
    this.#pollIntervalMs = options.pollIntervalMs ?? (options.database.notifies ? 1000 : 250);
    this.#batchSize = options.batchSize ?? 5000;
    this.#coalesceMs = options.coalesceMs ?? 50;
  }

  /** Starts polling and listening for other processes' announcements. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#draining = false;
    this.#unlisten = await this.#database.listen(FEED_CHANNEL, (payload) => {
      const head = Number(payload);
      if (Number.isFinite(head)) this.#advance(head);
    });
    const tick = () => {
      if (this.#stopped) return;
      this.#schedule();
      this.#timer = setTimeout(tick, this.#pollIntervalMs);
      this.#timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.drain();
    if (this.#timer) clearTimeout(this.#timer);
    await this.#unlisten?.();
    await this.#running;
  }

  /** Tells the sequencer a transaction appended events; cheap and safe after every commit. */
  kick(): void {
    this.#committed = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
  }

  /**
   * Answers every waiting long-poll now, and every later one at once: called when the server
   * starts to shut down, so that a 30 s `wait` does not hold the shutdown (the client polls again,
   * on another process). Numbering goes on until {@link stop}, which drains too.
   */
  drain(): void {
    this.#draining = true;
    for (const waiter of [...this.#waiters]) waiter(this.#head);
  }

  /** Resolves when every event committed before this call has a position. */
  async flush(): Promise<void> {
    await this.#running;
    this.#committed = true;
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
    if (this.#head > after || this.#draining) return Promise.resolve(this.#head);
    return new Promise((resolve) => {
      const done = (head: number) => {
        const waiting = !this.#draining && !signal?.aborted && Date.now() < deadline;
        if (head <= after && waiting) return;
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

  /** Calls `listener` whenever the head advances (in this process or, via NOTIFY, another). */
  onAdvance(listener: (head: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #advance(head: number) {
    if (head <= this.#head) return;
    this.#head = head;
    for (const waiter of [...this.#waiters]) waiter(head);
    for (const listener of this.#listeners) listener(head);
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      const committed = this.#committed;
      this.#committed = false;
      try {
        const numbered = await this.#numberBatch(!committed);
        if (numbered === this.#batchSize) this.#again = true;
      } catch (error) {
        if (this.#stopped) return;
        this.#log.error({ err: error }, 'event sequencer run failed; retrying at the next poll');
        return;
      }
      if (this.#again && this.#coalesceMs > 0)
        await new Promise((resolve) => setTimeout(resolve, this.#coalesceMs));
    } while (this.#again && !this.#stopped);
  }

  async #numberBatch(probeFirst: boolean): Promise<number> {
    if (probeFirst) {
      // A poll usually finds nothing to do: answer it with one read instead of a write transaction.
      const { rows: probe } = await sql<{ head: number; pending: boolean }>`
        select (select head from event_feed where id = 1) as head,
               exists (select 1 from event_queue) as pending`.execute(this.#database.db);
      if (!probe[0]?.pending) {
        this.#advance(probe[0]?.head ?? 0);
        return 0;
      }
    }
    // One autocommit statement per run, no advisory lock and no BEGIN/COMMIT: see the class comment.
    const { rows } = await sql<{ numbered: number; head: number; announced: number }>`
      with taken as (
        delete from event_queue
        where seq = any(array(select seq from event_queue order by seq limit ${this.#batchSize}))
        returning seq
      ), pending as (
        select seq, row_number() over (order by seq) as rn from taken
      ), state as (
        update event_feed set head = head + (select count(*) from pending)
        where id = 1
        returning head, head - (select count(*) from pending) as base
      ), numbered as (
        insert into feed (position, seq, organization_id, type, created_at)
        select state.base + pending.rn, pending.seq, e.organization_id, e.type, e.created_at
        from pending join events e on e.seq = pending.seq cross join state
        returning position
      ), announced as (
        -- Sent at commit, by the same statement.
        select pg_notify(${FEED_CHANNEL}, state.head::text) from state where exists (select 1 from numbered)
      )
      select (select count(*) from numbered)::int as numbered, (select head from state) as head,
             (select count(*) from announced)::int as announced`.execute(this.#database.db);
    const result = rows[0] ?? { numbered: 0, head: 0 };
    this.#advance(result.head);
    return result.numbered;
  }
}
