import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { startTestServer, type TestServer } from './harness.js';
import {
  createConnection,
  expectScimError,
  PATCH_OP,
  type TestConnection,
  userBody,
} from './scim-helpers.js';

/** Issue 9, SCIM side: projection caps, hostile input, schema conformance, auth cache, sync log. */

let server: TestServer;
let conn: TestConnection;
beforeAll(async () => {
  server = await startTestServer({ env: { ROSTER_AUTH_FAILURE_RATE_LIMIT: '3' } });
  conn = await createConnection(server, 'generic');
  for (const name of ['ada@x.com', 'bob@x.com']) {
    expect((await conn.scim('POST', '/Users', { body: userBody(name) })).status).toBe(201);
  }
  for (const name of ['Alpha', 'Beta']) {
    expect((await conn.scim('POST', '/Groups', { body: { displayName: name } })).status).toBe(201);
  }
});
afterAll(async () => {
  await server?.close();
});

const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
const USER_URN = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_URN = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const distinctPaths = (n: number) => Array.from({ length: n }, (_, i) => `x${i}`);

describe('projection caps', () => {
  it('400 invalidValue beyond 100 distinct paths, in the query string and a SearchRequest', async () => {
    const many = distinctPaths(101);
    expectScimError(
      await conn.scim('POST', '/Users/.search', { body: { schemas: [SEARCH], attributes: many } }),
      400,
      'invalidValue',
    );
    expectScimError(
      await conn.scim('POST', '/.search', {
        body: { schemas: [SEARCH], excludedAttributes: many.join(',') },
      }),
      400,
      'invalidValue',
    );
    expectScimError(await conn.scim('GET', `/Users?attributes=${many.join(',')}`), 400, 'invalidValue');
    expectScimError(
      await conn.scim('GET', `/Groups?excludedAttributes=${many.join(',')}`),
      400,
      'invalidValue',
    );
    const users = await conn.scim('GET', '/Users');
    expectScimError(
      await conn.scim('GET', `/Users/${users.body.Resources[0].id}?attributes=${many.join(',')}`),
      400,
      'invalidValue',
    );
  });

  it('counts a path once however often it is repeated, up to 1,000 entries', async () => {
    const hundred = [...distinctPaths(99), 'userName'];
    const ok = await conn.scim('POST', '/Users/.search', {
      body: { schemas: [SEARCH], attributes: [...hundred, 'USERNAME', 'userName', ...hundred] },
    });
    expect(ok.status, ok.text).toBe(200);
    expect(Object.keys(ok.body.Resources[0]).sort()).toEqual(['id', 'schemas', 'userName']);
    expectScimError(
      await conn.scim('POST', '/Users/.search', {
        body: { schemas: [SEARCH], attributes: Array(1001).fill('userName') },
      }),
      400,
      'invalidValue',
    );
    expectScimError(
      await conn.scim('POST', '/Users/.search', { body: { schemas: [SEARCH], attributes: [{ a: 1 }] } }),
      400,
      'invalidValue',
    );
  });

  it('root /.search pages across users then groups, rendering only the page', async () => {
    const all = await conn.scim('POST', '/.search', { body: { schemas: [SEARCH] } });
    expect(all.body.totalResults).toBe(4);
    const kinds = (body: { Resources: { meta: { resourceType: string } }[] }) =>
      body.Resources.map((r) => r.meta.resourceType);
    expect(kinds(all.body)).toEqual(['User', 'User', 'Group', 'Group']);
    const middle = await conn.scim('POST', '/.search', {
      body: {
        schemas: [SEARCH],
        startIndex: 2,
        count: 2,
        attributes: ['userName', 'displayName', 'members'],
      },
    });
    expect(middle.status).toBe(200);
    expect(middle.body.startIndex).toBe(2);
    expect(middle.body.Resources).toEqual([
      { schemas: [USER_URN], id: all.body.Resources[1].id, userName: all.body.Resources[1].userName },
      {
        schemas: [GROUP_URN],
        id: all.body.Resources[2].id,
        displayName: all.body.Resources[2].displayName,
        members: [],
      },
    ]);
    const past = await conn.scim('POST', '/.search', {
      body: { schemas: [SEARCH], startIndex: 9, count: 5 },
    });
    expect(past.body.Resources).toEqual([]);
    expect(past.body.totalResults).toBe(4);
  });
});

