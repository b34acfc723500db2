/**
 * Pure JWT checks of a Roster session token: splitting the compact JWS, reading its protected
 * header, and judging its claims. No keys, no network, no clock of its own (the caller passes the
 * time), so every rule is table-tested (test/jwt.test.ts).
 */
import { SESSION_ALGS, type SessionAlg } from './crypto.js';

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
  /**
   * The JWKS or the refresh endpoint could not be reached, or the refresh was rate limited
   * (`retryAfter` then says when to try again): not the user's fault, and the cookies stay.
   */
  | 'roster_unavailable';

export type SessionResult =
  | { status: 'signed_in'; auth: RosterAuth }
  | {
      status: 'signed_out';
      reason: SignedOutReason;
      message: string;
      /** Seconds after which trying again may succeed (a rate-limited refresh). */
      retryAfter?: number;
    };

export type SignedOut = Extract<SessionResult, { status: 'signed_out' }>;

export const signedOut = (reason: SignedOutReason, message: string): SignedOut => ({
  status: 'signed_out',
  reason,
  message,
});

export const MAX_TOKEN_LENGTH = 8192;
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The three base64url segments of a compact JWS, or why the token is not one. */
export function splitCompact(
  token: string | null | undefined,
): { header: string; payload: string; signature: string; signingInput: string } | SignedOut {
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
  return {
    header: token.slice(0, first),
    payload: token.slice(first + 1, second),
    signature: token.slice(second + 1),
    signingInput: token.slice(0, second),
  };
}

/**
 * The protected header's `alg` and `kid`, from its decoded JSON text. Only ES256 and EdDSA; no
 * `crit`; `typ`, when present, is `JWT`.
 */
export function parseHeader(json: string): { alg: SessionAlg; kid: string } | SignedOut {
  let header: { alg?: unknown; kid?: unknown; typ?: unknown; crit?: unknown };
  try {
    header = JSON.parse(json);
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

export interface ClaimRules {
  /** Expected `iss`. */
  issuer: string;
  /** Accepted `aud` values; undefined: `aud` is not checked. */
  audiences?: ReadonlySet<string> | undefined;
  /** Tolerated clock difference for `exp` and `nbf`, in seconds. */
  clockSkewSeconds: number;
  /** The time, in seconds since the epoch. */
  nowSeconds: number;
}

/**
 * Judges the claims of a token whose signature verified, from the payload's decoded JSON text:
 * `iss`, `aud`, `exp`/`nbf` with the clock skew, and the claims Roster always sets.
 */
export function checkClaims(json: string, rules: ClaimRules): SessionClaims | SignedOut {
  let claims: Partial<SessionClaims>;
  try {
    claims = JSON.parse(json);
  } catch {
    return signedOut('malformed_token', 'The payload is not JSON.');
  }
  if (typeof claims !== 'object' || claims === null)
    return signedOut('malformed_token', 'The payload is not an object.');
  if (claims.iss !== rules.issuer)
    return signedOut(
      'wrong_issuer',
      `iss is ${JSON.stringify(claims.iss)}, expected ${JSON.stringify(rules.issuer)}.`,
    );
  const audiences = rules.audiences;
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
  const skew = rules.clockSkewSeconds;
  if (rules.nowSeconds >= claims.exp + skew) return signedOut('token_expired', 'The token has expired.');
  if (claims.nbf !== undefined && (!isNumber(claims.nbf) || rules.nowSeconds < claims.nbf - skew)) {
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
  return claims as SessionClaims;
}

/** The session a verified token stands for. */
export function toAuth(claims: SessionClaims, token: string): RosterAuth {
  return {
    userId: claims.sub,
    sessionId: claims.sid,
    orgId: claims.org_id,
    role: claims.org_role,
    permissions: claims.org_permissions,
    issuedAt: new Date(claims.iat * 1000),
    expiresAt: new Date(claims.exp * 1000),
    token,
    claims,
  };
}
