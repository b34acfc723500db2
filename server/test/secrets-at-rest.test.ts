import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, userBody } from './scim-helpers.js';

/**
 * No secret is stored in the clear (issue 9, finding 2): secrets returned once (SCIM tokens,
 * session and refresh tokens, webhook secrets, API keys) are created with Idempotency-Key headers,
 * whose replays are kept for 24 hours, and then every row of every table is searched for them: the
 * output of `pg_dump --data-only` on PostgreSQL, each table read back through SQL on PGlite.
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { ROSTER_WEBHOOK_ALLOW_PRIVATE: 'true' } });
});
afterAll(async () => {
  await server?.close();
});

async function dumpEverything(): Promise<string> {
  if (server.databaseUrl) {
    const { stdout } = await promisify(execFile)('pg_dump', ['--data-only', server.databaseUrl], {
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(stdout).toContain('COPY public.idempotency_keys');
    return stdout;
  }
  const { rows: tables } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE'`.execute(server.database.db);
  expect(tables.map((t) => t.table_name)).toContain('idempotency_keys');
  let dump = '';
  for (const { table_name } of tables) {
    const { rows } = await sql`select * from ${sql.table(table_name)}`.execute(server.database.db);
    dump += `${table_name}\n${JSON.stringify(rows)}\n`;
  }
  return dump;
}

/** POSTs twice with one Idempotency-Key: the second answer must be the replay of the first. */
async function createTwice(path: string, body: unknown, key: string) {
  const headers = { 'idempotency-key': key };
  const first = await server.api('POST', path, { body, headers });
  expect(first.status, first.text).toBe(201);
  const replay = await server.api('POST', path, { body, headers });
  expect(replay.status).toBe(201);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.body).toEqual(first.body);
  return first.body;
}

describe('secrets at rest', () => {
  it('idempotent replays keep returned secrets out of every table, and still replay them', async () => {
    const org = (await server.api('POST', '/v1/organizations', { body: { name: 'Secretive' } })).body.id;
    const connection = await createTwice(
      `/v1/organizations/${org}/connections`,
      { name: 'okta', provider: 'okta' },
      'idem-connection',
    );
    const scimToken: string = connection.scim.token;
    const conn = await createConnection(server, 'okta', org);
    const user = await conn.scim('POST', '/Users', { body: userBody('secret-keeper@example.com') });
    expect(user.status).toBe(201);
    const rotation = await createTwice(
      `/v1/connections/${connection.id}/scim_tokens`,
      { previous_token_grace_seconds: 0 },
      'idem-rotation',
    );
    const session = await createTwice(
      '/v1/sessions',
      { user_id: user.body.id, organization_id: org },
      'idem-session',
    );
    const webhook = await createTwice(
      '/v1/webhook_endpoints',
      { url: 'http://127.0.0.1:9/hook' },
      'idem-webhook',
    );
    const apiKey = await createTwice(
      '/v1/api_keys',
      { name: 'feed', scopes: ['events:read'] },
      'idem-api-key',
    );

    const secrets = {
      scimToken,
      rotatedScimToken: rotation.token as string,
      connectionToken: conn.token,
      sessionToken: session.token as string,
      refreshToken: session.refresh_token as string,
      webhookSecret: webhook.secret as string,
      apiKey: apiKey.key as string,
    };
    const dump = await dumpEverything();
    expect(dump.length).toBeGreaterThan(1000);
    for (const [name, secret] of Object.entries(secrets)) {
      expect(secret.length, name).toBeGreaterThan(20);
      // The random part alone (no prefix), so that no encoding of the whole string hides a match.
      const tail = secret.slice(-24);
      expect(dump.includes(tail), `${name} is stored in the clear`).toBe(false);
    }
  });
});
