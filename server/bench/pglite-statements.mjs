// Preloaded into the server by `bench:scim` on PGlite (`node --import`), never by the server itself:
// counts the statements the server sends to the embedded database, since PGlite has no
// pg_stat_statements. It wraps PGlite's query and exec methods (every statement of Roster's
// PGlitePool goes through query: BEGIN and COMMIT too); on SIGUSR2 it writes the count so far to
// ROSTER_BENCH_STATEMENTS_FILE.
import { renameSync, writeFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';

const file = process.env.ROSTER_BENCH_STATEMENTS_FILE;
let statements = 0;
let reads = 0;
for (const method of ['query', 'exec']) {
  const original = PGlite.prototype[method];
  PGlite.prototype[method] = function counted(...args) {
    statements++;
    return original.apply(this, args);
  };
}
process.on('SIGUSR2', () => {
  reads++;
  if (!file) return;
  // Written whole then renamed: the bench never reads half a file.
  writeFileSync(`${file}.tmp`, JSON.stringify({ reads, statements }));
  renameSync(`${file}.tmp`, file);
});
