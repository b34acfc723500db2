/**
 * `npm run bench:sessions`:
 * 1. Session verification on one core with a warm JWKS: the middleware's path
 *    (`@roster/sdk/express`, `authenticate` of an `Authorization: Bearer` request) over distinct
 *    tokens, next to raw `node:crypto` verification of the same signatures in the same run, for
 *    ES256 and EdDSA; and the WebCrypto verifier (`verifySession`, edge runtimes) for reference.
 * 2. Refresh through the built server, on PostgreSQL (DATABASE_URL) and on PGlite: one session
 *    refreshing back to back, then 16 sessions concurrently; next to the machine's limits for the
 *    same work measured in the same run: the components alone (one ES256 signature with
 *    node:crypto; one `UPDATE … RETURNING` of a session row through pg), and the same-work limit
 *    that the 0.5x aim is read against (refresh-stub.mjs: both, behind node:http, in one process);
 *    Roster's figures as a ratio of each.
 *    With the 16 sessions, the figures that noise does not move much: the CPU time per refresh of
 *    the server process and of the PostgreSQL backends serving its database (/proc), the
 *    database transactions per refresh (pg_stat_database), the rows each table got written per
 *    refresh and the autovacuum runs meanwhile (pg_stat_user_tables), and the wait events of
 *    those backends sampled every few ms during the phase (pg_stat_activity).
 *    `--verification=0` runs this half alone (`--refresh=0` the first; `--pglite=0` skips PGlite).
 *    `--statements=1` runs PostgreSQL on a private cluster (initdb, pg_stat_statements preloaded;
 *    needs the server binaries, PG_BIN) instead of DATABASE_URL, and prints each statement's calls,
 *    rows, time and WAL per refresh of the phase. `--trace-gc=1` starts the server with `--trace-gc`;
 *    `--cpu-prof=1` runs it and the same-work stub with `--cpu-prof` (a .cpuprofile per process, in
 *    a directory it prints). `--warmup=N` (default 400) sets how many refreshes all sessions make
 *    at once before the measured phases.
 *
 *   DATABASE_URL=postgres://… npm run bench:sessions -- --tokens=20000 --refreshes=2000
 */
import { spawn } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRoster, createSessionVerifier } from '@roster/sdk';
import { createNodeSessionVerifier } from '@roster/sdk/express';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import pg from 'pg';
import {
  arg,
  Client,
  CpuMeter,
  type CpuReading,
  freshDatabase,
  startRoster,
} from '../../server/bench/lib.js';
import { PrivateCluster } from '../../server/test/private-cluster.js';

const TOKENS = arg('tokens', 20_000);
const REFRESHES = arg('refreshes', 2_000);
const WARMUP = arg('warmup', 400);
const CONCURRENCY = arg('concurrency', 16);
/** DATABASE_POOL_SIZE of the server (and the pool of the same-work stub). */
const POOL = arg('pool', 16);
const VERIFY_ROUNDS = arg('rounds', 5);
const STATEMENTS = arg('statements', 0) === 1;
/**
 * ROSTER_REFRESH_SYNCHRONOUS_COMMIT of the server: 0 (its default, `off`: a rotation's commit does
 * not wait for the WAL flush) or 1 (`on`). The same-work limit runs both ways; the 0.5x aim is read
 * against the one that commits as Roster does.
 */
const SYNCHRONOUS_COMMIT = arg('synchronous-commit', 0) === 1;
const ISSUER = 'https://roster.bench';

