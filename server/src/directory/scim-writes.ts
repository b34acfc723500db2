import { sql } from 'kysely';
import type { Context } from '../context.js';
import { isUniqueViolation } from '../db/errors.js';
import type { JsonObject, LastChange, UserRow } from '../db/schema.js';
import { compiledOnce } from '../db/sql.js';
import { eventCtes, eventIdBase, type NewEvent } from '../events/outbox.js';
import { GroupCommit } from '../lib/group-commit.js';
import { sameJson } from '../lib/json.js';
import type { ScimObject } from '../scim/core/resource.js';
import { uniqueness } from '../scim/protocol/error.js';
import type { ScimPrincipal } from '../scim-principal.js';
import { toUser } from './serialize.js';
import { groupMembershipJson, membershipJson, revokedSessionJson } from './serialize-sql.js';
import { membershipMetadata, type UserColumns, userColumns } from './user-attributes.js';
import type { LockedUser, UserWithGroups } from './user-rows.js';

/**
 * The SCIM write path of users in one statement per change (see scim-users.ts for the reads and
 * the locking fallback), and the change detection that users and groups share.
 */

/**
 * Top-level attribute names (extension attributes as `urn:…:name`) whose values differ: the
 * `changed_attributes` of `user.updated` and `group.updated`.
 */
export function changedAttributes(before: ScimObject, after: ScimObject): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed: string[] = [];
  for (const name of names) {
    if (sameJson(before[name], after[name])) continue;
    const b = before[name];
    const a = after[name];
    if (
      /^urn:/i.test(name) &&
      typeof a === 'object' &&
      typeof b === 'object' &&
      a &&
      b &&
      !Array.isArray(a)
    ) {
      for (const inner of new Set([...Object.keys(b), ...Object.keys(a)])) {
        if (!sameJson((b as ScimObject)[inner], (a as ScimObject)[inner])) changed.push(`${name}:${inner}`);
      }
    } else {
      changed.push(name);
    }
  }
  return changed;
}

/** The user events of a change: `user.updated` for attributes, `user.deactivated`/`reactivated` for `active`. */
export function userEvents(before: UserRow, after: UserRow, changed: string[]): NewEvent[] {
  const events: NewEvent[] = [];
  const user = toUser(after);
  const others = changed.filter((name) => name !== 'active');
  if (others.length > 0) {
    events.push({
      type: 'user.updated',
      organizationId: after.organization_id,
      data: { ...user, changed_attributes: others },
    });
  }
  if (before.active && !after.active) {
    events.push({ type: 'user.deactivated', organizationId: after.organization_id, data: user });
  } else if (!before.active && after.active) {
    events.push({ type: 'user.reactivated', organizationId: after.organization_id, data: user });
  }
  return events;
}

/**
 * One statement: the user update (only if the row still has the version that was read), its
 * events, the membership's status and mapped metadata with `membership.updated`, and on
 * deactivation the revocation of every session with `session.revoked`. Atomic on its own (the
 * revocation commits with the deactivation), and ordered like the locking path: the UPDATE holds
 * the user row lock while the events take their seqs. A deactivation first reads the
 * connection's guard row `for share` (waiting for a reconfiguration in flight); when the guard is
 * enabled, nothing is written and the locking path decides and counts.
 * @returns the user as it is now; undefined when another change came first; `guarded` when the
 * guard must decide.
 */
export async function writeUserChange(
  ctx: Context,
  principal: ScimPrincipal,
  before: LockedUser,
  stored: ScimObject,
  changed: string[],
  change: LastChange,
): Promise<UserWithGroups | 'guarded' | undefined> {
  const now = ctx.now();
  const columns = userColumns(stored);
  const after: UserRow = {
    ...withoutMembership(before),
    ...columns,
    attributes: stored as JsonObject,
    version: before.version + 1,
    updated_at: now,
  };
  const deactivating = before.active && !columns.active;
  const status = columns.active ? 'active' : 'inactive';
  const metadata = membershipMetadata(stored, principal.attributeMappings);
  const membershipChanged = before.membership_id
    ? [
        ...(before.membership_status !== status ? ['status'] : []),
        ...(!sameJson(before.membership_metadata, metadata) ? ['metadata'] : []),
      ]
    : [];
  const events = userEvents(before, after, changed);
  const params: UserChangeParams = {
    now,
    connectionId: principal.connectionId,
    deactivating,
    ...columns,
    attributes: JSON.stringify(stored),
    version: after.version,
    id: before.id,
    beforeVersion: before.version,
    status,
    metadata: JSON.stringify(metadata),
    lastChange: JSON.stringify(change),
    membershipId: before.membership_id,
    membershipChanging: membershipChanged.length > 0,
    membershipChanged: JSON.stringify(membershipChanged),
    eventIdBase: eventIdBase(),
  };
  events.forEach((event, i) => {
    params[`type${i}`] = event.type;
    params[`data${i}`] = JSON.stringify(event.data);
  });
  const shape = `${events.length}${membershipChanged.length > 0 ? 'm' : ''}${deactivating ? 's' : ''}`;
  let rows: { guarded: boolean; written: boolean }[];
  try {
    ({ rows } = await ctx.write((db) => userChangeStatement(db, params, shape)));
  } catch (error) {
    if (isUniqueViolation(error))
      throw uniqueness(`User with userName "${columns.user_name}" already exists`);
    throw error;
  }
  if (rows[0]?.guarded) return 'guarded';
  return rows[0]?.written ? { ...after, groups: before.groups ?? [] } : undefined;
}

