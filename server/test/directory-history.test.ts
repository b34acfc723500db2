import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestResponse, type TestServer } from './harness.js';
import { createConnection, patchOp, type TestConnection, userBody } from './scim-helpers.js';

/** A JSON response body (harness.ts types them loosely). */
type Body = TestResponse['body'];

/**
 * The directory as of any cursor, tested by property: for random sequences of SCIM (and API)
 * changes, `snapshot(as_of=c)` is what the memberships list answered when the feed head was `c`,
 * and applying `diff(a, b)` to `snapshot(a)` gives `snapshot(b)`.
 */

let server: TestServer;
let clock: Date | undefined;
beforeAll(async () => {
  server = await startTestServer({ now: () => clock ?? new Date() });
  for (const key of ['finance', 'viewer']) {
    await server.api('POST', '/v1/roles', { body: { key, name: key } });
  }
});
afterAll(async () => {
  await server?.close();
});

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

type Member = Record<string, unknown> & { membership_id: string };

/** A listed membership as a snapshot member (the fields a snapshot carries). */
function asSnapshotMember(m: Record<string, Body>): Member {
  return {
    membership_id: m.id,
    user_id: m.user.id,
    user_name: m.user.user_name,
    email: m.user.email,
    name: m.user.name,
    active: m.user.active,
    role: m.role,
    status: m.status,
    source: m.source,
    metadata: m.metadata,
  };
}

/** Every member, as the API lists them, and the event cursor of that listing. */
async function listed(organizationId: string): Promise<{ cursor: string; members: Member[] }> {
  await server.sequencer.flush();
  const members: Member[] = [];
  let cursor: string | undefined;
  let after: string | null = null;
  do {
    const page = await server.api(
      'GET',
      `/v1/organizations/${organizationId}/memberships?limit=100${after ? `&after=${after}` : ''}`,
    );
    expect(page.status).toBe(200);
    cursor ??= page.body.event_cursor;
    members.push(...page.body.data.map(asSnapshotMember));
    after = page.body.next_cursor;
  } while (after);
  return { cursor: cursor!, members: members.sort((a, b) => (a.membership_id < b.membership_id ? -1 : 1)) };
}

