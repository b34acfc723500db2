/**
 * `npm run bench:scim`: provisions users Okta-style (lookup then POST, 16 concurrent), looks them up,
 * PATCHes them, fills 20 groups Entra-style in 50-member PATCHes, lists every page, deactivates
 * everyone. Each phase runs against Roster (built, in its own process, on PostgreSQL when
 * DATABASE_URL is set) and, in the same run, against a bare node:http stub answering the same
 * requests with canned bodies; the table reports both and the ratio.
 *
 *   DATABASE_URL=postgres://… npm run bench:scim -- --users=10000 --concurrency=16
 *
 * With `--round-trips`: statements and round trips per operation from pg_stat_statements, and CPU
 * per operation, on a private cluster (see scim-round-trips.ts).
 */
import { randomBytes } from 'node:crypto';
import {
  arg,
  Client,
  freshDatabase,
  type PhaseResult,
  phase,
  printTable,
  setUpRoster,
  startRoster,
  startStub,
  type Target,
} from './lib.js';
import { roundTrips } from './scim-round-trips.js';

const USERS = arg('users', 10_000);
const CONCURRENCY = arg('concurrency', 16);
const GROUPS = 20;
const BATCH = 50;
const PHASES = (
  process.argv.find((a) => a.startsWith('--phases='))?.split('=')[1] ??
  'create,lookup,patch,group,list,deactivate'
).split(',');

const userBody = (userName: string, i: number) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName,
  name: { givenName: `Bench${i}`, familyName: 'User' },
  emails: [{ primary: true, value: userName, type: 'work' }],
  displayName: `Bench ${i}`,
  externalId: `ext-${i}`,
  active: true,
});

async function workload(target: Target): Promise<Record<string, PhaseResult>> {
  const client = new Client(target.url, CONCURRENCY);
  const headers = { authorization: `Bearer ${target.token}`, accept: 'application/scim+json' };
  const ids: string[] = new Array(USERS);
  const name = (i: number) => `bench.user.${i}@example.com`;
  const lookupPath = (i: number) =>
    `${target.base}/Users?filter=${encodeURIComponent(`userName eq "${name(i)}"`)}&startIndex=1&count=100`;
  const results: Record<string, PhaseResult> = {};

  results.create = await phase('create', USERS, CONCURRENCY, async (i) => {
    const lookup = await client.request('GET', lookupPath(i), headers);
    if (lookup.status !== 200) return false;
    const created = await client.request('POST', `${target.base}/Users`, headers, userBody(name(i), i));
    ids[i] = JSON.parse(created.body).id;
    return created.status === 201;
  });

  if (!PHASES.includes('lookup')) return results;
  results.lookup = await phase('lookup', USERS * 2, CONCURRENCY, async (i) => {
    const reply = await client.request('GET', lookupPath((i * 7919) % USERS), headers);
    return reply.status === 200;
  });

  if (!PHASES.includes('patch')) return results;
  results.patch = await phase('patch', USERS, CONCURRENCY, async (i) => {
    const reply = await client.request('PATCH', `${target.base}/Users/${ids[i]}`, headers, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'Replace', path: 'displayName', value: `Bench ${i} renamed` }],
    });
    return reply.status === 200;
  });

  if (!PHASES.includes('group')) return results;
  const groupIds: string[] = [];
  for (let g = 0; g < GROUPS; g++) {
    const reply = await client.request('POST', `${target.base}/Groups`, headers, {
      displayName: `Bench group ${g}`,
    });
    groupIds.push(JSON.parse(reply.body).id);
  }
  const batches = Math.floor(USERS / BATCH);
  results.groupPatch = await phase('group patch', GROUPS * batches, CONCURRENCY, async (i) => {
    const group = groupIds[i % GROUPS];
    const batch = Math.floor(i / GROUPS);
    const members = ids.slice(batch * BATCH, batch * BATCH + BATCH).map((value) => ({ $ref: null, value }));
    const reply = await client.request('PATCH', `${target.base}/Groups/${group}`, headers, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'Add', path: 'members', value: members }],
    });
    return reply.status === 204;
  });

  if (!PHASES.includes('list')) return results;
  // Imports as IdPs run them: each of the concurrent importers walks every page in order.
  const pages = Math.ceil(USERS / 100);
  const walkers = Array.from({ length: CONCURRENCY }, () => 0);
  results.list = await phase('list page', pages * CONCURRENCY, CONCURRENCY, async (i) => {
    const walker = i % CONCURRENCY;
    const page = walkers[walker]!++ % pages;
    const reply = await client.request(
      'GET',
      `${target.base}/Users?startIndex=${page * 100 + 1}&count=100`,
      headers,
    );
    return reply.status === 200;
  });

  if (!PHASES.includes('deactivate')) return results;
  results.deactivate = await phase('deactivate', USERS, CONCURRENCY, async (i) => {
    const reply = await client.request('PATCH', `${target.base}/Users/${ids[i]}`, headers, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
    });
    return reply.status === 200;
  });
  client.close();
  return results;
}

