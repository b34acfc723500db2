import { type CryptoBackend, type PublicJwk, SESSION_ALGS, type SessionAlg } from './crypto.js';

export interface LoadedKey {
  alg: SessionAlg;
  key: unknown;
}

/** Kinds of key per algorithm: a JWK of another shape is not a key for it. */
function keyMatches(jwk: PublicJwk, alg: SessionAlg): boolean {
  return alg === 'ES256'
    ? jwk.kty === 'EC' && jwk.crv === 'P-256'
    : jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
}

export interface JwksCacheOptions {
  url: string;
  fetch: typeof fetch;
  crypto: CryptoBackend;
  /** Least time between two fetches caused by an unknown `kid`. */
  cooldownMs: number;
  /** Keys are used for at most this long after they were fetched. */
  maxAgeMs: number;
  now: () => number;
}

/**
 * The remote JWKS, cached per verifier (one per Roster server: keys of one server never answer
 * for another). Fetched at first use and every `maxAgeMs`; an unknown `kid` fetches again, at
 * most once per `cooldownMs`. A failed fetch keeps the keys it had.
 */
export class JwksCache {
  readonly #options: JwksCacheOptions;
  #keys = new Map<string, LoadedKey>();
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;

  constructor(options: JwksCacheOptions) {
    this.#options = options;
  }

  #fresh(): boolean {
    return this.#options.now() - this.#fetchedAt <= this.#options.maxAgeMs;
  }

  /** The key for `kid` when it is known and fresh, without waiting (the common case). */
  peek(kid: string): LoadedKey | undefined {
    return this.#fresh() ? this.#keys.get(kid) : undefined;
  }

  /** The key for `kid`, `undefined` when the JWKS has none, or throws when the JWKS cannot be had. */
  async get(kid: string): Promise<LoadedKey | undefined> {
    if (!this.#fresh()) await this.#refresh().catch(() => undefined);
    // Keys past their age are not used, even when the JWKS cannot be fetched again: a key Roster
    // revoked must stop verifying within maxAgeMs.
    if (!this.#fresh()) throw new Error(`the JWKS at ${this.#options.url} could not be fetched`);
    let key = this.#keys.get(kid);
    if (!key && this.#options.now() - this.#attemptedAt >= this.#options.cooldownMs) {
      await this.#refresh().catch(() => undefined);
      key = this.#keys.get(kid);
    }
    return key;
  }

  #refresh(): Promise<void> {
    this.#inflight ??= this.#load().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #load(): Promise<void> {
    this.#attemptedAt = this.#options.now();
    const response = await this.#options.fetch(this.#options.url, {
      headers: { accept: 'application/json' },
    });
    if (!response.ok) throw new Error(`JWKS: HTTP ${response.status}`);
    const body = (await response.json()) as { keys?: unknown };
    if (!Array.isArray(body.keys)) throw new Error('JWKS: no "keys" array');
    const keys = new Map<string, LoadedKey>();
    for (const jwk of body.keys as PublicJwk[]) {
      if (typeof jwk?.kid !== 'string' || typeof jwk.alg !== 'string' || !SESSION_ALGS.has(jwk.alg)) continue;
      if (jwk.use !== undefined && jwk.use !== 'sig') continue;
      const alg = jwk.alg as SessionAlg;
      if (!keyMatches(jwk, alg)) continue;
      const previous = this.#keys.get(jwk.kid);
      try {
        keys.set(
          jwk.kid,
          previous?.alg === alg ? previous : { alg, key: await this.#options.crypto.importKey(jwk, alg) },
        );
      } catch {
        // a key this runtime cannot import is skipped; its tokens fail as unknown_key
      }
    }
    this.#keys = keys;
    this.#fetchedAt = this.#options.now();
  }
}
