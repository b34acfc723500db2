import http from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, expectScimError, patchOp, type TestConnection, userBody } from './scim-helpers.js';

let server: TestServer;
let conn: TestConnection;
let clock = new Date('2026-11-28T12:00:00.000Z');
beforeAll(async () => {
  server = await startTestServer({ now: () => clock, env: { ROSTER_BODY_LIMIT: '64kb' } });
  conn = await createConnection(server, 'generic');
});
afterAll(async () => {
  await server?.close();
});

/** A raw request, for what fetch would normalise away (raw quotes, trailing ? and &). */
// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON bodies
function raw(path: string, token: string): Promise<{ status: number; body: any }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: 'GET',
        headers: { authorization: `Bearer ${token}` },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('authentication and errors', () => {
  it("401 with a SCIM error for a missing, wrong, or other connection's token", async () => {
    const other = await createConnection(server, 'okta');
    for (const token of [null, 'rst_scim_nope', other.token]) {
      const response = await conn.scim('GET', '/Users', { token });
      expectScimError(response, 401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
    }
    expectScimError(
      await conn.scim('GET', '/Users', { token: null, headers: { authorization: `Basic ${conn.token}` } }),
      401,
    );
    // An unknown connection id answers like a wrong token: no existence oracle.
    const unknown = await server.fetch('/scim/v2/conn_00000000000000000000000000/Users', {
      headers: { authorization: `Bearer ${conn.token}` },
    });
    expect(unknown.status).toBe(401);
  });

  it('a rotated-out token fails after the grace period', async () => {
    const c = await createConnection(server, 'entra');
    await server.api('POST', `/v1/connections/${c.connectionId}/scim_tokens`, {
      body: { previous_token_grace_seconds: 60 },
    });
    expect((await c.scim('GET', '/Users')).status).toBe(200);
    clock = new Date(clock.getTime() + 61_000);
    expectScimError(await c.scim('GET', '/Users'), 401);
  });

  it.each([
    ['malformed JSON (Microsoft suite: "acve": tre)', '{"userName": "x", "acve": tre}', 400, 'invalidSyntax'],
    ['a JSON string', '"just a string"', 400, 'invalidSyntax'],
    ['an array', '[{"userName": "x"}]', 400, 'invalidSyntax'],
    ['no userName', '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}', 400, 'invalidValue'],
    ['a non-boolean active', '{"userName":"x@y","active":"sometimes"}', 400, 'invalidValue'],
    ['an empty body', '', 400, 'invalidSyntax'],
  ])('POST /Users with %s is rejected; nothing is stored', async (_, body, status, scimType) => {
    const before = (await conn.scim('GET', '/Users?count=0')).body.totalResults;
    const response = await conn.scim('POST', '/Users', {
      body: body === '' ? undefined : body,
      headers: body === '' ? { 'content-type': 'application/scim+json' } : {},
    });
    expectScimError(response, status, scimType);
    expect((await conn.scim('GET', '/Users?count=0')).body.totalResults).toBe(before);
  });

  it('413 for a body over the limit, as a SCIM error', async () => {
    const response = await conn.scim('POST', '/Users', {
      body: userBody('big@x.com', { title: 'x'.repeat(100_000) }),
    });
    expectScimError(response, 413);
  });

  it('404 for unknown ids, unknown endpoints and paths outside a connection', async () => {
    expectScimError(await conn.scim('GET', '/Users/user_00000000000000000000000000'), 404);
    expectScimError(await conn.scim('GET', '/Users/not-an-id'), 404);
    expectScimError(
      await conn.scim('PATCH', '/Groups/grp_00000000000000000000000000', {
        body: patchOp({ op: 'replace', path: 'displayName', value: 'x' }),
      }),
      404,
    );
    expectScimError(await conn.scim('GET', '/Widgets'), 404);
    expectScimError(await conn.scim('POST', '/Bulk', { body: {} }), 501);
    const outside = await server.fetch('/scim/v2/Users');
    expect(outside.status).toBe(404);
    expect(outside.headers.get('content-type')).toMatch(/^application\/scim\+json/);
  });

  it('412 on an If-Match mismatch; the change is not applied', async () => {
    const created = await conn.scim('POST', '/Users', { body: userBody('etag@x.com') });
    const id: string = created.body.id;
    expect(created.headers.get('etag')).toBe('W/"1"');
    const stale = await conn.scim('PATCH', `/Users/${id}`, {
      body: patchOp({ op: 'replace', path: 'title', value: 'Dr' }),
      headers: { 'if-match': 'W/"7"' },
    });
    expectScimError(stale, 412);
    expect((await conn.scim('GET', `/Users/${id}`)).body.title).toBeUndefined();
    const fresh = await conn.scim('PATCH', `/Users/${id}`, {
      body: patchOp({ op: 'replace', path: 'title', value: 'Dr' }),
      headers: { 'if-match': 'W/"1"' },
    });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('etag')).toBe('W/"2"');
    expectScimError(await conn.scim('DELETE', `/Users/${id}`, { headers: { 'if-match': '"1"' } }), 412);
    expect((await conn.scim('DELETE', `/Users/${id}`, { headers: { 'if-match': '*' } })).status).toBe(204);
  });

  it('412 on an If-Match mismatch for groups too: PATCH, PUT and DELETE change nothing', async () => {
    const member = await conn.scim('POST', '/Users', { body: userBody('etag-member@x.com') });
    const created = await conn.scim('POST', '/Groups', { body: { displayName: 'Etag group' } });
    const id: string = created.body.id;
    const version = created.headers.get('etag')!;
    const stale = { 'if-match': 'W/"99"' };
    expectScimError(
      await conn.scim('PATCH', `/Groups/${id}`, {
        body: patchOp({ op: 'add', path: 'members', value: [{ value: member.body.id }] }),
        headers: stale,
      }),
      412,
    );
    expectScimError(
      await conn.scim('PUT', `/Groups/${id}`, { body: { displayName: 'Renamed' }, headers: stale }),
      412,
    );
    expectScimError(await conn.scim('DELETE', `/Groups/${id}`, { headers: stale }), 412);
    const unchanged = await conn.scim('GET', `/Groups/${id}`);
    expect(unchanged.headers.get('etag')).toBe(version);
    expect(unchanged.body).toMatchObject({ displayName: 'Etag group', members: [] });
    expect((await conn.scim('DELETE', `/Groups/${id}`, { headers: { 'if-match': version } })).status).toBe(
      204,
    );
  });

  it('invalidFilter for filters that do not parse or name unknown attributes, never an empty 200', async () => {
    for (const filter of [
      'userName eq',
      'favoriteColor eq "blue"',
      'active gt true',
      'meta.created gt "yesterday"',
      'password eq "x"',
      'urn:nope:Thing:x eq "1"',
      'emails[nope eq "x"]',
    ]) {
      expectScimError(
        await conn.scim('GET', `/Users?filter=${encodeURIComponent(filter)}`),
        400,
        'invalidFilter',
      );
    }
    expectScimError(
      await conn.scim('GET', `/Groups?filter=${encodeURIComponent('members gt "x"')}`),
      400,
      'invalidFilter',
    );
  });

  it('PATCH errors carry the right scimType', async () => {
    const created = await conn.scim('POST', '/Users', { body: userBody('patch.errors@x.com') });
    const id = created.body.id;
    const cases: [unknown, string][] = [
      [patchOp({ op: 'replace', path: 'id', value: 'x' }), 'mutability'],
      [patchOp({ op: 'replace', path: 'favoriteColor', value: 'x' }), 'invalidPath'],
      [patchOp({ op: 'remove' }), 'noTarget'],
      [patchOp({ op: 'replace', path: 'active', value: 'perhaps' }), 'invalidValue'],
      [{ Operations: 'nope' }, 'invalidSyntax'],
    ];
    for (const [body, scimType] of cases)
      expectScimError(await conn.scim('PATCH', `/Users/${id}`, { body }), 400, scimType);
  });

  it("409 when a PATCH renames onto another user's userName", async () => {
    await conn.scim('POST', '/Users', { body: userBody('taken@x.com') });
    const mover = await conn.scim('POST', '/Users', { body: userBody('mover@x.com') });
    expectScimError(
      await conn.scim('PATCH', `/Users/${mover.body.id}`, {
        body: patchOp({ op: 'replace', path: 'userName', value: 'TAKEN@x.com' }),
      }),
      409,
      'uniqueness',
    );
  });
});

