import {
  clearedSessionCookies,
  originAllowed,
  parseCookies,
  type ResolvedCookieOptions,
  resolveCookieOptions,
  type SessionCookieOptions,
  type SessionTokensLike,
  sessionCookies,
} from './cookies.js';
import { type CryptoBackend, type PublicJwk, SESSION_ALGS, type SessionAlg, webCrypto } from './crypto.js';

/** The claims of a Roster session token. */
export interface SessionClaims {
  iss: string;
  /** The user id. */
  sub: string;
  /** The session id. */
  sid: string;
  /**
   * The audience: the organization id (tokens signed before it was added lack it). See the
   * verifier's `audience` option.
   */
  aud?: string | string[];
  org_id: string;
  org_role: string;
  org_permissions: string[];
  iat: number;
  nbf?: number;
  exp: number;
}

/** A verified session, as the middleware attaches it to a request. */
export interface RosterAuth {
  userId: string;
  sessionId: string;
  orgId: string;
  role: string;
  permissions: string[];
  issuedAt: Date;
  expiresAt: Date;
  /** The verified JWT, e.g. to forward to another service. */
  token: string;
  claims: SessionClaims;
}

/** Why a request is not signed in. */
export type SignedOutReason =
  /** No token in the Authorization header or the session cookie. */
  | 'missing_token'
  /** Not a compact JWS, or its header or payload is not JSON. */
  | 'malformed_token'
  /** `alg` is not ES256 or EdDSA (e.g. `none`, or HS256 keyed with a public key), or not the key's. */
  | 'unsupported_algorithm'
  /** No key of the JWKS has this `kid`, even after fetching it again. */
  | 'unknown_key'
  | 'invalid_signature'
  | 'wrong_issuer'
  /** `aud` is not one of the verifier's `audience` (another organization's token). */
  | 'wrong_audience'
  | 'token_expired'
  | 'token_not_yet_valid'
  /** Signed, but a claim Roster always sets is missing or of the wrong type. */
  | 'invalid_claims'
  /** Revoked (revocation list, or the refresh was refused for that reason). */
  | 'session_revoked'
  /**
   * The member's role or permissions changed after the token was issued (revocation list): a
   * refresh gets a token with the new ones. With session cookies the middleware refreshes by itself.
   */
  | 'role_changed'
  /** A cookie-authenticated unsafe request from an origin not allowed (`SameSite=None` cookies). */
  | 'origin_not_allowed'
  | 'session_expired'
  | 'user_inactive'
  | 'not_a_member'
  /** The JWKS or the refresh endpoint could not be reached: not the user's fault. */
  | 'roster_unavailable';

export type SessionResult =
  | { status: 'signed_in'; auth: RosterAuth }
  | { status: 'signed_out'; reason: SignedOutReason; message: string };

/** {@link SessionResult}, plus the `Set-Cookie` values the response must carry (after a refresh). */
export type AuthenticateResult = SessionResult & { setCookie: string[] };

/** What the verifier asks a revocation list (see `createRevocationList`). */
export interface RevocationCheck {
  isRevoked(claims: Pick<SessionClaims, 'sid' | 'sub' | 'iat'>): boolean;
  /** True when the token's role or permissions are no longer the member's (a refresh updates them). */
  isStale?(claims: Pick<SessionClaims, 'sub' | 'org_id' | 'org_role' | 'org_permissions'>): boolean;
}