async function verification(alg: 'ES256' | 'EdDSA') {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'sk_bench', alg, use: 'sig' };
  const now = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let i = 0; i < TOKENS; i++) {
    tokens.push(
      await new SignJWT({
        sub: `user_${i}`,
        sid: `sess_${i}`,
        org_id: 'org_bench',
        org_role: 'admin',
        org_permissions: ['invoices:read', 'invoices:write', 'members:read'],
      })
        .setProtectedHeader({ alg, kid: 'sk_bench', typ: 'JWT' })
        .setIssuer(ISSUER)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 3600)
        .sign(privateKey),
    );
  }
  const fetchJwks = async () => Response.json({ keys: [jwk] });
  const middleware = createNodeSessionVerifier({ baseUrl: ISSUER, fetch: fetchJwks, cookies: false });
  const web = createSessionVerifier({ baseUrl: ISSUER, fetch: fetchJwks, cookies: false });
  // Warm the JWKS caches and the JIT.
  for (const t of tokens.slice(0, 500)) {
    await middleware.authenticate({ headers: { authorization: `Bearer ${t}` } });
    await web.verifyToken(t);
  }

  const key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  /** CPU seconds to verify `batch` each way (see below). */
  const raw = (batch: string[]) => {
    const started = cpuSeconds();
    for (const t of batch) {
      const dot = t.lastIndexOf('.');
      const ok = verify(
        alg === 'ES256' ? 'sha256' : null,
        Buffer.from(t.slice(0, dot), 'latin1'),
        alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
        Buffer.from(t.slice(dot + 1), 'base64url'),
      );
      if (!ok) throw new Error('raw verification failed');
    }
    return cpuSeconds() - started;
  };
  const viaMiddleware = async (batch: string[]) => {
    const started = cpuSeconds();
    for (const t of batch) {
      const result = await middleware.authenticate({ headers: { authorization: `Bearer ${t}` } });
      if (result.status !== 'signed_in') throw new Error(`middleware rejected: ${result.reason}`);
    }
    return cpuSeconds() - started;
  };
  const viaWebCrypto = async (batch: string[]) => {
    const started = cpuSeconds();
    for (const t of batch) {
      const result = await web.verifyToken(t);
      if (result.status !== 'signed_in') throw new Error(`verifier rejected: ${result.reason}`);
    }
    return cpuSeconds() - started;
  };
  // Warm-up over every token each way (JIT, and the first pass over the tokens' memory).
  raw(tokens);
  await viaMiddleware(tokens);
  // Timed in CPU time of this process (user + system, process.cpuUsage), not wall-clock time: on
  // a shared machine a wall-clock timing counts the time other processes held the core, and
  // moved the ratio by ±15 points from one batch to the next. Raw and the middleware are timed
  // on the same batch of 1,000 tokens back to back (in alternating order), and the figure is the
  // median of those paired ratios over every batch of every round. Throughputs are per CPU
  // second (one core), totals over all rounds. WebCrypto verifies on libuv's threads: their CPU
  // is counted too.
  const batches: string[][] = [];
  for (let i = 0; i < tokens.length; i += 1000) batches.push(tokens.slice(i, i + 1000));
  const ratios: number[] = [];
  const seconds = { raw: 0, middleware: 0, web: 0 };
  let count = 0;
  for (let round = 0; round < VERIFY_ROUNDS; round++) {
    for (const [i, batch] of batches.entries()) {
      let rawSeconds: number;
      let middlewareSeconds: number;
      if ((i + round) % 2 === 0) {
        rawSeconds = raw(batch);
        middlewareSeconds = await viaMiddleware(batch);
      } else {
        middlewareSeconds = await viaMiddleware(batch);
        rawSeconds = raw(batch);
      }
      ratios.push(rawSeconds / middlewareSeconds);
      seconds.raw += rawSeconds;
      seconds.middleware += middlewareSeconds;
      count += batch.length;
    }
    seconds.web += await viaWebCrypto(tokens);
  }
  ratios.sort((a, b) => a - b);
  const at = (q: number) => (100 * ratios[Math.floor(q * (ratios.length - 1))]!).toFixed(1);
  console.log(
    `\n${alg}: ${TOKENS} distinct tokens, ${VERIFY_ROUNDS} rounds, per CPU second, warm JWKS` +
      ` (middleware vs raw: median of ${ratios.length} paired batches)`,
  );
  console.log(`  raw node:crypto verify          ${(count / seconds.raw).toFixed(0)} /s`);
  console.log(
    `  @roster/sdk/express middleware  ${(count / seconds.middleware).toFixed(0)} /s   ${at(0.5)} % of raw` +
      ` (aim ≥ 80 %; quartiles ${at(0.25)}–${at(0.75)} %)`,
  );
  console.log(
    `  verifySession (WebCrypto)       ${((VERIFY_ROUNDS * tokens.length) / seconds.web).toFixed(0)} /s   ${((100 * seconds.raw) / seconds.web).toFixed(1)} % of raw`,
  );
}

