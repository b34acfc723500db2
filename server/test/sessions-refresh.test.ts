import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../src/errors.js';
import { hashSecret } from '../src/ids.js';
import { refreshSession } from '../src/sessions/refresh.js';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, type TestConnection, userBody } from './scim-helpers.js';
import { recordStatements } from './statements.js';

/**
 * The refresh hot path (sessions/refresh.ts, http/session-refresh.ts): one statement per refresh,
 * its rate limit included, and the HTTP edge it is served on without Express. The guarantees of
 * a refresh (refusals, reuse, deprovisioning) are tested in sessions.test.ts.
 */

let server: TestServer;
let conn: TestConnection;
beforeAll(async () => {
  // A rate limit that the statement takes (on PostgreSQL) but that these refreshes never reach.
  server = await startTestServer({ env: { ROSTER_REFRESH_RATE_LIMIT: '100000' } });
  conn = await createConnection(server, 'okta');
});
afterAll(async () => {
  await server?.close();
});

let counter = 0;
async function signIn(target: TestServer = server, connection: TestConnection = conn) {
  const user = await connection.scim('POST', '/Users', {
    body: userBody(`r${++counter}-${Date.now()}@example.com`),
  });
  expect(user.status, user.text).toBe(201);
  const response = await target.api('POST', '/v1/sessions', {
    body: { user_id: user.body.id, organization_id: connection.organizationId },
  });
  expect(response.status, response.text).toBe(201);
  return response.body as { id: string; refresh_token: string };
}

/** The rotation statements among `statements` (the rate limit's own is an UPDATE of the sessions too). */
function rotationStatements(statements: string[]): string[] {
  return statements.filter((text) => /^\s*update sessions x\b[\s\S]*\bwith ordinality\b/.test(text));
}

function refresh(refreshToken: string, target: TestServer = server) {
  return target.api('POST', '/v1/sessions/refresh', { key: null, body: { refresh_token: refreshToken } });
}

describe('a refresh is one round trip', () => {
  it('one UPDATE of the session row rotates, checks the member and takes the rate limit', async () => {
    const session = await signIn();
    let token = (await refresh(session.refresh_token)).body.refresh_token as string;
    const n = 10;
    const recording = recordStatements();
    let statements: string[];
    try {
      for (let i = 0; i < n; i++) {
        const r = await refresh(token);
        expect(r.status, r.text).toBe(200);
        token = r.body.refresh_token;
      }
    } finally {
      statements = recording.stop();
    }
    // Background work of the server (the feed, webhooks, maintenance) may query meanwhile: the
    // refreshes' statements are those on the session tables, the rate limits, or a transaction.
    const refreshes = statements.filter((text) =>
      /refresh_tokens|rate_limits|\bsessions\b|\bmemberships\b|^\s*(begin|commit|rollback)\b/i.test(text),
    );
    expect(refreshes).toHaveLength(n);
    for (const text of refreshes) {
      // One row written: the session's (its generation, its rate limit), on both databases.
      expect(text).toMatch(/^\s*update sessions x\b/);
      expect(text).toMatch(/refresh_tat/);
      expect(text).not.toMatch(/refresh_tokens|rate_limits|\binsert\b/);
    }
  });

  it('over the limit, a refresh answers 429, spends nothing and loses nothing', async () => {
    const limited = await startTestServer({ env: { ROSTER_REFRESH_RATE_LIMIT: '1' } });
    try {
      const c = await createConnection(limited);
      const session = await signIn(limited, c);
      const first = await refresh(session.refresh_token, limited);
      expect(first.status).toBe(200);
      const token = first.body.refresh_token as string;
      const over = await refresh(token, limited);
      expect([over.status, over.body.error.code]).toEqual([429, 'rate_limited']);
      expect(over.headers.get('retry-after')).toBe('1');
      // The limit is taken in the refresh statement, with the rotation: the refused refresh left
      // the session at the generation of `token`.
      const row = await limited.ctx.db
        .selectFrom('sessions')
        .select('refresh_generation')
        .where('id', '=', session.id)
        .executeTakeFirstOrThrow();
      expect(token.split('.').slice(0, 2).join('.')).toBe(`rst_rt_${session.id}.${row.refresh_generation}`);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const retried = await refresh(token, limited);
      expect(retried.status, retried.text).toBe(200);
      expect((await refresh(retried.body.refresh_token, limited)).status).toBe(429);
    } finally {
      await limited.close();
    }
  });
});

