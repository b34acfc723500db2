import { sql } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { notFound } from '../errors.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import { toGroup, toUser } from './serialize.js';

/** Read-only management API views of directory users and groups. Deleted rows are never listed. */

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
  const after = decodeCursor(options.after);
  let query = ctx.db
    .selectFrom('users')
    .selectAll()
    .where('deleted_at', 'is', null)
    .orderBy('id')
    .limit(options.limit + 1);
  if (after !== undefined) query = query.where('id', '>', after);
  if (options.organizationId) query = query.where('organization_id', '=', options.organizationId);
  if (options.connectionId) query = query.where('connection_id', '=', options.connectionId);
  if (options.email) query = query.where(sql<boolean>`lower(email) = lower(${options.email})`);
  if (options.userName) query = query.where(sql<boolean>`lower(user_name) = lower(${options.userName})`);
  if (options.active !== undefined) query = query.where('active', '=', options.active);
  return toPage(await query.execute(), options.limit, (row) => row.id, toUser);
}

export async function getUser(ctx: Context, id: string): Promise<Schemas['User']> {
  const row = await ctx.db
    .selectFrom('users')
    .selectAll()
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (!row) throw notFound('user', id);
  return toUser(row);
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
  const after = decodeCursor(options.after);
  let query = ctx.db
    .selectFrom('groups')
    .selectAll()
    .where('deleted_at', 'is', null)
    .orderBy('id')
    .limit(options.limit + 1);
  if (after !== undefined) query = query.where('id', '>', after);
  if (options.organizationId) query = query.where('organization_id', '=', options.organizationId);
  if (options.connectionId) query = query.where('connection_id', '=', options.connectionId);
  return toPage(await query.execute(), options.limit, (row) => row.id, toGroup);
}

export async function getGroup(ctx: Context, id: string): Promise<Schemas['Group']> {
  const row = await ctx.db
    .selectFrom('groups')
    .selectAll()
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (!row) throw notFound('group', id);
  return toGroup(row);
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
