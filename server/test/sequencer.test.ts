import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('event sequencer', () => {
  it('numbers committed events 1..n, without gaps or repeats', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        server.api('POST', '/v1/organizations', { body: { name: `Org ${i}` } }),
      ),
    );
    await server.sequencer.flush();
    const events = await server.ctx.db
      .selectFrom('feed')
      .select(['seq', 'position'])
      .orderBy('seq')
      .execute();
    expect(events).toHaveLength(20);
    expect(await server.ctx.db.selectFrom('event_queue').selectAll().execute()).toEqual([]);
    // Concurrent transactions may commit out of insertion order; positions follow commit order, so
    // compare as a set here (per-resource order is tested with the feed).
    const positions = events.map((e) => e.position!).sort((a, b) => a - b);
    expect(positions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const feed = await server.ctx.db.selectFrom('event_feed').selectAll().executeTakeFirstOrThrow();
    expect(feed.head).toBe(20);
    expect(server.sequencer.head).toBe(20);
  });

  it('wakes a waiter when the feed advances, and times out otherwise', async () => {
    const head = server.sequencer.head;
    const idle = await server.sequencer.waitForAdvance(head, 50);
    expect(idle).toBe(head);
    const waiting = server.sequencer.waitForAdvance(head, 10_000);
    await server.api('POST', '/v1/organizations', { body: { name: 'Wake up' } });
    expect(await waiting).toBe(head + 1);
  });
});
