import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/database.js';
import { type Child, freePort, run, serverDir, waitFor } from './child-server.js';
import { createTestDatabase, startTestServer, type TestDatabase, type TestServer } from './harness.js';
import { createConnection, userBody } from './scim-helpers.js';

/**
 * Several server processes on one PostgreSQL: `ROSTER_WORKERS=N npm start`, and what the
 * processes must agree on (rate limits, SCIM token revocation, page cursors).
 */

const POSTGRES = Boolean(process.env.DATABASE_URL);

/** One request on a connection of its own, so that the cluster hands each to the next worker. */
function request(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent: false,
        headers: {
          connection: 'close',
          ...headers,
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const listening = (child: Child) =>
  [...child.stdout.matchAll(/"pid":(\d+)[^\n]*roster listening on/g)].map((m) => Number(m[1]));
const servingPids = (child: Child) =>
  new Set(
    child.stdout
      .split('\n')
      .filter((line) => line.includes('"msg":"request"'))
      .map((line) => (JSON.parse(line) as { pid: number }).pid),
  );

describe('ROSTER_WORKERS', () => {
  it('is refused on the embedded database, with a line saying why and how to recover', async () => {
    const child = run({ PORT: '0', ROSTER_WORKERS: '2', ROSTER_DATA_DIR: path.join(serverDir, '.never') });
    expect(await child.exited).toBe(1);
    expect(child.stderr.split('\n')[0]).toBe(
      'roster: invalid configuration: ROSTER_WORKERS must be 1 with the embedded database, which serves one process (set DATABASE_URL to run several)',
    );
    expect(child.stderr).toContain('Fix or unset that variable and start again');
  });
});

describe.runIf(POSTGRES)('ROSTER_WORKERS=2 on PostgreSQL', () => {
  let testDb: TestDatabase;
  let child: Child;
  let url: string;
  const secretKey = `rst_sk_workers_${'x'.repeat(32)}`;
  beforeAll(async () => {
    testDb = await createTestDatabase();
    await testDb.database.close();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = run({
      ...testDb.env,
      PORT: String(port),
      ROSTER_WORKERS: '2',
      ROSTER_SECRET_KEY: secretKey,
      ROSTER_SCIM_RATE_LIMIT: '20',
      ROSTER_API_RATE_LIMIT: '20',
      LOG_LEVEL: 'info',
    });
    await waitFor(() => (listening(child).length >= 2 ? true : undefined));
  }, 120_000);
  afterAll(async () => {
    if (child && child.process.exitCode === null) {
      child.process.kill('SIGTERM');
      await child.exited;
    }
    await testDb?.drop();
  });

  it('serves from both processes, limits a SCIM connection across them, and cuts off a rotated-out token on both within a second', async () => {
    const admin = { authorization: `Bearer ${secretKey}` };
    const org = await request(`${url}/v1/organizations`, 'POST', admin, { name: 'Workers' });
    expect(org.status).toBe(201);
    const conn = await request(
      `${url}/v1/organizations/${JSON.parse(org.body).id}/connections`,
      'POST',
      admin,
      {
        name: 'Okta',
        provider: 'okta',
      },
    );
    expect(conn.status).toBe(201);
    const { id: connectionId, scim } = JSON.parse(conn.body) as {
      id: string;
      scim: { base_url: string; token: string };
    };
    const scimUsers = `${scim.base_url}/Users?count=1`;
    const bearer = { authorization: `Bearer ${scim.token}` };

    // 20 requests a second per connection, bursts of 20: at most 20 + 20/s of the time taken
    // pass (the budget shared by the processes is tested exactly below, with two servers).
    const started = performance.now();
    const replies = await Promise.all(Array.from({ length: 100 }, () => request(scimUsers, 'GET', bearer)));
    const seconds = (performance.now() - started) / 1000;
    const allowed = replies.filter((r) => r.status === 200).length;
    const limited = replies.filter((r) => r.status === 429);
    expect(allowed + limited.length).toBe(100);
    expect(allowed).toBeGreaterThanOrEqual(20);
    expect(allowed).toBeLessThanOrEqual(20 + Math.ceil(20 * seconds) + 1);
    for (const reply of limited) expect(reply.headers['retry-after']).toBe('1');
    await waitFor(() => (servingPids(child).size >= 2 ? true : undefined), 5_000);

    // Both processes have the token checked and cached; a rotation with no grace cuts it off.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    for (let i = 0; i < 4; i++) expect((await request(scimUsers, 'GET', bearer)).status).toBe(200);
    const rotated = await request(`${url}/v1/connections/${connectionId}/scim_tokens`, 'POST', admin, {
      previous_token_grace_seconds: 0,
    });
    expect(rotated.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, i * 250));
        return (await request(scimUsers, 'GET', bearer)).status;
      }),
    );
    expect(after).toEqual([401, 401, 401, 401, 401, 401]);
  });

  it('limits a /v1 API key across both processes, leaving other keys their own budget', async () => {
    const admin = { authorization: `Bearer ${secretKey}` };
    const created = await request(`${url}/v1/api_keys`, 'POST', admin, { name: 'reader', scopes: ['read'] });
    expect(created.status, created.body).toBe(201);
    const reader = { authorization: `Bearer ${JSON.parse(created.body).key}` };
    const before = servingPids(child).size;
    const started = performance.now();
    const replies = await Promise.all(
      Array.from({ length: 100 }, () => request(`${url}/v1/organizations?limit=1`, 'GET', reader)),
    );
    const seconds = (performance.now() - started) / 1000;
    const allowed = replies.filter((r) => r.status === 200).length;
    const limited = replies.filter((r) => r.status === 429);
    expect(allowed + limited.length).toBe(100);
    expect(allowed).toBeGreaterThanOrEqual(20);
    // Each process with a bucket of its own would let through up to twice this.
    expect(allowed).toBeLessThanOrEqual(20 + Math.ceil(20 * seconds) + 1);
    for (const reply of limited) {
      expect(reply.headers['retry-after']).toBe('1');
      expect(JSON.parse(reply.body).error).toMatchObject({ code: 'rate_limited' });
    }
    expect(before).toBeGreaterThanOrEqual(2);
    // The root key is another key: its budget is untouched.
    expect((await request(`${url}/v1/organizations?limit=1`, 'GET', admin)).status).toBe(200);
  });

  it('replaces a process killed with SIGKILL, the replacement taking no request before it is ready, and stops all of them on SIGTERM', async () => {
    const pids = listening(child);
    process.kill(pids[0]!, 'SIGKILL');
    await waitFor(() =>
      child.stdout.includes('a server process exited unexpectedly; starting another') ? true : undefined,
    );
    // Until the replacement has started (and a little after), requests on connections of their
    // own, which the cluster hands to its listening processes in turn: a replacement that bound
    // the socket while starting would answer some of them 503 "Roster is starting.".
    const statuses: number[] = [];
    let started = false;
    const probe = (async () => {
      for (let after = 0; after < 50; after += started ? 1 : 0) {
        statuses.push((await request(`${url}/healthz`, 'GET', {})).status);
        started ||= listening(child).length >= 3;
      }
    })();
    await waitFor(() => (listening(child).length >= 3 ? true : undefined));
    await probe;
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(statuses.length).toBeGreaterThan(50);
    const workers = listening(child).slice(1);
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  });
});