/** CPU time this process has used (user + system), in seconds. */
function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Latencies and throughput of `count` operations run by `concurrency` workers. */
async function measure(count: number, concurrency: number, op: (worker: number) => Promise<void>) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next++ < count) {
        const t0 = performance.now();
        await op(worker);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const sorted = latencies.sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  return { perSecond: count / ((performance.now() - started) / 1000), p50: at(50), p99: at(99) };
}

type Measured = Awaited<ReturnType<typeof measure>>;

/** The machine's limit for the signing half of a refresh: ES256 signatures with node:crypto, one core. */
function signLimit(): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const input = Buffer.from(`${'a'.repeat(36)}.${'b'.repeat(260)}`, 'latin1');
  const n = 5_000;
  let best = 0;
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    for (let i = 0; i < n; i++) sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    best = Math.max(best, n / ((performance.now() - started) / 1000));
  }
  return best;
}

/**
 * The machine's limit for the database half of a refresh: one `UPDATE … RETURNING` of a session
 * row through `pg` (prepared), from this process, on the server's database.
 */
async function updateLimit(databaseUrl: string, sessionIds: string[]) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: CONCURRENCY });
  // pool.end() resolves before its connections have closed: dropping the database then
  // terminates them, and the pool would rethrow that as an unhandled error.
  pool.on('error', () => {});
  try {
    const update = (id: string) =>
      pool.query({
        name: 'bench_update_session',
        text: 'update sessions set last_refreshed_at = now() where id = $1 returning *',
        values: [id],
      });
    await measure(200, CONCURRENCY, (w) => update(sessionIds[w % sessionIds.length]!).then(() => undefined));
    const one = await measure(REFRESHES / 2, 1, () => update(sessionIds[0]!).then(() => undefined));
    const many = await measure(REFRESHES, CONCURRENCY, (w) =>
      update(sessionIds[w % sessionIds.length]!).then(() => undefined),
    );
    return { one, many };
  } finally {
    await pool.end();
  }
}

/**
 * Transactions the database committed and rolled back (pg_stat_database): every statement sent
 * outside a transaction is one, so their number per refresh counts the round trips that wrote or
 * read. A busy backend reports its statistics at most once a second, an idle one within 10 s
 * (PostgreSQL 15), so this waits 11 s before reading: the pool's connections are idle by then.
 */
async function databaseStats(databaseUrl: string): Promise<DatabaseStats> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    const { rows } = await client.query<{ n: string }>(
      'select xact_commit + xact_rollback as n from pg_stat_database where datname = current_database()',
    );
    // Rows written per table, and the autovacuum runs that their dead versions cost.
    const tables = await client.query<{
      relname: string;
      ins: string;
      upd: string;
      hot: string;
      del: string;
      autovacuum: string;
    }>(
      `select relname, n_tup_ins as ins, n_tup_upd as upd, n_tup_hot_upd as hot, n_tup_del as del,
         autovacuum_count + autoanalyze_count as autovacuum
       from pg_stat_user_tables`,
    );
    return {
      transactions: Number(rows[0]!.n),
      tables: new Map(
        tables.rows.map((t) => [
          t.relname,
          {
            ins: Number(t.ins),
            upd: Number(t.upd),
            hot: Number(t.hot),
            del: Number(t.del),
            autovacuum: Number(t.autovacuum),
          },
        ]),
      ),
    };
  } finally {
    await client.end();
  }
}

interface TableStats {
  ins: number;
  upd: number;
  hot: number;
  del: number;
  autovacuum: number;
}
interface DatabaseStats {
  transactions: number;
  tables: Map<string, TableStats>;
}

