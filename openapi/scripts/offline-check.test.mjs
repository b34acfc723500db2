import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { externalReferences } from './offline-check.mjs';

const page = (body) => `<!DOCTYPE html><html><head><title>t</title></head><body>${body}</body></html>`;

test('the built /docs page references no other host (run after npm run build)', () => {
  const html = readFileSync(new URL('../dist/docs.html', import.meta.url), 'utf8');
  assert.deepEqual(externalReferences(html), []);
  assert.match(html, /"disableTelemetry":true/);
  assert.match(html, /<link rel="icon" type="image\/svg\+xml" href="\/docs\/assets\/favicon\.svg"/);
});

// The stock renderer's script names a CDN logo and a usage collector. The shapes are kept here under
// reserved `.example` names (RFC 2606), so that no file of Roster names a third-party host.
test('what the stock renderer names is caught: CDN logo and usage collector in the script', () => {
  const html = page(
    '<script>const a={src:`https://cdn.renderer.example/redoc/logo-mini.svg`};const b=`https://otel.renderer.example/v1/traces`;</script>',
  );
  assert.deepEqual(
    externalReferences(html).map((p) => p.host),
    ['cdn.renderer.example', 'otel.renderer.example'],
  );
});

test('loads from markup and CSS are caught, links and loopback are not', () => {
  const html = page(
    [
      '<img src="https://cdn.example.net/logo.png">',
      '<link rel="stylesheet" href="//fonts.example.org/css">',
      '<style>body{background:url("https://img.example.net/bg.png")}</style>',
      '<style>@import "https://css.example.net/x.css";</style>',
      '<img srcset="/a.png 1x, https://img2.example.net/b.png 2x">',
      '<a href="https://renderer.example/redoc/">API docs by the renderer</a>',
      '<img src="/docs/assets/favicon.svg"><script src="http://127.0.0.1:3000/x.js"></script>',
    ].join(''),
  );
  assert.deepEqual(
    externalReferences(html).map((p) => p.host),
    ['cdn.example.net', 'img2.example.net', 'fonts.example.org', 'img.example.net', 'css.example.net'],
  );
});

test('scripts: reviewed inert hosts pass, a new host fails, comments are not URLs', () => {
  const ok = page('<script>const ns=`http://www.w3.org/2000/svg`; // see docs.example\n</script>');
  assert.deepEqual(externalReferences(ok), []);
  const bad = page('<script>fetch("https://analytics.example.io/collect")</script>');
  assert.deepEqual(
    externalReferences(bad).map((p) => p.host),
    ['analytics.example.io'],
  );
});
