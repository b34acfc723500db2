import { sql } from 'kysely';
import type { Context } from '../context.js';
import { DatabaseUnavailableError } from '../db/errors.js';
import { compiledOnce } from '../db/sql.js';
import { ApiError } from '../errors.js';
import { digestsEqual, hashSecret, SECRET_PREFIXES } from '../ids.js';
import type { KeyRing } from '../key-ring.js';
import { GroupCommit } from '../lib/group-commit.js';
import { cellRate } from '../rate-limit.js';
import { type Presented, parseRefreshToken, successorToken } from './refresh-token.js';
import { type RevokeReason, revokeSessionsWhere } from './revocation.js';
import {
  type IssuedSession,
  type IssuedTokens,
  lockMember,
  type SessionRow,
  signToken,
  tokenExpiry,
} from './sessions.js';
import type { SigningKeys } from './signing-keys.js';

/**
 * Refresh: exchanges a refresh token for new tokens (rotation), with reuse detection, the reuse
 * interval and the per-session rate limit. The hot path of every app (each active user refreshes
 * once per token lifetime): in the common case one UPDATE of its session row, one round trip, in a
 * statement that the refreshes arriving together in this process share ({@link rotationsOf}).
 *
 * A refresh token names its session and generation and carries a secret (./refresh-token.ts);
 * the session row keeps the current generation and the hashes of its current and previous
 * tokens. A rotation writes one row (the session's) where the token rows took four more writes
 * per refresh and a table that grew by a row per refresh.
 *
 * Tokens issued before migration 0013 are `refresh_tokens` rows (the session's generation is 0):
 * they keep working, and their rotation (by {@link refreshCarefully}, once per session) moves the
 * session to generation 1.
 */

/**
 * The legacy successor of a legacy token: what a process of the previous version rotated it to
 * (a keyed digest of the token, stored hashed). Only the reuse interval of a token that such a
 * process rotated still needs it.
 */
function legacySuccessor(keyRing: KeyRing, presented: string): string {
  return (
    SECRET_PREFIXES.refreshToken + keyRing.mac('refresh token successor', presented).toString('base64url')
  );
}

type RefreshOutcome =
  | { ok: true; issued: IssuedTokens }
  | {
      ok: false;
      code:
        | 'invalid_refresh_token'
        | 'session_revoked'
        | 'session_expired'
        | 'user_inactive'
        | 'not_a_member';
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
}

const unknownToken = () => new ApiError(401, 'invalid_refresh_token', 'Unknown refresh token.');

/**
 * Exchanges a refresh token for new tokens (rotation). A refresh token works once; presented again
 * within the reuse interval (ROSTER_REFRESH_REUSE_INTERVAL: parallel requests of one browser, or
 * replicas racing one cookie) it answers the same successor pair again; presented later, it revokes
 * its session (whoever holds the newer token, thief or user, is signed out; the other never learns
 * the new one). A forged token (its mac does not match) is unknown: 401, nothing revoked. Refusals
 * that reveal a dead session revoke it in the same transaction as its event, before answering
 * 401, so that a later reactivation of the user does not revive it.
 *
 * The common case is one statement ({@link rotateGenerations}); anything it does not rotate is
 * decided by {@link refreshCarefully}, which says why.
 */
export async function refreshSession(
  ctx: Context,
  deps: RefreshDeps,
  refreshToken: string,
): Promise<IssuedTokens> {
  const presented = parseRefreshToken(deps.keyRing, refreshToken);
  if (presented.kind === 'forged') throw unknownToken();
  if (presented.kind === 'legacy') return refreshCarefully(ctx, deps, presented, refreshToken);
  const successor = successorToken(deps.keyRing, refreshToken, presented.sessionId, presented.generation + 1);
  const { row, at } = await rotationsOf(ctx).submit(laneOf(presented.sessionId), {
    id: presented.sessionId,
    generation: presented.generation,
    tokenHash: presented.tokenHash,
    successorHash: hashSecret(successor),
  });
  if (!row) return refreshCarefully(ctx, deps, presented, refreshToken);
  const { claims: found, token_expires_at: tokenExpiresAt, commit: _commit, i: _i, ...session } = row;
  const claims = { role: found.role, permissions: [...(found.permissions ?? [])] };
  return {
    session,
    claims,
    token: signToken(deps.keys, session, claims, at, tokenExpiresAt),
    tokenExpiresAt,
    refreshToken: successor,
  };
}

