import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, eventsOf, memberCount, patchOp, userBody } from './scim-helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('SCIM under concurrency', () => {
  it('20 identical POSTs (in varying case) create exactly one user', async () => {
    const conn = await createConnection(server, 'okta');
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        conn.scim('POST', '/Users', { body: userBody(i % 2 ? 'race@example.com' : 'RACE@example.com') }),
      ),
    );
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 409)).toHaveLength(19);
    for (const r of responses.filter((x) => x.status === 409)) expect(r.body.scimType).toBe('uniqueness');
    const users = await server.ctx.db
      .selectFrom('users')
      .select('id')
      .where('connection_id', '=', conn.connectionId)
      .execute();
    expect(users).toHaveLength(1);
    const memberships = await server.ctx.db
      .selectFrom('memberships')
      .select('id')
      .where('user_id', '=', users[0]!.id)
      .execute();
    expect(memberships).toHaveLength(1);
    const events = await eventsOf(server.ctx.db, conn.organizationId, ['user.created']);
    expect(events).toHaveLength(1);
  });

  it('concurrent PATCHes adding different members to one group all take effect', async () => {
    const conn = await createConnection(server, 'entra');
    const users = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        conn.scim('POST', '/Users', { body: userBody(`member${i}@example.com`) }),
      ),
    );
    const ids = users.map((u) => u.body.id as string);
    const group = await conn.scim('POST', '/Groups', { body: { displayName: 'Concurrent' } });
    const groupId: string = group.body.id;
    const batches = [0, 1, 2, 3, 4, 5].map((b) => ids.slice(b * 4, b * 4 + 4));
    const patches = await Promise.all([
      ...batches.map((batch) =>
        conn.scim('PATCH', `/Groups/${groupId}`, {
          body: patchOp({ op: 'Add', path: 'members', value: batch.map((value) => ({ value })) }),
        }),
      ),
      // Re-adding existing members concurrently is a success, not a conflict.
      conn.scim('PATCH', `/Groups/${groupId}`, {
        body: patchOp({ op: 'add', path: 'members', value: [{ value: ids[0] }] }),
      }),
    ]);
    for (const p of patches) expect(p.status).toBe(204);
    const members = (await conn.scim('GET', `/Groups/${groupId}`)).body.members.map(
      (m: { value: string }) => m.value,
    );
    expect(members.sort()).toEqual([...ids].sort());
    expect(await memberCount(server.ctx.db, groupId)).toBe(24);

    // Concurrent removals of disjoint halves leave an empty group with an exact count.
    await Promise.all([
      conn.scim('PATCH', `/Groups/${groupId}`, {
        body: patchOp({ op: 'Remove', path: 'members', value: ids.slice(0, 12).map((value) => ({ value })) }),
      }),
      conn.scim('PATCH', `/Groups/${groupId}`, {
        body: patchOp(...ids.slice(12).map((id) => ({ op: 'remove', path: `members[value eq "${id}"]` }))),
      }),
    ]);
    expect((await conn.scim('GET', `/Groups/${groupId}`)).body.members).toEqual([]);
    expect(await memberCount(server.ctx.db, groupId)).toBe(0);
  });

  it('a role mapping set while members join the mapped group applies to every one of them', async () => {
    // The mapping's recomputation and the group change each read what the other writes: without
    // serialising them, members added while the mapping commits keep the default role.
    const conn = await createConnection(server, 'entra');
    const users = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        conn.scim('POST', '/Users', { body: userBody(`mapped${i}@example.com`) }),
      ),
    );
    const ids = users.map((u) => u.body.id as string);
    const group = await conn.scim('POST', '/Groups', { body: { displayName: 'Raced Admins' } });
    const groupId: string = group.body.id;
    const batches = Array.from({ length: 10 }, (_, b) => ids.slice(b * 4, b * 4 + 4));
    const [mapped, ...patches] = await Promise.all([
      server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
        body: { mappings: [{ group: 'raced admins', role: 'admin' }] },
      }),
      ...batches.map((batch) =>
        conn.scim('PATCH', `/Groups/${groupId}`, {
          body: patchOp({ op: 'Add', path: 'members', value: batch.map((value) => ({ value })) }),
        }),
      ),
    ]);
    expect(mapped!.status).toBe(200);
    for (const patch of patches) expect(patch.status).toBe(204);
    const roles = await server.ctx.db
      .selectFrom('memberships')
      .select(['user_id', 'role_key'])
      .where('user_id', 'in', ids)
      .execute();
    expect(roles).toHaveLength(40);
    expect(roles.filter((r) => r.role_key !== 'admin')).toEqual([]);
  });

  it('concurrent PATCHes of one user apply one after the other', async () => {
    const conn = await createConnection(server, 'entra');
    const created = await conn.scim('POST', '/Users', { body: userBody('serial@example.com') });
    const id: string = created.body.id;
    const attributes = [
      'title',
      'nickName',
      'displayName',
      'locale',
      'timezone',
      'userType',
      'preferredLanguage',
      'profileUrl',
    ];
    const results = await Promise.all(
      attributes.map((path) =>
        conn.scim('PATCH', `/Users/${id}`, { body: patchOp({ op: 'Replace', path, value: `v-${path}` }) }),
      ),
    );
    for (const r of results) expect(r.status).toBe(200);
    const user = (await conn.scim('GET', `/Users/${id}`)).body;
    for (const path of attributes) expect(user[path]).toBe(`v-${path}`);
    expect(user.meta.version).toBe(`W/"${attributes.length + 1}"`);
    // The feed has each change once, in the order they were applied: every user.updated event
    // carries one more of the attributes than the one before it.
    await server.sequencer.flush();
    const feed = await server.api('GET', `/v1/events?types=user.updated&limit=1000`);
    const mine = feed.body.data.filter((e: { data: { id: string } }) => e.data.id === id);
    expect(
      mine.map(
        (e: { data: { raw_attributes: Record<string, unknown> } }) =>
          attributes.filter((path) => e.data.raw_attributes[path] !== undefined).length,
      ),
    ).toEqual(attributes.map((_, i) => i + 1));
  });

  it('concurrent DELETEs of users who share groups all succeed, with exact member counts', async () => {
    // Each deletion updates the member count of every group the user is in. Without a fixed lock
    // order, two deletions that take two shared groups in opposite orders deadlock on PostgreSQL,
    // and one of them failed with 500 (bench:scim's delete phase found it at 16 concurrent).
    const conn = await createConnection(server, 'entra');
    const users = await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        conn.scim('POST', '/Users', { body: userBody(`shared${i}@example.com`) }),
      ),
    );
    const ids = users.map((u) => u.body.id as string);
    const groups: string[] = [];
    for (let g = 0; g < 6; g++) {
      const group = await conn.scim('POST', '/Groups', { body: { displayName: `Shared ${g}` } });
      groups.push(group.body.id);
      // Every user in every group, added in a different order per group.
      const order = g % 2 ? [...ids].reverse() : ids;
      const added = await conn.scim('PATCH', `/Groups/${group.body.id}`, {
        body: patchOp({ op: 'add', path: 'members', value: order.map((value) => ({ value })) }),
      });
      expect(added.status).toBe(204);
    }
    const deletions = await Promise.all(ids.map((id) => conn.scim('DELETE', `/Users/${id}`)));
    expect(deletions.map((d) => d.status)).toEqual(ids.map(() => 204));
    const counts = await Promise.all(groups.map((group) => memberCount(server.ctx.db, group)));
    expect(counts).toEqual(groups.map(() => 0));
    const left = await server.ctx.db
      .selectFrom('group_members')
      .select('user_id')
      .where('group_id', 'in', groups)
      .execute();
    expect(left).toHaveLength(0);
    // Concurrent deletions are written in batches; the feed still reads as one deletion after the
    // other: each user's events together, in the locking path's order, one `group.user_removed`
    // per group.
    const events = await eventsOf(server.ctx.db, conn.organizationId, [
      'group.user_removed',
      'membership.deleted',
      'user.deleted',
    ]);
    const userOf = (e: (typeof events)[number]) => {
      const data = e.data as { id?: string; user?: { id: string } };
      return e.type === 'user.deleted' ? data.id! : data.user!.id;
    };
    const perUser = ['group.user_removed', 'membership.deleted', 'user.deleted'];
    const expected = [...Array<string>(groups.length).fill('group.user_removed'), ...perUser.slice(1)];
    expect(events).toHaveLength(ids.length * expected.length);
    const seen = new Set<string>();
    for (let i = 0; i < events.length; i += expected.length) {
      const block = events.slice(i, i + expected.length);
      const user = userOf(block[0]!);
      expect(seen.has(user)).toBe(false);
      seen.add(user);
      expect(block.map((e) => e.type)).toEqual(expected);
      expect(block.map(userOf)).toEqual(expected.map(() => user));
      const removedFrom = block
        .filter((e) => e.type === 'group.user_removed')
        .map((e) => (e.data as { group: { id: string } }).group.id);
      expect(removedFrom.sort()).toEqual([...groups].sort());
    }
    expect([...seen].sort()).toEqual([...ids].sort());
  });

  it('a member add racing the deletion of that user never leaves the deleted user in a group', async () => {
    // A group PATCH found the user live in its snapshot and inserted the member row; a deletion
    // whose snapshot was older than that commit removed only the member rows it saw, so the deleted
    // user stayed in the group, counted in member_count. Many rounds of one DELETE racing adds of
    // that user to four groups (it is already in the first: a re-add, which the deletion locks).
    const conn = await createConnection(server, 'okta');
    const stayer = (await conn.scim('POST', '/Users', { body: userBody('stays@example.com') })).body.id;
    const groups: string[] = [];
    for (let g = 0; g < 4; g++) {
      const group = await conn.scim('POST', '/Groups', {
        body: { displayName: `Racing ${g}`, members: [{ value: stayer }] },
      });
      groups.push(group.body.id);
    }
    const add = (group: string, id: string) =>
      conn.scim('PATCH', `/Groups/${group}`, {
        body: patchOp({ op: 'add', path: 'members', value: [{ value: id }] }),
      });
    const racers: string[] = [];
    for (let round = 0; round < 30; round++) {
      const id: string = (await conn.scim('POST', '/Users', { body: userBody(`racer${round}@example.com`) }))
        .body.id;
      racers.push(id);
      expect((await add(groups[0]!, id)).status).toBe(204);
      const [deleted, ...adds] = await Promise.all([
        conn.scim('DELETE', `/Users/${id}`),
        ...groups.map((group) => add(group, id)),
      ]);
      expect(deleted!.status).toBe(204);
      expect(adds.map((a) => a.status)).toEqual(groups.map(() => 204));
    }
    for (const group of groups) {
      const got = (await conn.scim('GET', `/Groups/${group}`)).body;
      expect(got.members.map((m: { value: string }) => m.value)).toEqual([stayer]);
      expect(await memberCount(server.ctx.db, group)).toBe(1);
    }
    // The feed agrees: every racer that joined a group left it again.
    const moves = await eventsOf(server.ctx.db, conn.organizationId, [
      'group.user_added',
      'group.user_removed',
    ]);
    const inGroup = new Set<string>();
    for (const e of moves) {
      const data = e.data as { group: { id: string }; user: { id: string } };
      const key = `${data.group.id} ${data.user.id}`;
      if (e.type === 'group.user_added') {
        expect(inGroup.has(key)).toBe(false);
        inGroup.add(key);
      } else {
        expect(inGroup.delete(key)).toBe(true);
      }
    }
    expect([...inGroup].sort()).toEqual(groups.map((g) => `${g} ${stayer}`).sort());
  });
});

