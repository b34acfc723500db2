import { describe, expect, it } from 'vitest';
import { normalizeResource, type ScimObject } from '../core/resource.js';
import { GROUP_RESOURCE, USER_RESOURCE } from '../core/schemas.js';
import { ScimError } from '../protocol/error.js';
import { applyPatch, parsePatchRequest } from './patch.js';

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const ROSTER = 'urn:ietf:params:scim:schemas:extension:roster:2.0:User';
const PATCH_OP = ['urn:ietf:params:scim:api:messages:2.0:PatchOp'];

const baseUser: ScimObject = {
  userName: 'ada@example.com',
  name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Ada Lovelace' },
  displayName: 'Ada Lovelace',
  active: true,
  emails: [{ value: 'ada@example.com', type: 'work', primary: true }],
};

/** The cases below are about operations: those that leave out `schemas` get the PatchOp URN. */
function withPatchOp(body: unknown): unknown {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && !('schemas' in body)
    ? { schemas: PATCH_OP, ...body }
    : body;
}

function patchUser(body: unknown, current: ScimObject = baseUser) {
  return applyPatch(USER_RESOURCE, current, parsePatchRequest(withPatchOp(body))).attributes;
}

function patchGroup(body: unknown, current: ScimObject = { displayName: 'Engineering' }) {
  return applyPatch(GROUP_RESOURCE, current, parsePatchRequest(withPatchOp(body)));
}

function expectScimError(fn: () => unknown, status: number, scimType?: string) {
  try {
    fn();
    expect.unreachable('expected a ScimError');
  } catch (error) {
    expect(error).toBeInstanceOf(ScimError);
    expect((error as ScimError).status).toBe(status);
    expect((error as ScimError).scimType).toBe(scimType);
  }
}

describe('deactivation, in every shape IdPs send it', () => {
  it.each<[string, unknown]>([
    // Entra without aadOptscim062020: Title-Case op, string boolean (Known-issues article)
    [
      'Entra default "False"',
      { schemas: PATCH_OP, Operations: [{ op: 'Replace', path: 'active', value: 'False' }] },
    ],
    // Entra, lower-case string (scimmyjs/scimmy#86)
    [
      'Entra lower-case "false"',
      { schemas: PATCH_OP, Operations: [{ op: 'Replace', path: 'active', value: 'false' }] },
    ],
    // Entra Learn tutorial: boolean with Title-Case op
    [
      'Entra tutorial boolean',
      { Operations: [{ op: 'Replace', path: 'active', value: false }], schemas: PATCH_OP },
    ],
    // Entra with aadOptscim062020
    ['Entra flag', { schemas: PATCH_OP, Operations: [{ op: 'replace', path: 'active', value: false }] }],
    // Okta OIN: no path, value object (Okta SCIM 2.0 reference)
    ['Okta no-path', { schemas: PATCH_OP, Operations: [{ op: 'replace', value: { active: false } }] }],
    // Tolerated: lower-case "operations" key
    [
      'lower-case operations key',
      { schemas: PATCH_OP, operations: [{ op: 'REPLACE', path: 'ACTIVE', value: 'FALSE' }] },
    ],
  ])('%s', (_, body) => {
    const after = patchUser(body);
    expect(after.active).toBe(false);
    // A no-path replace merges: nothing else is lost (ssoready/ssoready#206).
    expect(after.userName).toBe('ada@example.com');
    expect(after.emails).toEqual(baseUser.emails);
  });

  it.each<[string, unknown]>([
    ['Entra "True"', { schemas: PATCH_OP, Operations: [{ op: 'Replace', path: 'active', value: 'True' }] }],
    ['Okta no-path true', { schemas: PATCH_OP, Operations: [{ op: 'replace', value: { active: true } }] }],
  ])('reactivation: %s', (_, body) => {
    expect(patchUser(body, { ...baseUser, active: false }).active).toBe(true);
  });

  it('rejects a value that is no boolean', () => {
    expectScimError(
      () => patchUser({ Operations: [{ op: 'replace', path: 'active', value: 'maybe' }] }),
      400,
      'invalidValue',
    );
  });
});