/** One rotation a refresh asks for: the presented token's session, generation and hash, and its successor's hash. */
interface Rotation {
  id: string;
  generation: number;
  tokenHash: string;
  successorHash: string;
}

/** The session's row if the rotation happened (else nothing was written), and the time it took effect. */
interface Rotated {
  row: RotatedRow | undefined;
  at: Date;
}

/**
 * Concurrent refreshes of one process share rotation statements ({@link GroupCommit}): in each of
 * {@link ROTATION_LANES} lanes (by session), the rotations that arrive while the lane's statement
 * is in flight go together in its next one, up to {@link ROTATION_BATCH}. A statement and its
 * commit cost PostgreSQL and `pg` more than the rows they touch (the same-work stub, which runs
 * one bare UPDATE per refresh, spent about 0.2 ms of PostgreSQL CPU per refresh on top of the
 * UPDATE itself); a busy process now pays that once per batch. A refresh that finds its lane idle
 * runs at once, alone: nothing waits for a timer (a lone rotation costs PostgreSQL some 0.02 to
 * 0.06 ms more than the one-row statement before it did, for the arrays and the row lock). The
 * lanes keep several statements in flight (the pool has many connections), and one session is in
 * at most one statement at a time: a second presentation of its token waits for the next batch of
 * its lane, and then finds the first committed (the reuse interval, in {@link refreshCarefully}).
 *
 * The statement's failure is never one rotation's doing (it waits for no row lock and breaks no
 * constraint; what fails it is the database: no connection, a timeout): the batch and everything
 * waiting in its lane get the error at once (503), rather than each trying again alone after it.
 * Past {@link ROTATION_WAITING} waiting in a lane, a refresh is refused at once (503), as the
 * pool refuses past its queue limit.
 */
const ROTATION_LANES = 4;
const ROTATION_BATCH = 16;
const ROTATION_WAITING = 256;
const rotationBatches = new WeakMap<Context, GroupCommit<number, Rotation, Rotated>>();

function rotationsOf(ctx: Context): GroupCommit<number, Rotation, Rotated> {
  let batches = rotationBatches.get(ctx);
  if (!batches) {
    const durability = ctx.settings.refreshSynchronousCommit ? 'flushed' : 'unflushed';
    batches = new GroupCommit<number, Rotation, Rotated>({
      max: ROTATION_BATCH,
      distinct: (rotation) => rotation.id,
      failTogether: true,
      maxWaiting: ROTATION_WAITING,
      overflow: () =>
        new DatabaseUnavailableError(`${ROTATION_WAITING} refreshes already wait for a rotation statement`),
      run: async (_lane, rotations) => {
        const at = ctx.now();
        const { rows } = await rotateGenerations(
          ctx.db,
          {
            ids: rotations.map((r) => r.id),
            generations: rotations.map((r) => r.generation),
            tokenHashes: rotations.map((r) => r.tokenHash),
            successorHashes: rotations.map((r) => r.successorHash),
            now: at,
            ttl: `${ctx.settings.sessionTtlMs} milliseconds`,
            span: 1000 / ctx.settings.refreshRateLimit,
          },
          durability,
        );
        const outcomes: Rotated[] = rotations.map(() => ({ row: undefined, at }));
        // `i` is the rotation's position in the arrays, from 1: each row goes to the refresh that
        // asked for it. A row of another session there would sign that session's claims for this
        // refresh: never answered, whatever went wrong.
        for (const row of rows) {
          if (rotations[row.i - 1]?.id !== row.id)
            throw new Error('a rotated row does not match its position');
          outcomes[row.i - 1] = { row, at };
        }
        return outcomes;
      },
    });
    rotationBatches.set(ctx, batches);
  }
  return batches;
}

/** The lane of a session: its id's last character (random in a ULID). */
const laneOf = (sessionId: string) => sessionId.charCodeAt(sessionId.length - 1) % ROTATION_LANES;

