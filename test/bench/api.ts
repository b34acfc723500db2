/**
 * `npm run bench:api`: the management API at scale, on PostgreSQL (DATABASE_URL).
 *
 * Seeds one organization with 100,000 members directly in SQL (the SCIM benchmark measures
 * provisioning), starts the built server in its own process, then measures:
 * - `listMembers` pages of 100 at random cursors: p50/p95/p99 server-side (Server-Timing) and as
 *   the client sees them;
 * - a full iteration of every member through the SDK's async iterator: members per second.
 *
 *   DATABASE_URL=postgres://… npm run bench:api -- --members=100000 --samples=2000
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createRoster } from '@roster/sdk';
import { sql } from 'kysely';
import { arg, freshDatabase, startRoster } from '../../server/bench/lib.js';
import { openDatabase } from '../../server/src/db/database.js';
import { migrateToLatest } from '../../server/src/db/migrate.js';
import { newId } from '../../server/src/ids.js';

const MEMBERS = arg('members', 100_000);
const SAMPLES = arg('samples', 2_000);

function percentiles(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  return { p50: at(50), p95: at(95), p99: at(99) };
}

async function main() {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) throw new Error('bench:api measures PostgreSQL: set DATABASE_URL');
  const database = await freshDatabase(adminUrl);
  const secretKey = `rst_sk_bench_${randomBytes(24).toString('hex')}`;
  try {
    const seeded = await openDatabase({ url: database.url });
    await migrateToLatest(seeded.db);
    const t0 = performance.now();
    const organizationId = newId('organization');
    await sql`insert into organizations (id, name, slug) values (${organizationId}, 'Bench', 'bench')`.execute(
      seeded.db,
    );
    await sql`
      insert into users (id, organization_id, connection_id, user_name, email, display_name, attributes)
      select 'user_' || lpad(i::text, 26, '0'), ${organizationId}, null,
             'member' || i || '@bench.test', 'member' || i || '@bench.test', 'Member ' || i,
             jsonb_build_object('userName', 'member' || i || '@bench.test', 'displayName', 'Member ' || i)
      from generate_series(1, ${MEMBERS}) i`.execute(seeded.db);
    await sql`
      insert into memberships (id, organization_id, user_id, role_key, source)
      select 'mem_' || lpad(i::text, 26, '0'), ${organizationId}, 'user_' || lpad(i::text, 26, '0'),
             case when i % 10 = 0 then 'admin' else 'member' end, 'api'
      from generate_series(1, ${MEMBERS}) i`.execute(seeded.db);
    await sql`analyze`.execute(seeded.db);
    await seeded.close();
    console.log(`seeded ${MEMBERS} members in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const server = await startRoster({ DATABASE_URL: database.url, ROSTER_SECRET_KEY: secretKey });
    try {
      const roster = createRoster({ baseUrl: server.url, secretKey });

      // Full iteration through the SDK (also collects cursors for the sampling below).
      const cursors: string[] = [];
      let count = 0;
      const started = performance.now();
      let page = await roster.organizations.listMembers({ organizationId, limit: 100 });
      for (;;) {
        count += page.data.length;
        if (!page.next_cursor) break;
        cursors.push(page.next_cursor);
        page = await roster.organizations.listMembers({
          organizationId,
          limit: 100,
          after: page.next_cursor,
        });
      }
      const iterationSeconds = (performance.now() - started) / 1000;
      let iterated = 0;
      const iterStart = performance.now();
      for await (const _member of roster.organizations.listMembers({ organizationId, limit: 100 }))
        iterated++;
      const iteratorSeconds = (performance.now() - iterStart) / 1000;

      // Random pages, one at a time: server-side time from Server-Timing, and the client's.
      const serverMs: number[] = [];
      const clientMs: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const after = cursors[Math.floor(Math.random() * cursors.length)]!;
        const t = performance.now();
        const response = await fetch(
          `${server.url}/v1/organizations/${organizationId}/memberships?limit=100&after=${after}`,
          {
            headers: { authorization: `Bearer ${secretKey}` },
          },
        );
        await response.arrayBuffer();
        clientMs.push(performance.now() - t);
        serverMs.push(Number(/dur=([\d.]+)/.exec(response.headers.get('server-timing') ?? '')?.[1]));
      }
      const s = percentiles(serverMs);
      const c = percentiles(clientMs);
      console.log(`\nlistMembers, page of 100 of ${count} members (${SAMPLES} random pages, sequential):`);
      console.log(
        `  server-side  p50 ${s.p50.toFixed(2)} ms  p95 ${s.p95.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms   (aim: p99 < 15 ms)`,
      );
      console.log(
        `  client-side  p50 ${c.p50.toFixed(2)} ms  p95 ${c.p95.toFixed(2)} ms  p99 ${c.p99.toFixed(2)} ms`,
      );
      console.log(`\nfull iteration through the SDK (limit 100):`);
      console.log(
        `  pages by hand  ${count} members in ${iterationSeconds.toFixed(2)} s = ${(count / iterationSeconds).toFixed(0)} members/s`,
      );
      console.log(
        `  for await      ${iterated} members in ${iteratorSeconds.toFixed(2)} s = ${(iterated / iteratorSeconds).toFixed(0)} members/s   (aim: > 20,000/s)`,
      );
    } finally {
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
