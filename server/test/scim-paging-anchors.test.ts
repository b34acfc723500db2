import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DB } from '../src/db/schema.js';
import { listPage, PageAnchors } from '../src/directory/scim-paging.js';
import { createTestDatabase, secondTestDatabase, startTestServer, type TestServer } from './harness.js';
import { createConnection, type TestConnection, userBody } from './scim-helpers.js';

/**
 * Rank anchors (PageAnchors in directory/scim-paging.ts, the change stamp of migration 0014) on
 * both databases: a page that starts its skip from an anchor holds exactly the rows that `order
 * by id offset N limit M` over the page statement's own snapshot holds, whatever was written
 * since the anchors were read, by this server, another one, or concurrently with the page.
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { ROSTER_SCIM_RATE_LIMIT: '100000' } });
});
afterAll(async () => {
  await server?.close();
});

type Table = 'users' | 'groups';

/** The live ids of a connection in the default order, read by one statement. */
async function liveIds(db: Kysely<DB>, connectionId: string, table: Table = 'users'): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`select id from ${sql.raw(table)}
    where connection_id = ${connectionId} and deleted_at is null order by id`.execute(db);
  return rows.map((r) => r.id);
}

/** A page of the default order, unfiltered: what GET /Users?startIndex=offset+1&count=count reads. */
async function page(
  db: Kysely<DB>,
  anchors: PageAnchors,
  connectionId: string,
  offset: number,
  count: number,
  table: Table = 'users',
) {
  const result = await listPage<{ id: string }>(
    db,
    { startIndex: offset + 1, count },
    {
      table,
      alias: table === 'users' ? 'u' : 'g',
      connectionId,
      filter: undefined,
      sort: undefined,
      anchors,
    },
  );
  return { ids: result.rows.map((r) => r.id), total: result.total };
}

async function createUsers(conn: TestConnection, names: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < names.length; i += 10) {
    const created = await Promise.all(
      names.slice(i, i + 10).map((name) => conn.scim('POST', '/Users', { body: userBody(name) })),
    );
    for (const reply of created) {
      expect(reply.status, reply.text).toBe(201);
      ids.push(reply.body.id);
    }
  }
  return ids;
}

