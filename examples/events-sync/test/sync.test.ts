import { createRoster, type Roster } from '@roster/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../server/test/harness.js';
import { migrate, openStore, type Store } from '../src/store.js';
import { syncOnce } from '../src/sync.js';

let server: TestServer;
let roster: Roster;
let store: Store;
beforeAll(async () => {
  server = await startTestServer();
  roster = createRoster({ baseUrl: server.url, secretKey: server.secretKey });
  store = await openStore(undefined);
  await migrate(store);
});
afterAll(async () => {
  await store?.close();
  await server?.close();
});

/** Runs the worker until the mirror has caught up with the feed, then stops it. */
async function syncUntilCaughtUp(target: Store = store): Promise<void> {
  await server.sequencer.flush();
  const head = (await roster.events.list({ limit: 1000 })).next_cursor;
  const controller = new AbortController();
  const running = syncOnce(roster, target, { signal: controller.signal, waitSeconds: 1 });
  for (;;) {
    const rows = await target.query<{ cursor: string }>('select cursor from mirror_cursor');
    const at = rows[0] ? Number(Buffer.from(rows[0].cursor, 'base64url').toString().split(':')[1]) : -1;
    if (at >= Number(Buffer.from(head, 'base64url').toString().split(':')[1])) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  controller.abort();
  await running;
}

async function expectMirrorEqualsServer(target: Store = store): Promise<void> {
  const organizations = new Map<string, string>();
  const memberships = new Map<string, string>();
  for await (const org of roster.organizations.list()) {
    organizations.set(org.id, org.name);
    for await (const m of roster.organizations.listMembers({ organizationId: org.id })) {
      memberships.set(m.id, `${m.organization_id}|${m.user.email}|${m.role}|${m.status}`);
    }
  }
  const roles = new Map<string, string>();
  for await (const role of roster.roles.list()) roles.set(role.key, JSON.stringify(role.permissions));
  const mirroredOrgs = new Map(
    (await target.query<{ id: string; name: string }>('select id, name from mirror_organizations')).map(
      (r) => [r.id, r.name],
    ),
  );
  const mirroredMembers = new Map(
    (
      await target.query<{
        id: string;
        organization_id: string;
        email: string;
        role: string;
        status: string;
      }>('select * from mirror_memberships')
    ).map((r) => [r.id, `${r.organization_id}|${r.email}|${r.role}|${r.status}`]),
  );
  const mirroredRoles = new Map(
    (
      await target.query<{ key: string; permissions: unknown }>('select key, permissions from mirror_roles')
    ).map((r) => [r.key, JSON.stringify(r.permissions)]),
  );
  expect(mirroredOrgs).toEqual(organizations);
  expect(mirroredMembers).toEqual(memberships);
  expect(mirroredRoles).toEqual(roles);
}

describe('the events-sync example', () => {
  it('snapshots, follows the feed, and survives restarts', async () => {
    const acme = await roster.organizations.create({ name: 'Acme' });
    await roster.roles.create({ key: 'billing', name: 'Billing', permissions: ['invoices:read'] });
    for (let i = 0; i < 5; i++)
      await roster.organizations.addMember({ organizationId: acme.id, email: `a${i}@acme.test` });

    await syncUntilCaughtUp();
    await expectMirrorEqualsServer();

    // Changes while the worker is stopped are applied when it starts again.
    const globex = await roster.organizations.create({ name: 'Globex' });
    const bob = await roster.organizations.addMember({
      organizationId: globex.id,
      email: 'bob@globex.test',
      role: 'billing',
    });
    await roster.organizations.updateMember({
      organizationId: globex.id,
      membershipId: bob.id,
      role: 'admin',
    });
    await roster.roles.update({ key: 'billing', permissions: ['invoices:read', 'invoices:write'] });
    const first = await roster.organizations.listMembers({ organizationId: acme.id, limit: 1 });
    await roster.organizations.removeMember({ organizationId: acme.id, membershipId: first.data[0]!.id });
    await roster.organizations.update({ organizationId: acme.id, name: 'Acme Corp' });
    await syncUntilCaughtUp();
    await expectMirrorEqualsServer();

    await roster.organizations.delete({ organizationId: globex.id });
    await syncUntilCaughtUp();
    await expectMirrorEqualsServer();
  });

  it('a batch that fails to apply is not skipped: the next run applies it', async () => {
    await roster.organizations.create({ name: 'Flaky' });
    let failed = false;
    const flaky: Store = {
      ...store,
      transaction: async (fn) => {
        if (!failed) {
          failed = true;
          throw new Error('disk full');
        }
        return store.transaction(fn);
      },
    };
    await expect(syncOnce(roster, flaky, { waitSeconds: 1 })).rejects.toThrow('disk full');
    await syncUntilCaughtUp();
    await expectMirrorEqualsServer();
  });
});
