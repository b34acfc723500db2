import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { ConnectionRow, DB } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { newId } from '../ids.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import { revokeSessionsWhere } from '../sessions/revocation.js';
import {
  configureGuard,
  connectionWithGuard,
  type GuardInput,
  toDeprovisionGuard,
} from './deprovision-guard.js';
import { lockOrganizationForShare } from './organizations.js';
import { appendMembershipEvents } from './role-resolution.js';
import { insertScimToken } from './scim-tokens.js';
import { toConnection, toUser } from './serialize.js';

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
    await lockOrganizationForShare(trx, organizationId);
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

/** Locks a connection row (FOR UPDATE) in the caller's transaction; 404 if there is none. */
export async function lockConnection(trx: Transaction<DB>, id: string): Promise<ConnectionRow> {
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
