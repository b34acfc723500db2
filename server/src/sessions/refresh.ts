import { CompiledQuery, sql } from 'kysely';
import type { Context } from '../context.js';
import { ApiError } from '../errors.js';
import { hashSecret, SECRET_PREFIXES } from '../ids.js';
import type { KeyRing } from '../key-ring.js';
import type { RateLimiter } from '../rate-limit.js';
import { type RevokeReason, revokeSessionsWhere } from './revocation.js';
import {
  type Claims,
  type IssuedSession,
  type IssuedTokens,
  lockMember,
  signToken,
  tokenExpiry,
} from './sessions.js';
import type { SigningKeys } from './signing-keys.js';

/**
 * Refresh: exchanges a refresh token for new tokens (rotation), with reuse detection and the
 * reuse interval. The hot path of every app (each active user refreshes once per token lifetime):
 * one statement, one round trip, in the common case.
 */

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
  /**
   * The per-session rate limit (ROSTER_REFRESH_RATE_LIMIT), keyed by session id. One that can be
   * taken inside a statement (the shared one, on PostgreSQL) is taken inside the refresh statement.
   */
  limiter?: RateLimiter;
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
  const rotated = await rotate(ctx, deps.limiter, hashSecret(refreshToken), hashSecret(successor), now);
  if (rotated) {
    // A limit the statement could not take (in this process's memory) is taken now that the
    // rotation is committed: a request over it gets 429, and its retry within the reuse interval
    // gets this same pair (the limit bounds the work, and nothing is lost).
    const wait = (rotated.limitTaken ? 0 : await deps.limiter?.take(rotated.session.id)) ?? 0;
    if (wait > 0) throw rateLimited(wait);
    const tokenExpiresAt = rotated.tokenExpiresAt;
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

/** The rotation statement ({@link rotateQuery}) with this refresh's values. */
async function rotate(
  ctx: Context,
  limiter: RateLimiter | undefined,
  tokenHash: string,
  successorHash: string,
  now: Date,
): Promise<
  { session: IssuedSession; claims: Claims; tokenExpiresAt: Date; limitTaken: boolean } | undefined
> {
  const statement = rotateStatement(ctx.db, limiter);
  // The limiter's own upkeep (pruning its table every so many takes) runs as it builds a take.
  if (statement.takesLimit) limiter?.takeEach?.(sql`select null as key`);
  const values: Record<Slot, unknown> = {
    tokenHash,
    successorHash,
    now,
    ttl: `${ctx.settings.sessionTtlMs} milliseconds`,
  };
  const { rows } = await ctx.db.executeQuery<RotatedRow>(
    CompiledQuery.raw(
      statement.sql,
      statement.parameters.map((value) => (isSlot(value) ? values[SLOTS[value]] : value)),
    ),
  );
  const row = rows[0];
  if (!row) return undefined;
  const { role_key, permissions, token_expires_at, ...session } = row;
  return {
    session,
    claims: { role: role_key, permissions: [...(permissions ?? [])] },
    tokenExpiresAt: token_expires_at,
    limitTaken: statement.takesLimit,
  };
}

type RotatedRow = IssuedSession & { token_expires_at: Date; role_key: string; permissions: string[] | null };

/** The statement's per-call values, as markers that stand in for them in its compiled text. */
const SLOTS = {
  '\u0000refresh:tokenHash': 'tokenHash',
  '\u0000refresh:successorHash': 'successorHash',
  '\u0000refresh:now': 'now',
  '\u0000refresh:ttl': 'ttl',
} as const;
type Marker = keyof typeof SLOTS;
type Slot = (typeof SLOTS)[Marker];
const marker = (slot: Slot) => Object.keys(SLOTS).find((key) => SLOTS[key as Marker] === slot) as Marker;
const isSlot = (value: unknown): value is Marker => typeof value === 'string' && value in SLOTS;

interface RotateStatement {
  sql: string;
  parameters: readonly unknown[];
  takesLimit: boolean;
}

/**
 * The rotation statement, compiled once per database and limiter: building and compiling its
 * query tree on every refresh was a measurable share of the server's CPU per refresh. The
 * per-call values are markers in the compiled parameters, replaced at each execution; the
 * limiter's parameters (its scope and interval) are fixed for its lifetime.
 */
const rotateStatements = new WeakMap<object, Map<RateLimiter | undefined, RotateStatement>>();

function rotateStatement(db: Context['db'], limiter: RateLimiter | undefined): RotateStatement {
  let byLimiter = rotateStatements.get(db);
  if (!byLimiter) {
    byLimiter = new Map();
    rotateStatements.set(db, byLimiter);
  }
  let statement = byLimiter.get(limiter);
  if (!statement) {
    const compiled = rotateQuery(limiter).compile(db);
    statement = {
      sql: compiled.sql,
      parameters: compiled.parameters,
      takesLimit: limiter?.takeEach !== undefined,
    };
    byLimiter.set(limiter, statement);
  }
  return statement;
}

/**
 * The rotation as one statement (one round trip, no BEGIN/COMMIT): it rotates only when every
 * guarantee holds, and writes nothing otherwise. It returns only the session columns a token
 * needs (fewer columns for the driver to describe and parse on every refresh).
 *
 * Locks: the session row (FOR UPDATE), then the refresh-token row (the UPDATE); nothing else. In
 * particular not the organization row, which every refresh of the organization would otherwise
 * share (a MultiXact per refresh on a hot row); the successor token references only its session,
 * which this statement already holds, and an organization's deletion reaches the session row
 * through its cascade, so it waits for this statement or this statement finds the session gone.
 * The user and membership are read from the statement's snapshot
 * without locks: every deprovisioning path changes the user or membership row and then, in the
 * same transaction, updates the session row (revocation, or the membership foreign key's SET
 * NULL). So either that transaction committed before this statement locked the session, and the
 * locked row (the newest version) is revoked; or it revokes this session after this statement
 * commits, tokens included. A role changed concurrently can reach a token issued a moment after
 * the change: the revocation list compares a token's role with the newest one it knows, not times.
 */
function rotateQuery(limiter: RateLimiter | undefined) {
  const tokenHash = marker('tokenHash');
  const successorHash = marker('successorHash');
  const now = marker('now');
  const ttl = marker('ttl');
  // The rate limit of the session, taken after its row is locked (concurrent refreshes of one
  // session queue there first); over the limit, nothing rotates and refreshCarefully answers 429.
  const limit = limiter?.takeEach
    ? {
        take: sql`, l as (${limiter.takeEach(sql`select s.id as key from s`)})`,
        allowed: sql`and exists (select 1 from l)`,
      }
    : { take: sql``, allowed: sql`` };
  // Autocommit, through ctx.db rather than ctx.write: it appends no event, so there is no
  // sequencer to wake (a wake-up costs the database a query).
  return sql<RotatedRow>`
      with s as materialized (
        select s.id, s.user_id, s.organization_id, s.expires_at, s.revoked_at
        from sessions s
        where s.id = (select session_id from refresh_tokens where token_hash = ${tokenHash})
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
      )${limit.take}, t as materialized (
        update refresh_tokens t set used_at = ${now}
        from s
        where t.token_hash = ${tokenHash} and t.session_id = s.id and t.used_at is null
          and exists (select 1 from m) ${limit.allowed}
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
        returning x.id, x.user_id, x.organization_id, x.expires_at, x.token_expires_at
      )
      select updated.*, m.role_key, m.permissions from updated, m`;
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
  const wait = (await deps.limiter?.take(found.id)) ?? 0;
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
