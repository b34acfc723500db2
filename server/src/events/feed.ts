import { sql } from 'kysely';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { anyText } from '../db/sql.js';
import { ApiError } from '../errors.js';

/**
 * Reading the events feed. A cursor is a feed position, opaque to clients (base64url of a version
 * tag and the position). Reading `position > after and position <= head` is exact: every position
 * up to the head read at the start belongs to a committed numbering batch (see sequencer.ts), so
 * nothing can later appear below a cursor already handed out.
 */

const PREFIX = 'e1:';

export function encodeEventCursor(position: number): string {
  return Buffer.from(`${PREFIX}${position}`, 'utf8').toString('base64url');
}

const invalidCursor = (detail: string, path = 'after') =>
  new ApiError(400, 'invalid_cursor', `${path}: ${detail}`, {
    details: [{ path, code: 'invalid_cursor', message: detail }],
  });

/** @throws ApiError 400 invalid_cursor (naming `path`) when the cursor was not produced by this API. */
export function decodeEventCursor(cursor: string, path = 'after'): number {
  const decoded = /^[A-Za-z0-9_-]{1,64}$/.test(cursor)
    ? Buffer.from(cursor, 'base64url').toString('utf8')
    : '';
  const position = decoded.startsWith(PREFIX) ? Number(decoded.slice(PREFIX.length)) : Number.NaN;
  if (!Number.isSafeInteger(position) || position < 0)
    throw invalidCursor('not an events cursor returned by this API', path);
  return position;
}

/**
 * The position just before the first event numbered at or after `since` (the head when there is
 * none yet), for `GET /v1/events?since=`. Numbering times follow positions (one numbering
 * transaction at a time), so the earliest-numbered such event is also the lowest position.
 */
export async function positionBefore(ctx: Context, since: Date): Promise<number> {
  const state = await feedState(ctx);
  const first = await ctx.db
    .selectFrom('feed')
    .select('position')
    .where('created_at', '>=', since)
    .orderBy('created_at')
    .orderBy('position')
    .limit(1)
    .executeTakeFirst();
  if (!first) return state.head;
  return Math.max(state.purged_through, Number(first.position) - 1);
}

export interface FeedQuery {
  /** Position to read after; undefined starts at the oldest retained event. */
  after?: number | undefined;
  limit: number;
  types?: readonly string[] | undefined;
  organizationId?: string | undefined;
}

export interface FeedPage {
  data: Schemas['Event'][];
  next_cursor: string;
}

interface FeedState {
  head: number;
  purged_through: number;
}

async function feedState(ctx: Context): Promise<FeedState> {
  return ctx.db
    .selectFrom('event_feed')
    .select(['head', 'purged_through'])
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
}

/**
 * One page of the feed. `next_cursor` is always set: the last position returned, or the head when
 * fewer than `limit` events matched (all positions up to it were scanned), so a consumer can store
 * it even when `data` is empty.
 * @throws 410 cursor_expired when `after` predates retention; 400 invalid_cursor when it is ahead of the feed.
 */
export async function readFeed(ctx: Context, query: FeedQuery): Promise<FeedPage> {
  const state = await feedState(ctx);
  const after = query.after ?? state.purged_through;
  if (after < state.purged_through) {
    throw new ApiError(
      410,
      'cursor_expired',
      'after: the events after this cursor are past retention; resynchronise from a list snapshot',
      {
        details: [{ path: 'after', code: 'cursor_expired', message: 'past retention' }],
      },
    );
  }
  if (after > state.head) throw invalidCursor('ahead of this feed (a cursor of another Roster?)');
  let rows = ctx.db
    .selectFrom('feed as f')
    .innerJoin('events as e', 'e.seq', 'f.seq')
    .select(['f.position', 'e.id', 'e.type', 'e.organization_id', 'e.created_at', 'e.data', 'e.actor'])
    .where('f.position', '>', after)
    .where('f.position', '<=', state.head)
    .orderBy('f.position')
    .limit(query.limit);
  if (query.organizationId) rows = rows.where('f.organization_id', '=', query.organizationId);
  if (query.types?.length) rows = rows.where(sql<boolean>`f.type = ${anyText(query.types)}`);
  const events = await rows.execute();
  const full = events.length === query.limit;
  const last = events[events.length - 1];
  return {
    data: events.map((row) => ({
      object: 'event',
      id: row.id,
      type: row.type as Schemas['EventType'],
      organization_id: row.organization_id,
      created_at: row.created_at.toISOString(),
      ...(row.actor ? { actor: row.actor as Schemas['EventActor'] } : {}),
      cursor: encodeEventCursor(row.position),
      data: row.data,
    })),
    next_cursor: encodeEventCursor(full && last ? last.position : state.head),
  };
}

/**
 * Reads the feed, waiting up to `waitMs` for events when there are none yet (long-polling). Any
 * process's numbering wakes the wait (the sequencer listens for NOTIFY from the others).
 */
export async function readFeedWaiting(
  ctx: Context,
  query: FeedQuery,
  waitMs: number,
  waitForAdvance: (after: number, timeoutMs: number, signal?: AbortSignal) => Promise<number>,
  signal?: AbortSignal,
): Promise<FeedPage> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const page = await readFeed(ctx, query);
    const remaining = deadline - Date.now();
    if (page.data.length > 0 || remaining <= 0 || signal?.aborted) return page;
    // Nothing matched up to the head: wait for the head to move past it, then read again. When it
    // has not moved (time is up, the client left, or the server is shutting down), answer now.
    const head = decodeEventCursor(page.next_cursor);
    if ((await waitForAdvance(head, remaining, signal)) <= head) return page;
    query = { ...query, after: head };
  }
}
