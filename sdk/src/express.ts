/**
 * `@roster/sdk/express`: session middleware for Express (4 and 5) and anything with the same
 * request/response shape. Node only: signatures are verified with `node:crypto`.
 */
import { createPublicKey, type KeyObject, verify as verifySignature } from 'node:crypto';
import {
  clearedSessionCookies,
  resolveCookieOptions,
  type SessionCookieOptions,
  sessionCookies,
} from './session/cookies.js';
import type { CryptoBackend } from './session/crypto.js';
import {
  type AuthenticateResult,
  createSessionVerifier,
  type RosterAuth,
  type SessionVerifier,
  type SessionVerifierOptions,
  type SignedOutReason,
} from './session/verify.js';

export type { SessionCookieOptions, SessionTokensLike } from './session/cookies.js';
export {
  createRevocationList,
  type RevocationList,
  type RevocationListOptions,
} from './session/revocations.js';
export type { RevocationCheck, RosterAuth, SessionClaims, SignedOutReason } from './session/verify.js';

const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** One decoder for every payload (making one per token was a measurable share of verification). */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** node:crypto: synchronous verification, no WebCrypto promise or thread-pool hop per token. */
const nodeCrypto: CryptoBackend<KeyObject> = {
  importKey: async (jwk) => createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }),
  verify: (alg, key, signingInput, signature) =>
    verifySignature(
      alg === 'ES256' ? 'sha256' : null,
      Buffer.from(signingInput, 'latin1'),
      alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
      signature,
    ),
  base64url(text) {
    if (!BASE64URL.test(text) || text.length % 4 === 1) throw new TypeError('not base64url');
    return Buffer.from(text, 'base64url');
  },
  base64urlText(text) {
    return utf8.decode(nodeCrypto.base64url(text));
  },
};

/** The parts of an Express request the middleware reads (and where it puts the session). */
export interface RequestLike {
  method?: string;
  headers: Record<string, string | string[] | undefined>;
  auth?: RosterAuth | null;
}

/** The parts of an Express response the middleware writes. */
export interface ResponseLike {
  status(code: number): ResponseLike;
  json(body: unknown): unknown;
  append(field: string, value: string | string[]): unknown;
  setHeader(name: string, value: string): unknown;
}

export type NextLike = (error?: unknown) => void;
export type Middleware = (req: RequestLike, res: ResponseLike, next: NextLike) => void;

export interface RosterMiddlewareOptions extends Omit<SessionVerifierOptions, 'crypto'> {
  /**
   * Share one verifier (and its JWKS cache) between several middlewares; by default each
   * middleware creates its own from these options.
   */
  verifier?: SessionVerifier;
}

declare global {
  namespace Express {
    interface Request {
      /** The verified Roster session; `null` when signed out (set by withSession / requireSession). */
      auth?: RosterAuth | null;
    }
  }
}

/**
 * A verifier that uses node:crypto, for the middlewares below or for verifying tokens by hand.
 *
 * @example
 * ```ts
 * const verifier = createNodeSessionVerifier({ baseUrl: 'https://roster.example.com' });
 * const result = await verifier.verifyToken(token);
 * ```
 */
export function createNodeSessionVerifier(options: Omit<SessionVerifierOptions, 'crypto'>): SessionVerifier {
  return createSessionVerifier({ ...options, crypto: nodeCrypto as CryptoBackend });
}

const STATUS: Partial<Record<SignedOutReason, number>> = { roster_unavailable: 503, origin_not_allowed: 403 };

function run(
  verifier: SessionVerifier,
  req: RequestLike,
  res: ResponseLike,
  next: NextLike,
  onSignedOut: (result: Extract<AuthenticateResult, { status: 'signed_out' }>) => void,
): void {
  verifier.authenticate(req).then(
    (result) => {
      if (result.setCookie.length > 0) res.append('Set-Cookie', result.setCookie);
      if (result.status === 'signed_in') {
        req.auth = result.auth;
        next();
      } else {
        req.auth = null;
        onSignedOut(result);
      }
    },
    (error: unknown) => next(error),
  );
}

