/**
 * `npm run bench:events`: the events feed on PostgreSQL (DATABASE_URL), through the SDK.
 *
 * Starts the built server in its own process, then measures:
 * 1. End-to-end latency: writers create users over SCIM (Okta's POST /Users) while a follower
 *    long-polls the feed with `roster.events.iterate`; for every `user.created` event, the time from
 *    the writer receiving its 201 (the change has committed by then) to the follower holding the
 *    event. Once with one sequential writer (an idle system) and once with 16 concurrent writers.
 *    Also reported: the same measured from the moment the writer sent its request (an upper bound
 *    that includes the write itself).
 * 2. Read throughput: the feed is topped up to `--events` events (copies of the real events just
 *    written, inserted through the outbox queue so the sequencer numbers them as it would any
 *    commit), then read from the start with the SDK's async iterator: events per second.
 *
 * Writers and follower share this process; their timestamps come from one clock.
 *
 *   DATABASE_URL=postgres://… npm run bench:events -- --writes=4000 --events=200000 --concurrency=16
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createRoster, type Event } from '@roster/sdk';
import pg from 'pg';
import { arg, Client, freshDatabase, startRoster } from '../../server/bench/lib.js';

const WRITES = arg('writes', 4_000);
const IDLE_WRITES = arg('idle-writes', 300);
const CONCURRENCY = arg('concurrency', 16);
const EVENTS = arg('events', 200_000);
const PAGE = arg('limit', 1_000);

function stats(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
  return { n: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: sorted[sorted.length - 1] ?? NaN };
}

const fmt = (s: ReturnType<typeof stats>) =>
  `n ${s.n}  p50 ${s.p50.toFixed(1)} ms  p95 ${s.p95.toFixed(1)} ms  p99 ${s.p99.toFixed(1)} ms  max ${s.max.toFixed(1)} ms`;

type Roster = ReturnType<typeof createRoster>;

/** Current feed head, as a cursor: every list answers it. */
async function headCursor(roster: Roster): Promise<string> {
  const page = await roster.organizations.list({ limit: 1 });
  if (!page.event_cursor) throw new Error('lists must answer event_cursor');
  return page.event_cursor;
}

async function latencyPhase(
  label: string,
  roster: Roster,
  scim: { client: Client; base: string; token: string },
  writes: number,
  concurrency: number,
) {
  const sent = new Map<string, number>();
  const committed = new Map<string, number>();
  const seen = new Map<string, number>();
  const controller = new AbortController();
  const after = await headCursor(roster);
  let pending = writes;
  let allSeen: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allSeen = resolve;
  });

  const follower = (async () => {
    for await (const event of roster.events.iterate({
      after,
      types: ['user.created'],
      limit: PAGE,
      waitSeconds: 20,
      signal: controller.signal,
    })) {
      const id = (event.data as { id: string }).id;
      seen.set(id, performance.now());
      if (committed.has(id) && --pending === 0) allSeen();
    }
  })();

  const headers = {
    authorization: `Bearer ${scim.token}`,
    accept: 'application/scim+json',
  };
  const run = randomBytes(3).toString('hex');
  let next = 0;
  const errors = new Map<number, number>();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= writes) return;
        const userName = `${label}-${run}-${i}@bench.test`;
        const t0 = performance.now();
        const reply = await scim.client.request('POST', `${scim.base}/Users`, headers, {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName,
          name: { givenName: `Bench${i}`, familyName: 'User' },
          emails: [{ primary: true, value: userName, type: 'work' }],
          active: true,
        });
        const t1 = performance.now();
        if (reply.status !== 201) {
          errors.set(reply.status, (errors.get(reply.status) ?? 0) + 1);
          if (--pending === 0) allSeen();
          continue;
        }
        const id = (JSON.parse(reply.body) as { id: string }).id;
        sent.set(id, t0);
        committed.set(id, t1);
        // The follower may already hold the event: it can arrive before the writer's 201.
        if (seen.has(id) && --pending === 0) allSeen();
      }
    }),
  );
  const writeSeconds = (performance.now() - started) / 1000;
  const timeout = setTimeout(allSeen, 30_000);
  await done;
  clearTimeout(timeout);
  controller.abort();
  await follower;

  const fromCommit: number[] = [];
  const fromSend: number[] = [];
  let missing = 0;
  for (const [id, t1] of committed) {
    const t = seen.get(id);
    if (t === undefined) {
      missing++;
      continue;
    }
    // Seen before the 201 reached the writer: the latency is below what this clock can tell.
    fromCommit.push(Math.max(0, t - t1));
    fromSend.push(t - sent.get(id)!);
  }
  console.log(
    `\n${label}: ${writes} SCIM creates by ${concurrency} writer(s) in ${writeSeconds.toFixed(1)} s (${(writes / writeSeconds).toFixed(0)}/s), ${errors.size ? `failures by status ${JSON.stringify(Object.fromEntries(errors))}` : 'no failures'}, ${missing} events never seen`,
  );
  console.log(`  writer's 201 → follower has the event   ${fmt(stats(fromCommit))}   (aim: p99 < 200 ms)`);
  console.log(`  writer sends → follower has the event   ${fmt(stats(fromSend))}`);
  if (missing > 0 || errors.size > 0) process.exitCode = 1;
}

