import type { AddressInfo } from 'node:net';
import { createRevocationList, createRoster, type RevocationList, type Roster } from '@roster/sdk';
import { createNodeSessionVerifier } from '@roster/sdk/express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../server/test/harness.js';
import { createConnection, patchOp, type TestConnection } from '../../../server/test/scim-helpers.js';
import { createApp } from '../src/app.js';

/**
 * End to end: a real Roster server (PGlite, or PostgreSQL with DATABASE_URL), the example app
 * guarded by `@roster/sdk/express`, and a browser that keeps cookies. The clock of both is shifted
 * to make tokens expire instead of sleeping through their minute.
 */

let server: TestServer;
let roster: Roster;
let entra: TestConnection;
let appOffsetMs = 0;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  // Roster and the app share one shifted clock: moving it on expires tokens without sleeping.
  server = await startTestServer({
    now: () => new Date(Date.now() + appOffsetMs),
  });
  roster = createRoster({ baseUrl: server.url, secretKey: server.secretKey });
  entra = await createConnection(server, 'entra');
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await server?.close();
});

async function startApp(revocations?: RevocationList): Promise<string> {
  const app = createApp({
    roster,
    rosterUrl: server.url,
    revocations,
    secureCookies: false,
    now: () => Date.now() + appOffsetMs,
  });
  const listener = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => listener.once('listening', resolve));
  closers.push(() => new Promise((resolve) => listener.close(() => resolve())));
  return `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
}

/** A browser: sends its cookies, stores Set-Cookie (Max-Age=0 deletes). */
class Browser {
  readonly cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async request(method: string, path: string, body?: unknown) {
    const headers: Record<string, string> = {};
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookies = response.headers.getSetCookie();
    for (const cookie of setCookies) {
      const [pair] = cookie.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at);
      if (/Max-Age=0(;|$)/.test(cookie)) this.cookies.delete(name);
      else this.cookies.set(name, pair!.slice(at + 1));
    }
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined, setCookies };
  }
}

let counter = 0;
/** A user pushed by Entra (its verbatim create body shape). */
async function entraUser(): Promise<{ id: string; email: string }> {
  const userName = `entra${++counter}-${Date.now()}@contoso.test`;
  const created = await entra.scim('POST', '/Users', {
    body: {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      externalId: `ext-${counter}`,
      userName,
      active: true,
      emails: [{ primary: true, type: 'work', value: userName }],
      name: { givenName: 'Given', familyName: 'Family' },
    },
  });
  expect(created.status, created.text).toBe(201);
  return { id: created.body.id, email: userName };
}

const deactivateLikeEntra = (userId: string) =>
  entra.scim('PATCH', `/Users/${userId}`, {
    body: patchOp({ op: 'Replace', path: 'active', value: 'False' }),
  });

async function signedIn(
  base: string,
  email: string,
  organizationId = entra.organizationId,
): Promise<Browser> {
  const browser = new Browser(base);
  const login = await browser.request('POST', '/login', { email, organization_id: organizationId });
  expect(login.status, JSON.stringify(login.body)).toBe(200);
  expect([...browser.cookies.keys()].sort()).toEqual(['roster_refresh', 'roster_session']);
  return browser;
}

describe('the example Express app', () => {
  it('Entra deactivates a user ("False"): the next refresh is refused, cookies cleared, 401', async () => {
    const base = await startApp();
    const user = await entraUser();
    const browser = await signedIn(base, user.email);
    expect((await browser.request('GET', '/api/me')).body).toMatchObject({
      user_id: user.id,
      org_id: entra.organizationId,
    });

    expect((await deactivateLikeEntra(user.id)).status).toBe(200);
    // Without a revocation list, the token in hand is good until it expires (60 s)…
    expect((await browser.request('GET', '/api/me')).status).toBe(200);
    // …and then the middleware's refresh is refused.
    appOffsetMs += 70_000;
    const after = await browser.request('GET', '/api/me');
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('user_inactive');
    expect(browser.cookies.size).toBe(0);
    expect((await browser.request('GET', '/')).body).toEqual({ signed_in: false, user_id: null });
  });

  it('refreshes an expired token transparently, once for parallel requests', async () => {
    const base = await startApp();
    const user = await entraUser();
    const browser = await signedIn(base, user.email);
    const before = browser.cookies.get('roster_session');
    appOffsetMs += 70_000;
    const results = await Promise.all(Array.from({ length: 5 }, () => browser.request('GET', '/api/me')));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(browser.cookies.get('roster_session')).not.toBe(before);
    // One refresh reached Roster (the session moved one generation): a second use of the refresh
    // token would have revoked the session.
    const sessions = await server.ctx.db
      .selectFrom('sessions')
      .select(['refresh_generation', 'revoked_at'])
      .where('user_id', '=', user.id)
      .execute();
    expect(sessions).toEqual([{ refresh_generation: 2, revoked_at: null }]);
    expect((await browser.request('GET', '/api/me')).status).toBe(200);
  });

  it('enforces permissions, and a role change reaches the app at the next refresh', async () => {
    const base = await startApp();
    const member = await roster.organizations.addMember({
      organizationId: entra.organizationId,
      email: `api-${Date.now()}@contoso.test`,
    });
    const browser = await signedIn(base, member.user.email!);
    const denied = await browser.request('GET', '/api/invoices');
    expect([denied.status, denied.body.error.code]).toEqual([403, 'forbidden']);
    const role = await roster.roles.create({
      key: `billing-${Date.now()}`,
      name: 'Billing',
      permissions: ['invoices:read'],
    });
    await roster.organizations.updateMember({
      organizationId: entra.organizationId,
      membershipId: member.id,
      role: role.key,
    });
    appOffsetMs += 70_000;
    expect((await browser.request('GET', '/api/invoices')).status).toBe(200);
    expect((await browser.request('GET', '/api/me')).body.role).toBe(role.key);
  });

  it('key rotation signs nobody out; a forged cookie is rejected', async () => {
    const base = await startApp();
    const user = await entraUser();
    const browser = await signedIn(base, user.email);
    await roster.signingKeys.rotate();
    expect((await browser.request('GET', '/api/me')).status).toBe(200);
    appOffsetMs += 70_000;
    expect((await browser.request('GET', '/api/me')).status).toBe(200); // refreshed, new key
    const [header, payload] = browser.cookies.get('roster_session')!.split('.');
    const forged = new Browser(base);
    forged.cookies.set('roster_session', `${header}.${payload}.${'A'.repeat(86)}`);
    const rejected = await forged.request('GET', '/api/me');
    expect([rejected.status, rejected.body.error.code]).toEqual([401, 'invalid_signature']);
  });

  it('logout revokes the session: its refresh token is dead', async () => {
    const base = await startApp();
    const user = await entraUser();
    const browser = await signedIn(base, user.email);
    const refreshToken = decodeURIComponent(browser.cookies.get('roster_refresh')!);
    expect((await browser.request('POST', '/logout')).status).toBe(204);
    expect(browser.cookies.size).toBe(0);
    await expect(roster.sessions.refresh({ refresh_token: refreshToken })).rejects.toMatchObject({
      status: 401,
      code: 'session_revoked',
    });
  });
});

describe('with the revocation list', () => {
  it('rejects a deactivated user within about a second, long before the token expires', async () => {
    let listOffsetMs = 0;
    const revocations = createRevocationList({
      events: roster.events,
      waitSeconds: 5,
      now: () => Date.now() + listOffsetMs,
    });
    await revocations.start();
    closers.push(() => revocations.stop());
    const base = await startApp(revocations);
    const user = await entraUser();
    const browser = await signedIn(base, user.email);
    expect((await browser.request('GET', '/api/me')).status).toBe(200);

    const started = Date.now();
    expect((await deactivateLikeEntra(user.id)).status).toBe(200);
    let last = await browser.request('GET', '/api/me');
    while (last.status === 200 && Date.now() - started < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      last = await browser.request('GET', '/api/me');
    }
    const elapsed = Date.now() - started;
    // The token would have been accepted for 60 s; it is refused as soon as the event arrives.
    expect(last.status).toBe(401);
    expect(elapsed).toBeLessThan(20_000);
    // Then the refresh is refused too, and the cookies go.
    expect(['session_revoked', 'user_inactive']).toContain(last.body.error.code);
    expect(browser.cookies.size).toBe(0);
    console.info(`revocation reached the app ${elapsed} ms after the SCIM deactivation answered`);

    // Bounded memory: entries leave once every token they concern has expired.
    expect(revocations.size).toBeGreaterThan(0);
    listOffsetMs += 3 * 3_600_000;
    expect(revocations.size).toBe(0);
  });

  it('a role or permission change reaches the app within about a second (refreshed with cookies, role_changed without)', async () => {
    const revocations = createRevocationList({ events: roster.events, waitSeconds: 5 });
    await revocations.start();
    closers.push(() => revocations.stop());
    const base = await startApp(revocations);
    const bearer = createNodeSessionVerifier({
      baseUrl: server.url,
      cookies: false,
      revocations,
      now: () => Date.now() + appOffsetMs,
    });
    const stamp = Date.now();
    const finance = await roster.roles.create({
      key: `finance-${stamp}`,
      name: 'Finance',
      permissions: ['invoices:read'],
    });
    const audit = await roster.roles.create({ key: `audit-${stamp}`, name: 'Audit', permissions: [] });
    const propagation: number[] = [];

    /** Polls the app as the browser until `check` holds; records how long after `started`. */
    async function seen(
      browser: Browser,
      path: string,
      check: (r: Awaited<ReturnType<Browser['request']>>) => boolean,
    ) {
      const started = Date.now();
      for (;;) {
        const response = await browser.request('GET', path);
        if (check(response)) break;
        if (Date.now() - started > 20_000) throw new Error(`not seen: ${JSON.stringify(response.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return Date.now() - started;
    }

    // A pinned role (API member), changed back and forth.
    const member = await roster.organizations.addMember({
      organizationId: entra.organizationId,
      email: `roles-${stamp}@contoso.test`,
    });
    const browser = await signedIn(base, member.user.email!);
    for (let i = 0; i < 8; i++) {
      const role = i % 2 === 0 ? finance : audit;
      const before = browser.cookies.get('roster_session')!;
      const started = Date.now();
      await roster.organizations.updateMember({
        organizationId: entra.organizationId,
        membershipId: member.id,
        role: role.key,
      });
      await seen(browser, '/api/me', (r) => r.status === 200 && r.body.role === role.key);
      propagation.push(Date.now() - started);
      // Without cookies, the token from before the change is refused with a clear reason.
      expect(await bearer.verifyToken(before)).toMatchObject({
        status: 'signed_out',
        reason: 'role_changed',
      });
    }

    // A role edit: the permissions of every member with that role.
    expect((await browser.request('GET', '/api/me')).body.role).toBe(audit.key);
    expect((await browser.request('GET', '/api/invoices')).status).toBe(403);
    let started = Date.now();
    await roster.roles.update({ key: audit.key, permissions: ['invoices:read'] });
    await seen(browser, '/api/invoices', (r) => r.status === 200);
    propagation.push(Date.now() - started);

    // A group change and a mapping change in the IdP (Entra).
    const user = await entraUser();
    const scimBrowser = await signedIn(base, user.email);
    await roster.connections.setRoleMappings({
      connectionId: entra.connectionId,
      mappings: [{ group: `Finance ${stamp}`, role: finance.key }],
    });
    started = Date.now();
    const group = await entra.scim('POST', '/Groups', {
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        displayName: `Finance ${stamp}`,
        members: [{ value: user.id }],
      },
    });
    expect(group.status, group.text).toBe(201);
    await seen(scimBrowser, '/api/me', (r) => r.body?.role === finance.key);
    propagation.push(Date.now() - started);
    started = Date.now();
    await roster.connections.setRoleMappings({
      connectionId: entra.connectionId,
      mappings: [{ group: `Finance ${stamp}`, role: audit.key }],
    });
    await seen(scimBrowser, '/api/me', (r) => r.body?.role === audit.key);
    propagation.push(Date.now() - started);
    expect(scimBrowser.cookies.size).toBe(2);

    const sorted = [...propagation].sort((a, b) => a - b);
    const p95 = sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)];
    console.info(
      `role changes reached the app after p50 ${sorted[Math.floor(sorted.length / 2)]} ms, p95 ${p95} ms (${sorted.length} changes: ${sorted.join(', ')})`,
    );
  });

  it('starting up reads revocations of the last token lifetime', async () => {
    const base = await startApp();
    const user = await entraUser();
    const browser = await signedIn(base, user.email);
    const sessionId = (await browser.request('GET', '/api/me')).body.session_id;
    await roster.sessions.revoke({ sessionId });
    await server.sequencer.flush();
    const late = createRevocationList({ events: roster.events, waitSeconds: 5 });
    await late.start();
    closers.push(() => late.stop());
    expect(late.isRevoked({ sid: sessionId, sub: user.id, iat: Math.floor(Date.now() / 1000) })).toBe(true);
    expect(late.isRevoked({ sid: 'sess_other', sub: 'user_other', iat: Math.floor(Date.now() / 1000) })).toBe(
      false,
    );
  });
});
