import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import { expectFixture } from './scim-fixtures.js';
import {
  createConnection,
  ENTERPRISE,
  entraUser,
  OKTA_HEADERS,
  oktaCreateBody,
  patchOp,
  type TestConnection,
} from './scim-helpers.js';

/**
 * The SCIM responses Okta and Entra parse, compared byte for byte (after normalising ids,
 * timestamps and the origin: see scim-fixtures.ts) with test/__fixtures__/scim/*.json, on PGlite
 * and on PostgreSQL. They record the behaviour of the server as it is, so that restructuring the
 * SCIM layer can prove it changed nothing an IdP sees. After an intended change:
 *   UPDATE_FIXTURES=1 npx vitest run test/scim-golden.test.ts   (then review `git diff`)
 * Request bodies are the IdPs' own (docs/idp-behaviour.md).
 */

const ENTRA_HEADERS = { 'content-type': 'application/scim+json; charset=utf-8' };

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

interface Exchanger {
  conn: TestConnection;
  (
    name: string,
    method: string,
    path: string,
    options?: { body?: unknown; headers?: Record<string, string>; token?: string | null },
  ): ReturnType<TestConnection['scim']>;
}

/** A SCIM client whose every exchange must match the fixture `name`. */
async function golden(provider: string, idpHeaders: Record<string, string>): Promise<Exchanger> {
  const conn = await createConnection(server, provider);
  const send = async (
    name: string,
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; token?: string | null } = {},
  ) => {
    const response = await conn.scim(method, path, {
      body: options.body,
      token: options.token,
      headers: { ...idpHeaders, ...options.headers },
    });
    const request = {
      method,
      path,
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.body !== undefined ? { body: options.body } : {}),
    };
    expectFixture(name, { request, response }, server.url);
    return response;
  };
  return Object.assign(send, { conn });
}

describe('discovery', () => {
  it('ServiceProviderConfig, Schemas and ResourceTypes', async () => {
    const scim = await golden('okta', OKTA_HEADERS);
    expect((await scim('discovery-service-provider-config', 'GET', '/ServiceProviderConfig')).status).toBe(
      200,
    );
    expect((await scim('discovery-schemas', 'GET', '/Schemas')).status).toBe(200);
    expect((await scim('discovery-resource-types', 'GET', '/ResourceTypes')).status).toBe(200);
    expect(
      (await scim('discovery-schema-user', 'GET', '/Schemas/urn:ietf:params:scim:schemas:core:2.0:User'))
        .status,
    ).toBe(200);
    expect((await scim('discovery-resource-type-group', 'GET', '/ResourceTypes/Group')).status).toBe(200);
  });
});

describe('Okta (OIN client)', () => {
  let okta: Exchanger;
  let userId: string;
  let secondId: string;
  let groupId: string;

  beforeAll(async () => {
    okta = await golden('okta', OKTA_HEADERS);
  });

  it('users: probe, lookup, create, duplicate, get, PUT, deactivate, list', async () => {
    await okta('okta-users-probe', 'GET', '/Users?startIndex=1&count=2');
    await okta(
      'okta-users-lookup-empty',
      'GET',
      '/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100',
    );
    const created = await okta('okta-user-create', 'POST', '/Users', {
      body: oktaCreateBody('test.user@okta.local', '00ujl29u0le5T6Aj10h7'),
    });
    expect(created.status).toBe(201);
    userId = created.body.id;
    await okta('okta-user-create-duplicate', 'POST', '/Users', {
      body: oktaCreateBody('test.user@okta.local', 'other'),
    });
    const got = await okta('okta-user-get', 'GET', `/Users/${userId}`);
    await okta('okta-user-put', 'PUT', `/Users/${userId}`, {
      body: {
        ...got.body,
        name: { givenName: 'Another', middleName: 'Excited', familyName: 'User' },
        emails: [
          { primary: true, value: 'test.user@okta.local', type: 'work', display: 'test.user@okta.local' },
        ],
        groups: [],
      },
    });
    await okta('okta-user-deactivate', 'PATCH', `/Users/${userId}`, {
      body: patchOp({ op: 'replace', value: { active: false } }),
    });
    await okta(
      'okta-users-lookup-inactive',
      'GET',
      '/Users?filter=userName%20eq%20%22TEST.USER%40okta.local%22&startIndex=1&count=100',
    );
    await okta('okta-user-reactivate', 'PATCH', `/Users/${userId}`, {
      body: patchOp({ op: 'replace', value: { active: true } }),
    });
    const second = await okta('okta-user-create-second', 'POST', '/Users', {
      body: oktaCreateBody('second@okta.local', '00u2'),
    });
    secondId = second.body.id;
    await okta('okta-users-import-page', 'GET', '/Users?startIndex=1&count=100');
    await okta('okta-users-page-two', 'GET', '/Users?startIndex=2&count=1');
  });

  it('groups: lookup, create, rename, member deltas, push now, list, delete', async () => {
    await okta(
      'okta-groups-lookup-empty',
      'GET',
      `/Groups?filter=${encodeURIComponent('displayName eq "Test SCIMv2"')}`,
    );
    const group = await okta('okta-group-create', 'POST', '/Groups', {
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        displayName: 'Test SCIMv2',
        members: [],
      },
    });
    groupId = group.body.id;
    await okta('okta-group-rename', 'PATCH', `/Groups/${groupId}`, {
      body: patchOp({ op: 'replace', value: { id: groupId, displayName: 'Test SCIMv2' } }),
    });
    await okta('okta-group-member-delta', 'PATCH', `/Groups/${groupId}`, {
      body: patchOp(
        { op: 'remove', path: `members[value eq "${secondId}"]` },
        { op: 'add', path: 'members', value: [{ value: userId, display: 'test.user@okta.local' }] },
      ),
    });
    await okta('okta-group-push-now', 'PATCH', `/Groups/${groupId}`, {
      body: patchOp({
        op: 'replace',
        path: 'members',
        value: [
          { value: userId, display: 'x' },
          { value: secondId, display: 'y' },
        ],
      }),
    });
    await okta('okta-group-get', 'GET', `/Groups/${groupId}`);
    await okta('okta-user-get-with-groups', 'GET', `/Users/${userId}`);
    await okta(
      'okta-groups-lookup',
      'GET',
      `/Groups?filter=${encodeURIComponent('displayName eq "test scimv2"')}`,
    );
    await okta('okta-groups-import-page', 'GET', '/Groups?startIndex=1&count=100');
    await okta('okta-group-members-emptied', 'PATCH', `/Groups/${groupId}`, {
      body: patchOp({ op: 'replace', path: 'members', value: [] }),
    });
    await okta('okta-group-delete', 'DELETE', `/Groups/${groupId}`);
    await okta('okta-group-get-deleted', 'GET', `/Groups/${groupId}`);
  });
});

