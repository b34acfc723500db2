import { sql, type Transaction } from 'kysely';
import type { DB } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { appendEvents } from '../events/outbox.js';

export type RevokeReason =
  | 'revoked'
  | 'user_deactivated'
  | 'user_deleted'
  | 'membership_removed'
  | 'membership_inactive'
  | 'role_changed'
  | 'connection_deleted'
  | 'organization_deleted'
  | 'refresh_token_reused'
  | 'all_revoked';

/**
 * Revokes the live sessions that match, inside the caller's transaction (the cause and the
 * revocation commit together), and appends one `session.revoked` event per session.
 * @returns the ids of the sessions revoked.
 */
export async function revokeSessionsWhere(
  trx: Transaction<DB>,
  now: Date,
  where: { organizationId?: string; userId?: string; userIds?: string[]; sessionId?: string },
  reason: RevokeReason,
): Promise<string[]> {
  if (where.userIds && where.userIds.length === 0) return [];
  let query = trx
    .updateTable('sessions')
    .set({ revoked_at: now, revoke_reason: reason })
    .where('revoked_at', 'is', null);
  if (where.organizationId) query = query.where('organization_id', '=', where.organizationId);
  if (where.userId) query = query.where('user_id', '=', where.userId);
  if (where.userIds) query = query.where(sql<boolean>`user_id = ${anyText(where.userIds)}`);
  if (where.sessionId) query = query.where('id', '=', where.sessionId);
  const revoked = await query.returning(['id', 'organization_id', 'user_id']).execute();
  await appendEvents(
    trx,
    revoked.map((session) => ({
      type: 'session.revoked' as const,
      organizationId: session.organization_id,
      data: {
        object: 'session',
        id: session.id,
        user_id: session.user_id,
        organization_id: session.organization_id,
        revoked_at: now.toISOString(),
        reason,
      },
    })),
  );
  return revoked.map((session) => session.id);
}
