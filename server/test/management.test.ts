import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, patchOp, type TestConnection, userBody } from './scim-helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const ROSTER = 'urn:ietf:params:scim:schemas:extension:roster:2.0:User';

async function scimUser(conn: TestConnection, userName: string, extra: Record<string, unknown> = {}) {
  const response = await conn.scim('POST', '/Users', { body: userBody(userName, extra) });
  expect(response.status).toBe(201);
  return response.body.id as string;
}

async function membershipOf(organizationId: string, userId: string) {
  const page = await server.api('GET', `/v1/organizations/${organizationId}/memberships?limit=100`);
  return page.body.data.find((m: { user: { id: string } }) => m.user.id === userId);
}

describe('roles', () => {
  it('has the built-ins, creates, updates and deletes', async () => {
    const list = await server.api('GET', '/v1/roles');
    expect(list.body.data.map((r: { key: string }) => r.key)).toEqual(
      expect.arrayContaining(['admin', 'member']),
    );
    const created = await server.api('POST', '/v1/roles', {
      body: { key: 'billing', name: 'Billing', permissions: ['invoices:read', 'invoices:write'] },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: 'role',
      key: 'billing',
      builtin: false,
      permissions: ['invoices:read', 'invoices:write'],
    });
    expect(
      (await server.api('POST', '/v1/roles', { body: { key: 'billing', name: 'Again' } })).body.error.code,
    ).toBe('role_exists');
    const updated = await server.api('PATCH', '/v1/roles/billing', {
      body: { permissions: ['invoices:read'], description: 'Reads invoices' },
    });
    expect(updated.body).toMatchObject({ permissions: ['invoices:read'], description: 'Reads invoices' });
    expect((await server.api('DELETE', '/v1/roles/billing')).status).toBe(204);
    expect((await server.api('GET', '/v1/roles/billing')).status).toBe(404);
  });

  it('refuses to delete a built-in role or a role in use', async () => {
    const builtin = await server.api('DELETE', '/v1/roles/admin');
    expect(builtin.status).toBe(409);
    expect(builtin.body.error.code).toBe('role_builtin');
    await server.api('POST', '/v1/roles', { body: { key: 'auditor', name: 'Auditor' } });
    await server.api('POST', '/v1/organizations', { body: { name: 'Audited', default_role: 'auditor' } });
    const inUse = await server.api('DELETE', '/v1/roles/auditor');
    expect(inUse.status).toBe(409);
    expect(inUse.body.error.code).toBe('role_in_use');
  });

  it('validates keys and permissions', async () => {
    for (const body of [
      { key: 'Bad Key', name: 'x' },
      { key: 'ok', name: 'x', permissions: ['a b'] },
      { key: 'ok2', name: 'x', permissions: ['a', 'a'] },
    ]) {
      expect((await server.api('POST', '/v1/roles', { body })).status).toBe(400);
    }
  });
});

