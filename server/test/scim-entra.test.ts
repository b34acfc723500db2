import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import {
  createConnection,
  ENTERPRISE,
  entraUser,
  expectScimError,
  patchOp,
  type TestConnection,
} from './scim-helpers.js';

/**
 * Microsoft Entra ID's provisioning service, with and without aadOptscim062020
 * (docs/idp-behaviour.md#microsoft-entra-id).
 */

const ENTRA_JSON = 'application/scim+json; charset=utf-8';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

async function sessionsOf(userId: string) {
  return server.ctx.db
    .selectFrom('sessions')
    .select(['revoked_at', 'revoke_reason'])
    .where('user_id', '=', userId)
    .execute();
}

/** Sessions arrive with the sessions API; here one is planted to prove revocation. */
async function plantSession(conn: TestConnection, userId: string) {
  const membership = await server.ctx.db
    .selectFrom('memberships')
    .select('id')
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  await server.ctx.db
    .insertInto('sessions')
    .values({
      id: `sess_${Math.random().toString(36).slice(2).padEnd(26, '0').slice(0, 26)}`,
      organization_id: conn.organizationId,
      user_id: userId,
      membership_id: membership.id,
      expires_at: new Date(Date.now() + 3_600_000),
    })
    .execute();
}

describe('an Entra cycle (default, no flag)', () => {
  // One provisioning cycle in named steps; each step builds on the state the previous ones left.
  let conn: TestConnection;
  let entra: (method: string, path: string, body?: unknown) => ReturnType<TestConnection['scim']>;
  const userName = 'Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee';
  let id: string;
  let noMailId: string;
  let groupId: string;

  beforeAll(async () => {
    conn = await createConnection(server, 'entra');
    entra = (method, path, body) =>
      conn.scim(method, path, { body, headers: { 'content-type': ENTRA_JSON } });
  });

  it('1. test connection: random GUID lookups answer 200 and empty, on /Users and /Groups', async () => {
    const probe = await entra('GET', '/Users?filter=userName+eq+%22cf4d78e8-cc4f-4d5d-b8b9-183561c0104a%22');
    expect(probe.status).toBe(200);
    expect(probe.body).toMatchObject({ totalResults: 0, Resources: [] });
    const groupProbe = await entra(
      'GET',
      '/Groups?excludedAttributes=members&filter=displayName+eq+%22a0b1c2%22',
    );
    expect(groupProbe.status).toBe(200);
    expect(groupProbe.body.Resources).toEqual([]);
  });

  it('2. creates after an empty lookup', async () => {
    expect((await entra('GET', `/Users?filter=userName+eq+%22${userName}%22`)).body.totalResults).toBe(0);
    const created = await entra(
      'POST',
      '/Users',
      entraUser(userName, '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef'),
    );
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: expect.any(String),
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName,
      active: true,
      meta: { resourceType: 'User', created: expect.any(String), lastModified: expect.any(String) },
    });
    id = created.body.id;
  });

  it('3. finds the user by userName in another case, by externalId and by the work email', async () => {
    // userName is caseExact=false.
    const again = await entra('GET', `/Users?filter=userName+eq+%22${userName.toLowerCase()}%22`);
    expect(again.body.totalResults).toBe(1);
    expect(
      (await entra('GET', '/Users?filter=externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22')).body
        .totalResults,
    ).toBe(1);
    const byEmail = await entra(
      'GET',
      `/Users?filter=${encodeURIComponent(`emails[type eq "work"].value eq "${userName}@TESTUSER.com"`)}`,
    );
    expect(byEmail.body.totalResults).toBe(1);
  });

  it('4. applies the five-op Title-Case PATCH (ssoready/ssoready#228); GET shows every change', async () => {
    const update = await entra(
      'PATCH',
      `/Users/${id}`,
      patchOp(
        { op: 'Replace', path: 'displayName', value: 'Test 01' },
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'test01@example.com' },
        { op: 'Replace', path: 'userName', value: 'test01@example.com' },
        { op: 'Replace', path: 'name.familyName', value: 'Tesst 01' },
        { op: 'Replace', path: 'name.formatted', value: 'Test 01' },
      ),
    );
    expect(update.status).toBe(200);
    const afterUpdate = (await entra('GET', `/Users/${id}`)).body;
    expect(afterUpdate).toMatchObject({
      displayName: 'Test 01',
      userName: 'test01@example.com',
      name: { familyName: 'Tesst 01', formatted: 'Test 01', givenName: 'givenName' },
      emails: [{ type: 'work', value: 'test01@example.com', primary: true }],
    });
  });

  it('5. adds the work email to a cloud-only user without mail (add-on-absent)', async () => {
    const noMail = await entra('POST', '/Users', {
      userName: 'nomail@contoso.com',
      externalId: 'nm',
      active: true,
    });
    expect(noMail.status).toBe(201);
    noMailId = noMail.body.id;
    await entra(
      'PATCH',
      `/Users/${noMailId}`,
      patchOp({ op: 'Add', path: 'emails[type eq "work"].value', value: 'something@outlook.com' }),
    );
    expect((await entra('GET', `/Users/${noMailId}`)).body.emails).toEqual([
      { type: 'work', value: 'something@outlook.com' },
    ]);
  });

  it('6. takes the manager as a bare string on the extension path and returns it as {value}', async () => {
    await entra(
      'PATCH',
      `/Users/${id}`,
      patchOp({ op: 'add', path: `${ENTERPRISE}:manager`, value: noMailId }),
    );
    const withManager = (await entra('GET', `/Users/${id}`)).body;
    expect(withManager[ENTERPRISE]).toEqual({ manager: { value: noMailId } });
    expect(withManager.schemas).toContain(ENTERPRISE);
  });

  it('7. disables with the string "False": inactive, still readable and filterable, sessions revoked', async () => {
    await plantSession(conn, id);
    const disabled = await entra(
      'PATCH',
      `/Users/${id}`,
      patchOp({ op: 'Replace', path: 'active', value: 'False' }),
    );
    expect(disabled.status).toBe(200);
    expect((await entra('GET', `/Users/${id}`)).body.active).toBe(false);
    expect((await entra('GET', '/Users?filter=userName+eq+%22test01@example.com%22')).body.totalResults).toBe(
      1,
    );
    expect(await sessionsOf(id)).toEqual([
      { revoked_at: expect.any(Date), revoke_reason: 'user_deactivated' },
    ]);
  });

  it('8. reactivates with "True", then follows the lower-case variants', async () => {
    await entra('PATCH', `/Users/${id}`, patchOp({ op: 'Replace', path: 'active', value: 'True' }));
    expect((await entra('GET', `/Users/${id}`)).body.active).toBe(true);
    await entra('PATCH', `/Users/${id}`, patchOp({ op: 'Replace', path: 'active', value: 'false' }));
    expect((await entra('GET', `/Users/${id}`)).body.active).toBe(false);
    await entra('PATCH', `/Users/${id}`, patchOp({ op: 'Replace', path: 'active', value: 'true' }));
    expect((await entra('GET', `/Users/${id}`)).body.active).toBe(true);
  });

  it('9. creates a group with the ADSCIM schema and no members; reads it without members', async () => {
    const group = await entra('POST', '/Groups', {
      schemas: [
        'urn:ietf:params:scim:schemas:core:2.0:Group',
        'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
      ],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'displayName',
      meta: { resourceType: 'Group' },
    });
    expect(group.status).toBe(201);
    expect(group.body).toMatchObject({
      displayName: 'displayName',
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      members: [],
    });
    groupId = group.body.id;
    const lean = await entra('GET', `/Groups/${groupId}?excludedAttributes=members`);
    expect(lean.status).toBe(200);
    expect(lean.body).not.toHaveProperty('members');
    expect(lean.body.displayName).toBe('displayName');
  });

  it('10. adds two members in one op with $ref null; removes one the Entra way (value list)', async () => {
    const add = await entra(
      'PATCH',
      `/Groups/${groupId}`,
      patchOp({
        op: 'Add',
        path: 'members',
        value: [
          { $ref: null, value: id },
          { $ref: null, value: noMailId },
        ],
      }),
    );
    expect(add.status).toBe(204);
    const remove = await entra(
      'PATCH',
      `/Groups/${groupId}`,
      patchOp({ op: 'Remove', path: 'members', value: [{ $ref: null, value: id }] }),
    );
    expect(remove.status).toBe(204);
    const members = (await entra('GET', `/Groups/${groupId}`)).body.members.map(
      (m: { value: string }) => m.value,
    );
    expect(members).toEqual([noMailId]);
  });

  it('11. renames (204), deletes group and user (204), then answers 404', async () => {
    const renamed = await entra(
      'PATCH',
      `/Groups/${groupId}`,
      patchOp({ op: 'Replace', path: 'displayName', value: '1879db59updatedDisplayName' }),
    );
    expect(renamed.status).toBe(204);
    expect((await entra('GET', `/Groups/${groupId}?excludedAttributes=members`)).body.displayName).toBe(
      '1879db59updatedDisplayName',
    );
    expect((await entra('DELETE', `/Groups/${groupId}`)).status).toBe(204);
    expect((await entra('DELETE', `/Users/${id}`)).status).toBe(204);
    expectScimError(await entra('GET', `/Users/${id}`), 404);
    expect((await entra('GET', '/Users?filter=userName+eq+%22test01@example.com%22')).body.totalResults).toBe(
      0,
    );
  });

  it('12. refuses a userName colliding case-insensitively with one the preceding lookup found', async () => {
    const lookup = await entra('GET', '/Users?filter=userName+eq+%22NOMAIL@contoso.com%22');
    expect(lookup.body.totalResults).toBe(1);
    expectScimError(await entra('POST', '/Users', { userName: 'NoMail@Contoso.com' }), 409, 'uniqueness');
  });

  it('re-creates a deleted userName (a deleted user no longer counts for uniqueness or lookups)', async () => {
    const conn = await createConnection(server, 'entra');
    const first = await conn.scim('POST', '/Users', { body: entraUser('rehired@contoso.com', 'x1') });
    expect((await conn.scim('DELETE', `/Users/${first.body.id}`)).status).toBe(204);
    const second = await conn.scim('POST', '/Users', { body: entraUser('rehired@contoso.com', 'x2') });
    expect(second.status).toBe(201);
    expect(second.body.id).not.toBe(first.body.id);
  });
});

