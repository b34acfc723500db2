import { describe, expect, it } from 'vitest';
import { createEventConsumer, createRoster, type Event, RosterError } from '../src/index.js';

const event = (n: number): Event => ({
  object: 'event',
  id: `evt_${n}`,
  type: 'user.created',
  organization_id: 'org_1',
  created_at: '2026-11-28T00:00:00.000Z',
  cursor: `c${n}`,
  data: {},
});

/** A fake feed: pages keyed by `after`; later reads of the tail see what `append` added. */
function feed() {
  const events: Event[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(new Request(input, init).url);
    const after = url.searchParams.get('after');
    const start = after ? Number(after.slice(1)) : 0;
    const limit = Number(url.searchParams.get('limit') ?? 100);
    const data = events.slice(start, start + limit);
    const next = `c${start + data.length}`;
    return new Response(JSON.stringify({ data, next_cursor: next }), {
      headers: { 'content-type': 'application/json' },
    });
  };
  return {
    events,
    roster: createRoster({ baseUrl: 'https://roster.test', secretKey: 'k', fetch, retries: 0 }),
  };
}

describe('events', () => {
  it('iterate follows the feed across pages and waits for more, until aborted', async () => {
    const { events, roster } = feed();
    for (let i = 1; i <= 5; i++) events.push(event(i));
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const e of roster.events.iterate({ limit: 2, waitSeconds: 0, signal: controller.signal })) {
      seen.push(e.id);
      if (seen.length === 5) events.push(event(6));
      if (seen.length === 6) controller.abort();
    }
    expect(seen).toEqual(['evt_1', 'evt_2', 'evt_3', 'evt_4', 'evt_5', 'evt_6']);
  });

  it('iterate retries transient failures and throws cursor_expired', async () => {
    let calls = 0;
    const flaky = createRoster({
      baseUrl: 'https://roster.test',
      secretKey: 'k',
      retries: 0,
      fetch: async () => {
        calls++;
        if (calls === 1) return new Response('{}', { status: 503 });
        return new Response(
          JSON.stringify({ error: { code: 'cursor_expired', message: 'gone', request_id: 'r' } }),
          { status: 410 },
        );
      },
    });
    const error = await (async () => {
      for await (const _ of flaky.events.iterate({ after: 'c0', waitSeconds: 0 })) void _;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RosterError);
    expect(error).toMatchObject({ code: 'cursor_expired', status: 410 });
    expect(calls).toBe(2);
  });

  it('the consumer handles batches in order and saves the cursor after each', async () => {
    const { events, roster } = feed();
    for (let i = 1; i <= 7; i++) events.push(event(i));
    const log: string[] = [];
    let saved: string | undefined = 'c2';
    const consumer = createEventConsumer({
      events: roster.events,
      batchSize: 3,
      waitSeconds: 0,
      loadCursor: async () => saved,
      saveCursor: async (cursor) => {
        saved = cursor;
        log.push(`save ${cursor}`);
        if (cursor === 'c7') consumer.stop();
      },
      handler: async (batch) => {
        log.push(`handle ${batch.map((e) => e.id).join(',')}`);
      },
    });
    await consumer.run();
    expect(log).toEqual(['handle evt_3,evt_4,evt_5', 'save c5', 'handle evt_6,evt_7', 'save c7']);
  });

  it('a failing handler stops the consumer before the cursor moves (the batch is replayed next run)', async () => {
    const { events, roster } = feed();
    events.push(event(1), event(2));
    let saved: string | undefined;
    const failing = createEventConsumer({
      events: roster.events,
      waitSeconds: 0,
      loadCursor: async () => saved,
      saveCursor: async (cursor) => {
        saved = cursor;
      },
      handler: async () => {
        throw new Error('database down');
      },
    });
    await expect(failing.run()).rejects.toThrow('database down');
    expect(saved).toBeUndefined();
  });
});