describe('hostile input answers 400 or a clamped value, never 500', () => {
  it('NUL in a filter is invalidFilter; in a body invalidValue; on /v1 validation_failed', async () => {
    for (const filter of ['userName eq "a\u0000b"', 'userName\u0000 eq "a"', 'emails[value eq "\u0000"]']) {
      expectScimError(
        await conn.scim('GET', `/Users?filter=${encodeURIComponent(filter)}`),
        400,
        'invalidFilter',
      );
    }
    expectScimError(
      await conn.scim('POST', '/Users/.search', {
        body: { schemas: [SEARCH], filter: 'userName eq "\u0000"' },
      }),
      400,
      'invalidValue', // the body check comes first: a NUL anywhere in a body
    );
    expectScimError(
      await conn.scim('POST', '/Users', { body: userBody('nul\u0000@x.com') }),
      400,
      'invalidValue',
    );
    const users = await conn.scim('GET', '/Users');
    const id = users.body.Resources[0].id;
    expectScimError(
      await conn.scim('PATCH', `/Users/${id}`, {
        body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'a\u0000' }] },
      }),
      400,
      'invalidValue',
    );
    expectScimError(
      await conn.scim('PATCH', `/Users/${id}`, {
        body: {
          schemas: [PATCH_OP],
          Operations: [{ op: 'replace', path: 'emails[type eq "\u0000"].value', value: 'a' }],
        },
      }),
      400,
      'invalidValue',
    );
    expectScimError(
      await conn.scim('POST', '/Users', {
        body: userBody('nulkey@x.com', {
          'urn:ietf:params:scim:schemas:extension:roster:2.0:User': { 'k\u0000': 1 },
        }),
      }),
      400,
      'invalidValue',
    );
    const v1Body = await server.api('POST', '/v1/organizations', { body: { name: 'Evil\u0000Corp' } });
    expect(v1Body.status).toBe(400);
    expect(v1Body.body.error.code).toBe('validation_failed');
    const v1Query = await server.api('GET', `/v1/organizations?after=${encodeURIComponent('\u0000')}`);
    expect(v1Query.status).toBe(400);
    expect(v1Query.body.error.code).toBe('validation_failed');
  });

  it('JSON nested 20,000 deep is a 400 on SCIM and /v1', async () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const deepObject = `{"userName":"deep@x.com","x":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`;
    expectScimError(await conn.scim('POST', '/Users', { body: deep }), 400, 'invalidValue');
    expectScimError(await conn.scim('POST', '/Users', { body: deepObject }), 400, 'invalidValue');
    expectScimError(
      await conn.scim('POST', '/Users', {
        body: `{"userName":"deep2@x.com","urn:ietf:params:scim:schemas:extension:roster:2.0:User":{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`,
      }),
      400,
      'invalidValue',
    );
    for (const body of [deep, `{"name":"Deep","metadata":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`]) {
      const v1 = await server.api('POST', '/v1/organizations', { body });
      expect(v1.status, v1.text).toBe(400);
      expect(v1.body.error.code).toBe('validation_failed');
    }
  });

  it('startIndex=1e25 reads as an empty page past the end', async () => {
    for (const response of [
      await conn.scim('GET', `/Users?startIndex=${'9'.repeat(26)}`),
      await conn.scim('POST', '/Users/.search', { body: { schemas: [SEARCH], startIndex: 1e25 } }),
      await conn.scim('POST', '/Groups/.search', {
        body: { schemas: [SEARCH], startIndex: 1e25, count: 1e25 },
      }),
      await conn.scim('POST', '/.search', { body: { schemas: [SEARCH], startIndex: 1e25 } }),
    ]) {
      expect(response.status, response.text).toBe(200);
      expect(response.body.Resources).toEqual([]);
      expect(response.body.startIndex).toBe(2_147_483_647);
    }
  });
});

