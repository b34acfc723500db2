/**
 * `npm run bench:sessions`:
 * 1. Session verification on one core with a warm JWKS: the middleware's path
 *    (`@roster/sdk/express`, `authenticate` of an `Authorization: Bearer` request) over distinct
 *    tokens, next to raw `node:crypto` verification of the same signatures in the same run, for
 *    ES256 and EdDSA; and the WebCrypto verifier (`verifySession`, edge runtimes) for reference.
 * 2. Refresh latency on PostgreSQL (DATABASE_URL) through the built server: sequential refreshes,
 *    then 16 sessions refreshing concurrently.
 *
 *   DATABASE_URL=postgres://… npm run bench:sessions -- --tokens=20000 --refreshes=2000
 */
import { createPublicKey, verify } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createRoster, createSessionVerifier } from '@roster/sdk';
import { createNodeSessionVerifier } from '@roster/sdk/express';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { arg, freshDatabase, startRoster } from '../../server/bench/lib.js';

const TOKENS = arg('tokens', 20_000);
const REFRESHES = arg('refreshes', 2_000);
const CONCURRENCY = arg('concurrency', 16);
const ISSUER = 'https://roster.bench';

function stats(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
  return `p50 ${at(50).toFixed(2)} ms  p95 ${at(95).toFixed(2)} ms  p99 ${at(99).toFixed(2)} ms  max ${sorted[sorted.length - 1]?.toFixed(2)} ms`;
}

async function verification(alg: 'ES256' | 'EdDSA') {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'sk_bench', alg, use: 'sig' };
  const now = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let i = 0; i < TOKENS; i++) {
    tokens.push(
      await new SignJWT({
        sub: `user_${i}`,
        sid: `sess_${i}`,
        org_id: 'org_bench',
        org_role: 'admin',
        org_permissions: ['invoices:read', 'invoices:write', 'members:read'],
      })
        .setProtectedHeader({ alg, kid: 'sk_bench', typ: 'JWT' })
        .setIssuer(ISSUER)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 3600)
        .sign(privateKey),
    );
  }
  const fetchJwks = async () => Response.json({ keys: [jwk] });
  const middleware = createNodeSessionVerifier({ baseUrl: ISSUER, fetch: fetchJwks, cookies: false });
  const web = createSessionVerifier({ baseUrl: ISSUER, fetch: fetchJwks, cookies: false });
  // Warm the JWKS caches and the JIT.
  for (const t of tokens.slice(0, 500)) {
    await middleware.authenticate({ headers: { authorization: `Bearer ${t}` } });
    await web.verifyToken(t);
  }

  const key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  const raw = () => {
    const started = performance.now();
    for (const t of tokens) {
      const dot = t.lastIndexOf('.');
      const ok = verify(
        alg === 'ES256' ? 'sha256' : null,
        Buffer.from(t.slice(0, dot), 'latin1'),
        alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
        Buffer.from(t.slice(dot + 1), 'base64url'),
      );
      if (!ok) throw new Error('raw verification failed');
    }
    return tokens.length / ((performance.now() - started) / 1000);
  };
  const viaMiddleware = async () => {
    const started = performance.now();
    for (const t of tokens) {
      const result = await middleware.authenticate({ headers: { authorization: `Bearer ${t}` } });
      if (result.status !== 'signed_in') throw new Error(`middleware rejected: ${result.reason}`);
    }
    return tokens.length / ((performance.now() - started) / 1000);
  };
  const viaWebCrypto = async () => {
    const started = performance.now();
    for (const t of tokens) {
      const result = await web.verifyToken(t);
      if (result.status !== 'signed_in') throw new Error(`verifier rejected: ${result.reason}`);
    }
    return tokens.length / ((performance.now() - started) / 1000);
  };
  // Interleaved rounds, best of three each: the machine is shared.
  const best = { raw: 0, middleware: 0, web: 0 };
  for (let round = 0; round < 3; round++) {
    best.raw = Math.max(best.raw, raw());
    best.middleware = Math.max(best.middleware, await viaMiddleware());
    best.web = Math.max(best.web, await viaWebCrypto());
  }
  console.log(`\n${alg}: ${TOKENS} distinct tokens, one core, warm JWKS (best of 3 rounds)`);
  console.log(`  raw node:crypto verify          ${best.raw.toFixed(0)} /s`);
  console.log(
    `  @roster/sdk/express middleware  ${best.middleware.toFixed(0)} /s   ${((100 * best.middleware) / best.raw).toFixed(1)} % of raw (aim ≥ 80 %)`,
  );
  console.log(
    `  verifySession (WebCrypto)       ${best.web.toFixed(0)} /s   ${((100 * best.web) / best.raw).toFixed(1)} % of raw`,
  );
}

async function refreshLatency() {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    console.log('\nrefresh latency: skipped (set DATABASE_URL to measure it on PostgreSQL)');
    return;
  }
  const database = await freshDatabase(adminUrl);
  const secretKey = `rst_sk_bench_${'x'.repeat(40)}`;
  try {
    const server = await startRoster({
      DATABASE_URL: database.url,
      ROSTER_SECRET_KEY: secretKey,
      ROSTER_REFRESH_RATE_LIMIT: '1000000',
    });
    try {
      const roster = createRoster({ baseUrl: server.url, secretKey });
      const org = await roster.organizations.create({ name: 'Bench' });
      const members = [];
      for (let i = 0; i < CONCURRENCY; i++) {
        members.push(
          await roster.organizations.addMember({ organizationId: org.id, email: `m${i}@bench.test` }),
        );
      }
      const refreshOnce = async (refreshToken: string) => {
        const response = await fetch(`${server.url}/v1/sessions/refresh`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refresh_token: refreshToken }),
        });
        const body = (await response.json()) as { refresh_token: string };
        if (response.status !== 200) throw new Error(`refresh answered ${response.status}`);
        return body.refresh_token;
      };

      // Sequential: one session refreshing back to back.
      let token = (await roster.sessions.create({ user_id: members[0]!.user.id, organization_id: org.id }))
        .refresh_token;
      for (let i = 0; i < 100; i++) token = await refreshOnce(token); // warm-up
      const sequential: number[] = [];
      for (let i = 0; i < REFRESHES; i++) {
        const t0 = performance.now();
        token = await refreshOnce(token);
        sequential.push(performance.now() - t0);
      }
      console.log(`\nrefresh on PostgreSQL, one session, ${REFRESHES} in a row:`);
      console.log(`  ${stats(sequential)}`);

      // Concurrent: CONCURRENCY sessions of different users.
      const tokens = await Promise.all(
        members.map(
          async (m) =>
            (await roster.sessions.create({ user_id: m.user.id, organization_id: org.id })).refresh_token,
        ),
      );
      const concurrent: number[] = [];
      const per = Math.ceil(REFRESHES / CONCURRENCY);
      const started = performance.now();
      await Promise.all(
        tokens.map(async (initial) => {
          let t = initial;
          for (let i = 0; i < per; i++) {
            const t0 = performance.now();
            t = await refreshOnce(t);
            concurrent.push(performance.now() - t0);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `\nrefresh on PostgreSQL, ${CONCURRENCY} sessions concurrently, ${concurrent.length} refreshes:`,
      );
      console.log(`  ${(concurrent.length / seconds).toFixed(0)} refreshes/s   ${stats(concurrent)}`);
    } finally {
      await server.stop();
    }
  } finally {
    await database.drop();
  }
}

async function main() {
  await verification('ES256');
  await verification('EdDSA');
  await refreshLatency();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
