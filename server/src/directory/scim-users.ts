import { type Kysely, sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import { isUniqueViolation } from '../db/errors.js';
import type { DB, LastChange, UserRow } from '../db/schema.js';
import { compiledOnce } from '../db/sql.js';
import { appendEvents } from '../events/outbox.js';
import { newId } from '../ids.js';
import { sameJson } from '../lib/json.js';
import type { ScimObject } from '../scim/core/resource.js';
import { USER_RESOURCE } from '../scim/core/schemas.js';
import { applyPatch, type PatchOperation } from '../scim/patch/patch.js';
import { scimNotFound, uniqueness } from '../scim/protocol/error.js';
import { checkIfMatch } from '../scim/protocol/etag.js';
import type { ScimPrincipal } from '../scim-principal.js';
import { revokeSessionsWhere } from '../sessions/revocation.js';
import { admitDeprovision, withDeprovisionGuard } from './deprovision-guard.js';
import { appendMembershipEvents } from './role-resolution.js';
import { sortExpression, userFilter } from './scim-filter-sql.js';
import { type ListQuery, type ListResult, listPage } from './scim-paging.js';
import {
  changedAttributes,
  storedAttributes,
  userEvents,
  writeUserChange,
  writeUserDeletion,
} from './scim-writes.js';
import { toMembership, toMembershipUser, toUser } from './serialize.js';
import { membershipMetadata, userColumns } from './user-attributes.js';
import type { GroupRef, LockedUser, UserWithGroups } from './user-rows.js';

/**
 * The SCIM user store of one connection. Every query is scoped by the principal's connection (a
 * token never reaches another connection's data); every change and its events commit in one
 * transaction; the user row is locked (`for update`) before it is read for a change, so concurrent
 * PATCHes of one user apply one after the other instead of overwriting each other.
 */

export type { ListQuery, ListResult } from './scim-paging.js';

export function changeOf(
  principal: ScimPrincipal,
  request: { id: string; method: string; path: string },
  at: Date,
): LastChange {
  return {
    at: at.toISOString(),
    request_id: request.id,
    via: 'scim',
    connection_id: principal.connectionId,
    method: request.method,
    path: request.path,
  };
}

/** The `groups` of `u`, as a correlated subquery: one round trip for a page of users and their groups. */
const groupsOf = sql<GroupRef[]>`(
  select coalesce(json_agg(json_build_object('value', g.id, 'display', g.display_name) order by g.display_name, g.id), '[]')
  from group_members gm join groups g on g.id = gm.group_id
  where gm.user_id = u.id and g.deleted_at is null)`;

export async function listScimUsers(
  ctx: Context,
  principal: ScimPrincipal,
  query: ListQuery,
  options: { withGroups?: boolean } = {},
): Promise<ListResult<UserWithGroups>> {
  const filter = query.filter && userFilter(query.filter);
  return listPage<UserWithGroups>(ctx.db, query, {
    table: 'users',
    alias: 'u',
    connectionId: principal.connectionId,
    filter: filter?.sql,
    shape: filter?.shape && { filter: filter.shape, columnsKey: options.withGroups ? 'groups' : '' },
    sort: sortExpression('User', query.sortBy),
    // Computed for the page's rows only (listPage selects them over the page, not over the rows
    // an offset skips: 2 s per deep page of 10,000 users, measured, when they were).
    columns: options.withGroups ? sql`${groupsOf} as groups` : undefined,
    anchors: ctx.pageAnchors,
  });
}

const getUserQuery = compiledOnce((db, p: { id: string; connectionId: string }, shape) =>
  db
    .selectFrom('users as u')
    .selectAll('u')
    .$if(shape === 'groups', (qb) => qb.select(groupsOf.as('groups')))
    .where('u.id', '=', p.id)
    .where('u.connection_id', '=', p.connectionId)
    .where('u.deleted_at', 'is', null),
);

export async function getScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  options: { withGroups?: boolean } = {},
): Promise<UserWithGroups> {
  const { rows } = await getUserQuery(
    ctx.db,
    { id, connectionId: principal.connectionId },
    options.withGroups === true ? 'groups' : '',
  );
  const row = rows[0];
  if (!row) throw scimNotFound(`User ${id} not found`);
  return row;
}