type RotatedRow = IssuedSession & {
  token_expires_at: Date;
  /**
   * The membership's role and the role's permissions, read together (one lookup of each row). Never
   * null: the statement rotates only with an active membership, and the role is joined left (its
   * foreign key keeps it there; were it gone, the token would carry the role and no permissions).
   */
  claims: { role: string; permissions: string[] | null };
  /** The commit's `synchronous_commit`, when the statement set it (see {@link rotateGenerations}). */
  commit?: string;
  /** The rotation's position in the statement's arrays, from 1. */
  i: number;
};

/**
 * The rate limit of a session as SQL over the session row `x` and the database's clock `c`: the
 * generic cell rate algorithm, as the shared limiter keeps it (ROSTER_REFRESH_RATE_LIMIT per
 * second sustained, bursts up to one second's worth; a refused take changes nothing; the clock is
 * the one every process shares). Kept on the session row, it costs a refresh no write of its own,
 * and no pruning: it goes with the session.
 */
const limit = (span: unknown) => cellRate(sql`coalesce(x.refresh_tat, 0)`, sql`c.now`, span);
const CLOCK = sql`(select extract(epoch from clock_timestamp()) * 1000 as now) c`;
/**
 * The statement's inputs that it uses more than once, as the columns of `c` beside the clock: each
 * is sent and parsed once (a timestamp four times was four parameters to convert).
 */
const inputs = (p: { now: unknown; ttl: unknown; span: unknown }) => sql`(select
  extract(epoch from clock_timestamp()) * 1000 as now, ${p.now}::timestamptz as at,
  ${p.ttl}::interval as ttl, ${p.span}::float8 as span) c`;

/**
 * The rotations of a batch ({@link rotationsOf}) as one UPDATE of their session rows (one round
 * trip, no BEGIN/COMMIT): a session rotates only when every guarantee holds (the presented token is
 * the session's current one: its generation and its hash; the session lives, the user is active,
 * the session's membership is active, the rate limit allows), and is not written otherwise; each
 * row is decided on its own. It returns, for each session it rotated, the rotation's position `i`
 * in the arrays and only the columns a token needs.
 *
 * The rotations come as arrays, one per input, taken apart by `unnest … with ordinality`: one
 * statement text (one prepared statement) for every batch size. The sessions are found by their
 * ids as an `= any(array)` condition on the primary key, so the plan is that index whatever the
 * tables' sizes and the arrays' lengths.
 *
 * The user and membership are scalar subqueries of the session row, not joins: the planner cannot
 * reorder them, so the plan is the session's primary key and primary-key lookups of the user, the
 * membership, and (for the token's claims, in one subquery) the membership with its role, whatever
 * the tables' sizes (as joins, a generic plan made on small tables scanned the sessions once per
 * user, and the memberships once per session).
 * A session whose membership is gone has no membership id (the foreign key sets it null): it is
 * not rotated here, and {@link refreshCarefully} says why.
 *
 * Locks: the batch's session rows until its commit (those it did not rotate too: a stale token, a
 * refresh over the limit), nothing else. The user and membership are read from the statement's
 * snapshot without locks: every deprovisioning path changes the user or membership row and then,
 * in the same transaction, updates the session row (revocation, or the membership foreign key's
 * SET NULL). Either that transaction committed before the `skip locked` subquery locked the
 * session row, and the UPDATE re-checks its conditions on the row's newest version (revoked:
 * nothing rotates); or it still held the row, which is skipped (below); or it revokes this session
 * after this statement commits.
 *
 * A batch never waits for a row lock: a session row that another transaction holds locked (a
 * revocation in progress, a refresh of the same token on another process) is skipped (`skip
 * locked`), and its refresh goes to {@link refreshCarefully}, which waits for the lock alone and
 * then finds out what happened (revoked; or rotated: the reuse interval). Otherwise one tenant's
 * long transaction (a deprovisioning of thousands of members, an organization's deletion) would
 * hold up every refresh batched with one of its sessions, and two processes' batches could wait
 * for each other. The lock it takes is the one an UPDATE of the row takes (`no key update`: a
 * foreign key's `key share` does not conflict with it). A role changed concurrently can reach a
 * token issued a moment after the change: the revocation list compares a token's role with the
 * newest one it knows, not times.
 *
 * Durability ('unflushed', ROSTER_REFRESH_SYNCHRONOUS_COMMIT=off, the default): the statement sets
 * `synchronous_commit = off` for its own transaction (set_config local, in RETURNING: only when it
 * rotated), so its commit does not wait for the WAL flush, which was most of a refresh's time under
 * load (the backends' wait events: WALWrite and WALSync). Visibility is unchanged (a concurrent
 * refresh or revocation sees the rotation at once); a crash of PostgreSQL within about 0.6 s
 * (3 x wal_writer_delay) of a rotation may lose it, and then the client's new refresh token is
 * unknown (401: sign in again) and the one before it is the session's current token again. Every
 * write that ends access (revocation, deactivation, deletion, logout) keeps waiting for its flush,
 * and a flushed commit flushes every earlier WAL record too: no rotation lost to a crash can
 * outlive, or undo, a revocation. Set per transaction, the setting never outlives the statement
 * (nor leaks to another client of a transaction-pooling PgBouncer).
 */
