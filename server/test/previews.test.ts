import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestResponse, type TestServer } from './harness.js';
import { createConnection, patchOp, type TestConnection, userBody } from './scim-helpers.js';

/** A JSON response body (harness.ts types them loosely). */
type Body = TestResponse['body'];

/**
 * What-if previews answer exactly what the update then does, and change nothing themselves (no
 * row, no event).
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  for (const key of ['finance', 'viewer']) {
    expect((await server.api('POST', '/v1/roles', { body: { key, name: key } })).status).toBe(201);
  }
});
afterAll(async () => {
  await server?.close();
});

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

async function members(organizationId: string) {
  const page = await server.api('GET', `/v1/organizations/${organizationId}/memberships?limit=100`);
  return page.body.data as {
    id: string;
    role: string;
    metadata: Record<string, unknown>;
    user: { id: string };
  }[];
}

/** Every stored row the previews could touch, and the number of events written. */
async function state(organizationId: string) {
  await server.sequencer.flush();
  const rows = await server.ctx.db
    .selectFrom('memberships')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('id')
    .execute();
  const mappings = await server.ctx.db.selectFrom('role_mappings').selectAll().orderBy('id').execute();
  const connections = await server.ctx.db.selectFrom('connections').selectAll().orderBy('id').execute();
  const organizations = await server.ctx.db.selectFrom('organizations').selectAll().orderBy('id').execute();
  const events = await server.ctx.db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return JSON.stringify({ rows, mappings, connections, organizations, events: Number(events.n) });
}

async function directory(): Promise<{ conn: TestConnection; ids: Record<string, string> }> {
  const conn = await createConnection(server, 'okta');
  const ids: Record<string, string> = {};
  for (const [name, department] of [
    ['ada', 'Finance'],
    ['bob', 'R&D'],
    ['cy', undefined],
    ['dee', 'R&D'],
  ] as const) {
    const extra = department ? { [ENTERPRISE]: { department } } : {};
    const created = await conn.scim('POST', '/Users', { body: userBody(`${name}@preview.test`, extra) });
    expect(created.status).toBe(201);
    ids[name] = created.body.id;
  }
  const group = (displayName: string, users: string[]) =>
    conn.scim('POST', '/Groups', {
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        displayName,
        members: users.map((value) => ({ value })),
      },
    });
  expect((await group('Finance', [ids.ada!])).status).toBe(201);
  expect((await group('Engineering', [ids.bob!, ids.dee!])).status).toBe(201);
  const mapped = await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
    body: { mappings: [{ group: 'Finance', role: 'finance' }] },
  });
  expect(mapped.status).toBe(200);
  return { conn, ids };
}