describe('user updates', () => {
  it('Entra five-op Title-Case update (ssoready/ssoready#228)', () => {
    const after = patchUser({
      Operations: [
        { op: 'Replace', path: 'displayName', value: 'Test 01' },
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'test01@example.com' },
        { op: 'Replace', path: 'userName', value: 'test01@example.com' },
        { op: 'Replace', path: 'name.familyName', value: 'Tesst 01' },
        { op: 'Replace', path: 'name.formatted', value: 'Test 01' },
      ],
      schemas: PATCH_OP,
    });
    expect(after).toMatchObject({
      displayName: 'Test 01',
      userName: 'test01@example.com',
      name: { givenName: 'Ada', familyName: 'Tesst 01', formatted: 'Test 01' },
      emails: [{ value: 'test01@example.com', type: 'work', primary: true }],
    });
  });

  it('Entra with aadOptscim062020: value-path op plus a no-path replace with dotted and URN keys', () => {
    const after = patchUser({
      schemas: PATCH_OP,
      Operations: [
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
      ],
    });
    expect(after.displayName).toBe('Bjfe');
    expect(after.name).toEqual({ givenName: 'Kkom', familyName: 'Unua', formatted: 'Ada Lovelace' });
    expect(after[ENTERPRISE]).toEqual({ employeeNumber: 'Aklq' });
    expect(after.emails).toEqual([{ value: 'TestMhvaes@test.microsoft.com', type: 'work', primary: true }]);
    // No literal "name.givenName" attribute (pingidentity/scim2#224).
    expect(Object.keys(after)).not.toContain('name.givenName');
  });

  it('Entra dotted-key form with op "add" (pond/scimitar#123)', () => {
    const after = patchUser({
      schemas: PATCH_OP,
      Operations: [
        {
          op: 'add',
          value: {
            displayName: 'Foo Bar',
            title: 'Bar Foo',
            'name.givenName': 'Foo',
            'name.familyName': 'Bar',
            'name.formatted': 'Foo Bar',
          },
        },
      ],
    });
    expect(after).toMatchObject({
      displayName: 'Foo Bar',
      title: 'Bar Foo',
      name: { givenName: 'Foo', familyName: 'Bar', formatted: 'Foo Bar' },
    });
  });

  it('Entra SCIM Validator: mixed value-path and no-path replace including userName (pond/scimitar#69)', () => {
    const after = patchUser({
      Operations: [
        { op: 'replace', path: 'emails[type eq "work"].value', value: 'trystan@bradtkekutch.us' },
        {
          op: 'replace',
          value: {
            userName: 'lucienne_durgan@wiza.biz',
            'name.givenName': 'Keith',
            'name.familyName': 'Stella',
          },
        },
      ],
      schemas: PATCH_OP,
    });
    expect(after.userName).toBe('lucienne_durgan@wiza.biz');
    expect(after.name).toMatchObject({ givenName: 'Keith', familyName: 'Stella' });
  });

  it('creates the entry a value path filters for when none matches (Entra create-on-absent)', () => {
    const noEmail = { userName: 'cloud-only@example.com' };
    // Metatavu/keycloak-scim-server#35
    const added = patchUser(
      {
        schemas: PATCH_OP,
        Operations: [{ op: 'Add', path: 'emails[type eq "work"].value', value: 'something@outlook.com' }],
      },
      noEmail,
    );
    expect(added.emails).toEqual([{ type: 'work', value: 'something@outlook.com' }]);
    const replaced = patchUser(
      { Operations: [{ op: 'Replace', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0100' }] },
      noEmail,
    );
    expect(replaced.phoneNumbers).toEqual([{ type: 'mobile', value: '+1 555 0100' }]);
    const address = patchUser(
      { Operations: [{ op: 'add', path: 'addresses[type eq "work"].streetAddress', value: '1 Main St' }] },
      noEmail,
    );
    expect(address.addresses).toEqual([{ type: 'work', streetAddress: '1 Main St' }]);
  });

  it('answers noTarget when a filter matches nothing and cannot describe a new entry', () => {
    expectScimError(
      () =>
        patchUser({
          Operations: [{ op: 'replace', path: 'emails[value co "@nowhere"].type', value: 'home' }],
        }),
      400,
      'noTarget',
    );
  });

  it('single-valued attribute add (Entra "Babs" example, both flag states)', () => {
    expect(patchUser({ Operations: [{ op: 'Add', path: 'nickName', value: 'Babs' }] }).nickName).toBe('Babs');
    expect(patchUser({ Operations: [{ op: 'add', path: 'nickName', value: 'Babs' }] }).nickName).toBe('Babs');
  });

  it('manager: bare string on the extension path, {value}, and the legacy [{$ref,value}] form', () => {
    // Entra today (Captain-P-Goldfish/SCIM-SDK#686)
    const stringForm = patchUser({
      Operations: [
        { op: 'add', path: `${ENTERPRISE}:manager`, value: '2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2' },
      ],
    });
    expect(stringForm[ENTERPRISE]).toEqual({ manager: { value: '2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2' } });
    // Learn tutorial "Example 5": path "manager" is not a core attribute -> invalidPath
    expectScimError(
      () => patchUser({ Operations: [{ op: 'Add', path: 'manager', value: [{ $ref: 'x', value: 'm1' }] }] }),
      400,
      'invalidPath',
    );
    const legacy = patchUser({
      Operations: [
        { op: 'Add', path: `${ENTERPRISE}:manager`, value: [{ $ref: 'http://x/Users/m1', value: 'm1' }] },
      ],
    });
    expect(legacy[ENTERPRISE]).toEqual({ manager: { $ref: 'http://x/Users/m1', value: 'm1' } });
    // Removal with a filter on the single-valued manager (thomaspoignant/scim-patch#453)
    const removed = patchUser(
      { Operations: [{ op: 'remove', path: `${ENTERPRISE}:manager[value eq "m1"]` }] },
      { ...baseUser, [ENTERPRISE]: { manager: { value: 'm1' }, department: 'R&D' } },
    );
    expect(removed[ENTERPRISE]).toEqual({ department: 'R&D' });
  });

  it('roles with a JSON-encoded string value and a "True" filter (Entra app roles)', () => {
    const after = patchUser({
      Operations: [
        {
          op: 'Add',
          path: 'roles',
          value: [
            { value: '{"id":"06b07648-ecfe-589f-9d2f-6325724a46ee","value":"25","displayName":"Role1234"}' },
          ],
        },
      ],
    });
    expect(after.roles).toEqual([
      { value: '{"id":"06b07648-ecfe-589f-9d2f-6325724a46ee","value":"25","displayName":"Role1234"}' },
    ]);
    const primary = patchUser(
      { Operations: [{ op: 'replace', path: 'roles[primary eq "True"].value', value: 'Admin' }] },
      { ...baseUser, roles: [{ value: 'User', primary: true }, { value: 'Other' }] },
    );
    expect(primary.roles).toEqual([{ value: 'Admin', primary: true }, { value: 'Other' }]);
  });

  it('Roster extension: free-form attributes, case-insensitive keys', () => {
    const after = patchUser({
      Operations: [
        { op: 'add', path: `${ROSTER}:cost_center`, value: 'CC-42' },
        { op: 'replace', value: { [ROSTER]: { employee_id: 'E-7' } } },
        { op: 'replace', path: `${ROSTER}:COST_CENTER`, value: 'CC-43' },
      ],
    });
    expect(after[ROSTER]).toEqual({ cost_center: 'CC-43', employee_id: 'E-7' });
  });

  it('add to a multi-valued attribute appends, de-duplicates and keeps one primary', () => {
    const after = patchUser({
      Operations: [
        { op: 'add', path: 'emails', value: [{ value: 'ada@example.com', type: 'work', primary: true }] },
        { op: 'add', path: 'emails', value: [{ value: 'ada@home.example', type: 'home', primary: 'True' }] },
      ],
    });
    expect(after.emails).toEqual([
      { value: 'ada@example.com', type: 'work', primary: false },
      { value: 'ada@home.example', type: 'home', primary: true },
    ]);
  });

  it('remove: attribute, sub-attribute, filtered entries; remove of absent is a no-op', () => {
    const after = patchUser({
      Operations: [
        { op: 'remove', path: 'displayName' },
        { op: 'remove', path: 'name.formatted' },
        { op: 'remove', path: 'emails[type eq "work"]' },
        { op: 'remove', path: 'title' },
        { op: 'remove', path: 'phoneNumbers[type eq "fax"]' },
      ],
    });
    expect(after).toEqual({
      userName: 'ada@example.com',
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      active: true,
    });
  });

  it('password (Okta password sync) is accepted and not stored', () => {
    const after = patchUser({ Operations: [{ op: 'replace', value: { password: 'hunter2' } }] });
    expect(after).toEqual(baseUser);
    expect(patchUser({ Operations: [{ op: 'replace', path: 'password', value: 'x' }] })).toEqual(baseUser);
  });

  it('ignores read-only keys inside a no-path value but rejects read-only paths', () => {
    expect(
      patchUser({
        Operations: [{ op: 'replace', value: { id: 'other', meta: {}, schemas: [], title: 'Dr' } }],
      }).title,
    ).toBe('Dr');
    expectScimError(
      () => patchUser({ Operations: [{ op: 'replace', path: 'id', value: 'x' }] }),
      400,
      'mutability',
    );
    expectScimError(
      () => patchUser({ Operations: [{ op: 'replace', path: 'meta.created', value: 'x' }] }),
      400,
      'mutability',
    );
    expectScimError(
      () => patchUser({ Operations: [{ op: 'add', path: 'groups', value: [{ value: 'g' }] }] }),
      400,
      'mutability',
    );
  });

  it.each<[string, unknown, number, string | undefined]>([
    ['not an object', [1], 400, 'invalidSyntax'],
    ['no Operations', { schemas: PATCH_OP }, 400, 'invalidSyntax'],
    ['empty Operations', { Operations: [] }, 400, 'invalidSyntax'],
    ['unknown op', { Operations: [{ op: 'merge', path: 'title', value: 'x' }] }, 400, 'invalidSyntax'],
    ['add without value', { Operations: [{ op: 'add', path: 'title' }] }, 400, 'invalidValue'],
    ['remove without path', { Operations: [{ op: 'remove' }] }, 400, 'noTarget'],
    [
      'unknown attribute path',
      { Operations: [{ op: 'replace', path: 'favoriteColor', value: 'x' }] },
      400,
      'invalidPath',
    ],
    [
      'unknown schema',
      { Operations: [{ op: 'replace', path: 'urn:nope:Thing:x[a eq "b"]', value: 'x' }] },
      400,
      'invalidPath',
    ],
    [
      'malformed path',
      { Operations: [{ op: 'replace', path: 'emails[type eq', value: 'x' }] },
      400,
      'invalidPath',
    ],
    [
      'wrong value type',
      { Operations: [{ op: 'replace', path: 'title', value: { a: 1 } }] },
      400,
      'invalidValue',
    ],
    ['no-path non-object', { Operations: [{ op: 'replace', value: 'x' }] }, 400, 'invalidValue'],
    ['remove required userName', { Operations: [{ op: 'remove', path: 'userName' }] }, 400, 'invalidValue'],
    ['clear userName', { Operations: [{ op: 'replace', path: 'userName', value: '' }] }, 400, 'invalidValue'],
    [
      'filter on a simple attribute',
      { Operations: [{ op: 'replace', path: 'title[value eq "x"]', value: 'y' }] },
      400,
      'invalidPath',
    ],
  ])('rejects %s', (_, body, status, scimType) => {
    expectScimError(() => patchUser(body), status, scimType);
  });

  it('is atomic: a failing operation leaves the input untouched', () => {
    const current = structuredClone(baseUser);
    expectScimError(
      () =>
        patchUser(
          {
            Operations: [
              { op: 'replace', path: 'title', value: 'Dr' },
              { op: 'replace', path: 'nope', value: 1 },
            ],
          },
          current,
        ),
      400,
      'invalidPath',
    );
    expect(current).toEqual(baseUser);
  });
});

describe('group patches', () => {
  it('Entra add members with $ref null, several in one op (Learn tutorial)', () => {
    const { members, attributes } = patchGroup({
      schemas: PATCH_OP,
      Operations: [
        {
          op: 'Add',
          path: 'members',
          value: [{ $ref: null, value: 'f648f8d5ea4e4cd38e9c' }, { value: 'a2' }],
        },
      ],
    });
    expect(members).toEqual([{ kind: 'add', ids: ['f648f8d5ea4e4cd38e9c', 'a2'] }]);
    expect(attributes).toEqual({ displayName: 'Engineering' });
  });

  it('Entra default remove with a value list removes only those (not all: azure-docs#30826)', () => {
    const { members } = patchGroup({
      schemas: PATCH_OP,
      Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: 'f648f8d5ea4e4cd38e9c' }] }],
    });
    expect(members).toEqual([{ kind: 'remove', ids: ['f648f8d5ea4e4cd38e9c'] }]);
  });

  it('RFC remove by filter (Entra flag, Okta) and remove-all without value', () => {
    expect(
      patchGroup({
        Operations: [{ op: 'remove', path: 'members[value eq "7f4bc1a3-285e-48ae-8202-5accb43efb0e"]' }],
      }).members,
    ).toEqual([{ kind: 'remove', ids: ['7f4bc1a3-285e-48ae-8202-5accb43efb0e'] }]);
    expect(
      patchGroup({ Operations: [{ op: 'remove', path: 'members[value eq "a" or value eq "b"]' }] }).members,
    ).toEqual([{ kind: 'remove', ids: ['a', 'b'] }]);
    expect(patchGroup({ Operations: [{ op: 'remove', path: 'members' }] }).members).toEqual([
      { kind: 'removeAll' },
    ]);
  });

  it('Okta membership delta: remove + add in one request, in order', () => {
    const { members } = patchGroup({
      schemas: PATCH_OP,
      Operations: [
        { op: 'remove', path: 'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]' },
        {
          op: 'add',
          path: 'members',
          value: [{ value: '23a35c27-23d3-4c03-b4c5-6443c09e7173', display: 'test.user@okta.local' }],
        },
      ],
    });
    expect(members).toEqual([
      { kind: 'remove', ids: ['89bb1940-b905-4575-9e7f-6f887cfb368e'] },
      { kind: 'add', ids: ['23a35c27-23d3-4c03-b4c5-6443c09e7173'] },
    ]);
  });

  it('Okta "Push now": replace members, including with []', () => {
    expect(
      patchGroup({
        Operations: [
          { op: 'replace', path: 'members', value: [{ value: 'u1', display: 'x' }, { value: 'u2' }] },
        ],
      }).members,
    ).toEqual([{ kind: 'replace', ids: ['u1', 'u2'] }]);
    expect(patchGroup({ Operations: [{ op: 'replace', path: 'members', value: [] }] }).members).toEqual([
      { kind: 'replace', ids: [] },
    ]);
  });

  it('Okta rename with id inside the value leaves members alone (langwatch/langwatch#7131)', () => {
    const outcome = patchGroup({
      schemas: PATCH_OP,
      Operations: [
        { op: 'replace', value: { id: 'abf4dd94-a4c0-4f67-89c9-76b03340cb9b', displayName: 'Test SCIMv2' } },
      ],
    });
    expect(outcome).toEqual({ attributes: { displayName: 'Test SCIMv2' }, members: [] });
  });

  it('Okta no-path replace carrying members (Metatavu/keycloak-scim-server#101)', () => {
    expect(
      patchGroup({ Operations: [{ op: 'replace', value: { members: [{ value: 'u9' }] } }] }).members,
    ).toEqual([{ kind: 'replace', ids: ['u9'] }]);
  });

  it('Entra rename and a bare-string member value (Microsoft Postman suite)', () => {
    const outcome = patchGroup({
      Operations: [
        {
          op: 'Replace',
          path: 'displayName',
          value: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName',
        },
        { op: 'Add', path: 'members', value: 'u-bare' },
      ],
    });
    expect(outcome).toEqual({
      attributes: { displayName: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName' },
      members: [{ kind: 'add', ids: ['u-bare'] }],
    });
  });

  it('rejects member values without an id and filters that are not by value', () => {
    expectScimError(
      () => patchGroup({ Operations: [{ op: 'add', path: 'members', value: [{ display: 'x' }] }] }),
      400,
      'invalidValue',
    );
    expectScimError(
      () => patchGroup({ Operations: [{ op: 'remove', path: 'members[display eq "x"]' }] }),
      400,
      'invalidPath',
    );
    expectScimError(
      () => patchGroup({ Operations: [{ op: 'replace', path: 'displayName', value: null }] }),
      400,
      'invalidValue',
    );
  });
});