describe('Entra ID (default, and with aadOptscim062020)', () => {
  let entra: Exchanger;
  let userId: string;
  let otherId: string;
  let groupId: string;

  beforeAll(async () => {
    entra = await golden('entra', ENTRA_HEADERS);
  });

  it('users: test connection, create, Title-Case PATCH, manager, "False", lookups, delete', async () => {
    await entra(
      'entra-users-probe',
      'GET',
      '/Users?filter=userName+eq+%22cf4d78e8-cc4f-4d5d-b8b9-183561c0104a%22',
    );
    await entra(
      'entra-groups-probe',
      'GET',
      '/Groups?excludedAttributes=members&filter=displayName+eq+%22a0b1c2%22',
    );
    const created = await entra('entra-user-create', 'POST', '/Users', {
      body: entraUser(
        'Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee',
        '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      ),
    });
    userId = created.body.id;
    await entra('entra-user-update-title-case', 'PATCH', `/Users/${userId}`, {
      body: patchOp(
        { op: 'Replace', path: 'displayName', value: 'Test 01' },
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'test01@example.com' },
        { op: 'Replace', path: 'userName', value: 'test01@example.com' },
        { op: 'Replace', path: 'name.familyName', value: 'Tesst 01' },
        { op: 'Replace', path: 'name.formatted', value: 'Test 01' },
      ),
    });
    const other = await entra('entra-user-create-without-mail', 'POST', '/Users', {
      body: { userName: 'nomail@contoso.com', externalId: 'nm', active: true },
    });
    otherId = other.body.id;
    await entra('entra-user-add-email-on-absent', 'PATCH', `/Users/${otherId}`, {
      body: patchOp({ op: 'Add', path: 'emails[type eq "work"].value', value: 'something@outlook.com' }),
    });
    await entra('entra-user-manager', 'PATCH', `/Users/${userId}`, {
      body: patchOp({ op: 'add', path: `${ENTERPRISE}:manager`, value: otherId }),
    });
    await entra('entra-user-disable-string-false', 'PATCH', `/Users/${userId}`, {
      body: patchOp({ op: 'Replace', path: 'active', value: 'False' }),
    });
    await entra('entra-user-get-inactive', 'GET', `/Users/${userId}`);
    await entra(
      'entra-users-lookup-by-work-email',
      'GET',
      `/Users?filter=${encodeURIComponent('emails[type eq "work"].value eq "SOMETHING@outlook.com"')}`,
    );
    await entra(
      'entra-users-lookup-by-external-id',
      'GET',
      '/Users?filter=externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22',
    );
    await entra('entra-user-flag-mixed-replace', 'PATCH', `/Users/${otherId}?aadOptscim062020`, {
      body: patchOp(
        { op: 'replace', path: 'emails[type eq "work"].value', value: 'TestMhvaes@test.microsoft.com' },
        {
          op: 'replace',
          value: {
            displayName: 'Bjfe',
            'name.givenName': 'Kkom',
            'name.familyName': 'Unua',
            [`${ENTERPRISE}:employeeNumber`]: 'Aklq',
          },
        },
      ),
    });
  });

  it('groups: create with the ADSCIM schema, lean reads, Add/Remove members, rename, delete', async () => {
    const group = await entra('entra-group-create', 'POST', '/Groups', {
      body: {
        schemas: [
          'urn:ietf:params:scim:schemas:core:2.0:Group',
          'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
        ],
        externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
        displayName: 'displayName',
        meta: { resourceType: 'Group' },
      },
    });
    groupId = group.body.id;
    await entra('entra-group-add-members', 'PATCH', `/Groups/${groupId}`, {
      body: patchOp({
        op: 'Add',
        path: 'members',
        value: [
          { $ref: null, value: userId },
          { $ref: null, value: otherId },
        ],
      }),
    });
    await entra('entra-group-remove-member-by-value', 'PATCH', `/Groups/${groupId}`, {
      body: patchOp({ op: 'Remove', path: 'members', value: [{ $ref: null, value: userId }] }),
    });
    await entra(
      'entra-group-remove-member-by-filter',
      'PATCH',
      `/Groups/${groupId}?excludedAttributes=members`,
      {
        body: patchOp({ op: 'remove', path: `members[value eq "${otherId}"]` }),
      },
    );
    await entra('entra-group-rename', 'PATCH', `/Groups/${groupId}`, {
      body: patchOp({ op: 'Replace', path: 'displayName', value: '1879db59updatedDisplayName' }),
    });
    await entra('entra-group-get-lean', 'GET', `/Groups/${groupId}?excludedAttributes=members`);
    await entra(
      'entra-groups-lookup-lean',
      'GET',
      `/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "1879db59updatedDisplayName"')}`,
    );
    await entra('entra-group-delete', 'DELETE', `/Groups/${groupId}`);
    await entra('entra-user-delete', 'DELETE', `/Users/${userId}`);
    await entra('entra-user-get-deleted', 'GET', `/Users/${userId}`);
  });
});

