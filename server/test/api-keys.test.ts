import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, type TestConnection, userBody } from './scim-helpers.js';

/**
 * Scoped API keys (issue 9, finding 6): every /v1 operation of openapi/roster.yaml is tried with a
 * key confined to organization A against organization B's resources (404 as if they did not exist,
 * lists without them, 403 for changes to what all organizations share) and with a read-only key
 * against write operations (403). The table must name every operation of the document, so a new
 * operation cannot be added without deciding how scoped keys see it.
 */

interface Fixture {
  conn: TestConnection;
  org: string;
  user: string;
  group: string;
  membership: string;
  session: string;
  webhook: string;
  apiKey: string;
}

let server: TestServer;
let a: Fixture;
let b: Fixture;
let writeA: string;
let readA: string;

async function fixture(name: string): Promise<Fixture> {
  const org = (await server.api('POST', '/v1/organizations', { body: { name } })).body.id as string;
  const conn = await createConnection(server, 'okta', org);
  const user = await conn.scim('POST', '/Users', { body: userBody(`${name}-user@example.com`) });
  expect(user.status, user.text).toBe(201);
  const group = await conn.scim('POST', '/Groups', {
    body: {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: `${name} group`,
      members: [{ value: user.body.id }],
    },
  });
  expect(group.status, group.text).toBe(201);
  const members = await server.api('GET', `/v1/organizations/${org}/memberships`);
  const session = await server.api('POST', '/v1/sessions', {
    body: { user_id: user.body.id, organization_id: org },
  });
  expect(session.status, session.text).toBe(201);
  const webhook = await server.api('POST', '/v1/webhook_endpoints', {
    body: { url: 'http://127.0.0.1:9/hook', organization_id: org },
  });
  expect(webhook.status, webhook.text).toBe(201);
  const apiKey = await server.api('POST', '/v1/api_keys', {
    body: { name: `${name} feed`, organization_id: org, scopes: ['events:read'] },
  });
  expect(apiKey.status, apiKey.text).toBe(201);
  return {
    conn,
    org,
    user: user.body.id,
    group: group.body.id,
    membership: members.body.data[0].id,
    session: session.body.id,
    webhook: webhook.body.id,
    apiKey: apiKey.body.id,
  };
}

beforeAll(async () => {
  server = await startTestServer({ env: { ROSTER_WEBHOOK_ALLOW_PRIVATE: 'true' } });
  a = await fixture('alpha');
  b = await fixture('bravo');
  const write = await server.api('POST', '/v1/api_keys', {
    body: { name: 'alpha app', organization_id: a.org, scopes: ['write', 'api_keys:write'] },
  });
  expect(write.status, write.text).toBe(201);
  writeA = write.body.key;
  const read = await server.api('POST', '/v1/api_keys', {
    body: { name: 'alpha reader', organization_id: a.org, scopes: ['read'] },
  });
  readA = read.body.key;
});
afterAll(async () => {
  await server?.close();
});

/** What a key confined to A gets for an operation on B's resources. */
type Foreign = 'not_found' | 'forbidden' | 'shared' | { list: (body: unknown) => unknown[] };
interface Case {
  path: (f: Fixture) => string;
  body?: (f: Fixture) => unknown;
  foreign: Foreign;
}

