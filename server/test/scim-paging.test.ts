import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as m0009 from '../src/db/migrations/0009-scim-counts.js';
import * as m0014 from '../src/db/migrations/0014-scim-count-changes.js';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, patchOp, type TestConnection, userBody } from './scim-helpers.js';
import { recordStatements } from './statements.js';

/**
 * SCIM list pages (directory/scim-paging.ts, http/scim/page-cursors.ts) on both databases: every
 * page is the slice of the whole ordered result that startIndex and count name, its totalResults
 * exact (RFC 7644 §3.4.2.4) through every path that adds or removes users and groups (the counts
 * of migration 0009), a walk continues after the page it saw, and a page is one statement.
 */

let server: TestServer;
let clock: Date | undefined;
beforeAll(async () => {
  server = await startTestServer({ now: () => clock ?? new Date() });
});
afterAll(async () => {
  await server?.close();
});

const filter = (text: string) => `filter=${encodeURIComponent(text)}`;

interface Listed {
  ids: string[];
  total: number;
  body: { totalResults: number; startIndex: number; itemsPerPage: number };
}

async function list(conn: TestConnection, path: string): Promise<Listed> {
  const response = await conn.scim('GET', path);
  expect(response.status, `${path}: ${response.text}`).toBe(200);
  return {
    ids: response.body.Resources.map((r: { id: string }) => r.id),
    total: response.body.totalResults,
    body: response.body,
  };
}

/**
 * The live users and groups of a connection, counted, which its counts and its SCIM lists (when
 * the connection still answers) must match.
 */
async function counted(conn: TestConnection, reachable = true): Promise<{ users: number; groups: number }> {
  const live = await sql<{ users: string; groups: string; counted_users: string; counted_groups: string }>`
    select
      (select count(*) from users where connection_id = ${conn.connectionId} and deleted_at is null) as users,
      (select count(*) from groups where connection_id = ${conn.connectionId} and deleted_at is null) as groups,
      (select coalesce(sum(n), 0) from scim_counts where connection_id = ${conn.connectionId} and resource = 'users') as counted_users,
      (select coalesce(sum(n), 0) from scim_counts where connection_id = ${conn.connectionId} and resource = 'groups') as counted_groups`.execute(
    server.ctx.db,
  );
  const row = live.rows[0]!;
  expect(Number(row.counted_users)).toBe(Number(row.users));
  expect(Number(row.counted_groups)).toBe(Number(row.groups));
  if (reachable) {
    expect((await list(conn, '/Users?count=0')).total).toBe(Number(row.users));
    expect((await list(conn, '/Users?count=1000')).ids).toHaveLength(Number(row.users));
    expect((await list(conn, '/Groups?count=0')).total).toBe(Number(row.groups));
  }
  return { users: Number(row.users), groups: Number(row.groups) };
}

/** 23 users (titles alternating "even" and "odd") and 7 groups. */
async function directory(): Promise<TestConnection> {
  const conn = await createConnection(server, 'okta');
  for (let i = 0; i < 23; i++) {
    const created = await conn.scim('POST', '/Users', {
      // Names out of id order, so that sorting by userName is a different order.
      body: userBody(`${String.fromCharCode(122 - ((i * 7) % 26))}${i}@paging.test`, {
        title: i % 2 === 0 ? 'even' : 'odd',
      }),
    });
    expect(created.status, created.text).toBe(201);
  }
  for (let g = 0; g < 7; g++) {
    const created = await conn.scim('POST', '/Groups', {
      body: { displayName: `${g % 2 === 0 ? 'Team A' : 'Team B'} ${g}` },
    });
    expect(created.status, created.text).toBe(201);
  }
  return conn;
}

