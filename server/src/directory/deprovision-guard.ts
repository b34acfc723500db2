import { type Kysely, sql, type Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { ConnectionRow, DB, DeprovisionGuardRow } from '../db/schema.js';
import { ApiError, notFound } from '../errors.js';
import { appendEvents } from '../events/outbox.js';
import { ScimError } from '../scim/protocol/error.js';
import { toConnection } from './serialize.js';

/**
 * The deprovisioning circuit breaker of a connection. An IdP misconfiguration (a wrong assignment
 * rule, a deleted group) can deactivate a whole company in one sync; with the guard enabled, the
 * deactivation or deletion that would take the count within the window past the limit is refused
 * with 503 + Retry-After and changes nothing, and so is every later one until an admin releases
 * the guard. Okta and Entra both retry such answers, so the held requests go through after a
 * release, or never come back once the IdP is fixed.
 *
 * The decision is made inside the transaction of the change: the guard row is locked `for update`
 * (serialising the decision per connection, across server processes), the distinct users
 * deprovisioned in the window are counted in the database, and the change is recorded in
 * `deprovisions` in the same transaction, so a change that rolls back is never counted.
 */

/** How long an IdP is told to wait before retrying a held deprovision. */
export const HELD_RETRY_AFTER_SECONDS = 300;

/** The counts behind a refusal (carried by the `connection.deprovisioning_held` event). */
export interface GuardCounts {
  /** Distinct users deactivated or deleted within the window, before the refused request. */
  in_window: number;
  limit: number;
  window_seconds: number;
  /** Users of the connection the percentage applies to. */
  population: number;
}

/** Thrown inside the SCIM write transaction (rolling it back); see {@link withDeprovisionGuard}. */
export class DeprovisionRefused extends Error {
  override readonly name = 'DeprovisionRefused';
  constructor(
    readonly connectionId: string,
    readonly userId: string,
    /** Undefined when the guard was already held. */
    readonly trip: { counts: GuardCounts; guardUpdatedAt: Date } | undefined,
  ) {
    super('deprovisioning held');
  }
}

/** `3600` -> `"1h"`: the largest unit that divides the window. */
export function formatWindow(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3_600 === 0) return `${seconds / 3_600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

export function toDeprovisionGuard(row: DeprovisionGuardRow | undefined): Schemas['DeprovisionGuard'] {
  if (!row) {
    return {
      enabled: false,
      max_in_window: null,
      max_percent: null,
      window: '1h',
      suspended_until: null,
      held_at: null,
    };
  }
  return {
    enabled: row.enabled,
    max_in_window: row.max_in_window,
    max_percent: row.max_percent,
    window: formatWindow(row.window_seconds),
    suspended_until: row.suspended_until?.toISOString() ?? null,
    held_at: row.held_at?.toISOString() ?? null,
  };
}

/** A connection as the API shows it on reads, with its guard. */
export async function connectionWithGuard(
  ctx: Context,
  db: Transaction<DB> | Context['db'],
  row: ConnectionRow,
): Promise<Schemas['Connection']> {
  const guard = await db
    .selectFrom('deprovision_guards')
    .selectAll()
    .where('connection_id', '=', row.id)
    .executeTakeFirst();
  return { ...toConnection(row, ctx.settings.publicUrl), deprovision_guard: toDeprovisionGuard(guard) };
}

/** Where the count starts: the window's start, or the last release (or enabling) if later. */
function countingSince(guard: DeprovisionGuardRow, now: Date): Date {
  const windowStart = new Date(now.getTime() - guard.window_seconds * 1000);
  return guard.counting_since.getTime() > windowStart.getTime() ? guard.counting_since : windowStart;
}

/** The connection row, locked: every guard change takes it before the guard row. */
function lockConnectionRow(trx: Transaction<DB>, connectionId: string) {
  return trx
    .selectFrom('connections')
    .selectAll()
    .where('id', '=', connectionId)
    .forUpdate()
    .executeTakeFirst();
}

/** The lower of the two limits; a percentage is of the population, rounded up (never 0 for 1+ users). */
export function guardLimit(
  guard: Pick<DeprovisionGuardRow, 'max_in_window' | 'max_percent'>,
  population: number,
) {
  const limits: number[] = [];
  if (guard.max_in_window !== null) limits.push(guard.max_in_window);
  if (guard.max_percent !== null) limits.push(Math.ceil((population * guard.max_percent) / 100));
  return limits.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...limits);
}

/**
 * Decides, inside the SCIM transaction that is about to deactivate or delete `userId`, whether the
 * guard lets it through; records it when it does. Call it after the user row is locked and before
 * any write (lock order: user row, then guard row).
 * @throws DeprovisionRefused when the guard is held, or when this change would exceed the limit.
 */
export async function admitDeprovision(
  trx: Transaction<DB>,
  now: Date,
  principal: { connectionId: string; organizationId: string },
  userId: string,
  kind: 'deactivated' | 'deleted',
): Promise<void> {
  const { connectionId, organizationId } = principal;
  const guard = await trx
    .selectFrom('deprovision_guards')
    .selectAll()
    .where('connection_id', '=', connectionId)
    .forUpdate()
    .executeTakeFirst();
  if (!guard?.enabled) return;
  if (guard.suspended_until && guard.suspended_until.getTime() > now.getTime()) return;
  if (guard.held_at) throw new DeprovisionRefused(connectionId, userId, undefined);
  const since = countingSince(guard, now);
  // Distinct users: an IdP that deactivates and later deletes one user counts it once.
  const { rows } = await sql<{ in_window: number; already: boolean; population: number }>`
    select
      (select count(distinct user_id) from deprovisions
        where connection_id = ${connectionId} and created_at > ${since})::int as in_window,
      exists (select 1 from deprovisions
        where connection_id = ${connectionId} and created_at > ${since} and user_id = ${userId}) as already,
      ${
        guard.max_percent === null
          ? sql`0`
          : sql`(select count(*) from users where connection_id = ${connectionId}
                  and (deleted_at is null or deleted_at > ${since}))::int`
      } as population`.execute(trx);
  const { in_window, already, population } = rows[0]!;
  const limit = guardLimit(guard, population);
  if (!already && in_window + 1 > limit) {
    throw new DeprovisionRefused(connectionId, userId, {
      counts: { in_window, limit, window_seconds: guard.window_seconds, population },
      guardUpdatedAt: guard.updated_at,
    });
  }
  await trx
    .insertInto('deprovisions')
    .values({
      organization_id: organizationId,
      connection_id: connectionId,
      user_id: userId,
      kind,
      created_at: now,
    })
    .execute();
}

/**
 * Runs a SCIM deprovisioning transaction; when the guard refuses it (the transaction has rolled
 * back, nothing changed), trips the guard if this refusal is the one that crossed the limit, and
 * answers the IdP 503 with Retry-After.
 */
export async function withDeprovisionGuard<T>(ctx: Context, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof DeprovisionRefused)) throw error;
    if (error.trip) await holdDeprovisioning(ctx, error.connectionId, error.trip);
    throw new ScimError(
      503,
      undefined,
      'Deprovisioning is held for this connection: too many deactivations and deletions in a short time. ' +
        'Nothing was changed; an administrator must review and release it in Roster.',
      { headers: { 'Retry-After': String(HELD_RETRY_AFTER_SECONDS) } },
    );
  }
}

/**
 * Marks the connection `deprovisioning_held` with its `connection.deprovisioning_held` event,
 * once. Skipped when the guard changed since the refusal was decided (released or reconfigured
 * meanwhile: the refusal's counts no longer apply).
 */
async function holdDeprovisioning(
  ctx: Context,
  connectionId: string,
  trip: { counts: GuardCounts; guardUpdatedAt: Date },
): Promise<void> {
  await ctx.transaction(async (trx) => {
    // Lock order of every guard change: connection row, then guard row.
    const connection = await lockConnectionRow(trx, connectionId);
    if (connection?.state !== 'active') return;
    const now = ctx.now();
    const guard = await trx
      .updateTable('deprovision_guards')
      .set({ held_at: now, updated_at: now })
      .where('connection_id', '=', connectionId)
      .where('held_at', 'is', null)
      .where('updated_at', '=', trip.guardUpdatedAt)
      .returningAll()
      .executeTakeFirst();
    if (!guard) return;
    const held = await trx
      .updateTable('connections')
      .set({ state: 'deprovisioning_held', updated_at: now })
      .where('id', '=', connectionId)
      .returningAll()
      .executeTakeFirstOrThrow();
    const applied = await recentDeprovisions(trx, connectionId, guard, now);
    await appendEvents(trx, [
      {
        type: 'connection.deprovisioning_held',
        organizationId: held.organization_id,
        data: {
          ...toConnection(held, ctx.settings.publicUrl),
          deprovision_guard: toDeprovisionGuard(guard),
          counts: {
            in_window: trip.counts.in_window,
            limit: trip.counts.limit,
            window: formatWindow(trip.counts.window_seconds),
            population: trip.counts.population,
          },
          applied,
        },
      },
    ]);
  });
  ctx.log.warn({ connection_id: connectionId, counts: trip.counts }, 'deprovisioning held');
}

/** The deprovisions counted in the current window (at most 1,000, latest first): what stays applied. */
export async function recentDeprovisions(
  trx: Kysely<DB>,
  connectionId: string,
  guard: DeprovisionGuardRow,
  now: Date,
) {
  const since = countingSince(guard, now);
  const rows = await trx
    .selectFrom('deprovisions as d')
    .leftJoin('users as u', 'u.id', 'd.user_id')
    .select(['d.user_id', 'd.kind', 'd.created_at', 'u.user_name'])
    .where('d.connection_id', '=', connectionId)
    .where('d.created_at', '>', since)
    .orderBy('d.id', 'desc')
    .limit(1000)
    .execute();
  return rows.map((row) => ({
    user_id: row.user_id,
    user_name: row.user_name,
    kind: row.kind,
    at: row.created_at.toISOString(),
  }));
}

/**
 * Limits to suggest for a connection of `population` users (the portal offers them): about 5 % of
 * the directory an hour, at least 10 (a normal day's leavers) and at most 1,000, and 10 % (which
 * follows the directory as it grows; the lower limit applies). A directory not yet synced gets 50.
 */
export function suggestGuard(population: number): {
  max_in_window: number;
  max_percent: number;
  window: string;
} {
  const perHour = population > 0 ? Math.min(1000, Math.max(10, Math.ceil(population * 0.05))) : 50;
  return { max_in_window: perHour, max_percent: 10, window: '1h' };
}

const MIN_WINDOW_S = 60;
const MAX_WINDOW_S = 7 * 86_400;

export interface GuardInput {
  enabled: boolean;
  max_in_window?: number | null | undefined;
  max_percent?: number | null | undefined;
  window?: string | undefined;
}

/** Parses a window such as `"1h"`; a 400 naming `path` otherwise. */
export function parseWindow(value: string, path: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(value);
  const unit = { s: 1, m: 60, h: 3_600, d: 86_400 } as const;
  const seconds = match ? Number(match[1]) * unit[match[2] as keyof typeof unit] : Number.NaN;
  if (!(seconds >= MIN_WINDOW_S && seconds <= MAX_WINDOW_S)) {
    throw new ApiError(400, 'validation_failed', `${path}: must be a duration from 1m to 7d, e.g. "1h"`, {
      details: [{ path, code: 'invalid_window', message: 'must be a duration from 1m to 7d, e.g. "1h"' }],
    });
  }
  return seconds;
}

/**
 * Sets the guard's configuration in the caller's transaction (which holds the connection row).
 * Disabling a held guard releases it. Reconfiguring does not restart the count.
 * @returns the names of the connection attributes that changed.
 */
export async function configureGuard(
  trx: Transaction<DB>,
  now: Date,
  connection: ConnectionRow,
  input: GuardInput,
): Promise<string[]> {
  if (input.enabled && (input.max_in_window ?? null) === null && (input.max_percent ?? null) === null) {
    throw new ApiError(
      400,
      'validation_failed',
      'deprovision_guard: give max_in_window, max_percent or both when enabled',
      {
        details: [
          {
            path: 'deprovision_guard.max_in_window',
            code: 'required',
            message: 'or max_percent, when enabled',
          },
        ],
      },
    );
  }
  const windowSeconds =
    input.window === undefined ? undefined : parseWindow(input.window, 'deprovision_guard.window');
  const before = await trx
    .selectFrom('deprovision_guards')
    .selectAll()
    .where('connection_id', '=', connection.id)
    .forUpdate()
    .executeTakeFirst();
  const values = {
    enabled: input.enabled,
    max_in_window: input.max_in_window === undefined ? (before?.max_in_window ?? null) : input.max_in_window,
    max_percent: input.max_percent === undefined ? (before?.max_percent ?? null) : input.max_percent,
    window_seconds: windowSeconds ?? before?.window_seconds ?? 3_600,
    held_at: input.enabled ? (before?.held_at ?? null) : null,
    updated_at: now,
  };
  const same =
    before &&
    before.enabled === values.enabled &&
    before.max_in_window === values.max_in_window &&
    before.max_percent === values.max_percent &&
    before.window_seconds === values.window_seconds &&
    (before.held_at?.getTime() ?? null) === (values.held_at?.getTime() ?? null);
  if (same) return [];
  await trx
    .insertInto('deprovision_guards')
    .values({
      connection_id: connection.id,
      organization_id: connection.organization_id,
      counting_since: now,
      ...values,
    })
    .onConflict((oc) => oc.column('connection_id').doUpdateSet(values))
    .execute();
  const changed = ['deprovision_guard'];
  if (!values.held_at && connection.state === 'deprovisioning_held') {
    await trx
      .updateTable('connections')
      .set({ state: 'active', updated_at: now })
      .where('id', '=', connection.id)
      .execute();
    changed.push('state');
  }
  return changed;
}

/**
 * Releases the guard: the connection is `active` again and the IdP's retries go through. Without
 * `windowSeconds` the count restarts now (the next `limit` deprovisions pass, then it trips again);
 * with it, every deprovision passes for that long (a reorganisation that really removes many
 * people), and the count restarts when the window ends.
 */
export async function releaseGuard(
  ctx: Context,
  connectionId: string,
  windowSeconds: number | undefined,
): Promise<Schemas['Connection']> {
  return ctx.transaction(async (trx) => {
    const connection = await lockConnectionRow(trx, connectionId);
    if (!connection || connection.state === 'deleted') throw notFound('connection', connectionId);
    const now = ctx.now();
    const until = windowSeconds === undefined ? null : new Date(now.getTime() + windowSeconds * 1000);
    const guard = await trx
      .updateTable('deprovision_guards')
      .set({ held_at: null, suspended_until: until, counting_since: until ?? now, updated_at: now })
      .where('connection_id', '=', connectionId)
      .returningAll()
      .executeTakeFirst();
    if (!guard?.enabled) {
      throw new ApiError(409, 'conflict', 'This connection has no enabled deprovisioning guard to release.');
    }
    const row = await trx
      .updateTable('connections')
      .set({ state: 'active', updated_at: now })
      .where('id', '=', connectionId)
      .returningAll()
      .executeTakeFirstOrThrow();
    const resource = {
      ...toConnection(row, ctx.settings.publicUrl),
      deprovision_guard: toDeprovisionGuard(guard),
    };
    await appendEvents(trx, [
      {
        type: 'connection.updated',
        organizationId: row.organization_id,
        data: {
          ...resource,
          changed_attributes:
            connection.state === 'deprovisioning_held'
              ? ['state', 'deprovision_guard']
              : ['deprovision_guard'],
        },
      },
    ]);
    return resource;
  });
}
