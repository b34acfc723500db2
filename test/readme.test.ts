import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The README is run, not just read: every TypeScript snippet type-checks against the SDK, and the
 * walkthrough's shell commands run as written (ports swapped for free ones) against a real Roster
 * started by `npm start`, the Express example and the IdP simulator.
 */

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');

/** ```lang fenced blocks of a markdown text. */
const fenced = (text: string, lang: string) =>
  [...text.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm'))].map((m) => m[1]!);

/** TypeScript written to files by heredocs (`cat > x.mts <<'TS' … TS`) in shell blocks. */
const heredocs = (shell: string) => [...shell.matchAll(/<<'TS'\n([\s\S]*?)^TS$/gm)].map((m) => m[1]!);

// Identifiers the snippets use without declaring (the reader's own app and storage).
const GLOBALS = `import type { Connection, Roster } from '@roster/sdk';
import type { Express as ExpressApp, RequestHandler } from 'express';
declare global {
  namespace Express {
    interface Request {
      account: { rosterOrganizationId: string };
    }
  }
  const roster: Roster;
  const app: ExpressApp;
  const ROSTER_URL: string;
  const baseUrl: string;
  const connection: Connection;
  const connectionId: string;
  const organizationId: string;
  const cursor: string;
  const yesterday: string;
  const mappings: Parameters<Roster['connections']['previewAttributeMappings']>[0]['mappings'];
  const requireAdmin: RequestHandler;
  const db: {
    upsertOrganization(org: unknown): Promise<void>;
    upsertMembership(member: unknown): Promise<void>;
    saveCursor(cursor: string | undefined): Promise<void>;
    loadCursor(): Promise<string | undefined>;
    transaction<T>(fn: (tx: { apply(event: unknown): Promise<void>; saveCursor(cursor: string): Promise<void> }) => Promise<T>): Promise<T>;
  };
  function handle(event: unknown): Promise<void>;
  function authenticateSomehow(req: unknown): Promise<{ userId: string; organizationId: string }>;
}
export {};
`;

async function typecheck(dir: string, snippets: string[]) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'globals.d.ts'), GLOBALS);
  for (const [i, code] of snippets.entries()) {
    writeFileSync(path.join(dir, `snippet-${i + 1}.mts`), `${code}\nexport {};\n`);
  }
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../tsconfig.base.json',
      compilerOptions: { lib: ['ES2023', 'DOM', 'DOM.Iterable'], types: ['node'], noUnusedLocals: false },
      include: ['*.mts', '*.d.ts'],
    }),
  );
  return run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(
    () => '',
    (error: { stdout: string }) => error.stdout,
  );
}

describe('the README', () => {
  const snippetDir = path.join(root, 'test', '.readme-snippets');
  afterAll(() => rmSync(snippetDir, { recursive: true, force: true }));

  it('every TypeScript snippet type-checks against the SDK as pasted', async () => {
    const snippets = [...fenced(readme, 'ts'), ...fenced(readme, 'sh').flatMap(heredocs)];
    expect(snippets.length).toBeGreaterThanOrEqual(6);
    expect(await typecheck(snippetDir, snippets)).toBe('');
  }, 300_000);

  it('the check has teeth: the old webhook snippet (error.code on RosterWebhookError) fails', async () => {
    const webhook = fenced(readme, 'ts').find((s) => s.includes('verifyWebhook('))!;
    const broken = webhook.replace('error.reason', 'error.code');
    const out = await typecheck(`${snippetDir}-broken`, [broken]);
    rmSync(`${snippetDir}-broken`, { recursive: true, force: true });
    expect(out).toMatch(/error TS2339: Property 'code' does not exist on type 'RosterWebhookError'/);
  }, 300_000);

  it('the walkthrough runs end to end: seed, roles through the SDK, sign-in, deactivate, refused', async () => {
    const block = /<!-- walkthrough:start -->([\s\S]*?)<!-- walkthrough:end -->/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const [rosterPort, appPort] = await Promise.all([freePort(), freePort()]);
    const script = fenced(block!, 'sh')
      .join('\n')
      .replaceAll('npm start > roster.log', `PORT=${rosterPort} npm start > roster.log`)
      .replaceAll(
        'npm start -w @roster/example-express-app',
        `PORT=${appPort} ROSTER_URL=http://127.0.0.1:${rosterPort} npm start -w @roster/example-express-app`,
      )
      .replaceAll(':3000', `:${rosterPort}`)
      .replaceAll(':4000', `:${appPort}`);
    const dataDir = mkdtempSync(path.join(tmpdir(), 'roster-walkthrough-'));
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: root,
      detached: true, // its own process group: the servers it starts in the background stop with it
      env: { ...process.env, ROSTER_DATA_DIR: dataDir, DATABASE_URL: '', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    const logs = ['roster.log', 'app.log'].map((f) => {
      try {
        return `--- ${f}\n${readFileSync(path.join(root, f), 'utf8').slice(-2000)}`;
      } catch {
        return '';
      }
    });
    for (const f of ['roster.log', 'app.log', 'members.mts', 'cookies.txt'])
      rmSync(path.join(root, f), { force: true });
    rmSync(dataDir, { recursive: true, force: true });

    const diagnosis = `${stdout}\n--- stderr\n${stderr}\n${logs.join('\n')}`;
    expect(code, diagnosis).toBe(0);
    expect(stdout, diagnosis).toMatch(/seeded 20 users \(20 created, 0 updated\) and 4 groups/);
    expect(stdout, diagnosis).toMatch(/@acme\.example finance invoices:read,invoices:write/);
    expect(stdout, diagnosis).toMatch(/\{"user_id":"user_[a-z0-9]+","role":"finance"\}/);
    expect(stdout, diagnosis).toMatch(/\{"data":\[\],"org_id":"org_[a-z0-9]+"\}/);
    expect(stdout, diagnosis).toMatch(/deactivated \S+@acme\.example/);
    // The last line: the app refuses the deactivated user.
    expect(stdout.trim().split('\n').at(-1), diagnosis).toMatch(/^\{"error":\{"code":"[a-z_]+"/);
  }, 600_000);
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
