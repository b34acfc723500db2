import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { DB, GroupRow, LastChange } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { appendEvents, type NewEvent } from '../events/outbox.js';
import { newId } from '../ids.js';
import type { ScimObject } from '../scim/core/resource.js';
import { GROUP_RESOURCE } from '../scim/core/schemas.js';
import {
  applyPatch,
  type MemberChange,
  type PatchOperation,
  type PatchOutcome,
} from '../scim/patch/patch.js';
import { scimNotFound } from '../scim/protocol/error.js';
import { checkIfMatch } from '../scim/protocol/etag.js';
import type { ScimPrincipal } from '../scim-principal.js';
import { isMappedGroup, lockRoleInputs, resolveRoles } from './role-resolution.js';
import { groupFilterSql, sortExpression } from './scim-filter-sql.js';
import { type ListQuery, type ListResult, listPage } from './scim-paging.js';
import { changedAttributes } from './scim-writes.js';
import { toGroup } from './serialize.js';

/**
 * The SCIM group store of one connection. Membership is a set of rows changed with set operations
 * (insert … on conflict do nothing, delete … where) under a lock on the group row, never by
 * rewriting a member list: two PATCHes adding different members both take effect, re-adding a
 * member succeeds, and `member_count` stays exact. Ids that are not users of this connection are
 * ignored (and reported), so one unknown id does not lose a whole push (fleetdm/fleet#52600).
 */

export interface MembersApplied {
  added: number;
  removed: number;
  /** Member ids that are not users of this connection; ignored. */
  unknown: string[];
}

interface MembersWritten extends MembersApplied {
  /** The group row after the change (the given one when nothing changed). */
  group: GroupRow;
}

export async function listScimGroups(
  ctx: Context,
  principal: ScimPrincipal,
  query: ListQuery,
): Promise<ListResult<GroupRow>> {
  return listPage<GroupRow>(ctx.db, query, {
    table: 'groups',
    alias: 'g',
    connectionId: principal.connectionId,
    filter: query.filter ? groupFilterSql(query.filter) : undefined,
    sort: sortExpression('Group', query.sortBy),
  });
}

