import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import { isUniqueViolation } from '../db/errors.js';
import type { DB, LastChange, UserRow } from '../db/schema.js';
import { appendEvents, type NewEvent } from '../events/outbox.js';
import { newId } from '../ids.js';
import type { ScimObject } from '../scim/core/resource.js';
import { USER_RESOURCE } from '../scim/core/schemas.js';
import type { Filter } from '../scim/filter/ast.js';
import { applyPatch, type PatchOperation } from '../scim/patch/patch.js';
import { notFound, uniqueness } from '../scim/protocol/error.js';
import { checkIfMatch } from '../scim/protocol/etag.js';
import type { ScimPrincipal } from './connections.js';
import { appendMembershipEvents } from './memberships-core.js';
import { sortExpression, userFilterSql } from './scim-filter-sql.js';
import { toMembership, toUser } from './serialize.js';
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

export async function listScimUsers(
  ctx: Context,
  principal: ScimPrincipal,
  query: ListQuery,
): Promise<ListResult<UserRow>> {
  let base = ctx.db
    .selectFrom('users as u')
    .where('u.connection_id', '=', principal.connectionId)
    .where('u.deleted_at', 'is', null);
  if (query.filter) base = base.where(userFilterSql(query.filter));
  const sort = sortExpression('User', query.sortBy);
  const direction = sql.raw(query.sortOrder === 'descending' ? 'desc' : 'asc');
  const rows =
    query.count === 0
      ? []
      : await base
          .selectAll('u')
          .orderBy(sort ? sql`${sort} ${direction}` : sql`u.id`)
          .orderBy('u.id')
          .limit(query.count)
          .offset(query.startIndex - 1)
          .execute();
  // A first page that is not full is the whole result: skip the count (the IdP lookup case).
  const total =
    query.startIndex === 1 && rows.length < query.count
      ? rows.length
      : Number((await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  return { rows, total };
}

export async function getScimUser(ctx: Context, principal: ScimPrincipal, id: string): Promise<UserRow> {
  const row = await ctx.db
    .selectFrom('users')
    .selectAll()
    .where('id', '=', id)
    .where('connection_id', '=', principal.connectionId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (!row) throw notFound(`User ${id} not found`);
  return row;
}

/** The `groups` attribute (RFC 7643 §4.1.2) of each user, by user id. */
export async function groupsOfUsers(
  ctx: Context,
  userIds: readonly string[],
): Promise<Map<string, { value: string; display: string }[]>> {
  const byUser = new Map<string, { value: string; display: string }[]>();
  if (userIds.length === 0) return byUser;
  const rows = await ctx.db
    .selectFrom('group_members as gm')
    .innerJoin('groups as g', 'g.id', 'gm.group_id')
    .select(['gm.user_id', 'g.id', 'g.display_name'])
    .where('gm.user_id', 'in', userIds)
    .where('g.deleted_at', 'is', null)
    .orderBy('g.display_name')
    .execute();
  for (const row of rows) {
    const list = byUser.get(row.user_id) ?? [];
    list.push({ value: row.id, display: row.display_name });
    byUser.set(row.user_id, list);
  }
  return byUser;
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
    row,
    [],
  );
  const { role: _role, permissions: _permissions, ...membershipData } = membershipTemplate;

  const inserted = await ctx.transaction(async (trx) => {
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
        returning 1
      )
      select u.*, (select count(*) from e) as events from u`.execute(trx);
    return rows[0];
  });
  if (!inserted) throw uniqueness(`User with userName "${row.user_name}" already exists`);
  const { events: _events, ...user } = inserted as UserRow & { events?: number };
  return user as UserRow;
}

async function lockUser(trx: Transaction<DB>, principal: ScimPrincipal, id: string): Promise<UserRow> {
  const row = await trx
    .selectFrom('users')
    .selectAll()
    .where('id', '=', id)
    .where('connection_id', '=', principal.connectionId)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw notFound(`User ${id} not found`);
  return row;
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
 */
async function applyUserChange(
  ctx: Context,
  trx: Transaction<DB>,
  principal: ScimPrincipal,
  before: UserRow,
  attributes: ScimObject,
  change: LastChange,
): Promise<UserRow> {
  const now = ctx.now();
  const stored: ScimObject = {
    ...attributes,
    active: attributes.active === undefined ? before.active : attributes.active !== false,
  };
  const changed = changedAttributes(before.attributes, stored);
  if (changed.length === 0) return before;
  const columns = userColumns(stored);
  let after: UserRow;
  try {
    after = await trx
      .updateTable('users')
      .set({
        ...columns,
        attributes: JSON.stringify(stored),
        version: before.version + 1,
        updated_at: now,
      })
      .where('id', '=', before.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (error) {
    if (isUniqueViolation(error))
      throw uniqueness(`User with userName "${columns.user_name}" already exists`);
    throw error;
  }

  const events: NewEvent[] = [];
  const others = changed.filter((name) => name !== 'active');
  if (others.length > 0) {
    events.push({
      type: 'user.updated',
      organizationId: after.organization_id,
      data: { ...toUser(after), changed_attributes: others },
    });
  }
  if (before.active && !after.active) {
    events.push({ type: 'user.deactivated', organizationId: after.organization_id, data: toUser(after) });
  } else if (!before.active && after.active) {
    events.push({ type: 'user.reactivated', organizationId: after.organization_id, data: toUser(after) });
  }
  await appendEvents(trx, events);

  // The membership follows: status from `active`, metadata from the mapped attributes.
  const status = after.active ? 'active' : 'inactive';
  const metadata = membershipMetadata(stored, principal.attributeMappings);
  const membership = await trx
    .selectFrom('memberships')
    .select(['id', 'status', 'metadata'])
    .where('user_id', '=', after.id)
    .where('organization_id', '=', after.organization_id)
    .executeTakeFirst();
  if (membership) {
    const membershipChanged = [
      ...(membership.status !== status ? ['status'] : []),
      ...(!sameJson(membership.metadata, metadata) ? ['metadata'] : []),
    ];
    const userFieldsChanged = changed.some((name) =>
      ['userName', 'emails', 'displayName', 'name', 'active'].includes(name),
    );
    if (membershipChanged.length > 0) {
      await trx
        .updateTable('memberships')
        .set({
          status,
          metadata: JSON.stringify(metadata),
          updated_at: now,
          last_change: JSON.stringify(change),
        })
        .where('id', '=', membership.id)
        .execute();
    }
    if (membershipChanged.length > 0 || userFieldsChanged) {
      await appendMembershipEvents(
        trx,
        'membership.updated',
        [membership.id],
        membershipChanged.length ? membershipChanged : ['user'],
      );
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
): Promise<UserRow> {
  return ctx.transaction(async (trx) => {
    const before = await lockUser(trx, principal, id);
    checkIfMatch(ifMatch, before.version);
    return applyUserChange(ctx, trx, principal, before, attributes, change);
  });
}

export async function patchScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  operations: PatchOperation[],
  ifMatch: string | undefined,
  change: LastChange,
): Promise<UserRow> {
  return ctx.transaction(async (trx) => {
    const before = await lockUser(trx, principal, id);
    checkIfMatch(ifMatch, before.version);
    const { attributes } = applyPatch(USER_RESOURCE, before.attributes, operations);
    return applyUserChange(ctx, trx, principal, before, attributes, change);
  });
}

/**
 * Deletes a user: 404 afterwards, out of every group, membership removed, sessions revoked, all in
 * one transaction. The row is kept (soft-deleted) for the retention window, then purged.
 */
export async function deleteScimUser(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
): Promise<void> {
  await ctx.transaction(async (trx) => {
    const before = await lockUser(trx, principal, id);
    checkIfMatch(ifMatch, before.version);
    const now = ctx.now();
    await revokeSessionsWhere(trx, now, { userId: id }, 'user_deleted');
    await removeFromAllGroups(trx, now, before);
    const membership = await trx
      .selectFrom('memberships')
      .select('id')
      .where('user_id', '=', id)
      .executeTakeFirst();
    if (membership) {
      await appendMembershipEvents(trx, 'membership.deleted', [membership.id]);
      await trx.deleteFrom('memberships').where('id', '=', membership.id).execute();
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
  });
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