export interface SessionVerifierOptions {
  /** The Roster server, e.g. `https://roster.example.com`: JWKS and refresh are fetched from it. */
  baseUrl: string;
  /** Expected `iss`: the server's ROSTER_PUBLIC_URL. Default: `baseUrl`. */
  issuer?: string;
  /**
   * Required `aud`: the organization id(s) this app serves. Tokens of any other organization (and
   * tokens without `aud`, signed before Roster set it) are refused as `wrong_audience`. Default:
   * `aud` is not checked.
   */
  audience?: string | string[];
  /** Default: `<baseUrl>/.well-known/jwks.json`. */
  jwksUrl?: string;
  /** Tolerated clock difference for `exp` and `nbf`. Default 5 s. */
  clockSkewSeconds?: number;
  /** Least time between two JWKS fetches caused by an unknown `kid`. Default 30 s. */
  jwksCooldownMs?: number;
  /**
   * Keys are used for at most this long after they were fetched; then the JWKS is fetched again,
   * so that a key Roster unpublished (`rotate` with `revoke_previous`) stops verifying within it.
   * If Roster cannot be reached then, verification answers `roster_unavailable`. Default 60 s.
   */
  jwksMaxAgeMs?: number;
  /** Session cookies (read, and written after a refresh); `false` reads the Authorization header only. */
  cookies?: SessionCookieOptions | false;
  /**
   * With cookies: when the session JWT has expired (or was revoked, or its key unpublished) and a
   * refresh cookie is there, refresh the session and continue. Default true.
   */
  refresh?: boolean;
  /** Rejects revoked sessions before their tokens expire (see `createRevocationList`). */
  revocations?: RevocationCheck;
  fetch?: typeof fetch;
  /** Milliseconds since the epoch (tests). */
  now?: () => number;
  /** @internal the signature primitives; `@roster/sdk/express` passes node:crypto's. */
  crypto?: CryptoBackend;
}

const signedOut = (reason: SignedOutReason, message: string): SessionResult => ({
  status: 'signed_out',
  reason,
  message,
});

interface LoadedKey {
  alg: SessionAlg;
  key: unknown;
}

/** Kinds of key per algorithm: a JWK of another shape is not a key for it. */
function keyMatches(jwk: PublicJwk, alg: SessionAlg): boolean {
  return alg === 'ES256'
    ? jwk.kty === 'EC' && jwk.crv === 'P-256'
    : jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
}

/**
 * The remote JWKS, cached per verifier (one per Roster server: keys of one server never answer
 * for another). Fetched at first use and every `maxAgeMs`; an unknown `kid` fetches again, at
 * most once per `cooldownMs`. A failed fetch keeps the keys it had.
 */
class JwksCache {
  readonly #url: string;
  readonly #fetch: typeof fetch;
  readonly #crypto: CryptoBackend;
  readonly #cooldownMs: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #keys = new Map<string, LoadedKey>();
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;