/** Rows written per refresh, per table written, between two readings of {@link databaseStats}. */
function writesPerRefresh(before: DatabaseStats, after: DatabaseStats, refreshes: number): string {
  const parts: string[] = [];
  for (const [name, a] of after.tables) {
    const b = before.tables.get(name) ?? { ins: 0, upd: 0, hot: 0, del: 0, autovacuum: 0 };
    const [ins, upd, hot, del] = [a.ins - b.ins, a.upd - b.upd, a.hot - b.hot, a.del - b.del];
    if (ins + upd + del === 0 && a.autovacuum === b.autovacuum) continue;
    const per = (n: number) => (n / refreshes).toFixed(2);
    parts.push(
      `${name} ${per(ins)} ins + ${per(upd)} upd (${upd ? ((100 * hot) / upd).toFixed(0) : '-'} % HOT)` +
        `${del ? ` + ${per(del)} del` : ''}${a.autovacuum > b.autovacuum ? `, ${a.autovacuum - b.autovacuum} autovacuum/analyze` : ''}`,
    );
  }
  return parts.join('; ') || 'none';
}

/**
 * Samples what the backends serving a database wait on, every `everyMs`, until stopped: the
 * share of samples per wait event of the backends that were active (CPU when none).
 */
function sampleWaits(adminUrl: string, database: string, everyMs = 5) {
  const client = new pg.Client({ connectionString: adminUrl });
  const counts = new Map<string, number>();
  let samples = 0;
  let running = true;
  const done = (async () => {
    await client.connect();
    try {
      while (running) {
        const { rows } = await client.query<{ wait: string | null }>(
          `select coalesce(wait_event_type || ':' || wait_event, 'CPU') as wait from pg_stat_activity
           where datname = $1 and state = 'active' and pid <> pg_backend_pid()`,
          [database],
        );
        samples++;
        for (const { wait } of rows) counts.set(wait ?? 'CPU', (counts.get(wait ?? 'CPU') ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    } finally {
      await client.end();
    }
  })();
  return async () => {
    running = false;
    await done;
    const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 6);
    return `${samples} samples, active backends per sample ${([...counts.values()].reduce((a, b) => a + b, 0) / samples).toFixed(2)}: ${top.map(([w, n]) => `${w} ${(n / samples).toFixed(2)}`).join(', ')}`;
  };
}

/** Per statement of the database, calls / rows / time / WAL (pg_stat_statements), for the phase. */
async function statementsOf(adminUrl: string, database: string): Promise<Map<string, StatementStats>> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<StatementStats & { query: string }>(
      `select s.query, s.calls::float8 as calls, s.rows::float8 as rows, s.total_exec_time as ms,
         s.plans::float8 as plans, s.total_plan_time as plan_ms,
         s.wal_records::float8 as wal_records, s.wal_bytes::float8 as wal_bytes,
         s.shared_blks_hit::float8 as hit, s.shared_blks_dirtied::float8 as dirtied
       from pg_stat_statements s join pg_database d on d.oid = s.dbid where d.datname = $1`,
      [database],
    );
    return new Map(rows.map(({ query, ...stats }) => [query, stats]));
  } finally {
    await client.end();
  }
}

interface StatementStats {
  calls: number;
  rows: number;
  ms: number;
  plans: number;
  plan_ms: number;
  wal_records: number;
  wal_bytes: number;
  hit: number;
  dirtied: number;
}

