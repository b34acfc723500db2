import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../server/test/harness.js';
import { Simulator } from '../src/commands.js';
import { makeCompany } from '../src/directory.js';
import { PROFILE_NAMES, type ProfileName, profileNamed } from '../src/profiles.js';
import { parseRetryAfter, ScimClient } from '../src/scim-client.js';

/** The simulator against a real Roster (PGlite, or PostgreSQL when DATABASE_URL is set). */

const run = promisify(execFile);
const bin = path.resolve(import.meta.dirname, '../bin/roster-idp-simulator.mjs');

interface Connection {
  organizationId: string;
  baseUrl: string;
  token: string;
}

async function connect(server: TestServer, provider: string): Promise<Connection> {
  const org = await server.api('POST', '/v1/organizations', { body: { name: `Org ${Math.random()}` } });
  const conn = await server.api('POST', `/v1/organizations/${org.body.id}/connections`, {
    body: { name: provider, provider: provider === 'okta' ? 'okta' : 'entra' },
  });
  expect(conn.status).toBe(201);
  return { organizationId: org.body.id, baseUrl: conn.body.scim.base_url, token: conn.body.scim.token };
}

const simulatorFor = (conn: Connection, profile: ProfileName, concurrency = 4) => {
  const scim = new ScimClient({ baseUrl: conn.baseUrl, token: conn.token });
  return { scim, sim: new Simulator(scim, profileNamed(profile), { concurrency }) };
};

/** Members of the organization by email, with status and role (the management API's view). */
async function members(server: TestServer, conn: Connection) {
  const byEmail = new Map<string, { status: string; role: string }>();
  let cursor: string | undefined;
  do {
    const page = await server.api(
      'GET',
      `/v1/organizations/${conn.organizationId}/memberships?limit=100${cursor ? `&after=${cursor}` : ''}`,
    );
    expect(page.status).toBe(200);
    for (const m of page.body.data) byEmail.set(m.user.email, { status: m.status, role: m.role });
    cursor = page.body.next_cursor ?? undefined;
  } while (cursor);
  return byEmail;
}

async function groupMembers(scim: ScimClient, displayName: string): Promise<string[]> {
  const list = await scim.request(
    'GET',
    `/Groups?filter=${encodeURIComponent(`displayName eq "${displayName}"`)}&attributes=members,displayName`,
  );
  const group = list.Resources[0];
  if (!group) return [];
  const full = await scim.request('GET', `/Groups/${group.id}`);
  return ((full.members ?? []) as { value: string }[]).map((m) => m.value).sort();
}

