import { sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { AttributeMapping, DB, LastChange } from '../db/schema.js';
import { appendEvents } from '../events/outbox.js';
import { sameJson } from '../lib/json.js';
import { getConnection, lockConnection } from './connections.js';
import { appendMembershipEvents } from './role-resolution.js';
import { toConnection } from './serialize.js';
import { membershipMetadata } from './user-attributes.js';

// Which SCIM attributes of a connection's users land in membership.metadata (PUT and its preview).

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
    .filter((m) => !sameJson(m.before, m.after));
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
