import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * Real-browser tests: Debian's headless Chromium driven by playwright-core, with the network cut
 * off at everything but the machine itself. Every request a page makes is recorded, so a test can
 * assert that none left the machine. Reusable by any test that opens a page Roster serves.
 *
 * Chromium comes from the OS (`apt-get install -y chromium`; .ci/run installs it): a missing
 * browser fails the test with that instruction instead of skipping it.
 */

export const CHROMIUM_PATH = process.env.ROSTER_CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // Defence in depth behind the request routing below: no host name resolves at all, so even a
  // request the routing never saw (browser internals) cannot reach another machine by name.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

/** The only host a page may talk to. */
export const ALLOWED_HOST = '127.0.0.1';

export interface RecordedRequest {
  url: string;
  method: string;
  resourceType: string;
}

export interface IsolatedPage {
  page: Page;
  context: BrowserContext;
  /** Every request the page made, in order (allowed or not). */
  requests: RecordedRequest[];
  /** Requests to anything but 127.0.0.1: aborted, and listed here. */
  blocked: RecordedRequest[];
  /** Uncaught page errors and console errors, for diagnosis. */
  errors: string[];
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install Debian's package (apt-get update && apt-get install -y chromium; .ci/run does) or set ROSTER_CHROMIUM_PATH.`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, timeout: 120_000 });
}

/** Whether a URL leaves the machine: any network scheme whose host is not 127.0.0.1. */
export function leavesMachine(url: string): boolean {
  const parsed = new URL(url);
  if (parsed.protocol === 'data:' || parsed.protocol === 'blob:' || parsed.protocol === 'about:')
    return false;
  return parsed.hostname !== ALLOWED_HOST;
}

export interface IsolatedContext {
  context: BrowserContext;
  /** Every request the context's pages made, in order (allowed or not). */
  requests: RecordedRequest[];
  /** Requests to anything but 127.0.0.1: aborted, and listed here. */
  blocked: RecordedRequest[];
}

/**
 * A fresh context whose requests to anything but 127.0.0.1 are aborted and recorded, for tests
 * that open several pages (or a phone-sized viewport) in one context.
 */
export async function openIsolatedContext(
  browser: Browser,
  options: { viewport?: { width: number; height: number } } = {},
): Promise<IsolatedContext> {
  const context = await browser.newContext({
    serviceWorkers: 'block',
    ...(options.viewport ? { viewport: options.viewport, deviceScaleFactor: 1 } : {}),
  });
  const requests: RecordedRequest[] = [];
  const blocked: RecordedRequest[] = [];
  await context.route('**/*', async (route) => {
    const request = route.request();
    if (leavesMachine(request.url())) {
      blocked.push({ url: request.url(), method: request.method(), resourceType: request.resourceType() });
      await route.abort('blockedbyclient');
    } else {
      await route.continue();
    }
  });
  context.on('request', (request) => {
    requests.push({ url: request.url(), method: request.method(), resourceType: request.resourceType() });
  });
  context.on('page', (page) =>
    page.on('websocket', (socket) => {
      requests.push({ url: socket.url(), method: 'GET', resourceType: 'websocket' });
      if (leavesMachine(socket.url()))
        blocked.push({ url: socket.url(), method: 'GET', resourceType: 'websocket' });
    }),
  );
  return { context, requests, blocked };
}

/** A fresh isolated context (see {@link openIsolatedContext}) and a page in it. */
export async function openIsolatedPage(browser: Browser): Promise<IsolatedPage> {
  const { context, requests, blocked } = await openIsolatedContext(browser);
  const errors: string[] = [];
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  return { page, context, requests, blocked, errors };
}
