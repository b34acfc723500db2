import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { type Database, openDatabase } from '../src/db/database.js';
import { createLogger } from '../src/log.js';
import { type RunningServer, type StartOptions, startServer } from '../src/server.js';
import { recorded } from './contract.js';
import { createScratchDatabase } from './scratch-database.js';

/**
 * Test harness: the real server (startServer, the same composition as `npm start`) on a random
 * port, against a database of its own: an in-memory PGlite by default, or a freshly created
 * PostgreSQL database when DATABASE_URL is set (dropped again by close()).
 */

export interface TestDatabase {
  database: Database;
  /** postgres:// URL of the fresh database, when running against PostgreSQL. */
  url: string | undefined;
  /** The variables a server process needs to use this database (none for PGlite). */
  env: Record<string, string>;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const database = await openDatabase({});
    return { database, url: undefined, env: {}, drop: async () => {} };
  }
  const scratch = await createScratchDatabase(adminUrl, 'roster_test');
  const database = await openDatabase({
    url: scratch.url,
    poolSize: 20,
    // Behind scripts/with-pgbouncer.sh, as the server's config would read DATABASE_DIRECT_URL.
    pooler: scratch.directUrl ? 'transaction' : 'none',
    directUrl: scratch.directUrl,
  });
  return { database, url: scratch.url, env: scratch.env, drop: scratch.drop };
}

/**
 * The same PostgreSQL database opened again, as the harness opens the first (behind PgBouncer too:
 * no named statements there), for a second server on it; dropping it is the first one's job.
 */
export async function secondTestDatabase(shared: TestDatabase): Promise<TestDatabase> {
  const direct = shared.env.DATABASE_DIRECT_URL;
  const database = await openDatabase({
    url: shared.url!,
    poolSize: 20,
    pooler: direct ? 'transaction' : 'none',
    directUrl: direct,
  });
  return { database, url: shared.url, env: shared.env, drop: async () => {} };
}

export interface TestServer extends RunningServer {
  readonly secretKey: string;
  readonly databaseUrl: string | undefined;
  /** JSON request to the server with the management key unless `key` says otherwise. */
  api(method: string, path: string, options?: RequestOptions): Promise<TestResponse>;
  /** Raw fetch against the server. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export interface RequestOptions {
  body?: unknown;
  /** Management key to send; `null` sends no Authorization header. */
  key?: string | null;
  headers?: Record<string, string>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON bodies
  body: any;
  text: string;
}

export async function readResponse(response: Response): Promise<TestResponse> {
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

export interface TestServerOptions {
  env?: Record<string, string>;
  now?: () => Date;
  webhooks?: StartOptions['webhooks'];
  /** How long close() waits for in-flight requests (default 10 s). */
  shutdownTimeoutMs?: number;
  /** Reuse a database (e.g. to restart a server on the same data). */
  database?: TestDatabase;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const testDb = options.database ?? (await createTestDatabase());
  const secretKey = `rst_sk_test_${randomBytes(24).toString('base64url')}`;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    ROSTER_SECRET_KEY: secretKey,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...options.env,
  });
  const log = createLogger(config.logLevel, process.stderr);
  const running = await startServer(config, {
    database: testDb.database,
    log,
    now: options.now,
    webhooks: options.webhooks,
    shutdownTimeoutMs: options.shutdownTimeoutMs,
  });

  const fetchPath = (path: string, init?: RequestInit) => fetch(`${running.url}${path}`, init);
  return {
    ...running,
    secretKey,
    databaseUrl: testDb.url,
    fetch: fetchPath,
    async api(method, path, requestOptions = {}) {
      const headers: Record<string, string> = { ...requestOptions.headers };
      const key = requestOptions.key === undefined ? secretKey : requestOptions.key;
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let body: string | undefined;
      if (requestOptions.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        body =
          typeof requestOptions.body === 'string' ? requestOptions.body : JSON.stringify(requestOptions.body);
      }
      const response = await readResponse(await fetchPath(path, { method, headers, body }));
      if (path.startsWith('/v1/') || path === '/healthz' || path === '/readyz') {
        recorded.push({
          method,
          path,
          status: response.status,
          contentType: response.headers.get('content-type'),
          body: response.body,
        });
      }
      return response;
    },
    async close() {
      await running.close();
      if (!options.database) await testDb.drop();
    },
  };
}
