import type { Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { isForeignKeyViolation } from '../db/errors.js';
import type { ConnectionRow, DB, LastChange } from '../db/schema.js';
import { ApiError } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { newId } from '../ids.js';
import { getConnection, lockConnection } from './connections.js';
import { lockRoleInputs, resolveRoles } from './role-resolution.js';
import { toConnection } from './serialize.js';

// A connection's ordered group -> role mappings: read, replaced (PUT and its preview), and the
// check that every mapped role exists.

export async function getRoleMappings(ctx: Context, connectionId: string): Promise<Schemas['RoleMappings']> {
  await getConnection(ctx, connectionId);
  const rows = await ctx.db
    .selectFrom('role_mappings')
    .select(['group_ref', 'role_key', 'precedence'])
    .where('connection_id', '=', connectionId)
    .orderBy('precedence')
    .execute();
  return {
    object: 'role_mappings',
    connection_id: connectionId,
    mappings: rows.map((row) => ({ group: row.group_ref, role: row.role_key, precedence: row.precedence })),
  };
}

/**
 * Writes a connection's ordered mappings in place of the old ones (precedence = position), inside
 * the caller's transaction, which holds {@link lockRoleInputs} exclusively. Roles are not
 * recomputed here: the caller runs resolveRoles (a save) or rolls back (a preview).
 */
export async function replaceRoleMappings(
  trx: Transaction<DB>,
  connection: Pick<ConnectionRow, 'id' | 'organization_id'>,
  mappings: readonly { group: string; role: string }[],
  now: Date,
): Promise<void> {
  await trx.deleteFrom('role_mappings').where('connection_id', '=', connection.id).execute();
  if (mappings.length === 0) return;
  await trx
    .insertInto('role_mappings')
    .values(
      mappings.map((mapping, i) => ({
        id: newId('roleMapping', now.getTime()),
        organization_id: connection.organization_id,
        connection_id: connection.id,
        group_ref: mapping.group,
        role_key: mapping.role,
        precedence: i + 1,
      })),
    )
    .execute();
}

/** Replaces the ordered group -> role mappings and recomputes every member's role, in one transaction. */
export async function setRoleMappings(
  ctx: Context,
  connectionId: string,
  mappings: readonly { group: string; role: string }[],
  change: LastChange,
): Promise<Schemas['RoleMappings']> {
  await checkMappedRoles(ctx, mappings);
  try {
    await ctx.transaction((trx) => applyRoleMappings(ctx, trx, connectionId, mappings, change));
  } catch (error) {
    throw roleMappingsError(error);
  }
  return getRoleMappings(ctx, connectionId);
}

/** A mapped role deleted between the check and the change: 409 (the error itself otherwise). */
export function roleMappingsError(error: unknown): unknown {
  if (isForeignKeyViolation(error))
    return new ApiError(409, 'conflict', 'A mapped role was deleted meanwhile; retry.');
  return error;
}

/** 400 naming the first mapping whose role does not exist. */
export async function checkMappedRoles(ctx: Context, mappings: readonly { role: string }[]): Promise<void> {
  const known = new Set((await ctx.db.selectFrom('roles').select('key').execute()).map((r) => r.key));
  const unknown = mappings.findIndex((m) => !known.has(m.role));
  if (unknown !== -1) {
    const role = mappings[unknown]!.role;
    throw new ApiError(400, 'validation_failed', `mappings.${unknown}.role: no role with key "${role}"`, {
      details: [
        { path: `mappings.${unknown}.role`, code: 'unknown_role', message: `no role with key "${role}"` },
      ],
    });
  }
}

/**
 * The body of a role-mapping change, in the caller's transaction: what PUT commits and what the
 * preview runs and rolls back.
 */
export async function applyRoleMappings(
  ctx: Context,
  trx: Transaction<DB>,
  connectionId: string,
  mappings: readonly { group: string; role: string }[],
  change: LastChange,
): Promise<void> {
  await lockRoleInputs(trx, connectionId, 'exclusive');
  const connection = await lockConnection(trx, connectionId);
  const now = ctx.now();
  await replaceRoleMappings(trx, connection, mappings, now);
  await resolveRoles(trx, now, { connectionId }, change);
  await appendEvents(trx, [
    {
      type: 'connection.updated',
      organizationId: connection.organization_id,
      data: {
        ...toConnection(connection, ctx.settings.publicUrl),
        changed_attributes: ['role_mappings'],
      },
    },
  ]);
}
