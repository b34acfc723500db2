import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { DB } from './db/schema.js';

/**
 * A rate limit per key (a SCIM connection, a session): `ratePerSecond` sustained, bursts up to one
 * second's worth.
 */
export interface RateLimiter {
  /** @returns 0 when the request may proceed, else the seconds to wait (for Retry-After). */
  take(key: string): number | Promise<number>;
}

/**
 * Token bucket per key in this process's memory: for the embedded database, which serves exactly
 * one process.
 */
export class LocalRateLimiter implements RateLimiter {
  readonly #rate: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;

  constructor(ratePerSecond: number, now: () => number = () => performance.now()) {
    this.#rate = ratePerSecond;
    this.#now = now;
  }

  /**
   * The seconds to wait (for Retry-After) before `key` may spend again, 0 when it may now; spends
   * nothing. With {@link take} after the fact, this limits only some outcomes (failed logins).
   */
  wait(key: string): number {
    const bucket = this.#buckets.get(key);
    if (!bucket) return 0;
    const tokens = Math.min(this.#rate, bucket.tokens + ((this.#now() - bucket.at) / 1000) * this.#rate);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.#rate));
  }

  take(key: string): number {
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.#rate, at: now };
    bucket.tokens = Math.min(this.#rate, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > 10_000) this.#prune(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate));
  }

  #prune(now: number) {
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.at > 60_000) this.#buckets.delete(key);
    }
  }
}

/** How long leased tokens may be spent before they lapse (they were counted when leased). */
const LEASE_MS = 100;

interface Lease {
  tokens: number;
  until: number;
  /** Tokens the next lease asks for: doubles while leases run out early, halves when they lapse unspent. */
  size: number;
  /** A lease taken ahead while this one still serves: spent once this one is used up or lapsed. */
  next: { tokens: number; until: number } | undefined;
  /** The lease being taken from the database, if any: requests with no token left wait for it. */
  pending: Promise<number> | undefined;
}

/**
 * The generic cell rate algorithm in SQL, the one rule of the shared limits: a key's theoretical
 * arrival time `tat` (ms on the database clock `now`, which every process shares) moves on by
 * `span` per take, and a take is allowed while that stays within one second of now (bursts up to
 * one second's worth); a refused take changes nothing. Kept in a row of its own per key
 * (SharedRateLimiter) or in a column of the row it limits (a session's refreshes).
 */
export function cellRate(tat: RawBuilder<unknown>, now: RawBuilder<unknown>, span: unknown) {
  const next = sql`greatest(${tat}, ${now}) + ${span}::float8`;
  return { next, allowed: sql<boolean>`${next} - ${now} <= 1000.001` };
}

/**
 * The same limit shared by every server process on one PostgreSQL (ROSTER_WORKERS, or several
 * hosts behind a load balancer): per-process buckets would let N processes take N times the
 * limit. The budget lives on an unlogged table (no WAL, no flush at commit), using the generic
 * cell rate algorithm, whose whole state is one number per key: the "theoretical arrival time"
 * (TAT) of the next request. Taking k tokens is allowed when, after adding k intervals (1/rate)
 * to max(TAT, now), the TAT is at most one second ahead of now; a refused take changes nothing.
 * Time is the database's clock, the one clock every process shares.
 *
 * A process leases tokens in batches rather than one statement per request: a busy connection
 * costs one statement per lease (up to a tenth of the per-second budget, for {@link LEASE_MS}),
 * not one per request, and a quiet one leases one token at a time, as before. Every token a
 * process spends was counted in the database when leased, so all processes together never pass
 * more than the limit; tokens that lapse unspent are lost to the budget (the limit errs on the
 * strict side, by at most two leases per process: the current one and the one taken ahead).
 *
 * A busy connection's next lease is taken ahead, in the background, when the current one is down
 * to its last quarter (of its tokens or of its time), so that its requests do not queue behind the lease
 * statement every {@link LEASE_MS}; it is sized by the rate the current one was spent at. A
 * lease taken ahead lapses {@link LEASE_MS} after it was granted, like any other.
 */
export class SharedRateLimiter implements RateLimiter {
  readonly #db: Kysely<DB>;
  readonly #scope: string;
  readonly #intervalMs: number;
  readonly #maxLease: number;
  readonly #leases = new Map<string, Lease>();
  readonly #now: () => number;
  #takes = 0;

  constructor(
    db: Kysely<DB>,
    scope: string,
    ratePerSecond: number,
    now: () => number = () => performance.now(),
  ) {
    this.#db = db;
    this.#scope = scope;
    this.#intervalMs = 1000 / ratePerSecond;
    this.#maxLease = Math.max(1, Math.floor(ratePerSecond / 10));
    this.#now = now;
  }

