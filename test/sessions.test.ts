import { createRoster } from '@roster/sdk';
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
});
