/**
 * `npm run pglite-template -w @roster/server`: runs PGlite's initdb once and writes its data
 * directory, as a brotli-compressed tar, to assets/pglite-template.tar.br. New embedded databases
 * start from it (src/db/pglite.ts) instead of running initdb in the server process, which peaks
 * near 900 MB. Run it again after upgrading @electric-sql/pglite: a template from another
 * PostgreSQL version fails to open, and test/pglite.test.ts says so.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';

const target = path.resolve(import.meta.dirname, '../assets/pglite-template.tar.br');

const pglite = new PGlite();
await pglite.waitReady;
const tar = new Uint8Array(await (await pglite.dumpDataDir('none')).arrayBuffer());
const { rows } = await pglite.query<{ version: string }>('select version()');
await pglite.close();

// Most of the 40 MB are zero-filled pages and WAL: brotli at its best setting keeps 1.4 MB of it.
const packed = brotliCompressSync(tar, {
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 11,
    [constants.BROTLI_PARAM_LGWIN]: 24,
    [constants.BROTLI_PARAM_SIZE_HINT]: tar.length,
  },
});
writeFileSync(target, packed);
console.log(`${target}: ${packed.length} bytes (${tar.length} unpacked), ${rows[0]?.version}`);