describe('what-if previews', () => {
  it('previews a role-mapping change: who, from what to what, why; then the update does exactly that', async () => {
    const { conn, ids } = await directory();
    // dee's role is pinned through the API: a mapping change leaves it alone.
    const dee = (await members(conn.organizationId)).find((m) => m.user.id === ids.dee)!;
    await server.api('PATCH', `/v1/organizations/${conn.organizationId}/memberships/${dee.id}`, {
      body: { role: 'viewer' },
    });
    const body = {
      mappings: [
        { group: 'engineering', role: 'admin' },
        { group: 'Finance', role: 'viewer' },
      ],
    };
    const before = await state(conn.organizationId);
    const preview = await server.api('POST', `/v1/connections/${conn.connectionId}/role_mappings/preview`, {
      body,
    });
    expect(preview.status, preview.text).toBe(200);
    expect(await state(conn.organizationId)).toBe(before);
    expect(preview.body).toMatchObject({
      object: 'change_preview',
      organization_id: conn.organizationId,
      connection_id: conn.connectionId,
      members: 4,
      role_changes: 2,
      metadata_changes: 0,
    });
    const byUser = new Map(preview.body.changes.map((c: Body) => [c.user.id, c]));
    expect(byUser.get(ids.ada)).toMatchObject({
      user: { user_name: 'ada@preview.test' },
      role: {
        from: 'finance',
        to: 'viewer',
        reason: 'group_mapping',
        group: { name: 'Finance' },
        mapping: { group: 'Finance', role: 'viewer', precedence: 2 },
      },
    });
    expect(byUser.get(ids.bob)).toMatchObject({
      role: {
        from: 'member',
        to: 'admin',
        reason: 'group_mapping',
        mapping: { group: 'engineering', precedence: 1 },
      },
    });
    expect(byUser.has(ids.cy)).toBe(false);
    expect(byUser.has(ids.dee)).toBe(false);

    const roles = new Map((await members(conn.organizationId)).map((m) => [m.user.id, m.role]));
    expect(
      (await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, { body })).status,
    ).toBe(200);
    const after = new Map((await members(conn.organizationId)).map((m) => [m.user.id, m.role]));
    const changed = [...after].filter(([user, role]) => roles.get(user) !== role);
    expect(new Map(changed)).toEqual(new Map(preview.body.changes.map((c: Body) => [c.user.id, c.role.to])));
  });

  it('previews an attribute-mapping change, and the update matches it', async () => {
    const { conn, ids } = await directory();
    const body = { mappings: [{ attribute: `${ENTERPRISE}:department`, key: 'department' }] };
    const before = await state(conn.organizationId);
    const preview = await server.api(
      'POST',
      `/v1/connections/${conn.connectionId}/attribute_mappings/preview`,
      {
        body,
      },
    );
    expect(preview.status, preview.text).toBe(200);
    expect(await state(conn.organizationId)).toBe(before);
    expect(preview.body).toMatchObject({ members: 4, role_changes: 0, metadata_changes: 3 });
    const ada = preview.body.changes.find((c: Body) => c.user.id === ids.ada);
    expect(ada.metadata).toEqual({ from: {}, to: { department: 'Finance' }, changed_keys: ['department'] });
    expect(ada.role).toBeUndefined();
    expect(
      (await server.api('PUT', `/v1/connections/${conn.connectionId}/attribute_mappings`, { body })).status,
    ).toBe(200);
    const metadata = new Map((await members(conn.organizationId)).map((m) => [m.user.id, m.metadata]));
    for (const change of preview.body.changes)
      expect(metadata.get(change.user.id)).toEqual(change.metadata.to);
    expect(metadata.get(ids.cy!)).toEqual({});
  });

  it('previews a new default role; the update then moves exactly the default-role members', async () => {
    const { conn, ids } = await directory();
    const api = await server.api('POST', `/v1/organizations/${conn.organizationId}/memberships`, {
      body: { email: 'api@preview.test' },
    });
    const pinned = await server.api('POST', `/v1/organizations/${conn.organizationId}/memberships`, {
      body: { email: 'pinned@preview.test', role: 'admin' },
    });
    const before = await state(conn.organizationId);
    const preview = await server.api('POST', `/v1/organizations/${conn.organizationId}/preview`, {
      body: { default_role: 'viewer' },
    });
    expect(preview.status, preview.text).toBe(200);
    expect(await state(conn.organizationId)).toBe(before);
    expect(preview.body).toMatchObject({ connection_id: null, members: 6, role_changes: 4 });
    const moved = new Set(preview.body.changes.map((c: Body) => c.user.id));
    expect(moved).toEqual(new Set([ids.bob, ids.cy, ids.dee, api.body.user.id]));
    expect(preview.body.changes[0].role).toMatchObject({
      from: 'member',
      to: 'viewer',
      reason: 'default_role',
      default_role: 'viewer',
    });

    const patched = await server.api('PATCH', `/v1/organizations/${conn.organizationId}`, {
      body: { default_role: 'viewer' },
    });
    expect(patched.status).toBe(200);
    const roles = new Map((await members(conn.organizationId)).map((m) => [m.user.id, m.role]));
    for (const user of moved) expect(roles.get(user as string)).toBe('viewer');
    expect(roles.get(ids.ada!)).toBe('finance');
    expect(roles.get(pinned.body.user.id)).toBe('admin');
    // A new IdP user gets the new default too, and explain agrees.
    const late = await conn.scim('POST', '/Users', { body: userBody('late@preview.test') });
    expect(roles.size + 1).toBe((await members(conn.organizationId)).length);
    expect((await members(conn.organizationId)).find((m) => m.user.id === late.body.id)!.role).toBe('viewer');
  });

  it('answers bad previews in the API error format, changing nothing', async () => {
    const { conn } = await directory();
    const before = await state(conn.organizationId);
    const unknownRole = await server.api(
      'POST',
      `/v1/connections/${conn.connectionId}/role_mappings/preview`,
      {
        body: { mappings: [{ group: 'x', role: 'nope' }] },
      },
    );
    expect(unknownRole.status).toBe(400);
    expect(unknownRole.body.error.details[0]).toMatchObject({
      path: 'mappings.0.role',
      code: 'unknown_role',
    });
    const unknownDefault = await server.api('POST', `/v1/organizations/${conn.organizationId}/preview`, {
      body: { default_role: 'nope' },
    });
    expect(unknownDefault.status).toBe(400);
    expect(unknownDefault.body.error.details[0].path).toBe('default_role');
    const badAttribute = await server.api(
      'POST',
      `/v1/connections/${conn.connectionId}/attribute_mappings/preview`,
      {
        body: { mappings: [{ attribute: 'not a path', key: 'k' }] },
      },
    );
    expect(badAttribute.status).toBe(400);
    const missing = await server.api(
      'POST',
      '/v1/connections/conn_00000000000000000000000000/role_mappings/preview',
      {
        body: { mappings: [] },
      },
    );
    expect(missing.status).toBe(404);
    expect(await state(conn.organizationId)).toBe(before);
    // A slug another organization has: 409, as the update would answer.
    const other = await server.api('POST', '/v1/organizations', { body: { name: 'Taken slug org' } });
    const taken = await server.api('POST', `/v1/organizations/${conn.organizationId}/preview`, {
      body: { slug: other.body.slug },
    });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('slug_taken');
  });
});

describe('a group change while a preview runs', () => {
  it('keeps the group change and leaves the preview without effect', async () => {
    const { conn, ids } = await directory();
    const body = { mappings: [{ group: 'Engineering', role: 'admin' }] };
    const [preview, patched] = await Promise.all([
      server.api('POST', `/v1/connections/${conn.connectionId}/role_mappings/preview`, { body }),
      conn.scim('PATCH', `/Users/${ids.cy}`, {
        body: patchOp({ op: 'replace', path: 'title', value: 'CTO' }),
      }),
    ]);
    expect(preview.status).toBe(200);
    expect(patched.status).toBe(200);
    const roles = new Map((await members(conn.organizationId)).map((m) => [m.user.id, m.role]));
    expect(roles.get(ids.bob!)).toBe('member');
    expect(roles.get(ids.ada!)).toBe('finance');
  });
});
