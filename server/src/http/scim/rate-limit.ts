/**
 * Token bucket per key (a SCIM connection): `ratePerSecond` sustained, bursts up to one second's
 * worth. In-process: each server process enforces the limit on its own share of the traffic.
 */
export class RateLimiter {
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

  /** @returns 0 when the request may proceed, else the seconds to wait (for Retry-After). */
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
