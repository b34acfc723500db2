import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Context } from '../context.js';
import type { DB, GroupRow, JsonObject, LastChange } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { eventCtes } from '../events/outbox.js';
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
import {
  inRoleInputsTransaction,
  mappingNamesGroup,
  roleChangeEvents,
  roleResolutionCtes,
} from './role-resolution.js';
import { groupFilter, sortExpression } from './scim-filter-sql.js';
import { type ListQuery, type ListResult, listPage } from './scim-paging.js';
import { changedAttributes } from './scim-writes.js';
import { toGroup } from './serialize.js';
import { groupJson, groupMembershipJson } from './serialize-sql.js';

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

export async function listScimGroups(
  ctx: Context,
  principal: ScimPrincipal,
  query: ListQuery,
): Promise<ListResult<GroupRow>> {
  const filter = query.filter && groupFilter(query.filter);
  return listPage<GroupRow>(ctx.db, query, {
    table: 'groups',
    alias: 'g',
    connectionId: principal.connectionId,
    filter: filter?.sql,
    shape: filter?.shape && { filter: filter.shape, columnsKey: '' },
    sort: sortExpression('Group', query.sortBy),
    anchors: ctx.pageAnchors,
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

/** A group's member changes reduced to their net effect: members after = (kept ∩ before) ∪ plus. */
interface MemberPlan {
  /** Whether members not in `excluded` stay (false after a `replace` or `removeAll`). */
  keepAll: boolean;
  excluded: Set<string>;
  plus: Set<string>;
  /** Every id an `add` or `replace` named: those that are not users of the connection are reported. */
  mentioned: Set<string>;
}

/**
 * Folds member changes, in order, into one set operation, so that one statement applies them
 * whatever they were: `add` joins `plus`; `remove` leaves `plus` and joins `excluded`; `replace`
 * and `removeAll` keep nothing of the members before, `replace` then adds its list.
 */
function memberPlan(changes: readonly MemberChange[]): MemberPlan {
  const plan: MemberPlan = { keepAll: true, excluded: new Set(), plus: new Set(), mentioned: new Set() };
  for (const change of changes) {
    switch (change.kind) {
      case 'add':
        for (const id of change.ids) {
          plan.plus.add(id);
          plan.mentioned.add(id);
        }
        break;
      case 'remove':
        for (const id of change.ids) {
          plan.plus.delete(id);
          plan.excluded.add(id);
        }
        break;
      case 'removeAll':
        plan.keepAll = false;
        plan.excluded.clear();
        plan.plus.clear();
        break;
      case 'replace':
        plan.keepAll = false;
        plan.excluded.clear();
        plan.plus = new Set(change.ids);
        for (const id of change.ids) plan.mentioned.add(id);
        break;
    }
  }
  return plan;
}

const changesNothing = (plan: MemberPlan) =>
  plan.keepAll && plan.excluded.size === 0 && plan.plus.size === 0 && plan.mentioned.size === 0;

/** A new name, externalId or other attributes of a group, and its `group.updated` body. */
interface AttributeChange {
  attributes: ScimObject;
  event: JsonObject;
}

type ChangeWrite = Extract<GroupWrite, { kind: 'change' }>;

type GroupWrite =
  | { kind: 'create'; group: GroupRow; members: MemberPlan }
  | {
      kind: 'change';
      id: string;
      /** The version the change was computed from; undefined for member changes, which need none. */
      expectedVersion: number | undefined;
      attributes: AttributeChange | undefined;
      members: MemberPlan;
    }
  | { kind: 'delete'; id: string; expectedVersion: number | undefined };

interface Written {
  /** The group as the statement left it; undefined when there is no such live group. */
  group: GroupRow | undefined;
  /** The group changed since the statement's snapshot (or since `expectedVersion`): nothing written. */
  stale: boolean;
  added: number;
  removed: number;
  /** The ids of `mentioned` that are users of the connection. */
  valid: string[];
  /** A mapping names the group (before or after the change). */
  mapped: boolean;
  /** The group is mapped and the transaction holds the role inputs only shared: nothing written. */
  needsExclusive: boolean;
}

/**
 * One statement for a whole group change: the group row locked (or inserted), the member rows
 * inserted and deleted as sets, the group's count and version, the events (`group.*`, one
 * `group.user_added` / `group.user_removed` per member that really joined or left), and the roles
 * of the members whose groups changed, re-resolved when a role mapping names the group, with their
 * `membership.updated` events. The caller runs it under {@link inRoleInputsTransaction}.
 *
 * A statement reads from the snapshot it started with, which is older than the group row lock when
 * it had to wait for that lock: so the lock is taken first, and when the locked row's version is
 * not the one the snapshot sees (another change committed meanwhile), nothing is written and the
 * caller runs the statement again, now holding the lock (every change of a group's members bumps
 * its version). Member rows of the group as the snapshot sees them are then the current ones.
 *
 * A change of a group that a mapping names must hold the role inputs exclusive (see
 * {@link lockRoleInputs}): the members' other groups it resolves roles from must not change
 * meanwhile. Whether it is mapped is known from the locked row and the statement's snapshot of
 * the mappings (which cannot change while the lock is held), so without `exclusive` a mapped
 * group is left untouched and `needsExclusive` tells the caller to run it again holding it.
 */
async function writeGroup(
  trx: Kysely<DB>,
  now: Date,
  principal: ScimPrincipal,
  change: LastChange,
  write: GroupWrite,
  exclusive: boolean,
): Promise<Written> {
  const connectionId = principal.connectionId;
  const members: MemberPlan =
    write.kind === 'delete'
      ? { keepAll: false, excluded: new Set(), plus: new Set(), mentioned: new Set() }
      : write.members;
  const attributes = write.kind === 'change' ? write.attributes : undefined;
  const plus = [...members.plus];
  const name = attributes ? (attributes.attributes.displayName as string) : undefined;
  const externalId = attributes
    ? typeof attributes.attributes.externalId === 'string'
      ? attributes.attributes.externalId
      : null
    : undefined;

  // `mapped`: a mapping names the group as it is (the locked row, or the one to create) or as it
  // will be. `blocked`: then only the exclusive lock lets the statement write. A new group without
  // members, or a new name for a group that is not there, resolves no role.
  const renamedTo =
    attributes !== undefined
      ? sql`union all select ${connectionId}::text, ${name}::text, ${externalId}::text`
      : sql``;
  const mapped = (groupNow: RawBuilder<unknown>) => sql`mapped as (
      select exists (
        select 1 from role_mappings rm
        cross join (${groupNow} ${renamedTo}) g (connection_id, display_name, external_id)
        where ${mappingNamesGroup}
      ) as yes
    ), blocked as (
      select ${!exclusive} and (select yes from mapped)
        and ${write.kind === 'create' ? sql`${plus.length > 0}` : sql`exists (select 1 from lk)`} as yes
    )`;
  // `cur`: the live group, locked, when the snapshot sees its current version (and the expected
  // one), and the statement may write.
  const current =
    write.kind === 'create'
      ? sql`${mapped(
          sql`select ${connectionId}::text, ${write.group.display_name}::text, ${write.group.external_id}::text`,
        )}, lk as (
            insert into groups (id, organization_id, connection_id, display_name, external_id, attributes,
                                member_count, version, created_at, updated_at)
            select ${write.group.id}, ${write.group.organization_id}, ${connectionId}, ${write.group.display_name},
                   ${write.group.external_id}, ${JSON.stringify(write.group.attributes)}::jsonb,
                   n.count, case when n.count > 0 then 2 else 1 end, ${now}, ${now}
            from (select count(*)::int as count from valid v where v.id = ${anyText(plus)}) n
            where not (select yes from blocked)
            returning *
          ), cur as (select * from lk)`
      : sql`lk as (
            select * from groups
            where id = ${write.id} and connection_id = ${connectionId} and deleted_at is null
            for update
          ), ${mapped(sql`select connection_id, display_name, external_id from lk`)}, cur as (
            select lk.* from lk join groups seen on seen.id = lk.id and seen.version = lk.version
            where (${write.expectedVersion ?? null}::int is null or lk.version = ${write.expectedVersion ?? null}::int)
              and not (select yes from blocked)
          )`;
  // `valid`: the users named that are live users of the connection, held `for share` until the
  // commit: a deletion of one of them waits for this statement, or this statement waits for the
  // deletion and then no longer finds the user live (the row is checked again once locked), so
  // that a deleted user is never added (see migration 0011 for the deletion's side). Locked after
  // the group (`exists (select 1 from cur)`), in id order as deletions lock them (a batch of
  // deletions and an add of the same two users in opposite orders deadlocked); a new group is
  // locked by no one else, and counts its members from these rows.
  const validUsers = sql`valid as (
      select u.id, u.organization_id, u.user_name, u.email from users u
      where u.id = ${anyText([...members.mentioned])} and u.connection_id = ${connectionId} and u.deleted_at is null
        ${write.kind === 'create' ? sql`` : sql`and exists (select 1 from cur)`}
      order by u.id
      for share
    )`;
  // Member rows of the group after the statement, for a target user `t` (null when deleted).
  const renamed = attributes !== undefined;
  const staysMember =
    write.kind === 'delete'
      ? sql`false`
      : sql`(t.user_id in (select user_id from added)
              or (exists (select 1 from group_members x where x.group_id = (select id from cur) and x.user_id = t.user_id)
                  and t.user_id not in (select id from removed)))`;
  const groupAfter =
    write.kind === 'change' && attributes
      ? sql`select ${name}::text as display_name, ${externalId}::text as external_id`
      : sql`select display_name, external_id from cur`;
  const memberOf = (targets: RawBuilder<unknown>) =>
    sql`select gm.user_id, g.id, g.display_name, g.external_id, g.connection_id
      from group_members gm join groups g on g.id = gm.group_id and g.deleted_at is null
      where gm.user_id in (select user_id from ${targets}) and gm.group_id <> (select id from cur)
      union all
      select t.user_id, c.id, a.display_name, a.external_id, c.connection_id
      from ${targets} t cross join cur c cross join (${groupAfter}) a
      where ${staysMember}`;

  const { rows } = await sql<
    {
      found: boolean;
      stale: boolean;
      added: number;
      removed: number;
      valid: string[];
      mapped: boolean;
      needs_exclusive: boolean;
    } & Partial<GroupRow>
  >`
    with ${write.kind === 'create' ? sql`${validUsers}, ${current}` : sql`${current}, ${validUsers}`}, removed as (${
      // Chosen when the statement is built, not by a condition inside it: a condition that is
      // false only at run time (`false or user_id = any('{}')`) still walks every member row of
      // the group, so an add to a 50,000-member group cost as much as a replace.
      write.kind === 'create' || (members.keepAll && members.excluded.size === 0)
        ? sql`select null::text as id, null::text as user_name, null::text as email where false`
        : sql`delete from group_members gm using users u
            where gm.group_id = (select id from cur) and u.id = gm.user_id
              ${members.keepAll ? sql`and gm.user_id = ${anyText([...members.excluded])}` : sql``}
              and not (gm.user_id = ${anyText(plus)})
            returning u.id, u.user_name, u.email`
    }), added as (
      insert into group_members (group_id, user_id, organization_id, created_at)
      select c.id, v.id, v.organization_id, ${now} from cur c cross join valid v where v.id = ${anyText(plus)}
      on conflict do nothing
      returning user_id
    ), g as (
      update groups g set
        ${
          attributes
            ? sql`display_name = ${name}, external_id = ${externalId},
                  attributes = ${JSON.stringify(attributes.attributes)}::jsonb,`
            : sql``
        }
        ${write.kind === 'delete' ? sql`deleted_at = ${now},` : sql``}
        ${
          write.kind === 'delete'
            ? sql`member_count = 0, version = g.version + 1,`
            : sql`member_count = g.member_count + (select count(*) from added) - (select count(*) from removed),
                  version = g.version + ${renamed ? 1 : 0}
                    + case when exists (select 1 from added) or exists (select 1 from removed) then 1 else 0 end,`
        }
        updated_at = ${now}
      from cur
      where g.id = cur.id and ${write.kind !== 'create'}
        and (${renamed || write.kind === 'delete'} or exists (select 1 from added) or exists (select 1 from removed))
      returning g.*
    ), after as (
      select * from g union all select * from cur where not exists (select 1 from g)
    ), ${roleResolutionCtes(
      'resolved_roles',
      {
        connectionId,
        targets: sql`select x.id from (
            select id from removed union all select user_id from added
            ${renamed ? sql`union all select user_id from group_members where group_id = (select id from cur)` : sql``}
          ) x where (select yes from mapped)`,
        memberOf,
      },
      now,
      change,
    )}, ${eventCtes(
      'e',
      sql`${
        write.kind === 'create'
          ? sql`select '0' as ord, 'group.created'::text as type, c.organization_id,
                  ${JSON.stringify(toGroup(write.group))}::jsonb as data from cur c
                union all `
          : write.kind === 'delete'
            ? sql`select '0' as ord, 'group.deleted'::text as type, a.organization_id, ${groupJson('a')} as data
                from g a
                union all `
            : attributes
              ? sql`select '0' as ord, 'group.updated'::text as type, a.organization_id,
                      ${JSON.stringify(attributes.event)}::jsonb as data from g a
                    union all `
              : sql``
      }
      select '1:' || r.id as ord, 'group.user_removed'::text as type, a.organization_id,
        ${groupMembershipJson('a', 'r')} as data
      from removed r cross join after a where ${write.kind !== 'delete'}
      union all
      select '2:' || v.id, 'group.user_added', a.organization_id, ${groupMembershipJson('a', 'v')}
      from added i join valid v on v.id = i.user_id cross join after a
      union all
      ${roleChangeEvents('resolved_roles', '3:')}`,
    )}
    select exists (select 1 from lk) as found,
      exists (select 1 from lk) and not exists (select 1 from cur) and not (select yes from blocked) as stale,
      (select yes from mapped) as mapped, (select yes from blocked) as needs_exclusive,
      (select count(*) from added)::int as added, (select count(*) from removed)::int as removed,
      array(select id from valid) as valid,
      (select count(*) from e) as events, (select count(*) from resolved_roles) as roles, a.*
    from (select 1) one left join after a on true`.execute(trx);
  const { found: _f, stale, added, removed, valid, mapped: isMapped, needs_exclusive, ...group } = rows[0]!;
  return {
    group: group.id ? (group as GroupRow) : undefined,
    stale,
    added,
    removed,
    valid,
    mapped: isMapped,
    needsExclusive: needs_exclusive,
  };
}

/**
 * Ids of the groups this process last found mapped: the lock mode a write of them starts with, so
 * that a mapped group's write does not first run shared only to be told to run again. A hint only:
 * {@link writeGroup} checks in its own snapshot. Bounded by forgetting everything when full.
 */
const mappedGroups = new Set<string>();
const MAPPED_GROUPS_HINTS = 10_000;

function rememberMapped(groupId: string, mapped: boolean): void {
  if (!mapped) {
    mappedGroups.delete(groupId);
    return;
  }
  if (mappedGroups.size >= MAPPED_GROUPS_HINTS) mappedGroups.clear();
  mappedGroups.add(groupId);
}

/**
 * Runs `fn` (one group write) in a transaction holding the role inputs: shared, unless the group
 * is known mapped; again holding them exclusive when `fn` answers that it needs that (nothing was
 * written: the first transaction ends with its row lock).
 */
async function inGroupWriteTransaction<T extends { written: Written | undefined }>(
  ctx: Context,
  principal: ScimPrincipal,
  groupId: string,
  fn: (trx: Kysely<DB>, exclusive: boolean) => Promise<T>,
): Promise<T> {
  const run = (exclusive: boolean) =>
    ctx.write((db) =>
      inRoleInputsTransaction(
        db,
        ctx.dbKind === 'postgres',
        principal.connectionId,
        (trx) => fn(trx, exclusive),
        exclusive ? 'exclusive' : 'shared',
      ),
    );
  const hinted = mappedGroups.has(groupId);
  let result = await run(hinted);
  if (result.written?.needsExclusive) result = await run(true);
  if (result.written) rememberMapped(groupId, result.written.mapped);
  return result;
}

/** Runs {@link writeGroup} in a transaction holding the role inputs, again if the group was stale. */
async function runGroupWrite(
  ctx: Context,
  principal: ScimPrincipal,
  change: LastChange,
  write: GroupWrite,
): Promise<Written> {
  const now = ctx.now();
  const groupId = write.kind === 'create' ? write.group.id : write.id;
  const { written } = await inGroupWriteTransaction(ctx, principal, groupId, async (trx, exclusive) => {
    const first = await writeGroup(trx, now, principal, change, write, exclusive);
    // Stale against the snapshot only: the row lock is held now, so this statement sees it current.
    if (
      first.needsExclusive ||
      !first.stale ||
      (write.kind !== 'create' && write.expectedVersion !== undefined)
    )
      return { written: first };
    return { written: await writeGroup(trx, now, principal, change, write, exclusive) };
  });
  return written;
}

function applied(written: Written, members: MemberPlan): MembersApplied {
  const valid = new Set(written.valid);
  return {
    added: written.added,
    removed: written.removed,
    unknown: [...members.mentioned].filter((id) => !valid.has(id)),
  };
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

/** A group and its members in one statement (see {@link writeGroup}). */
export async function createScimGroup(
  ctx: Context,
  principal: ScimPrincipal,
  attributes: ScimObject,
  memberIds: readonly string[],
  change: LastChange,
): Promise<{ group: GroupRow; members: MembersApplied }> {
  const now = ctx.now();
  const group: GroupRow = {
    id: newId('group', now.getTime()),
    organization_id: principal.organizationId,
    connection_id: principal.connectionId,
    display_name: attributes.displayName as string,
    external_id: typeof attributes.externalId === 'string' ? attributes.externalId : null,
    attributes: attributes as JsonObject,
    member_count: 0,
    version: 1,
    created_at: now,
    updated_at: now,
    deleted_at: null,
  };
  const members = memberPlan([{ kind: 'add', ids: [...memberIds] }]);
  const written = await runGroupWrite(ctx, principal, change, { kind: 'create', group, members });
  return { group: written.group!, members: applied(written, members) };
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

/** Operations that change members only: applied without reading the group first. */
function membersOnly(operations: PatchOperation[]): boolean {
  return operations.every((op) => op.path !== undefined && !op.path.uri && /^members$/i.test(op.path.attr));
}

/** PATCH: the operations applied to the group as it is, member changes as set operations. */
export async function patchScimGroup(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  operations: PatchOperation[],
  ifMatch: string | undefined,
  change: LastChange,
): Promise<{ group: GroupRow; members: MembersApplied }> {
  if (ifMatch === undefined && membersOnly(operations)) {
    // Member changes do not depend on the attributes (a placeholder name satisfies the check).
    const members = memberPlan(applyPatch(GROUP_RESOURCE, { displayName: '-' }, operations).members);
    const written = await runGroupWrite(ctx, principal, change, {
      kind: 'change',
      id,
      expectedVersion: undefined,
      attributes: undefined,
      members,
    });
    if (!written.group) throw scimNotFound(`Group ${id} not found`);
    return { group: written.group, members: applied(written, members) };
  }
  return changeGroup(ctx, principal, id, ifMatch, change, (before) =>
    applyPatch(GROUP_RESOURCE, before.attributes, operations),
  );
}

/** Optimistic attempts of a change computed from a read before the locking one. */
const OPTIMISTIC_ATTEMPTS = 3;

/**
 * A change that depends on the group as it is (new attributes, If-Match): read it, derive the
 * change with `plan`, and write it in one statement if the group still has the version read; read
 * again when another change came first. The last attempt reads it locked, in the transaction.
 */
async function changeGroup(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
  change: LastChange,
  plan: (before: GroupRow) => PatchOutcome,
): Promise<{ group: GroupRow; members: MembersApplied }> {
  const derive = (before: GroupRow): ChangeWrite | undefined => {
    checkIfMatch(ifMatch, before.version);
    const next = plan(before);
    const members = memberPlan(next.members);
    const renamed = JSON.stringify(next.attributes) !== JSON.stringify(before.attributes);
    if (!renamed && changesNothing(members)) return undefined;
    const now = ctx.now();
    const after: GroupRow = {
      ...before,
      display_name: next.attributes.displayName as string,
      external_id: typeof next.attributes.externalId === 'string' ? next.attributes.externalId : null,
      attributes: next.attributes as JsonObject,
      version: before.version + 1,
      updated_at: now,
    };
    return {
      kind: 'change',
      id,
      expectedVersion: before.version,
      attributes: renamed
        ? {
            attributes: next.attributes,
            event: {
              ...toGroup(after),
              changed_attributes: changedAttributes(before.attributes, next.attributes),
            },
          }
        : undefined,
      members,
    };
  };
  const none: MembersApplied = { added: 0, removed: 0, unknown: [] };
  for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
    const before = await getScimGroup(ctx, principal, id);
    const write = derive(before);
    if (!write) return { group: before, members: none };
    const written = await runGroupWrite(ctx, principal, change, write);
    if (written.stale) continue;
    if (!written.group) throw scimNotFound(`Group ${id} not found`);
    return { group: written.group, members: applied(written, write.members) };
  }
  const now = ctx.now();
  const { group, members } = await inGroupWriteTransaction(ctx, principal, id, async (trx, exclusive) => {
    const before = await trx
      .selectFrom('groups')
      .selectAll()
      .where('id', '=', id)
      .where('connection_id', '=', principal.connectionId)
      .where('deleted_at', 'is', null)
      .forUpdate()
      .executeTakeFirst();
    if (!before) throw scimNotFound(`Group ${id} not found`);
    const write = derive(before);
    if (!write) return { written: undefined, group: before, members: none };
    const written = await writeGroup(trx, now, principal, change, write, exclusive);
    return { written, group: written.group, members: applied(written, write.members) };
  });
  return { group: group!, members };
}

/**
 * Deletes a group: 404 afterwards, its member rows removed (roles of former members re-resolved),
 * `group.deleted` on the feed, in one statement. The row is kept (soft-deleted) for the retention
 * window.
 */
export async function deleteScimGroup(
  ctx: Context,
  principal: ScimPrincipal,
  id: string,
  ifMatch: string | undefined,
  change: LastChange,
): Promise<void> {
  for (;;) {
    let expectedVersion: number | undefined;
    if (ifMatch !== undefined) {
      const before = await getScimGroup(ctx, principal, id);
      checkIfMatch(ifMatch, before.version);
      expectedVersion = before.version;
    }
    const written = await runGroupWrite(ctx, principal, change, { kind: 'delete', id, expectedVersion });
    // Only with If-Match: another change came first, so read again (and answer 412 if it must).
    if (written.stale) continue;
    if (!written.group) throw scimNotFound(`Group ${id} not found`);
    return;
  }
}
