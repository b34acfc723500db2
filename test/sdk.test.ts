import { RosterError } from '@roster/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../server/test/harness.js';
import { patchOp, userBody } from '../server/test/scim-helpers.js';
import { sdkFor } from './support.js';

let server: TestServer;
let roster: ReturnType<typeof sdkFor>;
beforeAll(async () => {
  server = await startTestServer();
  roster = sdkFor(server);
});
afterAll(async () => {
  await server?.close();
});

describe('the SDK against a real server', () => {
  it('follows an IdP: SCIM push, mapped role, group change, deactivation', async () => {
    const org = await roster.organizations.create({ name: 'Acme Corp' });
    await roster.roles.create({
      key: 'finance',
      name: 'Finance',
      permissions: ['invoices:read', 'invoices:write'],
    });
    const connection = await roster.connections.create({
      organizationId: org.id,
      name: 'Acme Okta',
      provider: 'okta',
    });
    expect(connection.scim.token).toMatch(/^rst_scim_/);
    await roster.connections.setRoleMappings({
      connectionId: connection.id,
      mappings: [
        { group: 'Finance', role: 'finance' },
        { group: 'Everyone', role: 'member' },
      ],
    });

    // The IdP pushes a user and a group, as Okta does.
    const scim = async (method: string, path: string, body?: unknown) => {
      const response = await server.fetch(`${new URL(connection.scim.base_url).pathname}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${connection.scim.token}`,
          'content-type': 'application/scim+json',
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: response.status === 204 ? undefined : await response.json() };
    };
    const ada = await scim('POST', '/Users', userBody('ada@acme.test', { displayName: 'Ada Lovelace' }));
    expect(ada.status).toBe(201);

    let members = await roster.organizations.listMembers({ organizationId: org.id });
    const adaMember = members.data.find((m) => m.user.id === ada.body.id);
    expect(adaMember).toMatchObject({
      role: 'member',
      status: 'active',
      source: 'scim',
      user: { name: 'Ada Lovelace', email: 'ada@acme.test' },
    });

    const finance = await scim('POST', '/Groups', {
      displayName: 'Finance',
      members: [{ value: ada.body.id }],
    });
    expect(finance.status).toBe(201);
    members = await roster.organizations.listMembers({ organizationId: org.id, role: 'finance' });
    expect(members.data.map((m) => [m.user.email, m.role, m.permissions])).toEqual([
      ['ada@acme.test', 'finance', ['invoices:read', 'invoices:write']],
    ]);
    const explanation = await roster.organizations.explainMember({ membershipId: adaMember!.id });
    expect(explanation).toMatchObject({
      reason: 'group_mapping',
      group: { name: 'Finance' },
      mapping: { precedence: 1 },
    });

    // Leaving the group: the role follows.
    await scim(
      'PATCH',
      `/Groups/${finance.body.id}`,
      patchOp({ op: 'remove', path: `members[value eq "${ada.body.id}"]` }),
    );
    expect(
      (await roster.organizations.getMember({ organizationId: org.id, membershipId: adaMember!.id })).role,
    ).toBe('member');

    // Deactivated in the IdP (Entra's string boolean): inactive.
    await scim('PATCH', `/Users/${ada.body.id}`, patchOp({ op: 'Replace', path: 'active', value: 'False' }));
    const inactive = await roster.organizations.listMembers({ organizationId: org.id, status: 'inactive' });
    expect(inactive.data.map((m) => m.user.id)).toEqual([ada.body.id]);
    expect(inactive.data[0]).toMatchObject({ status: 'inactive', user: { active: false } });

    const group = await roster.groups.get({ groupId: finance.body.id });
    expect(group.member_count).toBe(0);
    const health = await roster.connections.sync({ connectionId: connection.id });
    expect(health.last_hour.requests).toBeGreaterThanOrEqual(4);
  });

  it('throws typed errors', async () => {
    const org = await roster.organizations.create({ name: 'Errors', slug: 'errors-inc' });
    const error = await roster.organizations
      .create({ name: 'Again', slug: 'errors-inc' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RosterError);
    expect(error).toMatchObject({
      status: 409,
      code: 'slug_taken',
      requestId: expect.stringMatching(/^req_/),
    });
    await expect(
      roster.organizations.get({ organizationId: 'org_00000000000000000000000000' }),
    ).rejects.toMatchObject({ status: 404, code: 'not_found' });
    await expect(roster.organizations.delete({ organizationId: org.id })).resolves.toBeUndefined();
  });

  it('replays an idempotent create instead of running it twice', async () => {
    const first = await roster.organizations.create({ name: 'Idem' }, { idempotencyKey: 'sdk-idem-1' });
    const second = await roster.organizations.create({ name: 'Idem' }, { idempotencyKey: 'sdk-idem-1' });
    expect(second).toEqual(first);
  });

  it('iterates every member across pages, while members are added', async () => {
    const org = await roster.organizations.create({ name: 'Big' });
    const initial = new Set<string>();
    for (let i = 0; i < 45; i++) {
      initial.add(
        (await roster.organizations.addMember({ organizationId: org.id, email: `p${i}@big.test` })).id,
      );
    }
    const seen: string[] = [];
    let added = 0;
    for await (const member of roster.organizations.listMembers({ organizationId: org.id, limit: 10 })) {
      seen.push(member.id);
      if (seen.length % 10 === 0) {
        await roster.organizations.addMember({ organizationId: org.id, email: `late${added++}@big.test` });
      }
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of initial) expect(seen).toContain(id);
  });
});