describe('memberships from SCIM, with role mappings', () => {
  it('a PUT that renames a group into or out of a mapping resolves the members it brings', async () => {
    const conn = await createConnection(server, 'okta');
    await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
      body: { mappings: [{ group: 'Finance', role: 'admin' }] },
    });
    const grace = await scimUser(conn, 'grace@acme.test');
    const group = await conn.scim('POST', '/Groups', { body: { displayName: 'Fin' } });
    expect((await membershipOf(conn.organizationId, grace)).role).toBe('member');
    const into = await conn.scim('PUT', `/Groups/${group.body.id}`, {
      body: { displayName: 'Finance', members: [{ value: grace }] },
    });
    expect(into.status).toBe(200);
    expect((await membershipOf(conn.organizationId, grace)).role).toBe('admin');
    await conn.scim('PUT', `/Groups/${group.body.id}`, {
      body: { displayName: 'Fin', members: [{ value: grace }] },
    });
    expect((await membershipOf(conn.organizationId, grace)).role).toBe('member');
  });

  it('gives the default role, then the highest-precedence mapped group, and follows group changes', async () => {
    await server.api('POST', '/v1/roles', {
      body: { key: 'engineer', name: 'Engineer', permissions: ['deploy:read'] },
    });
    const conn = await createConnection(server, 'okta');
    const ada = await scimUser(conn, 'ada@acme.test');
    let membership = await membershipOf(conn.organizationId, ada);
    expect(membership).toMatchObject({
      role: 'member',
      status: 'active',
      source: 'scim',
      user: { id: ada, user_name: 'ada@acme.test' },
    });

    const mapped = await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
      body: {
        mappings: [
          { group: 'Admins', role: 'admin' },
          { group: 'eng-guid-1', role: 'engineer' },
        ],
      },
    });
    expect(mapped.status).toBe(200);
    expect(mapped.body.mappings).toEqual([
      { group: 'Admins', role: 'admin', precedence: 1 },
      { group: 'eng-guid-1', role: 'engineer', precedence: 2 },
    ]);

    // Engineering is matched by externalId; the role follows in the same transaction as the PATCH.
    const eng = await conn.scim('POST', '/Groups', {
      body: { displayName: 'Engineering', externalId: 'eng-guid-1', members: [{ value: ada }] },
    });
    membership = await membershipOf(conn.organizationId, ada);
    expect(membership).toMatchObject({ role: 'engineer', permissions: ['deploy:read'] });

    // Admins (by displayName, any case) has precedence.
    const admins = await conn.scim('POST', '/Groups', { body: { displayName: 'ADMINS' } });
    await conn.scim('PATCH', `/Groups/${admins.body.id}`, {
      body: patchOp({ op: 'add', path: 'members', value: [{ value: ada }] }),
    });
    expect((await membershipOf(conn.organizationId, ada)).role).toBe('admin');
    const explained = await server.api('GET', `/v1/memberships/${membership.id}/explain`);
    expect(explained.body).toMatchObject({
      object: 'membership_explanation',
      role: 'admin',
      reason: 'group_mapping',
      group: { id: admins.body.id, name: 'ADMINS' },
      mapping: { group: 'Admins', role: 'admin', precedence: 1 },
      last_change: {
        via: 'scim',
        connection_id: conn.connectionId,
        method: 'PATCH',
        path: `/Groups/${admins.body.id}`,
      },
    });

    // Renaming the group out of the mapping drops the role back to the next match.
    await conn.scim('PATCH', `/Groups/${admins.body.id}`, {
      body: patchOp({ op: 'replace', path: 'displayName', value: 'Former admins' }),
    });
    expect((await membershipOf(conn.organizationId, ada)).role).toBe('engineer');
    // Leaving every mapped group: the default role.
    await conn.scim('PATCH', `/Groups/${eng.body.id}`, {
      body: patchOp({ op: 'remove', path: `members[value eq "${ada}"]` }),
    });
    expect((await membershipOf(conn.organizationId, ada)).role).toBe('member');
    const byDefault = await server.api('GET', `/v1/memberships/${membership.id}/explain`);
    expect(byDefault.body).toMatchObject({ reason: 'default_role', default_role: 'member', role: 'member' });

    // A mapping change recomputes everyone at once.
    await conn.scim('PATCH', `/Groups/${eng.body.id}`, {
      body: patchOp({ op: 'add', path: 'members', value: [{ value: ada }] }),
    });
    await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
      body: { mappings: [{ group: 'engineering', role: 'admin' }] },
    });
    expect((await membershipOf(conn.organizationId, ada)).role).toBe('admin');
    const roleEvents = await server.ctx.db
      .selectFrom('events')
      .select('type')
      .where('organization_id', '=', conn.organizationId)
      .where('type', '=', 'membership.updated')
      .execute();
    expect(roleEvents.length).toBeGreaterThanOrEqual(5);
  });

  it('pins a role set through the API until unpinned', async () => {
    const conn = await createConnection(server, 'entra');
    const id = await scimUser(conn, 'pinned@acme.test');
    const membership = await membershipOf(conn.organizationId, id);
    await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
      body: { mappings: [{ group: 'Ops', role: 'admin' }] },
    });
    const pinned = await server.api(
      'PATCH',
      `/v1/organizations/${conn.organizationId}/memberships/${membership.id}`,
      { body: { role: 'member' } },
    );
    expect(pinned.body.role).toBe('member');
    await conn.scim('POST', '/Groups', { body: { displayName: 'Ops', members: [{ value: id }] } });
    expect((await membershipOf(conn.organizationId, id)).role).toBe('member');
    expect((await server.api('GET', `/v1/memberships/${membership.id}/explain`)).body.reason).toBe('pinned');
    const unpinned = await server.api(
      'PATCH',
      `/v1/organizations/${conn.organizationId}/memberships/${membership.id}`,
      { body: { role: null } },
    );
    expect(unpinned.body.role).toBe('admin');
    const unknown = await server.api(
      'PATCH',
      `/v1/organizations/${conn.organizationId}/memberships/${membership.id}`,
      { body: { role: 'ghost' } },
    );
    expect(unknown.status).toBe(400);
  });

  it('rejects mappings to unknown roles without changing anything', async () => {
    const conn = await createConnection(server, 'okta');
    const response = await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
      body: { mappings: [{ group: 'x', role: 'ghost' }] },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.details[0].path).toBe('mappings.0.role');
    expect(
      (await server.api('GET', `/v1/connections/${conn.connectionId}/role_mappings`)).body.mappings,
    ).toEqual([]);
  });

  it('deactivation shows as status inactive; filters by status, role and name prefix', async () => {
    const conn = await createConnection(server, 'okta');
    const alice = await scimUser(conn, 'alice@corp.test', { displayName: 'Alice Smith' });
    const bob = await scimUser(conn, 'bob@corp.test', { displayName: 'Bob Jones' });
    await conn.scim('PATCH', `/Users/${bob}`, { body: patchOp({ op: 'replace', value: { active: false } }) });
    const base = `/v1/organizations/${conn.organizationId}/memberships`;
    const inactive = await server.api('GET', `${base}?status=inactive`);
    expect(inactive.body.data.map((m: { user: { id: string } }) => m.user.id)).toEqual([bob]);
    expect(inactive.body.data[0]).toMatchObject({ status: 'inactive', user: { active: false } });
    expect(
      (await server.api('GET', `${base}?query=ali`)).body.data.map(
        (m: { user: { id: string } }) => m.user.id,
      ),
    ).toEqual([alice]);
    expect(
      (await server.api('GET', `${base}?query=JONES`)).body.data.map(
        (m: { user: { id: string } }) => m.user.id,
      ),
    ).toEqual([bob]);
    expect((await server.api('GET', `${base}?query=%25`)).body.data).toEqual([]);
    expect((await server.api('GET', `${base}?role=admin`)).body.data).toEqual([]);
    expect((await server.api('GET', `${base}?status=gone`)).status).toBe(400);
  });

  it('attribute mappings fill membership metadata, next to the Roster extension', async () => {
    const conn = await createConnection(server, 'entra');
    const id = await scimUser(conn, 'meta@corp.test', {
      title: 'CTO',
      [ENTERPRISE]: { department: 'R&D' },
      [ROSTER]: { cost_center: 'CC-9' },
    });
    expect((await membershipOf(conn.organizationId, id)).metadata).toEqual({ cost_center: 'CC-9' });
    const set = await server.api('PUT', `/v1/connections/${conn.connectionId}/attribute_mappings`, {
      body: {
        mappings: [
          { attribute: `${ENTERPRISE}:department`, key: 'department' },
          { attribute: 'title', key: 'title' },
        ],
      },
    });
    expect(set.status).toBe(200);
    expect((await membershipOf(conn.organizationId, id)).metadata).toEqual({
      cost_center: 'CC-9',
      department: 'R&D',
      title: 'CTO',
    });
    await conn.scim('PATCH', `/Users/${id}`, {
      body: patchOp({ op: 'Replace', path: `${ENTERPRISE}:department`, value: 'Sales' }),
    });
    expect((await membershipOf(conn.organizationId, id)).metadata.department).toBe('Sales');
    expect(
      (
        await server.api('PUT', `/v1/connections/${conn.connectionId}/attribute_mappings`, {
          body: { mappings: [{ attribute: 'not a path!', key: 'x' }] },
        })
      ).status,
    ).toBe(400);
  });
});