describe('schema conformance', () => {
  it('POST and PUT refuse another resource type core URN or no core URN: 400 invalidSyntax', async () => {
    const users = await conn.scim('GET', '/Users');
    const user = users.body.Resources[0];
    const groups = await conn.scim('GET', '/Groups');
    const group = groups.body.Resources[0];
    const cases: [string, string, unknown][] = [
      ['POST', '/Users', { ...userBody('g@x.com'), schemas: [GROUP_URN] }],
      ['POST', '/Users', { ...userBody('g2@x.com'), schemas: [USER_URN, GROUP_URN] }],
      ['POST', '/Users', { ...userBody('n@x.com'), schemas: ['urn:example:not-a-scim-schema'] }],
      ['POST', '/Users', { ...userBody('e@x.com'), schemas: [] }],
      ['POST', '/Users', { ...userBody('s@x.com'), schemas: [42] }],
      ['PUT', `/Users/${user.id}`, { ...userBody(user.userName), schemas: [GROUP_URN] }],
      [
        'PUT',
        `/Users/${user.id}`,
        { ...userBody(user.userName), schemas: ['urn:example:not-a-scim-schema'] },
      ],
      ['POST', '/Groups', { schemas: [USER_URN], displayName: 'Wrong' }],
      ['PUT', `/Groups/${group.id}`, { schemas: ['urn:example:not-a-scim-schema'], displayName: 'Wrong' }],
    ];
    for (const [method, path, body] of cases) {
      const response = await conn.scim(method, path, { body });
      expectScimError(response, 400, 'invalidSyntax');
    }
    const after = await conn.scim('GET', '/Users?filter=userName eq "g@x.com"');
    expect(after.body.totalResults).toBe(0);
    expect((await conn.scim('GET', `/Groups/${group.id}`)).body.displayName).toBe(group.displayName);
  });

  it('PATCH without the PatchOp URN: 400 invalidSyntax, nothing changed', async () => {
    const users = await conn.scim('GET', '/Users');
    const user = users.body.Resources[0];
    const groups = await conn.scim('GET', '/Groups');
    const operations = [{ op: 'replace', path: 'displayName', value: 'Changed' }];
    for (const body of [
      { Operations: operations },
      { schemas: [USER_URN], Operations: operations },
      { schemas: 'urn:example:x', Operations: operations },
    ]) {
      expectScimError(await conn.scim('PATCH', `/Users/${user.id}`, { body }), 400, 'invalidSyntax');
      expectScimError(
        await conn.scim('PATCH', `/Groups/${groups.body.Resources[0].id}`, { body }),
        400,
        'invalidSyntax',
      );
    }
    expect((await conn.scim('GET', `/Users/${user.id}`)).body.displayName).not.toBe('Changed');
  });

  it("accepts OneLogin's legacy URNs on POST and PUT and Entra's Microsoft URN (verbatim payloads)", async () => {
    const onelogin = await createConnection(server, 'onelogin');
    // OneLogin (goauthentik/authentik#11249): template URNs and a leading space in familyName.
    const created = await onelogin.scim('POST', '/Users', {
      body: {
        schemas: ['urn:scim:schemas:core:2.0', 'urn:scim:schemas:extension:enterprise:2.0'],
        userName: 'onelogin-test-user01',
        name: { familyName: ' User 01', givenName: 'AAA Test' },
      },
    });
    expect(created.status, created.text).toBe(201);
    const put = await onelogin.scim('PUT', `/Users/${created.body.id}?`, {
      body: {
        schemas: ['urn:scim:schemas:core:2.0', 'urn:scim:schemas:extension:enterprise:2.0'],
        userName: 'onelogin-test-user01',
        name: { familyName: ' User 01', givenName: 'AAA Test' },
        active: false,
      },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body.active).toBe(false);
    const entra = await createConnection(server, 'entra');
    // Entra "Create group" (Microsoft Learn tutorial), verbatim.
    const group = await entra.scim('POST', '/Groups', {
      body: {
        schemas: [
          'urn:ietf:params:scim:schemas:core:2.0:Group',
          'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
        ],
        externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
        displayName: 'displayName',
        meta: { resourceType: 'Group' },
      },
    });
    expect(group.status, group.text).toBe(201);
  });

  it('every reference attribute in /Schemas declares referenceTypes', async () => {
    const schemas = await conn.scim('GET', '/Schemas');
    const missing: string[] = [];
    const walk = (
      attributes: { name: string; type: string; referenceTypes?: string[]; subAttributes?: [] }[],
      where: string,
    ) => {
      for (const a of attributes) {
        if (a.type === 'reference' && !a.referenceTypes?.length) missing.push(`${where}.${a.name}`);
        if (a.subAttributes) walk(a.subAttributes, `${where}.${a.name}`);
      }
    };
    for (const schema of schemas.body.Resources) walk(schema.attributes, schema.id);
    expect(schemas.body.Resources.length).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });
});

describe('authentication', () => {
  it('deleting an organization stops its SCIM token at once, with 401 rather than 500', async () => {
    const doomed = await createConnection(server, 'okta');
    expect((await doomed.scim('GET', '/Users')).status).toBe(200); // now cached
    expect((await server.api('DELETE', `/v1/organizations/${doomed.organizationId}`)).status).toBe(204);
    expectScimError(await doomed.scim('GET', '/Users'), 401);
    expectScimError(await doomed.scim('POST', '/Users', { body: userBody('late@x.com') }), 401);
  });

  it('a write after the connection vanished behind the cache (another process deleted it) is a 401', async () => {
    const doomed = await createConnection(server, 'okta');
    expect((await doomed.scim('GET', '/Users')).status).toBe(200); // cached for 1 s
    // As another server process would: straight in the database, this process's cache untouched.
    await sql`delete from organizations where id = ${doomed.organizationId}`.execute(server.ctx.db);
    expectScimError(await doomed.scim('POST', '/Users', { body: userBody('ghost@x.com') }), 401);
  });

  it('unauthenticated requests never reach the sync log', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the failures above have refilled
    const c = await createConnection(server, 'okta');
    await c.scim('GET', '/Users', { token: 'rst_scim_wrong' });
    await c.scim('POST', '/Users', { token: null, body: userBody('anon@x.com') });
    await c.scim('GET', '/Users');
    await server.syncLog.flush();
    const rows = await server.ctx.db
      .selectFrom('sync_log')
      .select(['status'])
      .where('connection_id', '=', c.connectionId)
      .execute();
    expect(rows.map((r) => r.status)).toEqual([200]);
  });
});

