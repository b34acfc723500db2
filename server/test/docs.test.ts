import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestServer, type TestServer } from './harness.js';

/** What a person (or a browser) finds at the server's address: /, /docs, /openapi.yaml. */
describe('the pages for people', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

  it('GET / answers a browser with a page linking the reference, the contract and the probes', async () => {
    const response = await server.fetch('/', { headers: browser });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    for (const path of ['/docs', '/openapi.yaml', '/healthz', '/readyz', '/.well-known/jwks.json']) {
      expect(html).toContain(`href="${server.publicUrl}${path}"`);
    }
    expect(html).toContain(`${server.publicUrl}/v1`);
  });

  it('GET / answers a program with JSON links', async () => {
    const response = await server.fetch('/', { headers: { accept: 'application/json' } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { name: string; links: Record<string, string> };
    expect(body.name).toBe('roster');
    expect(body.links.docs).toBe(`${server.publicUrl}/docs`);
    expect(body.links.api).toBe(`${server.publicUrl}/v1`);
    expect((await server.fetch('/')).headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('/openapi.yaml is YAML for tools and text a browser displays, same bytes', async () => {
    const tool = await server.fetch('/openapi.yaml');
    expect(tool.headers.get('content-type')).toBe('application/yaml; charset=utf-8');
    const page = await server.fetch('/openapi.yaml', { headers: browser });
    expect(page.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const text = await page.text();
    expect(text).toBe(await tool.text());
    expect(parse(text).openapi).toMatch(/^3\.1/);
  });

  it('/docs and its assets are served from this server', async () => {
    const docs = await server.fetch('/docs');
    if (docs.status === 404) {
      // The reference is built by @roster/openapi's build, which turbo runs before these tests.
      throw new Error('openapi/dist/docs.html is missing: run npm run build -w @roster/openapi');
    }
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await docs.text();
    for (const asset of ['/docs/assets/favicon.svg', '/docs/assets/redocly-logo.svg']) {
      expect(html).toContain(asset);
      const response = await server.fetch(asset);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    }
    expect((await server.fetch('/favicon.ico')).status).toBe(200);
    const missing = await server.fetch('/docs/assets/nope.svg');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('route_not_found');
    expect((await server.fetch('/docs/assets/..%2Fpackage.json')).status).toBe(404);
  });
});
