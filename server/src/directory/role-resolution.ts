import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { DB, LastChange, RoleSource } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { type EventType, eventCtes } from '../events/outbox.js';
import { toMembership } from './serialize.js';
import { membershipJson } from './serialize-sql.js';

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

/**
 * Queues one `type` event per membership, each carrying the membership as the API returns it
 * (membershipJson, the SQL twin of membershipFromRow), in one statement.
 */
export async function appendMembershipEvents(
  trx: Transaction<DB>,
  type: Extract<EventType, `membership.${string}`>,
  membershipIds: readonly string[],
  changedAttributes?: readonly string[],
): Promise<void> {
  if (membershipIds.length === 0) return;
  const resource = membershipJson('m', 'u', 'r');
  const data = changedAttributes
    ? sql`${resource} || jsonb_build_object('changed_attributes', ${JSON.stringify(changedAttributes)}::jsonb)`
    : resource;
  await sql`with ${eventCtes(
    'e',
    sql`select m.id as ord, ${type}::text as type, m.organization_id, ${data} as data
        from memberships m join users u on u.id = m.user_id join roles r on r.key = m.role_key
        where m.id = ${anyText(membershipIds)}`,
  )}
    select count(*) from e`.execute(trx);
}

/** Advisory-lock class of {@link lockRoleInputs} (two-key form: apart from single-key locks). */
const ROLE_INPUTS_LOCK = 0x726f6c65;

/**
 * Serialises the inputs of role resolution per connection. A role depends on the connection's
 * mappings and on the user's groups; a mapping change recomputes every member from the groups it
 * sees, and a group change recomputes its members from the mappings it sees. Run concurrently,
 * each misses the other's uncommitted write and a member keeps a stale role (a test showed it).
 * Mapping changes take it exclusive. So does a change of a group that a mapping names (before or
 * after the change): two such changes of different groups that share a member would each resolve
 * that member from a snapshot without the other's membership change, and the last writer's role
 * would stand (a member removed from both of its admin groups at once stayed admin). Changes of
 * unmapped groups, which resolve no role, and changes of one user's memberships take it shared,
 * and do not block each other. Take it before any row lock, so that the order is the same
 * everywhere.
 */
export async function lockRoleInputs(
  trx: Kysely<DB>,
  connectionId: string,
  mode: 'shared' | 'exclusive',
): Promise<void> {
  await (mode === 'shared'
    ? sql`select pg_advisory_xact_lock_shared(${ROLE_INPUTS_LOCK}::int, hashtext(${connectionId}))`
    : sql`select pg_advisory_xact_lock(${ROLE_INPUTS_LOCK}::int, hashtext(${connectionId}))`
  ).execute(trx);
}

/**
 * Runs `fn` in a transaction on one connection that holds {@link lockRoleInputs} (`mode`, shared
 * by default) from its first round trip: on PostgreSQL `begin` and the lock go as one simple-protocol message
 * (node-postgres does not pipeline, and a statement without parameters is sent as a simple query,
 * which may hold several; the comment tells bench:scim --round-trips so). The connection id is inlined, so it must be an id (checked). PGlite
 * runs in-process and takes them one by one. The lock is a statement of its own, before the
 * statements that read the role inputs: a statement reads from a snapshot taken when it starts, so
 * a lock taken inside it would come too late to see a mapping change that committed meanwhile.
 */
export async function inRoleInputsTransaction<T>(
  db: Kysely<DB>,
  pipelined: boolean,
  connectionId: string,
  fn: (trx: Kysely<DB>) => Promise<T>,
  mode: 'shared' | 'exclusive' = 'shared',
): Promise<T> {
  if (!/^[a-z]+_[0-9a-z]{26}$/.test(connectionId)) throw new Error(`not a connection id: ${connectionId}`);
  const lock = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
  return db.connection().execute(async (conn) => {
    if (pipelined) {
      await sql
        .raw(`begin; select /* sent with begin */ ${lock}(${ROLE_INPUTS_LOCK}, hashtext('${connectionId}'))`)
        .execute(conn);
    } else {
      await sql`begin`.execute(conn);
      await lockRoleInputs(conn, connectionId, mode);
    }
    let result: T;
    try {
      result = await fn(conn);
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw error;
    }
    await sql`commit`.execute(conn);
    return result;
  });
}

/**
 * The one rule for "mapping `rm` names group `g`": the group's displayName, case-insensitively,
 * or its externalId. Written for a query with `role_mappings rm` and `groups g`. Its two halves
 * are joined apart where many groups are matched at once ({@link roleResolutionCtes}): each is an
 * equality that PostgreSQL can hash, while their OR is compared pair by pair.
 */
const mappingNamesGroupBy = {
  name: sql<boolean>`rm.connection_id = g.connection_id and lower(rm.group_ref) = lower(g.display_name)`,
  externalId: sql<boolean>`rm.connection_id = g.connection_id and rm.group_ref = g.external_id`,
};
export const mappingNamesGroup = sql<boolean>`((${mappingNamesGroupBy.name}) or (${mappingNamesGroupBy.externalId}))`;

/**
 * The role resolution as CTEs that any write statement can carry (the set-based group writes do):
 * `${name}_targets` (the SCIM users of `connectionId` among `targets`, a query of user ids),
 * `${name}_groups` (what `memberOf` selects), `${name}_best` and `${name}_resolved`, and
 * `${name}`, the memberships whose role or role source changed, updated, as rows of `memberships` plus `role_changed`. `memberOf(targets)` selects
 * `(user_id, id, display_name, external_id, connection_id)`: the live groups of the target users
 * (the CTE named `targets`), as the statement will leave them, since a statement does not see
 * the rows its own CTEs write. A role is the role of the user's highest-precedence mapped group
 * (lowest `precedence` number; a mapping names a group by displayName, case-insensitively, or by
 * externalId), else the organization's default role. The caller holds {@link lockRoleInputs}.
 */
