import { randomBytes } from 'node:crypto';
import { type Selectable, sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { DB, SessionsTable } from '../db/schema.js';
import { ApiError, notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { hashSecret, newId } from '../ids.js';
import type { KeyRing } from '../key-ring.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import { refreshTokenFor } from './refresh-token.js';
import { type RevokeReason, revokeSessionsWhere } from './revocation.js';
import { toSession } from './serialize.js';
import type { SigningKeys } from './signing-keys.js';

export type SessionRow = Selectable<SessionsTable>;

/**
 * Sessions: issue, revoke, list, purge; refresh (rotation, reuse detection) is in ./refresh.ts.
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

export interface Claims {
  role: string;
  permissions: string[];
}

/** What issuing tokens reads of a session: the refresh statement returns only these columns. */
export type IssuedSession = Pick<SessionRow, 'id' | 'user_id' | 'organization_id' | 'expires_at'>;

export interface IssuedTokens {
  session: IssuedSession;
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
export async function lockMember(
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
export function tokenExpiry(now: Date, ttlMs: number, sessionExpiresAt: Date): Date {
  // Whole seconds, as in the JWT's `exp`, so that `expires_at` is exactly the token's expiry.
  return new Date(Math.floor(Math.min(now.getTime() + ttlMs, sessionExpiresAt.getTime()) / 1000) * 1000);
}

/**
 * The session JWT. `aud` is the organization: a standard claim that any JWT library checks, so an
 * app (or a tenant's subdomain of one) can refuse another organization's tokens without reading
 * Roster's own `org_id` claim.
 */
export function signToken(
  keys: SigningKeys,
  session: IssuedSession,
  claims: Claims,
  iat: Date,
  exp: Date,
): string {
  return keys.sign(
    {
      sub: session.user_id,
      sid: session.id,
      aud: session.organization_id,
      org_id: session.organization_id,
      org_role: claims.role,
      org_permissions: claims.permissions,
    },
    iat,
    exp,
  );
}

export async function createSession(
  ctx: Context,
  keys: SigningKeys,
  keyRing: KeyRing,
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
    const tokenExpiresAt = tokenExpiry(now, ctx.settings.sessionTtlMs, expiresAt);
    const id = newId('session', now.getTime());
    // The first refresh token: generation 1 with a random secret (see refresh-token.ts); its hash
    // is stored.
    const refreshToken = refreshTokenFor(keyRing, id, 1, randomBytes(32).toString('base64url'));
    const session: SessionRow = {
      id,
      organization_id: input.organization_id,
      user_id: input.user_id,
      membership_id: member.membershipId,
      created_at: now,
      expires_at: expiresAt,
      last_refreshed_at: null,
      revoked_at: null,
      revoke_reason: null,
      token_expires_at: tokenExpiresAt,
      refresh_generation: 1,
      refresh_token_hash: hashSecret(refreshToken),
      refresh_previous_hash: null,
      refresh_rotated_at: now,
      refresh_tat: null,
    };
    await trx.insertInto('sessions').values(session).execute();
    await appendEvents(trx, [
      { type: 'session.created', organizationId: session.organization_id, data: toSession(session, now) },
    ]);
    return {
      session,
      claims: member.claims,
      token: signToken(keys, session, member.claims, now, tokenExpiresAt),
      tokenExpiresAt,
      refreshToken,
    };
  });
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

/** Sessions past their lifetime for longer than `retentionMs` are deleted (with any refresh_tokens rows). */
export async function purgeSessions(ctx: Context, retentionMs: number): Promise<number> {
  const before = new Date(ctx.now().getTime() - retentionMs);
  const result = await ctx.db
    .deleteFrom('sessions')
    .where(sql<boolean>`expires_at < ${before} or revoked_at < ${before}`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
