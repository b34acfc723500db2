import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { isForeignKeyViolation } from '../db/errors.js';
import type { AttributeMapping, ConnectionRow, DB, LastChange } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { ApiError, notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { newId } from '../ids.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import {
  configureGuard,
  connectionWithGuard,
  type GuardInput,
  toDeprovisionGuard,
} from './deprovision-guard.js';
import { appendMembershipEvents, lockRoleInputs, resolveRoles } from './memberships-core.js';
import { insertScimToken } from './scim-tokens.js';
import { toConnection, toUser } from './serialize.js';
import { revokeSessionsWhere } from './session-revocation.js';
import { membershipMetadata } from './user-attributes.js';

export interface ConnectionInput {
  name: string;
  provider: string;
}

/** Creates a connection and its first SCIM token; the token is returned once and stored hashed. */
export async function createConnection(
  ctx: Context,
  organizationId: string,
  input: ConnectionInput,
): Promise<{ connection: ConnectionRow; token: string }> {
  return ctx.transaction(async (trx) => {
    const organization = await trx
      .selectFrom('organizations')
      .select('id')
      .where('id', '=', organizationId)
      .forShare()
      .executeTakeFirst();
    if (!organization) throw notFound('organization', organizationId);
    const now = ctx.now();
    const connection = await trx
      .insertInto('connections')
      .values({
        id: newId('connection', now.getTime()),
        organization_id: organizationId,
        name: input.name,
        provider: input.provider,
        attribute_mappings: '[]',
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const token = await insertScimToken(trx, connection, now);
    await appendEvents(trx, [
      {
        type: 'connection.created',
        organizationId,
        data: toConnection(connection, ctx.settings.publicUrl),
      },
    ]);
    return { connection, token };
  });
}

export async function getConnection(ctx: Context, id: string): Promise<ConnectionRow> {
  const row = await ctx.db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('connection', id);
  return row;
}

export async function listConnections(
  ctx: Context,
  options: { organizationId?: string | undefined; limit: number; after?: string | undefined },
): Promise<Page<Schemas['Connection']>> {
  const after = decodeCursor(options.after);
  let query = ctx.db
    .selectFrom('connections')
    .selectAll()
    .orderBy('id')
    .limit(options.limit + 1);
  if (options.organizationId) query = query.where('organization_id', '=', options.organizationId);
  if (after !== undefined) query = query.where('id', '>', after);
  const rows = await query.execute();
  if (rows.length === 0 && options.organizationId && after === undefined) {
    const organization = await ctx.db
      .selectFrom('organizations')
      .select('id')
      .where('id', '=', options.organizationId)
      .executeTakeFirst();
    if (!organization) throw notFound('organization', options.organizationId);
  }
  const guards = new Map(
    rows.length === 0
      ? []
      : (
          await ctx.db
            .selectFrom('deprovision_guards')
            .selectAll()
            .where(sql<boolean>`connection_id = ${anyText(rows.map((row) => row.id))}`)
            .execute()
        ).map((guard) => [guard.connection_id, guard]),
  );
  return toPage(
    rows,
    options.limit,
    (row) => row.id,
    (row) => ({
      ...toConnection(row, ctx.settings.publicUrl),
      deprovision_guard: toDeprovisionGuard(guards.get(row.id)),
    }),
  );
}

async function lockConnection(trx: Transaction<DB>, id: string): Promise<ConnectionRow> {
  const row = await trx
    .selectFrom('connections')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw notFound('connection', id);
  return row;
}

export async function updateConnection(
  ctx: Context,
  id: string,
  input: { name?: string | undefined; deprovision_guard?: GuardInput | undefined },
): Promise<Schemas['Connection']> {
  return ctx.transaction(async (trx) => {
    const before = await lockConnection(trx, id);
    if (before.state === 'deleted' && input.deprovision_guard) throw notFound('connection', id);
    const now = ctx.now();
    const changed: string[] = [];
    if (input.name !== undefined && input.name !== before.name) changed.push('name');
    if (input.deprovision_guard) {
      changed.push(...(await configureGuard(trx, now, before, input.deprovision_guard)));
    }
    if (changed.length === 0) return connectionWithGuard(ctx, trx, before);
    const row = await trx
      .updateTable('connections')
      .set({ ...(input.name !== undefined ? { name: input.name } : {}), updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const resource = await connectionWithGuard(ctx, trx, row);
    await appendEvents(trx, [
      {
        type: 'connection.updated',
        organizationId: row.organization_id,
        data: { ...resource, changed_attributes: changed },
      },
    ]);
    return resource;
  });
}

/**
 * Deletes a connection: its tokens stop working (the connection is no longer active), its users are
 * deactivated with their memberships, and their sessions revoked, all in one transaction.
 */
export async function deleteConnection(ctx: Context, id: string): Promise<void> {
  await ctx.transaction(async (trx) => {
    const before = await lockConnection(trx, id);
    if (before.state === 'deleted') throw notFound('connection', id);
    const now = ctx.now();
    const connection = await trx
      .updateTable('connections')
      .set({ state: 'deleted', deleted_at: now, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const deactivated = await trx
      .updateTable('users')
      .set((eb) => ({
        active: false,
        attributes: sql`jsonb_set(attributes, '{active}', 'false'::jsonb)`,
        version: eb('version', '+', 1),
        updated_at: now,
      }))
      .where('connection_id', '=', id)
      .where('deleted_at', 'is', null)
      .where('active', '=', true)
      .returningAll()
      .execute();
    await appendEvents(
      trx,
      deactivated.map((user) => ({
        type: 'user.deactivated' as const,
        organizationId: user.organization_id,
        data: toUser(user),
      })),
    );
    const userIds = deactivated.map((user) => user.id);
    if (userIds.length > 0) {
      const memberships = await trx
        .updateTable('memberships')
        .set({ status: 'inactive', updated_at: now })
        .where(sql<boolean>`user_id = ${anyText(userIds)}`)
        .where('status', '=', 'active')
        .returning('id')
        .execute();
      await appendMembershipEvents(
        trx,
        'membership.updated',
        memberships.map((m) => m.id),
        ['status'],
      );
      await revokeSessionsWhere(trx, now, { userIds }, 'connection_deleted');
    }
    await appendEvents(trx, [
      {
        type: 'connection.deleted',
        organizationId: connection.organization_id,
        data: toConnection(connection, ctx.settings.publicUrl),
      },
    ]);
  });
  ctx.scimAuthCache.clear();
}

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

export async function getAttributeMappings(
  ctx: Context,
  connectionId: string,
): Promise<Schemas['AttributeMappings']> {
  const connection = await getConnection(ctx, connectionId);
  return {
    object: 'attribute_mappings',
    connection_id: connectionId,
    mappings: connection.attribute_mappings,
  };
}

/**
 * Replaces which SCIM attributes land in membership.metadata, and recomputes the metadata of every
 * member of the connection in the same transaction (membership.updated for those that change).
 */
export async function setAttributeMappings(
  ctx: Context,
  connectionId: string,
  mappings: AttributeMapping[],
  change: LastChange,
): Promise<Schemas['AttributeMappings']> {
  await ctx.transaction((trx) => applyAttributeMappings(ctx, trx, connectionId, mappings, change));
  ctx.scimAuthCache.clear();
  return getAttributeMappings(ctx, connectionId);
}

/** The body of an attribute-mapping change, in the caller's transaction (PUT and its preview). */
export async function applyAttributeMappings(
  ctx: Context,
  trx: Transaction<DB>,
  connectionId: string,
  mappings: AttributeMapping[],
  change: LastChange,
): Promise<void> {
  const connection = await lockConnection(trx, connectionId);
  const now = ctx.now();
  await trx
    .updateTable('connections')
    .set({ attribute_mappings: JSON.stringify(mappings), updated_at: now })
    .where('id', '=', connectionId)
    .execute();
  const members = await trx
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['m.id', 'm.metadata', 'u.attributes'])
    .where('u.connection_id', '=', connectionId)
    .where('u.deleted_at', 'is', null)
    .execute();
  const changed = members
    .map((member) => ({
      id: member.id,
      before: member.metadata,
      after: membershipMetadata(member.attributes, mappings),
    }))
    .filter((m) => JSON.stringify(m.before) !== JSON.stringify(m.after));
  for (let i = 0; i < changed.length; i += 1000) {
    const batch = changed.slice(i, i + 1000);
    await sql`
        update memberships m set metadata = v.metadata::jsonb, updated_at = ${now}, last_change = ${JSON.stringify(change)}::jsonb
        from unnest(${batch.map((b) => b.id)}::text[], ${batch.map((b) => JSON.stringify(b.after))}::text[]) as v(id, metadata)
        where m.id = v.id`.execute(trx);
  }
  await appendMembershipEvents(
    trx,
    'membership.updated',
    changed.map((c) => c.id),
    ['metadata'],
  );
  await appendEvents(trx, [
    {
      type: 'connection.updated',
      organizationId: connection.organization_id,
      data: {
        ...toConnection(connection, ctx.settings.publicUrl),
        changed_attributes: ['attribute_mappings'],
      },
    },
  ]);
}

/** Sync health from the SCIM request log: when the IdP last called, volumes and errors, last failures. */
export async function getSyncHealth(
  ctx: Context,
  connectionId: string,
  failures: number,
): Promise<Schemas['SyncHealth']> {
  await getConnection(ctx, connectionId);
  const now = ctx.now().getTime();
  const hourAgo = new Date(now - 3_600_000);
  const dayAgo = new Date(now - 86_400_000);
  const stats = await ctx.db
    .selectFrom('sync_log')
    .where('connection_id', '=', connectionId)
    .select([
      sql<Date | null>`max(created_at)`.as('last_request_at'),
      sql<Date | null>`max(created_at) filter (where status < 400)`.as('last_success_at'),
      sql<number>`count(*) filter (where created_at > ${hourAgo})`.as('hour_requests'),
      sql<number>`count(*) filter (where created_at > ${hourAgo} and status >= 400)`.as('hour_errors'),
      sql<number>`count(*) filter (where created_at > ${dayAgo})`.as('day_requests'),
      sql<number>`count(*) filter (where created_at > ${dayAgo} and status >= 400)`.as('day_errors'),
    ])
    .executeTakeFirstOrThrow();
  const recent =
    failures === 0
      ? []
      : await ctx.db
          .selectFrom('sync_log')
          .select(['created_at', 'request_id', 'method', 'path', 'status', 'scim_type', 'detail'])
          .where('connection_id', '=', connectionId)
          .where('status', '>=', 400)
          .orderBy('id', 'desc')
          .limit(failures)
          .execute();
  const window = (requests: number, errors: number) => ({
    requests: Number(requests),
    errors: Number(errors),
    error_rate: Number(requests) === 0 ? 0 : Number(errors) / Number(requests),
  });
  return {
    object: 'sync_health',
    connection_id: connectionId,
    last_request_at: stats.last_request_at ? new Date(stats.last_request_at).toISOString() : null,
    last_success_at: stats.last_success_at ? new Date(stats.last_success_at).toISOString() : null,
    last_hour: window(stats.hour_requests, stats.hour_errors),
    last_day: window(stats.day_requests, stats.day_errors),
    recent_failures: recent.map((row) => ({
      at: row.created_at.toISOString(),
      request_id: row.request_id,
      method: row.method,
      path: row.path,
      status: row.status,
      scim_type: row.scim_type,
      detail: row.detail,
    })),
  };
}
