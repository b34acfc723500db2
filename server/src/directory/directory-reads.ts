import { type RawBuilder, type Selectable, sql } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { DB } from '../db/schema.js';
import { notFound } from '../errors.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import { toGroup, toUser } from './serialize.js';

/** Read-only management API views of directory users and groups. Deleted rows are never listed. */

/**
 * The rows of a user or group list that a page may hold: not deleted, after the cursor, in the
 * organization and connection asked for. Both tables name these columns alike.
 */
function listScope(options: {
  after?: string | undefined;
  organizationId?: string | undefined;
  connectionId?: string | undefined;
}): RawBuilder<boolean> {
  const after = decodeCursor(options.after);
  const parts = [sql`deleted_at is null`];
  if (after !== undefined) parts.push(sql`id > ${after}`);
  if (options.organizationId) parts.push(sql`organization_id = ${options.organizationId}`);
  if (options.connectionId) parts.push(sql`connection_id = ${options.connectionId}`);
  return sql<boolean>`${sql.join(parts, sql` and `)}`;
}

/** The user or group `id` unless deleted; the /v1 not_found otherwise. */
async function liveRow<Table extends 'users' | 'groups'>(
  ctx: Context,
  table: Table,
  id: string,
): Promise<Selectable<DB[Table]>> {
  const { rows } = await sql<Selectable<DB[Table]>>`
    select * from ${sql.table(table)} where id = ${id} and deleted_at is null`.execute(ctx.db);
  if (!rows[0]) throw notFound(table === 'users' ? 'user' : 'group', id);
  return rows[0];
}

export interface UserListOptions {
  limit: number;
  after?: string | undefined;
  organizationId?: string | undefined;
  connectionId?: string | undefined;
  email?: string | undefined;
  userName?: string | undefined;
  active?: boolean | undefined;
}

export async function listUsers(ctx: Context, options: UserListOptions): Promise<Page<Schemas['User']>> {
  let query = ctx.db
    .selectFrom('users')
    .selectAll()
    .where(listScope(options))
    .orderBy('id')
    .limit(options.limit + 1);
  if (options.email) query = query.where(sql<boolean>`lower(email) = lower(${options.email})`);
  if (options.userName) query = query.where(sql<boolean>`lower(user_name) = lower(${options.userName})`);
  if (options.active !== undefined) query = query.where('active', '=', options.active);
  return toPage(await query.execute(), options.limit, (row) => row.id, toUser);
}

export async function getUser(ctx: Context, id: string): Promise<Schemas['User']> {
  return toUser(await liveRow(ctx, 'users', id));
}

export async function listGroups(
  ctx: Context,
  options: {
    limit: number;
    after?: string | undefined;
    organizationId?: string | undefined;
    connectionId?: string | undefined;
  },
): Promise<Page<Schemas['Group']>> {
  const rows = await ctx.db
    .selectFrom('groups')
    .selectAll()
    .where(listScope(options))
    .orderBy('id')
    .limit(options.limit + 1)
    .execute();
  return toPage(rows, options.limit, (row) => row.id, toGroup);
}

export async function getGroup(ctx: Context, id: string): Promise<Schemas['Group']> {
  return toGroup(await liveRow(ctx, 'groups', id));
}

/** The users in a group, by user id: the member table's key order, so a page of a 50,000-member group is an index range. */
export async function listGroupMembers(
  ctx: Context,
  groupId: string,
  options: { limit: number; after?: string | undefined },
): Promise<Page<Schemas['User']>> {
  await getGroup(ctx, groupId);
  const after = decodeCursor(options.after);
  let query = ctx.db
    .selectFrom('group_members as gm')
    .innerJoin('users as u', 'u.id', 'gm.user_id')
    .selectAll('u')
    .where('gm.group_id', '=', groupId)
    .orderBy('gm.user_id')
    .limit(options.limit + 1);
  if (after !== undefined) query = query.where('gm.user_id', '>', after);
  return toPage(await query.execute(), options.limit, (row) => row.id, toUser);
}