/** The statement of {@link createScimUser}, compiled once. */
const createUserStatement = compiledOnce(
  (
    _db,
    p: Omit<UserRow, 'attributes'> & {
      attributes: string;
      membershipId: string;
      status: string;
      metadata: string;
      lastChange: string;
      userEventId: string;
      userEvent: string;
      membershipEventId: string;
      membershipEvent: string;
    },
  ) => sql<UserRow>`
      with r as (
        select r.key, r.permissions from organizations o join roles r on r.key = o.default_role
        where o.id = ${p.organization_id}
      ), u as (
        insert into users (id, organization_id, connection_id, user_name, external_id, active, email, given_name,
                           family_name, display_name, attributes, version, created_at, updated_at)
        values (${p.id}, ${p.organization_id}, ${p.connection_id}, ${p.user_name}, ${p.external_id},
                ${p.active}, ${p.email}, ${p.given_name}, ${p.family_name}, ${p.display_name},
                ${p.attributes}::jsonb, 1, ${p.created_at}, ${p.updated_at})
        on conflict (connection_id, lower(user_name)) where deleted_at is null and connection_id is not null
        do nothing
        returning *
      ), m as (
        insert into memberships (id, organization_id, user_id, role_key, role_source, status, source, metadata,
                                 last_change, created_at, updated_at)
        select ${p.membershipId}, u.organization_id, u.id, r.key, '{"kind":"default"}'::jsonb, ${p.status}, 'scim',
               ${p.metadata}::jsonb, ${p.lastChange}::jsonb, ${p.created_at}::timestamptz,
               ${p.updated_at}::timestamptz
        from u, r
        returning id, organization_id
      ), e as (
        insert into events (id, type, organization_id, data, created_at)
        select ${p.userEventId}, 'user.created', u.organization_id, ${p.userEvent}::jsonb,
               ${p.created_at}::timestamptz
        from u
        union all
        select ${p.membershipEventId}, 'membership.created', m.organization_id,
               ${p.membershipEvent}::jsonb || jsonb_build_object('role', r.key, 'permissions', r.permissions),
               ${p.created_at}::timestamptz
        from m, r
        returning seq
      ), q as (
        insert into event_queue (seq) select seq from e
      )
      select u.* from u`,
);

/**
 * Creates a user and its membership (default role, active unless `active: false`), with
 * `user.created` and `membership.created`, in one statement. A userName that exists in this
 * connection, case-insensitively and including inactive users, is a 409 `uniqueness`: the same
 * population and case rule as the `userName eq` lookup, enforced by the unique index.
 */
export async function createScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  attributes: ScimObject,
  change: LastChange,
): Promise<UserRow> {
  const now = ctx.now();
  const stored: ScimObject = { ...attributes, active: attributes.active !== false };
  const columns = userColumns(stored);
  const row: UserRow = {
    id: newId('user', now.getTime()),
    organization_id: principal.organizationId,
    connection_id: principal.connectionId,
    ...columns,
    attributes: stored,
    version: 1,
    created_at: now,
    updated_at: now,
    deleted_at: null,
  };
  const metadata = membershipMetadata(stored, principal.attributeMappings);
  const membershipId = newId('membership', now.getTime());
  const status = columns.active ? 'active' : 'inactive';
  const membershipTemplate = toMembership(
    {
      id: membershipId,
      organization_id: principal.organizationId,
      user_id: row.id,
      role_key: '',
      role_source: { kind: 'default' },
      status,
      source: 'scim',
      metadata,
      last_change: change,
      created_at: now,
      updated_at: now,
    },
    toMembershipUser(row),
    [],
  );
  const { role: _role, permissions: _permissions, ...membershipData } = membershipTemplate;

  // One statement, atomic by itself: no BEGIN/COMMIT round trips on the hottest write path.
  const { rows } = await ctx.write((db) =>
    createUserStatement(db, {
      ...row,
      attributes: JSON.stringify(stored),
      membershipId,
      status,
      metadata: JSON.stringify(metadata),
      lastChange: JSON.stringify(change),
      userEventId: newId('event'),
      userEvent: JSON.stringify(toUser(row)),
      membershipEventId: newId('event'),
      membershipEvent: JSON.stringify(membershipData),
    }),
  );
  const inserted = rows[0];
  if (!inserted) throw uniqueness(`User with userName "${row.user_name}" already exists`);
  return inserted;
}