const data = (body: unknown) => (body as { data: unknown[] }).data;
const hidden = 'not_found' as const;
const CASES: Record<string, Case> = {
  'POST /v1/organizations': {
    path: () => '/v1/organizations',
    body: () => ({ name: 'x' }),
    foreign: 'forbidden',
  },
  'GET /v1/organizations': { path: () => '/v1/organizations', foreign: { list: data } },
  'GET /v1/organizations/{organization_id}': { path: (f) => `/v1/organizations/${f.org}`, foreign: hidden },
  'PATCH /v1/organizations/{organization_id}': {
    path: (f) => `/v1/organizations/${f.org}`,
    body: () => ({ name: 'renamed' }),
    foreign: hidden,
  },
  'DELETE /v1/organizations/{organization_id}': {
    path: (f) => `/v1/organizations/${f.org}`,
    foreign: hidden,
  },
  'GET /v1/organizations/{organization_id}/memberships': {
    path: (f) => `/v1/organizations/${f.org}/memberships`,
    foreign: hidden,
  },
  'POST /v1/organizations/{organization_id}/memberships': {
    path: (f) => `/v1/organizations/${f.org}/memberships`,
    body: () => ({ email: 'new-member@example.com' }),
    foreign: hidden,
  },
  'GET /v1/organizations/{organization_id}/memberships/{membership_id}': {
    path: (f) => `/v1/organizations/${f.org}/memberships/${f.membership}`,
    foreign: hidden,
  },
  'PATCH /v1/organizations/{organization_id}/memberships/{membership_id}': {
    path: (f) => `/v1/organizations/${f.org}/memberships/${f.membership}`,
    body: () => ({ role: 'member' }),
    foreign: hidden,
  },
  'DELETE /v1/organizations/{organization_id}/memberships/{membership_id}': {
    path: (f) => `/v1/organizations/${f.org}/memberships/${f.membership}`,
    foreign: hidden,
  },
  'GET /v1/memberships/{membership_id}/explain': {
    path: (f) => `/v1/memberships/${f.membership}/explain`,
    foreign: hidden,
  },
  'GET /v1/roles': { path: () => '/v1/roles', foreign: 'shared' },
  'POST /v1/roles': {
    path: () => '/v1/roles',
    body: () => ({ key: 'auditor', name: 'Auditor' }),
    foreign: 'forbidden',
  },
  'GET /v1/roles/{role_key}': { path: () => '/v1/roles/member', foreign: 'shared' },
  'PATCH /v1/roles/{role_key}': {
    path: () => '/v1/roles/member',
    body: () => ({ name: 'M' }),
    foreign: 'forbidden',
  },
  'DELETE /v1/roles/{role_key}': { path: () => '/v1/roles/member', foreign: 'forbidden' },
  'GET /v1/organizations/{organization_id}/connections': {
    path: (f) => `/v1/organizations/${f.org}/connections`,
    foreign: hidden,
  },
  'POST /v1/organizations/{organization_id}/connections': {
    path: (f) => `/v1/organizations/${f.org}/connections`,
    body: () => ({ name: 'another', provider: 'generic' }),
    foreign: hidden,
  },
  'GET /v1/connections/{connection_id}': {
    path: (f) => `/v1/connections/${f.conn.connectionId}`,
    foreign: hidden,
  },
  'PATCH /v1/connections/{connection_id}': {
    path: (f) => `/v1/connections/${f.conn.connectionId}`,
    body: () => ({ name: 'renamed' }),
    foreign: hidden,
  },
  'DELETE /v1/connections/{connection_id}': {
    path: (f) => `/v1/connections/${f.conn.connectionId}`,
    foreign: hidden,
  },
  'GET /v1/connections/{connection_id}/role_mappings': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/role_mappings`,
    foreign: hidden,
  },
  'PUT /v1/connections/{connection_id}/role_mappings': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/role_mappings`,
    body: () => ({ mappings: [] }),
    foreign: hidden,
  },
  'GET /v1/connections/{connection_id}/attribute_mappings': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/attribute_mappings`,
    foreign: hidden,
  },
  'PUT /v1/connections/{connection_id}/attribute_mappings': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/attribute_mappings`,
    body: () => ({ mappings: [] }),
    foreign: hidden,
  },
  'GET /v1/connections/{connection_id}/sync': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/sync`,
    foreign: hidden,
  },
  'POST /v1/connections/{connection_id}/scim_tokens': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/scim_tokens`,
    body: () => ({}),
    foreign: hidden,
  },
  'POST /v1/organizations/{organization_id}/preview': {
    path: (f) => `/v1/organizations/${f.org}/preview`,
    body: () => ({ default_role: 'member' }),
    foreign: hidden,
  },
  'GET /v1/organizations/{organization_id}/snapshot': {
    path: (f) => `/v1/organizations/${f.org}/snapshot`,
    foreign: hidden,
  },
  'GET /v1/organizations/{organization_id}/diff': {
    path: (f) => `/v1/organizations/${f.org}/diff?from=0`,
    foreign: hidden,
  },
  'POST /v1/organizations/{organization_id}/portal_links': {
    path: (f) => `/v1/organizations/${f.org}/portal_links`,
    body: () => ({ intent: 'directory_sync' }),
    foreign: hidden,
  },
  'POST /v1/connections/{connection_id}/deprovision_guard/release': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/deprovision_guard/release`,
    body: () => ({}),
    foreign: hidden,
  },
  'POST /v1/connections/{connection_id}/role_mappings/preview': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/role_mappings/preview`,
    body: () => ({ mappings: [] }),
    foreign: hidden,
  },
  'POST /v1/connections/{connection_id}/attribute_mappings/preview': {
    path: (f) => `/v1/connections/${f.conn.connectionId}/attribute_mappings/preview`,
    body: () => ({ mappings: [] }),
    foreign: hidden,
  },
  'GET /v1/users': { path: (f) => `/v1/users?organization_id=${f.org}`, foreign: { list: data } },
  'GET /v1/users/{user_id}': { path: (f) => `/v1/users/${f.user}`, foreign: hidden },
  'GET /v1/groups': { path: (f) => `/v1/groups?organization_id=${f.org}`, foreign: { list: data } },
  'GET /v1/groups/{group_id}': { path: (f) => `/v1/groups/${f.group}`, foreign: hidden },
  'GET /v1/groups/{group_id}/members': { path: (f) => `/v1/groups/${f.group}/members`, foreign: hidden },
  'GET /v1/connections': { path: () => '/v1/connections', foreign: { list: data } },
  'GET /v1/events': {
    path: (f) => `/v1/events?organization_id=${f.org}&limit=1000`,
    foreign: { list: data },
  },
  'GET /v1/webhook_endpoints': { path: () => '/v1/webhook_endpoints', foreign: { list: data } },
  'POST /v1/webhook_endpoints': {
    path: () => '/v1/webhook_endpoints',
    body: (f) => ({ url: 'http://127.0.0.1:9/other', organization_id: f.org }),
    foreign: hidden,
  },
  'GET /v1/webhook_endpoints/{webhook_endpoint_id}': {
    path: (f) => `/v1/webhook_endpoints/${f.webhook}`,
    foreign: hidden,
  },
  'PATCH /v1/webhook_endpoints/{webhook_endpoint_id}': {
    path: (f) => `/v1/webhook_endpoints/${f.webhook}`,
    body: () => ({ enabled: false }),
    foreign: hidden,
  },
  'DELETE /v1/webhook_endpoints/{webhook_endpoint_id}': {
    path: (f) => `/v1/webhook_endpoints/${f.webhook}`,
    foreign: hidden,
  },
  'GET /v1/webhook_endpoints/{webhook_endpoint_id}/deliveries': {
    path: (f) => `/v1/webhook_endpoints/${f.webhook}/deliveries`,
    foreign: hidden,
  },
  'POST /v1/sessions': {
    path: () => '/v1/sessions',
    body: (f) => ({ user_id: f.user, organization_id: f.org }),
    foreign: hidden,
  },
  'GET /v1/sessions/{session_id}': { path: (f) => `/v1/sessions/${f.session}`, foreign: hidden },
  'POST /v1/sessions/{session_id}/revoke': {
    path: (f) => `/v1/sessions/${f.session}/revoke`,
    foreign: hidden,
  },
  'GET /v1/users/{user_id}/sessions': { path: (f) => `/v1/users/${f.user}/sessions`, foreign: hidden },
  'POST /v1/users/{user_id}/sessions/revoke_all': {
    path: (f) => `/v1/users/${f.user}/sessions/revoke_all`,
    foreign: hidden,
  },
  'GET /v1/signing_keys': { path: () => '/v1/signing_keys', foreign: 'shared' },
  'POST /v1/signing_keys/rotate': {
    path: () => '/v1/signing_keys/rotate',
    body: () => ({}),
    foreign: 'forbidden',
  },
  'GET /v1/api_keys': { path: () => '/v1/api_keys', foreign: { list: data } },
  'POST /v1/api_keys': {
    path: () => '/v1/api_keys',
    body: (f) => ({ name: 'sneaky', organization_id: f.org, scopes: ['write'] }),
    foreign: hidden,
  },
  'DELETE /v1/api_keys/{api_key_id}': { path: (f) => `/v1/api_keys/${f.apiKey}`, foreign: hidden },
};