/** Two servers, as two processes would be, on one database (each with its own caches). */
async function startPair(env: Record<string, string> = {}): Promise<[TestServer, TestServer]> {
  const first = await startTestServer({ env });
  const url = first.databaseUrl!;
  const directServer = process.env.DATABASE_DIRECT_URL;
  // The second opens the same database, as its configuration would have it.
  const second = await startTestServer({
    env,
    database: {
      database: await openDatabase({
        url,
        poolSize: 5,
        pooler: directServer ? 'transaction' : 'none',
        directUrl: directServer ? sameDatabase(url, directServer) : undefined,
      }),
      url,
      env: {},
      drop: async () => {},
    },
  });
  return [first, second];
}

describe.runIf(POSTGRES)('two server processes on one database', () => {
  let first: TestServer;
  let second: TestServer;
  let limitedFirst: TestServer;
  let limitedSecond: TestServer;
  let apiFirst: TestServer;
  let apiSecond: TestServer;
  beforeAll(async () => {
    [first, second] = await startPair();
    [limitedFirst, limitedSecond] = await startPair({ ROSTER_SCIM_RATE_LIMIT: '1' });
    [apiFirst, apiSecond] = await startPair({ ROSTER_API_RATE_LIMIT: '1' });
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
    await limitedSecond?.close();
    await limitedFirst?.close();
    await apiSecond?.close();
    await apiFirst?.close();
  });

  it('share one rate-limit budget per SCIM connection', async () => {
    const connection = await createConnection(limitedFirst, 'okta');
    const get = (server: TestServer) =>
      fetch(`${server.url}${connection.base}/Users?count=1`, {
        headers: { authorization: `Bearer ${connection.token}` },
      });
    // ROSTER_SCIM_RATE_LIMIT=1: the first process spends the connection's budget for this second...
    const statuses: number[] = [];
    for (let i = 0; i < 5 && !statuses.includes(429); i++) statuses.push((await get(limitedFirst)).status);
    expect(statuses).toContain(200);
    expect(statuses.at(-1)).toBe(429);
    // ...and the second process refuses too, where a bucket of its own would still be full.
    const onSecond = await get(limitedSecond);
    expect(onSecond.status).toBe(429);
    expect(onSecond.headers.get('retry-after')).toBe('1');
  });

  it('share one /v1 rate-limit budget per API key', async () => {
    // ROSTER_API_RATE_LIMIT=1 on both: the root key spends its budget on the first...
    const statuses: number[] = [];
    for (let i = 0; i < 5 && !statuses.includes(429); i++) {
      statuses.push((await apiFirst.api('GET', '/v1/organizations?limit=1')).status);
    }
    expect(statuses).toContain(200);
    expect(statuses.at(-1)).toBe(429);
    // ...and the second refuses it too, in the /v1 error shape, without doing the work.
    const onSecond = await apiSecond.api('POST', '/v1/organizations', { body: { name: 'Over the limit' } });
    expect(onSecond.status).toBe(429);
    expect(onSecond.headers.get('retry-after')).toBe('1');
    expect(onSecond.body.error).toMatchObject({ code: 'rate_limited', request_id: expect.any(String) });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const list = await apiSecond.api('GET', '/v1/organizations?limit=100');
    expect(list.status).toBe(200);
    expect(list.body.data.map((o: { name: string }) => o.name)).not.toContain('Over the limit');
  });

  it('continue a SCIM page walk after the previous page, whichever process served it', async () => {
    const connection = await createConnection(first, 'okta');
    const ids: string[] = [];
    for (let i = 1; i <= 6; i++) {
      const created = await connection.scim('POST', '/Users', { body: userBody(`walker${i}@example.com`) });
      expect(created.status).toBe(201);
      ids.push(created.body.id);
    }
    const page1 = await connection.scim('GET', '/Users?startIndex=1&count=2');
    expect(page1.body.Resources.map((u: { id: string }) => u.id)).toEqual(ids.slice(0, 2));
    // The IdP removes a user it has already seen; the next page lands on the other process.
    expect((await connection.scim('DELETE', `/Users/${ids[0]}`)).status).toBe(204);
    const onSecond = await fetch(`${second.url}${connection.base}/Users?startIndex=3&count=2`, {
      headers: { authorization: `Bearer ${connection.token}` },
    });
    const page2 = (await onSecond.json()) as { Resources: { id: string }[] };
    // With OFFSET (no cursor shared between the processes) the walk would skip the third user.
    expect(page2.Resources.map((u) => u.id)).toEqual(ids.slice(2, 4));
  });
});

/** The database that `pooledUrl` names, on the server that `directServerUrl` names. */
function sameDatabase(pooledUrl: string, directServerUrl: string): string {
  const url = new URL(directServerUrl);
  url.pathname = new URL(pooledUrl).pathname;
  return url.toString();
}
