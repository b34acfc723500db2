import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseOptions, openDatabase } from '../src/db/database.js';
import { readResponse, startTestServer, type TestResponse, type TestServer } from './harness.js';
import {
  createConnection,
  expectScimError,
  PATCH_OP,
  type TestConnection,
  userBody,
} from './scim-helpers.js';
import { createScratchDatabase, type ScratchDatabase } from './scratch-database.js';

/**
 * Issue 9, finding 4: a stalled or unreachable database answers 503 + Retry-After in each
 * protocol's error format, quickly, and never piles requests up without bound. PostgreSQL (when
 * DATABASE_URL is set) runs through a TCP proxy this test can cut, with a pool of one connection.
 */

const POSTGRES = Boolean(process.env.DATABASE_URL);
const LIMITS: DatabaseOptions = {
  poolSize: 1,
  queueLimit: 3,
  connectTimeoutMs: 1500,
  lockTimeoutMs: 300,
  statementTimeoutMs: 2000,
};

/** A TCP proxy in front of PostgreSQL: `cut()` refuses new connections and drops open ones. */
async function startProxy(target: URL): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    cut: async () => {
      const closed = new Promise((resolve) => proxy.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

let server: TestServer;
let conn: TestConnection;
let scratch: ScratchDatabase | undefined;
let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
beforeAll(async () => {
  let url: string | undefined;
  if (POSTGRES) {
    scratch = await createScratchDatabase(process.env.DATABASE_URL!, 'roster_test');
    // The connection settings are what is tested: straight to PostgreSQL, also in the PgBouncer
    // leg (behind a transaction-mode pooler they belong on the role).
    const direct = scratch.directUrl ?? scratch.url;
    proxy = await startProxy(new URL(direct));
    const proxied = new URL(direct);
    proxied.host = `127.0.0.1:${proxy.port}`;
    url = proxied.toString();
  }
  const database = await openDatabase({ url, ...LIMITS });
  server = await startTestServer({
    database: { database, url, env: {}, drop: async () => {} },
    env: { ROSTER_SCIM_RATE_LIMIT: '100000' },
  });
  conn = await createConnection(server, 'okta');
  expect((await conn.scim('POST', '/Users', { body: userBody('held@x.com') })).status).toBe(201);
});
afterAll(async () => {
  await server?.close();
  await scratch?.drop();
});

/** Holds the pool's only connection (PGlite: the database itself) until the returned release(). */
async function holdConnection(): Promise<() => Promise<void>> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let acquired!: () => void;
  const ready = new Promise<void>((resolve) => {
    acquired = resolve;
  });
  const done = server.database.db.connection().execute(async () => {
    acquired();
    await gate;
  });
  await ready;
  return async () => {
    release();
    await done;
  };
}

function expect503(response: TestResponse, protocol: 'scim' | 'v1'): void {
  if (protocol === 'scim') expectScimError(response, 503);
  else {
    expect(response.status, response.text).toBe(503);
    expect(response.body.error.code).toBe('service_unavailable');
    expect(response.body.error.request_id).toMatch(/./);
  }
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

describe('back-pressure', () => {
  it('a held connection: bounded waits, then 503 + Retry-After in each format; /healthz unaffected', async () => {
    const release = await holdConnection();
    try {
      const started = performance.now();
      const timed = async (request: Promise<TestResponse>) => {
        const response = await request;
        return { response, ms: performance.now() - started };
      };
      const scim = Array.from({ length: 12 }, () => timed(conn.scim('GET', '/Users')));
      const v1 = Array.from({ length: 4 }, () => timed(server.api('GET', '/v1/organizations')));
      const health = await server.fetch('/healthz');
      expect(health.status).toBe(200);
      const answers = await Promise.all([...scim, ...v1]);
      for (const [i, { response, ms }] of answers.entries()) {
        expect503(response, i < scim.length ? 'scim' : 'v1');
        // Answered at once (queue full) or after the connect timeout: never held indefinitely.
        expect(ms).toBeLessThan(5000);
      }
      const ready = await server.fetch('/readyz');
      expect(ready.status).toBe(503);
    } finally {
      await release();
    }
    expect((await conn.scim('GET', '/Users')).status).toBe(200);
    expect((await server.api('GET', '/v1/organizations')).status).toBe(200);
  });

  it('a stalled holder does not keep later requests once it lets go', async () => {
    const release = await holdConnection();
    const waiting = conn.scim('GET', '/Users');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await release(); // within the connect timeout: the waiter gets the connection
    expect((await waiting).status).toBe(200);
  });
});

describe.runIf(POSTGRES)('PostgreSQL timeouts', () => {
  it('sets the configured timeouts on each connection, after connecting', async () => {
    const settings = await sql<{ statement_timeout: string; lock_timeout: string; plan_cache_mode: string }>`
      select current_setting('statement_timeout') as statement_timeout,
             current_setting('lock_timeout') as lock_timeout,
             current_setting('plan_cache_mode') as plan_cache_mode`.execute(server.database.db);
    expect(settings.rows[0]).toEqual({
      statement_timeout: '2s',
      lock_timeout: '300ms',
      plan_cache_mode: 'force_generic_plan',
    });
    const bare = await openDatabase({ url: scratch!.url, sessionSettings: 'none' });
    try {
      const none = await sql<{ s: string }>`select current_setting('statement_timeout') as s`.execute(
        bare.db,
      );
      expect(none.rows[0]!.s).toBe('0'); // left to the role, e.g. behind PgBouncer
    } finally {
      await bare.close();
    }
  });

  it('a row lock held elsewhere: 503 after lock_timeout, not a request stuck behind it', async () => {
    const users = await conn.scim('GET', '/Users?filter=userName eq "held@x.com"');
    const id = users.body.Resources[0].id;
    const locker = new pg.Client({ connectionString: scratch!.url });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('select id from users where id = $1 for update', [id]);
      const started = performance.now();
      const response = await conn.scim('PATCH', `/Users/${id}`, {
        body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'Locked' }] },
      });
      expectScimError(response, 503);
      expect(response.headers.get('retry-after')).toBe('1');
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      await locker.query('rollback');
      await locker.end();
    }
  });

  it('a database that refuses connections: 503 with Retry-After on SCIM and /v1', async () => {
    await proxy!.cut();
    const started = performance.now();
    const scim = await readResponse(
      await server.fetch(`${conn.base}/Users`, { headers: { authorization: `Bearer ${conn.token}` } }),
    );
    expectScimError(scim, 503);
    expect(scim.headers.get('retry-after')).toBe('5');
    expect503(await server.api('GET', '/v1/organizations'), 'v1');
    expect((await server.fetch('/readyz')).status).toBe(503);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