describe('Entra with aadOptscim062020', () => {
  it('lower-case ops, boolean disable, mixed value-path and dotted no-path replace, filter removal', async () => {
    const conn = await createConnection(server, 'entra');
    const created = await conn.scim('POST', '/Users?aadOptscim062020', {
      body: entraUser('flag.user@contoso.com', 'f1'),
    });
    expect(created.status).toBe(201);
    const id: string = created.body.id;

    const mixed = await conn.scim('PATCH', `/Users/${id}`, {
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
    expect(mixed.status).toBe(200);
    expect(mixed.body).toMatchObject({
      displayName: 'Bjfe',
      name: { givenName: 'Kkom', familyName: 'Unua' },
      emails: [{ value: 'TestMhvaes@test.microsoft.com', type: 'work' }],
      [ENTERPRISE]: { employeeNumber: 'Aklq' },
    });
    expect(Object.keys(mixed.body)).not.toContain('name.givenName');

    const disabled = await conn.scim('PATCH', `/Users/${id}`, {
      body: patchOp({ op: 'replace', path: 'active', value: false }),
    });
    expect(disabled.body.active).toBe(false);

    const other = await conn.scim('POST', '/Users', { body: entraUser('flag.other@contoso.com', 'f2') });
    const group = await conn.scim('POST', '/Groups', {
      body: { displayName: 'Flag group', externalId: 'fg', members: [] },
    });
    await conn.scim('PATCH', `/Groups/${group.body.id}`, {
      body: patchOp({ op: 'add', path: 'members', value: [{ value: id }, { value: other.body.id }] }),
    });
    const removed = await conn.scim('PATCH', `/Groups/${group.body.id}`, {
      body: patchOp({ op: 'remove', path: `members[value eq "${id}"]` }),
    });
    expect(removed.status).toBe(204);
    const members = (await conn.scim('GET', `/Groups/${group.body.id}`)).body.members.map(
      (m: { value: string }) => m.value,
    );
    expect(members).toEqual([other.body.id]);
  });

  it('accepts "active": "True" on create (AzureAD/SCIMReferenceCode#21) and answers a JSON boolean', async () => {
    const conn = await createConnection(server, 'entra');
    const created = await conn.scim('POST', '/Users', {
      body: { ...entraUser('stringbool@contoso.com', 'sb'), active: 'True' },
    });
    expect(created.status).toBe(201);
    expect(created.body.active).toBe(true);
    const inactive = await conn.scim('POST', '/Users', {
      body: { ...entraUser('stringbool2@contoso.com', 'sb2'), active: 'False' },
    });
    expect(inactive.body.active).toBe(false);
    const membership = await server.ctx.db
      .selectFrom('memberships')
      .select('status')
      .where('user_id', '=', inactive.body.id)
      .executeTakeFirstOrThrow();
    expect(membership.status).toBe('inactive');
  });

  it('round-trips what it was sent, so Entra does not re-PATCH every cycle', async () => {
    const conn = await createConnection(server, 'entra');
    const sent = {
      ...entraUser('fidelity@contoso.com', 'fid'),
      phoneNumbers: [{ type: 'mobile', value: '+1 (555) 010-0199' }],
      [ENTERPRISE]: { department: 'Sales', employeeNumber: '0042', manager: { value: 'm-1' } },
    };
    const created = await conn.scim('POST', '/Users', { body: sent });
    const got = (await conn.scim('GET', `/Users/${created.body.id}`)).body;
    expect(got.phoneNumbers).toEqual(sent.phoneNumbers);
    expect(got[ENTERPRISE]).toEqual(sent[ENTERPRISE]);
    expect(got.name).toEqual(sent.name);
    expect(got.emails).toEqual(sent.emails);
    expect(got.roles).toBeUndefined();
  });
});