/** The variants of {@link readUserQuery}: locked for update or not, with the user's groups or not. */
interface ReadUserShape {
  lock: boolean;
  groups: boolean;
}

const readUserQuery = compiledOnce(
  (db, p: { id: string; connectionId: string }, shape: ReadUserShape) => {
    const query = db
      .selectFrom('users as u')
      .leftJoin('memberships as m', (join) =>
        join.onRef('m.user_id', '=', 'u.id').onRef('m.organization_id', '=', 'u.organization_id'),
      )
      .selectAll('u')
      .select(['m.id as membership_id', 'm.status as membership_status', 'm.metadata as membership_metadata'])
      .$if(shape.groups, (qb) => qb.select(groupsOf.as('groups')))
      .where('u.id', '=', p.id)
      .where('u.connection_id', '=', p.connectionId)
      .where('u.deleted_at', 'is', null);
    return shape.lock ? query.forUpdate(['u']) : query;
  },
  ({ lock, groups }) => `${lock ? 'lock' : 'read'} ${groups ? 'groups' : 'bare'}`,
);

/**
 * The user with its membership and groups; locked (`for update`) inside a transaction if asked.
 * Compiled once (see compiledOnce): it is read before every change. A deletion answers no body,
 * so it reads no groups (`groups: false`): aggregating a user's 20 groups cost more than the rest
 * of the read.
 */
async function readUser(
  db: Transaction<DB> | Kysely<DB>,
  principal: ScimPrincipal,
  id: string,
  lock: boolean,
  options: { groups?: boolean } = {},
): Promise<LockedUser> {
  const { rows } = await readUserQuery(
    db,
    { id, connectionId: principal.connectionId },
    { lock, groups: options.groups !== false },
  );
  const row = rows[0];
  if (!row) throw scimNotFound(`User ${id} not found`);
  return row as LockedUser;
}

/**
 * Persists new attributes for a locked user: columns, version, events, membership status and
 * metadata, and, on deactivation, revocation of every session of the user, all in `trx`.
 * @returns the user as it is now, with its groups.
 */
async function applyUserChange(
  ctx: Context,
  trx: Transaction<DB>,
  principal: ScimPrincipal,
  before: LockedUser,
  attributes: ScimObject,
  change: LastChange,
): Promise<UserWithGroups> {
  const now = ctx.now();
  const stored = storedAttributes(before, attributes);
  const changed = changedAttributes(before.attributes, stored);
  if (changed.length === 0) return before;
  const columns = userColumns(stored);
  if (before.active && !columns.active) {
    await admitDeprovision(trx, now, principal, before.id, 'deactivated');
  }
  let after: UserWithGroups;
  try {
    after = (await trx
      .updateTable('users as u')
      .set({
        ...columns,
        attributes: JSON.stringify(stored),
        version: before.version + 1,
        updated_at: now,
      })
      .where('u.id', '=', before.id)
      .returningAll()
      .returning(groupsOf.as('groups'))
      .executeTakeFirstOrThrow()) as UserWithGroups;
  } catch (error) {
    if (isUniqueViolation(error))
      throw uniqueness(`User with userName "${columns.user_name}" already exists`);
    throw error;
  }

  await appendEvents(trx, userEvents(before, after, changed));

  // The membership follows: status from `active`, metadata from the mapped attributes. Its own
  // event is emitted when those change; user fields travel on the user events.
  if (before.membership_id) {
    const status = after.active ? 'active' : 'inactive';
    const metadata = membershipMetadata(stored, principal.attributeMappings);
    const membershipChanged = [
      ...(before.membership_status !== status ? ['status'] : []),
      ...(!sameJson(before.membership_metadata, metadata) ? ['metadata'] : []),
    ];
    if (membershipChanged.length > 0) {
      await trx
        .updateTable('memberships')
        .set({
          status,
          metadata: JSON.stringify(metadata),
          updated_at: now,
          last_change: JSON.stringify(change),
        })
        .where('id', '=', before.membership_id)
        .execute();
      await appendMembershipEvents(trx, 'membership.updated', [before.membership_id], membershipChanged);
    }
  }
  if (before.active && !after.active) {
    await revokeSessionsWhere(trx, now, { userId: after.id }, 'user_deactivated');
  }
  return after;
}

export async function replaceScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  attributes: ScimObject,
  ifMatch: string | undefined,
  change: LastChange,
): Promise<UserWithGroups> {
  return changeUser(ctx, principal, id, ifMatch, change, () => attributes);
}