export function roleResolutionCtes(
  name: string,
  scope: {
    connectionId: string;
    targets?: RawBuilder<unknown> | undefined;
    memberOf: (targets: RawBuilder<unknown>) => RawBuilder<unknown>;
  },
  now: Date,
  change: LastChange,
): RawBuilder<unknown> {
  const targets = sql.raw(`${name}_targets`);
  const groups = sql.raw(`${name}_groups`);
  // Costs scale with the targets, not with the connection: the targets are looked up by primary
  // key (an `in (subquery)` let the planner walk every user of the connection and compare each
  // with every target), and the mappings are matched by the two halves of mappingNamesGroup, each
  // an equality that PostgreSQL hashes, instead of their OR compared pair by pair with lower().
  // A 50-member PATCH of a mapped group in a 600-user connection went from about 42 to 17 ms of
  // PostgreSQL CPU (bench:scim --round-trips).
  return sql`${targets} as materialized (
      select u.id as user_id, u.organization_id
      from users u
      where u.connection_id = ${scope.connectionId} and u.deleted_at is null
        ${scope.targets ? sql`and u.id = any(array(${scope.targets}))` : sql``}
    ), ${groups} as materialized (
      ${scope.memberOf(targets)}
    ), ${sql.raw(name)}_best as materialized (
      select distinct on (m.user_id)
        m.user_id, m.role_key, m.mapping_id, m.precedence, m.id as group_id, m.display_name
      from (
        select g.*, rm.id as mapping_id, rm.role_key, rm.precedence
        from ${groups} g join role_mappings rm on ${mappingNamesGroupBy.name}
        union all
        select g.*, rm.id, rm.role_key, rm.precedence
        from ${groups} g join role_mappings rm on ${mappingNamesGroupBy.externalId}
      ) m
      order by m.user_id, m.precedence, m.id
    ), ${sql.raw(name)}_resolved as (
      select t.user_id, current.role_key as old_role,
        coalesce(best.role_key, o.default_role) as role_key,
        case when best.role_key is null then jsonb_build_object('kind', 'default')
             else jsonb_build_object('kind', 'group', 'group_id', best.group_id, 'group_name', best.display_name,
                                     'mapping_id', best.mapping_id, 'precedence', best.precedence)
        end as role_source
      from ${targets} t
      join organizations o on o.id = t.organization_id
      join memberships current on current.user_id = t.user_id and current.source = 'scim'
      left join ${sql.raw(name)}_best best on best.user_id = t.user_id
    ), ${sql.raw(name)} as (
      update memberships m
      set role_key = resolved.role_key, role_source = resolved.role_source, updated_at = ${now},
          last_change = ${JSON.stringify(change)}::jsonb
      from ${sql.raw(name)}_resolved resolved
      where m.user_id = resolved.user_id and m.source = 'scim' and m.role_source ->> 'kind' <> 'pinned'
        and (m.role_key <> resolved.role_key or m.role_source <> resolved.role_source)
      returning m.*, m.role_key <> resolved.old_role as role_changed
    )`;
}

/**
 * The `membership.updated` events (`changed_attributes: ["role"]`) of the memberships whose role
 * changed in the {@link roleResolutionCtes} named `name`, as an event source for `eventCtes`,
 * ordered after the statement's other events by `ordPrefix`.
 */
export function roleChangeEvents(name: string, ordPrefix = ''): RawBuilder<unknown> {
  return sql`select ${ordPrefix} || m.id as ord, 'membership.updated'::text as type, m.organization_id,
      ${membershipJson('m', 'u', 'r')} || '{"changed_attributes":["role"]}'::jsonb as data
    from ${sql.raw(name)} m join users u on u.id = m.user_id join roles r on r.key = m.role_key
    where m.role_changed`;
}

/** The live groups of the users in `targets`, as {@link roleResolutionCtes} reads them. */
export const storedGroupsOf = (targets: RawBuilder<unknown>) =>
  sql`select gm.user_id, g.id, g.display_name, g.external_id, g.connection_id
    from group_members gm join groups g on g.id = gm.group_id and g.deleted_at is null
    where gm.user_id in (select user_id from ${targets})`;

/**
 * Recomputes the role of SCIM members of `connectionId` (optionally only `userIds`, or the members
 * of `groupId`; see {@link roleResolutionCtes}), with their `membership.updated` events, in one
 * statement. Runs in the caller's transaction, so a group change and the role it implies commit
 * together; the caller holds {@link lockRoleInputs}.
 * @returns ids of the memberships whose role changed.
 */
export async function resolveRoles(
  trx: Kysely<DB>,
  now: Date,
  scope: { connectionId: string; userIds?: readonly string[]; groupId?: string },
  change: LastChange,
): Promise<string[]> {
  if (scope.userIds && scope.userIds.length === 0) return [];
  const targets = scope.userIds
    ? sql`select id from users where id = ${anyText(scope.userIds)}`
    : scope.groupId
      ? sql`select user_id from group_members where group_id = ${scope.groupId}`
      : undefined;
  const { rows } = await sql<{ id: string }>`
    with ${roleResolutionCtes(
      'resolved_roles',
      { connectionId: scope.connectionId, targets, memberOf: storedGroupsOf },
      now,
      change,
    )}, ${eventCtes('e', roleChangeEvents('resolved_roles'))}
    select id, (select count(*) from e) as events from resolved_roles where role_changed`.execute(trx);
  return rows.map((row) => row.id);
}

export type { RoleSource };
