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
import { type CryptoBackend, type SessionAlg, webCrypto } from './crypto.js';
import { JwksCache } from './jwks.js';
import {
  checkClaims,
  parseHeader,
  type SessionClaims,
  type SessionResult,
  type SignedOut,
  type SignedOutReason,
  signedOut,
  splitCompact,
  toAuth,
} from './jwt.js';
import { createRefreshClient } from './refresh.js';

export type { RosterAuth, SessionClaims, SessionResult, SignedOutReason } from './jwt.js';

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

const BEARER = /^Bearer\s+(\S+)\s*$/i;

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
  const jwks = new JwksCache({
    url: options.jwksUrl ?? `${baseUrl}/.well-known/jwks.json`,
    fetch: fetchImpl,
    crypto: backend,
    cooldownMs: options.jwksCooldownMs ?? 30_000,
    maxAgeMs: options.jwksMaxAgeMs ?? 60_000,
    now,
  });
  const refreshClient = createRefreshClient({ baseUrl, fetch: fetchImpl, now });

  const audiences =
    options.audience === undefined
      ? undefined
      : new Set(Array.isArray(options.audience) ? options.audience : [options.audience]);

  // Decoded protected headers, by their encoded form: every token a key signs has the same header,
  // so it is decoded once per key, not once per token. Bounded: a header is attacker-chosen.
  const headers = new Map<string, { alg: SessionAlg; kid: string } | SignedOut>();

  function headerOf(encoded: string): { alg: SessionAlg; kid: string } | SignedOut {
    const known = headers.get(encoded);
    if (known) return known;
    let parsed: { alg: SessionAlg; kid: string } | SignedOut;
    try {
      parsed = parseHeader(backend.base64urlText(encoded));
    } catch {
      parsed = signedOut('malformed_token', 'The token header or signature is not valid base64url JSON.');
    }
    if (headers.size >= 64) headers.clear();
    headers.set(encoded, parsed);
    return parsed;
  }

  /**
   * The token's claims once its signature, issuer, audience and times check out (before the
   * revocation list is asked). Synchronous when the key is known and fresh and the backend
   * verifies synchronously (node:crypto): no promise at all on that path, which is every request
   * but the first of each key; a promise only to fetch the JWKS or for WebCrypto's verify.
   */
  function verifiedClaims(
    token: string | null | undefined,
  ): SessionClaims | SignedOut | Promise<SessionClaims | SignedOut> {
    const parts = splitCompact(token);
    if ('status' in parts) return parts;
    const header = headerOf(parts.header);
    if ('status' in header) return header;
    const { alg, kid } = header;
    let signature: Uint8Array;
    try {
      signature = backend.base64url(parts.signature);
    } catch {
      return signedOut('malformed_token', 'The token header or signature is not valid base64url JSON.');
    }
    const known = jwks.peek(kid);
    if (known) return withKey(known, alg, kid, parts, signature);
    return jwks.get(kid).then(
      (key) =>
        key
          ? withKey(key, alg, kid, parts, signature)
          : signedOut('unknown_key', `No published key has kid ${JSON.stringify(kid)}.`),
      (error: unknown) => signedOut('roster_unavailable', (error as Error).message),
    );
  }

  /** The rest of {@link verifiedClaims}, once the key is at hand. */
  function withKey(
    key: NonNullable<ReturnType<JwksCache['peek']>>,
    alg: SessionAlg,
    kid: string,
    parts: { payload: string; signingInput: string },
    signature: Uint8Array,
  ): SessionClaims | SignedOut | Promise<SessionClaims | SignedOut> {
    if (key.alg !== alg)
      return signedOut('unsupported_algorithm', `Key ${kid} is for ${key.alg}, not ${alg}.`);
    if (signature.length !== 64) return signedOut('invalid_signature', 'The signature has the wrong length.');
    let valid: boolean | Promise<boolean>;
    try {
      valid = backend.verify(alg, key.key, parts.signingInput, signature);
    } catch {
      valid = false;
    }
    if (typeof valid === 'boolean') return afterSignature(valid, parts.payload);
    return valid.then(
      (ok) => afterSignature(ok, parts.payload),
      () => afterSignature(false, parts.payload),
    );
  }

  function afterSignature(valid: boolean, encodedPayload: string): SessionClaims | SignedOut {
    if (!valid) return signedOut('invalid_signature', 'The signature does not verify.');
    // Only now is the payload trusted enough to read.
    let payload: string;
    try {
      payload = backend.base64urlText(encodedPayload);
    } catch {
      return signedOut('malformed_token', 'The payload is not JSON.');
    }
    return checkClaims(payload, { issuer, audiences, clockSkewSeconds: skew, nowSeconds: now() / 1000 });
  }

  /** The verdict of the revocation list on verified claims. */
  function revocationVerdict(claims: SessionClaims): SignedOut | undefined {
    if (options.revocations?.isRevoked(claims))
      return signedOut('session_revoked', 'The session was revoked.');
    if (options.revocations?.isStale?.(claims))
      return signedOut('role_changed', "The member's role or permissions changed: refresh the session.");
    return undefined;
  }

  /**
   * Verifies a token. Nothing about a token's verdict is cached: each call checks the signature,
   * `exp` against the clock and the revocation list as they are now.
   */
  async function verifyToken(token: string | null | undefined): Promise<SessionResult> {
    return verdict(await verifiedClaims(token), token);
  }

  function verdict(claims: SessionClaims | SignedOut, token: string | null | undefined): SessionResult {
    if ('status' in claims) return claims;
    return revocationVerdict(claims) ?? { status: 'signed_in', auth: toAuth(claims, token as string) };
  }

  /**
   * Authenticates a request: the token from `Authorization: Bearer` or the session cookie; with
   * cookies, an expired or revoked token is refreshed with the refresh cookie (the new cookies are
   * in `setCookie`), and a refused refresh clears both cookies. A rate-limited refresh (`429`)
   * keeps the cookies: a token whose only fault is an outdated role still passes until the refresh
   * succeeds (within Retry-After), anything else is `roster_unavailable` with `retryAfter`.
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
    const bearer = BEARER.exec(get('authorization') ?? '')?.[1];
    if (bearer) {
      const claims = verifiedClaims(bearer);
      return {
        ...verdict(claims instanceof Promise ? await claims : claims, bearer),
        setCookie: [],
      };
    }
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
    const token = jar.get(cookies.sessionName);
    const pending = verifiedClaims(token);
    const claims = pending instanceof Promise ? await pending : pending;
    const result = verdict(claims, token);
    const refreshToken = jar.get(cookies.refreshName);
    if (
      result.status === 'signed_in' ||
      !refreshEnabled ||
      !refreshToken ||
      !REFRESHABLE.has(result.reason)
    ) {
      return { ...result, setCookie: [] };
    }
    const outcome = await refreshClient.refresh(refreshToken);
    if (!outcome.ok) {
      if (outcome.retryAfter !== undefined) {
        // Rate limited, not refused: the cookies stay, and a token that is only behind on the
        // member's role (signature, issuer and expiry all valid) serves this request.
        if (!('status' in claims) && result.reason === 'role_changed') {
          return { status: 'signed_in', auth: toAuth(claims, token as string), setCookie: [] };
        }
        return {
          ...signedOut(outcome.reason, outcome.message),
          retryAfter: outcome.retryAfter,
          setCookie: [],
        };
      }
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