describe('SCIM list pages', () => {
  it('are the slices of the whole result that startIndex and count name, with exact totals', async () => {
    const conn = await directory();
    const users = await conn.scim('GET', '/Users?count=1000');
    const all = users.body.Resources as { id: string; title: string; userName: string }[];
    expect(all).toHaveLength(23);
    expect(all.map((u) => u.id)).toEqual(all.map((u) => u.id).sort());
    const even = all.filter((u) => u.title === 'even').map((u) => u.id);
    const byName = (await list(conn, '/Users?count=1000&sortBy=userName&sortOrder=descending')).ids;
    expect(byName).toEqual([...all].sort((a, b) => (a.userName < b.userName ? 1 : -1)).map((u) => u.id));
    const groups = (await list(conn, '/Groups?count=1000')).ids;
    expect(groups).toHaveLength(7);
    const teamA = (await list(conn, `/Groups?count=1000&${filter('displayName sw "Team A"')}`)).ids;
    expect(teamA).toHaveLength(4);

    const cases: { path: string; whole: string[] }[] = [
      { path: '/Users?', whole: all.map((u) => u.id) },
      { path: `/Users?${filter('title eq "even"')}&`, whole: even },
      { path: '/Users?sortBy=userName&sortOrder=descending&', whole: byName },
      {
        path: `/Users?${filter('title eq "even"')}&sortBy=userName&sortOrder=descending&`,
        whole: byName.filter((id) => even.includes(id)),
      },
      { path: '/Groups?', whole: groups },
      { path: `/Groups?${filter('displayName sw "Team A"')}&`, whole: teamA },
    ];
    for (const { path, whole } of cases) {
      // Each (startIndex, count) once, in an order that is not a walk: no remembered cursor.
      for (const count of [0, 1, 5, 12]) {
        for (const startIndex of [1, 2, 7, 12, 23, 24, 100]) {
          const page = await list(conn, `${path}startIndex=${startIndex}&count=${count}`);
          const what = `${path}startIndex=${startIndex}&count=${count}`;
          expect(page.ids, what).toEqual(whole.slice(startIndex - 1, startIndex - 1 + count));
          expect(page.body, what).toMatchObject({
            totalResults: whole.length,
            startIndex,
            itemsPerPage: page.ids.length,
          });
        }
      }
      // And walked, page after page, as an IdP's import does.
      const walked: string[] = [];
      for (let startIndex = 1; startIndex <= whole.length; startIndex += 4) {
        const page = await list(conn, `${path}startIndex=${startIndex}&count=4`);
        expect(page.total).toBe(whole.length);
        walked.push(...page.ids);
      }
      expect(walked, path).toEqual(whole);
      // Past the end, also right after a full last page (its cursor is remembered): empty.
      const beyond = await list(conn, `${path}startIndex=${whole.length + 1}&count=4`);
      expect(beyond.ids, path).toEqual([]);
      expect(beyond.total, path).toBe(whole.length);
    }
  });

  it('continue after the page an IdP saw while it deletes, filtered or not', async () => {
    const conn = await directory();
    for (const path of ['/Users?', `/Users?${filter('title eq "odd"')}&`]) {
      const whole = (await list(conn, `${path}count=1000`)).ids;
      const first = await list(conn, `${path}startIndex=1&count=3`);
      expect(first.ids).toEqual(whole.slice(0, 3));
      // The IdP deletes a user it has seen: the next page still starts with the fourth user
      // (an offset would now skip it).
      expect((await conn.scim('DELETE', `/Users/${first.ids[0]}`)).status).toBe(204);
      const second = await list(conn, `${path}startIndex=4&count=3`);
      expect(second.ids).toEqual(whole.slice(3, 6));
      expect(second.total).toBe(whole.length - 1);
    }
  });

  it('keep totalResults exact through every path that adds or removes users and groups', async () => {
    const a = await createConnection(server, 'entra');
    const b = await createConnection(server, 'okta', a.organizationId);
    const other = await createConnection(server, 'okta');
    const db = server.ctx.db;

    // Concurrent creates (on PostgreSQL, over several connections of the pool), a duplicate
    // refused, groups.
    const created = await Promise.all(
      Array.from({ length: 30 }, (_, i) => a.scim('POST', '/Users', { body: userBody(`c${i}@counts.test`) })),
    );
    expect(created.map((r) => r.status)).toEqual(created.map(() => 201));
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => b.scim('POST', '/Users', { body: userBody(`b${i}@counts.test`) })),
    );
    expect((await a.scim('POST', '/Users', { body: userBody('c0@counts.test') })).status).toBe(409);
    const groups = await Promise.all(
      Array.from({ length: 4 }, (_, g) => a.scim('POST', '/Groups', { body: { displayName: `G${g}` } })),
    );
    expect(await counted(a)).toEqual({ users: 30, groups: 4 });
    expect(await counted(b)).toEqual({ users: 10, groups: 0 });

    // Deactivation keeps a user listed; deletion (concurrent) removes it; a /v1 member has no
    // connection and is in no SCIM list.
    const ids = created.map((r) => r.body.id as string);
    const patched = await a.scim('PATCH', `/Users/${ids[0]}`, {
      body: patchOp({ op: 'replace', path: 'active', value: false }),
    });
    expect(patched.status).toBe(200);
    const deleted = await Promise.all(ids.slice(1, 6).map((id) => a.scim('DELETE', `/Users/${id}`)));
    expect(deleted.map((r) => r.status)).toEqual([204, 204, 204, 204, 204]);
    expect((await a.scim('DELETE', `/Users/${ids[1]}`)).status).toBe(404);
    expect((await a.scim('DELETE', `/Groups/${groups[0]!.body.id}`)).status).toBe(204);
    const member = await server.api('POST', `/v1/organizations/${a.organizationId}/memberships`, {
      body: { email: 'invited@counts.test' },
    });
    expect(member.status, member.text).toBe(201);
    expect(await counted(a)).toEqual({ users: 25, groups: 3 });

    // The retention purge removes deleted rows only.
    clock = new Date(Date.now() + 400 * 86_400_000);
    try {
      await server.maintenance.run();
    } finally {
      clock = undefined;
    }
    expect(await counted(a)).toEqual({ users: 25, groups: 3 });

    // A deleted connection's users stay (deactivated); its neighbour is untouched.
    expect((await server.api('DELETE', `/v1/connections/${b.connectionId}`)).status).toBe(204);
    expect(await counted(b, false)).toEqual({ users: 10, groups: 0 });
    expect(await counted(a)).toEqual({ users: 25, groups: 3 });

    // A deleted organization leaves no counts behind; another organization's stay.
    await other.scim('POST', '/Users', { body: userBody('o@counts.test') });
    expect((await server.api('DELETE', `/v1/organizations/${a.organizationId}`)).status).toBe(204);
    const left = await db
      .selectFrom('scim_counts')
      .select('connection_id')
      .where('connection_id', 'in', [a.connectionId, b.connectionId])
      .execute();
    expect(left).toEqual([]);
    expect(await counted(other)).toEqual({ users: 1, groups: 0 });
  });

  it('start exact on a directory that existed before the counts (migration 0009)', async () => {
    const conn = await directory();
    const first = (await list(conn, '/Users?count=1')).ids[0]!;
    expect((await conn.scim('DELETE', `/Users/${first}`)).status).toBe(204);
    const db = server.ctx.db as unknown as Kysely<unknown>;
    await m0014.down(db);
    await m0009.down(db);
    try {
      // Written while there are no counts: the migration counts what exists.
      expect((await conn.scim('POST', '/Users', { body: userBody('late@paging.test') })).status).toBe(201);
      expect((await conn.scim('POST', '/Groups', { body: { displayName: 'Late' } })).status).toBe(201);
    } finally {
      await m0009.up(db);
      await m0014.up(db);
    }
    expect(await counted(conn)).toEqual({ users: 23, groups: 8 });
  });

  it('are one statement each: page, total and the walk cursor', async () => {
    const conn = await directory();
    const first = (await list(conn, '/Users?count=1')).ids[0]!;
    const requests = [
      '/Users?startIndex=1&count=5',
      '/Users?startIndex=6&count=5',
      '/Users?startIndex=11&count=5',
      '/Users?startIndex=17&count=5',
      '/Users?startIndex=40&count=5',
      '/Users?count=0',
      `/Users?${filter('title eq "even"')}&startIndex=4&count=3`,
      `/Users?${filter(`id eq "${first}"`)}&startIndex=1&count=100`,
      `/Users?${filter('userName eq "nobody@paging.test"')}`,
      '/Users?sortBy=userName&startIndex=3&count=4',
      '/Users?attributes=groups&startIndex=3&count=4',
      '/Groups?startIndex=1&count=3',
      '/Groups?startIndex=4&count=3',
      `/Groups?${filter('displayName eq "Team A 0"')}`,
    ];
    // The retention purge runs 5 s after start, with a transaction of its own: stop its timer and
    // let a pass finish (joining one under way) before recording, rather than filter its statements.
    server.maintenance.stop();
    await server.maintenance.run();
    const recording = recordStatements();
    let statements: string[];
    try {
      for (const path of requests) await list(conn, path);
    } finally {
      statements = recording.stop();
    }
    // Other work of the server (the token check once a second, the rate limit's lease, the sync
    // log, the feed) may query meanwhile: a page's statements are those on the directory tables,
    // the walk cursors, the counts, or a transaction.
    const pages = statements.filter(
      (text) =>
        !/sync_log|rate_limits|scim_tokens/.test(text) &&
        /\b(users|groups|scim_page_cursors|scim_counts)\b|^\s*(begin|commit|rollback)\b/i.test(text),
    );
    expect(pages).toHaveLength(requests.length);
  });
});