export async function patchScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  operations: PatchOperation[],
  ifMatch: string | undefined,
  change: LastChange,
): Promise<UserWithGroups> {
  return changeUser(ctx, principal, id, ifMatch, change, (before) => {
    return applyPatch(USER_RESOURCE, before.attributes, operations).attributes;
  });
}

/** Optimistic attempts before a change falls back to the locking path. */
const OPTIMISTIC_ATTEMPTS = 3;

/**
 * PUT and PATCH of a user: one read, then one autocommit statement guarded by the version that
 * was read (see {@link writeUserChange}) that writes the user, its membership, the revocation of
 * its sessions and every event. An update that keeps losing the race to others, and a
 * deactivation while the connection's deprovisioning guard is enabled (which must be counted),
 * take the locking transaction instead.
 */
async function changeUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
  change: LastChange,
  next: (before: LockedUser) => ScimObject,
): Promise<UserWithGroups> {
  for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
    const before = await readUser(ctx.db, principal, id, false);
    checkIfMatch(ifMatch, before.version);
    const stored = storedAttributes(before, next(before));
    const changed = changedAttributes(before.attributes, stored);
    if (changed.length === 0) return before;
    const written = await writeUserChange(ctx, principal, before, stored, changed, change);
    if (written === 'guarded') break;
    if (written) return written;
  }
  return withDeprovisionGuard(ctx, () =>
    ctx.transaction(async (trx) => {
      const before = await readUser(trx, principal, id, true);
      checkIfMatch(ifMatch, before.version);
      return applyUserChange(ctx, trx, principal, before, next(before), change);
    }),
  );
}

/**
 * Deletes a user: 404 afterwards, out of every group, membership removed, sessions revoked. One
 * read, then one autocommit statement guarded by the version read ({@link writeUserDeletion}),
 * shared with the deletions that arrive meanwhile; the locking transaction when that keeps losing
 * races or the deprovisioning guard must count it. The row is kept (soft-deleted) for the
 * retention window, then purged.
 */
export async function deleteScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
): Promise<void> {
  for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
    const before = await readUser(ctx.db, principal, id, false, { groups: false });
    checkIfMatch(ifMatch, before.version);
    const written = await writeUserDeletion(ctx, principal, before);
    if (written === 'guarded') break;
    if (written) return;
  }
  await withDeprovisionGuard(ctx, () =>
    ctx.transaction(async (trx) => {
      const before = await readUser(trx, principal, id, true);
      checkIfMatch(ifMatch, before.version);
      const now = ctx.now();
      await admitDeprovision(trx, now, principal, id, 'deleted');
      await revokeSessionsWhere(trx, now, { userId: id }, 'user_deleted');
      await removeFromAllGroups(trx, now, before);
      if (before.membership_id) {
        await appendMembershipEvents(trx, 'membership.deleted', [before.membership_id]);
        await trx.deleteFrom('memberships').where('id', '=', before.membership_id).execute();
      }
      const deleted = await trx
        .updateTable('users')
        .set({ deleted_at: now, updated_at: now, version: before.version + 1 })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await appendEvents(trx, [
        { type: 'user.deleted', organizationId: deleted.organization_id, data: toUser(deleted) },
      ]);
    }),
  );
}

/** Removes a user from every group it is in, keeping member counts exact, with events. */
async function removeFromAllGroups(trx: Transaction<DB>, now: Date, user: UserRow): Promise<void> {
  const { rows } = await sql<{ group_id: string; display_name: string; connection_id: string }>`
    with removed as (
      delete from group_members where user_id = ${user.id} returning group_id
    ), counted as (
      update groups g set member_count = g.member_count - 1, updated_at = ${now}, version = g.version + 1
      from removed where g.id = removed.group_id
      returning g.id, g.display_name, g.connection_id
    )
    select id as group_id, display_name, connection_id from counted`.execute(trx);
  await appendEvents(
    trx,
    rows.map((row) => ({
      type: 'group.user_removed' as const,
      organizationId: user.organization_id,
      data: {
        object: 'group_membership',
        organization_id: user.organization_id,
        connection_id: row.connection_id,
        group: { id: row.group_id, name: row.display_name },
        user: { id: user.id, user_name: user.user_name, email: user.email },
      },
    })),
  );
}
