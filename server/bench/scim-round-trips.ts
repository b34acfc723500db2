/**
 * `npm run bench:scim -- --round-trips`: how many statements (and so round trips: node-postgres
 * sends one statement per round trip, it does not pipeline) each SCIM operation costs PostgreSQL,
 * read from PostgreSQL's own pg_stat_statements, and the CPU each operation costs the server
 * process and the PostgreSQL backends (from /proc). Deterministic where the timed bench is noise.
 *
 * It runs on a private cluster (initdb into a temporary directory, pg_stat_statements preloaded),
 * never on the PostgreSQL that DATABASE_URL names: loading an extension needs a restart, and the
 * statistics must be this run's alone. Needs the PostgreSQL server binaries (PG_BIN, default
 * /usr/lib/postgresql/15/bin).
 *
 * Each operation runs `--ops` times one after the other with a warm auth cache; statements are
 * sorted into the request path, the SCIM token check (once a second per process: the auth cache's
 * lifetime), and background work (event numbering, sync log, webhooks), which is then shown per
 * change, at rest and under 16-way load.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { PrivateCluster } from '../test/private-cluster.js';
import { nowUs, summarizeProfile, type Window } from './cpu-profile.js';
import { arg, Client, cpuBetween, cpuOf, phase, processTreeCpu, setUpRoster, startRoster } from './lib.js';

const OPS = arg('ops', 100);
const LOAD_OPS = arg('load-ops', 1600);
/** Group PATCHes per group operation: each goes to a group of its own. */
const GROUP_OPS = arg('group-ops', 20);
const CONCURRENCY = arg('concurrency', 16);
/**
 * `--cpu-prof`: run the server under node's sampling profiler and print where each operation's CPU
 * went; `--cpu-prof=DIR` keeps the .cpuprofile in DIR (for Chrome DevTools or a second look).
 */
const PROFILE = process.argv.find((a) => a === '--cpu-prof' || a.startsWith('--cpu-prof='));
const KEEP_PROFILE = PROFILE?.split('=')[1];
/** `--only=lookup,patch`: measure only these operations (keys: see OPERATIONS). */
const ONLY = process.argv
  .find((a) => a.startsWith('--only='))
  ?.split('=')[1]
  ?.split(',');
const measured = (key: string) => !ONLY || ONLY.includes(key);

interface StatementRow {
  query: string;
  calls: number;
}

type Kind = 'request' | 'transaction' | 'auth' | 'background' | 'batched';

/** Statements of the background loops and of the token check, told apart by their text. */
function kindOf(query: string): Kind {
  const q = query.toLowerCase();
  // A statement sent in one simple-protocol message with the `begin` before it: no round trip of its own.
  if (q.includes('/* sent with begin */')) return 'batched';
  if (/^\s*(begin|commit|rollback)/.test(q)) return 'transaction';
  if (q.includes('scim_tokens')) return 'auth';
  if (/event_feed|pg_notify|sync_log|webhook|^\s*(listen|set )|signing_keys|pg_stat_statements/.test(q))
    return 'background';
  return 'request';
}

interface Counts {
  request: number;
  transaction: number;
  auth: number;
  background: number;
  batched: number;
  statements: (StatementRow & { kind: Kind })[];
}