  async take(key: string): Promise<number> {
    for (;;) {
      let lease = this.#leases.get(key);
      if (!lease) {
        if (this.#leases.size >= 10_000) this.#prune();
        lease = { tokens: 0, until: 0, size: 1, next: undefined, pending: undefined };
        this.#leases.set(key, lease);
      }
      const now = this.#now();
      if (lease.tokens > 0 && lease.until > now) {
        lease.tokens--;
        // Down to its last quarter of tokens or of time: lease ahead (only a lease of several
        // tokens: a quiet key's single tokens would lapse unspent).
        if (
          lease.size > 1 &&
          !lease.pending &&
          !lease.next &&
          (lease.tokens < lease.size / 4 || lease.until - now < LEASE_MS / 4)
        ) {
          this.#start(key, lease, this.#aheadSize(lease, now), true).catch(() => {});
        }
        return 0;
      }
      if (lease.next) {
        const next = lease.next;
        lease.next = undefined;
        if (next.until > now) {
          lease.tokens = next.tokens;
          lease.until = next.until;
        }
        continue;
      }
      if (lease.pending) {
        // Another request of this process is leasing: share its outcome (and its error, if the
        // database failed: that is a 503, not a 429).
        if ((await lease.pending) === 0) return 1;
        continue;
      }
      // Spent before it lapsed: ask for more next time; lapsed unspent: for fewer.
      if (lease.until > now) lease.size = Math.min(this.#maxLease, lease.size * 2);
      else if (lease.tokens > 0) lease.size = Math.max(1, Math.ceil(lease.size / 2));
      lease.tokens = 0;
      const granted = await this.#start(key, lease, lease.size, false);
      if (granted === 0) return 1;
    }
  }

  /**
   * The size of a lease taken ahead: what the key spends in {@link LEASE_MS} at the rate it spent
   * the current lease, and a quarter more.
   */
  #aheadSize(lease: Lease, now: number): number {
    const spent = lease.size - lease.tokens;
    const elapsed = now - (lease.until - LEASE_MS);
    const wanted = elapsed > 0 ? Math.ceil(((spent * LEASE_MS) / elapsed) * 1.25) : this.#maxLease;
    return Math.max(1, Math.min(this.#maxLease, wanted));
  }

  /**
   * Leases `size` tokens (or one, if refused) for `lease`; while it runs, `lease.pending` lets
   * other requests wait for it. Taken `ahead`, the tokens wait in `lease.next`.
   */
  #start(key: string, lease: Lease, size: number, ahead: boolean): Promise<number> {
    const taking = this.#lease(key, size)
      .then(async (granted) => (granted > 0 || size === 1 ? granted : this.#lease(key, 1)))
      .then(
        (granted) => {
          lease.pending = undefined;
          if (granted > 0) {
            const leased = { tokens: granted, until: this.#now() + LEASE_MS };
            if (ahead) {
              lease.next = leased;
              lease.size = size;
            } else {
              lease.tokens = leased.tokens;
              lease.until = leased.until;
            }
          } else if (ahead) {
            // Refused ahead (the shared budget is spent): not asked again before this lease ends,
            // or every request of its last quarter would send two more lease statements.
            lease.next = { tokens: 0, until: lease.until };
          }
          return granted;
        },
        (error: unknown) => {
          lease.pending = undefined;
          throw error;
        },
      );
    lease.pending = taking;
    return taking;
  }

  /**
   * Takes `count` tokens from the shared budget, all or none, in one statement; a refused take
   * changes nothing.
   * @returns the tokens taken.
   */
  async #lease(key: string, count: number): Promise<number> {
    const span = count * this.#intervalMs;
    const taken = cellRate(sql`r.tat`, sql`(select now from clock)`, span);
    if (++this.#takes % 1000 === 0) this.#pruneTable();
    const { rows } = await sql<{ tat: number }>`
      with clock as (select extract(epoch from clock_timestamp()) * 1000 as now)
      insert into rate_limits as r (key, tat)
      select ${`${this.#scope}:${key}`}::text, clock.now + ${span}::float8 from clock
      on conflict (key) do update set tat = ${taken.next}
        where ${taken.allowed}
      returning r.tat`.execute(this.#db);
    // A refused request may go on once the TAT is within a second of now: at most one interval,
    // and the limit is at least 1/s.
    return rows.length > 0 ? count : 0;
  }

  /** Forgets leases of keys idle for a minute. */
  #prune(): void {
    const now = this.#now();
    for (const [key, lease] of this.#leases) {
      if (!lease.pending && now - Math.max(lease.until, lease.next?.until ?? 0) > 60_000)
        this.#leases.delete(key);
    }
  }

  /** Drops buckets idle for a minute (they are full again by then). */
  #pruneTable(): void {
    sql`delete from rate_limits where tat < extract(epoch from clock_timestamp()) * 1000 - 60000`
      .execute(this.#db)
      .catch(() => {});
  }
}
