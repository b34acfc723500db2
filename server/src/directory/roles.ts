import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { isForeignKeyViolation, isUniqueViolation } from '../db/errors.js';
import type { RoleRow } from '../db/schema.js';
import { ApiError, notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { newId } from '../ids.js';
import { sameJson } from '../lib/json.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';

/** Roles and their permissions, shared by every organization; `admin` and `member` are built in. */

export function toRole(row: RoleRow): Schemas['Role'] {
  return {
    object: 'role',
    id: row.id,
    key: row.key,
    name: row.name,
    description: row.description,
    permissions: [...row.permissions],
    builtin: row.builtin,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export async function listRoles(
  ctx: Context,
  options: { limit: number; after?: string | undefined },
): Promise<Page<Schemas['Role']>> {
  const after = decodeCursor(options.after);
  let query = ctx.db
    .selectFrom('roles')
    .selectAll()
    .orderBy('key')
    .limit(options.limit + 1);
  if (after !== undefined) query = query.where('key', '>', after);
  return toPage(await query.execute(), options.limit, (row) => row.key, toRole);
}

export async function getRole(ctx: Context, key: string): Promise<RoleRow> {
  const row = await ctx.db.selectFrom('roles').selectAll().where('key', '=', key).executeTakeFirst();
  if (!row) throw notFound('role', key);
  return row;
}

export interface RoleInput {
  key: string;
  name: string;
  description?: string | null | undefined;
  permissions?: string[] | undefined;
}

export async function createRole(ctx: Context, input: RoleInput): Promise<RoleRow> {
  try {
    return await ctx.transaction(async (trx) => {
      const now = ctx.now();
      const row = await trx
        .insertInto('roles')
        .values({
          key: input.key,
          id: newId('role', now.getTime()),
          name: input.name,
          description: input.description ?? null,
          permissions: JSON.stringify(input.permissions ?? []),
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await appendEvents(trx, [{ type: 'role.created', organizationId: null, data: toRole(row) }]);
      return row;
    });
  } catch (error) {
    if (isUniqueViolation(error))
      throw new ApiError(409, 'role_exists', `A role with key "${input.key}" already exists.`);
    throw error;
  }
}

export async function updateRole(
  ctx: Context,
  key: string,
  patch: Partial<Omit<RoleInput, 'key'>>,
): Promise<RoleRow> {
  return ctx.transaction(async (trx) => {
    const before = await trx
      .selectFrom('roles')
      .selectAll()
      .where('key', '=', key)
      .forUpdate()
      .executeTakeFirst();
    if (!before) throw notFound('role', key);
    const changes: Record<string, unknown> = {};
    if (patch.name !== undefined && patch.name !== before.name) changes.name = patch.name;
    if (patch.description !== undefined && patch.description !== before.description)
      changes.description = patch.description;
    if (patch.permissions !== undefined && !sameJson(patch.permissions, before.permissions)) {
      changes.permissions = JSON.stringify(patch.permissions);
    }
    const changed = Object.keys(changes);
    if (changed.length === 0) return before;
    const row = await trx
      .updateTable('roles')
      .set({ ...changes, updated_at: ctx.now() })
      .where('key', '=', key)
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendEvents(trx, [
      { type: 'role.updated', organizationId: null, data: { ...toRole(row), changed_attributes: changed } },
    ]);
    return row;
  });
}

/** Refuses built-in roles and roles still used by a member, a default role or a role mapping. */
export async function deleteRole(ctx: Context, key: string): Promise<void> {
  try {
    await ctx.transaction(async (trx) => {
      const row = await trx
        .selectFrom('roles')
        .selectAll()
        .where('key', '=', key)
        .forUpdate()
        .executeTakeFirst();
      if (!row) throw notFound('role', key);
      if (row.builtin)
        throw new ApiError(409, 'role_builtin', `"${key}" is a built-in role and cannot be deleted.`);
      await trx.deleteFrom('roles').where('key', '=', key).execute();
      await appendEvents(trx, [{ type: 'role.deleted', organizationId: null, data: toRole(row) }]);
    });
  } catch (error) {
    if (isForeignKeyViolation(error)) {
      throw new ApiError(
        409,
        'role_in_use',
        `The role "${key}" is in use by members, a default role or a role mapping.`,
      );
    }
    throw error;
  }
}