describe('queries as IdPs send them', () => {
  let c: TestConnection;
  beforeAll(async () => {
    c = await createConnection(server, 'onelogin');
    await c.scim('POST', '/Users', {
      body: userBody('onelogin-test-user01', { externalId: '9edf3db5-f590-4367-a7b6-d76747c0a509' }),
    });
  });

  it('+ for spaces, raw quotes, trailing & and ?, unknown parameters', async () => {
    for (const path of [
      '/Users?filter=userName+eq+%22onelogin-test-user01%22&',
      '/Users?filter=userName+eq+"onelogin-test-user01"',
      '/Users?filter=externalId+eq+"9edf3db5-f590-4367-a7b6-d76747c0a509"',
      '/Users?aadOptscim062020&filter=userName%20eq%20%22ONELOGIN-TEST-USER01%22',
      '/Users?filter=userName%20Eq%20%22onelogin-test-user01%22&AzureAdScimPatch2017=1',
    ]) {
      const response = await raw(`${c.base}${path}`, c.token);
      expect(response.status, path).toBe(200);
      expect(response.body.totalResults, path).toBe(1);
    }
  });

  it('PingOne: lower-case attribute and mixed-case operator; OneLogin: PUT to /Users/{id}?', async () => {
    const found = await c.scim(
      'GET',
      `/Users?filter=${encodeURIComponent('username Eq "onelogin-test-user01"')}`,
    );
    expect(found.body.totalResults).toBe(1);
    const id = found.body.Resources[0].id;
    const put = await c.scim('PUT', `/Users/${id}?`, {
      body: {
        schemas: ['urn:scim:schemas:core:2.0', 'urn:scim:schemas:extension:enterprise:2.0'],
        userName: 'onelogin-test-user01',
        name: { familyName: ' User 01', givenName: 'AAA Test' },
        title: '',
        emails: [{ value: 'ol@example.com', type: 'work', primary: true }],
      },
    });
    expect(put.status).toBe(200);
    expect(put.body.name).toEqual({ familyName: ' User 01', givenName: 'AAA Test' });
    expect(put.body.title).toBeUndefined();
    // PUT without "active" keeps the user's status.
    expect(put.body.active).toBe(true);
  });

  it('startIndex 0 or negative reads as 1; count 0 answers totals only; count is capped', async () => {
    for (const q of ['startIndex=0', 'startIndex=-5', 'startIndex=abc', '']) {
      const r = await c.scim('GET', `/Users?${q}`);
      expect(r.body.startIndex, q).toBe(1);
      expect(r.body.Resources.length, q).toBe(1);
    }
    const zero = await c.scim('GET', '/Users?count=0');
    expect(zero.body).toMatchObject({ totalResults: 1, itemsPerPage: 0, Resources: [] });
    const beyond = await c.scim('GET', '/Users?startIndex=5&count=10');
    expect(beyond.body).toMatchObject({ totalResults: 1, startIndex: 5, itemsPerPage: 0, Resources: [] });
  });
});

