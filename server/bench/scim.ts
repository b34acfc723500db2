/**
 * `npm run bench:scim`: provisions users Okta-style (lookup then POST, 16 concurrent), looks them up,
 * PATCHes them, fills 20 groups Entra-style in 50-member PATCHes, lists every page, deactivates
 * everyone, deletes everyone. The same client sends the same requests to four servers, one after
 * the other, each in its own process:
 *
 * - stub: a bare node:http server answering canned bodies (stub.mjs): the HTTP floor;
 * - pg stub: node:http doing one statement of database work per request through `pg` with Roster's
 *   pool size (stub-pg.mjs): the floor for a server that commits each change;
 * - jackson: the directory sync of @boxyhq/saml-jackson, installed on demand outside the workspaces
 *   (jackson.ts, jackson-server.mjs), on PostgreSQL only; `--peer=none` skips it;
 * - Roster, built, on PostgreSQL when DATABASE_URL is set (each server gets a database of its own on
 *   it), else on the embedded PGlite.
 *
 * Per phase it prints ops/s, latency percentiles, errors, the ratios of Roster to each of the
 * others, and the CPU per operation of the server process and of the PostgreSQL backends serving
 * that server's database (from /proc; pg_stat_activity names the backends). After each phase it
 * checks that the work was done (counts, attributes, 404s after delete) and says where a server
 * answered differently. With `--pglite` (and DATABASE_URL) Roster and the pg stub also run on PGlite,
 * with the ratio to their PostgreSQL runs; on PGlite the statements per operation are counted
 * (pglite-statements.mjs).
 *
 *   DATABASE_URL=postgres://… npm run bench:scim -- --users=10000 --concurrency=16
 *
 * With `--round-trips`: statements and round trips per operation from pg_stat_statements, and CPU
 * per operation, on a private cluster (see scim-round-trips.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { installJackson, JACKSON_VERSION, setUpJackson, startJackson } from './jackson.js';
import {
  arg,
  type ChildServer,
  Client,
  CpuMeter,
  freshDatabase,
  type PhaseResult,
  phase,
  type Reply,
  setUpRoster,
  startPgStub,
  startRoster,
  startStub,
  stringArg,
  type Target,
} from './lib.js';
import { roundTrips } from './scim-round-trips.js';

const USERS = arg('users', 10_000);
const CONCURRENCY = arg('concurrency', 16);
const GROUPS = 20;
const BATCH = 50;
const PHASES = stringArg('phases', 'create,lookup,patch,group,list,deactivate,delete').split(',');
const PEER = stringArg('peer', 'jackson');
const PEER_SECONDS = arg('peer-seconds', 60);

const PHASE_ROWS = [
  { key: 'create', name: 'create (GET filter + POST)' },
  { key: 'lookup', name: 'lookup (GET filter)' },
  { key: 'patch', name: 'patch (one attribute)' },
  { key: 'groupPatch', name: 'group PATCH, 50 members' },
  { key: 'list', name: 'list, pages of 100' },
  { key: 'deactivate', name: 'deactivate' },
  { key: 'delete', name: 'delete' },
] as const;

const userBody = (userName: string, i: number) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName,
  name: { givenName: `Bench${i}`, familyName: 'User' },
  emails: [{ primary: true, value: userName, type: 'work' }],
  displayName: `Bench ${i}`,
  externalId: `ext-${i}`,
  active: true,
});

interface CpuPerOp {
  server: number;
  postgres?: number;
}

/** What one server did in one run: timings, CPU, statements, and whatever it answered wrongly. */
interface Run {
  label: string;
  results: Record<string, PhaseResult>;
  cpu: Record<string, CpuPerOp>;
  /** Statements per operation, where counted (PGlite). */
  statements: Record<string, number>;
  /** Per phase: the answers that were not what the requests asked for (first reason, count). */
  broken: Record<string, { reason: string; count: number }>;
  /** Answers that did the work but not the way RFC 7644 says (status codes). */
  notes: Set<string>;
  checks: { name: string; ok: boolean; detail: string }[];
}