/** The documented digest, computed the way a consumer would. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  return `{${Object.keys(value)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
    .join(',')}}`;
}
function digest(members: Member[]): string {
  return `sha256:${createHash('sha256')
    .update(members.map((m) => `${canonical(m)}\n`).join(''))
    .digest('hex')}`;
}

async function snapshot(organizationId: string, asOf: string) {
  const response = await server.api('GET', `/v1/organizations/${organizationId}/snapshot?as_of=${asOf}`);
  expect(response.status, response.text).toBe(200);
  return response.body as { members: Member[]; digest: string; count: number; as_of: string };
}

type Command =
  | { kind: 'create'; name: number; department?: string }
  | { kind: 'rename'; user: number; title: string }
  | { kind: 'email'; user: number; email: number }
  | { kind: 'active'; user: number; active: boolean }
  | { kind: 'delete'; user: number }
  | { kind: 'group'; name: 'Finance' | 'Eng'; members: number[] }
  | { kind: 'remove'; user: number; name: 'Finance' | 'Eng' }
  | { kind: 'mappings'; finance: string; eng: string }
  | { kind: 'attributes'; on: boolean }
  | { kind: 'default_role'; role: string }
  | { kind: 'api_member'; name: number }
  | { kind: 'pin'; user: number; role: string | null };

const role = fc.constantFrom('member', 'admin', 'finance', 'viewer');
const createCommand: fc.Arbitrary<Command> = fc.record({
  kind: fc.constant('create' as const),
  name: fc.nat(40),
  department: fc.option(fc.constantFrom('Sales', 'R&D'), { nil: undefined }),
});
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: createCommand },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('rename' as const),
      user: fc.nat(),
      title: fc.constantFrom('Engineer', 'Manager', 'CFO'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('email' as const), user: fc.nat(), email: fc.nat(5) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('active' as const), user: fc.nat(), active: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), user: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('group' as const),
      name: fc.constantFrom('Finance' as const, 'Eng' as const),
      members: fc.array(fc.nat(), { maxLength: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('remove' as const),
      user: fc.nat(),
      name: fc.constantFrom('Finance' as const, 'Eng' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('mappings' as const), finance: role, eng: role }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('attributes' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('default_role' as const), role }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('api_member' as const), name: fc.nat(40) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('pin' as const),
      user: fc.nat(),
      role: fc.option(role, { nil: null }),
    }),
  },
);

/** Applies one command; failures that an IdP could also meet (a 409 for a taken userName) are fine. */
async function run(conn: TestConnection, users: string[], groups: Map<string, string>, cmd: Command) {
  const pick = (n: number) => (users.length === 0 ? undefined : users[n % users.length]);
  switch (cmd.kind) {
    case 'create': {
      const extra = cmd.department ? { [ENTERPRISE]: { department: cmd.department } } : {};
      const created = await conn.scim('POST', '/Users', {
        body: userBody(`u${cmd.name}@history.test`, extra),
      });
      if (created.status === 201) users.push(created.body.id);
      return;
    }
    case 'rename': {
      const id = pick(cmd.user);
      if (id)
        await conn.scim('PATCH', `/Users/${id}`, {
          body: patchOp({ op: 'replace', path: 'title', value: cmd.title }),
        });
      return;
    }
    case 'email': {
      const id = pick(cmd.user);
      if (id)
        await conn.scim('PATCH', `/Users/${id}`, {
          body: patchOp({ op: 'replace', path: 'displayName', value: `Person ${cmd.email}` }),
        });
      return;
    }
    case 'active': {
      const id = pick(cmd.user);
      if (id)
        await conn.scim('PATCH', `/Users/${id}`, {
          body: patchOp({ op: 'replace', value: { active: cmd.active } }),
        });
      return;
    }
    case 'delete': {
      const id = pick(cmd.user);
      if (id && (await conn.scim('DELETE', `/Users/${id}`)).status === 204)
        users.splice(users.indexOf(id), 1);
      return;
    }
    case 'group': {
      const members = [...new Set(cmd.members.map(pick).filter(Boolean))].map((value) => ({ value }));
      const existing = groups.get(cmd.name);
      if (existing) {
        await conn.scim('PATCH', `/Groups/${existing}`, {
          body: patchOp({ op: 'add', path: 'members', value: members }),
        });
      } else {
        const created = await conn.scim('POST', '/Groups', {
          body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: cmd.name, members },
        });
        if (created.status === 201) groups.set(cmd.name, created.body.id);
      }
      return;
    }
    case 'remove': {
      const id = pick(cmd.user);
      const group = groups.get(cmd.name);
      if (id && group)
        await conn.scim('PATCH', `/Groups/${group}`, {
          body: patchOp({ op: 'remove', path: `members[value eq "${id}"]` }),
        });
      return;
    }
    case 'mappings':
      await server.api('PUT', `/v1/connections/${conn.connectionId}/role_mappings`, {
        body: {
          mappings: [
            { group: 'Finance', role: cmd.finance },
            { group: 'eng', role: cmd.eng },
          ],
        },
      });
      return;
    case 'attributes':
      await server.api('PUT', `/v1/connections/${conn.connectionId}/attribute_mappings`, {
        body: {
          mappings: cmd.on
            ? [
                { attribute: `${ENTERPRISE}:department`, key: 'department' },
                { attribute: 'title', key: 'title' },
              ]
            : [],
        },
      });
      return;
    case 'default_role':
      await server.api('PATCH', `/v1/organizations/${conn.organizationId}`, {
        body: { default_role: cmd.role },
      });
      return;
    case 'api_member':
      await server.api('POST', `/v1/organizations/${conn.organizationId}/memberships`, {
        body: { email: `api${cmd.name}@history.test`, name: `Api ${cmd.name}` },
      });
      return;
    case 'pin': {
      const id = pick(cmd.user);
      if (!id) return;
      const list = await server.api('GET', `/v1/users/${id}`);
      if (list.status !== 200) return;
      const members = await listed(conn.organizationId);
      const member = members.members.find((m) => m.user_id === id);
      if (member)
        await server.api(
          'PATCH',
          `/v1/organizations/${conn.organizationId}/memberships/${member.membership_id}`,
          {
            body: { role: cmd.role },
          },
        );
      return;
    }
  }
}

