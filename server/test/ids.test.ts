import { describe, expect, it } from 'vitest';
import { isId, newId } from '../src/ids.js';

describe('newId', () => {
  it('draws a fresh random part for every id across refills of its random pool', () => {
    // 409 ids per 4 KiB pool: 5,000 ids span a dozen refills, all in one millisecond.
    const ids = Array.from({ length: 5_000 }, () => newId('request', 1_764_000_000_000));
    expect(ids.every((id) => isId('request', id))).toBe(true);
    const randomParts = new Set(ids.map((id) => id.slice(-16)));
    expect(randomParts.size).toBe(ids.length);
    // 80 random bits: every character of the alphabet shows up in every position.
    for (let position = 0; position < 16; position++) {
      expect(new Set(ids.map((id) => id.at(-16 + position))).size).toBe(32);
    }
  });
});
