import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestServer, type TestServer } from '../server/test/harness.js';
import { type IsolatedPage, launchBrowser, openIsolatedPage } from './browser/harness.js';

/**
 * The API reference as a person sees it: /docs in headless Chromium with every request to anything
 * but 127.0.0.1 blocked. The operations render, search finds them, and no request leaves the machine.
 */

const contract = parse(
  readFileSync(createRequire(import.meta.url).resolve('@roster/openapi/roster.yaml'), 'utf8'),
) as { paths: Record<string, Record<string, { summary?: string }>> };
const summaries = Object.values(contract.paths).flatMap((item) =>
  Object.values(item)
    .map((operation) => operation.summary)
    .filter((s): s is string => typeof s === 'string'),
);

describe('/docs in a real browser, offline', () => {
  let server: TestServer;
  let browser: Browser;
  let tab: IsolatedPage;

  beforeAll(async () => {
    server = await startTestServer();
    browser = await launchBrowser();
    tab = await openIsolatedPage(browser);
    const response = await tab.page.goto(`${server.url}/docs`, {
      waitUntil: 'networkidle',
      timeout: 120_000,
    });
    expect(response?.status()).toBe(200);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('renders every operation of the contract', async () => {
    expect(summaries.length).toBeGreaterThan(40);
    const text = (await tab.page.evaluate(() => document.body.textContent)) ?? '';
    const missing = summaries.filter((summary) => !text.includes(summary));
    expect(missing).toEqual([]);
    // The sidebar lists the tags, visible.
    await expect
      .poll(() => tab.page.getByText('Signing keys', { exact: true }).first().isVisible())
      .toBe(true);
    expect(tab.errors).toEqual([]);
  });

  it('search finds an operation', async () => {
    await tab.page.locator('[data-component-name*="Search"]').first().click();
    const input = tab.page.locator('input[placeholder="Search docs..."]');
    await input.fill('signing key');
    const hit = tab.page.locator('[data-component-name="Search/SearchItem"]', {
      hasText: 'Rotate the signing key',
    });
    await expect.poll(() => hit.count(), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await hit.first().textContent()).toContain('/v1/signing_keys/rotate');
    await tab.page.keyboard.press('Escape');
  }, 120_000);

  it('made no request that left the machine (each one recorded)', async () => {
    // Let late requests (images, deferred scripts, telemetry timers) happen before judging.
    await tab.page.waitForTimeout(2000);
    expect(tab.requests.length).toBeGreaterThan(0);
    expect(tab.requests[0]!.url).toBe(`${server.url}/docs`);
    expect(tab.blocked).toEqual([]);
    for (const request of tab.requests) expect(new URL(request.url).hostname).toBe('127.0.0.1');
    // Its assets came from this server.
    expect(tab.requests.map((r) => new URL(r.url).pathname)).toContain('/docs/assets/favicon.svg');
  });
});
