import { type Browser, type BrowserContext, chromium } from 'playwright-core';

/**
 * Headless Chromium for the portal's browser test: the distribution's chromium (apt-get install
 * chromium), driven by playwright-core (no browser download). Every request the pages make is
 * recorded, and any to a host other than 127.0.0.1 is blocked and recorded as such, so a test
 * can assert that no page loads anything from outside the machine.
 */

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

export interface RecordedContext {
  context: BrowserContext;
  /** Every URL a page of this context requested (allowed or not). */
  requests: string[];
  /** The requests that went elsewhere than 127.0.0.1 (blocked). */
  blocked: string[];
}

export async function recordedContext(
  browser: Browser,
  options: { viewport?: { width: number; height: number } } = {},
): Promise<RecordedContext> {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1100, height: 900 },
    deviceScaleFactor: 1,
  });
  const requests: string[] = [];
  const blocked: string[] = [];
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    requests.push(url);
    const { protocol, hostname } = new URL(url);
    if ((protocol === 'http:' || protocol === 'https:') && hostname === '127.0.0.1') {
      await route.continue();
    } else if (protocol === 'data:' || protocol === 'blob:') {
      await route.continue();
    } else {
      blocked.push(url);
      await route.abort('blockedbyclient');
    }
  });
  return { context, requests, blocked };
}