describe('filters', () => {
  let c: TestConnection;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    c = await createConnection(server, 'generic');
    const people = [
      userBody('alice@acme.com', {
        displayName: 'Alice',
        title: 'Engineer',
        name: { givenName: 'Alice', familyName: 'Smith' },
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'R&D' },
        'urn:ietf:params:scim:schemas:extension:roster:2.0:User': { level: 3, remote: true },
      }),
      userBody('bob@acme.com', {
        displayName: 'Bob',
        name: { givenName: 'Bob', familyName: 'Jones' },
        emails: [
          { value: 'bob@acme.com', type: 'work' },
          { value: 'bob@home.net', type: 'home' },
        ],
        'urn:ietf:params:scim:schemas:extension:roster:2.0:User': { level: 7 },
      }),
      userBody('carol_100%@acme.com', {
        active: false,
        displayName: 'Carol',
        name: { givenName: 'Carol', familyName: 'White' },
      }),
    ];
    for (const body of people) {
      const r = await c.scim('POST', '/Users', { body });
      ids[body.userName] = r.body.id;
    }
  });
  const names = async (filter: string) => {
    const r = await c.scim('GET', `/Users?filter=${encodeURIComponent(filter)}&sortBy=userName`);
    expect(r.status, `${filter}: ${r.text}`).toBe(200);
    return r.body.Resources.map((u: { userName: string }) => u.userName);
  };

  it.each<[string, string[]]>([
    ['userName eq "ALICE@acme.com"', ['alice@acme.com']],
    ['userName ne "alice@acme.com"', ['bob@acme.com', 'carol_100%@acme.com']],
    ['userName co "100%"', ['carol_100%@acme.com']],
    ['userName sw "b"', ['bob@acme.com']],
    ['userName ew "_100%@acme.com"', ['carol_100%@acme.com']],
    ['userName co "_"', ['carol_100%@acme.com']],
    ['userName gt "bob@acme.com"', ['carol_100%@acme.com']],
    ['active eq false', ['carol_100%@acme.com']],
    ['active eq "True"', ['alice@acme.com', 'bob@acme.com']],
    ['title pr', ['alice@acme.com']],
    ['not (title pr)', ['bob@acme.com', 'carol_100%@acme.com']],
    ['not (title eq "Engineer")', ['bob@acme.com', 'carol_100%@acme.com']],
    ['name.familyName eq "smith" or name.givenName sw "car"', ['alice@acme.com', 'carol_100%@acme.com']],
    ['emails[type eq "home" and value co "home.net"]', ['bob@acme.com']],
    ['emails.value ew "@home.net"', ['bob@acme.com']],
    ['emails[type eq "work"].value eq "BOB@acme.com"', ['bob@acme.com']],
    ['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d"', ['alice@acme.com']],
    ['urn:ietf:params:scim:schemas:extension:roster:2.0:User:level gt 5', ['bob@acme.com']],
    ['urn:ietf:params:scim:schemas:extension:roster:2.0:User:remote eq true', ['alice@acme.com']],
    ['meta.created le "2999-01-01T00:00:00Z"', ['alice@acme.com', 'bob@acme.com', 'carol_100%@acme.com']],
    ['meta.created gt "2999-01-01T00:00:00Z"', []],
    ['displayName eq "alice" and (active eq true or title pr)', ['alice@acme.com']],
    ['urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@acme.com"', ['bob@acme.com']],
    ['userName eq null', []],
    ['title eq null', ['bob@acme.com', 'carol_100%@acme.com']],
  ])('%s', async (filter, want) => {
    expect(await names(filter)).toEqual(want);
  });

  it('groups by displayName (case-insensitive), externalId and member', async () => {
    const g = await c.scim('POST', '/Groups', {
      body: { displayName: 'Platform Team', externalId: 'PT-1', members: [{ value: ids['bob@acme.com'] }] },
    });
    await c.scim('POST', '/Groups', { body: { displayName: 'Other', externalId: 'O-1' } });
    const find = async (filter: string) =>
      (await c.scim('GET', `/Groups?filter=${encodeURIComponent(filter)}`)).body.Resources.map(
        (r: { id: string }) => r.id,
      );
    expect(await find('displayName eq "platform team"')).toEqual([g.body.id]);
    expect(await find('externalId eq "PT-1"')).toEqual([g.body.id]);
    expect(await find('externalId eq "pt-1"')).toEqual([]);
    expect(await find(`members eq "${ids['bob@acme.com']}"`)).toEqual([g.body.id]);
    expect(await find(`members[value eq "${ids['bob@acme.com']}"]`)).toEqual([g.body.id]);
    expect(await find(`id eq "${g.body.id}" and members.value eq "${ids['alice@acme.com']}"`)).toEqual([]);
    expect(await names(`groups eq "${g.body.id}"`)).toEqual(['bob@acme.com']);
  });

  it('sorts by sortBy/sortOrder', async () => {
    const r = await c.scim('GET', '/Users?sortBy=name.givenName&sortOrder=descending');
    expect(r.body.Resources.map((u: { name: { givenName: string } }) => u.name.givenName)).toEqual([
      'Carol',
      'Bob',
      'Alice',
    ]);
  });

  it('POST /.search with a SearchRequest, on /Users and at the root', async () => {
    const search = await c.scim('POST', '/Users/.search', {
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
        attributes: ['userName', 'displayName'],
        filter: 'displayName sw "A"',
        startIndex: 1,
        count: 10,
      },
    });
    expect(search.status).toBe(200);
    expect(search.body.Resources).toEqual([
      {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        id: ids['alice@acme.com'],
        userName: 'alice@acme.com',
        displayName: 'Alice',
      },
    ]);
    const root = await c.scim('POST', '/.search', { body: { filter: 'displayName sw "p"' } });
    expect(root.status).toBe(200);
    expect(root.body.Resources.map((r: { displayName: string }) => r.displayName)).toEqual(['Platform Team']);
    const rootUsers = await c.scim('POST', '/.search', { body: { filter: 'userName sw "alice"' } });
    expect(rootUsers.body.totalResults).toBe(1);
  });
});

