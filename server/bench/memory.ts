/**
 * `npm run bench:memory`: the server's memory through the first hours of an install, on the
 * embedded PGlite and, when DATABASE_URL is set, on PostgreSQL too (a fresh database of its own):
 *
 *   1. first start on an empty data folder (PGlite) or an empty database: time to ready, peak RSS;
 *   2. idle: RSS 30 s after the start;
 *   3. a directory provisioned Entra-style: for each user a userName lookup then a POST, then 20
 *      groups (lookup with excludedAttributes=members, POST without members), each user in one of
 *      them, added in 50-member `Add` PATCHes;
 *   4. a minute of lookups (userName filter and GET by id, alternately);
 *   5. SIGTERM, then a restart on the same data: time to ready.
 *
 * RSS is the operating system's figure for the server process (/proc/<pid>/status, so Linux only),
 * sampled every 100 ms; "peak" is the kernel's high-water mark of that process. On PostgreSQL the
 * database's own processes are not in it: the table shows the database's size instead.
 *
 *   DATABASE_URL=postgres://… npm run bench:memory -- --users=10000 --lookup-seconds=60 [--only=postgres]
 *
 * The server starts as `npm start` starts it (bin/roster-node); ROSTER_PGLITE_* variables in the
 * environment are passed on to it.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import {
  arg,
  type ChildServer,
  Client,
  freshDatabase,
  phase,
  setUpRoster,
  startRoster,
  type Target,
} from './lib.js';

const USERS = arg('users', 10_000);
const GROUPS = arg('groups', 20);
const CONCURRENCY = arg('concurrency', 16);
const IDLE_SECONDS = arg('idle-seconds', 30);
const LOOKUP_SECONDS = arg('lookup-seconds', 60);
const BATCH = 50;
/** `--only=pglite` or `--only=postgres` runs one of the two. */
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.split('=')[1];
const MB = 1024 * 1024;

/** The server process's memory, from the kernel's accounting. */
class RssProbe {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #max = 0;

  constructor(pid: number) {
    this.#pid = pid;
    this.#timer = setInterval(() => {
      this.#max = Math.max(this.#max, this.rss());
    }, 100);
  }

  #status(field: string): number {
    try {
      const status = readFileSync(`/proc/${this.#pid}/status`, 'utf8');
      return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  }

  rss(): number {
    return this.#status('VmRSS');
  }

  /** Largest RSS the kernel saw for the process since it started. */
  highWater(): number {
    return this.#status('VmHWM');
  }

  /** Largest sampled RSS since the last call. */
  takeMax(): number {
    const max = Math.max(this.#max, this.rss());
    this.#max = 0;
    return max;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

interface Figures {
  firstReadyMs: number;
  firstPeak: number;
  idle: number;
  provisionSeconds: number;
  provisionPeak: number;
  provisionErrors: number;
  lookupsPerSecond: number;
  lookupP99: number;
  lookupErrors: number;
  afterLookups: number;
  lookupPeak: number;
  highWater: number;
  databaseBytes: number;
  restartReadyMs: number;
  restartRss: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const userName = (i: number) => `bench.user.${i}@contoso.example`;

async function provision(target: Target): Promise<{ ids: string[]; groupIds: string[]; errors: number }> {
  const client = new Client(target.url, CONCURRENCY);
  const headers = {
    authorization: `Bearer ${target.token}`,
    'content-type': 'application/scim+json; charset=utf-8',
  };
  const ids: string[] = new Array(USERS);
  const lookup = (name: string) =>
    client.request(
      'GET',
      `${target.base}/Users?filter=${encodeURIComponent(`userName eq "${name}"`)}`,
      headers,
    );
  const users = await phase('create', USERS, CONCURRENCY, async (i) => {
    if ((await lookup(userName(i))).status !== 200) return false;
    const created = await client.request('POST', `${target.base}/Users`, headers, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
      externalId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      userName: userName(i),
      active: true,
      displayName: `Bench User ${i}`,
      emails: [{ primary: true, type: 'work', value: userName(i) }],
      meta: { resourceType: 'User' },
      name: { formatted: `Bench User ${i}`, familyName: 'User', givenName: `Bench${i}` },
      [ENTERPRISE]: { department: `Department ${i % 40}` },
      roles: [],
    });
    ids[i] = JSON.parse(created.body).id;
    return created.status === 201;
  });
  const groupIds: string[] = [];
  let errors = users.errors;
  for (let g = 0; g < GROUPS; g++) {
    const displayName = `Bench group ${g}`;
    const found = await client.request(
      'GET',
      `${target.base}/Groups?excludedAttributes=members&filter=${encodeURIComponent(`displayName eq "${displayName}"`)}`,
      headers,
    );
    if (found.status !== 200) errors++;
    const created = await client.request('POST', `${target.base}/Groups`, headers, {
      schemas: [
        'urn:ietf:params:scim:schemas:core:2.0:Group',
        'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
      ],
      externalId: `10000000-0000-4000-8000-${String(g).padStart(12, '0')}`,
      displayName,
      meta: { resourceType: 'Group' },
    });
    if (created.status !== 201) errors++;
    groupIds.push(JSON.parse(created.body).id);
  }
  // Each user in one group (user i in group i mod GROUPS), added in 50-member PATCHes.
  const perGroup = Array.from({ length: GROUPS }, (_, g) => ids.filter((_, i) => i % GROUPS === g));
  const batches = Math.ceil(USERS / GROUPS / BATCH);
  const members = await phase('group patch', GROUPS * batches, CONCURRENCY, async (i) => {
    const group = i % GROUPS;
    const batch = Math.floor(i / GROUPS);
    const value = perGroup[group]!.slice(batch * BATCH, batch * BATCH + BATCH).map((id) => ({
      $ref: null,
      value: id,
    }));
    if (value.length === 0) return true;
    const reply = await client.request('PATCH', `${target.base}/Groups/${groupIds[group]}`, headers, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'Add', path: 'members', value }],
    });
    return reply.status === 204 || reply.status === 200;
  });
  client.close();
  return { ids, groupIds, errors: errors + members.errors };
}

