import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './child-server.js';

/**
 * A PostgreSQL cluster of one test or benchmark's own: initdb into a temporary directory, started
 * on a free loopback port, so that it can be restarted or configured (e.g. with
 * pg_stat_statements preloaded) without touching the PostgreSQL that DATABASE_URL names, which
 * other runs share. Needs the PostgreSQL server binaries (PG_BIN, default
 * /usr/lib/postgresql/15/bin).
 */

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** Runs a PostgreSQL binary; as the postgres user when this is root (PostgreSQL refuses root). */
function pgRun(binary: string, args: string[]): void {
  const file = path.join(PG_BIN, binary);
  if (process.getuid?.() === 0) {
    const quoted = [file, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
    execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', quoted], { stdio: 'pipe' });
  } else {
    execFileSync(file, args, { stdio: 'pipe' });
  }
}

export class PrivateCluster {
  readonly dir: string;
  readonly port: number;
  /** Server settings given on the command line at every start (`-c name=value`). */
  readonly settings: Record<string, string>;

  constructor(dir: string, port: number, settings: Record<string, string> = {}) {
    this.dir = dir;
    this.port = port;
    this.settings = settings;
  }

  static async create(settings: Record<string, string> = {}): Promise<PrivateCluster> {
    if (!existsSync(path.join(PG_BIN, 'initdb'))) {
      throw new Error(`PostgreSQL server binaries not found in ${PG_BIN} (set PG_BIN): this test must run`);
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'roster-pg-private-'));
    if (process.getuid?.() === 0) {
      chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), 0);
    }
    chmodSync(dir, 0o700);
    const cluster = new PrivateCluster(dir, await freePort(), settings);
    pgRun('initdb', [
      '-D',
      path.join(dir, 'data'),
      '-U',
      'postgres',
      '--auth=trust',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    cluster.start();
    return cluster;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  start(): void {
    const extra = Object.entries(this.settings).map(([name, value]) => ` -c ${name}=${value}`);
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off${extra.join('')}`;
    pgRun('pg_ctl', [
      '-D',
      path.join(this.dir, 'data'),
      '-o',
      options,
      '-l',
      path.join(this.dir, 'log'),
      '-w',
      'start',
    ]);
  }

  stop(): void {
    pgRun('pg_ctl', ['-D', path.join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']);
  }

  destroy(): void {
    try {
      this.stop();
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