function classify(rows: StatementRow[]): Counts {
  const counts: Counts = { request: 0, transaction: 0, auth: 0, background: 0, batched: 0, statements: [] };
  for (const row of rows) {
    const kind = kindOf(row.query);
    counts[kind] += row.calls;
    counts.statements.push({ ...row, kind });
  }
  return counts;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Measured {
  name: string;
  ops: number;
  changes: number;
  counts: Counts;
  serverCpuMs: number;
  postgresCpuMs: number;
}

export async function roundTrips(): Promise<void> {
  const cluster = await PrivateCluster.create({
    shared_preload_libraries: 'pg_stat_statements',
    'pg_stat_statements.track': 'top',
    'pg_stat_statements.max': '5000',
  });
  const admin = new pg.Client(cluster.url);
  let roster: Awaited<ReturnType<typeof startRoster>> | undefined;
  const profileDir = PROFILE
    ? (KEEP_PROFILE ?? mkdtempSync(path.join(tmpdir(), 'roster-cpu-prof-')))
    : undefined;
  const windows: Window[] = [];
  try {
    await admin.connect();
    await admin.query('create extension pg_stat_statements');
    await admin.query('create database roster_rt');
    const postmaster = Number(
      readFileSync(path.join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
    );
    const dbid = Number(
      (await admin.query(`select oid from pg_database where datname = 'roster_rt'`)).rows[0].oid,
    );
    const secretKey = `rst_sk_bench_${randomBytes(24).toString('hex')}`;
    const url = cluster.url.replace(/\/postgres$/, '/roster_rt');
    roster = await startRoster(
      {
        ROSTER_SECRET_KEY: secretKey,
        ROSTER_SCIM_RATE_LIMIT: '1000000',
        DATABASE_URL: url,
        ...(process.env.ROSTER_WORKERS ? { ROSTER_WORKERS: process.env.ROSTER_WORKERS } : {}),
      },
      profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval=100'] : [],
    );
    const serverPid = roster.process.pid!;
    const target = await setUpRoster(roster.url, secretKey, 'okta');
    const client = new Client(target.url, CONCURRENCY);
    const headers = { authorization: `Bearer ${target.token}`, accept: 'application/scim+json' };

    const measure = async (
      name: string,
      ops: number,
      changesPerOp: number,
      run: () => Promise<void>,
    ): Promise<Measured> => {
      // Let the previous step's background work (numbering, sync log flush every 250 ms) finish.
      await sleep(600);
      await admin.query('select pg_stat_statements_reset()');
      const server0 = await cpuOf(serverPid);
      const postgres0 = await processTreeCpu(postmaster);
      const startUs = nowUs();
      await run();
      windows.push({ name, ops, startUs, endUs: nowUs() });
      const server1 = await cpuOf(serverPid);
      const postgres1 = await processTreeCpu(postmaster);
      await sleep(600);
      const { rows } = await admin.query<StatementRow>(
        `select query, calls::int from pg_stat_statements where dbid = $1 order by calls desc`,
        [dbid],
      );
      return {
        name,
        ops,
        changes: ops * changesPerOp,
        counts: classify(rows),
        serverCpuMs: (server1 - server0) / ops,
        postgresCpuMs: cpuBetween(postgres0, postgres1) / ops,
      };
    };
    const ok = (status: number, expected: number, what: string) => {
      if (status !== expected) throw new Error(`${what}: HTTP ${status}, expected ${expected}`);
    };
    const user = (i: number, prefix = 'rt') => ({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: `${prefix}.${i}@example.com`,
      name: { givenName: `Rt${i}`, familyName: 'User' },
      emails: [{ primary: true, value: `${prefix}.${i}@example.com`, type: 'work' }],
      displayName: `Rt ${i}`,
      externalId: `${prefix}-${i}`,
      active: true,
    });
    const createUser = async (i: number, prefix: string) => {
      const reply = await client.request('POST', `${target.base}/Users`, headers, user(i, prefix));
      ok(reply.status, 201, 'create');
      return JSON.parse(reply.body).id as string;
    };
    const sequential = async (count: number, op: (i: number) => Promise<void>) => {
      for (let i = 0; i < count; i++) await op(i);
    };
    /** Warms the auth cache and the server's code paths, then measures. */
    const results: Measured[] = [];
    const warmAndMeasure = async (
      key: string,
      name: string,
      ops: number,
      changesPerOp: number,
      op: (i: number) => Promise<void>,
    ) => {
      if (!measured(key)) return;
      await op(-1);
      results.push(await measure(name, ops, changesPerOp, () => sequential(ops, op)));
    };

    // Fixtures (not measured): users to patch, deactivate, delete, and to fill groups with.
    const fixture: string[] = [];
    await phase('fixture', 3 * OPS + 300, CONCURRENCY, async (i) => {
      fixture[i] = await createUser(i, 'fixture');
      return true;
    });
    const createGroups = async (name: string) => {
      const ids: string[] = [];
      for (let g = 0; g <= GROUP_OPS; g++) {
        const reply = await client.request('POST', `${target.base}/Groups`, headers, {
          displayName: `${name} ${g}`,
        });
        ok(reply.status, 201, 'group create');
        ids.push(JSON.parse(reply.body).id);
      }
      return ids;
    };
    const groups = await createGroups('RT group');
    // Groups a role mapping names: their member changes re-resolve roles, under the exclusive lock.
    const mappedGroups: string[] = [];
    if (measured('group')) {
      const mapping = await client.request(
        'PUT',
        `/v1/connections/${target.connectionId}/role_mappings`,
        { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' },
        {
          mappings: Array.from({ length: GROUP_OPS + 1 }, (_, g) => ({
            group: `RT mapped ${g}`,
            role: 'admin',
          })),
        },
      );
      ok(mapping.status, 200, 'role mappings');
      mappedGroups.push(...(await createGroups('RT mapped')));
    }
    const patchOp = (path: string, value: unknown) => ({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'Replace', path, value }],
    });

    await warmAndMeasure('create', 'create (POST)', OPS, 1, async (i) => {
      await createUser(i + 1, 'created');
    });
    await warmAndMeasure('lookup', 'lookup (GET filter)', OPS, 0, async (i) => {
      const filter = encodeURIComponent(`userName eq "fixture.${i + 1}@example.com"`);
      const reply = await client.request('GET', `${target.base}/Users?filter=${filter}`, headers);
      ok(reply.status, 200, 'lookup');
    });
    // The same lookups 16 at a time, as an IdP's sync sends them (bench:scim's lookup phase): the
    // CPU a lookup costs when requests share the event loop's turns and the pool's connections.
    if (measured('lookup')) {
      const lookups = 5 * LOAD_OPS;
      results.push(
        await measure(`lookup, ${CONCURRENCY}-way load`, lookups, 0, async () => {
          const result = await phase('lookup load', lookups, CONCURRENCY, async (i) => {
            const filter = encodeURIComponent(`userName eq "fixture.${i % fixture.length}@example.com"`);
            const reply = await client.request('GET', `${target.base}/Users?filter=${filter}`, headers);
            return reply.status === 200 && JSON.parse(reply.body).totalResults === 1;
          });
          if (result.errors > 0) throw new Error(`${result.errors} errors under load`);
        }),
      );
    }
    await warmAndMeasure('patch', 'PATCH one attribute', OPS, 1, async (i) => {
      const reply = await client.request(
        'PATCH',
        `${target.base}/Users/${fixture[i + 1]}`,
        headers,
        patchOp('displayName', `Renamed ${i}`),
      );
      ok(reply.status, 200, 'patch');
    });
    const members = fixture.slice(0, 50).map((value) => ({ value }));
    const groupPatch = async (i: number, Operations: unknown[], of = groups) => {
      const reply = await client.request('PATCH', `${target.base}/Groups/${of[i + 1]}`, headers, {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations,
      });
      ok(reply.status, 204, 'group patch');
    };
    await warmAndMeasure('group', 'group PATCH, 50 members', GROUP_OPS, 50, (i) =>
      groupPatch(i, [{ op: 'Add', path: 'members', value: members }]),
    );
    await warmAndMeasure('group', 'group PATCH, 50 members, mapped group', GROUP_OPS, 50, (i) =>
      groupPatch(i, [{ op: 'Add', path: 'members', value: members }], mappedGroups),
    );
    // Okta's "Push now": the whole list, here 50 others (50 leave, 50 join).
    const others = fixture.slice(50, 100).map((value) => ({ value }));
    await warmAndMeasure('group', 'group PATCH, replace 50 (Okta)', GROUP_OPS, 100, (i) =>
      groupPatch(i, [{ op: 'replace', path: 'members', value: others }]),
    );
    // Okta's delta push: removals by value filter and additions in one PATCH.
    const removals = fixture.slice(50, 75).map((id) => ({ op: 'remove', path: `members[value eq "${id}"]` }));
    await warmAndMeasure('group', 'group PATCH, remove 25 + add 25 (Okta)', GROUP_OPS, 50, (i) =>
      groupPatch(i, [...removals, { op: 'add', path: 'members', value: members.slice(0, 25) }]),
    );
    const pages = Math.floor(fixture.length / 100);
    await warmAndMeasure('list', 'list page of 100 (walk)', OPS, 0, async (i) => {
      const page = (i + 1) % pages;
      const reply = await client.request(
        'GET',
        `${target.base}/Users?startIndex=${page * 100 + 1}&count=100`,
        headers,
      );
      ok(reply.status, 200, 'list');
    });
    await warmAndMeasure('deactivate', 'deactivate', OPS, 1, async (i) => {
      const reply = await client.request(
        'PATCH',
        `${target.base}/Users/${fixture[OPS + 1 + i]}`,
        headers,
        patchOp('active', false),
      );
      ok(reply.status, 200, 'deactivate');
    });
    await warmAndMeasure('delete', 'delete', OPS, 1, async (i) => {
      // The first users are in 20 groups each: a delete takes them out of every one.
      const reply = await client.request(
        'DELETE',
        `${target.base}/Users/${fixture[2 * OPS + 1 + i]}`,
        headers,
      );
      ok(reply.status, 204, 'delete');
    });
    if (measured('load')) {
      const load = await measure(`PATCH, ${CONCURRENCY}-way load`, LOAD_OPS, 1, async () => {
        const result = await phase('load', LOAD_OPS, CONCURRENCY, async (i) => {
          const reply = await client.request(
            'PATCH',
            `${target.base}/Users/${fixture[3 * OPS + 1 + (i % 299)]}`,
            headers,
            patchOp('title', `Title ${i}`),
          );
          return reply.status === 200;
        });
        if (result.errors > 0) throw new Error(`${result.errors} errors under load`);
      });
      results.push(load);
    }
    client.close();

    console.log(
      `\nSCIM round trips per operation (PostgreSQL ${(await admin.query('show server_version')).rows[0].server_version}, pg_stat_statements of a private cluster; node ${process.version}; ${OPS} sequential ops each, warm auth cache)`,
    );
    const header = [
      'operation',
      'ops',
      'request RT/op',
      'of which BEGIN/COMMIT',
      'token checks',
      'background/change',
      'server CPU ms/op',
      'PG CPU ms/op',
    ];
    console.log(`| ${header.join(' | ')} |`);
    console.log(`|${header.map(() => '---').join('|')}|`);
    const f = (n: number, d = 2) => n.toFixed(d);
    for (const r of results) {
      const c = r.counts;
      console.log(
        `| ${[
          r.name,
          r.ops,
          f((c.request + c.transaction) / r.ops),
          f(c.transaction / r.ops),
          c.auth,
          r.changes ? f(c.background / r.changes, 3) : '-',
          f(r.serverCpuMs),
          f(r.postgresCpuMs),
        ].join(' | ')} |`,
      );
    }
    if (process.argv.includes('--verbose')) {
      for (const r of results) {
        console.log(`\n${r.name}: statements per op`);
        for (const s of r.counts.statements) {
          const text = s.query.replace(/\s+/g, ' ').slice(0, 140);
          console.log(`  ${f(s.calls / r.ops).padStart(6)}  ${s.kind.padEnd(11)} ${text}`);
        }
      }
    }
  } finally {
    await roster?.stop();
    await admin.end().catch(() => {});
    cluster.destroy();
    if (profileDir) {
      summarizeProfile(profileDir, windows);
      if (!KEEP_PROFILE) rmSync(profileDir, { recursive: true, force: true });
      else writeFileSync(path.join(profileDir, 'windows.json'), JSON.stringify(windows));
    }
  }
}
