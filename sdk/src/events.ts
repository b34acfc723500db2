import type { Client } from 'openapi-fetch';
import type { components, paths } from './contract.js';
import { errorFromResponse, RosterError } from './errors.js';
import { type CallOptions, callInit } from './request.js';
import { sleep } from './timing.js';

type Schemas = components['schemas'];
export type Event = Schemas['Event'];
export type EventType = Schemas['EventType'];
export type EventList = Schemas['EventList'];

export interface EventListParams {
  /** A `next_cursor`, an event's `cursor` or a list's `event_cursor`; omitted: oldest retained. */
  after?: string;
  /** Instead of `after`: start with the first event committed at or after this time (RFC 3339). */
  since?: string;
  limit?: number;
  types?: readonly EventType[];
  organizationId?: string;
  /** Long-poll: seconds to wait for an event before answering an empty page (0–30). */
  wait?: number;
  signal?: AbortSignal;
}

export interface EventIterateParams extends Omit<EventListParams, 'wait' | 'since'> {
  /** Seconds each long-poll waits (default 20). */
  waitSeconds?: number;
}

/** Errors a follower cannot outlast by retrying: the caller must act (resync, fix the key). */
const FATAL = new Set(['cursor_expired', 'invalid_cursor', 'unauthorized', 'validation_failed']);

/** `roster.events`: the ordered feed of changes. */
export interface EventsResource {
  /** One page of events after `after` (long-polls `wait` seconds when there are none yet). */
  list(params?: EventListParams, options?: CallOptions): Promise<EventList>;
  /**
   * Follows the feed forever (until `signal` aborts): every event after `after`, in commit order,
   * exactly once, long-polling between batches.
   */
  iterate(params?: EventIterateParams): AsyncGenerator<Event, void, undefined>;
}

export function eventsResource(client: Client<paths>): EventsResource {
  const list = async (params: EventListParams = {}, options?: CallOptions): Promise<EventList> => {
    const { data, error, response } = await client.GET('/v1/events', {
      params: {
        query: {
          after: params.after,
          since: params.since,
          limit: params.limit,
          types: params.types?.join(','),
          organization_id: params.organizationId,
          wait: params.wait,
        },
      },
      // The params' signal (kept for compatibility) or the options' one, with its timeout.
      signal: callInit({ ...options, signal: options?.signal ?? params.signal }).signal,
    });
    if (!response.ok) throw errorFromResponse(response, error);
    return data as EventList;
  };

  /**
   * Follows the feed forever (until `signal` aborts): every event after `after`, in commit order,
   * exactly once, long-polling between batches. Transient failures are retried with backoff; a
   * cursor past retention (`cursor_expired`) or a rejected key is thrown.
   *
   * @example
   * ```ts
   * const controller = new AbortController();
   * for await (const event of roster.events.iterate({ after: savedCursor, signal: controller.signal })) {
   *   await apply(event); // idempotent: an event may be seen again after a crash
   *   await saveCursor(event.cursor);
   * }
   * ```
   */
  async function* iterate(params: EventIterateParams = {}): AsyncGenerator<Event, void, undefined> {
    let cursor = params.after;
    let failures = 0;
    while (!params.signal?.aborted) {
      let page: EventList;
      try {
        page = await list({ ...params, after: cursor, wait: params.waitSeconds ?? 20 });
        failures = 0;
      } catch (error) {
        if (params.signal?.aborted) return;
        if (error instanceof RosterError && FATAL.has(error.code)) throw error;
        failures++;
        // An abort ends the wait early; the loop then stops.
        await sleep(Math.min(30_000, 250 * 2 ** failures), params.signal).catch(() => undefined);
        continue;
      }
      for (const event of page.data) yield event;
      cursor = page.next_cursor;
    }
  }

  return { list, iterate };
}

export interface EventConsumerOptions {
  /** The client's `events` (from createRoster). */
  events: EventsResource;
  /**
   * Applies one batch, in order. Make it idempotent: after a crash the unfinished batch is
   * delivered again (events carry the resource after the change, so re-applying is harmless).
   */
  handler: (events: Event[]) => Promise<void>;
  /** The last saved cursor; undefined starts from the oldest retained event (or a snapshot's event_cursor). */
  loadCursor: () => Promise<string | undefined>;
  /** Persists the cursor after each handled batch (e.g. in the same database transaction as the batch). */
  saveCursor: (cursor: string) => Promise<void>;
  types?: readonly EventType[];
  organizationId?: string;
  /** Events per batch (default 100). */
  batchSize?: number;
  /** Long-poll seconds (default 20). */
  waitSeconds?: number;
  signal?: AbortSignal;
}

/**
 * Mirrors the feed into your own store: load the cursor, fetch a batch, handle it, save the cursor,
 * repeat. A crash replays at most the batch being handled. Resolves when `signal` aborts; rejects on
 * an error retrying cannot fix (e.g. `cursor_expired`: resynchronise from a list snapshot).
 *
 * @example
 * ```ts
 * const consumer = createEventConsumer({
 *   events: roster.events,
 *   loadCursor: () => db.getCursor(),
 *   saveCursor: (cursor) => db.setCursor(cursor),
 *   handler: async (events) => { for (const event of events) await db.apply(event); },
 * });
 * await consumer.run();
 * ```
 */
export function createEventConsumer(options: EventConsumerOptions) {
  const controller = new AbortController();
  options.signal?.addEventListener('abort', () => controller.abort(), { once: true });
  const signal = controller.signal;
  return {
    async run(): Promise<void> {
      let cursor = await options.loadCursor();
      let failures = 0;
      while (!signal.aborted) {
        let page: EventList;
        try {
          page = await options.events.list({
            after: cursor,
            limit: options.batchSize ?? 100,
            types: options.types,
            organizationId: options.organizationId,
            wait: options.waitSeconds ?? 20,
            signal,
          });
          failures = 0;
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof RosterError && FATAL.has(error.code)) throw error;
          failures++;
          await sleep(Math.min(30_000, 250 * 2 ** failures), signal).catch(() => undefined);
          continue;
        }
        if (page.data.length > 0) await options.handler(page.data);
        if (page.next_cursor !== cursor) {
          await options.saveCursor(page.next_cursor);
          cursor = page.next_cursor;
        }
      }
    },
    /** Stops after the batch in hand (if any) is handled and saved. */
    stop(): void {
      controller.abort();
    },
  };
}