describe('normalizeResource', () => {
  it('Entra create body: client meta, empty roles, enterprise URN without attributes, nulls', () => {
    const stored = normalizeResource(USER_RESOURCE, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName: 'Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee',
      active: true,
      emails: [
        { primary: true, type: 'work', value: 'Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com' },
      ],
      meta: { resourceType: 'User' },
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      roles: [],
      addresses: null,
      phoneNumbers: null,
      title: null,
    });
    expect(stored).toEqual({
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName: 'Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee',
      active: true,
      emails: [
        { primary: true, type: 'work', value: 'Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com' },
      ],
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
    });
  });

  it('Okta create body: groups (read-only) and password (write-only) accepted, not stored', () => {
    const stored = normalizeResource(USER_RESOURCE, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'test.user@okta.local',
      name: { givenName: 'Test', familyName: 'User' },
      emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
      displayName: 'Test User',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      groups: [],
      password: '1mz050nq',
      active: true,
    });
    expect(stored.groups).toBeUndefined();
    expect(stored.password).toBeUndefined();
    expect(stored.locale).toBe('en-US');
  });

  it('string booleans, PascalCase keys, unknown schemas, "" as absent (Microsoft fixtures, OneLogin)', () => {
    const stored = normalizeResource(USER_RESOURCE, {
      schemas: ['urn:scim:schemas:core:2.0', 'urn:scim:schemas:extension:enterprise:2.0'],
      UserName: 'onelogin-test-user01',
      Active: 'True',
      name: { familyName: ' User 01', givenName: 'AAA Test', MiddleName: '' },
      Emails: [{ Value: 'a@b.c', Primary: 'true', Type: 'work' }],
      title: '',
      [ENTERPRISE]: { Department: 'Sales', manager: { value: '', displayName: ' ' } },
    });
    expect(stored).toEqual({
      userName: 'onelogin-test-user01',
      active: true,
      name: { familyName: ' User 01', givenName: 'AAA Test' },
      emails: [{ value: 'a@b.c', primary: true, type: 'work' }],
      [ENTERPRISE]: { department: 'Sales', manager: { displayName: ' ' } },
    });
  });

  it('keeps custom extension objects Entra sends without listing them in schemas', () => {
    const custom = 'urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User';
    const stored = normalizeResource(USER_RESOURCE, {
      userName: 'x',
      [custom]: { CustomAttribute: 'v', dropped: null },
    });
    expect(stored[custom]).toEqual({ CustomAttribute: 'v' });
  });

  it('Entra group create with the ADSCIM schema and empty members', () => {
    const stored = normalizeResource(GROUP_RESOURCE, {
      schemas: [
        'urn:ietf:params:scim:schemas:core:2.0:Group',
        'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
      ],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'displayName',
      members: [],
      meta: { resourceType: 'Group' },
    });
    expect(stored).toEqual({
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'displayName',
    });
  });

  it.each<[unknown, string]>([
    [{}, 'userName is required'],
    [{ userName: '' }, 'userName is required'],
    [{ userName: 'x', active: 'yes' }, 'active must be a boolean'],
    [{ userName: 'x', emails: [{ value: { nested: true } }] }, 'emails[0].value must be a string'],
    [{ userName: 'x', name: 'Ada' }, 'name must be an object'],
    ['not an object', 'must be a User object'],
  ])('rejects %j', (body, message) => {
    expect(() => normalizeResource(USER_RESOURCE, body)).toThrow(message);
  });
});
