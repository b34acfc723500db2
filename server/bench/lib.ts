import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createScratchDatabase, type ScratchDatabase } from '../test/scratch-database.js';

/** Shared benchmark plumbing: a keep-alive HTTP client, latency statistics, servers in child processes. */

export interface Reply {
  status: number;
  body: string;
}

export class Client {
  readonly #agent: http.Agent;
  readonly #host: string;
  readonly #port: number;

  constructor(baseUrl: string, concurrency: number) {
    const url = new URL(baseUrl);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  }

  request(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.#host,
          port: this.#port,
          method,
          path,
          agent: this.#agent,
          headers:
            payload === undefined
              ? headers
              : {
                  ...headers,
                  'content-type': 'application/scim+json',
                  'content-length': Buffer.byteLength(payload),
                },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

export interface PhaseResult {
  name: string;
  ops: number;
  seconds: number;
  opsPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Runs `count` operations with `concurrency` workers; `op(i)` returns true on success. Latency is
 * per operation (an operation may be several requests, e.g. Okta's lookup + POST). With
 * `maxSeconds`, no operation starts after that time: `ops` is then the number that ran (0 … ops-1).
 */
export async function phase(
  name: string,
  count: number,
  concurrency: number,
  op: (i: number) => Promise<boolean>,
  maxSeconds = Number.POSITIVE_INFINITY,
): Promise<PhaseResult> {
  if (process.env.BENCH_DEBUG) console.error(`phase ${name} (${count})`);
  const latencies: number[] = new Array(count);
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        if (performance.now() >= deadline) return;
        const i = next++;
        if (i >= count) return;
        const t0 = performance.now();
        const ok = await op(i).catch(() => false);
        latencies[i] = performance.now() - t0;
        if (!ok) errors++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const ran = Math.min(next, count);
  const sorted = latencies.filter((x) => x !== undefined).sort((a, b) => a - b);
  return {
    name,
    ops: ran,
    seconds,
    opsPerSecond: ran / seconds,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    errors,
  };
}

export interface ChildServer {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

const serverDir = path.resolve(import.meta.dirname, '..');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts the built server (dist/main.js) in its own process, as `npm start` runs it, with
 * LOG_LEVEL=warn (no access log lines), and waits until /readyz answers. `nodeArgs` go to node
 * (e.g. `--cpu-prof`).
 */
export async function startRoster(
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<ChildServer> {
  const port = await freePort();
  // Through bin/roster-node, as `npm start` runs it (it sets the embedded database's process
  // settings), with this process's node first on the PATH. BENCH_SERVER: another build's main.js
  // (e.g. of the base branch), for before/after figures.
  const nodeFirst = [path.dirname(process.execPath), process.env.PATH ?? ''].join(path.delimiter);
  const main = process.env.BENCH_SERVER ?? 'dist/main.js';
  const child = spawn('sh', ['bin/roster-node', ...nodeArgs, main], {
    cwd: serverDir,
    env: { PATH: nodeFirst, PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`roster exited with ${code}`))),
  );
  for (;;) {
    const ready = await Promise.race([
      fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      ),
      exited,
    ]);
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, process: child, stop: () => stopChild(child) };
}

/** SIGTERM and wait for the exit (at once if the process already ended, e.g. SIGKILLed). */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}

/** A bare node:http server answering every request with a canned SCIM-shaped body: no work at all. */
export async function startStub(): Promise<ChildServer> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'stub.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return waitForUrl(child, /stub listening on (http:\/\/\S+)/);
}

/**
 * The "pg stub" (stub-pg.mjs): one statement of PostgreSQL work per request through `pg` with
 * Roster's default pool size, on `env.DATABASE_URL`, or on an embedded PGlite in `env.PGLITE_DIR`.
 */
export async function startPgStub(env: Record<string, string>): Promise<ChildServer> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'stub-pg.mjs')], {
    cwd: serverDir,
    env: { PATH: process.env.PATH ?? '', POOL_SIZE: '10', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return waitForUrl(child, /pg stub listening on (http:\/\/\S+)/);
}

export function waitForUrl(child: ChildProcess, pattern: RegExp): Promise<ChildServer> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const url = pattern.exec(out)?.[1];
      if (url) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve({ url, process: child, stop: () => stopChild(child) });
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening:\n${out}`)));
  });
}

/** A fresh PostgreSQL database for one benchmark run (dropped by the returned function). */
export async function freshDatabase(adminUrl: string): Promise<ScratchDatabase> {
  return createScratchDatabase(adminUrl, 'roster_bench');
}

export function arg(name: string, fallback: number): number {
  const match = process.argv.find((a) => a.startsWith(`--${name}=`));
  return match ? Number(match.split('=')[1]) : fallback;
}

/** A SCIM connection to benchmark against: the server, its SCIM base path and bearer token. */
export interface Target {
  url: string;
  base: string;
  token: string;
}

/** Creates an organization and a SCIM connection of `provider` through /v1 with the secret key. */
export async function setUpRoster(
  url: string,
  secretKey: string,
  provider: string,
): Promise<Target & { connectionId: string }> {
  const client = new Client(url, 1);
  const headers = { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' };
  const org = JSON.parse(
    (await client.request('POST', '/v1/organizations', headers, { name: 'Bench Org' })).body,
  );
  const conn = JSON.parse(
    (
      await client.request('POST', `/v1/organizations/${org.id}/connections`, headers, {
        name: 'Bench',
        provider,
      })
    ).body,
  );
  client.close();
  return { url, base: new URL(conn.scim.base_url).pathname, token: conn.scim.token, connectionId: conn.id };
}

const TICK_MS = 1000 / 100; // CLK_TCK is 100 on Linux

/** CPU ms (user + system) of a process, from /proc/<pid>/stat; 0 once it has ended. */
export async function cpuOf(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/**
 * CPU ms of a process and of its children (a PostgreSQL postmaster's backends, walwriter, …; a
 * server's workers), by pid, so that a child that ends between two readings does not count negative.
 */
export async function processTreeCpu(root: number): Promise<Map<number, number>> {
  const cpu = new Map([[root, await cpuOf(root)]]);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === root) cpu.set(Number(entry), await cpuOf(Number(entry)));
    } catch {
      // the process ended
    }
  }
  return cpu;
}

/** CPU ms spent between two readings by the processes alive at the second. */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

/** CPU ms of one process tree and of the PostgreSQL backends serving one database, per phase. */
export interface CpuReading {
  server: Map<number, number>;
  postgres: Map<number, number>;
}

export class CpuMeter {
  readonly #serverPid: number;
  readonly #admin: pg.Client | undefined;
  readonly #database: string | undefined;

  /**
   * @param admin a connection to another database of the same server (not counted), to read
   * pg_stat_activity; absent when the database is embedded in the server process.
   */
  private constructor(serverPid: number, admin?: pg.Client, database?: string) {
    this.#serverPid = serverPid;
    this.#admin = admin;
    this.#database = database;
  }

  static async open(serverPid: number, adminUrl?: string, database?: string): Promise<CpuMeter> {
    if (!adminUrl || !database) return new CpuMeter(serverPid);
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    return new CpuMeter(serverPid, admin, database);
  }

  async read(): Promise<CpuReading> {
    const postgres = new Map<number, number>();
    if (this.#admin) {
      const { rows } = await this.#admin.query<{ pid: number }>(
        'select pid from pg_stat_activity where datname = $1',
        [this.#database],
      );
      for (const { pid } of rows) postgres.set(pid, await cpuOf(pid));
    }
    return { server: await processTreeCpu(this.#serverPid), postgres };
  }

  /** CPU ms per op between two readings: the server's, and PostgreSQL's (undefined if embedded). */
  perOp(before: CpuReading, after: CpuReading, ops: number): { server: number; postgres?: number } {
    return {
      server: cpuBetween(before.server, after.server) / ops,
      postgres: this.#admin ? cpuBetween(before.postgres, after.postgres) / ops : undefined,
    };
  }

  async close(): Promise<void> {
    await this.#admin?.end();
  }
}

/** `${XDG_CACHE_HOME:-~/.cache}/roster-bench/<name>`: bench downloads live outside the workspaces. */
export function benchCacheDir(name: string): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'roster-bench', name);
}

export function stringArg(name: string, fallback: string): string {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
}