describe('attributes and excludedAttributes', () => {
  it('on users and groups; group lists omit members unless asked', async () => {
    const c = await createConnection(server, 'entra');
    const u = await c.scim('POST', '/Users', { body: userBody('proj@x.com', { title: 'Dr' }) });
    const g = await c.scim('POST', '/Groups', {
      body: { displayName: 'Projected', members: [{ value: u.body.id }] },
    });
    const only = await c.scim('GET', `/Users/${u.body.id}?attributes=userName,emails`);
    expect(Object.keys(only.body).sort()).toEqual(['emails', 'id', 'schemas', 'userName']);
    const without = await c.scim('GET', `/Users?excludedAttributes=emails,name,meta`);
    expect(without.body.Resources[0]).not.toHaveProperty('emails');
    expect(without.body.Resources[0]).not.toHaveProperty('meta');
    expect(without.body.Resources[0].title).toBe('Dr');

    const list = await c.scim('GET', '/Groups');
    expect(list.body.Resources[0]).not.toHaveProperty('members');
    const listWith = await c.scim('GET', '/Groups?attributes=displayName,members');
    expect(listWith.body.Resources[0].members).toEqual([expect.objectContaining({ value: u.body.id })]);
    const one = await c.scim('GET', `/Groups/${g.body.id}`);
    expect(one.body.members).toHaveLength(1);
    const lean = await c.scim('GET', `/Groups/${g.body.id}?excludedAttributes=members`);
    expect(lean.body).not.toHaveProperty('members');
    // A PATCH that asks for attributes gets a 200 body.
    const patched = await c.scim('PATCH', `/Groups/${g.body.id}?excludedAttributes=members`, {
      body: patchOp({ op: 'replace', path: 'displayName', value: 'Projected 2' }),
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ displayName: 'Projected 2' });
    expect(patched.body).not.toHaveProperty('members');
  });
});