function printStatements(
  before: Map<string, StatementStats>,
  after: Map<string, StatementStats>,
  refreshes: number,
) {
  const deltas = [...after]
    .map(([query, a]) => {
      const b = before.get(query) ?? {
        calls: 0,
        rows: 0,
        ms: 0,
        plans: 0,
        plan_ms: 0,
        wal_records: 0,
        wal_bytes: 0,
        hit: 0,
        dirtied: 0,
      };
      return {
        query,
        calls: a.calls - b.calls,
        ms: a.ms - b.ms,
        plans: a.plans - b.plans,
        planMs: a.plan_ms - b.plan_ms,
        walBytes: a.wal_bytes - b.wal_bytes,
        walRecords: a.wal_records - b.wal_records,
        hit: a.hit - b.hit,
        dirtied: a.dirtied - b.dirtied,
      };
    })
    .filter((d) => d.calls > 0 && !/pg_stat_|pg_database/.test(d.query))
    .sort((x, y) => y.ms - x.ms)
    .slice(0, 6);
  console.log('  pg_stat_statements over the phase, per refresh (top by execution time):');
  for (const d of deltas) {
    const per = (n: number) => (n / refreshes).toFixed(2);
    console.log(
      `    ${per(d.calls)} calls, ${(d.ms / d.calls).toFixed(3)} ms each, planned ${d.plans} times in all` +
        ` (${d.plans > 0 ? (d.planMs / d.plans).toFixed(3) : '0'} ms each), WAL ${per(d.walRecords)} records` +
        ` ${(d.walBytes / refreshes).toFixed(0)} B, blocks hit ${per(d.hit)} dirtied ${per(d.dirtied)}:` +
        ` ${d.query.replace(/\s+/g, ' ').slice(0, 110)}`,
    );
  }
}

/** The refresh body every target is driven with: `{ refresh_token }`, answered with the next one. */
async function driveRefreshes(
  url: string,
  meter: CpuMeter,
  tokens: string[],
  database: { url: string; adminUrl: string; name: string } | undefined,
) {
  const client = new Client(url, CONCURRENCY);
  try {
    const refreshOnce = async (refreshToken: string) => {
      const reply = await client.request(
        'POST',
        '/v1/sessions/refresh',
        { 'content-type': 'application/json' },
        { refresh_token: refreshToken },
      );
      if (reply.status !== 200) throw new Error(`refresh answered ${reply.status}: ${reply.body}`);
      return (JSON.parse(reply.body) as { refresh_token: string }).refresh_token;
    };
    // Warm-up, then one session in a row, then every session at once (each worker its own session).
    await measure(WARMUP, CONCURRENCY, async (w) => {
      tokens[w] = await refreshOnce(tokens[w]!);
    });
    const one = await measure(REFRESHES / 2, 1, async () => {
      tokens[0] = await refreshOnce(tokens[0]!);
    });
    const statsBefore = database ? await databaseStats(database.url) : undefined;
    const statementsBefore =
      STATEMENTS && database ? await statementsOf(database.adminUrl, database.name) : undefined;
    const waits = database ? sampleWaits(database.adminUrl, database.name) : undefined;
    const cpuBefore: CpuReading = await meter.read();
    const clientBefore = process.cpuUsage();
    const many = await measure(REFRESHES, CONCURRENCY, async (w) => {
      tokens[w] = await refreshOnce(tokens[w]!);
    });
    const clientUsed = process.cpuUsage(clientBefore);
    const cpu = {
      ...meter.perOp(cpuBefore, await meter.read(), REFRESHES),
      // This process: the HTTP client driving the refreshes, and the wait-event sampler.
      client: (clientUsed.user + clientUsed.system) / 1000 / REFRESHES,
    };
    const waited = await waits?.();
    if (statementsBefore && database) {
      printStatements(statementsBefore, await statementsOf(database.adminUrl, database.name), REFRESHES);
    }
    const statsAfter = database ? await databaseStats(database.url) : undefined;
    // Less the two transactions of reading the statistics themselves.
    const transactions =
      statsBefore && statsAfter
        ? (statsAfter.transactions - statsBefore.transactions - 2) / REFRESHES
        : Number.NaN;
    const writes =
      statsBefore && statsAfter ? writesPerRefresh(statsBefore, statsAfter, REFRESHES) : undefined;
    return { one, many, cpu, transactions, writes, waited };
  } finally {
    client.close();
  }
}

let profiles: string | undefined;
/** Where the servers' CPU profiles go (`--cpu-prof=1`): made once, printed. */
function profileDir(): string {
  if (!profiles) {
    profiles = mkdtempSync(path.join(tmpdir(), 'roster-refresh-prof-'));
    console.log(`  server CPU profiles: ${profiles}`);
  }
  return profiles;
}