  constructor(
    url: string,
    fetchImpl: typeof fetch,
    backend: CryptoBackend,
    cooldownMs: number,
    maxAgeMs: number,
    now: () => number,
  ) {
    this.#url = url;
    this.#fetch = fetchImpl;
    this.#crypto = backend;
    this.#cooldownMs = cooldownMs;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  /** The key for `kid` when it is known and fresh, without waiting (the common case). */
  peek(kid: string): LoadedKey | undefined {
    return this.#now() - this.#fetchedAt <= this.#maxAgeMs ? this.#keys.get(kid) : undefined;
  }

  /** The key for `kid`, `undefined` when the JWKS has none, or throws when the JWKS cannot be had. */
  async get(kid: string): Promise<LoadedKey | undefined> {
    if (this.#now() - this.#fetchedAt > this.#maxAgeMs) await this.#refresh().catch(() => undefined);
    // Keys past their age are not used, even when the JWKS cannot be fetched again: a key Roster
    // revoked must stop verifying within maxAgeMs.
    if (this.#now() - this.#fetchedAt > this.#maxAgeMs) {
      throw new Error(`the JWKS at ${this.#url} could not be fetched`);
    }
    let key = this.#keys.get(kid);
    if (!key && this.#now() - this.#attemptedAt >= this.#cooldownMs) {
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
    this.#attemptedAt = this.#now();
    const response = await this.#fetch(this.#url, { headers: { accept: 'application/json' } });
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
          previous?.alg === alg ? previous : { alg, key: await this.#crypto.importKey(jwk, alg) },
        );
      } catch {
        // a key this runtime cannot import is skipped; its tokens fail as unknown_key
      }
    }
    this.#keys = keys;
    this.#fetchedAt = this.#now();
  }
}

const MAX_TOKEN_LENGTH = 8192;
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

type RefreshOutcome =
  | { ok: true; tokens: SessionTokensLike }
  | { ok: false; reason: SignedOutReason; message: string; clear: boolean };

/** Refusal codes of POST /v1/sessions/refresh, as signed-out reasons. */
const REFUSALS: Record<string, SignedOutReason> = {
  session_revoked: 'session_revoked',
  session_expired: 'session_expired',
  user_inactive: 'user_inactive',
  not_a_member: 'not_a_member',
  invalid_refresh_token: 'session_revoked',
};

/** Reasons after which a refresh may still get the user a valid token. */
const REFRESHABLE = new Set<SignedOutReason>([
  'missing_token',
  'token_expired',
  'session_revoked',
  'role_changed',
  'unknown_key',
]);

/**
 * Creates a verifier of Roster session tokens: keep one per Roster server (it caches the JWKS).
 *
 * Verification is local: the signature against the cached JWKS, `iss`, `exp`/`nbf` with a small
 * clock skew, and only ES256 or EdDSA, each key only with its own algorithm. A deactivated user's
 * token stops working at its expiry (the refresh is refused), or at once with `revocations`.
 *
 * @example
 * ```ts
 * const verifier = createSessionVerifier({ baseUrl: 'https://roster.example.com' });
 * const result = await verifier.verifyToken(token);
 * if (result.status === 'signed_in') console.log(result.auth.userId, result.auth.permissions);
 * else console.log('signed out:', result.reason);
 * ```
 */
export function createSessionVerifier(options: SessionVerifierOptions) {
  if (!options?.baseUrl)
    throw new TypeError('createSessionVerifier: baseUrl is required (where Roster runs)');
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const issuer = (options.issuer ?? baseUrl).replace(/\/+$/, '');
  const backend = options.crypto ?? webCrypto;
  const now = options.now ?? Date.now;
  const fetchImpl =
    options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  const skew = options.clockSkewSeconds ?? 5;
  const cookies: ResolvedCookieOptions | undefined =
    options.cookies === false ? undefined : resolveCookieOptions(options.cookies);
  const refreshEnabled = cookies !== undefined && options.refresh !== false;
  const jwks = new JwksCache(
    options.jwksUrl ?? `${baseUrl}/.well-known/jwks.json`,
    fetchImpl,
    backend,
    options.jwksCooldownMs ?? 30_000,
    options.jwksMaxAgeMs ?? 60_000,
    now,
  );

  const audiences =
    options.audience === undefined
      ? undefined
      : new Set(Array.isArray(options.audience) ? options.audience : [options.audience]);

  // Decoded protected headers, by their encoded form: every token a key signs has the same header,
  // so it is decoded once per key, not once per token. Bounded: a header is attacker-chosen.
  const headers = new Map<string, { alg: SessionAlg; kid: string } | SessionResult>();

  function headerOf(encoded: string): { alg: SessionAlg; kid: string } | SessionResult {
    const known = headers.get(encoded);
    if (known) return known;
    const parsed = parseHeader(encoded);
    if (headers.size >= 64) headers.clear();
    headers.set(encoded, parsed);
    return parsed;
  }

  function parseHeader(encoded: string): { alg: SessionAlg; kid: string } | SessionResult {
    let header: { alg?: unknown; kid?: unknown; typ?: unknown; crit?: unknown };
    try {
      header = JSON.parse(backend.base64urlText(encoded));
    } catch {
      return signedOut('malformed_token', 'The token header or signature is not valid base64url JSON.');
    }
    if (typeof header !== 'object' || header === null)
      return signedOut('malformed_token', 'The header is not an object.');
    if (typeof header.alg !== 'string' || !SESSION_ALGS.has(header.alg)) {
      return signedOut(
        'unsupported_algorithm',
        `Algorithm ${JSON.stringify(header.alg)} is not accepted (ES256, EdDSA).`,
      );
    }
    if (header.crit !== undefined)
      return signedOut('malformed_token', 'Critical header parameters are not supported.');
    if (header.typ !== undefined && header.typ !== 'JWT')
      return signedOut('malformed_token', 'typ is not JWT.');
    if (!isString(header.kid)) return signedOut('malformed_token', 'The token has no kid.');
    return { alg: header.alg as SessionAlg, kid: header.kid };
  }

  /**
   * Verifies a token. Nothing about a token's verdict is cached: each call checks the signature,
   * `exp` against the clock and the revocation list as they are now. Without waiting for anything
   * when the key is known and fresh (no promise per step on the hot path).
   */
  async function verifyToken(token: string | null | undefined): Promise<SessionResult> {
    if (!token) return signedOut('missing_token', 'No session token.');
    if (token.length > MAX_TOKEN_LENGTH) return signedOut('malformed_token', 'The token is too long.');
    const first = token.indexOf('.');
    const second = token.indexOf('.', first + 1);
    if (
      first <= 0 ||
      second <= first + 1 ||
      second === token.length - 1 ||
      token.indexOf('.', second + 1) !== -1
    ) {
      return signedOut('malformed_token', 'Not a compact JWT.');
    }
    const header = headerOf(token.slice(0, first));
    if ('status' in header) return header;
    const { alg, kid } = header;
    let signature: Uint8Array;
    try {
      signature = backend.base64url(token.slice(second + 1));
    } catch {
      return signedOut('malformed_token', 'The token header or signature is not valid base64url JSON.');
    }

    let key = jwks.peek(kid);
    if (!key) {
      try {
        key = await jwks.get(kid);
      } catch (error) {
        return signedOut('roster_unavailable', (error as Error).message);
      }
    }
    if (!key) return signedOut('unknown_key', `No published key has kid ${JSON.stringify(kid)}.`);
    if (key.alg !== alg)
      return signedOut('unsupported_algorithm', `Key ${kid} is for ${key.alg}, not ${alg}.`);
    if (signature.length !== 64) return signedOut('invalid_signature', 'The signature has the wrong length.');
    let valid: boolean | Promise<boolean>;
    try {
      valid = backend.verify(alg, key.key, token.slice(0, second), signature);
      if (typeof valid !== 'boolean') valid = await valid;
    } catch {
      valid = false;
    }
    if (!valid) return signedOut('invalid_signature', 'The signature does not verify.');

    // Only now is the payload trusted enough to read.
    let claims: Partial<SessionClaims>;
    try {
      claims = JSON.parse(backend.base64urlText(token.slice(first + 1, second)));
    } catch {
      return signedOut('malformed_token', 'The payload is not JSON.');
    }
    if (typeof claims !== 'object' || claims === null)
      return signedOut('malformed_token', 'The payload is not an object.');
    if (claims.iss !== issuer)
      return signedOut(
        'wrong_issuer',
        `iss is ${JSON.stringify(claims.iss)}, expected ${JSON.stringify(issuer)}.`,
      );
    if (audiences) {
      const aud = claims.aud;
      const ok = Array.isArray(aud)
        ? aud.some((a) => audiences.has(a))
        : typeof aud === 'string' && audiences.has(aud);
      if (!ok) {
        return signedOut(
          'wrong_audience',
          `aud is ${JSON.stringify(aud)}, expected one of ${JSON.stringify([...audiences])}.`,
        );
      }
    }
    if (!isNumber(claims.exp) || !isNumber(claims.iat))
      return signedOut('invalid_claims', 'exp and iat are required.');
    const nowSeconds = now() / 1000;
    if (nowSeconds >= claims.exp + skew) return signedOut('token_expired', 'The token has expired.');
    if (claims.nbf !== undefined && (!isNumber(claims.nbf) || nowSeconds < claims.nbf - skew)) {
      return signedOut('token_not_yet_valid', 'The token is not valid yet.');
    }
    if (
      !isString(claims.sub) ||
      !isString(claims.sid) ||
      !isString(claims.org_id) ||
      !isString(claims.org_role) ||
      !Array.isArray(claims.org_permissions) ||
      !claims.org_permissions.every((p) => typeof p === 'string')
    ) {
      return signedOut('invalid_claims', 'sub, sid, org_id, org_role and org_permissions are required.');
    }
    const verified = claims as SessionClaims;
    if (options.revocations?.isRevoked(verified))
      return signedOut('session_revoked', 'The session was revoked.');
    if (options.revocations?.isStale?.(verified))
      return signedOut('role_changed', "The member's role or permissions changed: refresh the session.");
    return {
      status: 'signed_in',
      auth: {
        userId: verified.sub,
        sessionId: verified.sid,
        orgId: verified.org_id,
        role: verified.org_role,
        permissions: verified.org_permissions,
        issuedAt: new Date(verified.iat * 1000),
        expiresAt: new Date(verified.exp * 1000),
        token,
        claims: verified,
      },
    };
  }

  // Refreshes in flight or just done, by refresh token: parallel requests of one browser share one
  // refresh instead of spending the token twice. Bounded: past MAX_REFRESHES entries the oldest go
  // (a flood of made-up refresh cookies must not grow memory without bound).
  const refreshes = new Map<string, { outcome: Promise<RefreshOutcome>; until: number }>();
  const REMEMBER_MS = 15_000;
  const MAX_REFRESHES = 10_000;

  async function callRefresh(refreshToken: string): Promise<RefreshOutcome> {
    let response: Response;
    try {
      response = await fetchImpl(`${baseUrl}/v1/sessions/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
    } catch (error) {
      return {
        ok: false,
        reason: 'roster_unavailable',
        message: `refresh failed: ${(error as Error).message}`,
        clear: false,
      };
    }
    const body = (await response.json().catch(() => undefined)) as
      | (SessionTokensLike & { error?: { code?: string; message?: string } })
      | undefined;
    if (response.ok && body?.token && body.refresh_token) return { ok: true, tokens: body };
    const code = body?.error?.code ?? '';
    if (response.status === 401 && REFUSALS[code]) {
      return {
        ok: false,
        reason: REFUSALS[code],
        message: body?.error?.message ?? 'Refresh refused.',
        clear: true,
      };
    }
    return {
      ok: false,
      reason: 'roster_unavailable',
      message: `refresh answered HTTP ${response.status}`,
      clear: false,
    };
  }

  function refreshOnce(refreshToken: string): Promise<RefreshOutcome> {
    const at = now();
    const known = refreshes.get(refreshToken);
    if (known && known.until > at) return known.outcome;
    if (known) refreshes.delete(refreshToken);
    // Map order is insertion order, and every entry is remembered equally long: the oldest (and the
    // expired ones) come first, so this stops at the first entry to keep.
    for (const [k, v] of refreshes) {
      if (v.until > at && refreshes.size < MAX_REFRESHES) break;
      refreshes.delete(k);
    }
    const outcome = callRefresh(refreshToken);
    refreshes.set(refreshToken, { outcome, until: at + REMEMBER_MS });
    return outcome;
  }

  /**
   * Authenticates a request: the token from `Authorization: Bearer` or the session cookie; with
   * cookies, an expired or revoked token is refreshed with the refresh cookie (the new cookies are
   * in `setCookie`), and a refused refresh clears both cookies.
   */
  async function authenticate(request: {
    method?: string;
    headers: Headers | Record<string, string | string[] | undefined>;
  }): Promise<AuthenticateResult> {
    const get = (name: string): string | undefined => {
      const headers = request.headers;
      if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
      const value = (headers as Record<string, string | string[] | undefined>)[name];
      return Array.isArray(value) ? value.join('; ') : value;
    };
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(get('authorization') ?? '')?.[1];
    if (bearer) return { ...(await verifyToken(bearer)), setCookie: [] };
    if (!cookies) return { ...signedOut('missing_token', 'No Authorization header.'), setCookie: [] };

    if (!originAllowed(cookies, request.method, get('origin'), get('host'))) {
      return {
        ...signedOut(
          'origin_not_allowed',
          `Origin ${JSON.stringify(get('origin') ?? null)} may not use the session cookie for ${request.method}.`,
        ),
        setCookie: [],
      };
    }
    const jar = parseCookies(get('cookie'));
    const result = await verifyToken(jar.get(cookies.sessionName));
    const refreshToken = jar.get(cookies.refreshName);
    if (
      result.status === 'signed_in' ||
      !refreshEnabled ||
      !refreshToken ||
      !REFRESHABLE.has(result.reason)
    ) {
      return { ...result, setCookie: [] };
    }
    const outcome = await refreshOnce(refreshToken);
    if (!outcome.ok) {
      return {
        ...signedOut(outcome.reason, outcome.message),
        setCookie: outcome.clear ? clearedSessionCookies(cookies) : [],
      };
    }
    const fresh = await verifyToken(outcome.tokens.token);
    return { ...fresh, setCookie: sessionCookies(outcome.tokens, cookies, now()) };
  }

  return {
    verifyToken,
    authenticate,
    /** `Set-Cookie` values that store a new session (after `roster.sessions.create`). */
    sessionCookies: (tokens: SessionTokensLike) => (cookies ? sessionCookies(tokens, cookies, now()) : []),
    /** `Set-Cookie` values of a sign-out. */
    clearedCookies: () => (cookies ? clearedSessionCookies(cookies) : []),
  };
}

export type SessionVerifier = ReturnType<typeof createSessionVerifier>;

const verifiers = new Map<string, SessionVerifier>();
const verifiersOf = new WeakMap<object, Map<string, SessionVerifier>>();

/**
 * One verifier (and JWKS cache) per server, issuer and cookie settings; options that carry objects
 * (`revocations`, `fetch`, `now`) get verifiers of their own, kept as long as those objects live.
 */
function verifierFor(options: SessionVerifierOptions): SessionVerifier {
  const key = JSON.stringify([
    options.baseUrl,
    options.issuer,
    options.audience,
    options.jwksUrl,
    options.jwksMaxAgeMs,
    options.cookies,
    options.refresh,
    options.clockSkewSeconds,
  ]);
  const owner = options.revocations ?? options.fetch ?? options.now;
  let cache = verifiers;
  if (owner) {
    cache = verifiersOf.get(owner) ?? new Map();
    verifiersOf.set(owner, cache);
  }
  let verifier = cache.get(key);
  if (!verifier) {
    verifier = createSessionVerifier(options);
    cache.set(key, verifier);
  }
  return verifier;
}

/**
 * Verifies the session of a fetch-standard `Request` (Node, Bun, Deno, edge runtimes) or a bare
 * token. Returns a result, never throws for a bad token: `signed_in` with `auth`, or `signed_out`
 * with a `reason`. With a request, `setCookie` holds the cookies to set after a refresh.
 * Verifiers (and their JWKS caches) are kept per server and issuer.
 *
 * @example
 * ```ts
 * export default async function handler(request: Request) {
 *   const result = await verifySession(request, { baseUrl: process.env.ROSTER_URL! });
 *   if (result.status === 'signed_out') return new Response(result.reason, { status: 401 });
 *   const response = Response.json({ hello: result.auth.userId });
 *   for (const cookie of result.setCookie) response.headers.append('set-cookie', cookie);
 *   return response;
 * }
 * ```
 */
export async function verifySession(
  input: Request | string,
  options: Omit<SessionVerifierOptions, 'crypto'>,
): Promise<AuthenticateResult> {
  const verifier = verifierFor(options);
  if (typeof input === 'string') return { ...(await verifier.verifyToken(input)), setCookie: [] };
  return verifier.authenticate(input);
}
