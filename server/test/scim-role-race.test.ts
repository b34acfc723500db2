import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, patchOp, userBody } from './scim-helpers.js';

/**
 * Concurrent changes of DIFFERENT mapped groups that share members. Each change re-resolves the
 * roles of the members it touched from the groups it sees; if two such changes ran at once, each
 * would miss the other's uncommitted membership change and the last writer would win: a member
 * removed from both of its admin groups at once kept `admin`. Every round below races such
 * changes; whatever order they commit in, each member's role must be the one its final groups and
 * the mappings imply, and the feed's last membership.updated for it must say that role. PGlite
 * runs one statement at a time, so the race can only show on PostgreSQL.
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const ROUNDS = 12;

describe('role resolution under concurrent changes of different mapped groups', () => {
  it('a member ends with the role its final groups imply, and the feed agrees', async () => {
    const conn = await createConnection(server, 'okta');
    const role = await server.api('POST', '/v1/roles', { body: { key: 'race_viewer', name: 'Race viewer' } });
    expect(role.status, role.text).toBe(201);
    const mappings = [
      { group: 'Race Admins A', role: 'admin' },
      { group: 'Race Admins B', role: 'admin' },
      { group: 'Race Promoted', role: 'admin' },
      { group: 'Race Viewers', role: 'race_viewer' },
    ];
    const mapped = await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
      body: { mappings },
    });
    expect(mapped.status, mapped.text).toBe(200);
    const users = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        conn.scim('POST', '/Users', { body: userBody(`race${i}@example.com`) }),
      ),
    );
    const u = users.map((r) => r.body.id as string);
    const group = async (displayName: string) => {
      const created = await conn.scim('POST', '/Groups', { body: { displayName } });
      expect(created.status, created.text).toBe(201);
      return created.body.id as string;
    };
    let a = await group('Race Admins A');
    const b = await group('Race Admins B');
    const c = await group('Race Viewers');
    const r = await group('Race Staging');
    const members = (ids: string[]) => ids.map((value) => ({ value }));
    const patch = (id: string, ...ops: unknown[]) =>
      conn.scim('PATCH', `/Groups/${id}`, { body: patchOp(...ops) });

    /** The role of each user as the stored groups and the mappings imply it (precedence = order). */
    const implied = async () => {
      const rows = await server.ctx.db
        .selectFrom('group_members as gm')
        .innerJoin('groups as g', 'g.id', 'gm.group_id')
        .select(['gm.user_id', 'g.display_name'])
        .where('g.deleted_at', 'is', null)
        .where('gm.user_id', 'in', u)
        .execute();
      return new Map(
        u.map((id) => {
          const names = new Set(
            rows.filter((row) => row.user_id === id).map((row) => row.display_name.toLowerCase()),
          );
          return [id, mappings.find((m) => names.has(m.group.toLowerCase()))?.role ?? 'member'];
        }),
      );
    };

    for (let round = 0; round < ROUNDS; round++) {
      // Start: u0,u1 in A and B (admin twice); u2,u3 in A; u4,u5 in A and in the unmapped R.
      if (round % 2 === 0 && round > 0) a = await group('Race Admins A');
      for (const [id, ids] of [
        [a, u],
        [b, [u[0]!, u[1]!]],
        [c, []],
      ] as const) {
        expect((await patch(id, { op: 'replace', path: 'members', value: members([...ids]) })).status).toBe(
          204,
        );
      }
      const reset = await conn.scim('PUT', `/Groups/${r}`, {
        body: { displayName: 'Race Staging', members: members([u[4]!, u[5]!]) },
      });
      expect(reset.status, reset.text).toBe(200);

      // At once: A drops everyone (odd rounds: A is deleted), B drops u0,u1 (both demote), C
      // (viewer) gains u2,u3, R is renamed to a mapped name (u4,u5 stay admin through it).
      const replies = await Promise.all([
        round % 2 === 0
          ? patch(a, { op: 'remove', path: 'members', value: members(u) })
          : conn.scim('DELETE', `/Groups/${a}`),
        patch(b, { op: 'remove', path: 'members', value: members([u[0]!, u[1]!]) }),
        patch(c, { op: 'add', path: 'members', value: members([u[2]!, u[3]!]) }),
        patch(r, { op: 'replace', path: 'displayName', value: 'Race Promoted' }),
      ]);
      for (const reply of replies) expect(reply.status, reply.text).toBeLessThan(300);

      const expected = await implied();
      expect([...expected.values()]).toEqual([
        'member',
        'member',
        'race_viewer',
        'race_viewer',
        'admin',
        'admin',
      ]);
      const stored = await server.ctx.db
        .selectFrom('memberships')
        .select(['user_id', 'role_key'])
        .where('user_id', 'in', u)
        .execute();
      for (const m of stored)
        expect(m.role_key, `round ${round}: ${m.user_id}`).toBe(expected.get(m.user_id));

      // The feed: every membership.updated is a real change, and the last one says the stored role.
      await server.sequencer.flush();
      const events = await server.ctx.db
        .selectFrom('events')
        .select(['data'])
        .where('organization_id', '=', conn.organizationId)
        .where('type', '=', 'membership.updated')
        .orderBy('seq')
        .execute();
      const told = new Map(u.map((id) => [id, 'member']));
      for (const event of events) {
        const data = event.data as { user: { id: string }; role: string };
        expect(data.role, `round ${round}: ${data.user.id}`).not.toBe(told.get(data.user.id));
        told.set(data.user.id, data.role);
      }
      for (const id of u) expect(told.get(id), `round ${round}: feed of ${id}`).toBe(expected.get(id));
    }
  });
});
