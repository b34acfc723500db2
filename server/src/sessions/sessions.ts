import { type Selectable, sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { DB, SessionsTable } from '../db/schema.js';
import { type RevokeReason, revokeSessionsWhere, toSession } from '../directory/session-revocation.js';
import { ApiError, notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { hashSecret, newId, newSecret } from '../ids.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import type { SigningKeys } from './signing-keys.js';

type SessionRow = Selectable<SessionsTable>;

/**
 * Sessions: issue, refresh (with refresh-token rotation and reuse detection), revoke.
 *
 * Locking. Every path that decides whether a session may live takes row locks in one order, the
 * order the deprovisioning paths take them in: the organization row (KEY SHARE, as the inserts
 * below would take it anyway), the user row (FOR SHARE), the membership row (FOR SHARE), then the
 * session row (FOR UPDATE). A deactivation updates the user
 * row before it revokes sessions, and a membership removal deletes the membership first; so a
 * session being created or refreshed concurrently is either seen by the revocation (which waits for
 * it to commit) or sees the change (it waits, then reads the new row): never a live session for a
 * deactivated user, and no deadlock between the two.
 */

interface Claims {
  role: string;
  permissions: string[];
}

export interface IssuedTokens {
  session: SessionRow;
  claims: Claims;
  token: string;
  tokenExpiresAt: Date;
  refreshToken: string;
}

export function toSessionTokens(issued: IssuedTokens): Schemas['SessionTokens'] {
  return {
    object: 'session_tokens',
    id: issued.session.id,
    user_id: issued.session.user_id,
    organization_id: issued.session.organization_id,
    role: issued.claims.role,
    permissions: issued.claims.permissions,
    token: issued.token,
    expires_at: issued.tokenExpiresAt.toISOString(),
    refresh_token: issued.refreshToken,
    session_expires_at: issued.session.expires_at.toISOString(),
  };
}

/** The user and their membership, locked; or why a session must not be issued or refreshed. */
async function lockMember(
  trx: Transaction<DB>,
  organizationId: string,
  userId: string,
): Promise<
  | { ok: true; membershipId: string; claims: Claims }
  | { ok: false; code: 'user_inactive' | 'not_a_member'; reason: RevokeReason; missingUser?: boolean }
> {
  // The organization row first: the session and refresh-token rows written below reference it
  // (a KEY SHARE lock), and organization deletion locks it before the users.
  await trx.selectFrom('organizations').select('id').where('id', '=', organizationId).forKeyShare().execute();
  const user = await trx
    .selectFrom('users')
    .select(['organization_id', 'active', 'deleted_at'])
    .where('id', '=', userId)
    .forShare()
    .executeTakeFirst();
  if (!user) return { ok: false, code: 'not_a_member', reason: 'user_deleted', missingUser: true };
  if (user.organization_id !== organizationId)
    return { ok: false, code: 'not_a_member', reason: 'membership_removed' };
  if (user.deleted_at) return { ok: false, code: 'user_inactive', reason: 'user_deleted' };
  if (!user.active) return { ok: false, code: 'user_inactive', reason: 'user_deactivated' };
  const membership = await trx
    .selectFrom('memberships')
    .select(['id', 'status', 'role_key'])
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .forShare()
    .executeTakeFirst();
  if (!membership) return { ok: false, code: 'not_a_member', reason: 'membership_removed' };
  if (membership.status !== 'active') return { ok: false, code: 'user_inactive', reason: 'user_deactivated' };
  const role = await trx
    .selectFrom('roles')
    .select('permissions')
    .where('key', '=', membership.role_key)
    .executeTakeFirst();
  return {
    ok: true,
    membershipId: membership.id,
    claims: { role: membership.role_key, permissions: [...(role?.permissions ?? [])] },
  };
}

/** A token never outlives its session. */
function tokenExpiry(now: Date, ttlMs: number, sessionExpiresAt: Date): Date {
  // Whole seconds, as in the JWT's `exp`, so that `expires_at` is exactly the token's expiry.
  return new Date(Math.floor(Math.min(now.getTime() + ttlMs, sessionExpiresAt.getTime()) / 1000) * 1000);
}

async function issue(
  trx: Transaction<DB>,
  keys: SigningKeys,
  now: Date,
  ttlMs: number,
  session: SessionRow,
  claims: Claims,
): Promise<IssuedTokens> {
  const refreshToken = newSecret('refreshToken');
  await trx
    .insertInto('refresh_tokens')
    .values({
      token_hash: hashSecret(refreshToken),
      session_id: session.id,
      organization_id: session.organization_id,
      created_at: now,
    })
    .execute();
  const tokenExpiresAt = tokenExpiry(now, ttlMs, session.expires_at);
  const token = await keys.sign(
    {
      sub: session.user_id,
      sid: session.id,
      org_id: session.organization_id,
      org_role: claims.role,
      org_permissions: claims.permissions,
    },
    now,
    tokenExpiresAt,
  );
  return {
    session: { ...session, token_expires_at: tokenExpiresAt },
    claims,
    token,
    tokenExpiresAt,
    refreshToken,
  };
}

export async function createSession(
  ctx: Context,
  keys: SigningKeys,
  input: { user_id: string; organization_id: string },
): Promise<IssuedTokens> {
  return ctx.transaction(async (trx) => {
    const now = ctx.now();
    const member = await lockMember(trx, input.organization_id, input.user_id);
    if (!member.ok) {
      if (member.missingUser) throw notFound('user', input.user_id);
      throw new ApiError(
        409,
        member.code,
        member.code === 'user_inactive'
          ? `User "${input.user_id}" is deactivated or deleted: no session can be created.`
          : `User "${input.user_id}" is not a member of organization "${input.organization_id}".`,
      );
    }
    const expiresAt = new Date(now.getTime() + ctx.settings.sessionLifetimeMs);
    const session: SessionRow = {
      id: newId('session', now.getTime()),
      organization_id: input.organization_id,
      user_id: input.user_id,
      membership_id: member.membershipId,
      created_at: now,
      expires_at: expiresAt,
      last_refreshed_at: null,
      revoked_at: null,
      revoke_reason: null,
      token_expires_at: tokenExpiry(now, ctx.settings.sessionTtlMs, expiresAt),
    };
    await trx.insertInto('sessions').values(session).execute();
    const issued = await issue(trx, keys, now, ctx.settings.sessionTtlMs, session, member.claims);
    await appendEvents(trx, [
      {
        type: 'session.created',
        organizationId: session.organization_id,
        data: toSession(issued.session, now),
      },
    ]);
    return issued;
  });
}

type RefreshOutcome =
  | { ok: true; issued: IssuedTokens }
  | {
      ok: false;
      code: 'session_revoked' | 'session_expired' | 'user_inactive' | 'not_a_member';
      message: string;
    };

const refused = (code: Extract<RefreshOutcome, { ok: false }>['code'], message: string): RefreshOutcome => ({
  ok: false,
  code,
  message,
});

/**
 * Exchanges a refresh token for new tokens. A refresh token works once: presented again, it
 * revokes its session (whoever holds the newer token, thief or user, is signed out; the other
 * never learns the new one). Refusals that reveal a dead session revoke it in the same transaction
 * before answering 401, so a later reactivation of the user does not revive it.
 *
 * @param limit called with the session id before any write; returns seconds to wait, or 0.
 */
export async function refreshSession(
  ctx: Context,
  keys: SigningKeys,
  refreshToken: string,
  limit: (sessionId: string) => number | Promise<number> = () => 0,
): Promise<IssuedTokens> {
  const tokenHash = hashSecret(refreshToken);
  const found = await ctx.db
    .selectFrom('refresh_tokens as t')
    .innerJoin('sessions as s', 's.id', 't.session_id')
    .select(['s.id', 's.user_id', 's.organization_id'])
    .where('t.token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (!found) throw new ApiError(401, 'invalid_refresh_token', 'Unknown refresh token.');
  const wait = await limit(found.id);
  if (wait > 0) {
    throw new ApiError(429, 'rate_limited', `Too many refreshes of this session; retry after ${wait} s.`, {
      headers: { 'Retry-After': String(wait) },
    });
  }

  const outcome = await ctx.transaction(async (trx): Promise<RefreshOutcome> => {
    const now = ctx.now();
    const member = await lockMember(trx, found.organization_id, found.user_id);
    const session = await trx
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', found.id)
      .forUpdate()
      .executeTakeFirst();
    if (!session) return refused('session_revoked', 'The session no longer exists.');
    // Read after the session lock: a concurrent refresh with the same token has committed by now.
    const token = await trx
      .selectFrom('refresh_tokens')
      .select('used_at')
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst();
    const revoke = (reason: RevokeReason) =>
      session.revoked_at
        ? Promise.resolve()
        : revokeSessionsWhere(trx, now, { sessionId: session.id }, reason);

    if (!token || token.used_at) {
      await revoke('refresh_token_reused');
      ctx.log.warn(
        { session_id: session.id, user_id: session.user_id },
        'refresh token reused: session revoked (possible token theft)',
      );
      return refused(
        'session_revoked',
        'This refresh token was already used; the session is revoked. Sign in again.',
      );
    }
    // The member's state first: it says why (the deprovisioning that revoked the session).
    if (!member.ok) {
      await revoke(member.reason);
      return member.code === 'user_inactive'
        ? refused('user_inactive', 'The user is deactivated or deleted.')
        : refused('not_a_member', 'The user is no longer a member of the organization.');
    }
    if (session.revoked_at) return refused('session_revoked', 'The session was revoked. Sign in again.');
    if (session.expires_at.getTime() <= now.getTime()) {
      return refused('session_expired', 'The session reached its lifetime. Sign in again.');
    }

    await trx
      .updateTable('refresh_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .execute();
    const issued = await issue(trx, keys, now, ctx.settings.sessionTtlMs, session, member.claims);
    await trx
      .updateTable('sessions')
      .set({
        last_refreshed_at: now,
        token_expires_at: issued.tokenExpiresAt,
        membership_id: member.membershipId,
      })
      .where('id', '=', session.id)
      .execute();
    return { ok: true, issued: { ...issued, session: { ...issued.session, last_refreshed_at: now } } };
  });
  if (!outcome.ok) throw new ApiError(401, outcome.code, outcome.message);
  return outcome.issued;
}

export async function getSession(ctx: Context, id: string): Promise<Schemas['Session']> {
  const row = await ctx.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('session', id);
  return toSession(row, ctx.now());
}

export async function revokeSession(ctx: Context, id: string): Promise<Schemas['Session']> {
  return ctx.transaction(async (trx) => {
    const exists = await trx.selectFrom('sessions').select('id').where('id', '=', id).executeTakeFirst();
    if (!exists) throw notFound('session', id);
    await revokeSessionsWhere(trx, ctx.now(), { sessionId: id }, 'revoked');
    const row = await trx.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return toSession(row, ctx.now());
  });
}

async function requireUser(ctx: Context, userId: string): Promise<void> {
  const user = await ctx.db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst();
  if (!user) throw notFound('user', userId);
}

export async function listUserSessions(
  ctx: Context,
  userId: string,
  options: { limit: number; after?: string | undefined; status?: Schemas['SessionStatus'] | undefined },
): Promise<Page<Schemas['Session']>> {
  await requireUser(ctx, userId);
  const after = decodeCursor(options.after);
  const now = ctx.now();
  let query = ctx.db
    .selectFrom('sessions')
    .selectAll()
    .where('user_id', '=', userId)
    .orderBy('id')
    .limit(options.limit + 1);
  if (after !== undefined) query = query.where('id', '>', after);
  if (options.status === 'active')
    query = query.where('revoked_at', 'is', null).where('expires_at', '>', now);
  if (options.status === 'revoked') query = query.where('revoked_at', 'is not', null);
  if (options.status === 'expired')
    query = query.where('revoked_at', 'is', null).where('expires_at', '<=', now);
  return toPage(
    await query.execute(),
    options.limit,
    (row) => row.id,
    (row) => toSession(row, now),
  );
}

export async function revokeUserSessions(ctx: Context, userId: string): Promise<number> {
  await requireUser(ctx, userId);
  const revoked = await ctx.transaction((trx) =>
    revokeSessionsWhere(trx, ctx.now(), { userId }, 'all_revoked'),
  );
  return revoked.length;
}

/** Sessions past their lifetime for longer than `retentionMs` are deleted with their refresh tokens. */
export async function purgeSessions(ctx: Context, retentionMs: number): Promise<number> {
  const before = new Date(ctx.now().getTime() - retentionMs);
  const result = await ctx.db
    .deleteFrom('sessions')
    .where(sql<boolean>`expires_at < ${before} or revoked_at < ${before}`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
