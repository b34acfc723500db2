import { type Kysely, sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import { isUniqueViolation } from '../db/errors.js';
import type { DB, JsonObject, LastChange, UserRow } from '../db/schema.js';
import { appendEvents, eventCtes, type NewEvent } from '../events/outbox.js';
import { newId } from '../ids.js';
import type { ScimObject } from '../scim/core/resource.js';
import { USER_RESOURCE } from '../scim/core/schemas.js';
import type { Filter } from '../scim/filter/ast.js';
import { applyPatch, type PatchOperation } from '../scim/patch/patch.js';
import { notFound, uniqueness } from '../scim/protocol/error.js';
import { checkIfMatch } from '../scim/protocol/etag.js';
import type { ScimPrincipal } from './connections.js';
import { admitDeprovision, withDeprovisionGuard } from './deprovision-guard.js';
import { appendMembershipEvents } from './memberships-core.js';
import { sortExpression, userFilterSql } from './scim-filter-sql.js';
import { toMembership, toMembershipUser, toUser } from './serialize.js';
import { groupMembershipJson, membershipJson, revokedSessionJson } from './serialize-sql.js';
import { revokeSessionsWhere } from './session-revocation.js';
import { membershipMetadata, userColumns } from './user-attributes.js';

/**
 * The SCIM user store of one connection. Every query is scoped by the principal's connection (a
 * token never reaches another connection's data); every change and its events commit in one
 * transaction; the user row is locked (`for update`) before it is read for a change, so concurrent
 * PATCHes of one user apply one after the other instead of overwriting each other.
 */

export interface ListQuery {
  filter?: Filter | undefined;
  startIndex: number;
  count: number;
  sortBy?: string | undefined;
  sortOrder?: 'ascending' | 'descending' | undefined;
  /**
   * The id of the row just before `startIndex` in the default (id) order, when known from the
   * previous page: the page is then read with `id > afterId` instead of OFFSET, which costs the
   * same at page 100 as at page 1 (IdP imports walk every page in order).
   */
  afterId?: string | undefined;
}

export interface ListResult<R> {
  rows: R[];
  total: number;
}

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

export interface GroupRef {
  value: string;
  display: string;
}

/** A user row with its groups (the read-only `groups` attribute), when they were asked for. */
export type UserWithGroups = UserRow & { groups?: GroupRef[] };

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
  let base = ctx.db
    .selectFrom('users as u')
    .where('u.connection_id', '=', principal.connectionId)
    .where('u.deleted_at', 'is', null);
  if (query.filter) base = base.where(userFilterSql(query.filter));
  const sort = sortExpression('User', query.sortBy);
  const direction = sql.raw(query.sortOrder === 'descending' ? 'desc' : 'asc');
  const order = sort ? sql`${sort} ${direction}` : sql`u.id`;
  const keyset = query.afterId !== undefined && !sort;
  const page = keyset
    ? base.selectAll('u').where('u.id', '>', query.afterId!).orderBy('u.id').limit(query.count)
    : base
        .selectAll('u')
        .orderBy(order)
        .orderBy('u.id')
        .limit(query.count)
        .offset(query.startIndex - 1);
  // Groups are computed for the page's rows only: a subquery in the same select as OFFSET would be
  // evaluated for every skipped row too (2 s per deep page of 10,000 users, measured).
  const rows: UserWithGroups[] =
    query.count === 0
      ? []
      : options.withGroups
        ? await ctx.db
            .selectFrom(page.as('u'))
            .selectAll('u')
            .select(groupsOf.as('groups'))
            .orderBy(order)
            .orderBy('u.id')
            .execute()
        : await page.execute();
  // A first page that is not full is the whole result: skip the count (the IdP lookup case).
  const total =
    query.startIndex === 1 && rows.length < query.count
      ? rows.length
      : Number((await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  return { rows, total };
}

export async function getScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  options: { withGroups?: boolean } = {},
): Promise<UserWithGroups> {
  const row = await ctx.db
    .selectFrom('users as u')
    .selectAll('u')
    .$if(options.withGroups === true, (qb) => qb.select(groupsOf.as('groups')))
    .where('u.id', '=', id)
    .where('u.connection_id', '=', principal.connectionId)
    .where('u.deleted_at', 'is', null)
    .executeTakeFirst();
  if (!row) throw notFound(`User ${id} not found`);
  return row;
}

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
  const inserted = await ctx.write(async (db) => {
    const { rows } = await sql<UserRow>`
      with r as (
        select r.key, r.permissions from organizations o join roles r on r.key = o.default_role
        where o.id = ${principal.organizationId}
      ), u as (
        insert into users (id, organization_id, connection_id, user_name, external_id, active, email, given_name,
                           family_name, display_name, attributes, version, created_at, updated_at)
        values (${row.id}, ${row.organization_id}, ${row.connection_id}, ${row.user_name}, ${row.external_id},
                ${row.active}, ${row.email}, ${row.given_name}, ${row.family_name}, ${row.display_name},
                ${JSON.stringify(stored)}::jsonb, 1, ${now}, ${now})
        on conflict (connection_id, lower(user_name)) where deleted_at is null and connection_id is not null
        do nothing
        returning *
      ), m as (
        insert into memberships (id, organization_id, user_id, role_key, role_source, status, source, metadata,
                                 last_change, created_at, updated_at)
        select ${membershipId}, u.organization_id, u.id, r.key, '{"kind":"default"}'::jsonb, ${status}, 'scim',
               ${JSON.stringify(metadata)}::jsonb, ${JSON.stringify(change)}::jsonb, ${now}::timestamptz,
               ${now}::timestamptz
        from u, r
        returning id, organization_id
      ), e as (
        insert into events (id, type, organization_id, data, created_at)
        select ${newId('event')}, 'user.created', u.organization_id, ${JSON.stringify(toUser(row))}::jsonb,
               ${now}::timestamptz
        from u
        union all
        select ${newId('event')}, 'membership.created', m.organization_id,
               ${JSON.stringify(membershipData)}::jsonb || jsonb_build_object('role', r.key, 'permissions', r.permissions),
               ${now}::timestamptz
        from m, r
        returning seq
      ), q as (
        insert into event_queue (seq) select seq from e
      )
      select u.* from u`.execute(db);
    return rows[0];
  });
  if (!inserted) throw uniqueness(`User with userName "${row.user_name}" already exists`);
  return inserted;
}

