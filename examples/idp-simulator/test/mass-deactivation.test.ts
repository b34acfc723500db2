import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../server/test/harness.js';
import { Simulator } from '../src/commands.js';
import { makeCompany } from '../src/directory.js';
import { profileNamed } from '../src/profiles.js';
import { ScimClient } from '../src/scim-client.js';

/**
 * The deprovisioning guard's scenario, played by the simulator against a real Roster (PGlite, or
 * PostgreSQL when DATABASE_URL is set): a mistaken mass deactivation stops at the limit with
 * nothing lost and nothing half-applied, and a release lets the simulator's retries through.
 */

const run = promisify(execFile);
const bin = path.resolve(import.meta.dirname, '../bin/roster-idp-simulator.mjs');

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { ROSTER_SCIM_RATE_LIMIT: '100000' } });
});
afterAll(async () => {
  await server?.close();
});

interface Connection {
  id: string;
  organizationId: string;
  baseUrl: string;
  token: string;
}

async function connect(provider: 'okta' | 'entra'): Promise<Connection> {
  const org = await server.api('POST', '/v1/organizations', { body: { name: `Org ${Math.random()}` } });
  const conn = await server.api('POST', `/v1/organizations/${org.body.id}/connections`, {
    body: { name: provider, provider },
  });
  expect(conn.status, conn.text).toBe(201);
  return {
    id: conn.body.id,
    organizationId: org.body.id,
    baseUrl: conn.body.scim.base_url,
    token: conn.body.scim.token,
  };
}

async function enableGuard(conn: Connection, guard: Record<string, unknown>): Promise<void> {
  const patched = await server.api('PATCH', `/v1/connections/${conn.id}`, {
    body: { deprovision_guard: { enabled: true, window: '1h', ...guard } },
  });
  expect(patched.status, patched.text).toBe(200);
}

async function release(conn: Connection, window?: string): Promise<void> {
  const released = await server.api('POST', `/v1/connections/${conn.id}/deprovision_guard/release`, {
    body: window ? { window } : {},
  });
  expect(released.status, released.text).toBe(200);
  expect(released.body.state).toBe('active');
}

const connectionState = async (conn: Connection) =>
  (await server.api('GET', `/v1/connections/${conn.id}`)).body.state as string;

/** Every member as the management API lists it: user status and membership status, by email. */
async function members(conn: Connection) {
  const byEmail = new Map<string, { status: string; active: boolean }>();
  let cursor: string | undefined;
  do {
    const page = await server.api(
      'GET',
      `/v1/organizations/${conn.organizationId}/memberships?limit=100${cursor ? `&after=${cursor}` : ''}`,
    );
    expect(page.status, page.text).toBe(200);
    for (const m of page.body.data) {
      byEmail.set(m.user.email, { status: m.status, active: m.user.active });
    }
    cursor = page.body.next_cursor ?? undefined;
  } while (cursor);
  return byEmail;
}

/** The emails of inactive members, after checking that no member is half-deactivated. */
async function inactive(conn: Connection): Promise<Set<string>> {
  const all = await members(conn);
  for (const [email, m] of all) {
    // A deactivation is the user and its membership together, or neither.
    expect(m.active, email).toBe(m.status === 'active');
  }
  return new Set([...all].filter(([, m]) => m.status === 'inactive').map(([email]) => email));
}