describe('API members', () => {
  it('adds, pins and removes a member who does not come from an IdP', async () => {
    const org = (await server.api('POST', '/v1/organizations', { body: { name: 'Direct' } })).body.id;
    const created = await server.api('POST', `/v1/organizations/${org}/memberships`, {
      body: {
        email: 'contractor@example.com',
        name: 'Con Tractor',
        role: 'admin',
        metadata: { vendor: 'X' },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: 'membership',
      role: 'admin',
      source: 'api',
      status: 'active',
      metadata: { vendor: 'X' },
      user: {
        email: 'contractor@example.com',
        name: 'Con Tractor',
        user_name: 'contractor@example.com',
        active: true,
      },
    });
    const again = await server.api('POST', `/v1/organizations/${org}/memberships`, {
      body: { email: 'CONTRACTOR@example.com' },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('member_exists');
    const user = await server.api('GET', `/v1/users/${created.body.user.id}`);
    expect(user.body).toMatchObject({ connection_id: null, email: 'contractor@example.com', active: true });
    expect(
      (await server.api('DELETE', `/v1/organizations/${org}/memberships/${created.body.id}`)).status,
    ).toBe(204);
    expect((await server.api('GET', `/v1/organizations/${org}/memberships/${created.body.id}`)).status).toBe(
      404,
    );
    expect((await server.api('GET', `/v1/users/${created.body.user.id}`)).status).toBe(404);
  });

  it('refuses to remove an IdP-managed member', async () => {
    const conn = await createConnection(server, 'okta');
    const id = await scimUser(conn, 'managed@corp.test');
    const membership = await membershipOf(conn.organizationId, id);
    const response = await server.api(
      'DELETE',
      `/v1/organizations/${conn.organizationId}/memberships/${membership.id}`,
    );
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('managed_by_idp');
  });

  it('validates input', async () => {
    const org = (await server.api('POST', '/v1/organizations', { body: { name: 'Valid' } })).body.id;
    const bad = await server.api('POST', `/v1/organizations/${org}/memberships`, {
      body: { email: 'not-an-email' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('email');
    expect(
      (
        await server.api('POST', `/v1/organizations/${org}/memberships`, {
          body: { email: 'a@b.co', role: 'ghost' },
        })
      ).status,
    ).toBe(400);
    expect(
      (await server.api('GET', '/v1/organizations/org_00000000000000000000000000/memberships')).status,
    ).toBe(404);
  });
});

describe('connections', () => {
  it('lists, renames, and deleting deactivates its users and revokes their sessions', async () => {
    const conn = await createConnection(server, 'okta');
    const second = await createConnection(server, 'entra', conn.organizationId);
    const list = await server.api('GET', `/v1/organizations/${conn.organizationId}/connections`);
    expect(list.body.data.map((c: { id: string }) => c.id)).toEqual([conn.connectionId, second.connectionId]);
    const renamed = await server.api('PATCH', `/v1/connections/${conn.connectionId}`, {
      body: { name: 'Okta (prod)' },
    });
    expect(renamed.body.name).toBe('Okta (prod)');

    const id = await scimUser(conn, 'leaving@corp.test');
    const membership = await membershipOf(conn.organizationId, id);
    await server.ctx.db
      .insertInto('sessions')
      .values({
        id: 'sess_conndelete00000000000000000',
        organization_id: conn.organizationId,
        user_id: id,
        membership_id: membership.id,
        expires_at: new Date(Date.now() + 60_000),
      })
      .execute();
    expect((await server.api('DELETE', `/v1/connections/${conn.connectionId}`)).status).toBe(204);
    expect((await conn.scim('GET', '/Users')).status).toBe(401);
    const after = await membershipOf(conn.organizationId, id);
    expect(after).toMatchObject({ status: 'inactive', user: { active: false } });
    const session = await server.ctx.db
      .selectFrom('sessions')
      .select(['revoked_at', 'revoke_reason'])
      .where('id', '=', 'sess_conndelete00000000000000000')
      .executeTakeFirstOrThrow();
    expect(session).toMatchObject({ revoked_at: expect.any(Date), revoke_reason: 'connection_deleted' });
    expect((await server.api('GET', `/v1/connections/${conn.connectionId}`)).body.state).toBe('deleted');
    expect((await server.api('DELETE', `/v1/connections/${conn.connectionId}`)).status).toBe(404);
  });

  it('reports sync health from the SCIM request log', async () => {
    const conn = await createConnection(server, 'entra');
    await scimUser(conn, 'health@corp.test');
    await conn.scim('GET', `/Users?filter=${encodeURIComponent('userName eq')}`);
    // Unauthenticated: not the tenant's request, so not in its log (anyone could write lines there).
    await conn.scim('GET', '/Users', { token: 'rst_scim_wrong' });
    const health = await server.api('GET', `/v1/connections/${conn.connectionId}/sync?failures=5`);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      object: 'sync_health',
      connection_id: conn.connectionId,
      last_request_at: expect.any(String),
      last_success_at: expect.any(String),
      last_hour: { requests: 2, errors: 1 },
      last_day: { requests: 2, errors: 1 },
    });
    expect(health.body.last_hour.error_rate).toBeCloseTo(1 / 2);
    expect(
      health.body.recent_failures.map((f: { status: number; scim_type: string | null }) => [
        f.status,
        f.scim_type,
      ]),
    ).toEqual([[400, 'invalidFilter']]);
  });
});

describe('directory', () => {
  it('lists and filters users and groups, with member counts and group members', async () => {
    const conn = await createConnection(server, 'okta');
    const a = await scimUser(conn, 'dir.a@corp.test');
    const b = await scimUser(conn, 'dir.b@corp.test');
    await conn.scim('PATCH', `/Users/${b}`, { body: patchOp({ op: 'replace', value: { active: false } }) });
    const group = await conn.scim('POST', '/Groups', {
      body: { displayName: 'Dir group', members: [{ value: a }, { value: b }] },
    });

    const byConnection = await server.api('GET', `/v1/users?connection_id=${conn.connectionId}`);
    expect(byConnection.body.data.map((u: { id: string }) => u.id)).toEqual([a, b]);
    expect(
      (await server.api('GET', `/v1/users?connection_id=${conn.connectionId}&active=false`)).body.data.map(
        (u: { id: string }) => u.id,
      ),
    ).toEqual([b]);
    expect(
      (await server.api('GET', '/v1/users?email=DIR.A@corp.test')).body.data.map((u: { id: string }) => u.id),
    ).toEqual([a]);
    expect(
      (await server.api('GET', '/v1/users?user_name=dir.b@CORP.test')).body.data.map(
        (u: { id: string }) => u.id,
      ),
    ).toEqual([b]);
    expect((await server.api('GET', '/v1/users?organization_id=nope')).status).toBe(400);
    const user = await server.api('GET', `/v1/users/${a}`);
    expect(user.body).toMatchObject({
      object: 'user',
      user_name: 'dir.a@corp.test',
      raw_attributes: { userName: 'dir.a@corp.test' },
    });

    const groups = await server.api('GET', `/v1/groups?organization_id=${conn.organizationId}`);
    expect(groups.body.data).toEqual([
      expect.objectContaining({ id: group.body.id, name: 'Dir group', member_count: 2 }),
    ]);
    expect((await server.api('GET', `/v1/groups/${group.body.id}`)).body.member_count).toBe(2);
    const members = await server.api('GET', `/v1/groups/${group.body.id}/members?limit=1`);
    expect(members.body.data.map((u: { id: string }) => u.id)).toEqual([a]);
    const rest = await server.api(
      'GET',
      `/v1/groups/${group.body.id}/members?limit=1&after=${members.body.next_cursor}`,
    );
    expect(rest.body.data.map((u: { id: string }) => u.id)).toEqual([b]);
    expect(rest.body.next_cursor).toBeNull();
  });
});

describe('pagination while writes happen', () => {
  it('sees every member that existed at the start exactly once', async () => {
    const org = (await server.api('POST', '/v1/organizations', { body: { name: 'Busy' } })).body.id;
    const initial = [];
    for (let i = 0; i < 30; i++) {
      initial.push(
        (
          await server.api('POST', `/v1/organizations/${org}/memberships`, {
            body: { email: `m${i}@busy.test` },
          })
        ).body.id,
      );
    }
    const seen: string[] = [];
    let after: string | null = null;
    let writes = 0;
    do {
      const page = await server.api(
        'GET',
        `/v1/organizations/${org}/memberships?limit=7${after ? `&after=${after}` : ''}`,
      );
      seen.push(...page.body.data.map((m: { id: string }) => m.id));
      after = page.body.next_cursor;
      // Inserts while walking the pages.
      await server.api('POST', `/v1/organizations/${org}/memberships`, {
        body: { email: `late${writes++}@busy.test` },
      });
    } while (after);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of initial) expect(seen).toContain(id);
  });
});

describe('idempotency keys', () => {
  it('replays the first response for the same key and body, and refuses another body', async () => {
    const headers = { 'idempotency-key': 'create-acme-1' };
    const first = await server.api('POST', '/v1/organizations', { body: { name: 'Once' }, headers });
    const second = await server.api('POST', '/v1/organizations', { body: { name: 'Once' }, headers });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const all = await server.api('GET', '/v1/organizations?limit=100');
    expect(all.body.data.filter((o: { name: string }) => o.name === 'Once')).toHaveLength(1);
    const reused = await server.api('POST', '/v1/organizations', { body: { name: 'Other' }, headers });
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe('idempotency_key_reused');
  });

  it('runs a request once when retries race, and replays errors too', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 6 }, () =>
        server.api('POST', '/v1/roles', {
          body: { key: 'raced', name: 'Raced' },
          headers: { 'idempotency-key': 'race-1' },
        }),
      ),
    );
    expect(attempts.filter((r) => r.status === 201).length).toBeGreaterThanOrEqual(1);
    for (const r of attempts) expect([201, 409]).toContain(r.status);
    expect(
      attempts.filter((r) => r.status === 409).every((r) => r.body.error.code === 'idempotency_in_progress'),
    ).toBe(true);
    const replay = await server.api('POST', '/v1/roles', {
      body: { key: 'raced', name: 'Raced' },
      headers: { 'idempotency-key': 'race-1' },
    });
    expect(replay.status).toBe(201);
    const failing = { body: { key: 'Bad Key', name: 'x' }, headers: { 'idempotency-key': 'bad-1' } };
    expect((await server.api('POST', '/v1/roles', failing)).status).toBe(400);
    const replayedError = await server.api('POST', '/v1/roles', failing);
    expect(replayedError.status).toBe(400);
    expect(replayedError.headers.get('idempotent-replayed')).toBe('true');
  });
});