interface Probes {
  meter?: CpuMeter;
  /** Statements the server has sent so far (PGlite). */
  statements?: () => Promise<number>;
  /** Whether to check the answers (not for the canned stub, whose answers are fixed). */
  verify: boolean;
  /** Group memberships stored, read from the server's database where its SCIM API does not show them. */
  memberships?: () => Promise<number>;
  /** No operation of a phase starts after this many seconds (the peer, which may be very slow). */
  maxSeconds?: number;
}

const json = (reply: Reply) => {
  try {
    return JSON.parse(reply.body);
  } catch {
    return undefined;
  }
};

async function workload(label: string, target: Target, probes: Probes): Promise<Run> {
  const client = new Client(target.url, CONCURRENCY);
  const headers = { authorization: `Bearer ${target.token}`, accept: 'application/scim+json' };
  const ids: string[] = new Array(USERS);
  const name = (i: number) => `bench.user.${i}@example.com`;
  const lookupPath = (i: number) =>
    `${target.base}/Users?filter=${encodeURIComponent(`userName eq "${name(i)}"`)}&startIndex=1&count=100`;
  const run: Run = { label, results: {}, cpu: {}, statements: {}, broken: {}, notes: new Set(), checks: [] };
  const broken = (key: string, reason: string) => {
    if (!probes.verify) return;
    const entry = run.broken[key];
    if (entry) entry.count++;
    else run.broken[key] = { reason, count: 1 };
  };
  const check = (name: string, ok: boolean, detail: string) => {
    if (probes.verify) run.checks.push({ name, ok, detail });
  };

  /** One timed phase, with the CPU and the statements it cost. */
  const timed = async (key: string, title: string, count: number, op: (i: number) => Promise<boolean>) => {
    const cpu0 = await probes.meter?.read();
    const statements0 = await probes.statements?.();
    run.results[key] = await phase(title, count, CONCURRENCY, op, probes.maxSeconds);
    const cpu1 = await probes.meter?.read();
    const statements1 = await probes.statements?.();
    if (probes.meter && cpu0 && cpu1) run.cpu[key] = probes.meter.perOp(cpu0, cpu1, count);
    if (statements0 !== undefined && statements1 !== undefined)
      run.statements[key] = (statements1 - statements0) / count;
  };
  /** Untimed reads after a phase, to check that it did its work. */
  const each = async (count: number, op: (i: number) => Promise<boolean>) =>
    (await phase('check', count, CONCURRENCY, op)).errors;
  const total = async () =>
    json(await client.request('GET', `${target.base}/Users?startIndex=1&count=1`, headers));

  await timed('create', 'create', USERS, async (i) => {
    const lookup = await client.request('GET', lookupPath(i), headers);
    if (lookup.status !== 200) return false;
    const created = await client.request('POST', `${target.base}/Users`, headers, userBody(name(i), i));
    ids[i] = json(created)?.id;
    return created.status === 201 && typeof ids[i] === 'string';
  });
  // A peer capped by time (--peer-seconds) created fewer users: the later phases use those.
  const n = run.results.create!.ops;
  if (n < USERS)
    run.notes.add(
      `capped at ${probes.maxSeconds} s per phase: ${n} of ${USERS} users created, later phases on those`,
    );
  if (probes.verify) {
    const listed = (await total())?.totalResults;
    check('after create: GET /Users totalResults', listed === n, `${listed} of ${n}`);
  }

  if (PHASES.includes('lookup')) {
    await timed('lookup', 'lookup', n * 2, async (i) => {
      const user = (i * 7919) % n;
      const reply = await client.request('GET', lookupPath(user), headers);
      const found = json(reply)?.Resources;
      if (reply.status === 200 && (found?.length !== 1 || found[0].userName !== name(user)))
        broken('lookup', `found ${found?.length} users, not the one asked for`);
      return reply.status === 200;
    });
  }

  if (PHASES.includes('patch')) {
    await timed('patch', 'patch', n, async (i) => {
      const reply = await client.request('PATCH', `${target.base}/Users/${ids[i]}`, headers, {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'Replace', path: 'displayName', value: `Bench ${i} renamed` }],
      });
      if (reply.status === 200 && json(reply)?.displayName !== `Bench ${i} renamed`)
        broken('patch', 'the answer does not carry the new displayName');
      return reply.status === 200;
    });
  }

  const batches = Math.floor(n / BATCH);
  if (PHASES.includes('group')) {
    const groupIds: string[] = [];
    for (let g = 0; g < GROUPS; g++) {
      const reply = await client.request('POST', `${target.base}/Groups`, headers, {
        displayName: `Bench group ${g}`,
      });
      groupIds.push(json(reply)?.id);
    }
    await timed('groupPatch', 'group patch', GROUPS * batches, async (i) => {
      const group = groupIds[i % GROUPS];
      const batch = Math.floor(i / GROUPS);
      const members = ids.slice(batch * BATCH, batch * BATCH + BATCH).map((value) => ({ $ref: null, value }));
      const reply = await client.request('PATCH', `${target.base}/Groups/${group}`, headers, {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'Add', path: 'members', value: members }],
      });
      // RFC 7644 §3.5.2: 204, or 200 with the group.
      return reply.status === 204 || reply.status === 200;
    });
    if (probes.verify) {
      // Each operation adds 50 users the group did not have (capped runs: the operations that ran).
      const expected = run.results.groupPatch!.ops * BATCH;
      let stored = 0;
      if (probes.memberships) stored = await probes.memberships();
      else {
        for (const id of groupIds) {
          const group = json(await client.request('GET', `${target.base}/Groups/${id}`, headers));
          stored += group?.members?.length ?? 0;
        }
      }
      const how = probes.memberships
        ? "memberships in the server's database (its GET /Groups/{id} answers members: [])"
        : 'members in GET /Groups/{id}';
      check(`after group PATCH: ${how}`, stored === expected, `${stored} of ${expected}`);
      if (stored !== expected)
        run.broken.groupPatch = {
          reason: `${stored} of ${expected} memberships stored`,
          count: run.results.groupPatch!.ops,
        };
    }
  }

  if (PHASES.includes('list')) {
    // Imports as IdPs run them: each of the concurrent importers walks every page in order.
    const pages = Math.ceil(n / 100);
    const walkers = Array.from({ length: CONCURRENCY }, () => 0);
    await timed('list', 'list page', pages * CONCURRENCY, async (i) => {
      const walker = i % CONCURRENCY;
      const page = walkers[walker]!++ % pages;
      const reply = await client.request(
        'GET',
        `${target.base}/Users?startIndex=${page * 100 + 1}&count=100`,
        headers,
      );
      const body = json(reply);
      const expected = Math.min(100, n - page * 100);
      if (reply.status === 200 && body?.Resources?.length !== expected)
        broken('list', `a page of 100 holds ${body?.Resources?.length}, not ${expected}`);
      else if (reply.status === 200 && body?.totalResults !== n)
        broken('list', `totalResults ${body?.totalResults}, not ${n}`);
      return reply.status === 200;
    });
  }

  if (PHASES.includes('deactivate')) {
    await timed('deactivate', 'deactivate', n, async (i) => {
      const reply = await client.request('PATCH', `${target.base}/Users/${ids[i]}`, headers, {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        // Entra sends the boolean as a string.
        Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
      });
      const active = json(reply)?.active;
      if (reply.status === 200 && active !== false)
        broken('deactivate', `active is ${JSON.stringify(active)} in the answer, not false`);
      return reply.status === 200;
    });
    if (probes.verify) {
      // The users that the (possibly capped) deactivate and patch phases reached.
      const deactivated = run.results.deactivate!.ops;
      const patched = run.results.patch?.ops ?? 0;
      const seen = new Map<string, number>();
      await each(deactivated, async (i) => {
        const user = json(await client.request('GET', `${target.base}/Users/${ids[i]}`, headers));
        const problem =
          user?.active !== false
            ? `active ${JSON.stringify(user?.active)}`
            : i < patched && user.displayName !== `Bench ${i} renamed`
              ? 'displayName not renamed'
              : undefined;
        if (problem) seen.set(problem, (seen.get(problem) ?? 0) + 1);
        return true;
      });
      check(
        `after deactivate: GET /Users/{id} active false${patched ? ', displayName renamed' : ''}`,
        seen.size === 0,
        seen.size === 0
          ? `all ${deactivated}`
          : [...seen].map(([problem, count]) => `${count} of ${deactivated}: ${problem}`).join('; '),
      );
    }
  }

  if (PHASES.includes('delete')) {
    await timed('delete', 'delete', n, async (i) => {
      const reply = await client.request('DELETE', `${target.base}/Users/${ids[i]}`, headers);
      if (reply.status === 200)
        run.notes.add('DELETE answers 200 with a body (RFC 7644 §3.6: 204 No Content)');
      return reply.status === 204 || reply.status === 200;
    });
    if (probes.verify) {
      const deleted = run.results.delete!.ops;
      const left = (await total())?.totalResults;
      const found = await each(deleted, async (i) => {
        const reply = await client.request('GET', `${target.base}/Users/${ids[i]}`, headers);
        return reply.status === 404;
      });
      check(
        `after delete: totalResults ${n - deleted}, GET /Users/{id} 404`,
        left === n - deleted && found === 0,
        `totalResults ${left}, ${found} of ${deleted} deleted users still found`,
      );
    }
  }
  client.close();
  return run;
}

