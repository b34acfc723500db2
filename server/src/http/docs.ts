import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Request, type Response, Router } from 'express';
import { ApiError } from '../errors.js';
import { sendApiError } from './v1/errors.js';

const require = createRequire(import.meta.url);

interface DocsFiles {
  yaml: string;
  /** Undefined when the reference has not been built (npm run build -w @roster/openapi). */
  html: string | undefined;
  /** The page's own assets (favicon, logos) by file name: /docs loads nothing from elsewhere. */
  assets: ReadonlyMap<string, Buffer>;
}

/** The contract, its rendered reference and the reference's assets, read once (from @roster/openapi). */
function loadDocs(): DocsFiles {
  const yaml = readFileSync(require.resolve('@roster/openapi/roster.yaml'), 'utf8');
  let html: string | undefined;
  try {
    html = readFileSync(require.resolve('@roster/openapi/docs.html'), 'utf8');
  } catch {
    html = undefined;
  }
  const assetDir = dirname(require.resolve('@roster/openapi/assets/favicon.svg'));
  const assets = new Map<string, Buffer>();
  for (const name of readdirSync(assetDir)) {
    if (/^[a-z0-9-]+\.svg$/.test(name)) assets.set(name, readFileSync(join(assetDir, name)));
  }
  return { yaml, html, assets };
}

/** A browser navigating (rather than a client asking for data) puts text/html in its Accept header. */
const wantsHtml = (req: Request) => req.accepts(['application/json', 'text/html']) === 'text/html';

/**
 * What a person finds by opening the server's address: `GET /` (a page linking the reference and
 * the probes; JSON for programs), `/docs` (the API reference), `/openapi.yaml` (the contract, shown
 * as text by a browser) and the reference's own assets.
 */
export function docsRouter(options: { publicUrl: string }): Router {
  const docs = loadDocs();
  const router = Router();
  const base = options.publicUrl.replace(/\/$/, '');
  const links = {
    docs: `${base}/docs`,
    openapi: `${base}/openapi.yaml`,
    api: `${base}/v1`,
    scim: `${base}/scim/v2/{connection_id}`,
    health: `${base}/healthz`,
    ready: `${base}/readyz`,
    jwks: `${base}/.well-known/jwks.json`,
  };

  router.get('/', (req, res) => {
    res.setHeader('Vary', 'Accept');
    if (!wantsHtml(req)) {
      res.json({ name: 'roster', links });
      return;
    }
    res.type('html').send(homePage(links));
  });

  router.get('/openapi.yaml', (req, res) => {
    // application/yaml (RFC 9512) for tools; browsers download that type instead of showing it,
    // so a navigation gets the same bytes as text/plain.
    res.setHeader('Vary', 'Accept');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res
      .type(wantsHtml(req) ? 'text/plain; charset=utf-8' : 'application/yaml; charset=utf-8')
      .send(docs.yaml);
  });

  router.get('/docs', (req: Request, res: Response) => {
    if (!docs.html) {
      sendApiError(
        req,
        res,
        new ApiError(404, 'route_not_found', 'API reference not built: run npm run build.'),
      );
      return;
    }
    res.type('html').send(docs.html);
  });

  const sendAsset = (name: string, res: Response) => {
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.type('image/svg+xml').send(docs.assets.get(name));
  };
  router.get('/docs/assets/:name', (req: Request, res: Response) => {
    const name = String(req.params.name);
    if (!docs.assets.has(name)) {
      sendApiError(req, res, new ApiError(404, 'route_not_found', `No asset ${name}.`));
      return;
    }
    sendAsset(name, res);
  });
  // Browsers ask for /favicon.ico on pages that name no icon (e.g. /openapi.yaml shown as text).
  router.get('/favicon.ico', (_req, res) => sendAsset('favicon.svg', res));
  return router;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function homePage(links: Record<'docs' | 'openapi' | 'api' | 'scim' | 'health' | 'ready' | 'jwks', string>) {
  const row = (label: string, url: string, what: string, link = true) =>
    `<tr><th>${label}</th><td>${link ? `<a href="${escapeHtml(url)}">${escapeHtml(url)}</a>` : `<code>${escapeHtml(url)}</code>`}</td><td>${what}</td></tr>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Roster</title>
<link rel="icon" type="image/svg+xml" href="/docs/assets/favicon.svg">
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #d8dee4;vertical-align:top}
th{white-space:nowrap}code{font-size:.9em}
</style>
</head>
<body>
<h1>Roster is running</h1>
<p>A self-hosted identity back end: identity providers push users and groups over SCIM 2.0, your app
reads them through the management API with its secret key.</p>
<table>
${row('API reference', links.docs, 'every /v1 operation, rendered from the contract')}
${row('Contract', links.openapi, 'OpenAPI 3.1 document of the management API')}
${row('Management API', links.api, 'send <code>Authorization: Bearer &lt;secret key&gt;</code>', false)}
${row('SCIM base URL', links.scim, 'per connection; give it and the connection&#39;s token to the IdP', false)}
${row('Liveness', links.health, 'the process is up')}
${row('Readiness', links.ready, 'the database answers')}
${row('Session keys', links.jwks, 'public keys that verify session tokens')}
</table>
</body>
</html>
`;
}
