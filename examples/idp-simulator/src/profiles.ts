import { randomUUID } from 'node:crypto';
import { type Json, quote, type ScimClient } from './scim-client.js';

/**
 * How each identity provider really talks SCIM (request shapes as documented by the vendors and seen
 * in their traffic). The commands (commands.ts) say what happens in the directory; a profile says
 * which requests an IdP sends for it.
 */

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export interface DirectoryUser {
  userName: string;
  givenName: string;
  familyName: string;
  email: string;
  department?: string;
  title?: string;
  employeeNumber?: string;
}

export interface Member {
  id: string;
  display: string;
}

export interface Profile {
  readonly name: ProfileName;
  readonly userAgent: string;
  /** Members per membership PATCH. */
  readonly membersPerPatch: number;
  /** Whether the IdP ever sends DELETE /Users (Okta never does). */
  readonly deletesUsers: boolean;
  findUser(scim: ScimClient, userName: string): Promise<Json | undefined>;
  createUser(scim: ScimClient, user: DirectoryUser): Promise<Json>;
  /** A user already there (found by lookup): bring it in line with the directory. */
  updateUser(scim: ScimClient, existing: Json, user: DirectoryUser): Promise<void>;
  setManager(scim: ScimClient, userId: string, managerId: string): Promise<void>;
  setActive(scim: ScimClient, userId: string, active: boolean): Promise<void>;
  deleteUser(scim: ScimClient, userId: string): Promise<void>;
  findGroup(scim: ScimClient, displayName: string): Promise<Json | undefined>;
  createGroup(scim: ScimClient, displayName: string): Promise<Json>;
  changeMembers(
    scim: ScimClient,
    group: { id: string; displayName: string },
    add: Member[],
    remove: string[],
  ): Promise<void>;
  renameGroup(scim: ScimClient, groupId: string, displayName: string): Promise<void>;
  deleteGroup(scim: ScimClient, groupId: string): Promise<void>;
}

export const PROFILE_NAMES = ['okta', 'entra', 'entra-flag'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

function userBody(user: DirectoryUser, extra: Record<string, unknown> = {}): Json {
  return {
    schemas: [USER, ENTERPRISE],
    userName: user.userName,
    name: { givenName: user.givenName, familyName: user.familyName },
    displayName: `${user.givenName} ${user.familyName}`,
    emails: [{ primary: true, type: 'work', value: user.email }],
    ...(user.title ? { title: user.title } : {}),
    active: true,
    [ENTERPRISE]: {
      ...(user.department ? { department: user.department } : {}),
      ...(user.employeeNumber ? { employeeNumber: user.employeeNumber } : {}),
    },
    ...extra,
  };
}

const first = (list: Json) => (list?.Resources as Json[] | undefined)?.[0];
const chunks = <T>(items: T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
};

/**
 * Okta (OIN-style SCIM 2.0 app): lookup by filter with startIndex/count, POST, updates as GET then
 * PUT of the whole object, `active` by a no-path PATCH, group push with a rename-style PATCH
 * before every membership push, member removal by filter path in the same PATCH as the adds.
 */
const okta: Profile = {
  name: 'okta',
  userAgent: 'Okta SCIM Client 1.0.0',
  membersPerPatch: 100,
  deletesUsers: false,
  async findUser(scim, userName) {
    return first(
      await scim.request(
        'GET',
        `/Users?filter=${encodeURIComponent(`userName eq ${quote(userName)}`)}&startIndex=1&count=100`,
      ),
    );
  },
  createUser: (scim, user) => scim.request('POST', '/Users', userBody(user)),
  async updateUser(scim, existing, user) {
    const current = await scim.request('GET', `/Users/${existing.id}`);
    const body = userBody(user, { id: current.id, groups: [] });
    await scim.request('PUT', `/Users/${existing.id}`, { ...current, ...body });
  },
  async setManager(scim, userId, managerId) {
    const current = await scim.request('GET', `/Users/${userId}`);
    await scim.request('PUT', `/Users/${userId}`, {
      ...current,
      [ENTERPRISE]: { ...current[ENTERPRISE], manager: { value: managerId } },
    });
  },
  async setActive(scim, userId, active) {
    await scim.request('PATCH', `/Users/${userId}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', value: { active } }],
    });
  },
  async deleteUser() {
    throw new Error(
      'Okta never deletes users over SCIM (it deactivates them): use deactivate, or --profile entra',
    );
  },
  async findGroup(scim, displayName) {
    return first(
      await scim.request(
        'GET',
        `/Groups?filter=${encodeURIComponent(`displayName eq ${quote(displayName)}`)}&startIndex=1&count=100`,
      ),
    );
  },
  async createGroup(scim, displayName) {
    const group = await scim.request('POST', '/Groups', { schemas: [GROUP], displayName, members: [] });
    await okta.renameGroup(scim, group.id, displayName);
    return group;
  },
  async changeMembers(scim, group, add, remove) {
    const removals = remove.map((id) => ({ op: 'remove', path: `members[value eq ${quote(id)}]` }));
    const batches = chunks(add, okta.membersPerPatch);
    if (batches.length === 0) batches.push([]);
    for (const [i, batch] of batches.entries()) {
      // "The group name update operation is triggered each time there is a group membership update."
      await okta.renameGroup(scim, group.id, group.displayName);
      const operations: Json[] = i === 0 ? [...removals] : [];
      if (batch.length > 0) {
        operations.push({
          op: 'add',
          path: 'members',
          value: batch.map((m) => ({ value: m.id, display: m.display })),
        });
      }
      if (operations.length === 0) continue;
      await scim.request('PATCH', `/Groups/${group.id}`, { schemas: [PATCH_OP], Operations: operations });
    }
  },
  async renameGroup(scim, groupId, displayName) {
    await scim.request('PATCH', `/Groups/${groupId}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', value: { id: groupId, displayName } }],
    });
  },
  async deleteGroup(scim, groupId) {
    await scim.request('DELETE', `/Groups/${groupId}`);
  },
};

