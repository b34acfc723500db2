import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFuzz } from './fuzz.js';
import { startTestServer, type TestServer } from './harness.js';

/**
 * A seeded sample of the long fuzz run (`npm run fuzz -- --requests=100000`, see fuzz.ts): hostile
 * requests from tenant A while legitimate traffic provisions A and B.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 16_2026);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    env: {
      ROSTER_SCIM_RATE_LIMIT: '1000000',
      ROSTER_API_RATE_LIMIT: '1000000',
      ROSTER_AUTH_FAILURE_RATE_LIMIT: '1000000',
      ROSTER_BODY_LIMIT: '256kb',
    },
  });
}, 120_000);
afterAll(async () => {
  await server?.close();
});

describe('fuzz sample', () => {
  it('1,000 hostile requests beside legitimate traffic: no 5xx, no hang, no leak, the directories intact', async () => {
    const report = await runFuzz({
      url: server.url,
      secretKey: server.secretKey,
      requests: 1000,
      seed: SEED,
    });
    expect(report.failures.slice(0, 20)).toEqual([]);
    expect(report.sent).toBe(1000);
    // The legitimate traffic ran beside it, and the generators reached both answers and refusals.
    expect(report.legitimateOps).toBeGreaterThan(20);
    expect(report.statuses['200'] ?? 0).toBeGreaterThan(50);
    expect(report.statuses['400'] ?? 0).toBeGreaterThan(100);
  }, 240_000);
});