/**
 * Rejects requests without a valid session: `401 {"error": {"code": <reason>, "message"}}` (503
 * when Roster cannot be reached to fetch keys or refresh, with `Retry-After` when Roster rate
 * limited the refresh; the cookies are kept). The session is at `req.auth`:
 * `{ userId, sessionId, orgId, role, permissions }`. The token comes from `Authorization: Bearer`
 * or the session cookie; an expired cookie token is refreshed with the refresh cookie (new cookies
 * are set), and a refused refresh (user deactivated, session revoked) clears both cookies.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { requirePermission, requireSession } from '@roster/sdk/express';
 *
 * const app = express();
 * app.use('/api', requireSession({ baseUrl: 'https://roster.example.com' }));
 * app.get('/api/invoices', requirePermission('invoices:read'), (req, res) => {
 *   res.json({ org: req.auth!.orgId });
 * });
 * ```
 */
export function requireSession(options: RosterMiddlewareOptions): Middleware {
  const verifier = options.verifier ?? createNodeSessionVerifier(options);
  return (req, res, next) =>
    run(verifier, req, res, next, (result) => {
      res.setHeader('WWW-Authenticate', `Bearer realm="roster", error="invalid_token"`);
      // A rate-limited refresh: the client may retry after this (its cookies were kept).
      if (result.retryAfter !== undefined) res.setHeader('Retry-After', String(result.retryAfter));
      res
        .status(STATUS[result.reason] ?? 401)
        .json({ error: { code: result.reason, message: result.message } });
    });
}

/**
 * Like {@link requireSession}, but never rejects: `req.auth` is the session or `null` (pages that
 * show more to signed-in users).
 *
 * @example
 * ```ts
 * app.get('/', withSession({ baseUrl }), (req, res) => {
 *   res.send(req.auth ? `Hello ${req.auth.userId}` : 'Hello, stranger');
 * });
 * ```
 */
export function withSession(options: RosterMiddlewareOptions): Middleware {
  const verifier = options.verifier ?? createNodeSessionVerifier(options);
  return (req, res, next) => run(verifier, req, res, next, () => next());
}

/**
 * True when `granted` covers `wanted`: the same permission, `*`, or a `prefix:*` wildcard
 * (`invoices:*` covers `invoices:read`).
 */
export function hasPermission(granted: readonly string[], wanted: string): boolean {
  for (const permission of granted) {
    if (permission === wanted || permission === '*') return true;
    if (permission.endsWith(':*') && wanted.startsWith(permission.slice(0, -1))) return true;
  }
  return false;
}

/**
 * After requireSession or withSession: `403 {"error": {"code": "forbidden"}}` unless the session's
 * role grants every listed permission (`401` when there is no session).
 *
 * @example
 * ```ts
 * app.delete('/api/invoices/:id', requireSession({ baseUrl }), requirePermission('invoices:write'), handler);
 * ```
 */
export function requirePermission(...permissions: string[]): Middleware {
  if (permissions.length === 0) throw new TypeError('requirePermission: name at least one permission');
  return (req, res, next) => {
    if (!req.auth) {
      res.status(401).json({ error: { code: 'missing_token', message: 'Sign in first.' } });
      return;
    }
    const missing = permissions.filter((p) => !hasPermission(req.auth!.permissions, p));
    if (missing.length > 0) {
      res
        .status(403)
        .json({ error: { code: 'forbidden', message: `Missing permission: ${missing.join(', ')}.` } });
      return;
    }
    next();
  };
}

/**
 * Stores a new session in the response's cookies (after `roster.sessions.create` at sign-in), or
 * clears them (sign-out), with the cookie names and attributes the middleware reads.
 *
 * @example
 * ```ts
 * const tokens = await roster.sessions.create({ user_id, organization_id });
 * setSessionCookies(res, tokens);
 * ```
 */
export function setSessionCookies(
  res: ResponseLike,
  tokens: { token: string; refresh_token: string; session_expires_at: string },
  options: { cookies?: SessionCookieOptions } = {},
): void {
  res.append('Set-Cookie', sessionCookies(tokens, resolveCookieOptions(options.cookies)));
}

/** Deletes both session cookies (sign-out). */
export function clearSessionCookies(
  res: ResponseLike,
  options: { cookies?: SessionCookieOptions } = {},
): void {
  res.append('Set-Cookie', clearedSessionCookies(resolveCookieOptions(options.cookies)));
}
