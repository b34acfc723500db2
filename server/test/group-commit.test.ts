import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../src/lib/group-commit.js';

/** A GroupCommit whose batches wait until the test lets them finish, recording what each held. */
function recording(max = 4, options: { failTogether?: boolean; maxWaiting?: number } = {}) {
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
    ...options,
    overflow: () => new Error('lane full'),
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

  it('with failTogether, a failed batch fails with everything waiting for its key, and no item runs again', async () => {
    const { commit, batches, release } = recording(2, { failTogether: true });
    const settle = (item: Promise<string>) => item.then(String, (error: Error) => error.message);
    const failing = settle(commit.submit('k', 'boom'));
    const waiting = ['b', 'c', 'd'].map((item) => settle(commit.submit('k', item)));
    const elsewhere = commit.submit('other', 'e');
    expect(await failing).toBe('batch failed');
    expect(await Promise.all(waiting)).toEqual(['batch failed', 'batch failed', 'batch failed']);
    expect(batches.map((batch) => batch.items)).toEqual([['boom'], ['e']]);
    await release();
    await expect(elsewhere).resolves.toBe('other:e');
    // The key works again afterwards.
    const after = commit.submit('k', 'f');
    await release();
    await expect(after).resolves.toBe('k:f');
  });

  it('past maxWaiting for a key, refuses at once; other keys and the batch in flight go on', async () => {
    const { commit, release } = recording(4, { maxWaiting: 2 });
    const first = commit.submit('k', 'a');
    const queued = [commit.submit('k', 'b'), commit.submit('k', 'c')];
    await expect(commit.submit('k', 'd')).rejects.toThrow('lane full');
    const elsewhere = commit.submit('other', 'e');
    await release();
    await release();
    await release();
    expect(await first).toBe('k:a');
    expect(await Promise.all(queued)).toEqual(['k:b', 'k:c']);
    await expect(elsewhere).resolves.toBe('other:e');
  });
});