/** With BENCH_STATEMENTS=1 (and pg_stat_statements loaded): where PostgreSQL spent its time. */
async function printStatements(url: string): Promise<void> {
  const pg = (await import('pg')).default;
  const client = new pg.Client(url);
  await client.connect();
  try {
    const { rows } = await client.query(`
      select calls, round((total_exec_time + total_plan_time)::numeric, 0) as ms,
             round(((total_exec_time + total_plan_time) / greatest(calls, 1))::numeric, 3) as ms_per_call,
             left(regexp_replace(query, '\\s+', ' ', 'g'), 100) as query
      from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
      order by total_exec_time + total_plan_time desc limit 15`);
    console.table(rows);
  } catch (error) {
    console.log(`(no pg_stat_statements: ${(error as Error).message})`);
  } finally {
    await client.end();
  }
}

async function main() {
  if (process.argv.includes('--round-trips')) return roundTrips();
  const adminUrl = process.env.DATABASE_URL;
  const database = adminUrl ? await freshDatabase(adminUrl) : undefined;
  const secretKey = `rst_sk_bench_${randomBytes(24).toString('hex')}`;
  const env: Record<string, string> = { ROSTER_SECRET_KEY: secretKey, ROSTER_SCIM_RATE_LIMIT: '1000000' };
  if (database) env.DATABASE_URL = database.url;
  else env.ROSTER_DATA_DIR = `/tmp/roster-bench-${randomBytes(4).toString('hex')}`;
  console.log(
    `SCIM benchmark: ${USERS} users, ${CONCURRENCY} concurrent, ${GROUPS} groups in ${BATCH}-member PATCHes, on ${database ? 'PostgreSQL' : 'embedded PGlite (set DATABASE_URL for PostgreSQL)'}; node ${process.version}`,
  );

  const stub = await startStub();
  const stubResults = await workload({ url: stub.url, base: '/scim/v2/stub', token: 'stub' });
  await stub.stop();

  const roster = await startRoster(env);
  let rosterResults: Record<string, PhaseResult>;
  try {
    rosterResults = await workload(await setUpRoster(roster.url, secretKey, 'okta'));
    if (process.env.BENCH_STATEMENTS && database) await printStatements(database.url);
  } finally {
    await roster.stop();
    await database?.drop();
  }

  const rows = [
    { key: 'create', name: 'create', aim: '>= 900/s' },
    { key: 'lookup', name: 'lookup', aim: '>= 2900/s, p99 < 10' },
    { key: 'patch', name: 'patch', aim: '>= 2100/s' },
    { key: 'groupPatch', name: 'group patch', aim: '>= 1800/s' },
    { key: 'list', name: 'list page', aim: '>= 480/s' },
    { key: 'deactivate', name: 'deactivate', aim: '' },
  ].filter((row) => rosterResults[row.key]);
  printTable(
    'Roster vs a bare node:http stub (same client, same requests)',
    rows.map((row) => ({
      name: row.name,
      roster: rosterResults[row.key]!,
      stub: stubResults[row.key],
      aim: row.aim,
    })),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
