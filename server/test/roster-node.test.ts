import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingEmbeddedSettings } from '../src/process-settings.js';
import { serverDir } from './child-server.js';

/**
 * bin/roster-node, through which `npm start` runs the server: the settings that must be in place
 * when the process starts reach the node process itself (no process left in between), for the
 * embedded database only.
 */

interface Seen {
  pid: number;
  execArgv: string[];
  trimThreshold: string | null;
}

function runLauncher(env: Record<string, string>): Promise<{ seen: Seen; pid: number | undefined }> {
  const script =
    'console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, trimThreshold: process.env.MALLOC_TRIM_THRESHOLD_ ?? null }))';
  const child = spawn('sh', ['bin/roster-node', '-e', script], {
    cwd: serverDir,
    env: { PATH: [path.dirname(process.execPath), process.env.PATH ?? ''].join(path.delimiter), ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`roster-node exited with ${code}`));
      else resolve({ seen: JSON.parse(out) as Seen, pid: child.pid });
    });
  });
}

describe('bin/roster-node', () => {
  it('starts node with the embedded database settings, in place of itself', async () => {
    const { seen, pid } = await runLauncher({});
    expect(seen.execArgv.slice(0, 2)).toEqual(['--v8-pool-size=1', '--max-semi-space-size=4']);
    expect(seen.trimThreshold).toBe('131072');
    // exec: signals sent to the process npm started reach the server, and its RSS is the server's.
    expect(seen.pid).toBe(pid);
  });

  it("keeps the operator's own malloc trim threshold", async () => {
    const { seen } = await runLauncher({ MALLOC_TRIM_THRESHOLD_: '1048576' });
    expect(seen.trimThreshold).toBe('1048576');
  });

  it('leaves node as it is on PostgreSQL', async () => {
    const { seen, pid } = await runLauncher({ DATABASE_URL: 'postgres://roster@127.0.0.1:5432/roster' });
    expect(seen.execArgv.filter((a) => a.startsWith('--'))).toEqual([]);
    expect(seen.trimThreshold).toBeNull();
    expect(seen.pid).toBe(pid);
  });
});

describe('a server started without bin/roster-node', () => {
  it('names the settings it misses on the embedded database, and is quiet with them', async () => {
    const { seen } = await runLauncher({});
    expect(
      missingEmbeddedSettings(seen.execArgv, { MALLOC_TRIM_THRESHOLD_: seen.trimThreshold! }),
    ).toBeUndefined();
    const advice = missingEmbeddedSettings(['--max-semi-space-size=4'], {});
    expect(advice).toContain('missing --v8-pool-size=1, MALLOC_TRIM_THRESHOLD_=131072');
    expect(advice).toContain('server/bin/roster-node server/dist/main.js');
    // Given through NODE_OPTIONS, or with the operator's own values, they are not missing.
    expect(
      missingEmbeddedSettings([], {
        NODE_OPTIONS: '--v8-pool-size=2 --max-semi-space-size=8',
        MALLOC_TRIM_THRESHOLD_: '65536',
      }),
    ).toBeUndefined();
  });
});
