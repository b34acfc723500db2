import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/database.js';
import { Sequencer } from '../src/events/sequencer.js';
import { createLogger } from '../src/log.js';
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

describe.runIf(process.env.DATABASE_URL)('event sequencers of several processes', () => {
  it('number every event exactly once, 1..n, while they run at the same time as the writers', async () => {
    // Three more "processes" (each its own pool) number the same queue as the server, as fast as
    // they can, while 200 changes commit: runs overlap and wait for one another on the feed head.
    const databases = await Promise.all(
      [1, 2, 3].map(() => openDatabase({ url: server.databaseUrl!, poolSize: 2 })),
    );
    const sequencers = databases.map((database) => new Sequencer({ database, log: createLogger('silent') }));
    try {
      await server.sequencer.flush();
      const before = server.sequencer.head;
      let writing = true;
      const numbering = sequencers.map(async (sequencer) => {
        while (writing) await sequencer.flush();
      });
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          server.api('POST', '/v1/organizations', { body: { name: `Racing ${i}` } }),
        ),
      );
      writing = false;
      await Promise.all(numbering);
      await server.sequencer.flush();
      const { rows } = await sql<{ n: number; min: number; max: number; distinct_seqs: number }>`
        select count(*)::int as n, min(position)::int as min, max(position)::int as max,
               count(distinct seq)::int as distinct_seqs
        from feed where position > ${before}`.execute(server.ctx.db);
      expect(rows[0]).toEqual({ n: 200, min: before + 1, max: before + 200, distinct_seqs: 200 });
      expect(await server.ctx.db.selectFrom('event_queue').selectAll().execute()).toEqual([]);
      const feed = await server.ctx.db.selectFrom('event_feed').selectAll().executeTakeFirstOrThrow();
      expect(feed.head).toBe(before + 200);
    } finally {
      await Promise.all(databases.map((database) => database.close()));
    }
  });
});

describe.runIf(process.env.DATABASE_URL)('event sequencer behind a transaction-mode pooler', () => {
  it("learns of other processes' events by polling when it has no direct URL to LISTEN on", async () => {
    // Another process, configured as behind PgBouncer without DATABASE_DIRECT_URL.
    const database = await openDatabase({ url: server.databaseUrl, pooler: 'transaction', poolSize: 2 });
    const sequencer = new Sequencer({ database, log: createLogger('silent') });
    try {
      expect(database.notifies).toBe(false);
      await sequencer.start();
      await server.sequencer.flush();
      const head = server.sequencer.head;
      expect(await sequencer.waitForAdvance(head - 1, 5_000)).toBe(head);
      const waiting = sequencer.waitForAdvance(head, 5_000);
      await server.api('POST', '/v1/organizations', { body: { name: 'Polled' } });
      expect(await waiting).toBe(head + 1);
    } finally {
      await sequencer.stop();
      await database.close();
    }
  });
});