async function refreshBench(
  env: Record<string, string>,
  database?: { url: string; adminUrl: string; name: string },
) {
  const secretKey = `rst_sk_bench_${'x'.repeat(40)}`;
  const server = await startRoster(
    {
      ...env,
      ROSTER_SECRET_KEY: secretKey,
      ROSTER_REFRESH_RATE_LIMIT: '1000000',
      ROSTER_REFRESH_SYNCHRONOUS_COMMIT: SYNCHRONOUS_COMMIT ? 'on' : 'off',
      DATABASE_POOL_SIZE: String(POOL),
    },
    [
      ...(arg('trace-gc', 0) ? ['--trace-gc'] : []),
      ...(arg('cpu-prof', 0) ? ['--cpu-prof', `--cpu-prof-dir=${profileDir()}`] : []),
    ],
  );
  const meter = await CpuMeter.open(server.process.pid!, database?.adminUrl, database?.name);
  try {
    const roster = createRoster({ baseUrl: server.url, secretKey });
    const org = await roster.organizations.create({ name: 'Bench' });
    const members = [];
    for (let i = 0; i < CONCURRENCY; i++) {
      members.push(
        await roster.organizations.addMember({ organizationId: org.id, email: `m${i}@bench.test` }),
      );
    }
    const created = await Promise.all(
      members.map((m) => roster.sessions.create({ user_id: m.user.id, organization_id: org.id })),
    );
    const sessionIds = created.map((c) => c.id);
    const measured = await driveRefreshes(
      server.url,
      meter,
      created.map((c) => c.refresh_token),
      database,
    );
    return { ...measured, sessionIds };
  } finally {
    await meter.close();
    await server.stop();
  }
}

/**
 * The machine's limit for the same work as a refresh, in one process as Roster's is: a bare
 * node:http server (refresh-stub.mjs, its own process) whose handler does one `UPDATE … RETURNING`
 * of a session row through pg and one ES256 signature, driven by the same client at the same
 * concurrency. Unlike the two component limits, its database and its signatures share the cores,
 * as Roster's do.
 */
async function sameWorkLimit(
  database: { url: string; adminUrl: string; name: string },
  sessionIds: string[],
  synchronousCommit: 'on' | 'off',
) {
  const child = spawn(
    process.execPath,
    [
      ...(arg('cpu-prof', 0) ? ['--cpu-prof', `--cpu-prof-dir=${profileDir()}`] : []),
      path.join(import.meta.dirname, 'refresh-stub.mjs'),
      database.url,
      String(POOL),
      synchronousCommit,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const found = /listening on (http:\/\/\S+)/.exec(out)?.[1];
        if (found) resolve(found);
      });
      child.once('exit', (code) => reject(new Error(`refresh stub exited with ${code}: ${out}`)));
    });
    const meter = await CpuMeter.open(child.pid!, database.adminUrl, database.name);
    try {
      return await driveRefreshes(url, meter, [...sessionIds], database);
    } finally {
      await meter.close();
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  }
}

const row = (name: string, m: Measured, extra = '') =>
  console.log(
    `  ${name.padEnd(52)}${m.perSecond.toFixed(0).padStart(7)} /s   p50 ${m.p50.toFixed(2).padStart(6)} ms   p99 ${m.p99.toFixed(2).padStart(6)} ms${extra}`,
  );

