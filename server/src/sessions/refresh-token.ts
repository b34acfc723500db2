import { timingSafeEqual } from 'node:crypto';
import { hashSecret, isId, SECRET_PREFIXES } from '../ids.js';
import type { KeyRing } from '../key-ring.js';

/**
 * The refresh token's form: `rst_rt_<session id>.<generation>.<mac>`, the mac an HMAC of the
 * session id and generation under a key derived from the key ring. Issued by createSession and
 * by every rotation (./refresh.ts); what a presented one is, is told here without the database.
 */

const MAC_PURPOSE = 'refresh token';
/** `<session id>.<generation>.<mac>` after the prefix; base64url (a legacy token) has no dot. */
const TOKEN_PATTERN = /^([a-z]+_[0-9a-hjkmnp-tv-z]{26})\.([1-9][0-9]{0,9})\.([A-Za-z0-9_-]{43})$/;
const MAX_GENERATION = 2 ** 31 - 1;

/** The refresh token of a session's generation. */
export function refreshTokenFor(keyRing: KeyRing, sessionId: string, generation: number): string {
  const mac = keyRing.mac(MAC_PURPOSE, `${sessionId}.${generation}`).toString('base64url');
  return `${SECRET_PREFIXES.refreshToken}${sessionId}.${generation}.${mac}`;
}

export type Presented =
  | { kind: 'generation'; sessionId: string; generation: number }
  | { kind: 'legacy'; tokenHash: string }
  | { kind: 'forged' };

/** What a presented refresh token is, checked without the database. */
export function parseRefreshToken(keyRing: KeyRing, token: string): Presented {
  if (!token.startsWith(SECRET_PREFIXES.refreshToken)) return { kind: 'forged' };
  const body = token.slice(SECRET_PREFIXES.refreshToken.length);
  if (!body.includes('.')) return { kind: 'legacy', tokenHash: hashSecret(token) };
  const match = TOKEN_PATTERN.exec(body);
  const [, sessionId = '', digits = '', mac = ''] = match ?? [];
  const generation = Number(digits);
  if (!match || !isId('session', sessionId) || generation > MAX_GENERATION) return { kind: 'forged' };
  const expected = keyRing.mac(MAC_PURPOSE, `${sessionId}.${generation}`);
  const presented = Buffer.from(mac, 'base64url');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
    return { kind: 'forged' };
  return { kind: 'generation', sessionId, generation };
}
