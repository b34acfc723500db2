import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateScimToken } from '../src/directory/scim-tokens.js';
import { hashSecret } from '../src/ids.js';
import { startTestServer, type TestServer } from './harness.js';

let server: TestServer;
let clock: Date;
beforeAll(async () => {
  clock = new Date('2026-11-28T12:00:00.000Z');
  server = await startTestServer({ now: () => clock });
});
afterAll(async () => {
  await server?.close();
});

async function createOrg(name = 'Acme') {
  const response = await server.api('POST', '/v1/organizations', { body: { name } });
  expect(response.status).toBe(201);
  return response.body.id as string;
}

describe('connections', () => {
  it('creates a connection with a SCIM base URL and a token shown once', async () => {
    const orgId = await createOrg();
    const created = await server.api('POST', `/v1/organizations/${orgId}/connections`, {
      body: { name: 'Acme Okta', provider: 'okta' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      object: 'connection',
      id: expect.stringMatching(/^conn_[0-9a-z]{26}$/),
      organization_id: orgId,
      name: 'Acme Okta',
      provider: 'okta',
      state: 'active',
      scim: {
        base_url: `${server.publicUrl}/scim/v2/${created.body.id}`,
        token: expect.stringMatching(/^rst_scim_[A-Za-z0-9_-]{43}$/),
      },
      created_at: clock.toISOString(),
      updated_at: clock.toISOString(),
    });

    const got = await server.api('GET', `/v1/connections/${created.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body.scim).toEqual({ base_url: created.body.scim.base_url });
    expect(JSON.stringify(got.body)).not.toContain(created.body.scim.token);

    // Stored as a digest only.
    const stored = await server.ctx.db.selectFrom('scim_tokens').selectAll().execute();
    expect(JSON.stringify(stored)).not.toContain(created.body.scim.token);
    expect(stored.map((t) => t.token_hash)).toContain(hashSecret(created.body.scim.token));
  });

  it('validates the body and the organization', async () => {
    const orgId = await createOrg();
    const bad = await server.api('POST', `/v1/organizations/${orgId}/connections`, {
      body: { name: 'x', provider: 'ldap' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('provider');
    const missing = await server.api('POST', '/v1/organizations/org_00000000000000000000000000/connections', {
      body: { name: 'x', provider: 'entra' },
    });
    expect(missing.status).toBe(404);
  });

  it('rotates the token: the old one works during the grace period, then fails', async () => {
    const orgId = await createOrg();
    const created = await server.api('POST', `/v1/organizations/${orgId}/connections`, {
      body: { name: 'Entra', provider: 'entra' },
    });
    const connectionId: string = created.body.id;
    const oldToken: string = created.body.scim.token;
    const valid = (token: string) => authenticateScimToken(server.ctx, connectionId, token);
    expect(await valid(oldToken)).toMatchObject({ connectionId, organizationId: orgId, provider: 'entra' });

    const rotated = await server.api('POST', `/v1/connections/${connectionId}/scim_tokens`);
    expect(rotated.status).toBe(201);
    expect(rotated.body).toEqual({
      object: 'scim_token',
      connection_id: connectionId,
      base_url: created.body.scim.base_url,
      token: expect.stringMatching(/^rst_scim_/),
      previous_tokens_expire_at: new Date(clock.getTime() + 24 * 3_600_000).toISOString(),
    });
    const newToken: string = rotated.body.token;
    expect(newToken).not.toBe(oldToken);

    clock = new Date(clock.getTime() + 23 * 3_600_000);
    expect(await valid(oldToken)).toBeDefined();
    expect(await valid(newToken)).toBeDefined();

    clock = new Date(clock.getTime() + 2 * 3_600_000);
    expect(await valid(oldToken)).toBeUndefined();
    expect(await valid(newToken)).toBeDefined();
  });

  it('cuts previous tokens off at once with a zero grace period, and never extends a grace period', async () => {
    const orgId = await createOrg();
    const created = await server.api('POST', `/v1/organizations/${orgId}/connections`, {
      body: { name: 'Leaky', provider: 'generic' },
    });
    const connectionId: string = created.body.id;
    const first: string = created.body.scim.token;
    const second = await server.api('POST', `/v1/connections/${connectionId}/scim_tokens`, {
      body: { previous_token_grace_seconds: 3600 },
    });
    // A later rotation with a longer grace must not revive or extend `first`.
    await server.api('POST', `/v1/connections/${connectionId}/scim_tokens`, {
      body: { previous_token_grace_seconds: 86_400 },
    });
    clock = new Date(clock.getTime() + 2 * 3_600_000);
    expect(await authenticateScimToken(server.ctx, connectionId, first)).toBeUndefined();
    expect(await authenticateScimToken(server.ctx, connectionId, second.body.token)).toBeDefined();

    const cut = await server.api('POST', `/v1/connections/${connectionId}/scim_tokens`, {
      body: { previous_token_grace_seconds: 0 },
    });
    expect(await authenticateScimToken(server.ctx, connectionId, second.body.token)).toBeUndefined();
    expect(await authenticateScimToken(server.ctx, connectionId, cut.body.token)).toBeDefined();
  });

  it('never accepts a token for another connection', async () => {
    const orgA = await createOrg('A');
    const orgB = await createOrg('B');
    const a = await server.api('POST', `/v1/organizations/${orgA}/connections`, {
      body: { name: 'A', provider: 'okta' },
    });
    const b = await server.api('POST', `/v1/organizations/${orgB}/connections`, {
      body: { name: 'B', provider: 'okta' },
    });
    expect(await authenticateScimToken(server.ctx, b.body.id, a.body.scim.token)).toBeUndefined();
    expect(await authenticateScimToken(server.ctx, a.body.id, b.body.scim.token)).toBeUndefined();
    expect(await authenticateScimToken(server.ctx, a.body.id, `${a.body.scim.token}x`)).toBeUndefined();
  });

  it('answers 404 for rotation of an unknown connection', async () => {
    const response = await server.api('POST', '/v1/connections/conn_00000000000000000000000000/scim_tokens');
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('not_found');
  });
});
