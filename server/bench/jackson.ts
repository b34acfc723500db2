import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchCacheDir, type ChildServer, Client, type Target, waitForUrl } from './lib.js';

/**
 * The open-source peer of `bench:scim`: the directory sync of @boxyhq/saml-jackson (Apache-2.0),
 * installed on demand into a folder of its own outside the workspaces, so that neither the repo's
 * package-lock.json nor `npm ci` carries its ~430 packages.
 */
export const JACKSON_VERSION = '26.2.0';

export interface JacksonInstall {
  dir: string;
  /** What the install cost this run, or that an earlier run's install was reused. */
  note: string;
}

function installedVersion(dir: string): string | undefined {
  const manifest = path.join(dir, 'node_modules', '@boxyhq', 'saml-jackson', 'package.json');
  if (!existsSync(manifest)) return undefined;
  return JSON.parse(readFileSync(manifest, 'utf8')).version;
}

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) return resolve(out);
      // npm's first lines say why (ECONNREFUSED, ENOTFOUND, E404 …); the stack after them does not.
      const why = out.split('\n').slice(0, 4).join('\n');
      reject(new Error(`${command} ${args.slice(0, 2).join(' ')} … exited with ${code}:\n${why}`));
    });
  });
}

/**
 * Installs @boxyhq/saml-jackson at JACKSON_VERSION into `${XDG_CACHE_HOME:-~/.cache}/roster-bench/jackson`
 * (once; later runs reuse it). `--ignore-scripts`: the SQL path on PostgreSQL needs no install script,
 * and the one that has one (better-sqlite3, for jackson's SQLite engine) would fetch a prebuilt
 * binary from outside the npm registry.
 */
export async function installJackson(): Promise<JacksonInstall> {
  const dir = benchCacheDir('jackson');
  if (installedVersion(dir) === JACKSON_VERSION) return { dir, note: `reused ${dir}` };
  await mkdir(dir, { recursive: true });
  const manifest = path.join(dir, 'package.json');
  if (!existsSync(manifest)) await writeFile(manifest, '{ "private": true }\n');
  const started = performance.now();
  await run(
    'npm',
    [
      'install',
      '--prefix',
      dir,
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--save-exact',
      `@boxyhq/saml-jackson@${JACKSON_VERSION}`,
    ],
    dir,
  );
  const seconds = (performance.now() - started) / 1000;
  const size = (await run('du', ['-sm', path.join(dir, 'node_modules')], dir)).split('\t')[0];
  return { dir, note: `installed into ${dir} in ${seconds.toFixed(0)} s, ${size} MB` };
}

/** jackson-server.mjs on its own database: jackson's controllers behind node:http, in their own process. */
export async function startJackson(dir: string, databaseUrl: string): Promise<ChildServer> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'jackson-server.mjs')], {
    env: { PATH: process.env.PATH ?? '', JACKSON_DIR: dir, DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return waitForUrl(child, /jackson listening on (http:\/\/\S+)/);
}

/** Creates a directory through jackson's API and returns its SCIM base path and token. */
export async function setUpJackson(url: string): Promise<Target> {
  const client = new Client(url, 1);
  const reply = await client.request(
    'POST',
    '/api/v1/dsync',
    { 'content-type': 'application/json' },
    {
      name: 'Bench',
      tenant: 'bench',
      product: 'roster-bench',
      type: 'okta-scim-v2',
      // Never contacted: see jackson-server.mjs (events are queued in jackson's database).
      webhook_url: 'http://127.0.0.1:9/never-called',
      webhook_secret: 'bench',
    },
  );
  client.close();
  if (reply.status !== 201)
    throw new Error(`jackson: creating a directory answered ${reply.status}: ${reply.body}`);
  const { data } = JSON.parse(reply.body);
  return { url, base: data.scim.path, token: data.scim.secret };
}
