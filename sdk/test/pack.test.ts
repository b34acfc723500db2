import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';

/**
 * The SDK as someone outside this repository gets it: `npm pack` (which builds it), then
 * `npm install <tarball>` into a project in the system's temp directory, far from the workspace's
 * node_modules. Offline: the SDK's own dependencies are packed from the workspace's node_modules and
 * installed from those tarballs with --offline, so the test needs no registry.
 */

const run = promisify(execFile);
const sdkDir = path.resolve(import.meta.dirname, '..');
const repoRoot = path.resolve(sdkDir, '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
let work: string;
let project: string;
let tarball: string;
let packedFiles: string[];

/** Directory of an installed package as Node would find it from `from` (node_modules lookup). */
function packageDir(name: string, from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dir === path.dirname(dir)) throw new Error(`${name} is not installed (from ${from})`);
  }
}

/** The production dependency closure of the SDK, as installed in the workspace: name -> dir. */
function dependencyClosure(): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (dir: string) => {
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      if (found.has(name)) continue;
      const depDir = packageDir(name, dir);
      found.set(name, depDir);
      visit(depDir);
    }
  };
  visit(sdkDir);
  return found;
}

const npm = (args: string[], cwd: string) =>
  run('npm', args, {
    cwd,
    env: {
      ...process.env,
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    },
    maxBuffer: 16 * 1024 * 1024,
  });

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'roster-sdk-pack-'));
  expect(path.relative(repoRoot, work).startsWith('..')).toBe(true); // really outside the workspace
  const packed = await npm(['pack', '--json', '--pack-destination', work], sdkDir);
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  tarball = path.join(work, info.filename);
  packedFiles = info.files.map((f) => f.path).sort();

  const deps = path.join(work, 'deps');
  mkdirSync(deps);
  const fileDeps: Record<string, string> = { '@roster/sdk': `file:${tarball}` };
  for (const [name, dir] of dependencyClosure()) {
    const out = await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', deps, dir], work);
    fileDeps[name] =
      `file:${path.join(deps, (JSON.parse(out.stdout) as [{ filename: string }])[0].filename)}`;
  }

  project = path.join(work, 'app');
  mkdirSync(project);
  writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'outside-app', private: true, dependencies: fileDeps }, null, 2),
  );
  await npm(['install', '--offline', '--no-package-lock', '--ignore-scripts'], project);
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

it('the tarball ships the built entry points, their types, README and LICENSE, and no sources', () => {
  for (const file of [
    'LICENSE',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.cjs',
    'dist/index.d.ts',
    'dist/index.d.cts',
    'dist/express.js',
    'dist/express.cjs',
    'dist/express.d.ts',
    'dist/express.d.cts',
  ]) {
    expect(packedFiles).toContain(file);
  }
  expect(
    packedFiles.filter(
      (f) => !f.startsWith('dist/') && !['LICENSE', 'README.md', 'package.json'].includes(f),
    ),
  ).toEqual([]);
});

it('imports from ESM and from CommonJS in a project outside the workspace', async () => {
  writeFileSync(
    path.join(project, 'esm.mjs'),
    [
      "import { createRoster, RosterError, verifyWebhook } from '@roster/sdk';",
      "import { requireSession } from '@roster/sdk/express';",
      "const roster = createRoster({ baseUrl: 'http://127.0.0.1:9', secretKey: 'k'.repeat(40) });",
      'console.log(typeof roster.organizations.list, typeof RosterError, typeof verifyWebhook, typeof requireSession);',
    ].join('\n'),
  );
  writeFileSync(
    path.join(project, 'cjs.cjs'),
    [
      "const { createRoster, RosterError } = require('@roster/sdk');",
      "const { requireSession } = require('@roster/sdk/express');",
      "const roster = createRoster({ baseUrl: 'http://127.0.0.1:9', secretKey: 'k'.repeat(40) });",
      "console.log(typeof roster.organizations.list, typeof RosterError, require.resolve('@roster/sdk'));",
      'console.log(typeof requireSession);',
    ].join('\n'),
  );
  const esm = await run(process.execPath, ['esm.mjs'], { cwd: project });
  expect(esm.stdout.trim()).toBe('function function function function');
  const cjs = await run(process.execPath, ['cjs.cjs'], { cwd: project });
  const [line1, line2] = cjs.stdout.trim().split('\n');
  expect(line1).toMatch(/^function function .*app\/node_modules\/@roster\/sdk\/dist\/index\.cjs$/);
  expect(line2).toBe('function');
}, 120_000);

it('type-checks a call (ESM and CommonJS declarations) and rejects a wrong one', async () => {
  writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'DOM'],
        types: [],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
      },
      files: ['call.mts', 'call.cts'],
    }),
  );
  const call = (importLine: string) =>
    [
      importLine,
      "const roster = createRoster({ baseUrl: 'http://127.0.0.1:3000', secretKey: 'k'.repeat(40) });",
      'export async function firstSlug(): Promise<string | undefined> {',
      '  const page = await roster.organizations.list({ limit: 10 });',
      '  const slug: string | undefined = page.data[0]?.slug;',
      '  // @ts-expect-error: limit is a number',
      "  await roster.organizations.list({ limit: 'ten' });",
      '  return slug;',
      '}',
    ].join('\n');
  writeFileSync(path.join(project, 'call.mts'), call("import { createRoster } from '@roster/sdk';"));
  writeFileSync(
    path.join(project, 'call.cts'),
    call("import sdk = require('@roster/sdk');\nconst { createRoster } = sdk;"),
  );
  await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project });

  // The check has teeth: the same call with a wrong type fails.
  writeFileSync(
    path.join(project, 'call.mts'),
    call("import { createRoster } from '@roster/sdk';").replace(
      'string | undefined = page',
      'number | undefined = page',
    ),
  );
  const failed = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project }).catch((e) => e);
  expect(failed.stdout).toMatch(/call\.mts.*error TS2322/);
}, 300_000);
