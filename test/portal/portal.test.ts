import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/harness.js';
import { type IsolatedContext, launchBrowser, openIsolatedContext } from '../browser/harness.js';
import { sdkFor } from '../support.js';

/**
 * The Admin Portal in a real browser (issue 15): an app creates a link with the SDK, the IT admin
 * connects Entra ID, Entra's first SCIM requests arrive, the admin maps a group to a role after a
 * preview, and the app sees the roles through the SDK. Set PORTAL_SCREENSHOTS=<dir> to save a
 * PNG of each page (docs/portal/ holds the ones the README shows).
 */

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const ENTRA_JSON = 'application/scim+json; charset=utf-8';
const SHOTS = process.env.PORTAL_SCREENSHOTS ? resolve(process.env.PORTAL_SCREENSHOTS) : undefined;

let server: TestServer;
let browser: Browser;
/** Added to the real clock: the expired-link test moves time forward. */
let offsetMs = 0;

beforeAll(async () => {
  server = await startTestServer({ now: () => new Date(Date.now() + offsetMs) });
  browser = await launchBrowser();
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function shot(page: Page, name: string) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** Requests as Entra's provisioning service sends them (with aadOptscim062020). */
function entraClient(baseUrl: string, token: string) {
  const base = baseUrl.replace(/\?aadOptscim062020$/, '');
  return async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/scim+json',
        ...(body === undefined ? {} : { 'content-type': ENTRA_JSON }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
}

const entraUser = (userName: string, given: string, family: string) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
  externalId: randomUUID(),
  userName,
  active: true,
  displayName: `${given} ${family}`,
  emails: [{ primary: true, type: 'work', value: userName }],
  meta: { resourceType: 'User' },
  name: { formatted: `${given} ${family}`, familyName: family, givenName: given },
  [ENTERPRISE]: { department: 'Finance' },
  roles: [],
});

function expectLocalOnly(recorded: IsolatedContext) {
  expect(recorded.blocked).toEqual([]);
  expect(recorded.requests.length).toBeGreaterThan(0);
  for (const { url } of recorded.requests) expect(new URL(url).hostname).toBe('127.0.0.1');
}

describe('the Admin Portal in a browser', () => {
  it('walks the whole journey: link, Entra ID, first request, groups to roles', {
    timeout: 240_000,
  }, async () => {
    const roster = sdkFor(server);
    const org = await roster.organizations.create({ name: 'Acme Corp' });
    await roster.roles.create({
      key: 'finance',
      name: 'Finance',
      permissions: ['invoices:read', 'invoices:write'],
    });
    const link = await roster.organizations.createPortalLink({
      organizationId: org.id,
      intent: 'directory_sync',
      return_url: 'http://localhost/settings',
    });
    expect(link.url).toContain('/portal/start?token=');

    const recorded = await openIsolatedContext(browser);
    await recorded.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    const page = await recorded.context.newPage();

    // The link opens the portal and leaves the token out of the address bar.
    await page.goto(link.url);
    expect(new URL(page.url()).pathname).toBe('/portal');
    await expect(page.locator('h1').textContent()).resolves.toBe('Directory sync');
    await expect(page.locator('.brand').textContent()).resolves.toContain('Acme Corp');
    await shot(page, '01-overview-empty');

    // Connect: choose Entra ID and read its guide.
    await page.getByRole('link', { name: 'Connect an identity provider' }).click();
    await shot(page, '02-choose-idp');
    await page.getByRole('link', { name: 'Microsoft Entra ID' }).click();
    const guide = await page.locator('main').textContent();
    expect(guide).toContain('Tenant URL');
    expect(guide).toContain('Secret Token');
    expect(guide).toContain('aadOptscim062020');
    await page.getByLabel('Name of this connection').fill('Acme Entra ID');
    await shot(page, '03-entra-guide');
    await page.getByRole('button', { name: 'Create the connection and show the token' }).click();

    // The token: hidden until revealed, then copied with the button.
    const tokenField = page.locator('#token');
    expect(await tokenField.isVisible()).toBe(false);
    await page.getByText('Reveal the token').click();
    expect(await tokenField.isVisible()).toBe(true);
    const token = await tokenField.inputValue();
    expect(token).toMatch(/^rst_scim_[A-Za-z0-9_-]{43}$/);
    const baseUrl = await page.locator('#base-url').inputValue();
    expect(baseUrl).toMatch(/\/scim\/v2\/conn_[0-9a-z]{26}\?aadOptscim062020$/);
    await page.locator('button.copy[data-copy="token"]').click();
    await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(token);
    await expect(page.locator('button.copy[data-copy="token"]').textContent()).resolves.toBe('Copied');
    await shot(page, '04-token-revealed');
    // Shown once: the token is nowhere else.
    await page.getByRole('link', { name: 'Done: check the connection' }).click();
    expect(await page.content()).not.toContain(token);
    const connectionPath = new URL(page.url()).pathname;
    const connectionId = connectionPath.split('/').pop()!;

    // Live check: waiting, then the page updates itself when Entra's requests arrive.
    await expect(page.locator('#live').getAttribute('data-state')).resolves.toBe('waiting');
    await shot(page, '05-live-waiting');
    const entra = entraClient(baseUrl, token);
    const probe = await entra('GET', '/Users?filter=userName+eq+%22cf4d78e8-cc4f-4d5d-b8b9-183561c0104a%22');
    expect(probe.status).toBe(200);
    const people = [
      ['ada@acme.test', 'Ada', 'Lovelace'],
      ['grace@acme.test', 'Grace', 'Hopper'],
      ['linus@acme.test', 'Linus', 'Pauling'],
    ] as const;
    const ids: string[] = [];
    for (const [userName, given, family] of people) {
      const lookup = await entra('GET', `/Users?filter=userName+eq+%22${encodeURIComponent(userName)}%22`);
      expect(lookup.body.totalResults).toBe(0);
      const created = await entra('POST', '/Users', entraUser(userName, given, family));
      expect(created.status).toBe(201);
      ids.push(created.body.id);
    }
    const groupLookup = await entra(
      'GET',
      '/Groups?excludedAttributes=members&filter=displayName+eq+%22Finance%22',
    );
    expect(groupLookup.body.totalResults).toBe(0);
    const group = await entra('POST', '/Groups', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      externalId: randomUUID(),
      displayName: 'Finance',
      members: [],
    });
    expect(group.status).toBe(201);
    const added = await entra('PATCH', `/Groups/${group.body.id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'add', path: 'members', value: [{ value: ids[0] }, { value: ids[1] }] }],
    });
    expect(added.status).toBeLessThan(300);
    // Entra creating a user that is already here (as when its matching lookup fell through).
    const duplicate = await entra('POST', '/Users', entraUser(people[0][0], people[0][1], people[0][2]));
    expect(duplicate.status).toBe(409);
    // A request with a stale token (a rotation Entra was not told about) is nobody's: it answers
    // 401 and stays out of this organization's log, where anyone could otherwise write lines.
    const stale = entraClient(baseUrl, 'rst_scim_stale');
    expect((await stale('GET', '/Groups?filter=displayName+eq+%22x%22')).status).toBe(401);

    const live = page.locator('#live[data-state="errors"], #live[data-state="syncing"]');
    await live.waitFor({ timeout: 30_000 });
    await page.locator('#live [data-count="groups"]', { hasText: '1' }).waitFor({ timeout: 30_000 });
    const liveText = (await page.locator('#live').textContent()) ?? '';
    expect(liveText).toContain('Microsoft Entra ID is connected');
    expect(liveText).toContain('(GET /Users → 200)');
    await expect(page.locator('#live [data-count="users"]').textContent()).resolves.toBe('3');
    await expect(page.locator('#state').textContent()).resolves.toBe('Errors in the last hour');
    expect(liveText).toContain('Grace Hopper');
    expect(liveText).toContain('Finance');
    expect(liveText).toContain('Microsoft Entra ID tried to create a user or group that already exists');
    expect(liveText).not.toContain('The token in Microsoft Entra ID is wrong');
    await shot(page, '06-live-first-request');

    // Groups to roles: preview first, then save.
    await page.getByRole('link', { name: 'Groups and roles' }).click();
    await page.getByLabel('Finance').selectOption('finance');
    await page.getByRole('button', { name: 'Preview changes' }).click();
    const preview = (await page.locator('#preview').textContent()) ?? '';
    expect(preview).toContain('2 people’s role would change');
    expect(preview).toContain('Ada Lovelace');
    expect(preview).toContain('Grace Hopper');
    expect(preview).not.toContain('Linus');
    // Nothing is saved by a preview.
    expect(
      (await roster.organizations.listMembers({ organizationId: org.id, role: 'finance' })).data,
    ).toEqual([]);
    await shot(page, '07-roles-preview');
    await page.getByRole('button', { name: 'Save and change 2 roles' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Saved');

    // The app sees the roles.
    const finance = await roster.organizations.listMembers({ organizationId: org.id, role: 'finance' });
    expect(finance.data.map((m) => m.user.email).sort()).toEqual(['ada@acme.test', 'grace@acme.test']);
    expect(finance.data[0]!.permissions).toEqual(['invoices:read', 'invoices:write']);
    // Written by the portal: the role changes carry it as the actor, like their explanation.
    const events = await roster.events.list({
      organizationId: org.id,
      types: ['membership.updated', 'connection.updated'],
      wait: 10,
    });
    const portalEvents = events.data.filter((e) => e.actor?.type === 'portal');
    // The guard the setup form offered (on by default), then the role mappings.
    expect(portalEvents.map((e) => e.type).sort()).toEqual([
      'connection.updated',
      'connection.updated',
      'membership.updated',
      'membership.updated',
    ]);
    const explained = await roster.organizations.explainMember({ membershipId: finance.data[0]!.id });
    expect(explained.last_change?.via).toBe('portal');

    // Token and sync log pages, and the overview with its counts.
    await page.getByRole('link', { name: 'Token' }).click();
    await shot(page, '08-token');
    await page.getByRole('link', { name: 'Sync log' }).click();
    expect(await page.locator('table.log tbody tr').count()).toBeGreaterThanOrEqual(9);
    await page.getByLabel('Only failed requests').check();
    await page.getByRole('button', { name: 'Filter' }).click();
    expect(await page.locator('table.log tbody tr').count()).toBe(1);
    expect(await page.locator('table.log').textContent()).toMatch(/409.*req_[0-9a-z]{26}/s);
    await shot(page, '09-sync-log-errors');
    await page.goto(`${server.url}/portal`);
    const overview = (await page.locator('main').textContent()) ?? '';
    expect(overview).toContain('Acme Entra ID');
    expect(overview).toContain('Errors in the last hour');
    await shot(page, '10-overview');

    // Another organization's connection does not exist for this session.
    const other = await roster.organizations.create({ name: 'Other Inc' });
    const theirs = await roster.connections.create({
      organizationId: other.id,
      name: 'Other Okta',
      provider: 'okta',
    });
    for (const suffix of ['', '/roles', '/log', '/token', '/guard']) {
      const response = await page.goto(`${server.url}/portal/connections/${theirs.id}${suffix}`);
      expect(response?.status()).toBe(404);
      expect(await page.content()).not.toContain('Other Okta');
    }
    expect((await page.goto(`${server.url}${connectionPath}`))?.status()).toBe(200);

    // A form without its CSRF token is refused, and nothing changes.
    await page.goto(`${server.url}${connectionPath}/token`);
    await page.locator('input[name="_csrf"]').evaluate((input) => input.remove());
    await page.getByLabel('Immediately: revoke the current token now (after a leak)').check();
    await page.getByRole('button', { name: 'Create a new token' }).click();
    expect(await page.locator('h1').textContent()).toBe('This form has expired');
    expect((await entra('GET', '/Users?count=1')).status).toBe(200);

    // On a phone.
    const phone = await openIsolatedContext(browser, { viewport: { width: 390, height: 844 } });
    const phonePage = await phone.context.newPage();
    await phonePage.goto(
      (await roster.organizations.createPortalLink({ organizationId: org.id, intent: 'directory_sync' })).url,
    );
    await phonePage.goto(`${server.url}/portal/connections/${connectionId}/roles`);
    const width = await phonePage.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
    await shot(phonePage, '11-phone-roles');
    await phone.context.close();
    expectLocalOnly(phone);

    await recorded.context.close();
    expectLocalOnly(recorded);
  });

  it('offers the deactivation guard at setup, shows it holding a mass deactivation, and releases it', {
    timeout: 240_000,
  }, async () => {
    const roster = sdkFor(server);
    const org = await roster.organizations.create({ name: 'Globex' });
    const link = await roster.organizations.createPortalLink({
      organizationId: org.id,
      intent: 'directory_sync',
    });
    const recorded = await openIsolatedContext(browser);
    const page = await recorded.context.newPage();
    await page.goto(link.url);

    // Setting up Okta: the guard is offered, on, with limits suggested for a directory not yet synced.
    await page.goto(`${server.url}/portal/connect/okta`);
    const offered = page.getByLabel('Hold mass deactivations (recommended)');
    expect(await offered.isChecked()).toBe(true);
    expect(await page.getByLabel('At most this many people').inputValue()).toBe('50');
    expect(await page.getByLabel('or this percentage of the users').inputValue()).toBe('10');
    expect(await page.locator('#guard-help').textContent()).toContain('Suggested before the first sync');
    // A bad limit is refused with the form as typed, and no connection is created.
    await page.getByLabel('Name of this connection').fill('Globex Okta');
    await page.getByLabel('or this percentage of the users').fill('250');
    // The browser refuses it first; without that check (an old browser), the server does.
    const percentField = page.locator('#max_percent');
    expect(await percentField.evaluate((input) => (input as HTMLInputElement).validity.valid)).toBe(false);
    await percentField.evaluate((input) => input.removeAttribute('max'));
    await page.getByRole('button', { name: 'Create the connection and show the token' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('at most 100');
    expect(await page.getByLabel('Name of this connection').inputValue()).toBe('Globex Okta');
    expect((await roster.connections.list({ organizationId: org.id })).data).toEqual([]);
    // Ten people will sync: at most 3 of them, or half (the lower limit applies).
    await page.getByLabel('or this percentage of the users').fill('50');
    await page.getByLabel('At most this many people').fill('3');
    await page.getByLabel('within').selectOption('1h');
    await shot(page, '13-guard-offered');
    // From the keyboard (a click right after a full-page screenshot can land beside the button).
    await page.getByRole('button', { name: 'Create the connection and show the token' }).press('Enter');
    await page.getByText('Reveal the token').click();
    const token = await page.locator('#token').inputValue();
    const baseUrl = await page.locator('#base-url').inputValue();
    const [listed] = (await roster.connections.list({ organizationId: org.id })).data;
    const connection = await roster.connections.get({ connectionId: listed!.id });
    expect(connection.deprovision_guard).toMatchObject({
      enabled: true,
      max_in_window: 3,
      max_percent: 50,
      window: '1h',
    });

    // Okta pushes 10 people, then deactivates 5 of them: 3 go through, the guard holds the rest.
    const okta = entraClient(baseUrl, token);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const created = await okta('POST', '/Users', entraUser(`p${i}@globex.test`, `Person${i}`, 'Globex'));
      expect(created.status).toBe(201);
      ids.push(created.body.id);
    }
    const deactivate = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { active: false } }],
    };
    const answers = [];
    for (const id of ids.slice(0, 5)) answers.push((await okta('PATCH', `/Users/${id}`, deactivate)).status);
    expect(answers).toEqual([200, 200, 200, 503, 503]);

    await page.goto(`${server.url}/portal`);
    await expect(page.locator('.badge').first().textContent()).resolves.toBe('Deactivations held');
    await page.getByRole('link', { name: 'Globex Okta' }).click();
    await page.getByRole('link', { name: 'Deactivation guard' }).click();
    const held = (await page.locator('#held').textContent()) ?? '';
    expect(held).toContain('Deactivations are held since');
    expect(held).toContain('(3 within 1h)');
    expect(held).toContain('These 3 went through before the guard held');
    for (const i of [0, 1, 2]) expect(held).toContain(`p${i}@globex.test`);
    expect(held).not.toContain('p3@globex.test');
    await shot(page, '14-guard-held');

    // The admin releases it for an hour: the connection is active, and Okta's retries go through.
    await page.getByRole('button', { name: 'Let every deactivation through for 1 hour' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Released');
    expect(await page.locator('#held').count()).toBe(0);
    await expect(page.locator('#guard-state').textContent()).resolves.toContain('Released until');
    expect((await roster.connections.get({ connectionId: connection.id })).state).toBe('active');
    for (const id of ids.slice(3, 5))
      expect((await okta('PATCH', `/Users/${id}`, deactivate)).status).toBe(200);

    // Later the admin changes the limits, then turns the guard off.
    await page.getByLabel('At most this many people').fill('20');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toBe('Saved.');
    expect((await roster.connections.get({ connectionId: connection.id })).deprovision_guard).toMatchObject({
      enabled: true,
      max_in_window: 20,
    });
    await shot(page, '15-guard-settings');
    await page.getByLabel('Hold mass deactivations (recommended)').uncheck();
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.locator('#guard-state').textContent()).resolves.toContain('The guard is off');
    expect((await roster.connections.get({ connectionId: connection.id })).deprovision_guard?.enabled).toBe(
      false,
    );
    await recorded.context.close();
    expectLocalOnly(recorded);
  });

  it('works without JavaScript', { timeout: 120_000 }, async () => {
    const roster = sdkFor(server);
    const org = await roster.organizations.create({ name: 'No Script GmbH' });
    const link = await roster.organizations.createPortalLink({
      organizationId: org.id,
      intent: 'directory_sync',
    });
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(link.url);
    await page.getByRole('link', { name: 'Connect an identity provider' }).click();
    await page.getByRole('link', { name: 'Google Workspace' }).click();
    expect(await page.locator('main').textContent()).toContain('cannot push SCIM to a custom app');
    expect(await page.getByRole('button', { name: 'Create the connection and show the token' }).count()).toBe(
      0,
    );
    await page.getByRole('link', { name: 'Use another SCIM 2.0 client' }).click();
    await page.getByRole('button', { name: 'Create the connection and show the token' }).click();
    // The copy buttons need the script; revealing the token does not.
    expect(await page.locator('button.copy').first().isVisible()).toBe(false);
    await page.getByText('Reveal the token').click();
    const token = await page.locator('#token').inputValue();
    expect(await page.locator('#token').isVisible()).toBe(true);
    await page.getByRole('link', { name: 'Done: check the connection' }).click();
    // Without the script the live check reloads itself.
    expect(await page.locator('noscript').innerHTML()).toContain('http-equiv="refresh"');
    const base = await roster.connections.list({ organizationId: org.id });
    const scim = entraClient(base.data[0]!.scim.base_url, token);
    expect((await scim('GET', '/Users')).status).toBe(200);
    await page.reload();
    expect(await page.locator('#live').getAttribute('data-state')).toBe('syncing');
    await context.close();
  });

  it('refuses a reused link and an expired one with a page that says what to do', {
    timeout: 120_000,
  }, async () => {
    const roster = sdkFor(server);
    const org = await roster.organizations.create({ name: 'Reuse Ltd' });
    const recorded = await openIsolatedContext(browser);
    const page = await recorded.context.newPage();

    const link = await roster.organizations.createPortalLink({
      organizationId: org.id,
      intent: 'directory_sync',
    });
    expect((await page.goto(link.url))?.status()).toBe(200);
    const again = await recorded.context.newPage();
    const reused = await again.goto(link.url);
    expect(reused?.status()).toBe(410);
    expect(await again.locator('main').textContent()).toContain('already been used');
    expect(await again.locator('main').textContent()).toContain('Ask the app for a new link');
    await shot(again, '12-link-used');

    const late = await roster.organizations.createPortalLink({
      organizationId: org.id,
      intent: 'directory_sync',
    });
    offsetMs = 5 * 60_000 + 1000;
    try {
      const fresh = await openIsolatedContext(browser);
      const expiredPage = await fresh.context.newPage();
      const expired = await expiredPage.goto(late.url);
      expect(expired?.status()).toBe(410);
      expect(await expiredPage.locator('main').textContent()).toContain('has expired');
      // No session was started: the portal itself refuses this browser.
      expect((await expiredPage.goto(`${server.url}/portal`))?.status()).toBe(401);
      await fresh.context.close();
      expectLocalOnly(fresh);
    } finally {
      offsetMs = 0;
    }
    await recorded.context.close();
    expectLocalOnly(recorded);
  });
});
