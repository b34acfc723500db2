import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRoster, type SnapshotMember, snapshotDigest } from '../src/index.js';

const member = (id: string, extra: Partial<SnapshotMember> = {}): SnapshotMember => ({
  membership_id: id,
  user_id: `user_${id}`,
  user_name: `${id}@example.com`,
  email: `${id}@example.com`,
  name: null,
  active: true,
  role: 'member',
  status: 'active',
  source: 'scim',
  metadata: {},
  ...extra,
});

describe('snapshotDigest', () => {
  it('is the documented algorithm: sorted members, canonical JSON lines, SHA-256', async () => {
    const b = member('mem_b', { metadata: { z: 1, a: { y: [2, { d: 1, c: 'é' }], x: null } } });
    const a = member('mem_a', { name: 'Ada "A" Lovelace' });
    // Written out by hand: keys sorted at every level, no whitespace, one line per member.
    const lines =
      '{"active":true,"email":"mem_a@example.com","membership_id":"mem_a","metadata":{},"name":"Ada \\"A\\" Lovelace","role":"member","source":"scim","status":"active","user_id":"user_mem_a","user_name":"mem_a@example.com"}\n' +
      '{"active":true,"email":"mem_b@example.com","membership_id":"mem_b","metadata":{"a":{"x":null,"y":[2,{"c":"é","d":1}]},"z":1},"name":null,"role":"member","source":"scim","status":"active","user_id":"user_mem_b","user_name":"mem_b@example.com"}\n';
    const expected = `sha256:${createHash('sha256').update(lines, 'utf8').digest('hex')}`;
    expect(await snapshotDigest([b, a])).toBe(expected);
    expect(await snapshotDigest([])).toBe(`sha256:${createHash('sha256').update('').digest('hex')}`);
  });
});

describe('safety-rail calls', () => {
  it('send the documented requests', async () => {
    const requests: Request[] = [];
    const roster = createRoster({
      baseUrl: 'https://roster.test',
      secretKey: 'rst_sk_test',
      retries: 0,
      fetch: async (input, init) => {
        requests.push(new Request(input, init));
        return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
      },
    });
    await roster.connections.releaseDeprovisionGuard({ connectionId: 'conn_1', window: '2h' });
    await roster.connections.previewRoleMappings({
      connectionId: 'conn_1',
      mappings: [{ group: 'G', role: 'admin' }],
    });
    await roster.connections.previewAttributeMappings({ connectionId: 'conn_1', mappings: [] });
    await roster.connections.update({
      connectionId: 'conn_1',
      deprovision_guard: { enabled: true, max_in_window: 50, window: '1h' },
    });
    await roster.organizations.previewUpdate({ organizationId: 'org_1', default_role: 'viewer' });
    await roster.organizations.snapshot({ organizationId: 'org_1', asOf: 'ZTE6NQ', members: false });
    await roster.organizations.diff({ organizationId: 'org_1', from: 'ZTE6MQ' });
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST https://roster.test/v1/connections/conn_1/deprovision_guard/release',
      'POST https://roster.test/v1/connections/conn_1/role_mappings/preview',
      'POST https://roster.test/v1/connections/conn_1/attribute_mappings/preview',
      'PATCH https://roster.test/v1/connections/conn_1',
      'POST https://roster.test/v1/organizations/org_1/preview',
      'GET https://roster.test/v1/organizations/org_1/snapshot?as_of=ZTE6NQ&members=false',
      'GET https://roster.test/v1/organizations/org_1/diff?from=ZTE6MQ',
    ]);
    expect(await requests[0]!.json()).toEqual({ window: '2h' });
    expect(await requests[3]!.json()).toEqual({
      deprovision_guard: { enabled: true, max_in_window: 50, window: '1h' },
    });
  });
});
