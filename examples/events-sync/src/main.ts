import { createRoster } from '@roster/sdk';
import { migrate, openStore } from './store.js';
import { syncOnce } from './sync.js';

/**
 * The events-sync worker:
 *   ROSTER_URL=http://127.0.0.1:3000 ROSTER_SECRET_KEY=rst_sk_… npm start -w @roster/example-events-sync
 * Mirrors into MIRROR_DATABASE_URL (PostgreSQL) or an embedded PGlite in ./mirror-data. Stop it at
 * any time (Ctrl-C or SIGKILL); the next start continues where the last committed batch ended.
 */
const url = process.env.ROSTER_URL ?? 'http://127.0.0.1:3000';
const secretKey = process.env.ROSTER_SECRET_KEY;
if (!secretKey) {
  console.error('Set ROSTER_SECRET_KEY (the Roster management key).');
  process.exit(1);
}
const store = await openStore(
  process.env.MIRROR_DATABASE_URL,
  process.env.MIRROR_DATA_DIR ?? './mirror-data',
);
await migrate(store);
const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());
console.log(`following ${url}`);
await syncOnce(createRoster({ baseUrl: url, secretKey }), store, {
  signal: controller.signal,
  onBatch: (events) =>
    console.log(`applied ${events.length} event(s), up to ${events[events.length - 1]!.type}`),
});
await store.close();
