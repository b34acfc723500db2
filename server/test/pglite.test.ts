import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/database.js';
import { readPgliteTemplate, readTar } from '../src/db/pglite.js';

/** The embedded database's set-up: the data directory made from the template, and its settings. */

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'roster-pglite-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const MB = 1024 * 1024;

describe('the template', () => {
  it('is a PostgreSQL data directory of the installed PGlite', () => {
    const entries = new Map([...readTar(readPgliteTemplate())].map((entry) => [entry.name, entry]));
    const version = entries.get('/PG_VERSION')?.data;
    expect(version && Buffer.from(version).toString()).toBe('18\n');
    expect(entries.get('/global')?.data).toBeUndefined();
    expect(entries.get('/global/pg_control')?.data?.length).toBe(8192);
  });

  it('is refused when it holds anything but files and directories', () => {
    const header = new Uint8Array(1024);
    header.set(Buffer.from('/link'), 0);
    header.set(Buffer.from('00000000000\0'), 124);
    header[156] = '2'.charCodeAt(0);
    expect(() => [...readTar(header)]).toThrow('unexpected entry type "2" for /link in the template');
  });
});

describe('a data directory', () => {
  it('is made from the template, runs the configured shared_buffers, and keeps its data', async () => {
    const dataDir = path.join(root, 'fresh');
    const first = await openDatabase({ dataDir, pgliteSharedBuffers: 8 * MB });
    try {
      expect((await sql<{ shared_buffers: string }>`show shared_buffers`.execute(first.db)).rows).toEqual([
        { shared_buffers: '8MB' },
      ]);
      await sql`create table kept (value text)`.execute(first.db);
      await sql`insert into kept values ('here')`.execute(first.db);
    } finally {
      await first.close();
    }
    expect(existsSync(path.join(dataDir, 'pgdata.partial'))).toBe(false);
    expect(readFileSync(path.join(dataDir, 'pgdata', 'PG_VERSION'), 'utf8')).toBe('18\n');

    // The setting is passed at every start, so it also applies to an existing directory.
    const second = await openDatabase({ dataDir, pgliteSharedBuffers: 24 * MB });
    try {
      expect((await sql<{ shared_buffers: string }>`show shared_buffers`.execute(second.db)).rows).toEqual([
        { shared_buffers: '24MB' },
      ]);
      expect((await sql<{ value: string }>`select value from kept`.execute(second.db)).rows).toEqual([
        { value: 'here' },
      ]);
    } finally {
      await second.close();
    }
  });

  it('replaces what a start killed half-way left, but not files it does not know', async () => {
    const dataDir = path.join(root, 'interrupted');
    mkdirSync(path.join(dataDir, 'pgdata.partial', 'base'), { recursive: true });
    writeFileSync(path.join(dataDir, 'pgdata.partial', 'base', 'half'), 'x');
    mkdirSync(path.join(dataDir, 'pgdata'));
    const database = await openDatabase({ dataDir });
    await database.close();
    expect(existsSync(path.join(dataDir, 'pgdata.partial'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'pgdata', 'base', 'half'))).toBe(false);

    const strange = path.join(root, 'strange');
    mkdirSync(path.join(strange, 'pgdata'), { recursive: true });
    writeFileSync(path.join(strange, 'pgdata', 'notes.txt'), 'mine');
    await expect(openDatabase({ dataDir: strange })).rejects.toThrow(
      `${path.join(strange, 'pgdata')} holds files but no database (no PG_VERSION): move it away to start afresh`,
    );
    expect(readFileSync(path.join(strange, 'pgdata', 'notes.txt'), 'utf8')).toBe('mine');
    // The failed open let go of the data directory's lock.
    expect(existsSync(path.join(strange, 'roster.lock'))).toBe(false);
  });
});