describe('concurrent rotations share statements', () => {
  it('refreshes of one moment rotate in batches, each answered with its own session, refusals apart', async () => {
    const deps = { keys: server.signingKeys, keyRing: server.keyRing };
    const live = await Promise.all(Array.from({ length: 16 }, () => signIn()));
    const revoked = await Promise.all(Array.from({ length: 3 }, () => signIn()));
    for (const s of revoked)
      expect((await server.api('POST', `/v1/sessions/${s.id}/revoke`)).status).toBe(200);
    const generations = async (ids: string[]) => {
      const rows = await server.ctx.db
        .selectFrom('sessions')
        .select(['id', 'user_id', 'refresh_generation', 'refresh_token_hash'])
        .where('id', 'in', ids)
        .execute();
      return new Map(rows.map((row) => [row.id, row]));
    };
    const before = await generations([...live, ...revoked].map((s) => s.id));
    // Submitted in one tick: the first of each lane runs alone, the rest wait for its statement and
    // go together. The first live session's token comes twice (parallel tabs): one rotation. In
    // mixed order (ids grow with time): each row must find its refresh by position, not by order.
    const presented = [...live, ...revoked, live[0]!];
    const order = presented.map((_, k) => k).sort((a, b) => ((a * 7) % 20) - ((b * 7) % 20));
    const recording = recordStatements();
    let outcomes: PromiseSettledResult<Awaited<ReturnType<typeof refreshSession>>>[];
    let statements: string[];
    try {
      const settled = await Promise.allSettled(
        order.map((k) => refreshSession(server.ctx, deps, presented[k]!.refresh_token)),
      );
      outcomes = presented.map((_, k) => settled[order.indexOf(k)]!);
    } finally {
      statements = recording.stop();
    }
    const rotations = rotationStatements(statements);
    expect(rotations.length).toBeGreaterThan(0);
    expect(rotations.length).toBeLessThan(live.length);

    const after = await generations([...live, ...revoked].map((s) => s.id));
    for (const [k, s] of live.entries()) {
      const outcome = outcomes[k]!;
      expect(outcome.status).toBe('fulfilled');
      if (outcome.status !== 'fulfilled') continue;
      const issued = outcome.value;
      const was = before.get(s.id)!;
      // Its own session, user and token: nothing of another row of the batch.
      expect(issued.session).toMatchObject({ id: s.id, user_id: was.user_id });
      const claims = JSON.parse(Buffer.from(issued.token.split('.')[1]!, 'base64url').toString('utf8'));
      expect([claims.sid, claims.sub]).toEqual([s.id, was.user_id]);
      expect(issued.refreshToken.startsWith(`rst_rt_${s.id}.${was.refresh_generation + 1}.`)).toBe(true);
      expect(after.get(s.id)).toMatchObject({
        refresh_generation: was.refresh_generation + 1,
        refresh_token_hash: hashSecret(issued.refreshToken),
      });
    }
    // The same token again, in the same moment: the same successor (the reuse interval).
    const again = outcomes[presented.length - 1]!;
    const first = outcomes[0]!;
    expect(again.status === 'fulfilled' && first.status === 'fulfilled').toBe(true);
    if (again.status === 'fulfilled' && first.status === 'fulfilled') {
      expect(again.value.refreshToken).toBe(first.value.refreshToken);
    }
    // The revoked sessions in the same batches: refused, not rotated.
    for (const [k, s] of revoked.entries()) {
      const outcome = outcomes[live.length + k]!;
      expect(outcome.status).toBe('rejected');
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(ApiError);
        expect([outcome.reason.status, outcome.reason.code]).toEqual([401, 'session_revoked']);
      }
      expect(after.get(s.id)).toEqual(before.get(s.id));
    }
  });
});

describe.runIf(process.env.DATABASE_URL)('a batch never waits for a row lock (PostgreSQL)', () => {
  it("a session row held by another transaction holds up no other session's refresh", async () => {
    const deps = { keys: server.signingKeys, keyRing: server.keyRing };
    const live = await Promise.all(Array.from({ length: 12 }, () => signIn()));
    const held = await signIn();
    // Another tenant's long transaction (a deprovisioning of thousands, say) holds one session row.
    const other = new pg.Client({ connectionString: server.databaseUrl });
    await other.connect();
    let heldRefresh: Promise<unknown> | undefined;
    try {
      await other.query('begin');
      await other.query('select id from sessions where id = $1 for update', [held.id]);
      // Submitted together: the held session shares a lane, and maybe a batch, with live ones.
      const heldIssued = refreshSession(server.ctx, deps, held.refresh_token);
      heldRefresh = heldIssued;
      const liveRefreshes = Promise.all(live.map((s) => refreshSession(server.ctx, deps, s.refresh_token)));
      const timeout = new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 5_000).unref());
      const refreshed = await Promise.race([liveRefreshes, timeout]);
      expect(refreshed).not.toBe('stuck');
      if (refreshed !== 'stuck') expect(refreshed.map((r) => r.session.id)).toEqual(live.map((s) => s.id));
      // The held one waits for the lock, alone, and rotates once it is released.
      const meanwhile = new Promise<'waiting'>((resolve) => setTimeout(() => resolve('waiting'), 300));
      expect(await Promise.race([heldIssued.then(() => 'done'), meanwhile])).toBe('waiting');
      await other.query('commit');
      const issued = await heldIssued;
      expect(issued.session.id).toBe(held.id);
      expect(issued.refreshToken.startsWith(`rst_rt_${held.id}.`)).toBe(true);
    } finally {
      await other.query('rollback').catch(() => {});
      await other.end();
      await heldRefresh?.catch(() => {});
    }
  });
});

