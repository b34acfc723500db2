import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../src/lib/group-commit.js';

/** A GroupCommit whose batches wait until the test lets them finish, recording what each held. */
function recording(max = 4) {
  const batches: { key: string; items: string[] }[] = [];
  const gates: (() => void)[] = [];
  const commit = new GroupCommit<string, string, string>({
    run: async (key, items) => {
      batches.push({ key, items });
      if (items.includes('boom')) throw new Error('batch failed');
      await new Promise<void>((resolve) => gates.push(resolve));
      return items.map((item) => `${key}:${item}`);
    },
    distinct: (item) => item.split('#')[0]!,
    max,
  });
  const release = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    gates.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { commit, batches, release };
}

describe('GroupCommit', () => {
  it('runs a lone item at once, then what arrived meanwhile as one batch, in order', async () => {
    const { commit, batches, release } = recording();
    const first = commit.submit('k', 'a');
    expect(batches).toEqual([{ key: 'k', items: ['a'] }]);
    const later = ['b', 'c', 'd'].map((item) => commit.submit('k', item));
    await release();
    expect(batches[1]).toEqual({ key: 'k', items: ['b', 'c', 'd'] });
    await release();
    expect(await first).toBe('k:a');
    expect(await Promise.all(later)).toEqual(['k:b', 'k:c', 'k:d']);
  });

  it('keeps items that share a name, and those past the maximum, for later batches', async () => {
    const { commit, batches, release } = recording(2);
    const all = [commit.submit('k', 'x'), ...['y', 'y#2', 'z', 'w'].map((item) => commit.submit('k', item))];
    await release();
    expect(batches[1]!.items).toEqual(['y', 'z']);
    await release();
    expect(batches[2]!.items).toEqual(['y#2', 'w']);
    await release();
    expect(await Promise.all(all)).toEqual(['k:x', 'k:y', 'k:y#2', 'k:z', 'k:w']);
    expect(batches).toHaveLength(3);
  });

  it('runs batches of different keys side by side', async () => {
    const { commit, batches, release } = recording();
    const a = commit.submit('one', 'a');
    const b = commit.submit('two', 'b');
    expect(batches.map((batch) => batch.key)).toEqual(['one', 'two']);
    await release();
    await release();
    expect([await a, await b]).toEqual(['one:a', 'two:b']);
  });

  it('runs the items of a failed batch again alone: only the failing one fails', async () => {
    const { commit, batches, release } = recording();
    const first = commit.submit('k', 'a');
    const failing = [commit.submit('k', 'boom'), commit.submit('k', 'c')].map((item) =>
      item.then(String, (error: Error) => error.message),
    );
    await release();
    await expect(first).resolves.toBe('k:a');
    await release();
    expect(await Promise.all(failing)).toEqual(['batch failed', 'k:c']);
    expect(batches.map((batch) => batch.items)).toEqual([['a'], ['boom', 'c'], ['boom'], ['c']]);
    const after = commit.submit('k', 'd');
    await release();
    await expect(after).resolves.toBe('k:d');
  });
});