describe('the directory as of any cursor', () => {
  it('snapshot(as_of=c) is what the API listed at c; diff(a, b) applied to snapshot(a) is snapshot(b)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(createCommand, { minLength: 2, maxLength: 5 }),
        fc.array(command, { minLength: 1, maxLength: 25 }),
        async (creates, rest) => {
          const commands = [...creates, ...rest];
          const conn = await createConnection(server, 'okta');
          const users: string[] = [];
          const groups = new Map<string, string>();
          const seen: { cursor: string; members: Member[] }[] = [await listed(conn.organizationId)];
          for (const cmd of commands) {
            await run(conn, users, groups, cmd);
            seen.push(await listed(conn.organizationId));
          }
          for (const { cursor, members } of seen) {
            const snap = await snapshot(conn.organizationId, cursor);
            expect(snap.members).toEqual(members);
            expect(snap.count).toBe(members.length);
            expect(snap.digest).toBe(digest(members));
          }
          const ends = [0, Math.floor(seen.length / 2), seen.length - 1];
          for (const a of ends) {
            for (const b of ends) {
              if (b < a) continue;
              const diff = await server.api(
                'GET',
                `/v1/organizations/${conn.organizationId}/diff?from=${seen[a]!.cursor}&to=${seen[b]!.cursor}`,
              );
              expect(diff.status, diff.text).toBe(200);
              const mirror = new Map(seen[a]!.members.map((m) => [m.membership_id, m]));
              for (const change of diff.body.changes) {
                expect(change.event.cursor).toEqual(expect.any(String));
                if (change.after) mirror.set(change.membership_id, change.after);
                else mirror.delete(change.membership_id);
              }
              const applied = [...mirror.values()].sort((x, y) =>
                x.membership_id < y.membership_id ? -1 : 1,
              );
              expect(applied).toEqual(seen[b]!.members);
            }
          }
        },
      ),
      { numRuns: 15 },
    );
  }, 600_000);

  it('names each change and the event that caused it', async () => {
    const conn = await createConnection(server, 'okta');
    const start = (await listed(conn.organizationId)).cursor;
    const alice = (await conn.scim('POST', '/Users', { body: userBody('alice@diff.test') })).body.id;
    const bob = (await conn.scim('POST', '/Users', { body: userBody('bob@diff.test') })).body.id;
    const middle = (await listed(conn.organizationId)).cursor;
    await conn.scim('PATCH', `/Users/${alice}`, {
      body: patchOp({ op: 'replace', value: { active: false } }),
    });
    await conn.scim('PATCH', `/Users/${bob}`, {
      body: patchOp({ op: 'replace', path: 'displayName', value: 'Robert' }),
    });
    const carol = (await conn.scim('POST', '/Users', { body: userBody('carol@diff.test') })).body.id;
    await conn.scim('DELETE', `/Users/${carol}`);
    const end = (await listed(conn.organizationId)).cursor;

    const diff = await server.api(
      'GET',
      `/v1/organizations/${conn.organizationId}/diff?from=${middle}&to=${end}`,
    );
    expect(diff.status).toBe(200);
    const byUser = new Map<string, Body>(
      diff.body.changes.map((c: Body) => [(c.after ?? c.before).user_id, c]),
    );
    expect(byUser.get(alice)).toMatchObject({ change: 'deactivated', event: { type: 'membership.updated' } });
    expect(byUser.get(alice).changed_fields).toEqual(expect.arrayContaining(['status', 'active']));
    expect(byUser.get(bob)).toMatchObject({
      change: 'updated',
      changed_fields: ['name'],
      event: { type: 'user.updated' },
    });
    expect(byUser.has(carol)).toBe(false); // created and deleted in between: no net change
    const whole = await server.api('GET', `/v1/organizations/${conn.organizationId}/diff?from=${start}`);
    expect(whole.body.changes.map((c: Body) => c.change).sort()).toEqual(['added', 'added']);
    expect(whole.body.to).toBe(end);

    const digestOnly = await server.api(
      'GET',
      `/v1/organizations/${conn.organizationId}/snapshot?members=false`,
    );
    expect(digestOnly.body.members).toBeUndefined();
    expect(digestOnly.body.digest).toBe((await snapshot(conn.organizationId, end)).digest);
  });

  it('answers bad cursors in the API error format', async () => {
    const conn = await createConnection(server, 'generic');
    const org = conn.organizationId;
    const head = (await listed(org)).cursor;
    const bad = await server.api('GET', `/v1/organizations/${org}/snapshot?as_of=nope`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_cursor', details: [{ path: 'as_of' }] });
    const ahead = Buffer.from('e1:999999999').toString('base64url');
    expect(
      (await server.api('GET', `/v1/organizations/${org}/snapshot?as_of=${ahead}`)).body.error.code,
    ).toBe('invalid_cursor');
    const missing = await server.api('GET', `/v1/organizations/${org}/diff`);
    expect(missing.status).toBe(400);
    expect(missing.body.error.details[0].path).toBe('query.from');
    const backwards = await server.api(
      'GET',
      `/v1/organizations/${org}/diff?from=${head}&to=${Buffer.from('e1:0').toString('base64url')}`,
    );
    expect(backwards.status).toBe(400);
    const unknown = await server.api('GET', '/v1/organizations/org_00000000000000000000000000/snapshot');
    expect(unknown.status).toBe(404);
  });

  it('keeps every retained cursor exact after the retention purge', async () => {
    const conn = await createConnection(server, 'entra');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++)
      ids.push((await conn.scim('POST', '/Users', { body: userBody(`p${i}@purge.test`) })).body.id);
    await conn.scim('PATCH', `/Users/${ids[0]}`, {
      body: patchOp({ op: 'replace', value: { active: false } }),
    });
    await conn.scim('DELETE', `/Users/${ids[1]}`);
    const before = await listed(conn.organizationId);
    const old = before.cursor;
    clock = new Date(Date.now() + 31 * 86_400_000);
    try {
      expect((await server.maintenance.run()).events).toBeGreaterThan(0);
    } finally {
      clock = undefined;
    }
    // Everything up to here was purged: the baseline alone is the directory at the purge point.
    const purgedHead = (await listed(conn.organizationId)).cursor;
    expect((await snapshot(conn.organizationId, purgedHead)).members).toEqual(before.members);
    await conn.scim('PATCH', `/Users/${ids[2]}`, {
      body: patchOp({ op: 'replace', path: 'displayName', value: 'After' }),
    });
    await conn.scim('DELETE', `/Users/${ids[3]}`);
    const after = await listed(conn.organizationId);
    expect((await snapshot(conn.organizationId, after.cursor)).members).toEqual(after.members);
    const diff = await server.api(
      'GET',
      `/v1/organizations/${conn.organizationId}/diff?from=${purgedHead}&to=${after.cursor}`,
    );
    expect(diff.body.changes.map((c: Body) => c.change).sort()).toEqual(['removed', 'updated']);
    if (old !== purgedHead) {
      const expired = await server.api(
        'GET',
        `/v1/organizations/${conn.organizationId}/snapshot?as_of=${Buffer.from('e1:1').toString('base64url')}`,
      );
      expect(expired.status).toBe(410);
      expect(expired.body.error.code).toBe('cursor_expired');
    }
  });
});
