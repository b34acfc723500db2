import { sql } from 'kysely';
import type { Context } from '../context.js';
import { isUniqueViolation } from '../db/errors.js';
import type { JsonObject, LastChange, UserRow } from '../db/schema.js';
import { eventCtes, type NewEvent } from '../events/outbox.js';
import { sameJson } from '../lib/json.js';
import type { ScimObject } from '../scim/core/resource.js';
import { uniqueness } from '../scim/protocol/error.js';
import type { ScimPrincipal } from '../scim-principal.js';
import { toUser } from './serialize.js';
import { groupMembershipJson, membershipJson, revokedSessionJson } from './serialize-sql.js';
import { membershipMetadata, userColumns } from './user-attributes.js';
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
  const events = userEvents(before, after, changed).map(
    (event, i) => sql`select ${i}::int as ord, ${event.type}::text as type, u.organization_id,
      ${JSON.stringify(event.data)}::jsonb as data from u`,
  );
  if (membershipChanged.length > 0) {
    events.push(sql`select 100 as ord, 'membership.updated' as type, m.organization_id,
      ${membershipJson('m', 'u', 'r')} || jsonb_build_object('changed_attributes', ${JSON.stringify(membershipChanged)}::jsonb)
      from m join roles r on r.key = m.role_key cross join u`);
  }
  if (deactivating) {
    events.push(sql`select 200 as ord, 'session.revoked' as type, s.organization_id, ${revokedSessionJson('s')}
      from s`);
  }
  let rows: { guarded: boolean; written: boolean }[];
  try {
    ({ rows } = await ctx.write((db) =>
      sql<{ guarded: boolean; written: boolean }>`
        with guard as (
          select enabled and coalesce(suspended_until <= ${now}, true) as holds
          from deprovision_guards where connection_id = ${principal.connectionId} and ${deactivating}
          for share
        ), u as (
          update users set user_name = ${columns.user_name}, external_id = ${columns.external_id},
            active = ${columns.active}, email = ${columns.email}, given_name = ${columns.given_name},
            family_name = ${columns.family_name}, display_name = ${columns.display_name},
            attributes = ${JSON.stringify(stored)}::jsonb, version = ${after.version}, updated_at = ${now}
          where id = ${before.id} and version = ${before.version} and deleted_at is null
            and not exists (select 1 from guard where holds)
          returning *
        ), m as (
          update memberships set status = ${status}, metadata = ${JSON.stringify(metadata)}::jsonb,
            updated_at = ${now}, last_change = ${JSON.stringify(change)}::jsonb
          where id = ${before.membership_id} and ${membershipChanged.length > 0} and exists (select 1 from u)
          returning *
        ), s as (
          update sessions set revoked_at = ${now}, revoke_reason = 'user_deactivated'
          where user_id = (select id from u) and revoked_at is null and ${deactivating}
          returning *
        ), ${eventCtes('e', sql.join(events, sql` union all `))}
        select exists (select 1 from guard where holds) as guarded, exists (select 1 from u) as written,
               (select count(*) from e) as events`.execute(db),
    ));
  } catch (error) {
    if (isUniqueViolation(error))
      throw uniqueness(`User with userName "${columns.user_name}" already exists`);
    throw error;
  }
  if (rows[0]?.guarded) return 'guarded';
  return rows[0]?.written ? { ...after, groups: before.groups ?? [] } : undefined;
}

export function withoutMembership(user: LockedUser): UserWithGroups {
  const { membership_id: _m, membership_status: _s, membership_metadata: _d, ...rest } = user;
  return rest;
}

/**
 * The deletion in one statement, set-based: the user soft-deleted (if it still has the version
 * read), its sessions revoked, its group rows removed with exact member counts, its membership
 * deleted, and their events in the order of the locking path (`session.revoked`,
 * `group.user_removed`, `membership.deleted`, `user.deleted`). The guard is read as in
 * {@link writeUserChange}. The user's groups are locked in id order before anything is written
 * (`locked_groups`, evaluated once as the user row qualifies): the member-count update alone would
 * lock them in whatever order its join runs, and two deletions of users who share groups then
 * deadlock on PostgreSQL.
 */
export async function writeUserDeletion(
  ctx: Context,
  principal: ScimPrincipal,
  before: LockedUser,
): Promise<boolean | 'guarded'> {
  const now = ctx.now();
  const deleted: UserRow = { ...withoutMembership(before), version: before.version + 1, updated_at: now };
  const { rows } = await ctx.write((db) =>
    sql<{ guarded: boolean; written: boolean }>`
      with guard as (
        select enabled and coalesce(suspended_until <= ${now}, true) as holds
        from deprovision_guards where connection_id = ${principal.connectionId}
        for share
      ), locked_groups as (
        select g.id from groups g
        where g.id in (select group_id from group_members where user_id = ${before.id})
        order by g.id
        for no key update
      ), u as (
        update users set deleted_at = ${now}, updated_at = ${now}, version = ${deleted.version}
        where id = ${before.id} and version = ${before.version} and deleted_at is null
          and not exists (select 1 from guard where holds)
          and (select count(*) from locked_groups) >= 0
        returning *
      ), s as (
        update sessions set revoked_at = ${now}, revoke_reason = 'user_deleted'
        where user_id = (select id from u) and revoked_at is null
        returning *
      ), gm as (
        delete from group_members where user_id = (select id from u) returning group_id
      ), g as (
        update groups g set member_count = g.member_count - 1, updated_at = ${now}, version = g.version + 1
        from gm where g.id = gm.group_id
        returning g.*
      ), md as (
        delete from memberships where id = ${before.membership_id} and exists (select 1 from u)
        returning *
      ), ${eventCtes(
        'e',
        sql`select '1:' || s.id as ord, 'session.revoked' as type, s.organization_id, ${revokedSessionJson('s')} as data
            from s
            union all
            select '2:' || g.id, 'group.user_removed', u.organization_id, ${groupMembershipJson('g', 'u')}
            from g cross join u
            union all
            select '3', 'membership.deleted', md.organization_id, ${membershipJson('md', 'u', 'r')}
            from md join roles r on r.key = md.role_key cross join u
            union all
            select '4', 'user.deleted', u.organization_id, ${JSON.stringify(toUser(deleted))}::jsonb from u`,
      )}
      select exists (select 1 from guard where holds) as guarded, exists (select 1 from u) as written,
             (select count(*) from e) as events`.execute(db),
  );
  if (rows[0]?.guarded) return 'guarded';
  return rows[0]?.written === true;
}

/** The attributes as stored: `active` defaults to the current value. */
export function storedAttributes(before: LockedUser, attributes: ScimObject): ScimObject {
  return {
    ...attributes,
    active: attributes.active === undefined ? before.active : attributes.active !== false,
  };
}
