import type { Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { AttributeMapping, DB, JsonObject, LastChange, RoleSource } from '../db/schema.js';
import { applyAttributeMappings } from './attribute-mappings.js';
import { getConnection } from './connections.js';
import { canonicalJson } from './history.js';
import { assertOrganization } from './memberships.js';
import { applyOrganizationUpdate, type OrganizationInput, organizationUpdateError } from './organizations.js';
import { applyRoleMappings, checkMappedRoles, roleMappingsError } from './role-mappings.js';
import { userDisplayName } from './role-resolution.js';

/**
 * What-if previews: who would change role (or mapped attributes), from what to what, and why. A
 * preview runs the very transaction body of the real update (the same role resolution, the same
 * metadata mapping), reads the members before and after it, and rolls it back: nothing changes, no
 * event is written, and the answer cannot drift from what the update would do. It holds the
 * update's locks for that time, as the update would.
 */

class Rollback extends Error {
  constructor(readonly preview: Schemas['ChangePreview']) {
    super('preview rolled back');
  }
}

interface MemberRow {
  id: string;
  role_key: string;
  role_source: RoleSource;
  metadata: JsonObject;
  user_id: string;
  user_name: string;
  email: string | null;
  name: string | null;
  active: boolean;
}

async function readMembers(
  trx: Transaction<DB>,
  scope: { organizationId: string; connectionId?: string },
): Promise<Map<string, MemberRow>> {
  let query = trx
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select([
      'm.id',
      'm.role_key',
      'm.role_source',
      'm.metadata',
      'u.id as user_id',
      'u.user_name',
      'u.email',
      userDisplayName.as('name'),
      'u.active',
    ])
    .where('m.organization_id', '=', scope.organizationId);
  if (scope.connectionId) query = query.where('u.connection_id', '=', scope.connectionId);
  const rows = (await query.execute()) as MemberRow[];
  return new Map(rows.map((row) => [row.id, row]));
}

/** Why a member would have their role: the same reasons as `explain`. */
async function reasonOf(
  trx: Transaction<DB>,
  organizationId: string,
  source: RoleSource,
): Promise<Omit<Schemas['RoleChange'], 'from' | 'to'>> {
  if (source.kind === 'group') {
    const mapping = await trx
      .selectFrom('role_mappings')
      .select(['group_ref', 'role_key', 'precedence'])
      .where('id', '=', source.mapping_id)
      .executeTakeFirst();
    return {
      reason: 'group_mapping',
      group: { id: source.group_id, name: source.group_name },
      mapping: {
        group: mapping?.group_ref ?? source.group_name,
        role: mapping?.role_key ?? '',
        precedence: mapping?.precedence ?? source.precedence,
      },
    };
  }
  if (source.kind === 'pinned') return { reason: 'pinned' };
  const organization = await trx
    .selectFrom('organizations')
    .select('default_role')
    .where('id', '=', organizationId)
    .executeTakeFirstOrThrow();
  return { reason: 'default_role', default_role: organization.default_role };
}

async function preview(
  ctx: Context,
  scope: { organizationId: string; connectionId?: string },
  apply: (trx: Transaction<DB>) => Promise<unknown>,
): Promise<Schemas['ChangePreview']> {
  try {
    await ctx.db.transaction().execute(async (trx) => {
      const before = await readMembers(trx, scope);
      await apply(trx);
      const after = await readMembers(trx, scope);
      const changes: Schemas['MemberChange'][] = [];
      let roleChanges = 0;
      let metadataChanges = 0;
      for (const [id, now] of [...after].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const was = before.get(id);
        if (!was) continue;
        const roleChanged = was.role_key !== now.role_key;
        const metadataChanged = canonicalJson(was.metadata) !== canonicalJson(now.metadata);
        if (!roleChanged && !metadataChanged) continue;
        const item: Schemas['MemberChange'] = {
          membership_id: id,
          user: {
            id: now.user_id,
            user_name: now.user_name,
            email: now.email,
            name: now.name,
            active: now.active,
          },
        };
        if (roleChanged) {
          roleChanges++;
          item.role = {
            from: was.role_key,
            to: now.role_key,
            ...(await reasonOf(trx, scope.organizationId, now.role_source)),
          };
        }
        if (metadataChanged) {
          metadataChanges++;
          const keys = new Set([...Object.keys(was.metadata), ...Object.keys(now.metadata)]);
          item.metadata = {
            from: was.metadata,
            to: now.metadata,
            changed_keys: [...keys]
              .filter((key) => canonicalJson(was.metadata[key]) !== canonicalJson(now.metadata[key]))
              .sort(),
          };
        }
        changes.push(item);
      }
      throw new Rollback({
        object: 'change_preview',
        organization_id: scope.organizationId,
        connection_id: scope.connectionId ?? null,
        members: before.size,
        role_changes: roleChanges,
        metadata_changes: metadataChanges,
        changes,
      });
    });
  } catch (error) {
    if (error instanceof Rollback) return error.preview;
    throw error;
  }
  throw new Error('unreachable: a preview always rolls back');
}

export async function previewRoleMappings(
  ctx: Context,
  connectionId: string,
  mappings: readonly { group: string; role: string }[],
  change: LastChange,
): Promise<Schemas['ChangePreview']> {
  const connection = await getConnection(ctx, connectionId);
  await checkMappedRoles(ctx, mappings);
  try {
    return await preview(ctx, { organizationId: connection.organization_id, connectionId }, (trx) =>
      applyRoleMappings(ctx, trx, connectionId, mappings, change),
    );
  } catch (error) {
    throw roleMappingsError(error);
  }
}

export async function previewAttributeMappings(
  ctx: Context,
  connectionId: string,
  mappings: AttributeMapping[],
  change: LastChange,
): Promise<Schemas['ChangePreview']> {
  const connection = await getConnection(ctx, connectionId);
  return preview(ctx, { organizationId: connection.organization_id, connectionId }, (trx) =>
    applyAttributeMappings(ctx, trx, connectionId, mappings, change),
  );
}

export async function previewOrganizationUpdate(
  ctx: Context,
  organizationId: string,
  patch: Partial<OrganizationInput>,
  change: LastChange,
): Promise<Schemas['ChangePreview']> {
  await assertOrganization(ctx, organizationId);
  try {
    return await preview(ctx, { organizationId }, (trx) =>
      applyOrganizationUpdate(ctx, trx, organizationId, patch, change),
    );
  } catch (error) {
    throw organizationUpdateError(error, patch);
  }
}