async function refreshes() {
  const sign = signLimit();
  console.log(
    `\nrefresh: ${REFRESHES} refreshes per phase, ${CONCURRENCY} sessions concurrently, pool of ${POOL}`,
  );
  console.log(`  component limit: ES256 signature, node:crypto, one core      ${sign.toFixed(0)} /s`);

  // --statements=1: a private cluster with pg_stat_statements preloaded.
  const cluster = STATEMENTS
    ? await PrivateCluster.create({
        shared_preload_libraries: 'pg_stat_statements',
        'pg_stat_statements.track': 'top',
        // Plans per call: a statement planned each time (custom plans) costs its planning too.
        'pg_stat_statements.track_planning': 'on',
        'pg_stat_statements.max': '5000',
      })
    : undefined;
  if (cluster) {
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query('create extension pg_stat_statements');
    await admin.end();
  }
  const adminUrl = cluster?.url ?? process.env.DATABASE_URL;
  if (adminUrl) {
    const database = await freshDatabase(adminUrl);
    const target = { url: database.url, adminUrl, name: database.name };
    try {
      const roster = await refreshBench({ DATABASE_URL: database.url }, target);
      const flushed = await sameWorkLimit(target, roster.sessionIds, 'on');
      const unflushed = await sameWorkLimit(target, roster.sessionIds, 'off');
      // The limit that commits as Roster's rotations did in this run.
      const stub = SYNCHRONOUS_COMMIT ? flushed : unflushed;
      const limit = await updateLimit(database.url, roster.sessionIds);
      const ratio = (limit: number) => `${(roster.many.perSecond / limit).toFixed(2)}x`;
      console.log(
        `PostgreSQL (Roster's rotations with ROSTER_REFRESH_SYNCHRONOUS_COMMIT=${SYNCHRONOUS_COMMIT ? 'on' : 'off'}):`,
      );
      row('component limit: UPDATE … RETURNING (flushed), 1 client', limit.one);
      row(`component limit: UPDATE … RETURNING (flushed), ${CONCURRENCY} clients`, limit.many);
      row('same-work limit, commit flushed: 1 session', flushed.one);
      row(`same-work limit, commit flushed: ${CONCURRENCY} sessions`, flushed.many);
      row('same-work limit, commit not waited for: 1 session', unflushed.one);
      row(`same-work limit, commit not waited for: ${CONCURRENCY} sessions`, unflushed.many);
      row(
        'roster refresh, 1 session',
        roster.one,
        `   ${(stub.one.p50 / roster.one.p50).toFixed(2)}x same-work limit (p50)`,
      );
      row(`roster refresh, ${CONCURRENCY} sessions`, roster.many, '   (aims: ≥ 1,000 /s, p99 < 50 ms)');
      console.log(
        `  roster / same-work limit committing alike ${ratio(stub.many.perSecond)} (aim ≥ 0.5x);` +
          ` roster / flushed same-work limit ${ratio(flushed.many.perSecond)};` +
          ` roster / UPDATE limit ${ratio(limit.many.perSecond)}; roster / signature limit ${ratio(sign)};` +
          ` roster / min of the components ${ratio(Math.min(limit.many.perSecond, sign))}`,
      );
      console.log(
        `  per refresh: server CPU ${roster.cpu.server.toFixed(3)} ms (same-work stub ${stub.cpu.server.toFixed(3)} ms),` +
          ` PostgreSQL CPU ${roster.cpu.postgres?.toFixed(3)} ms (stub ${stub.cpu.postgres?.toFixed(3)} ms),` +
          ` bench client CPU ${roster.cpu.client.toFixed(3)} ms (stub run ${stub.cpu.client.toFixed(3)} ms),` +
          ` database transactions ${roster.transactions.toFixed(2)}`,
      );
      console.log(`  rows written per refresh: ${roster.writes} (stub: ${stub.writes})`);
      console.log(`  wait events of the backends, roster: ${roster.waited}`);
      console.log(`  wait events of the backends, stub:   ${stub.waited}`);
    } finally {
      await database.drop();
      cluster?.destroy();
    }
  } else {
    console.log('PostgreSQL: skipped (set DATABASE_URL)');
  }

  if (!arg('pglite', 1)) return;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'roster-bench-sessions-'));
  try {
    const roster = await refreshBench({ ROSTER_DATA_DIR: dataDir });
    console.log('PGlite (embedded, one connection):');
    row('roster refresh, 1 session', roster.one);
    row(
      `roster refresh, ${CONCURRENCY} sessions`,
      roster.many,
      `   ${(roster.many.perSecond / sign).toFixed(2)}x signature limit`,
    );
    console.log(
      `  per refresh: server CPU ${roster.cpu.server.toFixed(3)} ms (database included: in-process)`,
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main() {
  // --verification=0 runs the refresh half alone.
  if (arg('verification', 1)) {
    await verification('ES256');
    await verification('EdDSA');
  }
  if (arg('refresh', 1)) await refreshes();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
