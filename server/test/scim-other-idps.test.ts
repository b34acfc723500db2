import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, expectScimError, patchOp, userBody } from './scim-helpers.js';

/**
 * JumpCloud, Google Workspace, PingFederate, OneLogin as docs/idp-behaviour.md describes them
 * (#jumpcloud, #google-workspace, #pingfederate-and-pingone, #onelogin).
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('JumpCloud', () => {
  it('test connection creates a user and a group, then deletes both; membership removal by value list', async () => {
    const conn = await createConnection(server, 'jumpcloud');
    const user = await conn.scim('POST', '/Users', { body: userBody('jc-test@example.com') });
    const group = await conn.scim('POST', '/Groups', { body: { displayName: 'JC test group' } });
    expect(user.status).toBe(201);
    expect(group.status).toBe(201);
    expect((await conn.scim('DELETE', `/Users/${user.body.id}`)).status).toBe(204);
    expect((await conn.scim('DELETE', `/Groups/${group.body.id}`)).status).toBe(204);

    const a = await conn.scim('POST', '/Users', { body: userBody('jc-a@example.com') });
    const b = await conn.scim('POST', '/Users', { body: userBody('jc-b@example.com') });
    const g = await conn.scim('POST', '/Groups', {
      body: { displayName: 'Engineering', members: [{ value: a.body.id }, { value: b.body.id }] },
    });
    await conn.scim('PATCH', `/Groups/${g.body.id}`, {
      body: patchOp({ op: 'remove', path: 'members', value: [{ value: a.body.id }] }),
    });
    const members = (await conn.scim('GET', `/Groups/${g.body.id}`)).body.members.map(
      (m: { value: string }) => m.value,
    );
    expect(members).toEqual([b.body.id]);
    // Take-over of an existing same-named group: the lookup by name finds it.
    const found = await conn.scim(
      'GET',
      `/Groups?filter=${encodeURIComponent('displayName eq "engineering"')}`,
    );
    expect(found.body.Resources.map((r: { id: string }) => r.id)).toEqual([g.body.id]);
    // One attribute per op with a path.
    await conn.scim('PATCH', `/Users/${b.body.id}`, {
      body: patchOp({ op: 'replace', path: 'name.givenName', value: 'Bea' }),
    });
    expect((await conn.scim('GET', `/Users/${b.body.id}`)).body.name.givenName).toBe('Bea');
  });
});

describe('Google Workspace', () => {
  it('probes with count=1, then creates, suspends and deletes', async () => {
    const conn = await createConnection(server, 'google');
    const probe = await conn.scim('GET', '/Users?count=1');
    expect(probe.status).toBe(200);
    const user = await conn.scim('POST', '/Users', { body: userBody('g@example.com') });
    const suspended = await conn.scim('PUT', `/Users/${user.body.id}`, {
      body: { ...userBody('g@example.com'), active: false },
    });
    expect(suspended.body.active).toBe(false);
    expect((await conn.scim('DELETE', `/Users/${user.body.id}`)).status).toBe(204);
  });
});

describe('PingFederate', () => {
  it('finds a group by listing all groups, past the first page of 100', async () => {
    const conn = await createConnection(server, 'generic');
    const created: string[] = [];
    for (let i = 0; i < 120; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          conn.scim('POST', '/Groups', {
            body: { displayName: `Ping group ${String(i + j).padStart(3, '0')}` },
          }),
        ),
      );
      created.push(...batch.map((r) => r.body.id));
    }
    const ids: string[] = [];
    for (let startIndex = 1; ; startIndex += 100) {
      const page = await conn.scim('GET', `/Groups?startIndex=${startIndex}&count=100`);
      expect(page.status).toBe(200);
      ids.push(...page.body.Resources.map((r: { id: string }) => r.id));
      if (ids.length >= page.body.totalResults) break;
    }
    expect(ids.sort()).toEqual([...created].sort());
  });
});

describe('rate limiting', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({ env: { ROSTER_SCIM_RATE_LIMIT: '5' } });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('answers 429 with Retry-After and a SCIM error past the per-connection limit, other connections unaffected', async () => {
    const busy = await createConnection(limited, 'okta');
    const quiet = await createConnection(limited, 'okta');
    const responses = await Promise.all(Array.from({ length: 12 }, () => busy.scim('GET', '/Users?count=1')));
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(responses.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    expectScimError(refused[0]!, 429);
    expect(Number(refused[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await quiet.scim('GET', '/Users?count=1')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await busy.scim('GET', '/Users?count=1')).status).toBe(200);
  });
});