/** Every operation of the contract that takes a key (the refresh endpoint takes a refresh token). */
function documentedOperations(): string[] {
  const require = createRequire(import.meta.url);
  const doc = parse(readFileSync(require.resolve('@roster/openapi/roster.yaml'), 'utf8')) as {
    paths: Record<string, Record<string, { security?: unknown[] }>>;
  };
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method, op]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method) && !op.security)
      .filter(() => path.startsWith('/v1/'))
      .map(([method]) => `${method.toUpperCase()} ${path}`),
  );
}

const B_IDS = () => [
  b.org,
  b.user,
  b.group,
  b.membership,
  b.session,
  b.webhook,
  b.apiKey,
  b.conn.connectionId,
];

describe('API keys confined to an organization', () => {
  it('the table covers every operation of openapi/roster.yaml', () => {
    expect(Object.keys(CASES).sort()).toEqual(documentedOperations().sort());
  });

  for (const [operation, test] of Object.entries(CASES)) {
    const method = operation.split(' ')[0]!;
    it(`${operation}: another organization's resources are out of reach`, async () => {
      const response = await server.api(method, test.path(b), {
        key: writeA,
        ...(test.body ? { body: test.body(b) } : {}),
      });
      if (test.foreign === 'not_found') {
        expect(response.status, response.text).toBe(404);
        expect(response.body.error.code).toBe('not_found');
      } else if (test.foreign === 'forbidden') {
        expect(response.status, response.text).toBe(403);
        expect(response.body.error.code).toBe('forbidden');
      } else if (test.foreign === 'shared') {
        expect(response.status, response.text).toBe(200);
      } else {
        expect(response.status, response.text).toBe(200);
        for (const id of B_IDS()) expect(response.text).not.toContain(id);
        // A's own resources are still listed where the list has any (B's filter yields none).
        if (!test.path(b).includes(b.org)) expect(test.foreign.list(response.body).length).toBeGreaterThan(0);
      }
    });

    if (method !== 'GET') {
      it(`${operation}: a read-only key may not change anything`, async () => {
        const response = await server.api(method, test.path(a), {
          key: readA,
          ...(test.body ? { body: test.body(a) } : {}),
        });
        expect(response.status, response.text).toBe(403);
        expect(response.body.error.code).toBe('forbidden');
      });
    }
  }

  it('reaches its own organization, and its feed carries only its events', async () => {
    const own = await server.api('GET', `/v1/organizations/${a.org}`, { key: readA });
    expect(own.status).toBe(200);
    const users = await server.api('GET', '/v1/users', { key: readA });
    expect(users.body.data.map((u: { id: string }) => u.id)).toEqual([a.user]);
    const events = await server.api('GET', '/v1/events?limit=1000', { key: readA });
    expect(events.status).toBe(200);
    expect(events.body.data.length).toBeGreaterThan(0);
    for (const event of events.body.data) expect(event.organization_id).toBe(a.org);
    const session = await server.api('POST', '/v1/sessions', {
      key: writeA,
      body: { user_id: a.user, organization_id: a.org },
    });
    expect(session.status, session.text).toBe(201);
    const renamed = await server.api('PATCH', `/v1/connections/${a.conn.connectionId}`, {
      key: writeA,
      body: { name: 'renamed by its own key' },
    });
    expect(renamed.status, renamed.text).toBe(200);
  });

  it('hands on only what it holds: its organization and its scopes', async () => {
    const unconfined = await server.api('POST', '/v1/api_keys', {
      key: writeA,
      body: { name: 'child', scopes: ['read'] },
    });
    expect(unconfined.status, unconfined.text).toBe(201);
    expect(unconfined.body.organization_id).toBe(a.org);
    const manager = await server.api('POST', '/v1/api_keys', {
      body: { name: 'manager', organization_id: a.org, scopes: ['read', 'api_keys:write'] },
    });
    const wider = await server.api('POST', '/v1/api_keys', {
      key: manager.body.key,
      body: { name: 'child', scopes: ['write'] },
    });
    expect(wider.status).toBe(403);
    expect(wider.body.error.code).toBe('forbidden');
    const byReader = await server.api('POST', '/v1/api_keys', {
      key: readA,
      body: { name: 'child', scopes: ['read'] },
    });
    expect(byReader.status).toBe(403);
    const listed = await server.api('GET', '/v1/api_keys?limit=100', { key: writeA });
    expect(listed.body.data.every((k: { organization_id: string }) => k.organization_id === a.org)).toBe(
      true,
    );
  });
});