const rotateGenerations = compiledOnce(
  (
    _db,
    p: {
      ids: string[];
      generations: number[];
      tokenHashes: string[];
      successorHashes: string[];
      now: Date;
      ttl: string;
      span: number;
    },
    durability,
  ) => sql<RotatedRow>`
    update sessions x
    set refresh_generation = x.refresh_generation + 1, refresh_rotated_at = c.at,
      refresh_previous_hash = x.refresh_token_hash, refresh_token_hash = t.successor_hash,
      refresh_tat = ${limit(sql`c.span`).next}, last_refreshed_at = c.at,
      token_expires_at = date_trunc('second', least(c.at + c.ttl, x.expires_at))
    from (select s.id from sessions s where s.id = any(${p.ids}::text[])
        for no key update skip locked) l,
      unnest(${p.ids}::text[], ${p.generations}::int[], ${p.tokenHashes}::text[],
        ${p.successorHashes}::text[]) with ordinality t(id, generation, token_hash, successor_hash, i),
      ${inputs(p)}
    where x.id = any(${p.ids}::text[]) and x.id = l.id and x.id = t.id
      and x.refresh_generation = t.generation and x.refresh_token_hash = t.token_hash
      and x.revoked_at is null and x.expires_at > c.at
      and (select u.active and u.deleted_at is null from users u
        where u.id = x.user_id and u.organization_id = x.organization_id)
      and (select m.status = 'active' from memberships m where m.id = x.membership_id)
      and ${limit(sql`c.span`).allowed}
    returning t.i::int as i, x.id, x.user_id, x.organization_id, x.expires_at, x.token_expires_at,
      (select jsonb_build_object('role', m.role_key, 'permissions', r.permissions)
        from memberships m left join roles r on r.key = m.role_key
        where m.id = x.membership_id) as claims${
          durability === 'unflushed' ? sql`, set_config('synchronous_commit', 'off', true) as commit` : sql``
        }`,
);

/** Takes one refresh of the session's rate limit (the session row is locked by the caller). */
const takeLimit = compiledOnce(
  (_db, p: { id: string; span: number }) => sql<{ id: string }>`
    update sessions x set refresh_tat = ${limit(p.span).next}
    from ${CLOCK}
    where x.id = ${p.id} and ${limit(p.span).allowed}
    returning x.id`,
);

/**
 * Every refresh the rotation statement did not rotate: reuse, refusals, the rate limit, a session
 * row that another transaction held when the statement ran, and why.
 */
