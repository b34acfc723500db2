import {
  createEventConsumer,
  type Event,
  type Membership,
  type Organization,
  type Role,
  type Roster,
} from '@roster/sdk';
import type { Store } from './store.js';

/**
 * Mirrors organizations, memberships and roles into `store`, restart-safe.
 *
 * 1. First run: a snapshot from the list endpoints. The first list's `event_cursor` is where the
 *    feed is followed from: every event up to it is reflected in the snapshot; later ones may be too,
 *    and applying them again is harmless (they carry the resource after the change).
 * 2. Then the events feed with createEventConsumer: each batch and the cursor after it are written
 *    in one transaction, so a crash replays nothing twice into the mirror and loses nothing.
 */
export async function syncOnce(
  roster: Roster,
  store: Store,
  options: { signal?: AbortSignal; waitSeconds?: number; onBatch?: (events: Event[]) => void } = {},
): Promise<void> {
  const saved = await store.query<{ cursor: string }>('select cursor from mirror_cursor where id = 1');
  let cursor = saved[0]?.cursor;
  if (!cursor) cursor = await snapshot(roster, store);

  const consumer = createEventConsumer({
    events: roster.events,
    types: [
      'organization.created',
      'organization.updated',
      'organization.deleted',
      'membership.created',
      'membership.updated',
      'membership.deleted',
      'role.created',
      'role.updated',
      'role.deleted',
    ],
    waitSeconds: options.waitSeconds ?? 20,
    signal: options.signal,
    loadCursor: async () => cursor,
    // A batch's cursor is written with the batch (in handler); this also keeps an empty page's cursor.
    saveCursor: async (next) => {
      await store.query(
        'insert into mirror_cursor (id, cursor) values (1, $1) on conflict (id) do update set cursor = $1',
        [next],
      );
    },
    handler: async (events) => {
      const last = events[events.length - 1]!;
      await store.transaction(async (tx) => {
        for (const event of events) await apply(tx, event);
        await tx.query(
          'insert into mirror_cursor (id, cursor) values (1, $1) on conflict (id) do update set cursor = $1',
          [last.cursor],
        );
      });
      options.onBatch?.(events);
    },
  });
  await consumer.run();
}

async function snapshot(roster: Roster, store: Store): Promise<string> {
  let start: string | undefined;
  await store.transaction(async (tx) => {
    const organizations = roster.organizations.list({ limit: 100 });
    start = (await organizations).event_cursor;
    for await (const organization of organizations) {
      await upsertOrganization(tx, organization);
      for await (const membership of roster.organizations.listMembers({
        organizationId: organization.id,
        limit: 100,
      })) {
        await upsertMembership(tx, membership);
      }
    }
    for await (const role of roster.roles.list({ limit: 100 })) await upsertRole(tx, role);
    await tx.query(
      'insert into mirror_cursor (id, cursor) values (1, $1) on conflict (id) do update set cursor = $1',
      [start],
    );
  });
  return start!;
}

async function apply(tx: Store, event: Event): Promise<void> {
  const data = event.data as Record<string, unknown>;
  switch (event.type) {
    case 'organization.created':
    case 'organization.updated':
      return upsertOrganization(tx, data as unknown as Organization);
    case 'organization.deleted':
      await tx.query('delete from mirror_memberships where organization_id = $1', [data.id]);
      await tx.query('delete from mirror_organizations where id = $1', [data.id]);
      return;
    case 'membership.created':
    case 'membership.updated':
      return upsertMembership(tx, data as unknown as Membership);
    case 'membership.deleted':
      await tx.query('delete from mirror_memberships where id = $1', [data.id]);
      return;
    case 'role.created':
    case 'role.updated':
      return upsertRole(tx, data as unknown as Role);
    case 'role.deleted':
      await tx.query('delete from mirror_roles where key = $1', [data.key]);
      return;
    default:
      return;
  }
}

async function upsertOrganization(tx: Store, o: Pick<Organization, 'id' | 'name' | 'slug'>): Promise<void> {
  await tx.query(
    `insert into mirror_organizations (id, name, slug) values ($1, $2, $3)
     on conflict (id) do update set name = excluded.name, slug = excluded.slug`,
    [o.id, o.name, o.slug],
  );
}

async function upsertMembership(tx: Store, m: Membership): Promise<void> {
  await tx.query(
    `insert into mirror_memberships (id, organization_id, user_id, email, role, status) values ($1, $2, $3, $4, $5, $6)
     on conflict (id) do update set email = excluded.email, role = excluded.role, status = excluded.status`,
    [m.id, m.organization_id, m.user.id, m.user.email, m.role, m.status],
  );
}

async function upsertRole(tx: Store, r: Pick<Role, 'key' | 'name' | 'permissions'>): Promise<void> {
  await tx.query(
    `insert into mirror_roles (key, name, permissions) values ($1, $2, $3)
     on conflict (key) do update set name = excluded.name, permissions = excluded.permissions`,
    [r.key, r.name, JSON.stringify(r.permissions)],
  );
}
