import { createRoster, type Event } from '@roster/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoster } from '../server/bench/lib.js';
import { type Cluster, POSTGRES, scimConnection, scimSend, startCluster, stopCluster } from './support.js';

/**
 * The feed's guarantees under load, with real server processes: several processes on one
 * PostgreSQL (one on the embedded database), 32 concurrent SCIM writers, a consumer following the
 * feed, and one process killed with SIGKILL in the middle. Checked at the end: every event exactly
 * once, positions strictly increasing, each user's changes in the order they were made, and a mirror
 * built only from events equal to the server's state.
 */

const WRITERS = 32;
const USERS_PER_WRITER = 3;
const RENAMES = 4;
const GROUPS = 4;
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const position = (cursor: string) => Number(Buffer.from(cursor, 'base64url').toString('utf8').split(':')[1]);

describe(`the events feed under load (${POSTGRES ? 'PostgreSQL, 3 processes' : 'embedded PGlite, 1 process'})`, () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster('feed', { ROSTER_SCIM_RATE_LIMIT: '100000' });
  }, 120_000);
  afterAll(() => stopCluster(cluster));

  it('delivers every change exactly once, in commit order, and survives a SIGKILL', async () => {
    const live = new Set(cluster.processes);
    const pick = () => {
      const alive = [...live];
      if (alive.length === 0) throw new Error('no server process is up (restarting)');
      return alive[Math.floor(Math.random() * alive.length)]!;
    };
    const connection = await scimConnection(cluster, 'Feed load', 'okta');
    const org = connection.org;
    let admin = createRoster({ baseUrl: cluster.processes[0]!.url, secretKey: cluster.secretKey });

    /** A SCIM request to any live process; connection failures are retried on another one. */
    const scim = async (method: string, route: string, body?: unknown) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await scimSend(pick().url, connection, method, route, body);
        } catch (error) {
          if (attempt > 400) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    };

    // The consumer: follows the feed through the SDK, on whichever process is alive.
    const seen: Event[] = [];
    const consumerStop = new AbortController();
    const consume = (async () => {
      let cursor: string | undefined;
      while (!consumerStop.signal.aborted) {
        try {
          // A new client per page: the next page may come from another (or a restarted) process.
          const client = createRoster({ baseUrl: pick().url, secretKey: cluster.secretKey, retries: 0 });
          const page = await client.events.list({
            after: cursor,
            organizationId: org.id,
            wait: 1,
            signal: consumerStop.signal,
          });
          seen.push(...page.data);
          cursor = page.next_cursor;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    })();

    const groups: string[] = [];
    for (let g = 0; g < GROUPS; g++)
      groups.push((await scim('POST', '/Groups', { displayName: `Load group ${g}` })).body.id);

    // What each writer did, in order, per user: the expected order of that user's renames.
    const renamesDone = new Map<string, number[]>();
    let operations = 0;
    let killed = false;
    const killAt = WRITERS * USERS_PER_WRITER * (RENAMES + 2) * 0.5;
    const maybeKill = async () => {
      operations++;
      if (killed || operations < killAt) return;
      killed = true;
      const victim = cluster.processes[cluster.processes.length - 1]!;
      live.delete(victim);
      victim.process.kill('SIGKILL');
      if (!POSTGRES) {
        // The embedded database has one process: restart it on the same data, as a supervisor would.
        await new Promise((resolve) => victim.process.once('exit', resolve));
        const restarted = await startRoster(cluster.env);
        cluster.processes.push(restarted);
        live.add(restarted);
      }
    };

    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let u = 0; u < USERS_PER_WRITER; u++) {
          const userName = `w${w}.u${u}@load.test`;
          let created = await scim('POST', '/Users', {
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
            userName,
            active: true,
          });
          if (created.status === 409) {
            // A POST whose response was lost in the kill may have committed: find it.
            const found = await scim(
              'GET',
              `/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`,
            );
            created = { status: 201, body: found.body.Resources[0] };
          }
          expect(created.status).toBe(201);
          const id: string = created.body.id;
          await maybeKill();
          const order: number[] = [];
          for (let k = 1; k <= RENAMES; k++) {
            const renamed = await scim('PATCH', `/Users/${id}`, {
              schemas: [PATCH_OP],
              Operations: [{ op: 'Replace', path: 'displayName', value: `${userName}#${k}` }],
            });
            expect(renamed.status).toBe(200);
            order.push(k);
            await maybeKill();
          }
          renamesDone.set(id, order);
          const group = groups[(w + u) % GROUPS]!;
          expect(
            (
              await scim('PATCH', `/Groups/${group}`, {
                schemas: [PATCH_OP],
                Operations: [{ op: 'Add', path: 'members', value: [{ value: id }] }],
              })
            ).status,
          ).toBe(204);
          if ((w + u) % 3 === 0) {
            expect(
              (
                await scim('PATCH', `/Users/${id}`, {
                  schemas: [PATCH_OP],
                  Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
                })
              ).status,
            ).toBe(200);
          }
          if ((w + u) % 5 === 0) {
            expect(
              (
                await scim('PATCH', `/Groups/${group}`, {
                  schemas: [PATCH_OP],
                  Operations: [{ op: 'remove', path: `members[value eq "${id}"]` }],
                })
              ).status,
            ).toBe(204);
          }
          await maybeKill();
        }
      }),
    );
    expect(killed).toBe(true);

    admin = createRoster({ baseUrl: pick().url, secretKey: cluster.secretKey });
    // Let the consumer catch up with the head.
    const head = async () => (await admin.events.list({ organizationId: org.id, limit: 1000 })).next_cursor;
    let target = '';
    const deadline = Date.now() + 60_000;
    for (let quiet = 0; quiet < 3; ) {
      if (Date.now() > deadline) throw new Error(`the consumer did not catch up: saw ${seen.length} events`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const now = await head();
      const last = seen[seen.length - 1]?.cursor;
      if (now === target && last && position(last) >= position(now)) quiet++;
      else quiet = 0;
      target = now;
    }
    consumerStop.abort();
    await consume;

    // 1. Exactly once, positions strictly increasing, and nothing missing.
    expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
    const positions = seen.map((e) => position(e.cursor));
    for (let i = 1; i < positions.length; i++) expect(positions[i]!).toBeGreaterThan(positions[i - 1]!);
    let all = 0;
    let cursor: string | undefined;
    for (;;) {
      const page = await admin.events.list({ organizationId: org.id, after: cursor, limit: 1000 });
      all += page.data.length;
      if (page.data.length === 0) break;
      cursor = page.next_cursor;
    }
    expect(seen.length).toBe(all);

    // 2. Each user's renames in the order they were made.
    const renames = new Map<string, number[]>();
    for (const e of seen) {
      if (e.type !== 'user.updated' || !(e.data.changed_attributes as string[]).includes('displayName'))
        continue;
      const k = Number(String(e.data.name).split('#')[1]);
      renames.set(e.data.id as string, [...(renames.get(e.data.id as string) ?? []), k]);
    }
    for (const [id, order] of renamesDone) expect(renames.get(id), id).toEqual(order);

    // 3. A mirror built from events only equals the server's state.
    const mirrorUsers = new Map<string, { active: boolean; name: string | null }>();
    const mirrorMembers = new Map<string, Set<string>>(groups.map((g) => [g, new Set()]));
    for (const e of seen) {
      // biome-ignore lint/suspicious/noExplicitAny: event payloads of several resource types
      const d = e.data as Record<string, any>;
      if (e.type.startsWith('user.')) mirrorUsers.set(d.id, { active: d.active, name: d.name });
      if (e.type === 'group.user_added') mirrorMembers.get(d.group.id)?.add(d.user.id);
      if (e.type === 'group.user_removed') mirrorMembers.get(d.group.id)?.delete(d.user.id);
    }
    const serverUsers = new Map<string, { active: boolean; name: string | null }>();
    for await (const user of admin.users.list({ organizationId: org.id, limit: 100 })) {
      serverUsers.set(user.id, { active: user.active, name: user.name });
    }
    expect(serverUsers.size).toBe(WRITERS * USERS_PER_WRITER);
    expect(mirrorUsers).toEqual(serverUsers);
    for (const group of groups) {
      const members = new Set<string>();
      for await (const user of admin.groups.listMembers({ groupId: group })) members.add(user.id);
      expect(mirrorMembers.get(group)).toEqual(members);
    }
  }, 240_000);
});
