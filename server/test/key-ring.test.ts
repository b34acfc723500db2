import { describe, expect, it } from 'vitest';
import { KeyRing } from '../src/key-ring.js';

/**
 * The key ring's keyed digests are part of every refresh token a server has issued (its tag, and
 * its successor's secret): they must not change between versions, or an upgrade signs every user
 * out. Known answers, computed as HMAC-SHA-256 under HKDF-SHA-256(key, no salt, "roster mac: " +
 * purpose), 32 bytes.
 */
describe('KeyRing.mac', () => {
  const ring = new KeyRing(Buffer.alloc(32, 7));

  it('is HMAC-SHA-256 under an HKDF subkey per purpose, the same in every version', () => {
    expect(ring.mac('refresh token', 'sess_x.1.secret').toString('hex')).toBe(
      '4a0e62ae88dca3743f9a6ea16ad761095f5041dbd423494053a8219fa19c4db3',
    );
    expect(ring.mac('refresh token successor', 'rst_rt_ü').toString('hex')).toBe(
      'c9051555264fa80184ed4880a272b6aeaab1ddd8c1f25a3304c0938dad82a638',
    );
    // Asked again (the subkey now cached), the same answer.
    expect(ring.mac('refresh token', 'sess_x.1.secret').toString('hex')).toBe(
      '4a0e62ae88dca3743f9a6ea16ad761095f5041dbd423494053a8219fa19c4db3',
    );
  });

  it('keys each purpose apart', () => {
    expect(ring.mac('refresh token', 'a').equals(ring.mac('refresh token successor', 'a'))).toBe(false);
    expect(
      new KeyRing(Buffer.alloc(32, 8)).mac('refresh token', 'a').equals(ring.mac('refresh token', 'a')),
    ).toBe(false);
  });
});
