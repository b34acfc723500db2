import { type Kysely, sql, type Transaction } from 'kysely';
import type { DB, LastChange, RoleSource } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { appendEvents, type EventType } from '../events/outbox.js';
import { toMembership } from './serialize.js';

/**
 * Membership internals shared by SCIM and the management API: role resolution from IdP groups, and
 * membership events carrying the full resource (user, role, permissions) as the API returns it.
 */

/** A user's display name, as displayNameOf() computes it, without loading the attributes. */
export const userDisplayName = sql<
  string | null
>`coalesce(u.display_name, u.attributes -> 'name' ->> 'formatted',
  nullif(concat_ws(' ', u.given_name, u.family_name), ''))`;

/** Memberships joined with what their API resource needs (user, role permissions). */
export function membershipsQuery(db: Kysely<DB> | Transaction<DB>) {
  return db
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .innerJoin('roles as r', 'r.key', 'm.role_key')
    .selectAll('m')
    .select(['u.user_name', 'u.email', 'u.active', userDisplayName.as('user_display_name'), 'r.permissions']);
}

type MembershipQueryRow = Awaited<ReturnType<ReturnType<typeof membershipsQuery>['executeTakeFirstOrThrow']>>;

export function membershipFromRow(row: MembershipQueryRow) {
  return toMembership(
    row,
    {
      id: row.user_id,
      user_name: row.user_name,
      email: row.email,
      name: row.user_display_name,
      active: row.active,
    },
    row.permissions,
  );
}

/** Loads memberships with their users and role permissions, as API resources. */
export async function loadMemberships(trx: Transaction<DB> | Kysely<DB>, membershipIds: readonly string[]) {
  if (membershipIds.length === 0) return [];
  const rows = await membershipsQuery(trx)
    .where(sql<boolean>`m.id = ${anyText(membershipIds)}`)
    .execute();
  return rows.map(membershipFromRow);
}

export async function appendMembershipEvents(
  trx: Transaction<DB>,
  type: Extract<EventType, `membership.${string}`>,
  membershipIds: readonly string[],
  changedAttributes?: readonly string[],
): Promise<void> {
  const memberships = await loadMemberships(trx, membershipIds);
  await appendEvents(
    trx,
    memberships.map((membership) => ({
      type,
      organizationId: membership.organization_id,
      data: changedAttributes ? { ...membership, changed_attributes: [...changedAttributes] } : membership,
    })),
  );
}

/** Advisory-lock class of {@link lockRoleInputs} (two-key form: apart from single-key locks). */
const ROLE_INPUTS_LOCK = 0x726f6c65;

/**
 * Serialises the inputs of role resolution per connection. A role depends on the connection's
 * mappings and on the user's groups; a mapping change recomputes every member from the groups it
 * sees, and a group change recomputes its members from the mappings it sees. Run concurrently,
 * each misses the other's uncommitted write and a member keeps a stale role (a test showed it).
 * Group and membership changes take the lock shared (they do not block each other), mapping
 * changes exclusive. Take it before any row lock, so that the order is the same everywhere.
 */
export async function lockRoleInputs(
  trx: Transaction<DB>,
  connectionId: string,
  mode: 'shared' | 'exclusive',
): Promise<void> {
  await (mode === 'shared'
    ? sql`select pg_advisory_xact_lock_shared(${ROLE_INPUTS_LOCK}::int, hashtext(${connectionId}))`
    : sql`select pg_advisory_xact_lock(${ROLE_INPUTS_LOCK}::int, hashtext(${connectionId}))`
  ).execute(trx);
}

/**
 * The one rule for "mapping `rm` names group `g`": the group's displayName, case-insensitively,
 * or its externalId. Written for a query with `role_mappings rm` and `groups g`.
 */
const mappingNamesGroup = sql<boolean>`rm.connection_id = g.connection_id
  and (lower(rm.group_ref) = lower(g.display_name) or rm.group_ref = g.external_id)`;

/**
 * Whether a role mapping names this group (as its row stands in this transaction). Membership
 * changes of an unmapped group cannot change anyone's role (a role depends only on the user's
 * mapped groups), so they skip the resolution. Reliable under {@link lockRoleInputs}: mappings
 * cannot change while it is held.
 */
export async function isMappedGroup(trx: Transaction<DB>, groupId: string): Promise<boolean> {
  const { rows } = await sql<{ mapped: boolean }>`
    select exists (
      select 1 from groups g join role_mappings rm on ${mappingNamesGroup} where g.id = ${groupId}
    ) as mapped`.execute(trx);
  return rows[0]?.mapped ?? true;
}

/**
 * Recomputes the role of SCIM members of `connectionId` (optionally only `userIds`, or the members
 * of `groupId`): the role of
 * their highest-precedence mapped group (lowest `precedence` number; a mapping names a group by
 * displayName, case-insensitively, or by externalId), else the organization's default role.
 * Runs in the caller's transaction, so a group change and the role it implies commit together;
 * the caller holds {@link lockRoleInputs}.
 * Members whose role changed get a `membership.updated` event.
 * @returns ids of the memberships whose role changed.
 */
export async function resolveRoles(
  trx: Transaction<DB>,
  now: Date,
  scope: { connectionId: string; userIds?: readonly string[]; groupId?: string },
  change: LastChange,
): Promise<string[]> {
  if (scope.userIds && scope.userIds.length === 0) return [];
  const userFilter = scope.userIds
    ? sql`and u.id = ${anyText(scope.userIds)}`
    : scope.groupId
      ? sql`and u.id in (select user_id from group_members where group_id = ${scope.groupId})`
      : sql``;
  const { rows } = await sql<{ id: string; role_changed: boolean }>`
    with targets as (
      select u.id as user_id, u.organization_id
      from users u
      where u.connection_id = ${scope.connectionId} and u.deleted_at is null ${userFilter}
    ), best as (
      select distinct on (gm.user_id)
        gm.user_id, rm.role_key, rm.id as mapping_id, rm.precedence, g.id as group_id, g.display_name
      from targets t
      join group_members gm on gm.user_id = t.user_id
      join groups g on g.id = gm.group_id and g.deleted_at is null
      join role_mappings rm on ${mappingNamesGroup}
      order by gm.user_id, rm.precedence, g.id
    ), resolved as (
      select t.user_id, current.role_key as old_role,
        coalesce(best.role_key, o.default_role) as role_key,
        case when best.role_key is null then jsonb_build_object('kind', 'default')
             else jsonb_build_object('kind', 'group', 'group_id', best.group_id, 'group_name', best.display_name,
                                     'mapping_id', best.mapping_id, 'precedence', best.precedence)
        end as role_source
      from targets t
      join organizations o on o.id = t.organization_id
      join memberships current on current.user_id = t.user_id and current.source = 'scim'
      left join best on best.user_id = t.user_id
    )
    update memberships m
    set role_key = resolved.role_key, role_source = resolved.role_source, updated_at = ${now},
        last_change = ${JSON.stringify(change)}::jsonb
    from resolved
    where m.user_id = resolved.user_id and m.source = 'scim' and m.role_source ->> 'kind' <> 'pinned'
      and (m.role_key <> resolved.role_key or m.role_source <> resolved.role_source)
    returning m.id, m.role_key <> resolved.old_role as role_changed`.execute(trx);
  const ids = rows.filter((row) => row.role_changed).map((row) => row.id);
  await appendMembershipEvents(trx, 'membership.updated', ids, ['role']);
  return ids;
}

export type { RoleSource };