describe('user lifecycle side effects', () => {
  it('DELETE removes the user from its groups, its membership, and revokes sessions, with events', async () => {
    const conn = await createConnection(server, 'okta');
    const user = await conn.scim('POST', '/Users', { body: userBody('leaver@example.com') });
    const stayer = await conn.scim('POST', '/Users', { body: userBody('stayer@example.com') });
    const id: string = user.body.id;
    const groups = await Promise.all(
      ['A', 'B'].map((name) =>
        conn.scim('POST', '/Groups', {
          body: { displayName: name, members: [{ value: id }, { value: stayer.body.id }] },
        }),
      ),
    );
    const membership = await server.ctx.db
      .selectFrom('memberships')
      .select('id')
      .where('user_id', '=', id)
      .executeTakeFirstOrThrow();
    await server.ctx.db
      .insertInto('sessions')
      .values({
        id: 'sess_lifecycle0000000000000000000',
        organization_id: conn.organizationId,
        user_id: id,
        membership_id: membership.id,
        expires_at: new Date(Date.now() + 60_000),
      })
      .execute();

    expect((await conn.scim('DELETE', `/Users/${id}`)).status).toBe(204);
    for (const g of groups) {
      const got = (await conn.scim('GET', `/Groups/${g.body.id}`)).body;
      expect(got.members.map((m: { value: string }) => m.value)).toEqual([stayer.body.id]);
      expect(await memberCount(server.ctx.db, g.body.id)).toBe(1);
    }
    expect(
      await server.ctx.db.selectFrom('memberships').select('id').where('user_id', '=', id).execute(),
    ).toEqual([]);
    // The session went with the membership; its revocation is on the feed.
    const types = (await eventsOf(server.ctx.db, conn.organizationId)).map((e) => e.type);
    const tail = types.slice(types.lastIndexOf('group.user_added') + 1);
    expect(tail).toEqual([
      'session.revoked',
      'group.user_removed',
      'group.user_removed',
      'membership.deleted',
      'user.deleted',
    ]);
  });

  it('a deactivation and its session revocation commit together, or not at all', async () => {
    const conn = await createConnection(server, 'entra');
    const user = await conn.scim('POST', '/Users', { body: userBody('atomic@example.com') });
    const id: string = user.body.id;
    const membership = await server.ctx.db
      .selectFrom('memberships')
      .select('id')
      .where('user_id', '=', id)
      .executeTakeFirstOrThrow();
    await server.ctx.db
      .insertInto('sessions')
      .values({
        id: 'sess_atomic000000000000000000000',
        organization_id: conn.organizationId,
        user_id: id,
        membership_id: membership.id,
        expires_at: new Date(Date.now() + 60_000),
      })
      .execute();
    // A PATCH that deactivates and then fails on a later operation changes nothing.
    const failed = await conn.scim('PATCH', `/Users/${id}`, {
      body: patchOp(
        { op: 'Replace', path: 'active', value: 'False' },
        { op: 'Replace', path: 'nope', value: 1 },
      ),
    });
    expect(failed.status).toBe(400);
    const session = () =>
      server.ctx.db
        .selectFrom('sessions')
        .select('revoked_at')
        .where('id', '=', 'sess_atomic000000000000000000000')
        .executeTakeFirstOrThrow();
    expect((await session()).revoked_at).toBeNull();
    expect((await conn.scim('GET', `/Users/${id}`)).body.active).toBe(true);

    await conn.scim('PATCH', `/Users/${id}`, {
      body: patchOp({ op: 'Replace', path: 'active', value: 'False' }),
    });
    expect((await session()).revoked_at).not.toBeNull();
    const membershipRow = await server.ctx.db
      .selectFrom('memberships')
      .select('status')
      .where('user_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(membershipRow.status).toBe('inactive');
  });

  it('a repeated identical PATCH changes nothing and emits nothing (Entra re-sends every cycle)', async () => {
    const conn = await createConnection(server, 'entra');
    const user = await conn.scim('POST', '/Users', { body: userBody('idem@example.com') });
    const body = patchOp({ op: 'Replace', path: 'displayName', value: 'Same' });
    await conn.scim('PATCH', `/Users/${user.body.id}`, { body });
    const count = async () => (await eventsOf(server.ctx.db, conn.organizationId)).length;
    const before = await count();
    const again = await conn.scim('PATCH', `/Users/${user.body.id}`, { body });
    expect(again.body.meta.version).toBe('W/"2"');
    expect(await count()).toBe(before);
  });
});
