/**
 * `npm run fuzz -- --requests=100000`: the long fuzz run of test/fuzz.ts against the built server in
 * its own process (on PostgreSQL when DATABASE_URL is set): hostile SCIM and /v1 requests from one
 * tenant beside legitimate traffic in two. Exits 1 on any 5xx, hang, cross-tenant read or
 * difference in the legitimate directories. Options: --requests, --seed, --concurrency;
 * FUZZ_LOG=<file> appends every request as a JSON line. Not part of `npm test` (a sample is).
 */
import { randomBytes } from 'node:crypto';
import { runFuzz } from '../test/fuzz.js';
import { arg, freshDatabase, startRoster } from './lib.js';

async function main() {
  const requests = arg('requests', 100_000);
  const seed = arg('seed', 20261130);
  const concurrency = arg('concurrency', 4);
  const adminUrl = process.env.DATABASE_URL;
  const database = adminUrl ? await freshDatabase(adminUrl) : undefined;
  const secretKey = `rst_sk_fuzz_${randomBytes(24).toString('hex')}`;
  const env: Record<string, string> = {
    ROSTER_SECRET_KEY: secretKey,
    ROSTER_SCIM_RATE_LIMIT: '1000000',
    ROSTER_API_RATE_LIMIT: '1000000',
    ROSTER_AUTH_FAILURE_RATE_LIMIT: '1000000',
    ROSTER_BODY_LIMIT: '256kb',
  };
  if (database) env.DATABASE_URL = database.url;
  else env.ROSTER_DATA_DIR = `/tmp/roster-fuzz-${randomBytes(4).toString('hex')}`;
  console.log(
    `fuzz: ${requests} hostile requests, seed ${seed}, ${concurrency} at a time, on ${database ? 'PostgreSQL' : 'embedded PGlite'}; node ${process.version}`,
  );
  const roster = await startRoster(env);
  let failed = false;
  try {
    const report = await runFuzz({
      url: roster.url,
      secretKey,
      requests,
      seed,
      concurrency,
      log: process.env.FUZZ_LOG,
    });
    console.log(
      `${report.sent} hostile requests in ${report.seconds.toFixed(0)} s beside ${report.legitimateOps} legitimate operations; statuses ${JSON.stringify(report.statuses)}`,
    );
    console.log(report.failures.length === 0 ? 'no failures' : `${report.failures.length} failures:`);
    for (const failure of report.failures.slice(0, 50)) console.log(`  ${failure}`);
    failed = report.failures.length > 0;
  } finally {
    await roster.stop();
    await database?.drop();
  }
  if (failed) process.exit(1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
