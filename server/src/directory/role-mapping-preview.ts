import type { Context } from '../context.js';
import { isForeignKeyViolation } from '../db/errors.js';
import { ApiError, notFound } from '../errors.js';
import { replaceRoleMappings } from './connections.js';
import { loadMemberships, lockRoleInputs, resolveRoles } from './memberships-core.js';

export interface RoleChange {
  membership_id: string;
  user_id: string;
  name: string | null;
  user_name: string;
  email: string | null;
  from: string;
  to: string;
}

export interface RoleMappingsPreview {
  /** Members whose role would change, at most `limit` of them (ordered by user name). */
  changes: RoleChange[];
  /** How many members' roles would change in all. */
  total: number;
  /** Members per new role among those that change, e.g. `{ admin: 3 }`. */
  to_roles: Record<string, number>;
}

/** Thrown to roll the preview's transaction back, carrying its result out. */
class PreviewDone extends Error {
  constructor(readonly result: RoleMappingsPreview) {
    super('preview rolled back');
  }
}

/**
 * Whose role would change if the connection's role mappings became `mappings`, without changing
 * anything. It runs the server's own role resolution ({@link resolveRoles}, the one that
 * setRoleMappings runs) on the proposed mappings inside a transaction that is then rolled back,
 * so the preview and the saved result cannot disagree. The transaction holds the connection's
 * role-inputs lock exclusively for its (short) duration, as a save does.
 */
export async function previewRoleMappings(
  ctx: Context,
  connectionId: string,
  mappings: readonly { group: string; role: string }[],
  limit = 100,
): Promise<RoleMappingsPreview> {
  try {
    await ctx.transaction(async (trx) => {
      await lockRoleInputs(trx, connectionId, 'exclusive');
      const connection = await trx
        .selectFrom('connections')
        .select(['id', 'organization_id'])
        .where('id', '=', connectionId)
        .forShare()
        .executeTakeFirst();
      if (!connection) throw notFound('connection', connectionId);
      const before = new Map(
        (
          await trx
            .selectFrom('memberships as m')
            .innerJoin('users as u', 'u.id', 'm.user_id')
            .select(['m.id', 'm.role_key'])
            .where('u.connection_id', '=', connectionId)
            .where('m.source', '=', 'scim')
            .execute()
        ).map((row) => [row.id, row.role_key]),
      );
      const now = ctx.now();
      await replaceRoleMappings(trx, connection, mappings, now);
      const changed = await resolveRoles(
        trx,
        now,
        { connectionId },
        { at: now.toISOString(), request_id: 'preview', via: 'api' },
      );
      const memberships = await loadMemberships(trx, changed);
      const changes = memberships
        .map((m) => ({
          membership_id: m.id,
          user_id: m.user.id,
          name: m.user.name,
          user_name: m.user.user_name,
          email: m.user.email,
          from: before.get(m.id) ?? m.role,
          to: m.role,
        }))
        .sort((a, b) => a.user_name.localeCompare(b.user_name));
      const toRoles: Record<string, number> = {};
      for (const change of changes) toRoles[change.to] = (toRoles[change.to] ?? 0) + 1;
      throw new PreviewDone({ changes: changes.slice(0, limit), total: changes.length, to_roles: toRoles });
    });
  } catch (error) {
    if (error instanceof PreviewDone) return error.result;
    if (isForeignKeyViolation(error)) {
      throw new ApiError(400, 'validation_failed', 'mappings: a mapped role does not exist', {
        details: [{ path: 'mappings', code: 'unknown_role', message: 'a mapped role does not exist' }],
      });
    }
    throw error;
  }
  // The callback always throws; this line only satisfies the type checker.
  throw new Error('unreachable');
}