describe('errors', () => {
  it('each in the SCIM Error schema', async () => {
    const scim = await golden('generic', {});
    const user = await scim('errors-setup-user', 'POST', '/Users', {
      body: { userName: 'errors@example.com', name: { givenName: 'E' } },
    });
    await scim('error-no-token', 'GET', '/Users', { token: null });
    await scim('error-wrong-token', 'GET', '/Users', { token: 'rst_scim_not-a-real-token' });
    await scim('error-unknown-user', 'GET', '/Users/user_00000000000000000000000000');
    await scim('error-malformed-id', 'GET', '/Users/not-an-id');
    await scim('error-invalid-filter', 'GET', `/Users?filter=${encodeURIComponent('userName xx "a"')}`);
    await scim('error-invalid-json', 'POST', '/Users', { body: '{"userName": ' });
    await scim('error-missing-username', 'POST', '/Users', { body: { name: { givenName: 'x' } } });
    await scim('error-uniqueness', 'POST', '/Users', { body: { userName: 'ERRORS@example.com' } });
    await scim('error-patch-invalid-path', 'PATCH', `/Users/${user.body.id}`, {
      body: patchOp({ op: 'replace', path: 'name[[', value: 'x' }),
    });
    await scim('patch-remove-absent-value-is-no-error', 'PATCH', `/Users/${user.body.id}`, {
      body: patchOp({ op: 'remove', path: 'emails[type eq "home"]' }),
    });
    await scim('error-patch-bad-op', 'PATCH', `/Users/${user.body.id}`, {
      body: patchOp({ op: 'move', path: 'userName', value: 'x' }),
    });
    await scim('error-patch-missing-schema', 'PATCH', `/Users/${user.body.id}`, {
      body: { Operations: [{ op: 'replace', path: 'userName', value: 'x' }] },
    });
    await scim('error-if-match-stale', 'PUT', `/Users/${user.body.id}`, {
      headers: { 'if-match': 'W/"99"' },
      body: { userName: 'errors@example.com' },
    });
    await scim('error-unknown-endpoint', 'GET', '/Nothing');
    await scim('error-method-not-allowed', 'DELETE', '/Users');
    await scim('create-with-text-plain-content-type', 'POST', '/Users', {
      headers: { 'content-type': 'text/plain' },
      body: '{"userName":"plain@example.com"}',
    });
    await scim('error-bulk-not-supported', 'POST', '/Bulk', { body: { schemas: [] } });
  });

  it('429 with Retry-After once the connection is over its rate', async () => {
    const limited = await startTestServer({ env: { ROSTER_SCIM_RATE_LIMIT: '1' } });
    try {
      const conn = await createConnection(limited, 'okta');
      const path = '/Users';
      // A burst, so that the bucket is empty even if this busy machine pauses between requests.
      const burst = await Promise.all([1, 2, 3, 4, 5].map(() => conn.scim('GET', path)));
      const response = burst.find((r) => r.status === 429);
      expect(response?.status).toBe(429);
      if (!response) return;
      expectFixture('error-rate-limited', { request: { method: 'GET', path }, response }, limited.url);
    } finally {
      await limited.close();
    }
  });
});