interface LockedUser extends UserWithGroups {
  membership_id: string | null;
  membership_status: 'active' | 'inactive' | null;
  membership_metadata: JsonObject | null;
}

/** Locks the user row (`for update`) and reads its membership and groups in the same round trip. */
function lockUser(trx: Transaction<DB>, principal: ScimPrincipal, id: string): Promise<LockedUser> {
  return readUser(trx, principal, id, true);
}

/** The user with its membership and groups; locked (`for update`) inside a transaction if asked. */
async function readUser(
  db: Transaction<DB> | Kysely<DB>,
  principal: ScimPrincipal,
  id: string,
  lock: boolean,
): Promise<LockedUser> {
  const query = db
    .selectFrom('users as u')
    .leftJoin('memberships as m', (join) =>
      join.onRef('m.user_id', '=', 'u.id').onRef('m.organization_id', '=', 'u.organization_id'),
    )
    .selectAll('u')
    .select(['m.id as membership_id', 'm.status as membership_status', 'm.metadata as membership_metadata'])
    .select(groupsOf.as('groups'))
    .where('u.id', '=', id)
    .where('u.connection_id', '=', principal.connectionId)
    .where('u.deleted_at', 'is', null);
  const row = await (lock ? query.forUpdate(['u']) : query).executeTakeFirst();
  if (!row) throw notFound(`User ${id} not found`);
  return row as LockedUser;
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Top-level attribute names (extension attributes as `urn:…:name`) whose values differ. */
function changedAttributes(before: ScimObject, after: ScimObject): string[] {
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
      const before = await lockUser(trx, principal, id);
      checkIfMatch(ifMatch, before.version);
      return applyUserChange(ctx, trx, principal, before, next(before), change);
    }),
  );
}

/** The attributes as stored: `active` defaults to the current value. */
function storedAttributes(before: LockedUser, attributes: ScimObject): ScimObject {
  return {
    ...attributes,
    active: attributes.active === undefined ? before.active : attributes.active !== false,
  };
}

/** The user events of a change: `user.updated` for attributes, `user.deactivated`/`reactivated` for `active`. */
function userEvents(before: UserRow, after: UserRow, changed: string[]): NewEvent[] {
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
async function writeUserChange(
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

function withoutMembership(user: LockedUser): UserWithGroups {
  const { membership_id: _m, membership_status: _s, membership_metadata: _d, ...rest } = user;
  return rest;
}

/**
 * Deletes a user: 404 afterwards, out of every group, membership removed, sessions revoked. One
 * read, then one autocommit statement guarded by the version read ({@link writeUserDeletion});
 * the locking transaction when that keeps losing races or the deprovisioning guard must count
 * it. The row is kept (soft-deleted) for the retention window, then purged.
 */
export async function deleteScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
): Promise<void> {
  for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
    const before = await readUser(ctx.db, principal, id, false);
    checkIfMatch(ifMatch, before.version);
    const written = await writeUserDeletion(ctx, principal, before);
    if (written === 'guarded') break;
    if (written) return;
  }
  await withDeprovisionGuard(ctx, () =>
    ctx.transaction(async (trx) => {
      const before = await lockUser(trx, principal, id);
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

/**
 * The deletion in one statement, set-based: the user soft-deleted (if it still has the version
 * read), its sessions revoked, its group rows removed with exact member counts, its membership
 * deleted, and their events in the order of the locking path (`session.revoked`,
 * `group.user_removed`, `membership.deleted`, `user.deleted`). The guard is read as in
 * {@link writeUserChange}.
 */
async function writeUserDeletion(
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
      ), u as (
        update users set deleted_at = ${now}, updated_at = ${now}, version = ${deleted.version}
        where id = ${before.id} and version = ${before.version} and deleted_at is null
          and not exists (select 1 from guard where holds)
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