describe('discovery', () => {
  it('serves ServiceProviderConfig, Schemas and ResourceTypes with the connection base URL', async () => {
    const spc = await conn.scim('GET', '/ServiceProviderConfig');
    expect(spc.status).toBe(200);
    expect(spc.body.patch).toEqual({ supported: true });
    expect(spc.body.meta.location).toBe(`${server.publicUrl}${conn.base}/ServiceProviderConfig`);
    const schemas = await conn.scim('GET', '/Schemas');
    expect(schemas.body.totalResults).toBe(4);
    const user = await conn.scim('GET', '/Schemas/urn:ietf:params:scim:schemas:core:2.0:User');
    expect(user.body.attributes.find((a: { name: string }) => a.name === 'userName')).toMatchObject({
      caseExact: false,
      uniqueness: 'server',
    });
    const types = await conn.scim('GET', '/ResourceTypes');
    expect(types.body.Resources.map((t: { name: string }) => t.name)).toEqual(['User', 'Group']);
    expect((await conn.scim('GET', '/ResourceTypes/Group')).body.endpoint).toBe('/Groups');
    expectScimError(await conn.scim('GET', '/Schemas/urn:nope'), 404);
  });

  it('answers GET /Groups with 200 for a connection that only pushes users (Entra Test Connection)', async () => {
    const c = await createConnection(server, 'entra');
    const groups = await c.scim('GET', '/Groups?excludedAttributes=members&filter=displayName+eq+%22x%22');
    expect(groups.status).toBe(200);
    expect(groups.body.Resources).toEqual([]);
  });
});

