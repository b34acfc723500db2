/**
 * `npm run bench:history`: the cost of the directory as of a cursor. Provisions a directory of
 * `--users` (10,000) over SCIM, takes the feed head (A), applies "a day of changes" (`--changes`,
 * 1,000: title updates, deactivations, new users, deletions, and joins to a mapped group that
 * change roles), takes the head again (B), then measures, `--runs` times each:
 * snapshot(as_of=A), snapshot(as_of=B), snapshot(B, members=false), diff(A, B).
 * Server time is read from Server-Timing; wall time includes the transfer.
 *
 *   DATABASE_URL=postgres://… npm run bench:history -- --users=10000 --changes=1000 --runs=7
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { arg, Client, freshDatabase, phase, startRoster } from './lib.js';

const USERS = arg('users', 10_000);
const CHANGES = arg('changes', 1_000);
const RUNS = arg('runs', 7);
const CONCURRENCY = 16;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main(): Promise<void> {
  const adminUrl = process.env.DATABASE_URL;
  const scratch = adminUrl ? await freshDatabase(adminUrl) : undefined;
  const dataDir = adminUrl ? undefined : mkdtempSync(path.join(tmpdir(), 'roster-bench-'));
  const secretKey = `rst_sk_bench_${randomBytes(24).toString('base64url')}`;
  const server = await startRoster({
    ROSTER_SECRET_KEY: secretKey,
    ROSTER_SCIM_RATE_LIMIT: '1000000',
    ...(scratch ? { DATABASE_URL: scratch.url } : { ROSTER_DATA_DIR: dataDir! }),
  });
  const client = new Client(server.url, CONCURRENCY);
  const api = { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' };
  try {
    const org = JSON.parse((await client.request('POST', '/v1/organizations', api, { name: 'Bench' })).body);
    const conn = JSON.parse(
      (
        await client.request('POST', `/v1/organizations/${org.id}/connections`, api, {
          name: 'Okta',
          provider: 'okta',
        })
      ).body,
    );
    const base = new URL(conn.scim.base_url).pathname;
    const scim = { authorization: `Bearer ${conn.scim.token}` };
    await client.request('POST', '/v1/roles', api, { key: 'finance', name: 'Finance' });
    await client.request('PUT', `/v1/connections/${conn.id}/role_mappings`, api, {
      mappings: [{ group: 'Finance', role: 'finance' }],
    });
    const group = JSON.parse(
      (
        await client.request('POST', `${base}/Groups`, scim, {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
          displayName: 'Finance',
        })
      ).body,
    );

    const ids: string[] = [];
    const create = async (i: number) => {
      const reply = await client.request('POST', `${base}/Users`, scim, {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: `user${i}@bench.example`,
        name: { givenName: 'Bench', familyName: `User ${i}` },
        emails: [{ primary: true, value: `user${i}@bench.example`, type: 'work' }],
        active: true,
      });
      if (reply.status === 201) ids[i] = JSON.parse(reply.body).id;
      return reply.status === 201;
    };
    const provisioned = await phase('provision', USERS, CONCURRENCY, create);
    console.log(
      `provisioned ${USERS} users in ${provisioned.seconds.toFixed(1)} s (${provisioned.errors} errors)`,
    );

    /** The feed head once every write so far is numbered (the list's event_cursor). */
    const head = async () => {
      let last = '';
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        const list = JSON.parse(
          (await client.request('GET', `/v1/organizations/${org.id}/memberships?limit=1`, api)).body,
        );
        if (list.event_cursor === last) return last;
        last = list.event_cursor;
      }
    };
    const from = await head();

    const patch = (value: unknown, op = 'replace', p?: string) => ({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op, ...(p ? { path: p } : {}), value }],
    });
    let created = USERS;
    const day = await phase('a day of changes', CHANGES, CONCURRENCY, async (i) => {
      const user = ids[(i * 7919) % USERS]!;
      const kind = i % 20;
      const reply =
        kind < 12
          ? await client.request(
              'PATCH',
              `${base}/Users/${user}`,
              scim,
              patch(`Title ${i}`, 'replace', 'title'),
            )
          : kind < 15
            ? await client.request('PATCH', `${base}/Users/${user}`, scim, patch({ active: false }))
            : kind < 18
              ? { status: (await create(created++)) ? 200 : 500 }
              : kind < 19
                ? await client.request('DELETE', `${base}/Users/${user}`, scim)
                : await client.request(
                    'PATCH',
                    `${base}/Groups/${group.id}`,
                    scim,
                    patch([{ value: user }], 'add', 'members'),
                  );
      return reply.status < 300 || reply.status === 404;
    });
    console.log(`applied ${CHANGES} changes in ${day.seconds.toFixed(1)} s (${day.errors} errors)`);
    const to = await head();

    const measure = async (name: string, url: string) => {
      const timings: number[] = [];
      const wall: number[] = [];
      let bytes = 0;
      for (let run = 0; run < RUNS; run++) {
        const t0 = performance.now();
        const reply = await fetch(`${server.url}${url}`, { headers: api });
        const body = await reply.text();
        wall.push(performance.now() - t0);
        if (!reply.ok) throw new Error(`${name}: ${reply.status} ${body.slice(0, 200)}`);
        timings.push(
          Number(/dur=([\d.]+)/.exec(reply.headers.get('server-timing') ?? '')?.[1] ?? Number.NaN),
        );
        bytes = body.length;
      }
      console.log(
        [
          name,
          median(timings).toFixed(1),
          Math.max(...timings).toFixed(1),
          median(wall).toFixed(1),
          (bytes / 1024).toFixed(0),
        ]
          .map((c, i) => (i === 0 ? c.padEnd(34) : c.padStart(12)))
          .join(''),
      );
    };
    console.log(
      `\n${USERS} users, ${CHANGES} changes, ${RUNS} runs each (${adminUrl ? 'PostgreSQL' : 'PGlite'})\n` +
        ['operation', 'server p50 ms', 'server max', 'wall p50 ms', 'KiB']
          .map((c, i) => (i === 0 ? c.padEnd(34) : c.padStart(12)))
          .join(''),
    );
    await measure('snapshot(as_of=A)', `/v1/organizations/${org.id}/snapshot?as_of=${from}`);
    await measure('snapshot(as_of=B)', `/v1/organizations/${org.id}/snapshot?as_of=${to}`);
    await measure(
      'snapshot(as_of=B, members=false)',
      `/v1/organizations/${org.id}/snapshot?as_of=${to}&members=false`,
    );
    await measure('diff(A, B)', `/v1/organizations/${org.id}/diff?from=${from}&to=${to}`);
    await measure('memberships page of 100 (reference)', `/v1/organizations/${org.id}/memberships?limit=100`);
  } finally {
    client.close();
    await server.stop();
    await scratch?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
