import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import v8 from 'node:v8';
import { brotliDecompressSync } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';

/**
 * How Roster runs the embedded database. Three things decide its memory:
 *
 * - PostgreSQL's own settings. PGlite runs the settings initdb chose for a server, above all
 *   `shared_buffers = 128MB`, which PostgreSQL allocates and initialises at start inside the
 *   WebAssembly heap. The heap never gives memory back to the OS, so whatever the cache once
 *   touched stays resident. Roster passes a smaller `shared_buffers` (ROSTER_PGLITE_SHARED_BUFFERS)
 *   on the command line, so it applies to existing data directories too.
 * - Creating a new database. PGlite runs initdb inside the process: a second PostgreSQL instance
 *   with its own 128 MB heap, a full copy of that heap to restart from, and a tarball of the result;
 *   about 900 MB at peak, of which some 450 MB stayed resident after start (measured with 0.5.17).
 *   Roster instead unpacks a data directory that initdb produced once
 *   (assets/pglite-template.tar.br, made by `npm run pglite-template -w @roster/server`).
 * - V8's code for PostgreSQL. V8 compiles the 9 MB WebAssembly module with its baseline compiler
 *   (Liftoff), then recompiles the functions that run often with its optimising compiler (TurboFan).
 *   That recompilation is worth 1.6x the lookups per second on a busy server, and is the default.
 *   What it cost in memory (235 to 272 MB idle against 148 MB on Liftoff alone) was not its code
 *   but glibc keeping the memory TurboFan freed in each V8 worker thread's malloc arena; the
 *   process settings of bin/roster-node (a fixed malloc trim threshold, one V8 worker thread, a
 *   smaller young generation) give most of it back. They can only be set when the process starts,
 *   which is why they live in that wrapper and not here. ROSTER_PGLITE_WASM_TIER=baseline
 *   (`--liftoff-only`) remains for the smallest machines, or a server started without the wrapper.
 */

/** Default of ROSTER_PGLITE_SHARED_BUFFERS: PostgreSQL's page cache inside the embedded database. */
export const DEFAULT_PGLITE_SHARED_BUFFERS = 16 * 1024 * 1024;

export interface PgliteSettings {
  /** Bytes of PostgreSQL `shared_buffers`. */
  sharedBuffers: number;
  /** `baseline`: V8 compiles PGlite's WebAssembly with Liftoff only; `optimizing` also tiers up (see the note above). */
  wasmTier: 'optimizing' | 'baseline';
}

/**
 * PGlite's own start parameters, plus Roster's. `-F` (fsync off) is PGlite's: a commit is written
 * to the WAL file before the query returns, so it survives a crash of the process, but nothing
 * asks the OS to put it on disk (the WebAssembly file layer has no fsync).
 */
export function pgliteStartParams(settings: PgliteSettings): string[] {
  return [
    ...PGlite.defaultStartParams,
    '-c',
    `shared_buffers=${Math.max(128, Math.floor(settings.sharedBuffers / 1024))}kB`,
  ];
}

const require = createRequire(import.meta.url);
/** More than the template's unpacked size (40 MB with PGlite 0.5.17); only what is written is touched. */
const TEMPLATE_CHUNK = 64 * 1024 * 1024;

/** The initdb output that new embedded databases start from, as a plain tar. */
export function readPgliteTemplate(): Uint8Array {
  const file = require.resolve('@roster/server/assets/pglite-template.tar.br');
  // One output chunk: the default 16 kB chunks fill the malloc heap with 40 MB that it does not give
  // back to the OS after they are freed (measured: 30 MB more RSS for the life of the process).
  return brotliDecompressSync(readFileSync(file), { chunkSize: TEMPLATE_CHUNK });
}

/**
 * Opens the embedded database in `pgdata` (created from the template when it has no database
 * yet), or in memory when `pgdata` is undefined.
 */
export async function openPgliteInstance(
  pgdata: string | undefined,
  settings: PgliteSettings,
): Promise<PGlite> {
  // Read when V8 compiles the module, which PGlite does on construction. The only WebAssembly the
  // server runs is PGlite's.
  if (settings.wasmTier === 'baseline') v8.setFlagsFromString('--liftoff-only');
  const startParams = pgliteStartParams(settings);
  if (pgdata === undefined) {
    // zlib's output is a plain (never shared) ArrayBuffer.
    const template = readPgliteTemplate() as Uint8Array<ArrayBuffer>;
    const pglite = new PGlite({ startParams, loadDataDir: new Blob([template]) });
    await pglite.waitReady;
    return pglite;
  }
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) createFromTemplate(pgdata);
  const pglite = new PGlite(pgdata, { startParams });
  await pglite.waitReady;
  return pglite;
}

/**
 * Unpacks the template next to `pgdata`, then renames it into place: a process killed half-way
 * leaves no half-made database behind, only a directory the next start replaces.
 */
function createFromTemplate(pgdata: string): void {
  const partial = `${pgdata}.partial`;
  rmSync(partial, { recursive: true, force: true });
  if (existsSync(pgdata)) {
    if (readdirSync(pgdata).length > 0) {
      throw new Error(`${pgdata} holds files but no database (no PG_VERSION): move it away to start afresh`);
    }
    rmdirSync(pgdata);
  }
  mkdirSync(partial, { recursive: true });
  for (const entry of readTar(readPgliteTemplate())) {
    const target = path.join(partial, entry.name);
    if (path.relative(partial, target).startsWith('..')) throw new Error(`bad template entry ${entry.name}`);
    if (entry.data === undefined) mkdirSync(target, { recursive: true });
    else {
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, entry.data);
    }
  }
  renameSync(partial, pgdata);
}

interface TarEntry {
  name: string;
  /** undefined for a directory. */
  data: Uint8Array | undefined;
}

/**
 * Reads the regular files and directories of a ustar archive (what PGlite's dumpDataDir writes).
 * The archive is our own asset, so anything else in it is an error rather than something to skip.
 */
export function* readTar(tar: Uint8Array): Generator<TarEntry> {
  const text = (from: number, length: number) => {
    const bytes = tar.subarray(from, from + length);
    const end = bytes.indexOf(0);
    return Buffer.from(end === -1 ? bytes : bytes.subarray(0, end)).toString('utf8');
  };
  let offset = 0;
  while (offset + 512 <= tar.length) {
    if (tar.subarray(offset, offset + 512).every((byte) => byte === 0)) return;
    const prefix = text(offset + 345, 155);
    const name = (prefix ? `${prefix}/` : '') + text(offset, 100);
    const size = Number.parseInt(text(offset + 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(tar[offset + 156] ?? 0);
    const start = offset + 512;
    if (type === '5') yield { name, data: undefined };
    else if (type === '0' || type === '\0') yield { name, data: tar.subarray(start, start + size) };
    else throw new Error(`unexpected entry type "${type}" for ${name} in the template`);
    offset = start + Math.ceil(size / 512) * 512;
  }
}