async function lookups(target: Target, ids: string[]) {
  const client = new Client(target.url, CONCURRENCY);
  const headers = { authorization: `Bearer ${target.token}` };
  const deadline = performance.now() + LOOKUP_SECONDS * 1000;
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      for (let n = worker; performance.now() < deadline; n += CONCURRENCY) {
        const i = (n * 7919) % USERS;
        const requestPath =
          n % 2 === 0
            ? `${target.base}/Users?filter=${encodeURIComponent(`userName eq "${userName(i)}"`)}`
            : `${target.base}/Users/${ids[i]}`;
        const t0 = performance.now();
        const reply = await client.request('GET', requestPath, headers).catch(() => undefined);
        latencies.push(performance.now() - t0);
        if (reply?.status !== 200) errors++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  client.close();
  latencies.sort((a, b) => a - b);
  return {
    perSecond: latencies.length / seconds,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    errors,
  };
}

function directorySize(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

async function postgresSize(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ size: string }>(
      'select pg_database_size(current_database()) as size',
    );
    return Number(rows[0]?.size ?? 0);
  } finally {
    await client.end();
  }
}

async function measure(env: Record<string, string>, databaseSize: () => Promise<number>): Promise<Figures> {
  const secretKey = env.ROSTER_SECRET_KEY!;
  let probe: RssProbe | undefined;
  const start = async () => {
    const t0 = performance.now();
    const server = await startRoster(env);
    return { server, t0, readyMs: performance.now() - t0 };
  };

  let first: { server: ChildServer; t0: number; readyMs: number } | undefined;
  try {
    first = await start();
    probe = new RssProbe(first.server.process.pid!);
    const firstReadyMs = first.readyMs;
    await sleep(Math.max(0, first.t0 + IDLE_SECONDS * 1000 - performance.now()));
    const idle = probe.rss();
    const firstPeak = probe.highWater();
    console.log(`  first start ready in ${(first.readyMs / 1000).toFixed(2)} s; idle ${mb(idle)} MB`);

    probe.takeMax();
    const target = await setUpRoster(first.server.url, secretKey, 'entra');
    const t1 = performance.now();
    const directory = await provision(target);
    const provisionSeconds = (performance.now() - t1) / 1000;
    const provisionPeak = probe.takeMax();
    console.log(`  provisioned in ${provisionSeconds.toFixed(0)} s; peak ${mb(provisionPeak)} MB`);

    const read = await lookups(target, directory.ids);
    const afterLookups = probe.rss();
    const lookupPeak = probe.takeMax();
    const highWater = probe.highWater();
    probe.stop();
    await first.server.stop();
    first = undefined;
    const databaseBytes = await databaseSize();

    const again = await start();
    const restartRss = new RssProbe(again.server.process.pid!);
    const rss = restartRss.rss();
    restartRss.stop();
    await again.server.stop();

    return {
      firstReadyMs,
      firstPeak,
      idle,
      provisionSeconds,
      provisionPeak,
      provisionErrors: directory.errors,
      lookupsPerSecond: read.perSecond,
      lookupP99: read.p99,
      lookupErrors: read.errors,
      afterLookups,
      lookupPeak,
      highWater,
      databaseBytes,
      restartReadyMs: again.readyMs,
      restartRss: rss,
    };
  } finally {
    probe?.stop();
    await first?.server.stop();
  }
}

const mb = (bytes: number) => Math.round(bytes / MB);

