/**
 * Builds dist/docs.html, the API reference served at /docs, so that it phones nowhere:
 * - the Redocly CLI runs with its usage reporting and update check off (REDOCLY_TELEMETRY=off,
 *   REDOCLY_SUPPRESS_NOTIFICATIONS=true; redocly.yaml also says `telemetry: off`);
 * - the page is built with `disableTelemetry`, and the few URLs of the bundled
 *   renderer that would still load something from a CDN or report to a collector are pointed at
 *   this server's own /docs/assets (the logo is served from there, as is the favicon);
 * - the result is checked by offline-check.mjs: the build fails if the page names another host
 *   in a place a browser would load from, or any host not reviewed as inert.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { externalReferences } from './offline-check.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const output = join(root, 'dist', 'docs.html');
const raw = join(root, 'dist', 'docs.raw.html');
mkdirSync(dirname(output), { recursive: true });

const built = spawnSync(
  'redocly',
  [
    'build-docs',
    'roster.yaml',
    '--inlineBundle',
    '--title',
    'Roster API reference',
    // The rendered page must not report page views to a third party.
    '--openapi.disableTelemetry=true',
    '-o',
    raw,
  ],
  {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true' },
  },
);
if (built.status !== 0) {
  console.error(built.error?.message ?? `redocly build-docs exited with ${built.status}`);
  process.exit(1);
}

/** [what, replacement, why]: each URL the renderer would contact by itself. */
const REWRITES = [
  [
    /https:\/\/cdn\.redoc\.ly\/redoc\/logo-mini-full\.svg/g,
    '/docs/assets/redocly-logo-full.svg',
    'footer logo',
  ],
  [/https:\/\/cdn\.redoc\.ly\/redoc\/logo-mini\.svg/g, '/docs/assets/redocly-logo.svg', 'footer logo'],
  // Default collector of the page's usage events: disabled by the option above; should a future
  // version ignore the option, the events go to this server (404), not to a third party.
  [/https:\/\/otel\.cloud\.redocly\.com\/v1\/traces/g, '/docs/telemetry-disabled', 'usage events'],
  // Icon sets of custom sidebar icons (unused by this contract).
  [/https:\/\/cdn\.redocly\.com\/icons\//g, '/docs/assets/icons/', 'icon sets'],
];

let html = readFileSync(raw, 'utf8');
rmSync(raw);
for (const [pattern, replacement] of REWRITES) html = html.replace(pattern, replacement);
html = html.replace(
  '</title>',
  '</title>\n  <link rel="icon" type="image/svg+xml" href="/docs/assets/favicon.svg" />',
);
if (!html.includes('"disableTelemetry":true')) {
  console.error('build-docs: the page was built without disableTelemetry.');
  process.exit(1);
}

const problems = externalReferences(html);
if (problems.length > 0) {
  console.error('build-docs: the page references hosts other than its own:');
  for (const problem of problems) console.error(`  ${problem.host} (${problem.where}): …${problem.excerpt}…`);
  process.exit(1);
}
writeFileSync(output, html);
console.log(`build-docs: ${output} references no other host`);
