import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { isForeignKeyViolation, isUniqueViolation } from '../db/errors.js';
import type { DB, JsonObject, LastChange, MembershipRow, RoleSource } from '../db/schema.js';
import { ApiError, notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { newId } from '../ids.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import { revokeSessionsWhere } from '../sessions/revocation.js';
import {
  appendMembershipEvents,
  loadMemberships,
  lockRoleInputs,
  membershipFromRow,
  membershipsQuery,
  resolveRoles,
  userDisplayName,
} from './role-resolution.js';
import { toUser } from './serialize.js';

/** The management API's view of memberships (the SCIM side lives in scim-users.ts). */

export interface MembershipListOptions {
  limit: number;
  after?: string | undefined;
  status?: 'active' | 'inactive' | undefined;
  role?: string | undefined;
  query?: string | undefined;
}

/** `%`, `_` and `\` of a user-supplied prefix match themselves in LIKE. */
function likePrefix(value: string): string {
  return `${value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export async function assertOrganization(ctx: Context, organizationId: string): Promise<void> {
  const found = await ctx.db
    .selectFrom('organizations')
    .select('id')
    .where('id', '=', organizationId)
    .executeTakeFirst();
  if (!found) throw notFound('organization', organizationId);
}

export async function listMemberships(
  ctx: Context,
  organizationId: string,
  options: MembershipListOptions,
): Promise<Page<Schemas['Membership']>> {
  const after = decodeCursor(options.after);
  let query = membershipsQuery(ctx.db).where('m.organization_id', '=', organizationId);
  if (after !== undefined) query = query.where('m.id', '>', after);
  if (options.status) query = query.where('m.status', '=', options.status);
  if (options.role) query = query.where('m.role_key', '=', options.role);
  if (options.query) {
    // A prefix of the email or user name, or of any word of the member's name ("jon" finds "Bob Jones").
    const prefix = likePrefix(options.query);
    const wordPrefix = `% ${prefix}`;
    query = query.where(
      sql<boolean>`(lower(u.email) like lower(${prefix}) or lower(u.user_name) like lower(${prefix})
        or lower(${userDisplayName}) like lower(${prefix}) or lower(${userDisplayName}) like lower(${wordPrefix})
        or lower(coalesce(u.given_name, '')) like lower(${prefix}) or lower(coalesce(u.family_name, '')) like lower(${prefix}))`,
    );
  }
  const rows = await query
    .orderBy('m.id')
    .limit(options.limit + 1)
    .execute();
  if (rows.length === 0 && after === undefined) await assertOrganization(ctx, organizationId);
  return toPage(rows, options.limit, (row) => row.id, membershipFromRow);
}

export async function getMembership(
  ctx: Context,
  organizationId: string,
  id: string,
): Promise<Schemas['Membership']> {
  const row = await membershipsQuery(ctx.db)
    .where('m.id', '=', id)
    .where('m.organization_id', '=', organizationId)
    .executeTakeFirst();
  if (!row) throw notFound('membership', id);
  return membershipFromRow(row);
}

export interface MembershipCreateInput {
  email: string;
  name?: string | undefined;
  given_name?: string | undefined;
  family_name?: string | undefined;
  role?: string | undefined;
  metadata?: JsonObject | undefined;
}

const unknownRole = (key: string, path = 'role') =>
  new ApiError(400, 'validation_failed', `${path}: no role with key "${key}"`, {
    details: [{ path, code: 'unknown_role', message: `no role with key "${key}"` }],
  });

/**
 * Adds a member who does not come from an IdP: a directory user without a connection (its SCIM-like
 * attributes made from the input, so that it reads like any other user) and an `api` membership.
 */
export async function createMembership(
  ctx: Context,
  organizationId: string,
  input: MembershipCreateInput,
  change: LastChange,
): Promise<Schemas['Membership']> {
  try {
    return await ctx.transaction(async (trx) => {
      const organization = await trx
        .selectFrom('organizations')
        .select(['id', 'default_role'])
        .where('id', '=', organizationId)
        .forShare()
        .executeTakeFirst();
      if (!organization) throw notFound('organization', organizationId);
      const now = ctx.now();
      const attributes: JsonObject = {
        userName: input.email,
        ...(input.name ? { displayName: input.name } : {}),
        ...(input.given_name || input.family_name
          ? {
              name: {
                ...(input.given_name ? { givenName: input.given_name } : {}),
                ...(input.family_name ? { familyName: input.family_name } : {}),
              },
            }
          : {}),
        emails: [{ value: input.email, type: 'work', primary: true }],
        active: true,
      };
      const user = await trx
        .insertInto('users')
        .values({
          id: newId('user', now.getTime()),
          organization_id: organizationId,
          connection_id: null,
          user_name: input.email,
          external_id: null,
          active: true,
          email: input.email,
          given_name: input.given_name ?? null,
          family_name: input.family_name ?? null,
          display_name: input.name ?? null,
          attributes: JSON.stringify(attributes),
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const role = input.role ?? organization.default_role;
      const roleSource: RoleSource = input.role ? { kind: 'pinned' } : { kind: 'default' };
      const membership = await trx
        .insertInto('memberships')
        .values({
          id: newId('membership', now.getTime()),
          organization_id: organizationId,
          user_id: user.id,
          role_key: role,
          role_source: JSON.stringify(roleSource),
          status: 'active',
          source: 'api',
          metadata: JSON.stringify(input.metadata ?? {}),
          last_change: JSON.stringify(change),
          created_at: now,
          updated_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await appendEvents(trx, [{ type: 'user.created', organizationId, data: toUser(user) }]);
      await appendMembershipEvents(trx, 'membership.created', [membership.id]);
      return (await loadMemberships(trx, [membership.id]))[0]!;
    });
  } catch (error) {
    if (isForeignKeyViolation(error)) throw unknownRole(input.role ?? '');
    if (isUniqueViolation(error)) {
      throw new ApiError(
        409,
        'member_exists',
        `A member with email "${input.email}" already exists in this organization.`,
      );
    }
    throw error;
  }
}

async function lockMembership(
  trx: Transaction<DB>,
  organizationId: string,
  id: string,
): Promise<MembershipRow> {
  const row = await trx
    .selectFrom('memberships')
    .selectAll()
    .where('id', '=', id)
    .where('organization_id', '=', organizationId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw notFound('membership', id);
  return row;
}

/**
 * Pins a role (IdP group changes then leave it alone), or with `role: null` unpins it and resolves
 * it again from the connection's role mappings. Sessions carry the new role from their next refresh.
 */
export async function updateMembershipRole(
  ctx: Context,
  organizationId: string,
  id: string,
  role: string | null,
  change: LastChange,
): Promise<Schemas['Membership']> {
  try {
    return await ctx.transaction(async (trx) => {
      if (role === null) {
        // Unpinning resolves the role from the mappings: hold them still (before any row lock).
        const source = await trx
          .selectFrom('memberships as m')
          .innerJoin('users as u', 'u.id', 'm.user_id')
          .select('u.connection_id')
          .where('m.id', '=', id)
          .executeTakeFirst();
        if (source?.connection_id) await lockRoleInputs(trx, source.connection_id, 'shared');
      }
      const before = await lockMembership(trx, organizationId, id);
      const now = ctx.now();
      if (role !== null) {
        if (before.role_key !== role || before.role_source.kind !== 'pinned') {
          await trx
            .updateTable('memberships')
            .set({
              role_key: role,
              role_source: JSON.stringify({ kind: 'pinned' } satisfies RoleSource),
              updated_at: now,
              last_change: JSON.stringify(change),
            })
            .where('id', '=', id)
            .execute();
          if (before.role_key !== role)
            await appendMembershipEvents(trx, 'membership.updated', [id], ['role']);
        }
      } else if (before.role_source.kind === 'pinned') {
        const user = await trx
          .selectFrom('users')
          .select(['connection_id'])
          .where('id', '=', before.user_id)
          .executeTakeFirstOrThrow();
        const organization = await trx
          .selectFrom('organizations')
          .select('default_role')
          .where('id', '=', organizationId)
          .executeTakeFirstOrThrow();
        await trx
          .updateTable('memberships')
          .set({
            role_key: organization.default_role,
            role_source: JSON.stringify({ kind: 'default' } satisfies RoleSource),
            updated_at: now,
            last_change: JSON.stringify(change),
          })
          .where('id', '=', id)
          .execute();
        const regrouped = user.connection_id
          ? await resolveRoles(
              trx,
              now,
              { connectionId: user.connection_id, userIds: [before.user_id] },
              change,
            )
          : [];
        if (regrouped.length === 0 && before.role_key !== organization.default_role) {
          await appendMembershipEvents(trx, 'membership.updated', [id], ['role']);
        }
      }
      return (await loadMemberships(trx, [id]))[0]!;
    });
  } catch (error) {
    if (isForeignKeyViolation(error)) throw unknownRole(role ?? '');
    throw error;
  }
}

/**
 * Removes an API member (and its directory user) and revokes their sessions. Members pushed by an
 * IdP are the IdP's to remove.
 */
export async function deleteMembership(ctx: Context, organizationId: string, id: string): Promise<void> {
  await ctx.transaction(async (trx) => {
    // Lock order user → membership → sessions, as session refresh takes them (sessions/sessions.ts).
    const owner = await trx
      .selectFrom('memberships')
      .select('user_id')
      .where('id', '=', id)
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
    if (owner)
      await trx.selectFrom('users').select('id').where('id', '=', owner.user_id).forUpdate().execute();
    const membership = await lockMembership(trx, organizationId, id);
    if (membership.source !== 'api') {
      throw new ApiError(
        409,
        'managed_by_idp',
        'This member was provisioned by an identity provider: unassign or deactivate them there.',
      );
    }
    const now = ctx.now();
    await revokeSessionsWhere(trx, now, { userId: membership.user_id }, 'membership_removed');
    await appendMembershipEvents(trx, 'membership.deleted', [id]);
    await trx.deleteFrom('memberships').where('id', '=', id).execute();
    const user = await trx
      .updateTable('users')
      .set({ deleted_at: now, updated_at: now })
      .where('id', '=', membership.user_id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendEvents(trx, [{ type: 'user.deleted', organizationId, data: toUser(user) }]);
  });
}

/** Why a member has their role: the rule that applied, and the request that last changed it. */
export async function explainMembership(ctx: Context, id: string): Promise<Schemas['MembershipExplanation']> {
  const row = await membershipsQuery(ctx.db)
    .innerJoin('organizations as o', 'o.id', 'm.organization_id')
    .select('o.default_role')
    .where('m.id', '=', id)
    .executeTakeFirst();
  if (!row) throw notFound('membership', id);
  const source = row.role_source;
  const base = {
    object: 'membership_explanation' as const,
    membership_id: row.id,
    organization_id: row.organization_id,
    role: row.role_key,
    permissions: [...row.permissions],
    last_change: (row.last_change ?? null) as Schemas['MembershipExplanation']['last_change'],
  };
  if (source.kind === 'group') {
    const mapping = await ctx.db
      .selectFrom('role_mappings')
      .select(['group_ref', 'role_key', 'precedence'])
      .where('id', '=', source.mapping_id)
      .executeTakeFirst();
    return {
      ...base,
      reason: 'group_mapping',
      group: { id: source.group_id, name: source.group_name },
      mapping: {
        group: mapping?.group_ref ?? source.group_name,
        role: mapping?.role_key ?? row.role_key,
        precedence: mapping?.precedence ?? source.precedence,
      },
    };
  }
  if (source.kind === 'pinned') return { ...base, reason: 'pinned' };
  return { ...base, reason: 'default_role', default_role: row.default_role };
}
