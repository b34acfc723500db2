import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import {
  createConnection,
  expectScimError,
  OKTA_HEADERS,
  oktaCreateBody,
  patchOp,
  type TestConnection,
} from './scim-helpers.js';

/**
 * Okta as it really talks (docs/idp-behaviour.md#okta): the OIN client (PATCH for active and groups,
 * PUT for profiles), the AIW client (PUT for everything), and the Runscope SPEC test OIN review runs.
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

async function state(conn: TestConnection, userId: string) {
  const user = await conn.scim('GET', `/Users/${userId}`);
  const membership = await server.ctx.db
    .selectFrom('memberships')
    .select(['status', 'role_key'])
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return { user: user.body, status: user.status, membership };
}

describe('an Okta day (OIN client)', () => {
  it('test credentials, lookup, create, profile PUT, deactivate, reactivate, group push', async () => {
    const conn = await createConnection(server, 'okta');
    const okta = (method: string, path: string, body?: unknown) =>
      conn.scim(method, path, { body, headers: OKTA_HEADERS });

    // Save / test credentials: two constant requests.
    const probeUsers = await okta('GET', '/Users?startIndex=1&count=2');
    expect(probeUsers.status).toBe(200);
    expect(probeUsers.body).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
      totalResults: 0,
      startIndex: 1,
      itemsPerPage: 0,
      Resources: [],
    });
    expect((await okta('GET', '/Groups?startIndex=1&count=100')).status).toBe(200);

    // Assignment: lookup (URL-encoded as Okta sends it), then create.
    const lookup = await okta(
      'GET',
      '/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100',
    );
    expect(lookup.status).toBe(200);
    expect(lookup.body.totalResults).toBe(0);
    expect(lookup.body.Resources).toEqual([]);

    const created = await okta(
      'POST',
      '/Users',
      oktaCreateBody('test.user@okta.local', '00ujl29u0le5T6Aj10h7'),
    );
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toBe('application/scim+json; charset=utf-8');
    expect(created.headers.get('location')).toBe(created.body.meta.location);
    expect(created.body).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id: expect.stringMatching(/^user_/),
      userName: 'test.user@okta.local',
      name: { givenName: 'Test', familyName: 'User' },
      emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
      displayName: 'Test User',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      active: true,
      meta: { resourceType: 'User', version: 'W/"1"' },
    });
    expect(created.body.password).toBeUndefined();
    const userId: string = created.body.id;
    expect((await state(conn, userId)).membership).toEqual({ status: 'active', role_key: 'member' });

    // Duplicate: 409 with a SCIM error stops the job.
    const duplicate = await okta('POST', '/Users', oktaCreateBody('test.user@okta.local', 'other'));
    expectScimError(duplicate, 409, 'uniqueness');

    // Profile update: GET, then PUT the whole object back with changes (incl. id, groups, meta).
    const got = await okta('GET', `/Users/${userId}`);
    const put = await okta('PUT', `/Users/${userId}`, {
      ...got.body,
      name: { givenName: 'Another', middleName: 'Excited', familyName: 'User' },
      emails: [
        { primary: true, value: 'test.user@okta.local', type: 'work', display: 'test.user@okta.local' },
      ],
      groups: [],
    });
    expect(put.status).toBe(200);
    expect(put.body.name).toEqual({ givenName: 'Another', middleName: 'Excited', familyName: 'User' });
    expect(put.body.emails[0].display).toBe('test.user@okta.local');
    expect(put.body.id).toBe(userId);
    expect(put.body.meta.version).toBe('W/"2"');

    // Deactivate: no-path PATCH with {active:false}; the profile stays (merge, not substitute).
    const deactivated = await okta(
      'PATCH',
      `/Users/${userId}`,
      patchOp({ op: 'replace', value: { active: false } }),
    );
    expect(deactivated.status).toBe(200);
    expect(deactivated.body.active).toBe(false);
    expect(deactivated.body.name.givenName).toBe('Another');
    expect((await state(conn, userId)).membership?.status).toBe('inactive');

    // Re-hire: the lookup finds the inactive user, so Okta overwrites instead of creating a duplicate.
    const rehire = await okta(
      'GET',
      '/Users?filter=userName%20eq%20%22TEST.USER%40okta.local%22&startIndex=1&count=100',
    );
    expect(rehire.body.totalResults).toBe(1);
    expect(rehire.body.Resources[0]).toMatchObject({ id: userId, active: false });

    const reactivated = await okta(
      'PATCH',
      `/Users/${userId}`,
      patchOp({ op: 'replace', value: { active: true } }),
    );
    expect(reactivated.body.active).toBe(true);
    expect((await state(conn, userId)).membership?.status).toBe('active');

    // Group push: lookup by displayName, create with members:[], rename-style PATCH, deltas, push now.
    const second = await okta('POST', '/Users', oktaCreateBody('second@okta.local', '00u2'));
    const secondId: string = second.body.id;
    const groupLookup = await okta(
      'GET',
      `/Groups?filter=${encodeURIComponent('displayName eq "Test SCIMv2"')}`,
    );
    expect(groupLookup.body.totalResults).toBe(0);
    const group = await okta('POST', '/Groups', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: 'Test SCIMv2',
      members: [],
    });
    expect(group.status).toBe(201);
    expect(group.body).toMatchObject({ displayName: 'Test SCIMv2', members: [] });
    const groupId: string = group.body.id;

    const rename = await okta(
      'PATCH',
      `/Groups/${groupId}`,
      patchOp({ op: 'replace', value: { id: groupId, displayName: 'Test SCIMv2' } }),
    );
    expect(rename.status).toBe(204);

    const delta = await okta(
      'PATCH',
      `/Groups/${groupId}`,
      patchOp(
        { op: 'remove', path: `members[value eq "${secondId}"]` },
        { op: 'add', path: 'members', value: [{ value: userId, display: 'test.user@okta.local' }] },
      ),
    );
    expect(delta.status).toBe(204);
    let members = (await okta('GET', `/Groups/${groupId}`)).body.members.map(
      (m: { value: string }) => m.value,
    );
    expect(members).toEqual([userId]);

    // The rename before every push must not touch membership (langwatch/langwatch#7131).
    await okta(
      'PATCH',
      `/Groups/${groupId}`,
      patchOp({ op: 'replace', value: { id: groupId, displayName: 'Test SCIMv2' } }),
    );
    members = (await okta('GET', `/Groups/${groupId}`)).body.members.map((m: { value: string }) => m.value);
    expect(members).toEqual([userId]);

    const pushNow = await okta(
      'PATCH',
      `/Groups/${groupId}`,
      patchOp({
        op: 'replace',
        path: 'members',
        value: [
          { value: userId, display: 'x' },
          { value: secondId, display: 'y' },
        ],
      }),
    );
    expect(pushNow.status).toBe(204);
    members = (await okta('GET', `/Groups/${groupId}`)).body.members.map((m: { value: string }) => m.value);
    expect(members.sort()).toEqual([userId, secondId].sort());

    await okta('PATCH', `/Groups/${groupId}`, patchOp({ op: 'replace', path: 'members', value: [] }));
    expect((await okta('GET', `/Groups/${groupId}`)).body.members).toEqual([]);

    // The user's groups attribute follows.
    await okta(
      'PATCH',
      `/Groups/${groupId}`,
      patchOp({ op: 'add', path: 'members', value: [{ value: userId }] }),
    );
    expect((await okta('GET', `/Users/${userId}`)).body.groups).toEqual([
      expect.objectContaining({ value: groupId, display: 'Test SCIMv2' }),
    ]);

    expect((await okta('DELETE', `/Groups/${groupId}`)).status).toBe(204);
    expectScimError(await okta('GET', `/Groups/${groupId}`), 404);
    expect((await okta('GET', `/Users/${userId}`)).body.groups).toBeUndefined();
  });
});

describe('Okta AIW client (PUT for everything)', () => {
  it('deactivates with PUT active:false and sets group members with PUT', async () => {
    const conn = await createConnection(server, 'okta');
    const created = await conn.scim('POST', '/Users', { body: oktaCreateBody('aiw@okta.local', '00uaiw') });
    const userId: string = created.body.id;
    const other = await conn.scim('POST', '/Users', { body: oktaCreateBody('aiw2@okta.local', '00uaiw2') });

    const current = await conn.scim('GET', `/Users/${userId}`);
    const deactivated = await conn.scim('PUT', `/Users/${userId}`, {
      body: { ...current.body, active: false },
    });
    expect(deactivated.status).toBe(200);
    expect(deactivated.body.active).toBe(false);
    expect((await state(conn, userId)).membership?.status).toBe('inactive');

    const group = await conn.scim('POST', '/Groups', {
      body: { displayName: 'AIW group', members: [{ value: userId, display: null }] },
    });
    expect(group.status).toBe(201);
    expect(group.body.members.map((m: { value: string }) => m.value)).toEqual([userId]);

    const put = await conn.scim('PUT', `/Groups/${group.body.id}`, {
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        id: group.body.id,
        displayName: 'AIW group renamed',
        members: [{ value: other.body.id, display: null }],
      },
    });
    expect(put.status).toBe(200);
    expect(put.body.displayName).toBe('AIW group renamed');
    expect(put.body.members.map((m: { value: string }) => m.value)).toEqual([other.body.id]);
  });
});

describe('Okta Runscope SPEC test (OIN review)', () => {
  it('passes every step', async () => {
    const conn = await createConnection(server, 'okta');
    const headers = {
      ...OKTA_HEADERS,
      'content-type': 'application/scim+json; charset=utf-8',
      'user-agent': 'OKTA SCIM Integration',
    };
    const req = (
      method: string,
      path: string,
      options: { body?: unknown; token?: string | null; contentType?: string } = {},
    ) =>
      conn.scim(method, path, {
        body: options.body,
        token: options.token,
        headers: options.contentType ? { ...headers, 'content-type': options.contentType } : headers,
      });
    // The suite requires a user to exist.
    await req('POST', '/Users', { body: oktaCreateBody('existing@okta.local', 'e1') });

    // 1
    const one = await req('GET', '/Users?count=1&startIndex=1');
    expect(one.status).toBe(200);
    expect(one.body.schemas).toContain('urn:ietf:params:scim:api:messages:2.0:ListResponse');
    for (const key of ['itemsPerPage', 'startIndex', 'totalResults'])
      expect(typeof one.body[key]).toBe('number');
    const first = one.body.Resources[0];
    expect(first.id).toBeTruthy();
    expect(first.name.familyName).toBeTruthy();
    expect(first.name.givenName).toBeTruthy();
    expect(first.userName).toBeTruthy();
    expect(typeof first.active).toBe('boolean');
    expect(first.emails[0].value).toBeTruthy();
    // 2
    const two = await req('GET', `/Users/${first.id}`);
    expect(two.status).toBe(200);
    expect(two.body.id).toBe(first.id);
    // 3, 5
    for (const name of ['not-an-email', 'random.8d1f@example.com']) {
      const r = await req('GET', `/Users?filter=${encodeURIComponent(`userName eq "${name}"`)}`);
      expect(r.status).toBe(200);
      expect(r.body.totalResults).toBe(0);
    }
    // 4, 12
    for (const id of ['010101001010101011001010101011', '00919288221112222']) {
      const r = await req('GET', `/Users/${id}`);
      expectScimError(r, 404);
      expect(r.body.detail).not.toBe('');
    }
    // 6, 7 (Content-Type: application/json)
    const body = {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'Runscope.User@example.com',
      name: { givenName: 'Run', familyName: 'Scope' },
      emails: [{ primary: true, value: 'runscope.user@example.com', type: 'work' }],
      displayName: 'Run Scope',
      active: true,
    };
    const six = await req('POST', '/Users', { body, contentType: 'application/json' });
    expect(six.status).toBe(201);
    expect(six.body).toMatchObject({ active: true, userName: body.userName, name: body.name });
    expect(six.body.schemas).toContain('urn:ietf:params:scim:schemas:core:2.0:User');
    const seven = await req('GET', `/Users/${six.body.id}`);
    expect(seven.body).toMatchObject({ userName: body.userName, name: body.name });
    // 8
    expect((await req('POST', '/Users', { body, contentType: 'application/json' })).status).toBe(409);
    // 9: upper-cased lookup finds it (case-insensitive userName)
    const nine = await req(
      'GET',
      `/Users?filter=${encodeURIComponent(`userName eq "${body.userName.toUpperCase()}"`)}`,
    );
    expect(nine.status).toBe(200);
    expect(nine.body.totalResults).toBe(1);
    // 10
    expect((await req('GET', '/Groups')).status).toBe(200);
    // 11
    const eleven = await req('GET', `/Users?filter=${encodeURIComponent(`userName eq "${body.userName}"`)}`, {
      token: null,
    });
    expectScimError(eleven, 401);
    const badToken = await conn.scim('GET', '/Users', {
      token: null,
      headers: { authorization: 'non-token' },
    });
    expectScimError(badToken, 401);
  });
});

describe('Okta import (reconciliation)', () => {
  it('pages 250 users with startIndex/count in a stable order, with integer totals', async () => {
    const conn = await createConnection(server, 'okta');
    const names = Array.from({ length: 250 }, (_, i) => `import.${String(i).padStart(3, '0')}@okta.local`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(
        names.slice(i, i + 25).map((n) => conn.scim('POST', '/Users', { body: oktaCreateBody(n, n) })),
      );
    }
    const seen: string[] = [];
    for (const startIndex of [1, 101, 201]) {
      const page = await conn.scim('GET', `/Users?startIndex=${startIndex}&count=100`);
      expect(page.body).toMatchObject({
        totalResults: 250,
        startIndex,
        itemsPerPage: startIndex === 201 ? 50 : 100,
      });
      seen.push(...page.body.Resources.map((r: { id: string }) => r.id));
    }
    expect(new Set(seen).size).toBe(250);
    const again = await conn.scim('GET', '/Users?startIndex=101&count=100');
    expect(again.body.Resources.map((r: { id: string }) => r.id)).toEqual(seen.slice(100, 200));

    // Deleting a row of an earlier page while an import walks the pages skips nobody: the next
    // page continues after the last row served (plain OFFSET would skip one user).
    const first = await conn.scim('GET', '/Users?startIndex=1&count=100');
    await conn.scim('DELETE', `/Users/${first.body.Resources[0].id}`);
    const second = await conn.scim('GET', '/Users?startIndex=101&count=100');
    expect(second.body.Resources[0].id).toBe(seen[100]);
    expect(second.body.totalResults).toBe(249);
  });
});