/** With BENCH_STATEMENTS=1 (and pg_stat_statements loaded): where PostgreSQL spent its time. */
async function printStatements(url: string): Promise<void> {
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads the statement count of a server preloaded with pglite-statements.mjs. */
function statementCounter(server: ChildServer, file: string): () => Promise<number> {
  let reads = 0;
  return async () => {
    reads++;
    server.process.kill('SIGUSR2');
    for (let tries = 0; tries < 200; tries++) {
      const written = await readFile(file, 'utf8').then(
        (text) => JSON.parse(text),
        () => undefined,
      );
      if (written && written.reads >= reads) return written.statements;
      await sleep(10);
    }
    throw new Error('the server did not report its statement count');
  };
}

/** Runs the workload against one server in its own process; `stop` ends the server and its data. */
async function measure(
  label: string,
  start: () => Promise<{
    server: ChildServer;
    target: Target;
    database?: string;
    statementsFile?: string;
    memberships?: () => Promise<number>;
  }>,
  adminUrl: string | undefined,
  options: { verify?: boolean; maxSeconds?: number } = {},
): Promise<Run> {
  const { server, target, database, statementsFile, memberships } = await start();
  const meter = await CpuMeter.open(server.process.pid!, adminUrl, database);
  try {
    return await workload(label, target, {
      meter,
      verify: options.verify ?? true,
      maxSeconds: options.maxSeconds,
      memberships,
      statements: statementsFile ? statementCounter(server, statementsFile) : undefined,
    });
  } finally {
    await meter.close();
    await server.stop();
  }
}

const tmpDir = () => path.join('/tmp', `roster-bench-${randomBytes(4).toString('hex')}`);

/** Roster on PostgreSQL (its own database) or, without adminUrl, on PGlite with statements counted. */
async function measureRoster(adminUrl: string | undefined): Promise<Run> {
  const database = adminUrl ? await freshDatabase(adminUrl) : undefined;
  const secretKey = `rst_sk_bench_${randomBytes(24).toString('hex')}`;
  const env: Record<string, string> = { ROSTER_SECRET_KEY: secretKey, ROSTER_SCIM_RATE_LIMIT: '1000000' };
  const dataDir = tmpDir();
  const statementsFile = `${dataDir}.statements.json`;
  if (database) env.DATABASE_URL = database.url;
  else {
    env.ROSTER_DATA_DIR = dataDir;
    env.ROSTER_BENCH_STATEMENTS_FILE = statementsFile;
  }
  const preload = database ? [] : ['--import', path.join(import.meta.dirname, 'pglite-statements.mjs')];
  try {
    return await measure(
      database ? 'Roster' : 'Roster on PGlite',
      async () => {
        const server = await startRoster(env, preload);
        const target = await setUpRoster(server.url, secretKey, 'okta');
        return {
          server,
          target,
          database: database?.name,
          statementsFile: database ? undefined : statementsFile,
        };
      },
      adminUrl,
    );
  } finally {
    if (database && process.env.BENCH_STATEMENTS) await printStatements(database.url);
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(statementsFile, { force: true });
  }
}

async function measurePgStub(adminUrl: string | undefined): Promise<Run> {
  const database = adminUrl ? await freshDatabase(adminUrl) : undefined;
  const dataDir = tmpDir();
  try {
    return await measure(
      database ? 'pg stub' : 'pg stub on PGlite',
      async () => {
        const server = await startPgStub(database ? { DATABASE_URL: database.url } : { PGLITE_DIR: dataDir });
        return {
          server,
          target: { url: server.url, base: '/scim/v2', token: 'stub' },
          database: database?.name,
        };
      },
      adminUrl,
    );
  } finally {
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Group memberships in jackson's key-value store (namespace dsync:members:<tenant>:<product>). */
async function jacksonMemberships(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      `select count(*)::int as n from jackson_store where namespace like 'dsync:members:%'`,
    );
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

/** jackson on its own database of the same PostgreSQL; undefined (and why, printed) if it cannot run. */
async function measureJackson(adminUrl: string | undefined): Promise<Run | undefined> {
  if (PEER === 'none') return undefined;
  if (!adminUrl) {
    console.log('jackson: skipped, it runs on PostgreSQL only here (set DATABASE_URL)');
    return undefined;
  }
  let install: Awaited<ReturnType<typeof installJackson>>;
  try {
    install = await installJackson();
  } catch (error) {
    console.log(
      `jackson: skipped, installing @boxyhq/saml-jackson@${JACKSON_VERSION} failed: ${(error as Error).message}`,
    );
    return undefined;
  }
  console.log(`jackson: @boxyhq/saml-jackson@${JACKSON_VERSION}, ${install.note}`);
  const database = await freshDatabase(adminUrl);
  try {
    return await measure(
      'jackson',
      async () => {
        const server = await startJackson(install.dir, database.url);
        return {
          server,
          target: await setUpJackson(server.url),
          database: database.name,
          memberships: () => jacksonMemberships(database.url),
        };
      },
      adminUrl,
      { maxSeconds: PEER_SECONDS },
    );
  } catch (error) {
    console.log(`jackson: failed, left out: ${(error as Error).message}`);
    return undefined;
  } finally {
    await database.drop();
  }
}

const f = (n: number | undefined, digits = 1) => (n === undefined ? '-' : n.toFixed(digits));
const ratio = (a: PhaseResult | undefined, b: PhaseResult | undefined) =>
  a && b ? `${f(a.opsPerSecond / b.opsPerSecond, 2)}x` : '-';

function markdown(header: string[], rows: string[][]): void {
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

function brokenCell(run: Run, key: string): string | undefined {
  const broken = run.broken[key];
  return broken && `broken: ${broken.reason} (${broken.count} of ${run.results[key]?.ops})`;
}

function printRuns(roster: Run, stub: Run, pgStub: Run, jackson: Run | undefined): void {
  const rows = PHASE_ROWS.filter((row) => roster.results[row.key]);
  console.log(`\n${roster.label}: ops/s, latency of one operation (ms), and the ratio to the others`);
  markdown(
    [
      'phase',
      'ops',
      'ops/s',
      'p50',
      'p95',
      'p99',
      'errors',
      'stub ops/s',
      'pg stub ops/s',
      'jackson ops/s',
      'Roster/stub',
      'Roster/pg stub',
      'Roster/jackson',
    ],
    rows.map(({ key, name }) => {
      const r = roster.results[key]!;
      const j = jackson?.results[key];
      const jacksonBroken = jackson && brokenCell(jackson, key);
      return [
        brokenCell(roster, key) ? `${name} (${brokenCell(roster, key)})` : name,
        String(r.ops),
        f(r.opsPerSecond, 0),
        f(r.p50, 2),
        f(r.p95, 2),
        f(r.p99, 2),
        String(r.errors),
        f(stub.results[key]?.opsPerSecond, 0),
        f(pgStub.results[key]?.opsPerSecond, 0),
        jacksonBroken ? `${f(j?.opsPerSecond, 0)} (${jacksonBroken})` : f(j?.opsPerSecond, 0),
        ratio(r, stub.results[key]),
        ratio(r, pgStub.results[key]),
        jacksonBroken ? '-' : ratio(r, j),
      ];
    }),
  );

  const peers = [pgStub, ...(jackson ? [jackson] : [])];
  console.log('\nThe peers: ops/s, latency (ms), errors');
  markdown(
    ['phase', ...peers.flatMap((run) => [`${run.label} ops`, 'ops/s', 'p50', 'p95', 'p99', 'errors'])],
    rows.map(({ key, name }) => [
      name,
      ...peers.flatMap((run) => {
        const r = run.results[key];
        if (!r) return ['-', '-', '-', '-', '-', '-'];
        return [String(r.ops), f(r.opsPerSecond, 0), f(r.p50, 2), f(r.p95, 2), f(r.p99, 2), String(r.errors)];
      }),
    ]),
  );

  const withCpu = [roster, pgStub, ...(jackson ? [jackson] : [])];
  const embedded = roster.cpu.create?.postgres === undefined;
  console.log(
    `\nCPU ms per operation: server process / PostgreSQL backends of its database (from /proc)${embedded ? '; PGlite runs inside the server process' : ''}`,
  );
  markdown(
    ['phase', ...withCpu.map((run) => run.label)],
    rows.map(({ key, name }) => [
      name,
      ...withCpu.map((run) => {
        const cpu = run.cpu[key];
        return cpu
          ? `${f(cpu.server, 2)} / ${cpu.postgres === undefined ? 'in process' : f(cpu.postgres, 2)}`
          : '-';
      }),
    ]),
  );
  printChecks([roster, pgStub, ...(jackson ? [jackson] : [])]);
}

function printChecks(runs: Run[]): void {
  console.log('\nChecks (did each phase do its work?)');
  for (const run of runs) {
    for (const c of run.checks)
      console.log(`  ${run.label}: ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
    for (const [key, b] of Object.entries(run.broken))
      console.log(`  ${run.label}: FAIL ${key}: ${b.reason} (${b.count} answers)`);
    for (const note of run.notes) console.log(`  ${run.label}: note ${note}`);
  }
}

function printPglite(pglite: Run, pgStubPglite: Run, postgres?: Run): void {
  const rows = PHASE_ROWS.filter((row) => pglite.results[row.key]);
  console.log(
    `\n${pglite.label}: ops/s, latency (ms), statements sent to PGlite per operation (incl. background)`,
  );
  markdown(
    [
      'phase',
      'ops/s',
      'p50',
      'p95',
      'p99',
      'errors',
      'statements/op',
      'server CPU ms/op',
      'pg stub on PGlite ops/s',
      'Roster/pg stub',
      ...(postgres ? ['PGlite/PostgreSQL'] : []),
    ],
    rows.map(({ key, name }) => {
      const r = pglite.results[key]!;
      return [
        name,
        f(r.opsPerSecond, 0),
        f(r.p50, 2),
        f(r.p95, 2),
        f(r.p99, 2),
        String(r.errors),
        f(pglite.statements[key], 2),
        f(pglite.cpu[key]?.server, 2),
        f(pgStubPglite.results[key]?.opsPerSecond, 0),
        ratio(r, pgStubPglite.results[key]),
        ...(postgres ? [ratio(r, postgres.results[key])] : []),
      ];
    }),
  );
}

async function main() {
  if (process.argv.includes('--round-trips')) return roundTrips();
  const adminUrl = process.env.DATABASE_URL;
  console.log(
    `SCIM benchmark: ${USERS} users, ${CONCURRENCY} concurrent, ${GROUPS} groups in ${BATCH}-member PATCHes, on ${adminUrl ? 'PostgreSQL' : 'embedded PGlite (set DATABASE_URL for PostgreSQL)'}; node ${process.version}`,
  );

  const stub = await measure(
    'stub',
    async () => {
      const server = await startStub();
      return { server, target: { url: server.url, base: '/scim/v2/stub', token: 'stub' } };
    },
    undefined,
    { verify: false },
  );
  const pgStub = await measurePgStub(adminUrl);
  const jackson = await measureJackson(adminUrl);
  const roster = await measureRoster(adminUrl);
  printRuns(roster, stub, pgStub, jackson);

  if (adminUrl && process.argv.includes('--pglite')) {
    const pgStubPglite = await measurePgStub(undefined);
    const pglite = await measureRoster(undefined);
    printPglite(pglite, pgStubPglite, roster);
    printChecks([pglite, pgStubPglite]);
  } else if (!adminUrl) {
    printPglite(roster, pgStub);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
