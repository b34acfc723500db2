import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
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
 * per operation (an operation may be several requests, e.g. Okta's lookup + POST).
 */
export async function phase(
  name: string,
  count: number,
  concurrency: number,
  op: (i: number) => Promise<boolean>,
): Promise<PhaseResult> {
  if (process.env.BENCH_DEBUG) console.error(`phase ${name} (${count})`);
  const latencies: number[] = new Array(count);
  let next = 0;
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
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
  const sorted = latencies.filter((x) => x !== undefined).sort((a, b) => a - b);
  return {
    name,
    ops: count,
    seconds,
    opsPerSecond: count / seconds,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    errors,
  };
}

export function printTable(
  title: string,
  rows: { name: string; roster: PhaseResult; stub?: PhaseResult; aim?: string }[],
): void {
  const fmt = (n: number, digits = 1) => n.toFixed(digits);
  console.log(`\n${title}`);
  console.log(
    ['phase', 'ops', 'ops/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'stub ops/s', 'roster/stub', 'aim']
      .map((h) => h.padEnd(12))
      .join(''),
  );
  for (const { name, roster, stub, aim } of rows) {
    console.log(
      [
        name,
        String(roster.ops),
        fmt(roster.opsPerSecond, 0),
        fmt(roster.p50, 2),
        fmt(roster.p95, 2),
        fmt(roster.p99, 2),
        String(roster.errors),
        stub ? fmt(stub.opsPerSecond, 0) : '-',
        stub ? `${fmt((100 * roster.opsPerSecond) / stub.opsPerSecond, 1)} %` : '-',
        aim ?? '',
      ]
        .map((c) => c.padEnd(12))
        .join(''),
    );
  }
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
 * LOG_LEVEL=warn (no access log lines), and waits until /readyz answers.
 */
export async function startRoster(env: Record<string, string>): Promise<ChildServer> {
  const port = await freePort();
  // Through bin/roster-node, as `npm start` runs it (it sets the embedded database's process
  // settings), with this process's node first on the PATH.
  const nodeFirst = [path.dirname(process.execPath), process.env.PATH ?? ''].join(path.delimiter);
  const child = spawn('sh', ['bin/roster-node', 'dist/main.js'], {
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

function waitForUrl(child: ChildProcess, pattern: RegExp): Promise<ChildServer> {
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
export async function setUpRoster(url: string, secretKey: string, provider: string): Promise<Target> {
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
  return { url, base: new URL(conn.scim.base_url).pathname, token: conn.scim.token };
}