function printTable(results: { name: string; figures: Figures }[]): void {
  const pglite = results.find((r) => r.name === 'PGlite')?.figures;
  const postgres = results.find((r) => r.name === 'PostgreSQL')?.figures;
  const rows: [string, (f: Figures) => string, string][] = [
    ['first start: ready', (f) => `${(f.firstReadyMs / 1000).toFixed(2)} s`, ''],
    [`first ${IDLE_SECONDS} s: peak RSS`, (f) => `${mb(f.firstPeak)} MB`, '< 500 MB'],
    [`idle, ${IDLE_SECONDS} s after start: RSS`, (f) => `${mb(f.idle)} MB`, '< 200 MB'],
    ['provisioning: time', (f) => `${f.provisionSeconds.toFixed(0)} s`, ''],
    ['provisioning: peak RSS', (f) => `${mb(f.provisionPeak)} MB`, ''],
    [`${LOOKUP_SECONDS} s of lookups: per second`, (f) => f.lookupsPerSecond.toFixed(0), ''],
    [`${LOOKUP_SECONDS} s of lookups: p99`, (f) => `${f.lookupP99.toFixed(1)} ms`, ''],
    [`${LOOKUP_SECONDS} s of lookups: peak RSS`, (f) => `${mb(f.lookupPeak)} MB`, ''],
    ['after the lookups: RSS', (f) => `${mb(f.afterLookups)} MB`, '< 400 MB'],
    ['peak RSS over the run', (f) => `${mb(f.highWater)} MB`, ''],
    ['errors', (f) => String(f.provisionErrors + f.lookupErrors), '0'],
    ['database size on disk', (f) => `${mb(f.databaseBytes)} MB`, ''],
    ['restart on the data: ready', (f) => `${(f.restartReadyMs / 1000).toFixed(2)} s`, '< 3 s'],
    ['restart: RSS when ready', (f) => `${mb(f.restartRss)} MB`, ''],
  ];
  const cell = (text: string, width: number) => text.padEnd(width);
  console.log(`\n${cell('figure', 36)}${cell('PGlite', 14)}${cell('PostgreSQL', 14)}aim (PGlite)`);
  for (const [label, value, aim] of rows) {
    console.log(
      `${cell(label, 36)}${cell(pglite ? value(pglite) : '-', 14)}${cell(postgres ? value(postgres) : '-', 14)}${aim}`,
    );
  }
  if (pglite && postgres) {
    for (const [label, ours, theirs] of [
      ['idle', pglite.idle, postgres.idle],
      ['after the lookups', pglite.afterLookups, postgres.afterLookups],
      ['peak over the run', pglite.highWater, postgres.highWater],
    ] as const) {
      const bound = 2 * theirs + postgres.databaseBytes;
      console.log(
        `PGlite ${label}: ${mb(ours)} MB; 2 x PostgreSQL-mode process + database size: ${mb(bound)} MB (${((100 * ours) / bound).toFixed(0)} %)`,
      );
    }
  }
}

async function main() {
  if (process.platform !== 'linux') throw new Error('bench:memory reads /proc: run it on Linux');
  const adminUrl = process.env.DATABASE_URL;
  console.log(
    `Memory benchmark: ${USERS} users, ${GROUPS} groups (each user in one, ${BATCH}-member PATCHes), ${CONCURRENCY} concurrent, ${LOOKUP_SECONDS} s of lookups; ` +
      `node ${process.version}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, ${os.cpus()[0]?.model ?? ''}`,
  );
  const secretKey = `rst_sk_bench_${randomBytes(24).toString('hex')}`;
  const base: Record<string, string> = { ROSTER_SECRET_KEY: secretKey, ROSTER_SCIM_RATE_LIMIT: '1000000' };
  // The embedded database's settings pass through, to compare them (e.g. ROSTER_PGLITE_WASM_TIER=baseline).
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('ROSTER_PGLITE_') && value) base[name] = value;
  }
  const results: { name: string; figures: Figures }[] = [];

  const dataDir = path.join(os.tmpdir(), `roster-bench-memory-${randomBytes(4).toString('hex')}`);
  if (ONLY !== 'postgres') {
    console.log(`PGlite (ROSTER_DATA_DIR=${dataDir}):`);
    try {
      results.push({
        name: 'PGlite',
        figures: await measure({ ...base, ROSTER_DATA_DIR: dataDir }, async () => directorySize(dataDir)),
      });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  if (adminUrl && ONLY !== 'pglite') {
    const database = await freshDatabase(adminUrl);
    console.log(`PostgreSQL (${database.name}):`);
    try {
      results.push({
        name: 'PostgreSQL',
        figures: await measure({ ...base, DATABASE_URL: database.url }, () => postgresSize(database.url)),
      });
    } finally {
      await database.drop();
    }
  }
  printTable(results);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