describe('API keys', () => {
  it('are shown once, stored as digests, and stop working when revoked', async () => {
    const created = await server.api('POST', '/v1/api_keys', {
      body: { name: 'events', scopes: ['events:read'] },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ object: 'api_key', organization_id: null, scopes: ['events:read'] });
    expect(created.body.key).toMatch(/^rst_ak_[A-Za-z0-9_-]{43}$/);
    expect(created.body.hint).toBe(`rst_ak_…${created.body.key.slice(-4)}`);
    const key: string = created.body.key;

    const { rows } = await server.database.db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', created.body.id)
      .execute()
      .then((r) => ({ rows: r }));
    expect(JSON.stringify(rows)).not.toContain(key.slice(7));

    const listed = await server.api('GET', '/v1/api_keys?limit=100');
    const entry = listed.body.data.find((k: { id: string }) => k.id === created.body.id);
    expect(entry).toBeDefined();
    expect(entry.key).toBeUndefined();

    expect((await server.api('GET', '/v1/events', { key })).status).toBe(200);
    // events:read is the feed only.
    const other = await server.api('GET', '/v1/organizations', { key });
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('forbidden');

    expect((await server.api('DELETE', `/v1/api_keys/${created.body.id}`)).status).toBe(204);
    expect((await server.api('GET', '/v1/events', { key })).status).toBe(401);
    expect((await server.api('DELETE', `/v1/api_keys/${created.body.id}`)).status).toBe(404);
  });

  it('a key whose organization is deleted stops working', async () => {
    const org = (await server.api('POST', '/v1/organizations', { body: { name: 'short-lived' } })).body.id;
    const created = await server.api('POST', '/v1/api_keys', {
      body: { name: 'doomed', organization_id: org, scopes: ['read'] },
    });
    expect((await server.api('GET', `/v1/organizations/${org}`, { key: created.body.key })).status).toBe(200);
    expect((await server.api('DELETE', `/v1/organizations/${org}`)).status).toBe(204);
    expect((await server.api('GET', '/v1/roles', { key: created.body.key })).status).toBe(401);
  });

  it('rejects bad input without creating anything', async () => {
    const before = (await server.api('GET', '/v1/api_keys?limit=100')).body.data.length;
    for (const body of [
      { name: '', scopes: ['read'] },
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['admin'] },
      { name: 'x', scopes: ['read'], extra: true },
      { name: 'x', organization_id: 'nope', scopes: ['read'] },
    ]) {
      const response = await server.api('POST', '/v1/api_keys', { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
    const missingOrg = await server.api('POST', '/v1/api_keys', {
      body: { name: 'x', organization_id: 'org_01jdq3x0v8m4w2c7f9k1n5r6t8', scopes: ['read'] },
    });
    expect(missingOrg.status).toBe(404);
    expect((await server.api('GET', '/v1/api_keys?limit=100')).body.data.length).toBe(before);
  });

  it("an idempotency key of one caller never replays another caller's response", async () => {
    const headers = { 'idempotency-key': 'shared-key-1' };
    const first = await server.api('POST', '/v1/api_keys', {
      headers,
      body: { name: 'idem', organization_id: a.org, scopes: ['read'] },
    });
    expect(first.status).toBe(201);
    const second = await server.api('POST', '/v1/api_keys', {
      key: writeA,
      headers,
      body: { name: 'idem', organization_id: a.org, scopes: ['read'] },
    });
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
    expect(second.body.key).not.toBe(first.body.key);
  });
});
