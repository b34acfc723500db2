import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, secondTestDatabase, startTestServer, type TestServer } from './harness.js';
import { createConnection, expectScimError, patchOp, type TestConnection, userBody } from './scim-helpers.js';

/**
 * The deprovisioning circuit breaker, driven by SCIM requests shaped as Okta and Entra send them
 * (Okta: PATCH replace {active:false}; Entra: PATCH Replace path active "False", then DELETE).
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { ROSTER_SCIM_RATE_LIMIT: '100000' } });
});
afterAll(async () => {
  await server?.close();
});

const oktaDeactivate = patchOp({ op: 'replace', value: { active: false } });
const entraDeactivate = patchOp({ op: 'Replace', path: 'active', value: 'False' });

async function provision(conn: TestConnection, count: number, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  const queue = Array.from({ length: count }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const created = await conn.scim('POST', '/Users', { body: userBody(`${prefix}${i}@example.com`) });
        expect(created.status, created.text).toBe(201);
        ids[i] = created.body.id;
      }
    }),
  );
  return ids;
}

/** Runs `fn` over `items`, `concurrency` at a time, like an IdP's provisioning workers. */
async function inParallel<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!);
      }
    }),
  );
  return results;
}

async function enableGuard(conn: TestConnection, guard: Record<string, unknown>, via = server) {
  const patched = await via.api('PATCH', `/v1/connections/${conn.connectionId}`, {
    body: { deprovision_guard: guard },
  });
  expect(patched.status, patched.text).toBe(200);
  return patched.body;
}

async function eventsOf(type: string, organizationId: string) {
  await server.sequencer.flush();
  const page = await server.api(
    'GET',
    `/v1/events?types=${type}&organization_id=${organizationId}&limit=1000`,
  );
  expect(page.status).toBe(200);
  return page.body.data as { type: string; data: Record<string, unknown> }[];
}

async function activeUsers(conn: TestConnection): Promise<number> {
  const list = await conn.scim('GET', '/Users?filter=active eq true&count=0');
  return list.body.totalResults;
}

