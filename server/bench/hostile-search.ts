/**
 * `npx tsx bench/hostile-search.ts`: what one hostile SCIM request costs everyone else.
 *
 * Starts the server in this process (in-memory PGlite, or a scratch PostgreSQL database when
 * DATABASE_URL is set), provisions `--users` users (37), then sends one ~1 MB
 * `POST /Users/.search` whose `attributes` lists `--selectors` paths (500,000) while a separate
 * process polls `GET /healthz` every 10 ms. Reported, per run (`--runs`, 5; median last):
 * - the hostile request's status and round-trip time;
 * - event-loop active time of the server process during it (performance.eventLoopUtilization);
 * - the worst /healthz latency seen while it ran.
 * Figures are printed, never asserted (the machines are shared and noisy).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import { createTestDatabase } from '../test/harness.js';
import { arg, Client } from './lib.js';

const USERS = arg('users', 37);
const SELECTORS = arg('selectors', 500_000);
const RUNS = arg('runs', 5);
/** `--distinct=1`: selectors a0,a1,… instead of one path repeated. */
const DISTINCT = arg('distinct', 0) === 1;

/** Polls /healthz from another process (its own event loop), reporting the worst latency on stdin EOF. */
const POLLER = `
let worst = 0, count = 0, stop = false;
process.stdin.on('data', () => { stop = true; });
(async () => {
  while (!stop) {
    const t0 = performance.now();
    await fetch(process.argv[1] + '/healthz').then((r) => r.text());
    worst = Math.max(worst, performance.now() - t0); count++;
    await new Promise((r) => setTimeout(r, 10));
  }
  process.stdout.write(JSON.stringify({ worst, count }));
})();
`;

function startPoller(url: string): {
  child: ChildProcess;
  result: () => Promise<{ worst: number; count: number }>;
} {
  const child = spawn(process.execPath, ['-e', POLLER, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return {
    child,
    result: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve(JSON.parse(out)));
        child.stdin!.end('stop');
      }),
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main() {
  const testDb = await createTestDatabase();
  const secretKey = 'rst_sk_bench_hostile_search_0123456789abcdef';
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    ROSTER_SECRET_KEY: secretKey,
    LOG_LEVEL: 'warn',
  });
  const server = await startServer(config, { database: testDb.database, log: createLogger('warn') });
  const client = new Client(server.url, 4);
  try {
    const admin = { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' };
    const org = JSON.parse(
      (await client.request('POST', '/v1/organizations', admin, { name: 'Bench' })).body,
    );
    const conn = JSON.parse(
      (
        await client.request('POST', `/v1/organizations/${org.id}/connections`, admin, {
          name: 'bench',
          provider: 'okta',
        })
      ).body,
    );
    const base = new URL(conn.scim.base_url).pathname;
    const scim = { authorization: `Bearer ${conn.scim.token}` };
    for (let i = 0; i < USERS; i++) {
      const reply = await client.request('POST', `${base}/Users`, scim, {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: `user${i}@bench.test`,
        name: { givenName: 'Bench', familyName: `User ${i}` },
        emails: [{ value: `user${i}@bench.test`, type: 'work', primary: true }],
        active: true,
      });
      if (reply.status !== 201) throw new Error(`provisioning failed: ${reply.status} ${reply.body}`);
    }
    // "a,a,a,…": two bytes a selector, so 500,000 of them fill the default 1 MB body limit.
    const body = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      attributes: DISTINCT
        ? Array.from({ length: SELECTORS }, (_, i) => `a${i}`).join(',')
        : 'a,'.repeat(SELECTORS).slice(0, -1),
    };
    console.log(
      `hostile POST ${base}/Users/.search: ${SELECTORS} selectors, ${JSON.stringify(body).length} bytes, ${USERS} users, ${server.database.kind}`,
    );
    const rows: { status: number; rtt: number; active: number; healthz: number }[] = [];
    for (let run = 0; run < RUNS; run++) {
      const poller = startPoller(server.url);
      await new Promise((resolve) => setTimeout(resolve, 300)); // let the poller warm up
      const elu0 = performance.eventLoopUtilization();
      const t0 = performance.now();
      const reply = await client.request('POST', `${base}/Users/.search`, scim, body);
      const rtt = performance.now() - t0;
      const elu = performance.eventLoopUtilization(elu0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const { worst } = await poller.result();
      rows.push({ status: reply.status, rtt, active: elu.active, healthz: worst });
      console.log(
        `run ${run + 1}: status ${reply.status}, round trip ${rtt.toFixed(1)} ms, event-loop active ${elu.active.toFixed(1)} ms, worst /healthz ${worst.toFixed(1)} ms`,
      );
    }
    console.log(
      `median: round trip ${median(rows.map((r) => r.rtt)).toFixed(1)} ms, event-loop active ${median(rows.map((r) => r.active)).toFixed(1)} ms, worst /healthz ${median(rows.map((r) => r.healthz)).toFixed(1)} ms`,
    );
  } finally {
    client.close();
    await server.close();
    await testDb.drop();
  }
}

await main();