async function events(type: string, organizationId: string) {
  await server.sequencer.flush();
  const page = await server.api(
    'GET',
    `/v1/events?types=${type}&organization_id=${organizationId}&limit=1000`,
  );
  expect(page.status, page.text).toBe(200);
  return page.body.data as { data: Record<string, unknown> }[];
}

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a mistaken mass deactivation, played by the IdP simulator', () => {
  it('300 of 1,000 users: stops at the limit with nothing lost or half-applied; after a release the retries go through', async () => {
    const conn = await connect('okta');
    const seeding = new ScimClient({ baseUrl: conn.baseUrl, token: conn.token });
    await new Simulator(seeding, profileNamed('okta'), { concurrency: 8 }).seed({ users: 1000, groups: 4 });
    await enableGuard(conn, { max_in_window: 50, max_percent: 10 });

    // Okta honours Retry-After: this client waits what the server asks, here until the admin's
    // release (the test stands in for the clock), and then retries the held request.
    const waits: number[] = [];
    let released!: () => void;
    const releasedNow = new Promise<void>((resolve) => {
      released = resolve;
    });
    const concurrency = 8;
    const scim = new ScimClient({
      baseUrl: conn.baseUrl,
      token: conn.token,
      maxRetryAfterMs: 600_000,
      sleep: async (ms) => {
        waits.push(ms);
        await releasedNow;
      },
    });
    const sim = new Simulator(scim, profileNamed('okta'), { concurrency });
    const mistake = sim.deactivateMany({ users: 300 });
    const victims = makeCompany({ users: 300, groups: 0, seed: 1, domain: 'acme.example' }).users.map(
      (u) => u.userName,
    );

    // Every worker of the IdP is waiting on a held request: the directory stands still.
    await until(async () => waits.length === concurrency, 'every simulator worker to be held');
    expect(await connectionState(conn)).toBe('deprovisioning_held');
    expect(waits).toEqual(Array(concurrency).fill(300_000));
    expect(scim.stats.count(503)).toBe(concurrency);
    expect(scim.stats.count(200)).toBeGreaterThanOrEqual(50); // lookups and the 50 deactivations
    const stopped = await inactive(conn);
    expect(stopped.size).toBe(50);
    for (const email of stopped) expect(victims).toContain(email);
    const deactivated = await events('user.deactivated', conn.organizationId);
    expect(deactivated).toHaveLength(50);
    const held = await events('connection.deprovisioning_held', conn.organizationId);
    expect(held).toHaveLength(1);
    expect(held[0]!.data).toMatchObject({
      counts: { in_window: 50, limit: 50, window: '1h', population: 1000 },
    });
    const applied = new Set((held[0]!.data.applied as { user_name: string }[]).map((a) => a.user_name));
    expect(applied).toEqual(stopped);

    // The admin checks `applied`, decides the change was meant, and releases for a window.
    await release(conn, '1h');
    released();
    expect(await mistake).toBe(300);
    expect(scim.stats.retries).toBe(scim.stats.count(503)); // every held request was retried once
    const after = await inactive(conn);
    expect(after).toEqual(new Set(victims));
    for (const email of stopped) expect(after).toContain(email); // nothing applied before was lost
    expect((await members(conn)).size).toBe(1000);
    expect(await events('user.deactivated', conn.organizationId)).toHaveLength(300);
    expect(await connectionState(conn)).toBe('active');
  }, 600_000);

  it('the CLI: a held run stops with exit 1; a release restarts the count, a release for a window lets the rerun through', async () => {
    const conn = await connect('entra');
    const seeding = new ScimClient({ baseUrl: conn.baseUrl, token: conn.token });
    await new Simulator(seeding, profileNamed('entra'), { concurrency: 8 }).seed({ users: 60, groups: 2 });
    await enableGuard(conn, { max_in_window: 10 });
    const env = { ...process.env, ROSTER_SCIM_URL: conn.baseUrl, ROSTER_SCIM_TOKEN: conn.token };
    const args = [bin, 'mass-deactivate', '--users', '30', '--profile', 'entra', '--concurrency', '1'];

    const first = await run(process.execPath, args, { env }).catch((error) => error);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('deactivated 10 of 30 before this: the server refused PATCH /Users/');
    expect(first.stderr).toContain('Retry-After asked for 300 s');
    expect(first.stderr).toContain('release');
    expect(first.stdout).toMatch(/PATCH \/Users +11 +200×10 503×1 +0 /);
    expect((await inactive(conn)).size).toBe(10);
    expect(await connectionState(conn)).toBe('deprovisioning_held');

    // Released without a window: the count restarts, the next 10 pass, the guard trips again.
    await release(conn);
    const second = await run(process.execPath, args, { env }).catch((error) => error);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('deactivated 20 of 30 before this');
    expect((await inactive(conn)).size).toBe(20);
    expect(await connectionState(conn)).toBe('deprovisioning_held');

    await release(conn, '1h');
    const third = await run(process.execPath, args, { env });
    expect(third.stdout).toContain('deactivated 30 users');
    const victims = makeCompany({ users: 30, groups: 0, seed: 1, domain: 'acme.example' }).users;
    expect(await inactive(conn)).toEqual(new Set(victims.map((u) => u.email)));
    expect(await connectionState(conn)).toBe('active');
  }, 300_000);
});
