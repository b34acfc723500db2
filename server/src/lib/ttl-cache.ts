/**
 * A small per-process cache whose entries live `ttlMs` (monotonic clock, so a wall-clock jump
 * neither keeps nor drops them), bounded by clearing the whole map past `maxEntries`: cheaper than
 * LRU bookkeeping, and a refill costs one lookup per key. A TTL of 0 or less disables caching.
 *
 * {@link load} reads through it without making requests wait at each expiry: one load per key at
 * a time (the requests that miss together share it, instead of each sending the same lookup), and
 * an entry in the last quarter of its life is reloaded in the background by the request that
 * notices, while the old value still answers. An entry lives `ttlMs` from when its load *started*,
 * so nothing is served more than `ttlMs` after the source was read, refreshed ahead or not.
 */
export class TtlCache<V> {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { value: V; cachedUntil: number }>();
  /** Loads under way, by key; each belongs to the generation it started in. */
  readonly #loading = new Map<string, { promise: Promise<V>; generation: number }>();
  /** Bumped by {@link clear}: a load started before a clear must not store what it read. */
  #generation = 0;
  readonly #now: () => number;

  constructor(ttlMs: number, maxEntries = 10_000, now: () => number = () => performance.now()) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.cachedUntil > this.#now()) return entry.value;
    if (entry) this.#entries.delete(key);
    return undefined;
  }

  set(key: string, value: V, loadedAt = this.#now()): void {
    if (this.#ttlMs <= 0) return;
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(key, { value, cachedUntil: loadedAt + this.#ttlMs });
  }

  /**
   * The cached value of `key`, or what `loader` reads (once for every caller that asks meanwhile).
   * A rejected load is not cached; a failed background refresh leaves the entry to expire, and
   * the next request then loads (and fails) itself.
   */
  load(key: string, loader: () => Promise<V>): V | Promise<V> {
    if (this.#ttlMs <= 0) return loader();
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry && entry.cachedUntil > now) {
      if (entry.cachedUntil - now < this.#ttlMs / 4) void this.#start(key, loader).catch(() => {});
      return entry.value;
    }
    return this.#start(key, loader);
  }

  #start(key: string, loader: () => Promise<V>): Promise<V> {
    const running = this.#loading.get(key);
    if (running && running.generation === this.#generation) return running.promise;
    const generation = this.#generation;
    const startedAt = this.#now();
    const promise = loader().then(
      (value) => {
        if (this.#generation === generation) this.set(key, value, startedAt);
        this.#forget(key, promise);
        return value;
      },
      (error: unknown) => {
        this.#forget(key, promise);
        throw error;
      },
    );
    this.#loading.set(key, { promise, generation });
    return promise;
  }

  #forget(key: string, promise: Promise<V>): void {
    if (this.#loading.get(key)?.promise === promise) this.#loading.delete(key);
  }

  /** Forgets every entry, and whatever the loads under way will read. */
  clear(): void {
    this.#entries.clear();
    this.#generation++;
  }
}