describe("a rotation's commit", () => {
  /** The synchronous_commit of every connection of the server's pool, each held at once. */
  async function poolSettings(target: TestServer): Promise<string[]> {
    const held = Array.from({ length: 20 }, () =>
      sql<{ setting: string }>`select current_setting('synchronous_commit') as setting from pg_sleep(0.05)`
        .execute(target.ctx.db)
        .then(({ rows }) => rows[0]!.setting),
    );
    return Promise.all(held);
  }

  it('by default does not wait for the WAL flush, for that statement only', async () => {
    const before = await poolSettings(server);
    const sessions = await Promise.all(Array.from({ length: 20 }, () => signIn()));
    const recording = recordStatements();
    let statements: string[];
    try {
      const refreshed = await Promise.all(sessions.map((s) => refresh(s.refresh_token)));
      for (const r of refreshed) expect(r.status, r.text).toBe(200);
    } finally {
      statements = recording.stop();
    }
    const rotations = rotationStatements(statements);
    // Concurrent rotations share statements (batches): one per session at most.
    expect(rotations.length).toBeGreaterThan(0);
    expect(rotations.length).toBeLessThanOrEqual(sessions.length);
    // Local to the statement's own transaction (is_local true), set only when it rotated.
    for (const text of rotations)
      expect(text).toMatch(/returning[\s\S]*set_config\('synchronous_commit', 'off', true\)/);
    // No connection the rotations ran on keeps the setting: a later write of the same connection
    // (a revocation, say) waits for its flush as before.
    expect(await poolSettings(server)).toEqual(before);
    expect(new Set(before)).not.toContain('off');
  });

  it('waits for the flush like every other write with ROSTER_REFRESH_SYNCHRONOUS_COMMIT=on', async () => {
    const flushed = await startTestServer({ env: { ROSTER_REFRESH_SYNCHRONOUS_COMMIT: 'on' } });
    try {
      const c = await createConnection(flushed);
      const session = await signIn(flushed, c);
      const recording = recordStatements();
      let statements: string[];
      try {
        expect((await refresh(session.refresh_token, flushed)).status).toBe(200);
      } finally {
        statements = recording.stop();
      }
      const rotations = statements.filter((text) => /^\s*update sessions x\b/.test(text));
      expect(rotations).toHaveLength(1);
      expect(rotations[0]).not.toMatch(/synchronous_commit/);
    } finally {
      await flushed.close();
    }
  });
});

describe('the refresh endpoint on node:http', () => {
  it('answers with the request id, no-store and the contract body', async () => {
    const session = await signIn();
    const response = await server.api('POST', '/v1/sessions/refresh', {
      key: null,
      body: { refresh_token: session.refresh_token },
      headers: { 'x-request-id': 'edge-request-0001' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('edge-request-0001');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('server-timing')).toMatch(/^app;dur=\d+\.\d\d$/);
    expect(response.body).toMatchObject({ object: 'session_tokens', id: session.id });
    // A +json media type with a charset is JSON too.
    const again = await server.api('POST', '/v1/sessions/refresh?from=edge', {
      key: null,
      body: { refresh_token: response.body.refresh_token },
      headers: { 'content-type': 'application/vnd.api+json; charset=UTF-8' },
    });
    expect(again.status, again.text).toBe(200);
  });

  it('refuses bodies it cannot read in the /v1 error format, changing nothing', async () => {
    const session = await signIn();
    const cases: [RequestInit, number, string][] = [
      [{ body: JSON.stringify({ refresh_token: 'x'.repeat(5000) }) }, 413, 'payload_too_large'],
      [
        {
          body: JSON.stringify({ refresh_token: session.refresh_token }),
          headers: { 'content-type': 'application/json; charset=latin1' },
        },
        415,
        'unsupported_media_type',
      ],
      [
        {
          body: JSON.stringify({ refresh_token: session.refresh_token }),
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        },
        415,
        'unsupported_media_type',
      ],
      [{ body: '' }, 400, 'validation_failed'],
      [
        { body: JSON.stringify({ refresh_token: session.refresh_token, extra: 1 }) },
        400,
        'validation_failed',
      ],
      [{ body: '[1, 2' }, 400, 'invalid_json'],
    ];
    for (const [init, status, code] of cases) {
      const response = await server.fetch('/v1/sessions/refresh', {
        method: 'POST',
        ...init,
        headers: { 'content-type': 'application/json', 'x-request-id': 'edge-request-0002', ...init.headers },
      });
      const body = await response.json();
      expect([response.status, body.error.code], JSON.stringify(body)).toEqual([status, code]);
      expect(body.error.request_id).toBe('edge-request-0002');
    }
    const noBody = await server.fetch('/v1/sessions/refresh', { method: 'POST' });
    expect(noBody.status).toBe(415);
    // None of them spent the token.
    expect((await refresh(session.refresh_token)).status).toBe(200);
  });

  it('other methods and paths are the management API, which wants the secret key', async () => {
    const get = await server.api('GET', '/v1/sessions/refresh', { key: null });
    expect([get.status, get.body.error.code]).toEqual([401, 'unauthorized']);
    const longer = await server.api('POST', '/v1/sessions/refreshes', { key: null, body: {} });
    expect(longer.status).toBe(401);
  });
});
