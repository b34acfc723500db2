import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../src/ids.js';
import { summarizeRolePreview } from '../src/portal/role-preview-summary.js';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, patchOp, userBody } from './scim-helpers.js';

let server: TestServer;
let clock: Date;
beforeAll(async () => {
  clock = new Date('2026-11-28T12:00:00.000Z');
  server = await startTestServer({ now: () => clock });
});
afterAll(async () => {
  await server?.close();
});

async function createOrg(name = 'Acme') {
  const response = await server.api('POST', '/v1/organizations', { body: { name } });
  expect(response.status).toBe(201);
  return response.body.id as string;
}

async function createLink(orgId: string, body: unknown = { intent: 'directory_sync' }) {
  const response = await server.api('POST', `/v1/organizations/${orgId}/portal_links`, { body });
  expect(response.status, response.text).toBe(201);
  return response.body as { object: string; url: string; expires_at: string };
}

/** Opens a link like a browser: returns the session cookie ("name=value"). */
async function openLink(url: string): Promise<string> {
  const response = await fetch(url, { redirect: 'manual' });
  expect(response.status, await response.clone().text()).toBe(303);
  expect(response.headers.get('location')).toBe('/portal');
  const cookie = response.headers.get('set-cookie') ?? '';
  return cookie.split(';')[0]!;
}

