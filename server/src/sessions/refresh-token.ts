import { timingSafeEqual } from 'node:crypto';
import { hashSecret, isId, SECRET_PREFIXES } from '../ids.js';
import type { KeyRing } from '../key-ring.js';

/**
 * The refresh token's form: `rst_rt_<session id>.<generation>.<secret>.<tag>`. The secret is
 * random for a session's first token, and for each successor a keyed digest of the token it
 * succeeds (so that a presentation within the reuse interval answers the same successor again);
 * the tag is a keyed digest of the other three parts, which tells a genuine token from garbage
 * without the database. The session row keeps the SHA-256 of its current and previous tokens: a
 * token works only if the database holds its hash, and the key ring alone cannot produce one.
 *
 * What a leak allows. The key ring alone (ROSTER_ENCRYPTION_KEY): valid tags, hence a revocation
 * (presenting a made-up old generation of a session whose id it knows signs its user out), never
 * a refresh: that needs the current token, whose secret is not derivable without the previous
 * token. The database alone: hashes, from which no token is made. Both together: the successor
 * of a token whose plaintext the attacker also has, as with the tokens of earlier versions.
 */

const TAG_PURPOSE = 'refresh token';
const SUCCESSOR_PURPOSE = 'refresh token successor';
/** `<session id>.<generation>.<secret>.<tag>` after the prefix; base64url (a legacy token) has no dot. */
const TOKEN_PATTERN =
  /^([a-z]+_[0-9a-hjkmnp-tv-z]{26})\.([1-9][0-9]{0,9})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/;
const MAX_GENERATION = 2 ** 31 - 1;

const tagOf = (keyRing: KeyRing, sessionId: string, generation: number, secret: string) =>
  keyRing.mac(TAG_PURPOSE, `${sessionId}.${generation}.${secret}`);

/** A refresh token of a session's generation with `secret` (43 base64url characters). */
export function refreshTokenFor(
  keyRing: KeyRing,
  sessionId: string,
  generation: number,
  secret: string,
): string {
  const tag = tagOf(keyRing, sessionId, generation, secret).toString('base64url');
  return `${SECRET_PREFIXES.refreshToken}${sessionId}.${generation}.${secret}.${tag}`;
}

/**
 * The token that succeeds `presented` (of either form) at `generation`: its secret a keyed digest
 * of the presented token, so that presenting it again answers the same successor.
 */
export function successorToken(
  keyRing: KeyRing,
  presented: string,
  sessionId: string,
  generation: number,
): string {
  const secret = keyRing.mac(SUCCESSOR_PURPOSE, presented).toString('base64url');
  return refreshTokenFor(keyRing, sessionId, generation, secret);
}

export type Presented =
  | { kind: 'generation'; sessionId: string; generation: number; tokenHash: string }
  | { kind: 'legacy'; tokenHash: string }
  | { kind: 'forged' };

/** What a presented refresh token is, told without the database (its hash is checked there). */
export function parseRefreshToken(keyRing: KeyRing, token: string): Presented {
  if (!token.startsWith(SECRET_PREFIXES.refreshToken)) return { kind: 'forged' };
  const body = token.slice(SECRET_PREFIXES.refreshToken.length);
  if (!body.includes('.')) return { kind: 'legacy', tokenHash: hashSecret(token) };
  const match = TOKEN_PATTERN.exec(body);
  const [, sessionId = '', digits = '', secret = '', tag = ''] = match ?? [];
  const generation = Number(digits);
  if (!match || !isId('session', sessionId) || generation > MAX_GENERATION) return { kind: 'forged' };
  const expected = tagOf(keyRing, sessionId, generation, secret);
  const presented = Buffer.from(tag, 'base64url');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
    return { kind: 'forged' };
  return { kind: 'generation', sessionId, generation, tokenHash: hashSecret(token) };
}
