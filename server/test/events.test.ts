import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, patchOp, userBody } from './scim-helpers.js';

let server: TestServer;
let clock: Date | undefined;
beforeAll(async () => {
  server = await startTestServer({ now: () => clock ?? new Date() });
});
afterAll(async () => {
  await server?.close();
});

interface FeedEvent {
  id: string;
  type: string;
  organization_id: string | null;
  cursor: string;
  data: Record<string, unknown>;
}

async function readAll(query = '', after?: string): Promise<{ events: FeedEvent[]; cursor: string }> {
  await server.sequencer.flush();
  const events: FeedEvent[] = [];
  let cursor = after;
  for (;;) {
    const page = await server.api('GET', `/v1/events?limit=7${cursor ? `&after=${cursor}` : ''}${query}`);
    expect(page.status, page.text).toBe(200);
    expect(typeof page.body.next_cursor).toBe('string');
    events.push(...page.body.data);
    if (page.body.data.length === 0 || page.body.next_cursor === cursor)
      return { events, cursor: page.body.next_cursor };
    cursor = page.body.next_cursor;
  }
}

describe('the events feed', () => {
  it('has every change once, in order, with the resource after the change', async () => {
    const start = (await readAll()).cursor;
    const conn = await createConnection(server, 'okta');
    const user = await conn.scim('POST', '/Users', { body: userBody('feed@acme.test') });
    await conn.scim('PATCH', `/Users/${user.body.id}`, {
      body: patchOp({ op: 'replace', path: 'displayName', value: 'Feed One' }),
    });
    await conn.scim('PATCH', `/Users/${user.body.id}`, {
      body: patchOp({ op: 'Replace', path: 'active', value: 'False' }),
    });
    const { events } = await readAll(`&organization_id=${conn.organizationId}`, start);
    expect(events.map((e) => e.type)).toEqual([
      'organization.created',
      'connection.created',
      'user.created',
      'membership.created',
      'user.updated',
      'user.deactivated',
      'membership.updated',
    ]);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events[2]!.data).toMatchObject({
      object: 'user',
      id: user.body.id,
      active: true,
      connection_id: conn.connectionId,
    });
    expect(events[4]!.data).toMatchObject({ name: 'Feed One', changed_attributes: ['displayName'] });
    expect(events[5]!.data).toMatchObject({ active: false });
    expect(events[6]!.data).toMatchObject({
      object: 'membership',
      status: 'inactive',
      changed_attributes: ['status'],
    });
    // Each event's cursor resumes right after it.
    const resumed = await server.api(
      'GET',
      `/v1/events?limit=1&after=${events[3]!.cursor}&organization_id=${conn.organizationId}`,
    );
    expect(resumed.body.data[0].id).toBe(events[4]!.id);
  });

  it('always answers a next_cursor, and filters by type without losing its place', async () => {
    const before = (await readAll()).cursor;
    const empty = await server.api('GET', `/v1/events?after=${before}`);
    expect(empty.body).toEqual({ data: [], next_cursor: before });
    const conn = await createConnection(server, 'entra');
    const u = await conn.scim('POST', '/Users', { body: userBody('filter@acme.test') });
    await conn.scim('PATCH', `/Users/${u.body.id}`, {
      body: patchOp({ op: 'replace', path: 'active', value: false }),
    });
    await server.sequencer.flush();
    const deactivations = await server.api(
      'GET',
      `/v1/events?after=${before}&types=user.deactivated,session.revoked`,
    );
    expect(deactivations.body.data.map((e: FeedEvent) => e.type)).toEqual(['user.deactivated']);
    // The cursor moved past everything scanned, matching or not.
    const after = await server.api('GET', `/v1/events?after=${deactivations.body.next_cursor}`);
    expect(after.body.data).toEqual([]);
  });

  it('rejects bad cursors and types', async () => {
    for (const query of [
      'after=nope!',
      'after=ZTE6LTE',
      `after=${Buffer.from('e1:999999999').toString('base64url')}`,
    ]) {
      const response = await server.api('GET', `/v1/events?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.body.error.code).toBe('invalid_cursor');
    }
    const badType = await server.api('GET', '/v1/events?types=user.exploded');
    expect(badType.status).toBe(400);
    expect(badType.body.error.message).toMatch(/user.exploded/);
    expect((await server.api('GET', '/v1/events?limit=1001')).status).toBe(400);
    expect((await server.api('GET', '/v1/events?wait=31')).status).toBe(400);
  });

  it('since= starts at the first event numbered at or after a time', async () => {
    const before = await server.api('POST', '/v1/organizations', { body: { name: 'Before since' } });
    await server.sequencer.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const since = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = await server.api('POST', '/v1/organizations', { body: { name: 'After since' } });
    await server.sequencer.flush();
    const page = await server.api(
      'GET',
      `/v1/events?since=${encodeURIComponent(since)}&types=organization.created`,
    );
    expect(page.status, page.text).toBe(200);
    const ids = page.body.data.map((e: FeedEvent) => e.data.id);
    expect(ids).toContain(after.body.id);
    expect(ids).not.toContain(before.body.id);
    // A time past the head answers an empty page whose cursor is the head.
    const future = await server.api(
      'GET',
      `/v1/events?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    );
    expect(future.body.data).toEqual([]);
    const both = await server.api(
      'GET',
      `/v1/events?since=${encodeURIComponent(since)}&after=${future.body.next_cursor}`,
    );
    expect(both.status).toBe(400);
    expect((await server.api('GET', '/v1/events?since=yesterday')).status).toBe(400);
  });

  it('long-polls until an event arrives, or answers an empty page after the wait', async () => {
    const { cursor } = await readAll();
    const t0 = Date.now();
    const idle = await server.api('GET', `/v1/events?after=${cursor}&wait=1`);
    expect(idle.body.data).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const waiting = server.api('GET', `/v1/events?after=${cursor}&wait=20`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const created = await server.api('POST', '/v1/organizations', { body: { name: 'Wakes the poll' } });
    const woken = await waiting;
    expect(woken.body.data.map((e: FeedEvent) => e.data.id)).toContain(created.body.id);
  });

  it('lists carry an event_cursor: snapshot, then follow from it, with nothing missed', async () => {
    const org = (await server.api('POST', '/v1/organizations', { body: { name: 'Snapshot' } })).body.id;
    for (let i = 0; i < 5; i++)
      await server.api('POST', `/v1/organizations/${org}/memberships`, {
        body: { email: `s${i}@snap.test` },
      });
    await server.sequencer.flush();
    const snapshot = await server.api('GET', `/v1/organizations/${org}/memberships?limit=100`);
    expect(snapshot.body.event_cursor).toEqual(expect.any(String));
    const mirror = new Set<string>(snapshot.body.data.map((m: { id: string }) => m.id));
    // Changes after the snapshot reach the mirror through the feed.
    const late = await server.api('POST', `/v1/organizations/${org}/memberships`, {
      body: { email: 'late@snap.test' },
    });
    const { events } = await readAll(
      `&organization_id=${org}&types=membership.created,membership.deleted`,
      snapshot.body.event_cursor,
    );
    for (const e of events) mirror.add(e.data.id as string);
    expect(mirror).toContain(late.body.id);
    expect(mirror.size).toBe(6);
  });

  it('expires cursors past retention with 410', async () => {
    const old = (await readAll()).cursor;
    await server.api('POST', '/v1/organizations', { body: { name: 'Soon purged' } });
    await server.sequencer.flush();
    clock = new Date(Date.now() + 31 * 86_400_000);
    try {
      const purged = await server.maintenance.run();
      expect(purged.events).toBeGreaterThan(0);
    } finally {
      clock = undefined;
    }
    const expired = await server.api('GET', `/v1/events?after=${old}`);
    expect(expired.status).toBe(410);
    expect(expired.body.error.code).toBe('cursor_expired');
    const fromStart = await server.api('GET', '/v1/events');
    expect(fromStart.status).toBe(200);
  });
});