async function portal(path: string, cookie: string, init: RequestInit = {}) {
  const response = await server.fetch(path, {
    ...init,
    redirect: 'manual',
    headers: { cookie, ...(init.headers as Record<string, string>) },
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

function form(fields: Record<string, string>) {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  };
}

describe('portal links (API)', () => {
  it('creates a one-time link, stores only its hash, and writes portal.link_created', async () => {
    const orgId = await createOrg();
    const link = await createLink(orgId, {
      intent: 'directory_sync',
      return_url: 'https://app.example.com/sso',
    });
    expect(link).toEqual({
      object: 'portal_link',
      url: expect.stringMatching(
        new RegExp(`^${server.publicUrl}/portal/start\\?token=rst_pl_[A-Za-z0-9_-]{43}$`),
      ),
      expires_at: new Date(clock.getTime() + 5 * 60_000).toISOString(),
    });
    const token = new URL(link.url).searchParams.get('token')!;
    const rows = await server.ctx.db
      .selectFrom('portal_links')
      .selectAll()
      .where('organization_id', '=', orgId)
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(hashSecret(token));
    expect(JSON.stringify(rows)).not.toContain(token);
    const events = await server.api(
      'GET',
      `/v1/events?organization_id=${orgId}&types=portal.link_created&wait=10`,
    );
    expect(events.body.data).toHaveLength(1);
    expect(events.body.data[0].data).toMatchObject({ object: 'portal_link', organization_id: orgId });
    expect(JSON.stringify(events.body)).not.toContain(token);
  });

  it('refuses bad input with the /v1 error shape and creates nothing', async () => {
    const orgId = await createOrg();
    for (const body of [
      {},
      { intent: 'sso' },
      { intent: 'directory_sync', return_url: 'http://evil.example.com/' },
      { intent: 'directory_sync', return_url: 'javascript:alert(1)' },
      { intent: 'directory_sync', extra: 1 },
    ]) {
      const response = await server.api('POST', `/v1/organizations/${orgId}/portal_links`, { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error.code).toBe('validation_failed');
    }
    const missing = await server.api(
      'POST',
      '/v1/organizations/org_01jdq3x0v8m4w2c7f9k1n5r6t8/portal_links',
      {
        body: { intent: 'directory_sync' },
      },
    );
    expect(missing.status).toBe(404);
    const none = await server.api('POST', `/v1/organizations/${orgId}/portal_links`, {
      body: { intent: 'directory_sync' },
      key: 'rst_sk_wrong_wrong_wrong_wrong_wrong_wrong',
    });
    expect(none.status).toBe(401);
    const rows = await server.ctx.db
      .selectFrom('portal_links')
      .select('id')
      .where('organization_id', '=', orgId)
      .execute();
    expect(rows).toHaveLength(0);
  });

  it('lets a key confined to an organization create links for that organization only', async () => {
    const own = await createOrg('Own Corp');
    const other = await createOrg('Other Corp');
    const created = await server.api('POST', '/v1/api_keys', {
      body: { name: 'own portal links', organization_id: own, scopes: ['write'] },
    });
    expect(created.status, created.text).toBe(201);
    const key = created.body.key as string;
    const body = { intent: 'directory_sync' };
    const mine = await server.api('POST', `/v1/organizations/${own}/portal_links`, { key, body });
    expect(mine.status, mine.text).toBe(201);
    const theirs = await server.api('POST', `/v1/organizations/${other}/portal_links`, { key, body });
    expect(theirs.status, theirs.text).toBe(404);
    expect(theirs.body.error.code).toBe('not_found');
  });
});

describe('portal sessions', () => {
  it('opens once, sets an HttpOnly SameSite=Lax cookie, and writes portal.session_started', async () => {
    const orgId = await createOrg('Once Corp');
    const link = await createLink(orgId);
    const response = await fetch(link.url, { redirect: 'manual' });
    expect(response.status).toBe(303);
    const setCookie = response.headers.get('set-cookie')!;
    // Served over http here: no __Host- prefix and no Secure flag (browsers would refuse both).
    expect(setCookie).toMatch(
      /^roster_portal=rst_ps_[A-Za-z0-9_-]{43}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/,
    );
    const cookie = setCookie.split(';')[0]!;
    const overview = await portal('/portal', cookie);
    expect(overview.status).toBe(200);
    expect(overview.text).toContain('Once Corp');

    const again = await fetch(link.url, { redirect: 'manual' });
    expect(again.status).toBe(410);
    expect(again.headers.get('set-cookie')).toBeNull();
    const text = await again.text();
    expect(text).toContain('already been used');
    expect(text).toContain('Ask the app for a new link');

    const events = await server.api(
      'GET',
      `/v1/events?organization_id=${orgId}&types=portal.session_started&wait=10`,
    );
    expect(events.body.data).toHaveLength(1);
    expect(events.body.data[0].actor).toEqual({
      type: 'portal',
      portal_session_id: events.body.data[0].data.id,
    });
  });

  it('lets only one of two concurrent openings of a link in', async () => {
    const link = await createLink(await createOrg());
    const results = await Promise.all([1, 2, 3].map(() => fetch(link.url, { redirect: 'manual' })));
    expect(results.map((r) => r.status).sort()).toEqual([303, 410, 410]);
  });

  it('refuses an expired or tampered link with a clear page, and ends sessions after their lifetime', async () => {
    const orgId = await createOrg();
    const link = await createLink(orgId);
    const tampered = link.url.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    const bad = await fetch(tampered, { redirect: 'manual' });
    expect(bad.status).toBe(404);
    expect(await bad.text()).toContain('Ask the app for a new link');

    const saved = clock;
    try {
      clock = new Date(saved.getTime() + 5 * 60_000 + 1);
      const late = await fetch(link.url, { redirect: 'manual' });
      expect(late.status).toBe(410);
      expect(await late.text()).toContain('has expired');
    } finally {
      clock = saved;
    }

    const cookie = await openLink((await createLink(orgId)).url);
    try {
      clock = new Date(saved.getTime() + 3_600_000 - 1);
      expect((await portal('/portal', cookie)).status).toBe(200);
      clock = new Date(saved.getTime() + 3_600_000);
      const ended = await portal('/portal', cookie);
      expect(ended.status).toBe(401);
      expect(ended.text).toContain('Ask the app for a new link');
    } finally {
      clock = saved;
    }
    expect((await portal('/portal', 'roster_portal=rst_ps_forged')).status).toBe(401);
    expect((await portal('/portal', '')).status).toBe(401);
  });

  it('sends a strict CSP, no framing and no caching on every page', async () => {
    const cookie = await openLink((await createLink(await createOrg())).url);
    for (const path of ['/portal', '/portal/connect', '/portal/connect/entra', '/portal/start?token=x']) {
      const response = await portal(path, cookie);
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      // No inline script or style, nothing from another host.
      expect(response.text).not.toMatch(/<script(?![^>]*\ssrc="\/portal\/assets\/)/);
      expect(response.text).not.toMatch(/\sstyle=|<style/);
      expect(response.text).not.toMatch(/(src|href|action)="(https?:)?\/\//);
    }
  });
});

describe('portal actions', () => {
  it('refuses a form post without the CSRF token and changes nothing', async () => {
    const orgId = await createOrg();
    const cookie = await openLink((await createLink(orgId)).url);
    for (const fields of [{ name: 'Sneaky' }, { name: 'Sneaky', _csrf: 'forged' }] as Record<
      string,
      string
    >[]) {
      const refused = await portal('/portal/connect/okta', cookie, form(fields));
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('Nothing was changed');
    }
    const connections = await server.api('GET', `/v1/organizations/${orgId}/connections`);
    expect(connections.body.data).toHaveLength(0);
    // Another session's token does not work either.
    const other = await openLink((await createLink(orgId)).url);
    const otherCsrf = csrfOf((await portal('/portal/connect/okta', other)).text);
    expect((await portal('/portal/connect/okta', cookie, form({ name: 'X', _csrf: otherCsrf }))).status).toBe(
      403,
    );
    // With its own token it works: the connection is created with the portal as the actor.
    const csrf = csrfOf((await portal('/portal/connect/okta', cookie)).text);
    const created = await portal('/portal/connect/okta', cookie, form({ name: 'Acme <Okta>', _csrf: csrf }));
    expect(created.status).toBe(201);
    expect(created.text).toContain('Acme &lt;Okta>');
    expect(created.text).not.toContain('<Okta>');
    expect(created.text).toMatch(/rst_scim_[A-Za-z0-9_-]{43}/);
    const events = await server.api(
      'GET',
      `/v1/events?organization_id=${orgId}&types=connection.created&wait=10`,
    );
    expect(events.body.data).toHaveLength(1);
    expect(events.body.data[0].actor).toMatchObject({ type: 'portal' });
    expect(events.body.data[0].data.name).toBe('Acme <Okta>');
    // The actor is the transaction's own: a change through the API right after carries none.
    const viaApi = await server.api('POST', `/v1/organizations/${orgId}/connections`, {
      body: { name: 'By the app', provider: 'generic' },
    });
    const all = await server.api(
      'GET',
      `/v1/events?organization_id=${orgId}&types=connection.created&after=${events.body.data[0].cursor}&wait=10`,
    );
    expect(all.body.data.map((e: { data: { id: string } }) => e.data.id)).toEqual([viaApi.body.id]);
    expect(all.body.data[0]).not.toHaveProperty('actor');
  });

  it("answers 404 for another organization's connection ids, on every page and action", async () => {
    const mine = await createConnection(server, 'entra');
    const theirs = await createConnection(server, 'okta');
    const cookie = await openLink((await createLink(mine.organizationId)).url);
    const csrf =
      csrfOf((await portal('/portal/connect', cookie)).text) ||
      csrfOf((await portal('/portal/connect/okta', cookie)).text);
    for (const suffix of ['', '/token', '/roles', '/guard', '/log']) {
      expect((await portal(`/portal/connections/${mine.connectionId}${suffix}`, cookie)).status).toBe(200);
      const other = await portal(`/portal/connections/${theirs.connectionId}${suffix}`, cookie);
      expect(other.status).toBe(404);
      expect(other.text).not.toContain(theirs.connectionId.slice(5));
    }
    const before = await server.ctx.db
      .selectFrom('scim_tokens')
      .select('id')
      .where('connection_id', '=', theirs.connectionId)
      .execute();
    const rotate = await portal(
      `/portal/connections/${theirs.connectionId}/token`,
      cookie,
      form({ _csrf: csrf, grace_seconds: '0' }),
    );
    expect(rotate.status).toBe(404);
    const after = await server.ctx.db
      .selectFrom('scim_tokens')
      .select('id')
      .where('connection_id', '=', theirs.connectionId)
      .execute();
    expect(after).toEqual(before);
    expect((await theirs.scim('GET', '/Users')).status).toBe(200);
    const roles = await portal(
      `/portal/connections/${theirs.connectionId}/roles`,
      cookie,
      form({ _csrf: csrf, action: 'save' }),
    );
    expect(roles.status).toBe(404);
    for (const [action, body] of [
      ['/guard', { _csrf: csrf, guard: 'on', max_in_window: '1', window: '1h' }],
      ['/guard/release', { _csrf: csrf, window: '1h' }],
    ] as const) {
      const refused = await portal(`/portal/connections/${theirs.connectionId}${action}`, cookie, form(body));
      expect(refused.status).toBe(404);
    }
    const guards = await server.ctx.db
      .selectFrom('deprovision_guards')
      .select('connection_id')
      .where('connection_id', '=', theirs.connectionId)
      .execute();
    expect(guards).toEqual([]);
  });

  it('rotates the token with the chosen grace period, and revokes at once with 0', async () => {
    const connection = await createConnection(server, 'okta');
    const cookie = await openLink((await createLink(connection.organizationId)).url);
    const page = await portal(`/portal/connections/${connection.connectionId}/token`, cookie);
    const csrf = csrfOf(page.text);
    const graced = await portal(
      `/portal/connections/${connection.connectionId}/token`,
      cookie,
      form({ _csrf: csrf, grace_seconds: '3600' }),
    );
    expect(graced.status).toBe(201);
    const second = /rst_scim_[A-Za-z0-9_-]{43}/.exec(graced.text)![0];
    expect((await connection.scim('GET', '/Users')).status).toBe(200);
    expect((await connection.scim('GET', '/Users', { token: second })).status).toBe(200);
    const revoked = await portal(
      `/portal/connections/${connection.connectionId}/token`,
      cookie,
      form({ _csrf: csrf, grace_seconds: '0' }),
    );
    expect(revoked.status).toBe(201);
    expect(revoked.text).toContain('previous token has stopped working');
    const third = /rst_scim_[A-Za-z0-9_-]{43}/.exec(revoked.text)![0];
    server.ctx.scimAuthCache.clear();
    expect((await connection.scim('GET', '/Users')).status).toBe(401);
    expect((await connection.scim('GET', '/Users', { token: second })).status).toBe(401);
    expect((await connection.scim('GET', '/Users', { token: third })).status).toBe(200);
    const bad = await portal(
      `/portal/connections/${connection.connectionId}/token`,
      cookie,
      form({ _csrf: csrf, grace_seconds: '5' }),
    );
    expect(bad.status).toBe(400);
    // The errors-only log shows the tenant's failed requests; requests with a wrong or revoked
    // token are nobody's in particular and stay out of it (anyone could write lines there).
    const invalid = await connection.scim('GET', `/Users?filter=${encodeURIComponent('userName eq')}`, {
      token: third,
    });
    expect(invalid.status).toBe(400);
    const log = await portal(`/portal/connections/${connection.connectionId}/log?errors=1`, cookie);
    expect(log.text).toContain('<td>400 · Okta sent something that could not be accepted (invalid filter');
    expect(log.text).not.toContain('<td>401 · ');
    expect(log.text).not.toContain('<td>200 · ');
  });

  it('says when the IdP still uses a token that is about to stop working', async () => {
    const connection = await createConnection(server, 'onelogin');
    const cookie = await openLink((await createLink(connection.organizationId)).url);
    const overviewState = async () => /badge badge-(\w+)/.exec((await portal('/portal', cookie)).text)?.[1];
    expect(await overviewState()).toBe('waiting');
    const csrf = csrfOf((await portal(`/portal/connections/${connection.connectionId}/token`, cookie)).text);
    const rotated = await portal(
      `/portal/connections/${connection.connectionId}/token`,
      cookie,
      form({ _csrf: csrf, grace_seconds: '86400' }),
    );
    expect(rotated.status).toBe(201);
    // OneLogin keeps calling with the old token (its use is recorded off the request path).
    expect((await connection.scim('GET', '/Users')).status).toBe(200);
    for (let i = 0; i < 50 && (await overviewState()) !== 'token_expiring'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const overview = (await portal('/portal', cookie)).text;
    expect(overview).toContain('Token expiring');
    expect(overview).toContain(
      'OneLogin still uses the previous token, which stops working at 2026-11-29 12:00 UTC',
    );
    // Once OneLogin uses the new token, it is just syncing.
    const newToken = /rst_scim_[A-Za-z0-9_-]{43}/.exec(rotated.text)![0];
    expect((await connection.scim('GET', '/Users', { token: newToken })).status).toBe(200);
    for (let i = 0; i < 50 && (await overviewState()) !== 'syncing'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await overviewState()).toBe('syncing');
  });

  it('previews role changes exactly as saving them resolves', async () => {
    const connection = await createConnection(server, 'entra');
    await server.api('POST', '/v1/roles', {
      body: { key: 'finance', name: 'Finance', permissions: ['invoices:*'] },
    });
    const ids: string[] = [];
    for (const name of ['ana@acme.test', 'bo@acme.test', 'cy@acme.test']) {
      const created = await connection.scim('POST', '/Users', { body: userBody(name) });
      ids.push(created.body.id);
    }
    const finance = await connection.scim('POST', '/Groups', {
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        displayName: 'Finance',
        members: [{ value: ids[0] }, { value: ids[1] }],
      },
    });
    const admins = await connection.scim('POST', '/Groups', {
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        displayName: 'Admins',
        members: [{ value: ids[1] }],
      },
    });
    expect(admins.status).toBe(201);
    const added = await connection.scim('PATCH', `/Groups/${finance.body.id}`, {
      body: patchOp({ op: 'add', path: 'members', value: [{ value: ids[2] }] }),
    });
    expect(added.status).toBeLessThan(300);
    const mappings = [
      { group: 'Admins', role: 'admin' },
      { group: 'finance', role: 'finance' },
    ];
    const change = { at: new Date().toISOString(), request_id: 'req_preview_test', via: 'portal' } as const;
    const headBefore = await server.ctx.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    const preview = await summarizeRolePreview(server.ctx, connection.connectionId, mappings, change);
    // Nothing changed and no event was written.
    const headAfter = await server.ctx.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    expect(headAfter.n).toEqual(headBefore.n);
    const stillDefault = await server.api(
      'GET',
      `/v1/organizations/${connection.organizationId}/memberships`,
    );
    expect(stillDefault.body.data.map((m: { role: string }) => m.role)).toEqual([
      'member',
      'member',
      'member',
    ]);
    expect(preview.total).toBe(3);
    expect(preview.to_roles).toEqual({ admin: 1, finance: 2 });
    expect(preview.changes.map((c) => [c.user_name, c.from, c.to])).toEqual([
      ['ana@acme.test', 'member', 'finance'],
      ['bo@acme.test', 'member', 'admin'],
      ['cy@acme.test', 'member', 'finance'],
    ]);
    await server.api('PUT', `/v1/connections/${connection.connectionId}/role_mappings`, {
      body: { mappings },
    });
    const saved = await server.api('GET', `/v1/organizations/${connection.organizationId}/memberships`);
    const byName = Object.fromEntries(
      saved.body.data.map((m: { user: { user_name: string }; role: string }) => [m.user.user_name, m.role]),
    );
    expect(byName).toEqual(Object.fromEntries(preview.changes.map((c) => [c.user_name, c.to])));
    // Once saved, the same preview changes nobody.
    expect((await summarizeRolePreview(server.ctx, connection.connectionId, mappings, change)).total).toBe(0);
    await expect(
      summarizeRolePreview(server.ctx, connection.connectionId, [{ group: 'Admins', role: 'nope' }], change),
    ).rejects.toThrow(/no role with key "nope"/);
  });
});