/** Tops the feed up to `total` events with copies of real ones, through the outbox queue. */
async function topUp(databaseUrl: string, total: number): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const head = async () => Number((await client.query('select head from event_feed')).rows[0].head);
    let current = await head();
    while (current < total) {
      const batch = Math.min(20_000, total - current);
      await client.query('begin');
      await client.query(
        `with source as (
           select type, organization_id, data from events
           order by seq limit $1
         ), inserted as (
           insert into events (id, type, organization_id, data)
           select 'evt_' || replace(gen_random_uuid()::text, '-', ''), type, organization_id, data
           from source, generate_series(1, ceil($1::numeric / greatest(1, (select count(*) from source)))::int)
           limit $1
           returning seq
         )
         insert into event_queue (seq) select seq from inserted`,
        [batch],
      );
      await client.query('commit');
      // The sequencer's poll (1 s) numbers what a process committed without kicking it.
      const target = current + batch;
      current = await head();
      while (current < target) {
        await new Promise((r) => setTimeout(r, 100));
        current = await head();
      }
    }
    return current;
  } finally {
    await client.end();
  }
}

async function readPhase(roster: Roster, total: number) {
  const controller = new AbortController();
  let count = 0;
  let last: Event | undefined;
  const started = performance.now();
  for await (const event of roster.events.iterate({
    limit: PAGE,
    waitSeconds: 1,
    signal: controller.signal,
  })) {
    last = event;
    if (++count >= total) break;
  }
  const seconds = (performance.now() - started) / 1000;
  controller.abort();
  console.log(`\nread throughput: roster.events.iterate({ limit: ${PAGE} }) from the oldest event`);
  console.log(
    `  ${count} events in ${seconds.toFixed(2)} s = ${(count / seconds).toFixed(0)} events/s   (aim: > 20,000/s; last: ${last?.type})`,
  );
}

async function main() {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) throw new Error('bench:events measures PostgreSQL: set DATABASE_URL');
  const database = await freshDatabase(adminUrl);
  const secretKey = `rst_sk_bench_${randomBytes(24).toString('hex')}`;
  try {
    // The per-connection SCIM rate limit (600/s by default) would cap the writers, not the feed.
    const server = await startRoster({
      DATABASE_URL: database.url,
      ROSTER_SECRET_KEY: secretKey,
      ROSTER_SCIM_RATE_LIMIT: '1000000',
    });
    const client = new Client(server.url, CONCURRENCY);
    try {
      const roster = createRoster({ baseUrl: server.url, secretKey });
      const org = await roster.organizations.create({ name: 'Bench' });
      const connection = await roster.connections.create({
        organizationId: org.id,
        name: 'Bench Okta',
        provider: 'okta',
      });
      const scim = { client, base: new URL(connection.scim.base_url).pathname, token: connection.scim.token };
      await latencyPhase('idle', roster, scim, IDLE_WRITES, 1);
      await latencyPhase('loaded', roster, scim, WRITES, CONCURRENCY);
      const total = await topUp(database.url, EVENTS);
      await readPhase(roster, total);
    } finally {
      client.close();
      await server.stop();
    }
  } finally {
    await database.drop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