describe('deprovisioning guard', () => {
  it('stops a mistaken mass deactivation of 300 of 1,000 users at the limit; a release lets the retries through', async () => {
    const conn = await createConnection(server, 'okta');
    const ids = await provision(conn, 1000, 'mass');
    const configured = await enableGuard(conn, {
      enabled: true,
      max_in_window: 50,
      max_percent: 10,
      window: '1h',
    });
    expect(configured.deprovision_guard).toMatchObject({
      enabled: true,
      max_in_window: 50,
      max_percent: 10,
      window: '1h',
      held_at: null,
    });
    // Sessions of users about to be (wrongly) deactivated: a refused request must not revoke them.
    const victims = ids.slice(0, 300);
    const sessions = await Promise.all(
      victims.slice(100, 110).map(async (userId) => {
        const created = await server.api('POST', '/v1/sessions', {
          body: { user_id: userId, organization_id: conn.organizationId },
        });
        expect(created.status, created.text).toBe(201);
        return created.body.id as string;
      }),
    );

    const answers = await inParallel(victims, 8, (id) =>
      conn.scim('PATCH', `/Users/${id}`, { body: oktaDeactivate }),
    );
    const applied = victims.filter((_, i) => answers[i]!.status === 200);
    const refused = victims.filter((_, i) => answers[i]!.status === 503);
    expect(applied).toHaveLength(50);
    expect(refused).toHaveLength(250);
    const sample = answers.find((a) => a.status === 503)!;
    expectScimError(sample, 503);
    expect(sample.headers.get('retry-after')).toBe('300');

    // Nothing lost, nothing half-applied: the 50 are fully deactivated, the 250 fully untouched.
    expect(await activeUsers(conn)).toBe(950);
    for (const id of refused.slice(0, 20)) {
      const user = await conn.scim('GET', `/Users/${id}`);
      expect(user.body.active).toBe(true);
    }
    const members = await server.api(
      'GET',
      `/v1/organizations/${conn.organizationId}/memberships?status=inactive&limit=100`,
    );
    expect(members.body.data).toHaveLength(50);
    expect(new Set(members.body.data.map((m: { user: { id: string } }) => m.user.id))).toEqual(
      new Set(applied),
    );
    for (const sessionId of sessions) {
      const session = await server.api('GET', `/v1/sessions/${sessionId}`);
      const userId = session.body.user_id as string;
      expect(session.body.status).toBe(applied.includes(userId) ? 'revoked' : 'active');
    }
    const deactivated = await eventsOf('user.deactivated', conn.organizationId);
    expect(new Set(deactivated.map((e) => e.data.id))).toEqual(new Set(applied));

    // The connection is held, once, with the counts and what stayed applied.
    const connection = await server.api('GET', `/v1/connections/${conn.connectionId}`);
    expect(connection.body.state).toBe('deprovisioning_held');
    expect(connection.body.deprovision_guard.held_at).not.toBeNull();
    const held = await eventsOf('connection.deprovisioning_held', conn.organizationId);
    expect(held).toHaveLength(1);
    expect(held[0]!.data).toMatchObject({
      id: conn.connectionId,
      state: 'deprovisioning_held',
      counts: { in_window: 50, limit: 50, window: '1h', population: 1000 },
    });
    expect(new Set((held[0]!.data.applied as { user_id: string }[]).map((a) => a.user_id))).toEqual(
      new Set(applied),
    );

    // While held: deletions are refused too (Entra's shape); everything else keeps syncing.
    expectScimError(await conn.scim('DELETE', `/Users/${refused[0]}`), 503);
    expectScimError(await conn.scim('PATCH', `/Users/${refused[1]}`, { body: entraDeactivate }), 503);
    const rename = await conn.scim('PATCH', `/Users/${refused[2]}`, {
      body: patchOp({ op: 'replace', path: 'title', value: 'Engineer' }),
    });
    expect(rename.status).toBe(200);
    expect((await conn.scim('POST', '/Users', { body: userBody('newcomer@example.com') })).status).toBe(201);
    expect(await activeUsers(conn)).toBe(951);

    // A release for a window lets the IdP's retries through.
    const released = await server.api(
      'POST',
      `/v1/connections/${conn.connectionId}/deprovision_guard/release`,
      {
        body: { window: '2h' },
      },
    );
    expect(released.status, released.text).toBe(200);
    expect(released.body.state).toBe('active');
    expect(released.body.deprovision_guard.suspended_until).not.toBeNull();
    const retries = await inParallel(refused, 8, (id) =>
      conn.scim('PATCH', `/Users/${id}`, { body: oktaDeactivate }),
    );
    expect(retries.every((r) => r.status === 200)).toBe(true);
    expect(await activeUsers(conn)).toBe(1001 - 300);
  }, 600_000);

  it('counts again from a release without a window, and trips again at the limit', async () => {
    const conn = await createConnection(server, 'entra');
    const ids = await provision(conn, 40, 'again');
    await enableGuard(conn, { enabled: true, max_in_window: 5, window: '1h' });
    const first = await inParallel(ids.slice(0, 10), 4, (id) =>
      conn.scim('PATCH', `/Users/${id}`, { body: entraDeactivate }),
    );
    expect(first.filter((r) => r.status === 200)).toHaveLength(5);
    const release = await server.api(
      'POST',
      `/v1/connections/${conn.connectionId}/deprovision_guard/release`,
    );
    expect(release.status, release.text).toBe(200);
    const refusedBefore = ids.slice(0, 10).filter((_, i) => first[i]!.status === 503);
    const second = await inParallel([...refusedBefore, ...ids.slice(10, 15)], 4, (id) =>
      conn.scim('DELETE', `/Users/${id}`),
    );
    expect(second.filter((r) => r.status === 204)).toHaveLength(5);
    expect(second.filter((r) => r.status === 503)).toHaveLength(5);
    expect((await server.api('GET', `/v1/connections/${conn.connectionId}`)).body.state).toBe(
      'deprovisioning_held',
    );
    expect(await eventsOf('connection.deprovisioning_held', conn.organizationId)).toHaveLength(2);
    // Held again: every deprovision is refused until the next release.
    expectScimError(await conn.scim('DELETE', `/Users/${ids[20]}`), 503);
  }, 300_000);

  it('is off unless enabled; a percentage applies to the connection users; disabling releases', async () => {
    const conn = await createConnection(server, 'okta');
    const ids = await provision(conn, 30, 'pct');
    const free = await inParallel(ids.slice(0, 10), 4, (id) => conn.scim('DELETE', `/Users/${id}`));
    expect(free.every((r) => r.status === 204)).toBe(true);
    // Counting starts when the guard is enabled: 10% of the 20 users left, 2.
    await enableGuard(conn, { enabled: true, max_percent: 10, window: '30m' });
    const answers = await inParallel(ids.slice(10, 20), 4, (id) =>
      conn.scim('PATCH', `/Users/${id}`, { body: oktaDeactivate }),
    );
    expect(answers.filter((r) => r.status === 200)).toHaveLength(2);
    const disabled = await enableGuard(conn, { enabled: false });
    expect(disabled.state).toBe('active');
    const refused = ids.slice(10, 20).filter((_, i) => answers[i]!.status === 503);
    const retries = await inParallel(refused, 4, (id) =>
      conn.scim('PATCH', `/Users/${id}`, { body: oktaDeactivate }),
    );
    expect(retries.every((r) => r.status === 200)).toBe(true);
  }, 300_000);

  it('refuses bad settings with a clear error and changes nothing', async () => {
    const conn = await createConnection(server, 'generic');
    const path = `/v1/connections/${conn.connectionId}`;
    const cases: [unknown, string][] = [
      [{ deprovision_guard: { enabled: true } }, 'deprovision_guard.max_in_window'],
      [{ deprovision_guard: { enabled: true, max_in_window: 5, window: '5x' } }, 'deprovision_guard.window'],
      [{ deprovision_guard: { enabled: true, max_in_window: 5, window: '10s' } }, 'deprovision_guard.window'],
      [{ deprovision_guard: { enabled: true, max_in_window: 0 } }, 'deprovision_guard.max_in_window'],
      [{ deprovision_guard: { enabled: true, max_percent: 101 } }, 'deprovision_guard.max_percent'],
      [{}, '(body)'],
    ];
    for (const [body, field] of cases) {
      const response = await server.api('PATCH', path, { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error.code).toBe('validation_failed');
      expect(response.body.error.details[0].path).toBe(field);
    }
    expect((await server.api('GET', path)).body.deprovision_guard.enabled).toBe(false);
    const release = await server.api('POST', `${path}/deprovision_guard/release`);
    expect(release.status).toBe(409);
    expect(release.body.error.code).toBe('conflict');
    const badWindow = await server.api('POST', `${path}/deprovision_guard/release`, {
      body: { window: 'soon' },
    });
    expect(badWindow.status).toBe(400);
  });
});

describe.runIf(process.env.DATABASE_URL)('deprovisioning guard across server processes', () => {
  it('counts exactly across two servers on one PostgreSQL database', async () => {
    const shared = await createTestDatabase();
    const env = { ROSTER_SCIM_RATE_LIMIT: '100000' };
    const a = await startTestServer({ database: shared, env });
    const second = await secondTestDatabase(shared);
    const b = await startTestServer({ database: second, env });
    try {
      const onA = await createConnection(a, 'okta');
      const ids = await provision(onA, 200, 'multi');
      await enableGuard(onA, { enabled: true, max_in_window: 37, window: '1h' }, a);
      // The same connection through the other server (the token works on both).
      const onB: TestConnection = {
        ...onA,
        scim: (method, path, options = {}) =>
          b
            .fetch(`${onA.base}${path}`, {
              method,
              headers: { authorization: `Bearer ${onA.token}`, 'content-type': 'application/scim+json' },
              body: options.body === undefined ? undefined : JSON.stringify(options.body),
            })
            .then(async (r) => ({
              status: r.status,
              headers: r.headers,
              body: await r.json().catch(() => undefined),
              text: '',
            })),
      };
      const answers = await inParallel(ids, 16, (id) =>
        (Number.parseInt(id.slice(-2), 36) % 2 === 0 ? onA : onB).scim('PATCH', `/Users/${id}`, {
          body: oktaDeactivate,
        }),
      );
      expect(answers.filter((r) => r.status === 200)).toHaveLength(37);
      expect(answers.filter((r) => r.status === 503)).toHaveLength(163);
      expect(await activeUsers(onA)).toBe(163);
      await a.sequencer.flush();
      const held = await a.api(
        'GET',
        `/v1/events?types=connection.deprovisioning_held&organization_id=${onA.organizationId}`,
      );
      expect(held.body.data).toHaveLength(1);
    } finally {
      await b.close();
      await second.database.close();
      await a.close();
      await shared.drop();
    }
  }, 600_000);
});