/**
 * Microsoft Entra ID provisioning. Without the flag: Title-Case ops, booleans as "True"/"False"
 * strings, one op per changed attribute with `emails[type eq "work"].value` paths, groups created
 * empty then filled by member PATCHes, members removed by a value list. With `aadOptscim062020`
 * (the flag the admin appends to the Tenant URL; Entra consumes it and does not forward it):
 * lower-case ops, real booleans, attributes folded into one no-path replace with dotted keys,
 * members removed by filter path.
 */
function entra(flag: boolean): Profile {
  const op = (name: 'Add' | 'Replace' | 'Remove') => (flag ? name.toLowerCase() : name);
  const bool = (value: boolean) => (flag ? value : value ? 'True' : 'False');
  const patch = (operations: Json[]) => ({ schemas: [PATCH_OP], Operations: operations });
  const profile: Profile = {
    name: flag ? 'entra-flag' : 'entra',
    userAgent: 'Azure Active Directory SCIM Provisioning',
    membersPerPatch: 50,
    deletesUsers: true,
    async findUser(scim, userName) {
      return first(
        await scim.request('GET', `/Users?filter=userName+eq+${encodeURIComponent(quote(userName))}`),
      );
    },
    createUser(scim, user) {
      return scim.request(
        'POST',
        '/Users',
        userBody(user, { externalId: randomUUID(), meta: { resourceType: 'User' }, roles: [] }),
      );
    },
    async updateUser(scim, existing, user) {
      await scim.request('GET', `/Users/${existing.id}`);
      const attributes: Record<string, unknown> = {
        displayName: `${user.givenName} ${user.familyName}`,
        'name.givenName': user.givenName,
        'name.familyName': user.familyName,
        ...(user.title ? { title: user.title } : {}),
        ...(user.department ? { [`${ENTERPRISE}:department`]: user.department } : {}),
      };
      const emailOp = { op: op('Replace'), path: 'emails[type eq "work"].value', value: user.email };
      const operations = flag
        ? [emailOp, { op: 'replace', value: attributes }]
        : [emailOp, ...Object.entries(attributes).map(([path, value]) => ({ op: 'Replace', path, value }))];
      await scim.request('PATCH', `/Users/${existing.id}`, patch(operations));
    },
    async setManager(scim, userId, managerId) {
      // Reference attributes are written by a separate PATCH once every user exists.
      await scim.request(
        'PATCH',
        `/Users/${userId}`,
        patch([{ op: op('Add'), path: `${ENTERPRISE}:manager`, value: managerId }]),
      );
    },
    async setActive(scim, userId, active) {
      await scim.request(
        'PATCH',
        `/Users/${userId}`,
        patch([{ op: op('Replace'), path: 'active', value: bool(active) }]),
      );
    },
    async deleteUser(scim, userId) {
      await scim.request('DELETE', `/Users/${userId}`);
    },
    async findGroup(scim, displayName) {
      return first(
        await scim.request(
          'GET',
          `/Groups?excludedAttributes=members&filter=displayName+eq+${encodeURIComponent(quote(displayName))}`,
        ),
      );
    },
    createGroup(scim, displayName) {
      return scim.request('POST', '/Groups', { schemas: [GROUP], externalId: randomUUID(), displayName });
    },
    async changeMembers(scim, group, add, remove) {
      if (remove.length > 0) {
        const removal = flag
          ? remove.map((id) => ({ op: 'remove', path: `members[value eq ${quote(id)}]` }))
          : [{ op: 'Remove', path: 'members', value: remove.map((id) => ({ value: id })) }];
        await scim.request('PATCH', `/Groups/${group.id}`, patch(removal));
      }
      for (const batch of chunks(add, profile.membersPerPatch)) {
        await scim.request(
          'PATCH',
          `/Groups/${group.id}`,
          patch([{ op: op('Add'), path: 'members', value: batch.map((m) => ({ $ref: null, value: m.id })) }]),
        );
      }
    },
    async renameGroup(scim, groupId, displayName) {
      await scim.request(
        'PATCH',
        `/Groups/${groupId}`,
        patch([{ op: op('Replace'), path: 'displayName', value: displayName }]),
      );
    },
    async deleteGroup(scim, groupId) {
      await scim.request('DELETE', `/Groups/${groupId}`);
    },
  };
  return profile;
}

export function profileNamed(name: ProfileName): Profile {
  switch (name) {
    case 'okta':
      return okta;
    case 'entra':
      return entra(false);
    case 'entra-flag':
      return entra(true);
  }
}