const names = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}@anchors.test`);

/** A new connection with `users` users, and anchors every 4 ids that build only when told to. */
async function directory(users: number) {
  const conn = await createConnection(server, 'okta');
  await createUsers(conn, names(`u${Math.random().toString(36).slice(2, 6)}-`, users));
  const anchors = new PageAnchors(server.ctx.db, { spacing: 4, minIntervalMs: 3_600_000 });
  await anchors.build('users', conn.connectionId);
  return { conn, anchors };
}

describe('SCIM pages from rank anchors', () => {
  it('hold the rows of offset/limit at every offset, users and groups', async () => {
    const { conn, anchors } = await directory(61);
    const whole = await liveIds(server.ctx.db, conn.connectionId);
    expect(whole).toHaveLength(61);
    for (const count of [1, 3, 10]) {
      for (let offset = 0; offset <= 64; offset++) {
        const got = await page(server.ctx.db, anchors, conn.connectionId, offset, count);
        expect(got.ids, `offset ${offset} count ${count}`).toEqual(whole.slice(offset, offset + count));
        expect(got.total).toBe(61);
      }
    }
    // Every page from offset 4 on started from an anchor (none before: nothing to skip to).
    expect(anchors.stats).toEqual({ builds: 1, hits: 3 * 61, misses: 0 });

    for (let g = 0; g < 13; g++) {
      const created = await conn.scim('POST', '/Groups', { body: { displayName: `G${g}` } });
      expect(created.status, created.text).toBe(201);
    }
    await anchors.build('groups', conn.connectionId);
    const groups = await liveIds(server.ctx.db, conn.connectionId, 'groups');
    for (let offset = 0; offset <= 14; offset++) {
      const got = await page(server.ctx.db, anchors, conn.connectionId, offset, 2, 'groups');
      expect(got.ids, `groups offset ${offset}`).toEqual(groups.slice(offset, offset + 2));
    }
    expect(anchors.stats.hits).toBe(3 * 61 + 11);
  });

  it('hold after creates and deletes between the build and the page, and build again', async () => {
    const { conn, anchors } = await directory(40);
    const before = await liveIds(server.ctx.db, conn.connectionId);
    // Deletions before, at and after anchors (ranks 0, 4, 5, 17, 38), and creations (at the end
    // of the id order, after every anchor): each moves some ranks.
    for (const i of [0, 4, 5, 17, 38]) {
      expect((await conn.scim('DELETE', `/Users/${before[i]}`)).status).toBe(204);
    }
    await createUsers(conn, names('late-', 3));
    const after = await liveIds(server.ctx.db, conn.connectionId);
    expect(after).toHaveLength(38);
    for (let offset = 0; offset <= 40; offset++) {
      const got = await page(server.ctx.db, anchors, conn.connectionId, offset, 5);
      expect(got.ids, `offset ${offset}`).toEqual(after.slice(offset, offset + 5));
      expect(got.total).toBe(38);
    }
    // The anchors were stale from offset 4 on: every such page skipped from the start.
    expect(anchors.stats).toEqual({ builds: 1, hits: 0, misses: 37 });

    // A write that leaves the count as it was (one deletion, one creation) is a change too.
    expect((await conn.scim('DELETE', `/Users/${after[1]}`)).status).toBe(204);
    await anchors.build('users', conn.connectionId);
    await createUsers(conn, names('swap-', 1));
    const swapped = await liveIds(server.ctx.db, conn.connectionId);
    expect(swapped).toHaveLength(38);
    // A deactivation (PATCH) keeps the user listed and in place: not a change of the order.
    const deactivated = await conn.scim('PATCH', `/Users/${swapped[9]}`, {
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', path: 'active', value: false }],
      },
    });
    expect(deactivated.status).toBe(200);
    for (let offset = 4; offset <= 40; offset++) {
      const got = await page(server.ctx.db, anchors, conn.connectionId, offset, 5);
      expect(got.ids, `offset ${offset}`).toEqual(swapped.slice(offset, offset + 5));
    }
    expect(anchors.stats).toMatchObject({ builds: 2, hits: 0, misses: 37 + 37 });

    await anchors.build('users', conn.connectionId);
    await conn.scim('PATCH', `/Users/${swapped[10]}`, {
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', path: 'active', value: false }],
      },
    });
    for (let offset = 4; offset <= 40; offset++) {
      const got = await page(server.ctx.db, anchors, conn.connectionId, offset, 5);
      expect(got.ids, `offset ${offset}`).toEqual(swapped.slice(offset, offset + 5));
    }
    expect(anchors.stats).toEqual({ builds: 3, hits: 37, misses: 74 });
  });

  it('hold while another client creates and deletes users concurrently', async () => {
    const { conn, anchors } = await directory(60);
    const db = server.ctx.db;
    let writing = true;
    const writer = (async () => {
      let n = 0;
      while (writing) {
        const created = await conn.scim('POST', '/Users', { body: userBody(`w${n++}@anchors.test`) });
        expect(created.status, created.text).toBe(201);
        const live = await liveIds(db, conn.connectionId);
        const victim = live[Math.floor(Math.random() * live.length)]!;
        expect((await conn.scim('DELETE', `/Users/${victim}`)).status).toBe(204);
        // Pauses, so that some pages fall between writes and their anchors hold.
        if (n % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 15));
      }
    })();
    let pages = 0;
    try {
      while (pages < 600 && (anchors.stats.hits < 20 || anchors.stats.misses < 20 || pages < 100)) {
        if (pages % 5 === 0) await anchors.build('users', conn.connectionId);
        const offset = 4 + Math.floor(Math.random() * 58);
        const count = 1 + Math.floor(Math.random() * 6);
        // The page and the ground truth in one snapshot (a repeatable read transaction takes it at
        // its first statement, the page's).
        await db
          .transaction()
          .setIsolationLevel('repeatable read')
          .execute(async (trx) => {
            const got = await page(trx, anchors, conn.connectionId, offset, count);
            const whole = await liveIds(trx, conn.connectionId);
            expect(got.ids, `offset ${offset} count ${count}`).toEqual(whole.slice(offset, offset + count));
            expect(got.total).toBe(whole.length);
          });
        pages++;
        // Lets the writer in between pages (on PGlite, one connection, it would otherwise wait).
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 4));
      }
    } finally {
      writing = false;
      await writer;
    }
    // Both cases were exercised: pages from anchors that held, and pages that found them stale.
    expect(anchors.stats.hits).toBeGreaterThanOrEqual(20);
    expect(anchors.stats.misses).toBeGreaterThanOrEqual(20);
  });

  it('are built by the pages that need them, at most one build at a time', async () => {
    const { conn } = await directory(30);
    const anchors = new PageAnchors(server.ctx.db, { spacing: 4, minIntervalMs: 0 });
    const whole = await liveIds(server.ctx.db, conn.connectionId);
    // Offsets below the spacing never build.
    await page(server.ctx.db, anchors, conn.connectionId, 3, 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(anchors.stats.builds).toBe(0);
    // Concurrent deep pages without anchors: right answers, and one build.
    const first = await Promise.all(
      [10, 11, 12, 13].map((offset) => page(server.ctx.db, anchors, conn.connectionId, offset, 3)),
    );
    expect(first.map((p) => p.ids)).toEqual([10, 11, 12, 13].map((o) => whole.slice(o, o + 3)));
    for (let i = 0; i < 100 && anchors.stats.builds === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(anchors.stats.builds).toBe(1);
    expect((await page(server.ctx.db, anchors, conn.connectionId, 20, 3)).ids).toEqual(whole.slice(20, 23));
    expect(anchors.stats).toEqual({ builds: 1, hits: 1, misses: 0 });
  });

  it('are used for a bounded time, hold at most maxAnchors ids, and build one connection at a time', async () => {
    const { conn } = await directory(30);
    const whole = await liveIds(server.ctx.db, conn.connectionId);
    // Too old to use: pages skip from the start (exact all the same), and build them again.
    const aging = new PageAnchors(server.ctx.db, { spacing: 4, minIntervalMs: 0, maxAgeMs: 0 });
    await aging.build('users', conn.connectionId);
    expect(aging.at('users', conn.connectionId, 20)).toBeUndefined();
    expect((await page(server.ctx.db, aging, conn.connectionId, 20, 3)).ids).toEqual(whole.slice(20, 23));
    await builtTimes(aging, 2);

    // The ids are capped whatever scim_counts says (here: that the connection is nearly empty).
    let capped: PageAnchors | undefined;
    await server.ctx.db
      .transaction()
      .execute(async (trx) => {
        await sql`update scim_counts set n = 0 where connection_id = ${conn.connectionId} and resource = 'users'`.execute(
          trx,
        );
        capped = new PageAnchors(trx, { spacing: 4, maxAnchors: 3, minIntervalMs: 3_600_000 });
        await capped.build('users', conn.connectionId);
        // Rolled back: the counts stay exact for the other tests.
        throw new Error('roll back');
      })
      .catch((error: Error) => expect(error.message).toBe('roll back'));
    expect(capped!.at('users', conn.connectionId, 29)).toMatchObject({ rest: 29 - 2 * 4 });

    // One build at a time in a process: deep pages of three connections at once never have two
    // builds running together; a failing build is reported.
    const others = [await directory(30), await directory(30)];
    const failures: unknown[] = [];
    const single = new PageAnchors(server.ctx.db, { spacing: 4, minIntervalMs: 0 });
    let running = 0;
    let most = 0;
    const build = single.build.bind(single);
    single.build = async (table, connectionId) => {
      most = Math.max(most, ++running);
      try {
        await build(table, connectionId);
      } finally {
        running--;
      }
    };
    await Promise.all(
      [conn, ...others.map((o) => o.conn)].map((c) => page(server.ctx.db, single, c.connectionId, 10, 2)),
    );
    await builtTimes(single, Math.max(1, single.stats.builds));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(single.stats.builds).toBeGreaterThanOrEqual(1);
    expect(most).toBe(1);
    const broken = new PageAnchors(server.ctx.db, {
      spacing: 4,
      minIntervalMs: 0,
      onBuildError: (error) => failures.push(error),
    });
    await page(server.ctx.db, broken, conn.connectionId, 10, 2, 'users');
    await builtTimes(broken, 1);
    expect(failures).toEqual([]);
    // A build over a table that is not a SCIM resource fails in the database.
    // biome-ignore lint/suspicious/noExplicitAny: a wrong table on purpose
    (broken as any).seen('no_such_table', conn.connectionId, 10, 'x', undefined);
    for (let i = 0; i < 200 && failures.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(failures).toHaveLength(1);
  });

  it('keep a bounded number of connections, the least recently paged dropped', async () => {
    const a = await directory(9);
    const b = await directory(9);
    const anchors = new PageAnchors(server.ctx.db, { spacing: 4, minIntervalMs: 3_600_000, maxEntries: 1 });
    await anchors.build('users', a.conn.connectionId);
    expect(anchors.at('users', a.conn.connectionId, 5)).toBeDefined();
    await anchors.build('users', b.conn.connectionId);
    expect(anchors.at('users', a.conn.connectionId, 5)).toBeUndefined();
    expect(anchors.at('users', b.conn.connectionId, 5)).toMatchObject({ rest: 1 });
  });
});

/** Users written by SQL (the triggers count them as any write path's), in bulk. */
async function bulkUsers(db: Kysely<DB>, conn: TestConnection, n: number, prefix: string) {
  await sql`insert into users (id, organization_id, connection_id, user_name, email)
    select 'user_' || ${prefix} || lpad(i::text, 10, '0'), ${conn.organizationId}, ${conn.connectionId},
      ${prefix} || i || '@bulk.test', ${prefix} || i || '@bulk.test'
    from generate_series(1, ${n}) i`.execute(db);
}

async function scimPage(conn: TestConnection, offset: number, count: number) {
  const reply = await conn.scim('GET', `/Users?startIndex=${offset + 1}&count=${count}`);
  expect(reply.status, reply.text).toBe(200);
  return {
    ids: (reply.body.Resources as { id: string }[]).map((r) => r.id),
    total: reply.body.totalResults as number,
  };
}

/** Waits for the server's anchors to have been built `builds` times. */
async function builtTimes(anchors: PageAnchors, builds: number) {
  for (let i = 0; i < 500 && anchors.stats.builds < builds; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(anchors.stats.builds).toBe(builds);
}

describe('SCIM pages of a server at the default spacing (1,000)', () => {
  it('start from the anchors the server builds, and hold the rows of offset/limit', async () => {
    const conn = await createConnection(server, 'entra');
    await bulkUsers(server.ctx.db, conn, 2500, 'aaaa');
    await createUsers(conn, names('scim-', 12));
    const whole = await liveIds(server.ctx.db, conn.connectionId);
    expect(whole).toHaveLength(2512);
    const anchors = server.ctx.pageAnchors;
    const { builds, hits } = anchors.stats;
    // The first deep page skips from the start and has the anchors built.
    expect(await scimPage(conn, 2100, 50)).toEqual({ ids: whole.slice(2100, 2150), total: 2512 });
    await builtTimes(anchors, builds + 1);
    // Offsets in descending order: no page continues a previous one (a walk's cursor).
    for (const offset of [2511, 2462, 2001, 2000, 1999, 1500, 1000, 999, 998, 10]) {
      expect((await scimPage(conn, offset, 50)).ids, `offset ${offset}`).toEqual(
        whole.slice(offset, offset + 50),
      );
    }
    expect(anchors.stats.hits - hits).toBe(7);
  });
});

describe.runIf(process.env.DATABASE_URL)('SCIM pages across two servers on one PostgreSQL database', () => {
  it("start from a server's anchors only while the other server has not changed the directory", async () => {
    const shared = await createTestDatabase();
    const a = await startTestServer({ database: shared });
    const b = await startTestServer({ database: await secondTestDatabase(shared) });
    try {
      const onA = await createConnection(a, 'okta');
      // Users created through SCIM sort before the bulk ones ('user_0…' < 'user_b…').
      await createUsers(onA, names('first-', 5));
      await bulkUsers(a.ctx.db, onA, 2300, 'bbbb');
      const anchors = a.ctx.pageAnchors;
      await scimPage(onA, 1500, 40);
      await builtTimes(anchors, 1);
      let whole = await liveIds(a.ctx.db, onA.connectionId);
      expect((await scimPage(onA, 2200, 40)).ids).toEqual(whole.slice(2200, 2240));
      expect(anchors.stats).toEqual({ builds: 1, hits: 1, misses: 0 });

      // Server B deletes users before every anchor and creates one: A's next pages skip from the
      // start, and are right, then build again (at most once per 2 s).
      const onB: TestConnection = { ...onA, scim: scimThrough(b, onA) };
      for (const id of [whole[1], whole[3]]) {
        expect((await onB.scim('DELETE', `/Users/${id}`)).status).toBe(204);
      }
      expect((await onB.scim('POST', '/Users', { body: userBody('from-b@anchors.test') })).status).toBe(201);
      whole = await liveIds(a.ctx.db, onA.connectionId);
      for (const offset of [2250, 2100, 1001]) {
        expect((await scimPage(onA, offset, 39)).ids, `offset ${offset}`).toEqual(
          whole.slice(offset, offset + 39),
        );
      }
      expect(anchors.stats).toMatchObject({ hits: 1, misses: 3 });
      await new Promise((resolve) => setTimeout(resolve, 2100));
      expect((await scimPage(onA, 1700, 39)).ids).toEqual(whole.slice(1700, 1739));
      expect(anchors.stats).toMatchObject({ hits: 1, misses: 4 });
      await builtTimes(anchors, 2);
      for (const offset of [2201, 1999]) {
        expect((await scimPage(onA, offset, 38)).ids, `offset ${offset}`).toEqual(
          whole.slice(offset, offset + 38),
        );
      }
      expect(anchors.stats).toEqual({ builds: 2, hits: 3, misses: 4 });
    } finally {
      await b.close();
      await a.close();
      await shared.drop();
    }
  });
});

function scimThrough(other: TestServer, conn: TestConnection): TestConnection['scim'] {
  return async (method, path, options = {}) => {
    const reply = await other.fetch(`${conn.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${conn.token}`, 'content-type': 'application/scim+json' },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await reply.text();
    return { status: reply.status, headers: reply.headers, body: text ? JSON.parse(text) : undefined, text };
  };
}
