import { type Selectable, sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { DB, SessionsTable } from '../db/schema.js';
import { ApiError, notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { hashSecret, newId, newSecret, SECRET_PREFIXES } from '../ids.js';
import type { KeyRing } from '../key-ring.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import { type RevokeReason, revokeSessionsWhere } from './revocation.js';
import { toSession } from './serialize.js';
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

/**
 * The session JWT. `aud` is the organization: a standard claim that any JWT library checks, so an
 * app (or a tenant's subdomain of one) can refuse another organization's tokens without reading
 * Roster's own `org_id` claim.
 */
function signToken(keys: SigningKeys, session: SessionRow, claims: Claims, iat: Date, exp: Date): string {
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

/**
 * The refresh token that succeeds `presented`: derived from it with a keyed digest, so that a
 * presentation within the reuse interval answers the same successor again, while the database
 * holds only hashes (and nobody without the key ring can derive a successor from a stolen hash).
 */
export function successorRefreshToken(keyRing: KeyRing, presented: string): string {
  return (
    SECRET_PREFIXES.refreshToken + keyRing.mac('refresh token successor', presented).toString('base64url')
  );
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
    const tokenExpiresAt = tokenExpiry(now, ctx.settings.sessionTtlMs, expiresAt);
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
      token_expires_at: tokenExpiresAt,
    };
    await trx.insertInto('sessions').values(session).execute();
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

export interface RefreshDeps {
  keys: SigningKeys;
  keyRing: KeyRing;
  /** Called with the session id; returns seconds to wait, or 0 (the per-session rate limit). */
  limit?: (sessionId: string) => number | Promise<number>;
}

function rateLimited(wait: number): ApiError {
  return new ApiError(429, 'rate_limited', `Too many refreshes of this session; retry after ${wait} s.`, {
    headers: { 'Retry-After': String(wait) },
  });
}

/**
 * Exchanges a refresh token for new tokens (rotation). A refresh token works once; presented again
 * within the reuse interval (ROSTER_REFRESH_REUSE_INTERVAL: parallel requests of one browser, or
 * replicas racing one cookie) it answers the same successor pair again; presented later, it revokes
 * its session (whoever holds the newer token, thief or user, is signed out; the other never learns
 * the new one). Refusals that reveal a dead session revoke it in the same transaction as its event,
 * before answering 401, so that a later reactivation of the user does not revive it.
 *
 * The common case is one statement ({@link rotate}); anything it does not rotate is decided by
 * {@link refreshCarefully}, which says why.
 */
export async function refreshSession(
  ctx: Context,
  deps: RefreshDeps,
  refreshToken: string,
): Promise<IssuedTokens> {
  const now = ctx.now();
  const successor = successorRefreshToken(deps.keyRing, refreshToken);
  const rotated = await rotate(ctx, hashSecret(refreshToken), hashSecret(successor), now);
  if (rotated) {
    // The rotation is committed: a request over the limit gets 429, and its retry within the reuse
    // interval gets this same pair (the limit bounds the work, and nothing is lost).
    const wait = (await deps.limit?.(rotated.session.id)) ?? 0;
    if (wait > 0) throw rateLimited(wait);
    const tokenExpiresAt = rotated.session.token_expires_at as Date;
    return {
      session: rotated.session,
      claims: rotated.claims,
      token: signToken(deps.keys, rotated.session, rotated.claims, now, tokenExpiresAt),
      tokenExpiresAt,
      refreshToken: successor,
    };
  }
  return refreshCarefully(ctx, deps, refreshToken, successor);
}

/**
 * The rotation as one statement (one round trip, no BEGIN/COMMIT): it rotates only when every
 * guarantee holds, and writes nothing otherwise.
 *
 * Locks, in the order every deprovisioning path takes them: the organization row (KEY SHARE, as
 * the refresh-token insert would take it anyway), then the session row (FOR UPDATE), then the
 * refresh-token row (the UPDATE). The user and membership are read from the statement's snapshot
 * without locks: every deprovisioning path changes the user or membership row and then, in the
 * same transaction, updates the session row (revocation, or the membership foreign key's SET
 * NULL). So either that transaction committed before this statement locked the session, and the
 * locked row (the newest version) is revoked; or it revokes this session after this statement
 * commits, tokens included. A role changed concurrently can reach a token issued a moment after
 * the change: the revocation list compares a token's role with the newest one it knows, not times.
 */
async function rotate(
  ctx: Context,
  tokenHash: string,
  successorHash: string,
  now: Date,
): Promise<{ session: SessionRow; claims: Claims } | undefined> {
  const ttl = `${ctx.settings.sessionTtlMs} milliseconds`;
  // Autocommit, through ctx.db rather than ctx.write: it appends no event, so there is no
  // sequencer to wake (a wake-up costs the database a query).
  const { rows } = await sql<SessionRow & { role_key: string; permissions: string[] | null }>`
      with o as materialized (
        select o.id from organizations o
        where o.id = (select organization_id from refresh_tokens where token_hash = ${tokenHash})
        for key share
      ), s as materialized (
        select s.id, s.user_id, s.organization_id, s.expires_at, s.revoked_at
        from sessions s
        where s.id = (select session_id from refresh_tokens where token_hash = ${tokenHash})
          and s.organization_id = (select id from o)
        for update
      ), m as materialized (
        select m.id, m.role_key, r.permissions
        from s
        join users u on u.id = s.user_id and u.organization_id = s.organization_id
          and u.active and u.deleted_at is null
        join memberships m on m.organization_id = s.organization_id and m.user_id = s.user_id
          and m.status = 'active'
        left join roles r on r.key = m.role_key
        where s.revoked_at is null and s.expires_at > ${now}
      ), t as materialized (
        update refresh_tokens t set used_at = ${now}
        from s
        where t.token_hash = ${tokenHash} and t.session_id = s.id and t.used_at is null
          and exists (select 1 from m)
        returning t.session_id, t.organization_id
      ), successor as (
        insert into refresh_tokens (token_hash, session_id, organization_id, created_at)
        select ${successorHash}, t.session_id, t.organization_id, ${now} from t
      ), updated as (
        update sessions x
        set last_refreshed_at = ${now}, membership_id = m.id,
          token_expires_at = date_trunc('second', least(${now}::timestamptz + ${ttl}::interval, x.expires_at))
        from t, m
        where x.id = t.session_id
        returning x.*
      )
      select updated.*, m.role_key, m.permissions from updated, m`.execute(ctx.db);
  const row = rows[0];
  if (!row) return undefined;
  const { role_key, permissions, ...session } = row;
  return { session, claims: { role: role_key, permissions: [...(permissions ?? [])] } };
}

/** Every refresh the single statement did not rotate: reuse, refusals, and why. */
async function refreshCarefully(
  ctx: Context,
  deps: RefreshDeps,
  refreshToken: string,
  successor: string,
): Promise<IssuedTokens> {
  const tokenHash = hashSecret(refreshToken);
  const found = await ctx.db
    .selectFrom('refresh_tokens as t')
    .innerJoin('sessions as s', 's.id', 't.session_id')
    .select(['s.id', 's.user_id', 's.organization_id'])
    .where('t.token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (!found) throw new ApiError(401, 'invalid_refresh_token', 'Unknown refresh token.');
  const wait = (await deps.limit?.(found.id)) ?? 0;
  if (wait > 0) throw rateLimited(wait);

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

    // Within the reuse interval, a spent token answers its successor again, if the session may
    // still live (checked below as for any refresh) and the successor is the one it was rotated to.
    const reusable =
      token?.used_at != null &&
      now.getTime() - token.used_at.getTime() < ctx.settings.refreshReuseIntervalMs &&
      (await trx
        .selectFrom('refresh_tokens')
        .select('session_id')
        .where('token_hash', '=', hashSecret(successor))
        .where('session_id', '=', session.id)
        .executeTakeFirst()) !== undefined;
    if (!token || (token.used_at && !reusable)) {
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

    if (token.used_at) {
      // The same pair as the rotation answered: its refresh token, and a session token with the
      // same issue and expiry times (byte-identical with EdDSA; ES256 signatures are randomized).
      const issuedAt = token.used_at;
      const tokenExpiresAt = tokenExpiry(issuedAt, ctx.settings.sessionTtlMs, session.expires_at);
      return {
        ok: true,
        issued: {
          session,
          claims: member.claims,
          token: signToken(deps.keys, session, member.claims, issuedAt, tokenExpiresAt),
          tokenExpiresAt,
          refreshToken: successor,
        },
      };
    }
    // Not spent, yet not rotated by the statement: a race it lost (e.g. with a deprovisioning that
    // has committed since). Rotate here, under the locks taken above.
    await trx
      .updateTable('refresh_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .execute();
    await trx
      .insertInto('refresh_tokens')
      .values({
        token_hash: hashSecret(successor),
        session_id: session.id,
        organization_id: session.organization_id,
        created_at: now,
      })
      .execute();
    const tokenExpiresAt = tokenExpiry(now, ctx.settings.sessionTtlMs, session.expires_at);
    const updated = await trx
      .updateTable('sessions')
      .set({ last_refreshed_at: now, token_expires_at: tokenExpiresAt, membership_id: member.membershipId })
      .where('id', '=', session.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return {
      ok: true,
      issued: {
        session: updated,
        claims: member.claims,
        token: signToken(deps.keys, updated, member.claims, now, tokenExpiresAt),
        tokenExpiresAt,
        refreshToken: successor,
      },
    };
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