describe('the IdP simulator against a real Roster', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  for (const profile of PROFILE_NAMES) {
    it(`${profile}: seed, deactivate, reactivate, move, rename-group; seed again updates`, async () => {
      const conn = await connect(server, profile);
      const { scim, sim } = simulatorFor(conn, profile);
      const company = makeCompany({ users: 14, groups: 4, seed: 7, domain: 'acme.example' });

      expect(await sim.seed({ users: 14, groups: 4, seed: 7 })).toEqual({
        created: 14,
        updated: 0,
        groups: 4,
      });
      let seen = await members(server, conn);
      expect([...seen.keys()].sort()).toEqual(company.users.map((u) => u.email).sort());
      expect([...seen.values()].every((m) => m.status === 'active')).toBe(true);
      const finance = company.groups.get('Finance')!;
      expect((await groupMembers(scim, 'Finance')).length).toBe(finance.length);

      // Managers were written in the second pass.
      const someone = company.users.find((u) => u.managerUserName)!;
      const found = await scim.request(
        'GET',
        `/Users?filter=${encodeURIComponent(`userName eq "${someone.userName}"`)}`,
      );
      const manager = await scim.request(
        'GET',
        `/Users?filter=${encodeURIComponent(`userName eq "${someone.managerUserName}"`)}`,
      );
      const enterprise = found.Resources[0]['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'];
      expect(enterprise.manager.value).toBe(manager.Resources[0].id);
      expect(enterprise.department).toBe(someone.department);

      const target = company.users[3]!.userName;
      await sim.setActive(target, false);
      seen = await members(server, conn);
      expect(seen.get(target)!.status).toBe('inactive');
      await sim.setActive(target, true);
      expect((await members(server, conn)).get(target)!.status).toBe('active');

      const mover = company.users.find((u) => u.department === 'Engineering' && u.managerUserName)!;
      const moverId = (
        await scim.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${mover.userName}"`)}`)
      ).Resources[0].id;
      await sim.move(mover.userName, 'Finance');
      expect(await groupMembers(scim, 'Finance')).toContain(moverId);
      expect(await groupMembers(scim, 'Engineering')).not.toContain(moverId);

      await sim.renameGroup('Sales', 'Sales EMEA');
      expect(await groupMembers(scim, 'Sales')).toEqual([]);
      expect((await groupMembers(scim, 'Sales EMEA')).length).toBe(company.groups.get('Sales')!.length);

      // Same seed again: the IdP finds everyone and updates, nobody is duplicated.
      expect(await sim.seed({ users: 14, groups: 4, seed: 7 })).toMatchObject({ created: 0, updated: 14 });
      expect((await members(server, conn)).size).toBe(14);
    });
  }

  it('entra deletes a user; okta refuses to (it never does)', async () => {
    const conn = await connect(server, 'entra');
    const { sim } = simulatorFor(conn, 'entra');
    await sim.seed({ users: 5, groups: 2 });
    const gone = makeCompany({ users: 5, groups: 2, seed: 1, domain: 'acme.example' }).users[4]!.userName;
    await sim.deleteUser(gone);
    expect((await members(server, conn)).has(gone)).toBe(false);
    const okta = simulatorFor(conn, 'okta').sim;
    await expect(okta.deleteUser(gone)).rejects.toThrow(/okta never deletes users/);
  });

  it('replays the shipped sample day', async () => {
    const conn = await connect(server, 'entra-flag');
    const { sim } = simulatorFor(conn, 'entra-flag');
    const day = (await import('../days/sample-day.json', { with: { type: 'json' } })).default;
    expect(await sim.replay(day)).toBe(day.length);
    const seen = await members(server, conn);
    expect(seen.get('sam.okoro@acme.example')?.status).toBe('active');
    expect(seen.get('lina.berg@acme.example')?.status).toBe('inactive');
  });

  it('retries 429 honestly (Retry-After) until every request is through', async () => {
    const limited = await startTestServer({ env: { ROSTER_SCIM_RATE_LIMIT: '3' } });
    try {
      const conn = await connect(limited, 'okta');
      const { scim, sim } = simulatorFor(conn, 'okta', 8);
      await sim.seed({ users: 8, groups: 1 });
      expect(scim.stats.count(429)).toBeGreaterThan(0);
      expect(scim.stats.retries).toBe(scim.stats.count(429));
      expect((await members(limited, conn)).size).toBe(8);
    } finally {
      await limited.close();
    }
  });

  it('parses both forms of Retry-After', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(5000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('the CLI: a summary table on success, exit 1 and a clear message when the server refuses', async () => {
    const conn = await connect(server, 'okta');
    const env = { ...process.env, ROSTER_SCIM_URL: conn.baseUrl, ROSTER_SCIM_TOKEN: conn.token };
    const seeded = await run(process.execPath, [bin, 'seed', '--users', '3', '--groups', '1'], { env });
    expect(seeded.stdout).toContain('seeded 3 users (3 created, 0 updated) and 1 groups');
    expect(seeded.stdout).toMatch(/summary \(okta profile\)\nrequest +count +statuses +retries +time/);
    expect(seeded.stdout).toMatch(/POST \/Users +3 +201×3 +0 /);

    const refused = await run(process.execPath, [bin, 'deactivate', 'x@acme.example'], {
      env: { ...env, ROSTER_SCIM_TOKEN: 'rst_scim_wrong' },
    }).catch((error) => error);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^roster-idp-simulator: the server refused GET \/Users\?.* 401/);
    expect(refused.stderr).toContain('Check the token');

    const unknown = await run(process.execPath, [bin, 'deactivate', 'nobody@acme.example'], { env }).catch(
      (e) => e,
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no user "nobody@acme.example" on this connection');

    const usage = await run(process.execPath, [bin, 'seed', '--users', 'many', '--groups', '1'], {
      env,
    }).catch((e) => e);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--users must be a whole number');
  });
});
