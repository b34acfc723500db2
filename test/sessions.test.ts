import { createRoster } from '@roster/sdk';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildServer } from '../server/bench/lib.js';
import { type Cluster, POSTGRES, startCluster, stopCluster } from './support.js';

/**
 * The refresh reuse interval with real server processes: several processes on one PostgreSQL (one
 * on the embedded database), the same refresh cookie presented to all of them at once, as two
 * replicas behind a load balancer or parallel requests of one browser tab do. Nobody is signed
 * out; once the interval is over, the spent token is theft again.
 */

const REUSE_INTERVAL_MS = 5_000;

interface RefreshReply {
  token: string;
  refresh_token: string;
  expires_at: string;
  error: { code: string };
}

const payload = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));

describe(`refresh reuse interval (${POSTGRES ? 'PostgreSQL, 3 processes' : 'embedded PGlite, 1 process'})`, () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster('sessions', {
      ROSTER_REFRESH_RATE_LIMIT: '100000',
      ROSTER_REFRESH_REUSE_INTERVAL: `${REUSE_INTERVAL_MS}ms`,
      // Replicas behind one address: one issuer.
      ROSTER_PUBLIC_URL: 'https://roster.replicas.test',
    });
  }, 120_000);
  afterAll(() => stopCluster(cluster));

  const refreshAt = async (server: ChildServer, refreshToken: string) => {
    const response = await fetch(`${server.url}/v1/sessions/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    return { status: response.status, body: (await response.json()) as RefreshReply };
  };

  it('concurrent refreshes with one token on every process answer one pair; reuse after the interval revokes', async () => {
    const roster = createRoster({ baseUrl: cluster.processes[0]!.url, secretKey: cluster.secretKey });
    const org = await roster.organizations.create({ name: 'Replicas' });
    const member = await roster.organizations.addMember({
      organizationId: org.id,
      email: 'tab@replicas.test',
    });
    const session = await roster.sessions.create({ user_id: member.user.id, organization_id: org.id });

    let token = session.refresh_token;
    const answered: string[] = [];
    for (let round = 0; round < 3; round++) {
      // 12 requests at once, spread over the processes.
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          refreshAt(cluster.processes[i % cluster.processes.length]!, token),
        ),
      );
      expect(results.map((r) => [r.status, r.body.error?.code ?? round])).toEqual(
        Array(12).fill([200, round]),
      );
      const pairs = new Set(results.map((r) => r.body.refresh_token));
      expect(pairs.size).toBe(1);
      // The same session token too: the same claims, issue and expiry times.
      const claims = results.map((r) => payload(r.body.token));
      for (const c of claims) expect(c).toEqual(claims[0]);
      expect(claims[0]).toMatchObject({ sid: session.id, aud: org.id });
      expect(new Set(results.map((r) => r.body.expires_at)).size).toBe(1);
      token = results[0]!.body.refresh_token;
      answered.push(token);
    }
    expect(new Set(answered).size).toBe(3);
    expect((await roster.sessions.get({ sessionId: session.id })).status).toBe('active');

    // Within the interval, the spent token of the last round still answers its successor.
    const late = await refreshAt(cluster.processes.at(-1)!, answered[1]!);
    expect([late.status, late.body.refresh_token]).toEqual([200, answered[2]]);

    // After it, presenting a spent token is theft: the session is revoked, the newest token too.
    await new Promise((resolve) => setTimeout(resolve, REUSE_INTERVAL_MS + 300));
    const stolen = await refreshAt(cluster.processes[0]!, answered[1]!);
    expect([stolen.status, stolen.body.error.code]).toEqual([401, 'session_revoked']);
    const newest = await refreshAt(cluster.processes.at(-1)!, token);
    expect([newest.status, newest.body.error.code]).toEqual([401, 'session_revoked']);
    expect(await roster.sessions.get({ sessionId: session.id })).toMatchObject({
      status: 'revoked',
      revoke_reason: 'refresh_token_reused',
    });
  }, 60_000);

  it('many sessions refreshed at once on every process: batched rotations, each its own pair, no deadlock', async () => {
    const roster = createRoster({ baseUrl: cluster.processes[0]!.url, secretKey: cluster.secretKey });
    const org = await roster.organizations.create({ name: 'Busy replicas' });
    const sessions = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const member = await roster.organizations.addMember({
          organizationId: org.id,
          email: `busy${i}@replicas.test`,
        });
        return roster.sessions.create({ user_id: member.user.id, organization_id: org.id });
      }),
    );
    const deadlocks = async () => {
      if (!POSTGRES) return 0;
      const client = new pg.Client({ connectionString: cluster.env.DATABASE_URL });
      await client.connect();
      try {
        const { rows } = await client.query<{ deadlocks: string }>(
          'select deadlocks from pg_stat_database where datname = current_database()',
        );
        return Number(rows[0]!.deadlocks);
      } finally {
        await client.end();
      }
    };
    const deadlocksBefore = await deadlocks();
    let tokens = sessions.map((s) => s.refresh_token);
    for (let round = 0; round < 3; round++) {
      // Every session's token on every process at once, in a different order on each: each process
      // batches rotations of many sessions, and the processes' batches contend for the same rows.
      const results = await Promise.all(
        cluster.processes.flatMap((process, p) =>
          tokens.map((_, k) => {
            const n = tokens.length;
            const i = (p % 2 === 0 ? k + 8 * p : n - 1 - k + 8 * p) % n;
            return refreshAt(process, tokens[i]!).then((reply) => ({ i, reply }));
          }),
        ),
      );
      const next: string[] = [...tokens];
      for (const { i, reply } of results) {
        expect([reply.status, reply.body.error?.code]).toEqual([200, undefined]);
        // Its own session's pair: the session token names the session asked for, and every
        // process answered that session the same refresh token.
        expect(payload(reply.body.token)).toMatchObject({ sid: sessions[i]!.id, aud: org.id });
        expect(reply.body.refresh_token.startsWith(`rst_rt_${sessions[i]!.id}.${round + 2}.`)).toBe(true);
        if (next[i] !== tokens[i]) expect(reply.body.refresh_token).toBe(next[i]);
        next[i] = reply.body.refresh_token;
      }
      expect(new Set(next).size).toBe(sessions.length);
      tokens = next;
    }
    // A backend reports its statistics (deadlocks among them) at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await deadlocks()).toBe(deadlocksBefore);
    const listed = await Promise.all(sessions.map((s) => roster.sessions.get({ sessionId: s.id })));
    expect(listed.map((s) => s.status)).toEqual(Array(sessions.length).fill('active'));
  }, 60_000);
});