type UserChangeParams = UserColumns & {
  now: Date;
  connectionId: string;
  deactivating: boolean;
  attributes: string;
  version: number;
  id: string;
  beforeVersion: number;
  status: string;
  metadata: string;
  lastChange: string;
  membershipId: string | null;
  membershipChanging: boolean;
  membershipChanged: string;
  eventIdBase: string;
  [event: `type${number}` | `data${number}`]: string;
};

/**
 * The statement of {@link writeUserChange}, compiled once per shape: `<user events>[m][s]`, the
 * number of user events, then whether the membership changes and whether sessions are revoked.
 */
const userChangeStatement = compiledOnce((_db, p: UserChangeParams, shape) => {
  const userEventCount = Number.parseInt(shape, 10);
  const events = Array.from(
    { length: userEventCount },
    (_, i) => sql`select ${sql.raw(String(i))}::int as ord, ${p[`type${i}`]}::text as type, u.organization_id,
      ${p[`data${i}`]}::jsonb as data from u`,
  );
  if (shape.includes('m')) {
    events.push(sql`select 100 as ord, 'membership.updated' as type, m.organization_id,
      ${membershipJson('m', 'u', 'r')} || jsonb_build_object('changed_attributes', ${p.membershipChanged}::jsonb)
      from m join roles r on r.key = m.role_key cross join u`);
  }
  if (shape.includes('s')) {
    events.push(sql`select 200 as ord, 'session.revoked' as type, s.organization_id, ${revokedSessionJson('s')}
      from s`);
  }
  return sql<{ guarded: boolean; written: boolean }>`
        with guard as (
          select enabled and coalesce(suspended_until <= ${p.now}, true) as holds
          from deprovision_guards where connection_id = ${p.connectionId} and ${p.deactivating}
          for share
        ), u as (
          update users set user_name = ${p.user_name}, external_id = ${p.external_id},
            active = ${p.active}, email = ${p.email}, given_name = ${p.given_name},
            family_name = ${p.family_name}, display_name = ${p.display_name},
            attributes = ${p.attributes}::jsonb, version = ${p.version}, updated_at = ${p.now}
          where id = ${p.id} and version = ${p.beforeVersion} and deleted_at is null
            and not exists (select 1 from guard where holds)
          returning *
        ), m as (
          update memberships set status = ${p.status}, metadata = ${p.metadata}::jsonb,
            updated_at = ${p.now}, last_change = ${p.lastChange}::jsonb
          where id = ${p.membershipId} and ${p.membershipChanging} and exists (select 1 from u)
          returning *
        ), s as (
          update sessions set revoked_at = ${p.now}, revoke_reason = 'user_deactivated'
          where user_id = (select id from u) and revoked_at is null and ${p.deactivating}
          returning *
        ), ${eventCtes('e', sql.join(events, sql` union all `), p.eventIdBase)}
        select exists (select 1 from guard where holds) as guarded, exists (select 1 from u) as written,
               (select count(*) from e) as events`;
});

export function withoutMembership(user: LockedUser): UserWithGroups {
  const { membership_id: _m, membership_status: _s, membership_metadata: _d, ...rest } = user;
  return rest;
}

/**
 * A deletion: the user soft-deleted (if it still has the version read), its sessions revoked, its
 * group rows removed with exact member counts, its membership deleted, and their events in the
 * order of the locking path (`session.revoked`, `group.user_removed`, `membership.deleted`,
 * `user.deleted`), atomically. Concurrent deletions of one connection in this process are written
 * together ({@link userDeletions}): deleting users who share groups made each deletion write the
 * same group rows, one after the other, and PostgreSQL spent 8 ms of CPU per deletion on those
 * rows (lock waits, re-checks of rows updated meanwhile, long chains of row versions); a batch
 * writes each group row once.
 * @returns whether the user was deleted (false: another change came first); `guarded` when the
 * deprovisioning guard must decide.
 */
export function writeUserDeletion(
  ctx: Context,
  principal: ScimPrincipal,
  before: LockedUser,
): Promise<boolean | 'guarded'> {
  let batches = userDeletions.get(ctx);
  if (!batches) {
    batches = new GroupCommit({
      run: (connectionId, users) => writeUserDeletions(ctx, connectionId, users),
      // Two deletions of one user go to different batches: the second then finds it deleted.
      distinct: (user) => user.id,
      max: DELETION_BATCH,
    });
    userDeletions.set(ctx, batches);
  }
  return batches.submit(principal.connectionId, before);
}

/** The deletions of each context, batched per connection (the guard is the connection's). */
const userDeletions = new WeakMap<Context, GroupCommit<string, LockedUser, boolean | 'guarded'>>();

