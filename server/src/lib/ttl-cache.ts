/**
 * A small per-process cache whose entries live `ttlMs` (monotonic clock, so a wall-clock jump
 * neither keeps nor drops them), bounded by clearing the whole map past `maxEntries`: cheaper than
 * LRU bookkeeping, and a refill costs one lookup per key. A TTL of 0 or less disables caching.
 */
export class TtlCache<V> {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { value: V; cachedUntil: number }>();

  constructor(ttlMs: number, maxEntries = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.cachedUntil > performance.now()) return entry.value;
    if (entry) this.#entries.delete(key);
    return undefined;
  }

  set(key: string, value: V): void {
    if (this.#ttlMs <= 0) return;
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(key, { value, cachedUntil: performance.now() + this.#ttlMs });
  }

  /** Forgets every entry. */
  clear(): void {
    this.#entries.clear();
  }
}