export async function getScimGroup(ctx: Context, principal: ScimPrincipal, id: string): Promise<GroupRow> {
  const row = await ctx.db
    .selectFrom('groups')
    .selectAll()
    .where('id', '=', id)
    .where('connection_id', '=', principal.connectionId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (!row) throw scimNotFound(`Group ${id} not found`);
  return row;
}

export interface MemberRef {
  value: string;
  display: string;
}

/** Members of the given groups, by group id, in a stable order. */
export async function membersOfGroups(
  ctx: Context,
  groupIds: readonly string[],
): Promise<Map<string, MemberRef[]>> {
  const byGroup = new Map<string, MemberRef[]>();
  if (groupIds.length === 0) return byGroup;
  const rows = await ctx.db
    .selectFrom('group_members as gm')
    .innerJoin('users as u', 'u.id', 'gm.user_id')
    .select(['gm.group_id', 'u.id', 'u.user_name', 'u.display_name'])
    .where(sql<boolean>`gm.group_id = ${anyText(groupIds)}`)
    .orderBy('gm.group_id')
    .orderBy('u.id')
    .execute();
  for (const row of rows) {
    const list = byGroup.get(row.group_id) ?? [];
    list.push({ value: row.id, display: row.display_name ?? row.user_name });
    byGroup.set(row.group_id, list);
  }
  return byGroup;
}

/**
 * Locks a group for a change, honouring `If-Match`. The connection's role inputs are locked first
 * (shared; see lockRoleInputs): every group change may re-resolve roles, and that lock must come
 * before any row lock.
 */
async function lockGroup(
  trx: Transaction<DB>,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
): Promise<GroupRow> {
  await lockRoleInputs(trx, principal.connectionId, 'shared');
  const row = await trx
    .selectFrom('groups')
    .selectAll()
    .where('id', '=', id)
    .where('connection_id', '=', principal.connectionId)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw scimNotFound(`Group ${id} not found`);
  checkIfMatch(ifMatch, row.version);
  return row;
}

interface MemberRow {
  id: string;
  user_name: string;
  email: string | null;
}

/**
 * Applies member changes in order with set operations, then records the net effect: counts,
 * `group.user_added` / `group.user_removed` events, and role recomputation for those users.
 */
async function applyMemberChanges(
  trx: Transaction<DB>,
  now: Date,
  principal: ScimPrincipal,
  group: GroupRow,
  changes: readonly MemberChange[],
  change: LastChange,
): Promise<MembersWritten> {
  const net = new Map<string, { kind: 'added' | 'removed'; user: MemberRow }>();
  const unknown = new Set<string>();
  const note = (kind: 'added' | 'removed', user: MemberRow) => {
    const previous = net.get(user.id);
    if (previous && previous.kind !== kind) net.delete(user.id);
    else net.set(user.id, { kind, user });
  };

  const add = async (ids: readonly string[]) => {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return;
    const { rows } = await sql<MemberRow & { inserted: boolean }>`
      with valid as (
        select u.id, u.organization_id, u.user_name, u.email from users u
        where u.id = ${anyText(unique)} and u.connection_id = ${principal.connectionId} and u.deleted_at is null
      ), inserted as (
        insert into group_members (group_id, user_id, organization_id, created_at)
        select ${group.id}, v.id, v.organization_id, ${now} from valid v
        on conflict do nothing
        returning user_id
      )
      select v.id, v.user_name, v.email, exists (select 1 from inserted i where i.user_id = v.id) as inserted
      from valid v`.execute(trx);
    const valid = new Set(rows.map((row) => row.id));
    for (const id of unique) if (!valid.has(id)) unknown.add(id);
    for (const row of rows) if (row.inserted) note('added', row);
  };

  const remove = async (where: ReturnType<typeof sql>) => {
    const { rows } = await sql<MemberRow>`
      delete from group_members gm using users u
      where gm.group_id = ${group.id} and u.id = gm.user_id and ${where}
      returning u.id, u.user_name, u.email`.execute(trx);
    for (const row of rows) note('removed', row);
  };

  for (const memberChange of changes) {
    switch (memberChange.kind) {
      case 'add':
        await add(memberChange.ids);
        break;
      case 'remove':
        if (memberChange.ids.length) await remove(sql`gm.user_id = ${anyText(memberChange.ids)}`);
        break;
      case 'removeAll':
        await remove(sql`true`);
        break;
      case 'replace':
        await remove(
          memberChange.ids.length ? sql`not (gm.user_id = ${anyText(memberChange.ids)})` : sql`true`,
        );
        await add(memberChange.ids);
        break;
    }
  }

  const entries = [...net.values()];
  const added = entries.filter((e) => e.kind === 'added').length;
  const removed = entries.length - added;
  let updated = group;
  if (entries.length > 0) {
    updated = await trx
      .updateTable('groups')
      .set((eb) => ({
        member_count: eb('member_count', '+', added - removed),
        version: eb('version', '+', 1),
        updated_at: now,
      }))
      .where('id', '=', group.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendEvents(
      trx,
      entries.map(({ kind, user }) => ({
        type: kind === 'added' ? ('group.user_added' as const) : ('group.user_removed' as const),
        organizationId: group.organization_id,
        data: {
          object: 'group_membership',
          organization_id: group.organization_id,
          connection_id: group.connection_id,
          group: { id: group.id, name: updated.display_name },
          user: { id: user.id, user_name: user.user_name, email: user.email },
        },
      })),
    );
    if (await isMappedGroup(trx, group.id)) {
      await resolveRoles(
        trx,
        now,
        { connectionId: principal.connectionId, userIds: entries.map((e) => e.user.id) },
        change,
      );
    }
  }
  return { added, removed, unknown: [...unknown], group: updated };
}

/** Splits a normalised group body into its stored attributes and its member ids. */
export function splitMembers(attributes: ScimObject): {
  attributes: ScimObject;
  memberIds: string[] | undefined;
} {
  const { members, ...rest } = attributes;
  if (members === undefined) return { attributes: rest, memberIds: undefined };
  const ids = (members as { value?: unknown }[])
    .map((m) => m.value)
    .filter((v): v is string => typeof v === 'string');
  return { attributes: rest, memberIds: ids };
}

export async function createScimGroup(
  ctx: Context,
  principal: ScimPrincipal,
  attributes: ScimObject,
  memberIds: readonly string[],
  change: LastChange,
): Promise<{ group: GroupRow; members: MembersApplied }> {
  return ctx.transaction(async (trx) => {
    await lockRoleInputs(trx, principal.connectionId, 'shared');
    const now = ctx.now();
    const group = await trx
      .insertInto('groups')
      .values({
        id: newId('group', now.getTime()),
        organization_id: principal.organizationId,
        connection_id: principal.connectionId,
        display_name: attributes.displayName as string,
        external_id: typeof attributes.externalId === 'string' ? attributes.externalId : null,
        attributes: JSON.stringify(attributes),
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendEvents(trx, [
      { type: 'group.created', organizationId: group.organization_id, data: toGroup(group) },
    ]);
    const { group: after, ...members } = await applyMemberChanges(
      trx,
      now,
      principal,
      group,
      [{ kind: 'add', ids: [...memberIds] }],
      change,
    );
    return { group: after, members };
  });
}

/** Writes changed attributes of a locked group; a new name or externalId re-resolves its members' roles. */
async function applyGroupChange(
  trx: Transaction<DB>,
  now: Date,
  principal: ScimPrincipal,
  before: GroupRow,
  attributes: ScimObject,
  change: LastChange,
): Promise<GroupRow> {
  if (JSON.stringify(attributes) === JSON.stringify(before.attributes)) return before;
  const after = await trx
    .updateTable('groups')
    .set({
      display_name: attributes.displayName as string,
      external_id: typeof attributes.externalId === 'string' ? attributes.externalId : null,
      attributes: JSON.stringify(attributes),
      version: before.version + 1,
      updated_at: now,
    })
    .where('id', '=', before.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  const changed = changedAttributes(before.attributes, attributes);
  const events: NewEvent[] = [
    {
      type: 'group.updated',
      organizationId: after.organization_id,
      data: { ...toGroup(after), changed_attributes: changed },
    },
  ];
  await appendEvents(trx, events);
  if (after.display_name !== before.display_name || after.external_id !== before.external_id) {
    await resolveRoles(trx, now, { connectionId: principal.connectionId, groupId: after.id }, change);
  }
  return after;
}

/** PUT: the group becomes exactly `attributes` with exactly `memberIds`. */
export function replaceScimGroup(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  attributes: ScimObject,
  memberIds: readonly string[],
  ifMatch: string | undefined,
  change: LastChange,
): Promise<{ group: GroupRow; members: MembersApplied }> {
  return changeGroup(ctx, principal, id, ifMatch, change, () => ({
    attributes,
    members: [{ kind: 'replace', ids: [...memberIds] }],
  }));
}

/** PATCH: the operations applied to the group as it is, member changes as set operations. */
export function patchScimGroup(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  operations: PatchOperation[],
  ifMatch: string | undefined,
  change: LastChange,
): Promise<{ group: GroupRow; members: MembersApplied }> {
  return changeGroup(ctx, principal, id, ifMatch, change, (before) =>
    applyPatch(GROUP_RESOURCE, before.attributes, operations),
  );
}

/** Locks the group, then writes the attributes and member changes `plan` derives from it. */
function changeGroup(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
  change: LastChange,
  plan: (before: GroupRow) => PatchOutcome,
): Promise<{ group: GroupRow; members: MembersApplied }> {
  return ctx.transaction(async (trx) => {
    const now = ctx.now();
    const before = await lockGroup(trx, principal, id, ifMatch);
    const next = plan(before);
    const renamed = await applyGroupChange(trx, now, principal, before, next.attributes, change);
    const { group, ...members } = await applyMemberChanges(
      trx,
      now,
      principal,
      renamed,
      next.members,
      change,
    );
    return { group, members };
  });
}

/**
 * Deletes a group: 404 afterwards, its member rows removed (roles of former members re-resolved),
 * `group.deleted` on the feed. The row is kept (soft-deleted) for the retention window.
 */
export async function deleteScimGroup(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
  change: LastChange,
): Promise<void> {
  await ctx.transaction(async (trx) => {
    const now = ctx.now();
    const before = await lockGroup(trx, principal, id, ifMatch);
    const formerMembers = await trx
      .deleteFrom('group_members')
      .where('group_id', '=', id)
      .returning('user_id')
      .execute();
    const deleted = await trx
      .updateTable('groups')
      .set({ deleted_at: now, updated_at: now, member_count: 0, version: before.version + 1 })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendEvents(trx, [
      { type: 'group.deleted', organizationId: deleted.organization_id, data: toGroup(deleted) },
    ]);
    if (await isMappedGroup(trx, id)) {
      await resolveRoles(
        trx,
        now,
        { connectionId: principal.connectionId, userIds: formerMembers.map((m) => m.user_id) },
        change,
      );
    }
  });
}