async function refreshCarefully(
  ctx: Context,
  deps: RefreshDeps,
  presented: Exclude<Presented, { kind: 'forged' }>,
  refreshToken: string,
): Promise<IssuedTokens> {
  const found =
    presented.kind === 'generation'
      ? await ctx.db
          .selectFrom('sessions')
          .select(['id', 'user_id', 'organization_id'])
          .where('id', '=', presented.sessionId)
          .executeTakeFirst()
      : await ctx.db
          .selectFrom('refresh_tokens as t')
          .innerJoin('sessions as s', 's.id', 't.session_id')
          .select(['s.id', 's.user_id', 's.organization_id'])
          .where('t.token_hash', '=', presented.tokenHash)
          .executeTakeFirst();
  if (!found) throw unknownToken();

  const outcome = await ctx.transaction(async (trx): Promise<RefreshOutcome> => {
    const member = await lockMember(trx, found.organization_id, found.user_id);
    const session = await trx
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', found.id)
      .forUpdate()
      .executeTakeFirst();
    // After the locks, which may have waited (up to the lock timeout): a token issued now lives its
    // whole lifetime, and the reuse interval counts from the time the row says.
    const now = ctx.now();
    if (!session) return refused('session_revoked', 'The session no longer exists.');
    // The limit bounds the work a session's refreshes cost, whatever they turn out to be. Taken
    // after the session lock: the concurrent refreshes of one session queue there first.
    const span = 1000 / ctx.settings.refreshRateLimit;
    if ((await takeLimit(trx, { id: session.id, span })).rows.length === 0) {
      // A refused take waits at most one interval (1/rate), and the rate is at least 1/s.
      throw new ApiError(429, 'rate_limited', 'Too many refreshes of this session; retry after 1 s.', {
        headers: { 'Retry-After': '1' },
      });
    }
    // Read after the session lock: a concurrent refresh with the same token has committed by now.
    const presentation = await classify(trx, ctx, deps.keyRing, session, presented, refreshToken, now);
    const revoke = (reason: RevokeReason) =>
      session.revoked_at
        ? Promise.resolve()
        : revokeSessionsWhere(trx, now, { sessionId: session.id }, reason);

    // Not the session's token, though its tag is valid (made with the key ring alone): unknown,
    // and nothing revoked.
    if (presentation.kind === 'unknown') return refused('invalid_refresh_token', 'Unknown refresh token.');
    // A reuse, or a token of a rotation the database lost (a crash or failover within moments of
    // an unflushed rotation commit, ROSTER_REFRESH_SYNCHRONOUS_COMMIT=off): then the token before
    // it is the session's current one again, and whoever holds that one (a thief, perhaps) must
    // not keep the session unnoticed. Either way the session is revoked: both sides sign in again.
    if (presentation.kind === 'reused' || presentation.kind === 'lost') {
      await revoke('refresh_token_reused');
      const reused = presentation.kind === 'reused';
      ctx.log.warn(
        { session_id: session.id, user_id: session.user_id, generation: session.refresh_generation },
        reused
          ? 'refresh token reused: session revoked (possible token theft)'
          : 'refresh token of a rotation the database lost: session revoked',
      );
      return refused(
        'session_revoked',
        reused
          ? 'This refresh token was already used; the session is revoked. Sign in again.'
          : 'This refresh token is newer than the session: its rotation was lost. Sign in again.',
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

    if (presentation.kind === 'again') {
      // The same pair as the rotation answered: its refresh token, and a session token with the
      // same issue and expiry times (byte-identical with EdDSA; ES256 signatures are randomized).
      const issuedAt = presentation.rotatedAt;
      const tokenExpiresAt = tokenExpiry(issuedAt, ctx.settings.sessionTtlMs, session.expires_at);
      return {
        ok: true,
        issued: {
          session,
          claims: member.claims,
          token: signToken(deps.keys, session, member.claims, issuedAt, tokenExpiresAt),
          tokenExpiresAt,
          refreshToken: presentation.successor,
        },
      };
    }
    // The current token, yet not rotated by the statement: its row was held by another transaction
    // that has committed since without rotating or revoking, or a race the statement lost (e.g. with
    // a deprovisioning that has committed since). Rotate here, under the locks taken above.
    if (presented.kind === 'legacy') {
      await trx
        .updateTable('refresh_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', presented.tokenHash)
        .execute();
    }
    const tokenExpiresAt = tokenExpiry(now, ctx.settings.sessionTtlMs, session.expires_at);
    const generation = session.refresh_generation + 1;
    const successor = successorToken(deps.keyRing, refreshToken, session.id, generation);
    const updated = await trx
      .updateTable('sessions')
      .set({
        refresh_generation: generation,
        refresh_previous_hash: presented.kind === 'generation' ? presented.tokenHash : null,
        refresh_token_hash: hashSecret(successor),
        refresh_rotated_at: now,
        last_refreshed_at: now,
        token_expires_at: tokenExpiresAt,
        membership_id: member.membershipId,
      })
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

/**
 * What a presented token is to its locked session: the current one, the one just rotated
 * (presented again within the reuse interval: answer its successor again), a reuse, or not the
 * session's at all (its hash is not the one the session keeps for its generation).
 */
async function classify(
  trx: Parameters<Parameters<Context['transaction']>[0]>[0],
  ctx: Context,
  keyRing: KeyRing,
  session: SessionRow,
  presented: Exclude<Presented, { kind: 'forged' }>,
  refreshToken: string,
  now: Date,
): Promise<
  | { kind: 'current' }
  | { kind: 'again'; successor: string; rotatedAt: Date }
  | { kind: 'reused' }
  | { kind: 'lost' }
  | { kind: 'unknown' }
> {
  const withinInterval = (at: Date | null): at is Date =>
    at !== null && now.getTime() - at.getTime() < ctx.settings.refreshReuseIntervalMs;
  const current = session.refresh_generation;
  // Whether the session keeps `hash` in the column `stored` (compared in constant time).
  const keeps = (stored: string | null, hash: string) => stored !== null && digestsEqual(hash, stored);
  if (presented.kind === 'generation') {
    const { generation, tokenHash } = presented;
    if (current > 0 && generation === current) {
      return keeps(session.refresh_token_hash, tokenHash) ? { kind: 'current' } : { kind: 'unknown' };
    }
    if (generation === current - 1) {
      if (!keeps(session.refresh_previous_hash, tokenHash)) {
        return { kind: 'unknown' };
      }
      // The same successor as the rotation answered (derived from this token), if it is still
      // the current one.
      const successor = successorToken(keyRing, refreshToken, session.id, current);
      const stillCurrent = keeps(session.refresh_token_hash, hashSecret(successor));
      return withinInterval(session.refresh_rotated_at) && stillCurrent
        ? { kind: 'again', successor, rotatedAt: session.refresh_rotated_at }
        : { kind: 'reused' };
    }
    // An older generation with a valid tag is a reuse (the session's hashes of it are gone; only a
    // key holder could make one up, and the most it can do so is sign the user out). A later
    // generation with a valid tag was issued by a rotation that the database no longer has (an
    // unflushed commit lost to a crash): revoked too, so that the token it replaced, current
    // again, gives its holder nothing. A key holder gains nothing new by making one up either.
    return generation < current ? { kind: 'reused' } : { kind: 'lost' };
  }
  const token = await trx
    .selectFrom('refresh_tokens')
    .select('used_at')
    .where('token_hash', '=', presented.tokenHash)
    .executeTakeFirst();
  if (!token) return { kind: 'reused' };
  if (token.used_at === null) return current === 0 ? { kind: 'current' } : { kind: 'reused' };
  if (!withinInterval(token.used_at)) return { kind: 'reused' };
  // Rotated to generation 1 by this version (at the same instant as the session's rotation).
  if (current === 1 && session.refresh_rotated_at?.getTime() === token.used_at.getTime()) {
    const successor = successorToken(keyRing, refreshToken, session.id, 1);
    if (keeps(session.refresh_token_hash, hashSecret(successor))) {
      return { kind: 'again', successor, rotatedAt: token.used_at };
    }
  }
  // Rotated by a process of the previous version (a rolling upgrade): to a legacy successor.
  const successor = legacySuccessor(keyRing, refreshToken);
  const stored =
    current === 0 &&
    (await trx
      .selectFrom('refresh_tokens')
      .select('session_id')
      .where('token_hash', '=', hashSecret(successor))
      .where('session_id', '=', session.id)
      .executeTakeFirst()) !== undefined;
  return stored ? { kind: 'again', successor, rotatedAt: token.used_at } : { kind: 'reused' };
}
