import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { DB } from './db/schema.js';

/**
 * A rate limit per key (a SCIM connection, a session): `ratePerSecond` sustained, bursts up to one
 * second's worth.
 */
export interface RateLimiter {
  /** @returns 0 when the request may proceed, else the seconds to wait (for Retry-After). */
  take(key: string): number | Promise<number>;
  /**
   * The take as SQL to embed in a statement (see SharedRateLimiter.takeEach), for limiters that
   * keep their state in the database.
   */
  takeEach?(keys: RawBuilder<unknown>): RawBuilder<{ tat: number }>;
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

/**
 * The same limit shared by every server process on one PostgreSQL (ROSTER_WORKERS, or several
 * hosts behind a load balancer): per-process buckets would let N processes take N times the
 * limit. One statement per request on an unlogged table (no WAL, no flush at commit), using the
 * generic cell rate algorithm, whose whole state is one number per key: the "theoretical arrival
 * time" (TAT) of the next request. A request is allowed when, after adding one interval
 * (1/rate) to max(TAT, now), the TAT is at most one second ahead of now; a refused request
 * changes nothing. Time is the database's clock, the one clock every process shares.
 */
export class SharedRateLimiter implements RateLimiter {
  readonly #db: Kysely<DB>;
  readonly #scope: string;
  readonly #intervalMs: number;
  #takes = 0;

  constructor(db: Kysely<DB>, scope: string, ratePerSecond: number) {
    this.#db = db;
    this.#scope = scope;
    this.#intervalMs = 1000 / ratePerSecond;
  }

  async take(key: string): Promise<number> {
    const { rows } = await this.takeEach(sql`select ${key}::text as key`).execute(this.#db);
    // A refused request may go on once the TAT is within a second of now: at most one interval,
    // and the limit is at least 1/s.
    return rows.length > 0 ? 0 : 1;
  }

  /**
   * The take as a statement to embed in another (a CTE), for a key the other statement only knows
   * in SQL: `keys` is a query with a `key` column. One row comes back per key allowed; a refused
   * key changes nothing. The refresh statement takes its session's key this way, so that a refresh
   * is one round trip with its limit.
   */
  takeEach(keys: RawBuilder<unknown>): RawBuilder<{ tat: number }> {
    const interval = this.#intervalMs;
    if (++this.#takes % 1000 === 0) this.#prune();
    return sql<{ tat: number }>`
      with clock as (select extract(epoch from clock_timestamp()) * 1000 as now)
      insert into rate_limits as r (key, tat)
      select ${`${this.#scope}:`}::text || k.key, clock.now + ${interval}::float8 from (${keys}) k, clock
      on conflict (key) do update set tat = greatest(r.tat, (select now from clock)) + ${interval}::float8
        where greatest(r.tat, (select now from clock)) + ${interval}::float8 - (select now from clock) <= 1000.001
      returning r.tat`;
  }

  /** Drops buckets idle for a minute (they are full again by then). */
  #prune(): void {
    sql`delete from rate_limits where tat < extract(epoch from clock_timestamp()) * 1000 - 60000`
      .execute(this.#db)
      .catch(() => {});
  }
}