describe('tenant isolation', () => {
  it('two connections with the same userName never see each other', async () => {
    const a = await createConnection(server, 'okta');
    const b = await createConnection(server, 'okta');
    const ua = await a.scim('POST', '/Users', { body: userBody('same@example.com') });
    const ub = await b.scim('POST', '/Users', { body: userBody('same@example.com') });
    expect(ua.status).toBe(201);
    expect(ub.status).toBe(201);
    expect((await a.scim('GET', '/Users')).body.Resources.map((u: { id: string }) => u.id)).toEqual([
      ua.body.id,
    ]);
    expectScimError(await a.scim('GET', `/Users/${ub.body.id}`), 404);
    expectScimError(
      await a.scim('PATCH', `/Users/${ub.body.id}`, {
        body: patchOp({ op: 'replace', path: 'active', value: false }),
      }),
      404,
    );
    expectScimError(await a.scim('DELETE', `/Users/${ub.body.id}`), 404);
    expect((await b.scim('GET', `/Users/${ub.body.id}`)).body.active).toBe(true);
    // A group of A cannot take B's user as a member: the id is ignored, the valid one kept.
    const g = await a.scim('POST', '/Groups', {
      body: { displayName: 'A team', members: [{ value: ub.body.id }, { value: ua.body.id }] },
    });
    expect(g.status).toBe(201);
    expect(g.body.members.map((m: { value: string }) => m.value)).toEqual([ua.body.id]);
    expect(
      (await a.scim('GET', `/Users?filter=${encodeURIComponent(`id eq "${ub.body.id}"`)}`)).body.totalResults,
    ).toBe(0);
  });
});

describe('the sync log', () => {
  it('records each request with status and scimType, without bodies or tokens', async () => {
    const c = await createConnection(server, 'okta');
    await c.scim('POST', '/Users', { body: userBody('logged@x.com', { password: 'hunter2' }) });
    await c.scim('GET', `/Users?filter=${encodeURIComponent('userName eq')}`);
    await c.scim('GET', '/Users', { token: 'rst_scim_wrong' });
    await server.syncLog.flush();
    const rows = await server.ctx.db
      .selectFrom('sync_log')
      .selectAll()
      .where('connection_id', '=', c.connectionId)
      .orderBy('id')
      .execute();
    // The unauthenticated request is not logged: anyone could write lines into a tenant's log.
    expect(rows.map((r) => [r.method, r.path, r.status, r.scim_type])).toEqual([
      ['POST', '/Users', 201, null],
      ['GET', '/Users', 400, 'invalidFilter'],
    ]);
    expect(rows.every((r) => r.organization_id === c.organizationId && r.duration_ms >= 0)).toBe(true);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain('hunter2');
    expect(dump).not.toContain(c.token);
  });
});