/**
 * The most users one deletion statement deletes: enough for every request of a busy IdP (Okta and
 * Entra send at most a few dozen at once), few enough that a statement stays short.
 */
const DELETION_BATCH = 32;

/** One statement for a batch of deletions, with one outcome per user, in order. */
async function writeUserDeletions(
  ctx: Context,
  connectionId: string,
  users: LockedUser[],
): Promise<(boolean | 'guarded')[]> {
  const now = ctx.now();
  const { rows } = await ctx.write((db) =>
    userDeletionStatement(db, {
      now,
      connectionId,
      ids: users.map((user) => user.id),
      beforeVersions: users.map((user) => user.version),
      membershipIds: users.map((user) => user.membership_id),
      deletedUsers: users.map((user) =>
        JSON.stringify(toUser({ ...withoutMembership(user), version: user.version + 1, updated_at: now })),
      ),
      eventIdBase: eventIdBase(),
    }),
  );
  return users.map((_, i) => {
    const row = rows[i];
    if (row?.guarded) return 'guarded';
    return row?.written === true;
  });
}

/**
 * The statement of {@link writeUserDeletions}, compiled once, set-based over the batch `b`. The
 * guard is read as in {@link writeUserChange}. The batch's groups, then its users, are locked in
 * id order before anything is written (`locked_groups`, `locked_users`, evaluated once as the
 * first user row qualifies; a member add locks its users in id order too): the
 * member-count update alone would lock them in whatever order its join runs, and two deletions of
 * users who share groups then deadlock on PostgreSQL. Each group is written once, whatever the
 * number of its members the batch deletes; events are ordered user by user, as if the deletions
 * ran one after the other in the batch's order.
 */
const userDeletionStatement = compiledOnce(
  (
    _db,
    p: {
      now: Date;
      connectionId: string;
      ids: string[];
      beforeVersions: number[];
      membershipIds: (string | null)[];
      deletedUsers: string[];
      eventIdBase: string;
    },
  ) => sql<{ guarded: boolean; written: boolean }>`
      with b as (
        select * from unnest(${p.ids}::text[], ${p.beforeVersions}::int[], ${p.membershipIds}::text[],
                             ${p.deletedUsers}::text[])
          with ordinality as b (id, before_version, membership_id, deleted_user, idx)
      ), guard as (
        select enabled and coalesce(suspended_until <= ${p.now}, true) as holds
        from deprovision_guards where connection_id = ${p.connectionId}
        for share
      ), locked_groups as (
        select g.id from groups g
        where g.id in (select group_id from group_members where user_id in (select id from b))
        order by g.id
        for no key update
      ), locked_users as (
        select u.id from users u
        where u.id in (select id from b) and (select count(*) from locked_groups) >= 0
        order by u.id
        for no key update
      ), u as (
        update users u set deleted_at = ${p.now}, updated_at = ${p.now}, version = b.before_version + 1
        from b
        where u.id = b.id and u.version = b.before_version and u.deleted_at is null
          and not exists (select 1 from guard where holds)
          and (select count(*) from locked_users) >= 0
        returning u.*, lpad(b.idx::text, 5, '0') as ord, b.membership_id, b.deleted_user
      ), s as (
        update sessions set revoked_at = ${p.now}, revoke_reason = 'user_deleted'
        where user_id in (select id from u) and revoked_at is null
        returning *
      ), gm as (
        delete from group_members where user_id in (select id from u) returning group_id, user_id
      ), g as (
        update groups g set member_count = g.member_count - c.n, updated_at = ${p.now}, version = g.version + 1
        from (select group_id, count(*)::int as n from gm group by group_id) c
        where g.id = c.group_id
        returning g.*
      ), md as (
        delete from memberships m using u where m.id = u.membership_id
        returning m.*
      ), ${eventCtes(
        'e',
        sql`select u.ord || ':1:' || s.id as ord, 'session.revoked' as type, s.organization_id,
              ${revokedSessionJson('s')} as data
            from s join u on u.id = s.user_id
            union all
            select u.ord || ':2:' || g.id, 'group.user_removed', u.organization_id, ${groupMembershipJson('g', 'u')}
            from gm join g on g.id = gm.group_id join u on u.id = gm.user_id
            union all
            select u.ord || ':3', 'membership.deleted', md.organization_id, ${membershipJson('md', 'u', 'r')}
            from md join roles r on r.key = md.role_key join u on u.membership_id = md.id
            union all
            select u.ord || ':4', 'user.deleted', u.organization_id, u.deleted_user::jsonb from u`,
        p.eventIdBase,
      )}
      select exists (select 1 from guard where holds) as guarded,
             exists (select 1 from u where u.id = b.id) as written,
             (select count(*) from e) as events
      from b order by b.idx`,
);

/** The attributes as stored: `active` defaults to the current value. */
export function storedAttributes(before: LockedUser, attributes: ScimObject): ScimObject {
  return {
    ...attributes,
    active: attributes.active === undefined ? before.active : attributes.active !== false,
  };
}
