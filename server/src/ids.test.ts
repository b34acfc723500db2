import { describe, expect, it } from 'vitest';
import { digestsEqual, hashSecret, isId, newId, newSecret, secretHint } from './ids.js';

describe('ids', () => {
  it('prefixes by kind and sorts by creation time', () => {
    const a = newId('organization', 1_700_000_000_000);
    const b = newId('organization', 1_700_000_000_001);
    expect(a).toMatch(/^org_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(a < b).toBe(true);
    expect(isId('organization', a)).toBe(true);
    expect(isId('connection', a)).toBe(false);
    expect(isId('organization', 'org_../../etc')).toBe(false);
  });

  it('does not repeat', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId('user', 0)));
    expect(ids.size).toBe(10_000);
  });
});

describe('secrets', () => {
  it('are prefixed, random and hashed', () => {
    const secret = newSecret('scimToken');
    expect(secret).toMatch(/^rst_scim_[A-Za-z0-9_-]{43}$/);
    expect(newSecret('scimToken')).not.toBe(secret);
    expect(hashSecret(secret)).toMatch(/^[0-9a-f]{64}$/);
    expect(secretHint(secret)).toBe(`rst_scim_…${secret.slice(-4)}`);
  });

  it('compares digests exactly', () => {
    const digest = hashSecret('a');
    expect(digestsEqual(digest, hashSecret('a'))).toBe(true);
    expect(digestsEqual(digest, hashSecret('b'))).toBe(false);
    expect(digestsEqual(digest, '')).toBe(false);
  });
});
