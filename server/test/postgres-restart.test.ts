import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/database.js';
import { startTestServer, type TestServer } from './harness.js';
import { PrivateCluster } from './private-cluster.js';
import { createConnection, type TestConnection, userBody } from './scim-helpers.js';

/**
 * PostgreSQL restarted under load: while it is down requests get 503 + Retry-After, the server
 * recovers by itself, and every acknowledged write is there afterwards. The restart happens on a
 * private cluster (initdb into a temporary directory, on a port of its own), never on the
 * PostgreSQL that DATABASE_URL names, which other test runs share. It runs in the PostgreSQL leg
 * and needs the PostgreSQL server binaries (PG_BIN, default /usr/lib/postgresql/15/bin): without
 * them it fails, it does not skip.
 */

const POSTGRES = Boolean(process.env.DATABASE_URL);
const WRITERS = 8;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.runIf(POSTGRES && !process.env.DATABASE_DIRECT_URL)('PostgreSQL restarted under load', () => {
  let cluster: PrivateCluster;
  let server: TestServer;
  let connection: TestConnection;
  beforeAll(async () => {
    cluster = await PrivateCluster.create();
    const database = await openDatabase({ url: cluster.url, poolSize: 10, connectTimeoutMs: 1000 });
    server = await startTestServer({
      database: { database, url: cluster.url, env: {}, drop: async () => {} },
      env: { ROSTER_SCIM_RATE_LIMIT: '100000' },
    });
    connection = await createConnection(server, 'okta');
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    cluster?.destroy();
  });

  it('answers 503 + Retry-After while it is down, recovers by itself, and loses nothing acknowledged', async () => {
    const acknowledged: string[] = [];
    const unexpected: string[] = [];
    const unavailable: { retryAfter: string | null; body: { schemas?: string[] } }[] = [];
    let stop = false;
    let attempt = 0;
    const writer = async () => {
      while (!stop) {
        // A fresh userName per attempt: a write whose answer was lost may or may not have
        // committed, and only acknowledged ones are promised.
        const userName = `restart${attempt++}@example.com`;
        const response = await connection
          .scim('POST', '/Users', { body: userBody(userName) })
          .catch((error: Error) => {
            unexpected.push(`fetch failed: ${error.message}`);
            return undefined;
          });
        if (response?.status === 201) acknowledged.push(response.body.id);
        else if (response?.status === 503) {
          unavailable.push({ retryAfter: response.headers.get('retry-after'), body: response.body });
          await sleep(100);
        } else if (response) unexpected.push(`${response.status} ${response.text.slice(0, 200)}`);
      }
    };
    const writers = Array.from({ length: WRITERS }, writer);

    // Under load first: every writer has had writes acknowledged.
    const loaded = Date.now() + 30_000;
    while (acknowledged.length < 2 * WRITERS && Date.now() < loaded) await sleep(50);
    const before = acknowledged.length;
    cluster.stop();
    const downSince = unavailable.length;
    const deadline = Date.now() + 15_000;
    while (unavailable.length === downSince && Date.now() < deadline) await sleep(50);
    const readyWhileDown = await server.api('GET', '/readyz', { key: null });
    const apiWhileDown = await server.api('GET', '/v1/organizations');
    await sleep(1000);
    cluster.start();
    const acknowledgedAtRestart = acknowledged.length;
    const recovered = Date.now() + 30_000;
    while (acknowledged.length === acknowledgedAtRestart && Date.now() < recovered) await sleep(50);
    await sleep(500);
    stop = true;
    await Promise.all(writers);

    expect(unexpected).toEqual([]);
    expect(before).toBeGreaterThan(0);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const reply of unavailable) {
      expect(Number(reply.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(reply.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    }
    expect(readyWhileDown.status).toBe(503);
    expect(apiWhileDown.status).toBe(503);
    expect(apiWhileDown.body.error.code).toBe('service_unavailable');
    expect(Number(apiWhileDown.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Recovered without a restart of the server: writes are acknowledged again.
    expect(acknowledged.length).toBeGreaterThan(acknowledgedAtRestart);
    expect((await server.api('GET', '/readyz', { key: null })).status).toBe(200);
    // Every acknowledged write is in the database.
    const stored = new Set(
      (await server.ctx.db.selectFrom('users').select('id').where('id', 'in', acknowledged).execute()).map(
        (row) => row.id,
      ),
    );
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
  }, 120_000);
});