describe('retention', () => {
  it('purges deleted users after the retention window, not before', async () => {
    const c = await createConnection(server, 'entra');
    const u = await c.scim('POST', '/Users', { body: userBody('purge@x.com') });
    await c.scim('DELETE', `/Users/${u.body.id}`);
    const exists = async () =>
      Boolean(
        await server.ctx.db.selectFrom('users').select('id').where('id', '=', u.body.id).executeTakeFirst(),
      );
    clock = new Date(clock.getTime() + 29 * 86_400_000);
    await server.maintenance.run();
    expect(await exists()).toBe(true);
    clock = new Date(clock.getTime() + 2 * 86_400_000);
    await server.maintenance.run();
    expect(await exists()).toBe(false);
  });
});

describe('robustness', () => {
  it('random PATCH bodies never produce a 500', async () => {
    const c = await createConnection(server, 'generic');
    const u = await c.scim('POST', '/Users', { body: userBody('fuzz@x.com') });
    const g = await c.scim('POST', '/Groups', { body: { displayName: 'Fuzz' } });
    const path = fc.oneof(
      fc.constantFrom(
        'active',
        'userName',
        'name.givenName',
        'emails[type eq "work"].value',
        'members',
        'members[value eq "x"]',
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager',
        'roles[primary eq "True"].value',
        'meta',
        'x[',
        '',
        'urn:ietf:params:scim:schemas:extension:roster:2.0:User:x.y',
      ),
      fc.string({ maxLength: 30 }),
    );
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom('True', 'False', null, [], [{ value: 'x' }], { active: false }),
    );
    const op = fc.record(
      {
        op: fc.oneof(fc.constantFrom('add', 'Replace', 'REMOVE'), fc.string({ maxLength: 8 })),
        path: fc.option(path, { nil: undefined }),
        value: fc.option(value, { nil: undefined }),
      },
      { requiredKeys: ['op'] },
    );
    const body = fc.oneof(
      fc.record({
        schemas: fc.constant(['urn:ietf:params:scim:api:messages:2.0:PatchOp']),
        Operations: fc.array(op, { minLength: 1, maxLength: 4 }),
      }),
      fc.jsonValue({ maxDepth: 2 }),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (b, onGroup) => {
        const target = onGroup ? `/Groups/${g.body.id}` : `/Users/${u.body.id}`;
        const response = await c.scim('PATCH', target, { body: JSON.stringify(b) });
        expect(response.status, `${JSON.stringify(b)} -> ${response.text}`).toBeLessThan(500);
        if (response.status >= 400)
          expect(response.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
      }),
      { numRuns: 300 },
    );
    expect((await c.scim('GET', `/Users/${u.body.id}`)).status).toBe(200);
  });

  it('random filters never produce a 500', async () => {
    const c = await createConnection(server, 'generic');
    await c.scim('POST', '/Users', { body: userBody('filterfuzz@x.com') });
    const attr = fc.constantFrom(
      'userName',
      'active',
      'emails',
      'emails.value',
      'name.givenName',
      'meta.created',
      'groups',
      'title',
      'urn:ietf:params:scim:schemas:extension:roster:2.0:User:level',
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager',
      'x',
    );
    const opArb = fc.constantFrom('eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le');
    const val = fc.oneof(
      fc.string({ maxLength: 10 }).map((s) => JSON.stringify(s)),
      fc.constantFrom('true', 'false', 'null', '42', '-1.5', '"2026-01-01T00:00:00Z"'),
    );
    const leaf = fc.oneof(
      fc.tuple(attr, opArb, val).map(([a, o, v]) => `${a} ${o} ${v}`),
      attr.map((a) => `${a} pr`),
    );
    const filter = fc.oneof(
      leaf,
      fc.tuple(leaf, fc.constantFrom('and', 'or'), leaf).map((p) => p.join(' ')),
      leaf.map((l) => `not (${l})`),
      fc
        .tuple(fc.constantFrom('emails', 'roles', 'addresses'), leaf)
        .map(([a, l]) => `${a}[${l.replace(/^\S+/, 'value')}]`),
    );
    await fc.assert(
      fc.asyncProperty(filter, async (f) => {
        const response = await c.scim('GET', `/Users?filter=${encodeURIComponent(f)}`);
        expect(response.status, `${f} -> ${response.text}`).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
  });
});
