import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedRateLimiter } from '../src/rate-limit.js';
import { startTestServer, type TestServer } from './harness.js';

/**
 * The SCIM rate limit shared by server processes through the database: two limiters here stand
 * for two processes (each with its own leased tokens) spending one connection's budget.
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

/** The server's database handle, counting the statements sent through it. */
function counting() {
  const counter = { statements: 0 };
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      counter.statements++;
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
  return { db: server.ctx.db.withPlugin(plugin), counter };
}

describe('shared SCIM rate limit', () => {
  it('lets two processes together pass no more than the budget in a burst, and uses all of it', async () => {
    const { db } = counting();
    const first = new SharedRateLimiter(db, 'test', 50);
    const second = new SharedRateLimiter(db, 'test', 50);
    const started = performance.now();
    const waits = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? first : second).take('burst')),
    );
    const seconds = (performance.now() - started) / 1000;
    const allowed = waits.filter((wait) => wait === 0).length;
    // 50 a second, bursts of one second's worth: never more, across both.
    expect(allowed).toBeLessThanOrEqual(50 + Math.ceil(50 * seconds) + 1);
    expect(allowed).toBeGreaterThanOrEqual(50);
    expect(waits.filter((wait) => wait !== 0).every((wait) => wait === 1)).toBe(true);
  });

  it('leases tokens in batches: a busy connection does not cost one statement per request', async () => {
    const { db, counter } = counting();
    const limiter = new SharedRateLimiter(db, 'test', 10_000);
    for (let i = 0; i < 200; i++) expect(await limiter.take('busy')).toBe(0);
    // Leases double while they run out early: 1, 2, 4, … (one statement each, a prune now and then).
    expect(counter.statements).toBeLessThan(20);
  });

  it('refuses once the budget is spent, whichever process asks', async () => {
    const { db } = counting();
    const first = new SharedRateLimiter(db, 'test', 1);
    const second = new SharedRateLimiter(db, 'test', 1);
    expect(await first.take('strict')).toBe(0);
    expect(await first.take('strict')).toBe(1);
    expect(await second.take('strict')).toBe(1);
  });

  it('passes one second of budget in a burst, not more: 2/s lets two of three through', async () => {
    const { db } = counting();
    const limiter = new SharedRateLimiter(db, 'test', 2);
    const waits = [];
    for (let i = 0; i < 3; i++) waits.push(await limiter.take('two'));
    expect(waits).toEqual([0, 0, 1]);
  });
});
