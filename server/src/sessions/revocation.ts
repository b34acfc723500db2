import { sql, type Transaction } from 'kysely';
import type { Schemas } from '../contract.js';
import type { DB } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { appendEvents } from '../events/outbox.js';
import { toSession } from './serialize.js';

export type RevokeReason = Schemas['SessionRevokeReason'];

/**
 * Revokes the live sessions that match, inside the caller's transaction (the cause and the
 * revocation commit together), and appends one `session.revoked` event per session. The event
 * carries the session, whose `token_expires_at` tells a revocation list how long to remember it.
 *
 * Callers that also change the user or membership rows lock them first (user, then membership,
 * then sessions): the order session refresh takes them in.
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
  const revoked = await query.returningAll().execute();
  await appendEvents(
    trx,
    revoked.map((session) => ({
      type: 'session.revoked' as const,
      organizationId: session.organization_id,
      data: toSession(session, now),
    })),
  );
  return revoked.map((session) => session.id);
}
