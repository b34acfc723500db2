import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Every id and secret prefix Roster hands out, in one place. Ids are `<prefix>_` + 26 Crockford
 * base32 characters: 48 bits of milliseconds then 80 random bits, so ids sort by creation time
 * (index-friendly, and a stable default order for cursor pagination) and cannot be guessed.
 */
export const ID_PREFIXES = {
  organization: 'org',
  connection: 'conn',
  scimToken: 'stok',
  user: 'user',
  group: 'grp',
  membership: 'mem',
  roleMapping: 'rmap',
  role: 'role',
  session: 'sess',
  event: 'evt',
  apiKey: 'key',
  request: 'req',
  webhookEndpoint: 'whep',
  webhookDelivery: 'whd',
  signingKey: 'sk',
  portalLink: 'plink',
  portalSession: 'psess',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

/**
 * Secrets carry a product prefix so that a leaked one is recognisable (and matched by secret
 * scanners): `rst_sk_` management (root) key, `rst_ak_` scoped API key, `rst_scim_` SCIM bearer
 * token, `rst_rt_` refresh token.
 */
export const SECRET_PREFIXES = {
  secretKey: 'rst_sk_',
  apiKey: 'rst_ak_',
  scimToken: 'rst_scim_',
  refreshToken: 'rst_rt_',
  webhookSecret: 'whsec_',
  portalLink: 'rst_pl_',
  portalSession: 'rst_ps_',
} as const;

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

function encodeTime(ms: number): string {
  let out = '';
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[rest % 32] + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits -> 16 characters of 5 bits.
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/**
 * Random bytes for ids, drawn from the CSPRNG 4 KiB at a time: one `randomBytes` call per id cost
 * about 20 µs of CPU (a SCIM write makes up to five ids), a slice of the pool well under 1 µs.
 * Every byte is used once.
 */
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolAt = POOL_SIZE;

function randomSlice(length: number): Uint8Array {
  if (poolAt + length > pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolAt = 0;
  }
  poolAt += length;
  return pool.subarray(poolAt - length, poolAt);
}

export function newId(kind: IdKind, now = Date.now()): string {
  return `${ID_PREFIXES[kind]}_${encodeTime(now)}${encodeRandom(randomSlice(10))}`;
}

const ID_PATTERN = /^[a-z]+_[0-9a-hjkmnp-tv-z]{26}$/;

/** True when `value` looks like an id of `kind` (cheap pre-check before touching the database). */
export function isId(kind: IdKind, value: string): boolean {
  return value.startsWith(`${ID_PREFIXES[kind]}_`) && ID_PATTERN.test(value);
}

/** A new secret: prefix + 32 random bytes, base64url. */
export function newSecret(kind: keyof typeof SECRET_PREFIXES): string {
  return SECRET_PREFIXES[kind] + randomBytes(32).toString('base64url');
}

/**
 * SHA-256 hex digest. Secrets are high-entropy random strings, so a fast hash is the right tool.
 * One-shot `crypto.hash` (Node 20.12+): every SCIM request hashes its bearer token, and a Hash
 * object per call cost more than the digest.
 */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/** Constant-time comparison of two hex digests of equal length. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

/** What may be shown of a secret after creation: its prefix and last four characters. */
export function secretHint(secret: string): string {
  const prefix = Object.values(SECRET_PREFIXES).find((p) => secret.startsWith(p)) ?? '';
  return `${prefix}…${secret.slice(-4)}`;
}
