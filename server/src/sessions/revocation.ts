import { type Selectable, sql, type Transaction } from 'kysely';
import type { Schemas } from '../contract.js';
import type { DB, SessionsTable } from '../db/schema.js';
import { anyText } from '../db/sql.js';
import { appendEvents } from '../events/outbox.js';

export type RevokeReason = Schemas['SessionRevokeReason'];

/** A session as the API shows it; `status` is computed against `now`. */
export function toSession(row: Selectable<SessionsTable>, now: Date): Schemas['Session'] {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    object: 'session',
    id: row.id,
    user_id: row.user_id,
    organization_id: row.organization_id,
    status: row.revoked_at ? 'revoked' : row.expires_at.getTime() <= now.getTime() ? 'expired' : 'active',
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at.toISOString(),
    last_refreshed_at: iso(row.last_refreshed_at),
    token_expires_at: iso(row.token_expires_at),
    revoked_at: iso(row.revoked_at),
    revoke_reason: (row.revoke_reason as RevokeReason | null) ?? null,
  };
}

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