describe('failed authentications per client address', () => {
  it('are limited before authentication, ignoring X-Forwarded-For unless configured', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1100)); // earlier tests' failures have refilled
    const c = await createConnection(server, 'okta');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await c.scim('GET', '/Users', {
        token: 'rst_scim_guess',
        headers: { 'x-forwarded-for': `10.0.0.${i}` }, // ignored: not configured
      });
      statuses.push(response.status);
      if (response.status === 429) {
        expectScimError(response, 429);
        expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    // Even a valid token from that address waits: the check comes before authentication.
    expect((await c.scim('GET', '/Users')).status).toBe(429);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await c.scim('GET', '/Users')).status).toBe(200);
  });

  it('behind a trusted proxy, count the address the proxy saw', { timeout: 60_000 }, async () => {
    const proxied = await startTestServer({
      env: { ROSTER_AUTH_FAILURE_RATE_LIMIT: '3', ROSTER_TRUST_PROXY_HOPS: '1' },
    });
    try {
      const p = await createConnection(proxied, 'okta');
      const from = (address: string, token = 'rst_scim_guess') =>
        p.scim('GET', '/Users', { token, headers: { 'x-forwarded-for': `6.6.6.6, ${address}` } });
      for (let i = 0; i < 3; i++) expect((await from('10.0.0.1')).status).toBe(401);
      expect((await from('10.0.0.1')).status).toBe(429);
      // Another client behind the same proxy is not affected, whatever it puts on the left.
      expect((await from('10.0.0.2')).status).toBe(401);
      expect((await from('10.0.0.3', p.token)).status).toBe(200);
    } finally {
      await proxied.close();
    }
  });
});

describe('logs', () => {
  it('log a database error with its code and message, never its parameters or detail', async () => {
    const secret = `rst_scim_secret_${Date.now()}`;
    let failure: unknown;
    await server.ctx.db
      .transaction()
      .execute(async (trx) => {
        await sql`create temporary table log_probe2 (v text primary key)`.execute(trx);
        await sql`insert into log_probe2 values (${secret})`.execute(trx);
        await sql`insert into log_probe2 values (${secret})`.execute(trx);
      })
      .catch((error: unknown) => {
        failure = error;
      });
    expect((failure as { code?: string }).code).toBe('23505');
    let out = '';
    const sink = new Writable({
      write(chunk, _encoding, done) {
        out += chunk.toString();
        done();
      },
    });
    createLogger('info', sink).error({ err: failure }, 'unhandled error');
    expect(out).toContain('23505');
    expect(out).toContain('duplicate key');
    expect(out).not.toContain(secret);
  });
});
