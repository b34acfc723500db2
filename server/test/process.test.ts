import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Child, run, waitFor } from './child-server.js';
import { createTestDatabase, type TestDatabase } from './harness.js';

/**
 * `npm start` as a user runs it: the real entry point in a child process, configured only by the
 * environment. Against the embedded database by default, against a fresh PostgreSQL database when
 * DATABASE_URL is set.
 */

const listeningUrl = (child: Child) => /roster listening on (http:\/\/[^"\s]+)/.exec(child.stdout)?.[1];

describe('the server process', () => {
  let dataDir: string;
  let testDb: TestDatabase | undefined;
  let baseEnv: Record<string, string>;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'roster-process-'));
    baseEnv = { PORT: '0', ROSTER_DATA_DIR: dataDir };
    if (process.env.DATABASE_URL) {
      testDb = await createTestDatabase();
      await testDb.database.close();
      Object.assign(baseEnv, testDb.env);
    }
  });
  afterAll(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await testDb?.drop();
  });

  it('exits with code 1 and one line naming the variable on bad configuration', async () => {
    const child = run({ ...baseEnv, PORT: 'http' });
    expect(await child.exited).toBe(1);
    expect(child.stderr).toBe(
      'roster: invalid configuration: PORT must be a port number (got "http")\n' +
        'Fix or unset that variable and start again (the README lists every variable and its default).\n',
    );
    expect(child.stdout).toBe('');
  });

  it('boots, prints a generated key once, serves with it, and stops on SIGTERM', async () => {
    const first = run(baseEnv);
    const url = await waitFor(() => listeningUrl(first));
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);

    const key = /^\s+(rst_sk_[A-Za-z0-9_-]{43})$/m.exec(first.stderr)?.[1];
    expect(key).toBeDefined();
    // The start-up banner names the URLs that matter.
    expect(first.stderr).toContain(`API reference     ${url}/docs`);
    expect(first.stderr).toContain(`management API    ${url}/v1`);
    // Structured logs: every stdout line is a JSON object.
    for (const line of first.stdout.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    // Started as plain node (not through bin/roster-node), the embedded database gets a warning.
    const warned = first.stdout.includes('started without server/bin/roster-node');
    expect(warned).toBe(!process.env.DATABASE_URL);

    const org = await fetch(`${url}/v1/organizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Acme' }),
    });
    expect(org.status).toBe(201);
    const orgId = ((await org.json()) as { id: string }).id;
    const conn = await fetch(`${url}/v1/organizations/${orgId}/connections`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Okta', provider: 'okta' }),
    });
    expect(conn.status).toBe(201);
    const body = (await conn.json()) as { scim: { base_url: string; token: string } };
    expect(body.scim.base_url).toBe(`${url}/scim/v2/${(body as unknown as { id: string }).id}`);
    expect(body.scim.token).toMatch(/^rst_scim_/);

    // Request logs carry the request id.
    await waitFor(() => (first.stdout.includes('"request_id"') ? true : undefined));
    expect(first.stdout).not.toContain(key!);

    first.process.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.stdout).toContain('"msg":"stopped"');

    // Second boot on the same data: no new key, the first one still works.
    const second = run(baseEnv);
    const url2 = await waitFor(() => listeningUrl(second));
    expect(second.stderr).not.toContain('rst_sk_');
    // ...but it says how to get in without it.
    expect(second.stderr).toContain('Lost it? Start with');
    const list = await fetch(`${url2}/v1/organizations`, { headers: { authorization: `Bearer ${key}` } });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { data: unknown[] }).data).toHaveLength(1);
    second.process.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('uses ROSTER_SECRET_KEY as the only key when set', async () => {
    const key = 'rst_sk_operator_chosen_key_0123456789abcdef';
    const child = run({
      ...baseEnv,
      ROSTER_SECRET_KEY: key,
      ROSTER_PUBLIC_URL: 'https://roster.example.com',
    });
    const url = await waitFor(() => listeningUrl(child));
    expect(child.stderr).not.toContain('rst_sk_');
    expect(
      (await fetch(`${url}/v1/organizations`, { headers: { authorization: `Bearer ${key}` } })).status,
    ).toBe(200);
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });

  it.runIf(!process.env.DATABASE_URL)(
    'refuses to share the embedded database with another process',
    async () => {
      const holder = run(baseEnv);
      await waitFor(() => listeningUrl(holder));
      const second = run(baseEnv);
      expect(await second.exited).toBe(1);
      expect(second.stderr).toMatch(
        /^roster: cannot open the database: another Roster process \(pid \d+\) is using /,
      );
      holder.process.kill('SIGTERM');
      expect(await holder.exited).toBe(0);
    },
  );

  it('keeps every acknowledged write when the process is killed (SIGKILL) right after', async () => {
    const key = 'rst_sk_durability_test_key_0123456789abcdef';
    const otherDir = mkdtempSync(path.join(tmpdir(), 'roster-process-'));
    const env = { ...baseEnv, ROSTER_DATA_DIR: otherDir, ROSTER_SECRET_KEY: key };
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    try {
      const first = run(env);
      const url = await waitFor(() => listeningUrl(first));
      const created = await fetch(`${url}/v1/organizations`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ name: 'Durable' }),
      });
      expect(created.status).toBe(201);
      const orgId = ((await created.json()) as { id: string }).id;
      // Writes in flight when the kill comes: every one answered 201 before it must be there after.
      const acknowledged: string[] = [];
      const writes = Array.from({ length: 20 }, async (_, i) => {
        const response = await fetch(`${url}/v1/organizations/${orgId}/connections`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ name: `Conn ${i}`, provider: 'generic' }),
        }).catch(() => undefined);
        if (response?.status === 201) {
          acknowledged.push(((await response.json()) as { id: string }).id);
          if (acknowledged.length === 10) first.process.kill('SIGKILL');
        }
      });
      await Promise.all(writes);
      expect(await first.exited).toBe(null);
      expect(acknowledged.length).toBeGreaterThanOrEqual(10);

      const second = run(env);
      const url2 = await waitFor(() => listeningUrl(second));
      const list = await fetch(`${url2}/v1/organizations/${orgId}/connections?limit=100`, { headers });
      expect(list.status).toBe(200);
      const ids = ((await list.json()) as { data: { id: string }[] }).data.map((c) => c.id);
      expect(ids).toEqual(expect.arrayContaining(acknowledged));
      second.process.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('answers every request while it starts: 503 with Retry-After until ready, never a hung connection', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const otherDir = mkdtempSync(path.join(tmpdir(), 'roster-process-'));
    const child = run({ ...baseEnv, PORT: String(port), ROSTER_DATA_DIR: otherDir });
    const statuses: number[] = [];
    try {
      // Poll as fast as a load balancer or a test harness might, from before the socket is bound
      // until the server says it is ready. A request accepted before the application is wired up
      // must still be answered; the timeout turns a hung connection into a failure.
      for (;;) {
        let response: Response;
        try {
          response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5000) });
        } catch (error) {
          if ((error as Error).name === 'TimeoutError') throw new Error('a request during start-up hung');
          await new Promise((resolve) => setTimeout(resolve, 2));
          continue; // not listening yet
        }
        statuses.push(response.status);
        if (response.status === 503) {
          expect(response.headers.get('retry-after')).toBe('1');
          const body = (await response.json()) as { error: { code: string; request_id: string } };
          expect(body.error.code).toBe('service_unavailable');
          expect(body.error.request_id).toMatch(/^req_/);
        } else {
          expect(response.status).toBe(200);
          break;
        }
      }
      expect(statuses.at(-1)).toBe(200);
      expect(statuses.every((s) => s === 503 || s === 200)).toBe(true);
    } finally {
      child.process.kill('SIGTERM');
      await child.exited;
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('exits with one clear line when the port is taken', async () => {
    const holder = run(baseEnv);
    const url = await waitFor(() => listeningUrl(holder));
    const port = new URL(url).port;
    const otherDir = mkdtempSync(path.join(tmpdir(), 'roster-process-'));
    try {
      const clash = run({ ...baseEnv, PORT: port, ROSTER_DATA_DIR: otherDir });
      expect(await clash.exited).toBe(1);
      expect(clash.stderr).toBe(
        `roster: cannot listen on 127.0.0.1:${port}: address already in use. Another program (maybe another Roster) listens there: stop it, or start on another port, e.g. PORT=${Number(port) + 1} npm start (PORT=0 picks a free one).\n`,
      );
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
    holder.process.kill('SIGTERM');
    await holder.exited;
  });

  it('a first start that cannot listen stores no key: the next start prints one that works', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const otherDir = mkdtempSync(path.join(tmpdir(), 'roster-process-'));
    let dbEnv: Record<string, string> = {};
    let otherDb: TestDatabase | undefined;
    if (process.env.DATABASE_URL) {
      otherDb = await createTestDatabase();
      await otherDb.database.close();
      dbEnv = { DATABASE_URL: otherDb.url! };
    }
    try {
      const failed = run({ ...baseEnv, ...dbEnv, PORT: String(port), ROSTER_DATA_DIR: otherDir });
      expect(await failed.exited).toBe(1);
      expect(failed.stderr).toContain('address already in use');
      expect(failed.stderr).not.toContain('rst_sk_');
      await new Promise<void>((resolve) => blocker.close(() => resolve()));

      const next = run({ ...baseEnv, ...dbEnv, PORT: String(port), ROSTER_DATA_DIR: otherDir });
      const url = await waitFor(() => listeningUrl(next));
      const key = /^\s+(rst_sk_[A-Za-z0-9_-]{43})$/m.exec(next.stderr)?.[1];
      expect(key).toBeDefined();
      const list = await fetch(`${url}/v1/organizations`, { headers: { authorization: `Bearer ${key}` } });
      expect(list.status).toBe(200);
      next.process.kill('SIGTERM');
      expect(await next.exited).toBe(0);
    } finally {
      blocker.close();
      rmSync(otherDir, { recursive: true, force: true });
      await otherDb?.drop();
    }
  });
});
