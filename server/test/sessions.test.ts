import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../src/ids.js';
import { KeyRing } from '../src/key-ring.js';
import { refreshTokenFor } from '../src/sessions/refresh-token.js';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, PATCH_OP, patchOp, type TestConnection, userBody } from './scim-helpers.js';

/**
 * Sessions: issue, refresh with rotation and reuse detection, revocation by every deprovisioning
 * path (each deactivation body Okta and Entra really send: docs/idp-behaviour.md, section
 * "Deactivation and deletion"), signing keys and their rotation. The clock is injected: lifetimes
 * and key expiry are tested without sleeping.
 */

/** The server's key ring, known to the test that plays an attacker holding it. */
const ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');
let offsetMs = 0;
const now = () => new Date(Date.now() + offsetMs);
let server: TestServer;
let conn: TestConnection;
beforeAll(async () => {
  // The per-session refresh limit is tested on a server of its own (below). Short lifetimes keep
  // the clock jumps far from the event retention (30 days), which maintenance would apply.
  server = await startTestServer({
    now,
    env: {
      ROSTER_REFRESH_RATE_LIMIT: '100000',
      ROSTER_ENCRYPTION_KEY: ENCRYPTION_KEY,
      ROSTER_SESSION_LIFETIME: '1h',
      ROSTER_DELETED_RETENTION: '2h',
    },
  });
  conn = await createConnection(server, 'okta');
});
afterAll(async () => {
  await server?.close();
});

async function jwks(target: TestServer = server): Promise<JSONWebKeySet> {
  const response = await target.fetch('/.well-known/jwks.json');
  expect(response.status).toBe(200);
  return (await response.json()) as JSONWebKeySet;
}

async function verify(token: string, keys?: JSONWebKeySet) {
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(keys ?? (await jwks())), {
    issuer: server.publicUrl,
    algorithms: ['ES256', 'EdDSA'],
    currentDate: now(),
  });
  return { payload, protectedHeader };
}

let counter = 0;
/** A user provisioned over SCIM into `conn`'s organization. */
async function scimUser(connection: TestConnection = conn): Promise<string> {
  const created = await connection.scim('POST', '/Users', {
    body: userBody(`u${++counter}-${Date.now()}@example.com`),
  });
  expect(created.status, created.text).toBe(201);
  return created.body.id;
}

async function signIn(userId: string, organizationId = conn.organizationId) {
  const response = await server.api('POST', '/v1/sessions', {
    body: { user_id: userId, organization_id: organizationId },
  });
  expect(response.status, response.text).toBe(201);
  return response.body as {
    id: string;
    token: string;
    refresh_token: string;
    expires_at: string;
    role: string;
    permissions: string[];
  };
}

/** Refresh as an app's edge does it: the refresh token, no secret key. */
function refresh(refreshToken: string, target: TestServer = server) {
  return target.api('POST', '/v1/sessions/refresh', { key: null, body: { refresh_token: refreshToken } });
}

async function revokedEvents(sessionId: string) {
  await server.sequencer.flush();
  const page = await server.api('GET', '/v1/events?types=session.revoked&limit=1000');
  return (page.body.data as { data: { id: string; revoke_reason: string; token_expires_at: string } }[])
    .map((e) => e.data)
    .filter((d) => d.id === sessionId);
}

describe('sessions', () => {
  it('issues a token with the contract claims, verifiable against the JWKS', async () => {
    const userId = await scimUser();
    const session = await signIn(userId);
    expect(session).toMatchObject({
      object: 'session_tokens',
      user_id: userId,
      organization_id: conn.organizationId,
    });
    expect(session.refresh_token).toMatch(/^rst_rt_/);
    const { payload, protectedHeader } = await verify(session.token);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(payload).toMatchObject({
      iss: server.publicUrl,
      sub: userId,
      sid: session.id,
      aud: conn.organizationId,
      org_id: conn.organizationId,
      org_role: 'member',
      org_permissions: session.permissions,
    });
    // `aud` is the organization: generic JWT libraries can bind a token to its tenant.
    const keys = createLocalJWKSet(await jwks());
    const options = { issuer: server.publicUrl, currentDate: now() };
    await expect(
      jwtVerify(session.token, keys, { ...options, audience: conn.organizationId }),
    ).resolves.toBeTruthy();
    await expect(jwtVerify(session.token, keys, { ...options, audience: 'org_other' })).rejects.toThrow(
      /aud/,
    );
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(payload.nbf).toBe(payload.iat);
    expect(new Date(session.expires_at).getTime()).toBe(payload.exp! * 1000);
    // The JWKS publishes public keys only.
    for (const key of (await jwks()).keys) expect(key).not.toHaveProperty('d');

    const stored = await server.api('GET', `/v1/sessions/${session.id}`);
    expect(stored.body).toMatchObject({
      status: 'active',
      revoked_at: null,
      token_expires_at: session.expires_at,
    });
    await server.sequencer.flush();
    const created = await server.api('GET', '/v1/events?types=session.created&limit=1000');
    expect(created.body.data.map((e: { data: { id: string } }) => e.data.id)).toContain(session.id);
  });

  it('refuses to sign in users who are inactive, deleted, of another organization, or unknown', async () => {
    const inactive = await scimUser();
    await conn.scim('PATCH', `/Users/${inactive}`, {
      body: patchOp({ op: 'replace', value: { active: false } }),
    });
    const r1 = await server.api('POST', '/v1/sessions', {
      body: { user_id: inactive, organization_id: conn.organizationId },
    });
    expect([r1.status, r1.body.error.code]).toEqual([409, 'user_inactive']);

    const other = await createConnection(server, 'entra');
    const foreign = await scimUser(other);
    const r2 = await server.api('POST', '/v1/sessions', {
      body: { user_id: foreign, organization_id: conn.organizationId },
    });
    expect([r2.status, r2.body.error.code]).toEqual([409, 'not_a_member']);

    const unknown = await server.api('POST', '/v1/sessions', {
      body: { user_id: 'user_01jdq3x0v8m4w2c7f9k1n5r6t8', organization_id: conn.organizationId },
    });
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'not_found']);

    const bad = await server.api('POST', '/v1/sessions', { body: { user_id: 'bob', organization_id: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual([
      'organization_id',
      'user_id',
    ]);
    const count = await server.ctx.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('user_id', 'in', [inactive, foreign])
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(0);
  });

  it('refresh rotates the refresh token and needs no secret key', async () => {
    const session = await signIn(await scimUser());
    offsetMs += 2_000; // a later iat, so the new token differs
    const refreshed = await refresh(session.refresh_token);
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.headers.get('cache-control')).toBe('no-store');
    expect(refreshed.body.id).toBe(session.id);
    expect(refreshed.body.refresh_token).not.toBe(session.refresh_token);
    expect(refreshed.body.token).not.toBe(session.token);
    expect((await verify(refreshed.body.token)).payload.sid).toBe(session.id);
    // And again with the new one.
    const again = await refresh(refreshed.body.refresh_token);
    expect(again.status).toBe(200);
  });

  it('a refresh token reused after the reuse interval revokes the whole session (theft detection)', async () => {
    const session = await signIn(await scimUser());
    const first = await refresh(session.refresh_token);
    expect(first.status).toBe(200);
    // The attacker (or the user) presents the spent token once the reuse interval (10 s) is over:
    // the session dies for both.
    offsetMs += 10_001;
    const reuse = await refresh(session.refresh_token);
    expect([reuse.status, reuse.body.error.code]).toEqual([401, 'session_revoked']);
    expect(reuse.body.error.message).toMatch(/already used/);
    const newest = await refresh(first.body.refresh_token);
    expect([newest.status, newest.body.error.code]).toEqual([401, 'session_revoked']);
    expect((await server.api('GET', `/v1/sessions/${session.id}`)).body).toMatchObject({
      status: 'revoked',
      revoke_reason: 'refresh_token_reused',
    });
    expect(await revokedEvents(session.id)).toEqual([
      expect.objectContaining({ id: session.id, revoke_reason: 'refresh_token_reused' }),
    ]);
  });

  it('within the reuse interval, a spent token answers the same pair again; no token is stored', async () => {
    const session = await signIn(await scimUser());
    const first = await refresh(session.refresh_token);
    expect(first.status).toBe(200);
    offsetMs += 9_000;
    const again = await refresh(session.refresh_token);
    expect(again.status, again.text).toBe(200);
    expect(again.body.refresh_token).toBe(first.body.refresh_token);
    expect(again.body.expires_at).toBe(first.body.expires_at);
    const [a, b] = [await verify(first.body.token), await verify(again.body.token)];
    expect(b.payload).toEqual(a.payload);
    expect(b.protectedHeader).toEqual(a.protectedHeader);
    // The session lives on, and the successor still rotates once.
    expect((await server.api('GET', `/v1/sessions/${session.id}`)).body.status).toBe('active');
    const next = await refresh(first.body.refresh_token);
    expect(next.status).toBe(200);
    expect(next.body.refresh_token).not.toBe(first.body.refresh_token);
    // Nothing a refresh token could be rebuilt from is stored: the session row keeps its
    // generation, and no token row is written.
    const rows = await server.ctx.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', session.id)
      .execute();
    expect(rows[0]?.refresh_generation).toBe(3);
    const dump = JSON.stringify(rows);
    for (const token of [session.refresh_token, first.body.refresh_token, next.body.refresh_token]) {
      const [, , secret, tag] = token.split('.') as [string, string, string, string];
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(tag);
    }
    const tokens = await server.ctx.db
      .selectFrom('refresh_tokens')
      .select('token_hash')
      .where('session_id', '=', session.id)
      .execute();
    expect(tokens).toEqual([]);
    expect(await revokedEvents(session.id)).toEqual([]);
  });

  it('twenty concurrent refreshes with one token all get the same pair; the session lives', async () => {
    const session = await signIn(await scimUser());
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(session.refresh_token)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(new Set(results.map((r) => r.body.refresh_token)).size).toBe(1);
    expect((await server.api('GET', `/v1/sessions/${session.id}`)).body.status).toBe('active');
    // One rotation: the session moved one generation.
    const row = await server.ctx.db
      .selectFrom('sessions')
      .select('refresh_generation')
      .where('id', '=', session.id)
      .executeTakeFirstOrThrow();
    expect(row.refresh_generation).toBe(2);
    expect(await revokedEvents(session.id)).toEqual([]);
  });

  it('a forged refresh token is unknown and revokes nothing; an older genuine one is a reuse', async () => {
    const session = await signIn(await scimUser());
    const [head, generation, secret, tag] = session.refresh_token.split('.') as [
      string,
      string,
      string,
      string,
    ];
    const flip = (text: string) => `${text.slice(0, -2)}${text.at(-2) === 'A' ? 'B' : 'A'}${text.at(-1)}`;
    // A wrong tag; a wrong secret; a later generation; a session id not its own; a malformed one.
    const otherSession = await signIn(await scimUser());
    for (const forged of [
      `${head}.${generation}.${secret}.${flip(tag)}`,
      `${head}.${generation}.${flip(secret)}.${tag}`,
      `${head}.${Number(generation) + 1}.${secret}.${tag}`,
      `${otherSession.refresh_token.split('.')[0]}.${generation}.${secret}.${tag}`,
      `${head}.0${generation}.${secret}.${tag}`,
    ]) {
      const r = await refresh(forged);
      expect([r.status, r.body.error.code], forged).toEqual([401, 'invalid_refresh_token']);
    }
    expect(await revokedEvents(session.id)).toEqual([]);
    expect(await revokedEvents(otherSession.id)).toEqual([]);
    // The genuine tokens still rotate.
    const first = await refresh(session.refresh_token);
    expect(first.status, first.text).toBe(200);
    const second = await refresh(first.body.refresh_token);
    expect(second.status, second.text).toBe(200);
    // Two generations back, even within the reuse interval: a reuse, the session dies.
    const reuse = await refresh(session.refresh_token);
    expect([reuse.status, reuse.body.error.code]).toEqual([401, 'session_revoked']);
    expect((await refresh(second.body.refresh_token)).status).toBe(401);
    expect(await revokedEvents(session.id)).toEqual([
      expect.objectContaining({ revoke_reason: 'refresh_token_reused' }),
    ]);
    expect((await refresh(otherSession.refresh_token)).status).toBe(200);
  });

  it('the encryption key alone makes no working refresh token, and revokes nothing with the current or previous generation', async () => {
    const keyRing = new KeyRing(Buffer.from(ENCRYPTION_KEY, 'base64'));
    const session = await signIn(await scimUser());
    const made = (generation: number) =>
      refreshTokenFor(keyRing, session.id, generation, randomBytes(32).toString('base64url'));
    // A valid tag for the current generation, but not the session's token: unknown.
    const current = await refresh(made(1));
    expect([current.status, current.body.error.code]).toEqual([401, 'invalid_refresh_token']);
    const first = await refresh(session.refresh_token);
    expect(first.status, first.text).toBe(200);
    // The previous and current generations, made up: unknown, within the reuse interval or not.
    for (const generation of [1, 2]) {
      const r = await refresh(made(generation));
      expect([r.status, r.body.error.code]).toEqual([401, 'invalid_refresh_token']);
    }
    expect(await revokedEvents(session.id)).toEqual([]);
    // The genuine token still rotates; the key holder's worst is an older generation, which
    // signs the user out (a reuse), never a refresh.
    const second = await refresh(first.body.refresh_token);
    expect(second.status, second.text).toBe(200);
    const older = await refresh(made(1));
    expect([older.status, older.body.error.code]).toEqual([401, 'session_revoked']);
    expect(await revokedEvents(session.id)).toEqual([
      expect.objectContaining({ revoke_reason: 'refresh_token_reused' }),
    ]);
  });

  it('a token from a rotation the database lost revokes the session, and the revocation outlives it', async () => {
    const session = await signIn(await scimUser());
    const before = await server.ctx.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', session.id)
      .executeTakeFirstOrThrow();
    // A rotation answered 30 s later, then lost (a crash before its commit reached the disk): the
    // row as it was before it.
    offsetMs += 30_000;
    const lost = await refresh(session.refresh_token);
    expect(lost.status, lost.text).toBe(200);
    const { id: _id, ...columns } = before;
    await server.ctx.db.updateTable('sessions').set(columns).where('id', '=', session.id).execute();
    // Its token is newer than the session: whoever holds the older one, current again, must not
    // keep the session unnoticed.
    const presented = await refresh(lost.body.refresh_token);
    expect([presented.status, presented.body.error.code]).toEqual([401, 'session_revoked']);
    expect((await refresh(session.refresh_token)).status).toBe(401);
    const [event] = await revokedEvents(session.id);
    expect(event).toMatchObject({ revoke_reason: 'refresh_token_reused' });
    // The row remembered the expiry of the older token only; the revocation reports a time no
    // token issued before it can outlive, the lost rotation's included (migration 0015).
    expect(Date.parse(before.token_expires_at!.toISOString())).toBeLessThan(Date.parse(lost.body.expires_at));
    expect(Date.parse(event!.token_expires_at)).toBeGreaterThanOrEqual(Date.parse(lost.body.expires_at));
    expect(Date.parse(event!.token_expires_at)).toBeLessThanOrEqual(now().getTime() + 61_000);
  });

  it('a refresh token issued before migration 0013 (a refresh_tokens row) keeps working once', async () => {
    const session = await signIn(await scimUser());
    // The session as the previous version left it: generation 0, its token a row.
    const legacy = `rst_rt_${'L'.repeat(42)}${++counter % 10}`;
    await server.ctx.db
      .updateTable('sessions')
      .set({ refresh_generation: 0, refresh_rotated_at: null })
      .where('id', '=', session.id)
      .execute();
    await server.ctx.db
      .insertInto('refresh_tokens')
      .values({
        token_hash: hashSecret(legacy),
        session_id: session.id,
        organization_id: conn.organizationId,
        created_at: now(),
      })
      .execute();
    // The new-format token of a generation the session is not at is a reuse: not tried here.
    const rotated = await refresh(legacy);
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.refresh_token).toMatch(new RegExp(`^rst_rt_${session.id}\\.1\\.`));
    // Within the interval the legacy token answers the same successor; the successor rotates.
    offsetMs += 5_000;
    const again = await refresh(legacy);
    expect(again.status, again.text).toBe(200);
    expect(again.body.refresh_token).toBe(rotated.body.refresh_token);
    const next = await refresh(rotated.body.refresh_token);
    expect(next.status, next.text).toBe(200);
    // After the interval the legacy token is a reuse.
    offsetMs += 10_001;
    const reuse = await refresh(legacy);
    expect([reuse.status, reuse.body.error.code]).toEqual([401, 'session_revoked']);
    expect(await revokedEvents(session.id)).toEqual([
      expect.objectContaining({ revoke_reason: 'refresh_token_reused' }),
    ]);
  });

  it('rejects malformed refresh requests without touching anything', async () => {
    const unknown = await refresh('rst_rt_not-a-token');
    expect([unknown.status, unknown.body.error.code]).toEqual([401, 'invalid_refresh_token']);
    const empty = await server.api('POST', '/v1/sessions/refresh', { key: null, body: {} });
    expect([empty.status, empty.body.error.code]).toEqual([400, 'validation_failed']);
    const text = await server.api('POST', '/v1/sessions/refresh', {
      key: null,
      body: 'refresh_token=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect([text.status, text.body.error.code]).toEqual([415, 'unsupported_media_type']);
    const broken = await server.api('POST', '/v1/sessions/refresh', { key: null, body: '{"refresh_token":' });
    expect([broken.status, broken.body.error.code]).toEqual([400, 'invalid_json']);
    // The other session routes still want the secret key.
    const anonymous = await server.api('POST', '/v1/sessions', { key: null, body: {} });
    expect(anonymous.status).toBe(401);
  });

  it('a role change reaches the token at the next refresh', async () => {
    const created = await server.api('POST', `/v1/organizations/${conn.organizationId}/memberships`, {
      body: { email: `api-${Date.now()}@example.com` },
    });
    expect(created.status, created.text).toBe(201);
    const session = await signIn(created.body.user.id);
    expect(session.role).toBe('member');
    const role = await server.api('POST', '/v1/roles', {
      body: { key: `billing-${Date.now()}`, name: 'Billing', permissions: ['invoices:read'] },
    });
    await server.api('PATCH', `/v1/organizations/${conn.organizationId}/memberships/${created.body.id}`, {
      body: { role: role.body.key },
    });
    const refreshed = await refresh(session.refresh_token);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).toMatchObject({ role: role.body.key, permissions: ['invoices:read'] });
    expect((await verify(refreshed.body.token)).payload).toMatchObject({
      org_role: role.body.key,
      org_permissions: ['invoices:read'],
    });
    // Permissions edited on the role: also at the next refresh.
    await server.api('PATCH', `/v1/roles/${role.body.key}`, {
      body: { permissions: ['invoices:read', 'invoices:write'] },
    });
    const again = await refresh(refreshed.body.refresh_token);
    expect(again.body.permissions).toEqual(['invoices:read', 'invoices:write']);

    // Removing the API member ends the session.
    await server.api('DELETE', `/v1/organizations/${conn.organizationId}/memberships/${created.body.id}`);
    const removed = await refresh(again.body.refresh_token);
    expect([removed.status, removed.body.error.code]).toEqual([401, 'user_inactive']);
    expect(await revokedEvents(session.id)).toEqual([
      expect.objectContaining({ revoke_reason: 'membership_removed' }),
    ]);
  });

  it('ends at its lifetime (ROSTER_SESSION_LIFETIME), and tokens never outlive it', async () => {
    const session = await signIn(await scimUser());
    offsetMs += 3_600_000 - 30_000; // 30 s before the end of the one-hour lifetime
    const last = await refresh(session.refresh_token);
    expect(last.status).toBe(200);
    // Capped at the session's end (in the whole seconds of `exp`).
    const sessionEnd = new Date(last.body.session_expires_at).getTime();
    expect(new Date(last.body.expires_at).getTime()).toBe(Math.floor(sessionEnd / 1000) * 1000);
    offsetMs += 31_000;
    const late = await refresh(last.body.refresh_token);
    expect([late.status, late.body.error.code]).toEqual([401, 'session_expired']);
    expect((await server.api('GET', `/v1/sessions/${session.id}`)).body.status).toBe('expired');
  });

  it('revoke, list and revoke_all', async () => {
    const userId = await scimUser();
    const a = await signIn(userId);
    const b = await signIn(userId);
    const c = await signIn(userId);
    const revoked = await server.api('POST', `/v1/sessions/${a.id}/revoke`);
    expect(revoked.body).toMatchObject({ id: a.id, status: 'revoked', revoke_reason: 'revoked' });
    const twice = await server.api('POST', `/v1/sessions/${a.id}/revoke`);
    expect(twice.body.revoked_at).toBe(revoked.body.revoked_at);
    expect((await refresh(a.refresh_token)).body.error.code).toBe('session_revoked');

    const all = await server.api('GET', `/v1/users/${userId}/sessions?limit=2`);
    expect(all.body.data.map((s: { id: string }) => s.id)).toEqual([a.id, b.id]);
    const rest = await server.api(
      'GET',
      `/v1/users/${userId}/sessions?limit=2&after=${all.body.next_cursor}`,
    );
    expect(rest.body.data.map((s: { id: string }) => s.id)).toEqual([c.id]);
    const active = await server.api('GET', `/v1/users/${userId}/sessions?status=active`);
    expect(active.body.data.map((s: { id: string }) => s.id)).toEqual([b.id, c.id]);

    const revokeAll = await server.api('POST', `/v1/users/${userId}/sessions/revoke_all`);
    expect(revokeAll.body).toEqual({ revoked: 2 });
    expect((await server.api('GET', `/v1/users/${userId}/sessions?status=active`)).body.data).toEqual([]);
    for (const s of [b, c]) expect((await refresh(s.refresh_token)).body.error.code).toBe('session_revoked');
    expect(await revokedEvents(b.id)).toEqual([expect.objectContaining({ revoke_reason: 'all_revoked' })]);

    expect((await server.api('GET', '/v1/sessions/sess_01jdq3x0v8m4w2c7f9k1n5r6t8')).status).toBe(404);
    expect(
      (await server.api('POST', '/v1/users/user_01jdq3x0v8m4w2c7f9k1n5r6t8/sessions/revoke_all')).status,
    ).toBe(404);
    expect((await server.api('GET', `/v1/users/${userId}/sessions?status=gone`)).status).toBe(400);
  });
});

/** Every way Okta and Entra deactivate or delete a user (docs/idp-behaviour.md#deactivation-and-deletion). */
const deprovisionings: [string, (c: TestConnection, id: string) => Promise<unknown>][] = [
  [
    'Entra: Replace path active "False" (string)',
    (c, id) =>
      c.scim('PATCH', `/Users/${id}`, { body: patchOp({ op: 'Replace', path: 'active', value: 'False' }) }),
  ],
  [
    'Entra: Replace path active "false" (lower-case string)',
    (c, id) =>
      c.scim('PATCH', `/Users/${id}`, { body: patchOp({ op: 'Replace', path: 'active', value: 'false' }) }),
  ],
  [
    'Entra Learn tutorial: Replace path active false (boolean)',
    (c, id) =>
      c.scim('PATCH', `/Users/${id}`, {
        body: { Operations: [{ op: 'Replace', path: 'active', value: false }], schemas: [PATCH_OP] },
      }),
  ],
  [
    'Entra + aadOptscim062020: replace path active false',
    (c, id) =>
      c.scim('PATCH', `/Users/${id}`, { body: patchOp({ op: 'replace', path: 'active', value: false }) }),
  ],
  [
    'Okta OIN: replace, no path, value {active:false}',
    (c, id) =>
      c.scim('PATCH', `/Users/${id}`, { body: patchOp({ op: 'replace', value: { active: false } }) }),
  ],
  [
    'Okta AIW / OneLogin / JumpCloud: PUT the user with active false',
    async (c, id) => {
      const current = await c.scim('GET', `/Users/${id}`);
      return c.scim('PUT', `/Users/${id}`, { body: { ...current.body, active: false } });
    },
  ],
  [
    'Entra hard delete / OneLogin / JumpCloud: DELETE /Users/{id}',
    (c, id) => c.scim('DELETE', `/Users/${id}`),
  ],
];

describe('deprovisioning ends sessions: the next refresh is refused', () => {
  it.each(deprovisionings)('%s', async (_name, deprovision) => {
    const userId = await scimUser();
    const session = await signIn(userId);
    const response = (await deprovision(conn, userId)) as { status: number; text: string };
    expect(response.status, response.text).toBeLessThan(300);
    const refused = await refresh(session.refresh_token);
    expect([refused.status, refused.body.error.code]).toEqual([401, 'user_inactive']);
    const events = await revokedEvents(session.id);
    expect(events).toHaveLength(1);
    expect(['user_deactivated', 'user_deleted']).toContain(events[0]!.revoke_reason);
    // Revocation events say how long a revocation list must remember the session: until every
    // token issued before the revocation has expired (at most a token lifetime after it).
    const remembered = Date.parse(events[0]!.token_expires_at);
    expect(remembered).toBeGreaterThanOrEqual(Date.parse(session.expires_at));
    expect(remembered).toBeLessThanOrEqual(now().getTime() + 61_000);
    // No new session either.
    const again = await server.api('POST', '/v1/sessions', {
      body: { user_id: userId, organization_id: conn.organizationId },
    });
    expect(again.status).toBeGreaterThanOrEqual(404);
  });

  it('a reactivated user does not get the old session back', async () => {
    const userId = await scimUser();
    const session = await signIn(userId);
    await conn.scim('PATCH', `/Users/${userId}`, {
      body: patchOp({ op: 'Replace', path: 'active', value: 'False' }),
    });
    await conn.scim('PATCH', `/Users/${userId}`, {
      body: patchOp({ op: 'Replace', path: 'active', value: 'True' }),
    });
    const refused = await refresh(session.refresh_token);
    expect([refused.status, refused.body.error.code]).toEqual([401, 'session_revoked']);
    expect((await signIn(userId)).id).not.toBe(session.id);
  });

  it("deleting the connection ends its users' sessions", async () => {
    const other = await createConnection(server, 'entra');
    const userId = await scimUser(other);
    const session = await signIn(userId, other.organizationId);
    expect((await server.api('DELETE', `/v1/connections/${other.connectionId}`)).status).toBe(204);
    const refused = await refresh(session.refresh_token);
    expect([refused.status, refused.body.error.code]).toEqual([401, 'user_inactive']);
    expect(await revokedEvents(session.id)).toEqual([
      expect.objectContaining({ revoke_reason: 'connection_deleted' }),
    ]);
  });

  it('deleting the organization ends its sessions', async () => {
    const other = await createConnection(server, 'okta');
    const session = await signIn(await scimUser(other), other.organizationId);
    expect((await server.api('DELETE', `/v1/organizations/${other.organizationId}`)).status).toBe(204);
    const refused = await refresh(session.refresh_token);
    expect(refused.status).toBe(401);
    expect(await revokedEvents(session.id)).toEqual([
      expect.objectContaining({ revoke_reason: 'organization_deleted' }),
    ]);
  });

  it('refreshes racing a deactivation: no session survives it, no error but 401', async () => {
    const userId = await scimUser();
    const sessions = await Promise.all(Array.from({ length: 8 }, () => signIn(userId)));
    const [refreshes, deactivation] = await Promise.all([
      Promise.all(sessions.map((s) => refresh(s.refresh_token))),
      conn.scim('PATCH', `/Users/${userId}`, {
        body: patchOp({ op: 'Replace', path: 'active', value: 'False' }),
      }),
    ]);
    expect(deactivation.status).toBe(200);
    for (const r of refreshes) expect([200, 401]).toContain(r.status);
    const live = await server.api('GET', `/v1/users/${userId}/sessions?status=active`);
    expect(live.body.data).toEqual([]);
    // Whatever won the race, the refresh tokens handed out are dead now.
    for (const r of refreshes.filter((x) => x.status === 200)) {
      expect((await refresh(r.body.refresh_token)).body.error.code).toBe('user_inactive');
    }
  });
});

describe('refreshes racing deletions take locks in one order (no deadlock, never a 500)', () => {
  it('member removal and organization deletion', async () => {
    const other = await createConnection(server, 'okta');
    const apiMember = await server.api('POST', `/v1/organizations/${other.organizationId}/memberships`, {
      body: { email: `race-${Date.now()}@example.com` },
    });
    const scimMember = await scimUser(other);
    const memberSessions = await Promise.all(
      Array.from({ length: 6 }, () => signIn(apiMember.body.user.id, other.organizationId)),
    );
    const scimSessions = await Promise.all(
      Array.from({ length: 6 }, () => signIn(scimMember, other.organizationId)),
    );
    const [first, removal] = await Promise.all([
      Promise.all(memberSessions.map((s) => refresh(s.refresh_token))),
      server.api('DELETE', `/v1/organizations/${other.organizationId}/memberships/${apiMember.body.id}`),
    ]);
    expect(removal.status).toBe(204);
    for (const r of first) expect([200, 401]).toContain(r.status);
    const [second, deletion] = await Promise.all([
      Promise.all(scimSessions.map((s) => refresh(s.refresh_token))),
      server.api('DELETE', `/v1/organizations/${other.organizationId}`),
    ]);
    expect(deletion.status).toBe(204);
    for (const r of second) expect([200, 401]).toContain(r.status);
    for (const r of [...first, ...second].filter((x) => x.status === 200)) {
      expect((await refresh(r.body.refresh_token)).status).toBe(401);
    }
  });
});

describe('refresh rate limit', () => {
  it('answers 429 with Retry-After past ROSTER_REFRESH_RATE_LIMIT per session', async () => {
    const limited = await startTestServer({ env: { ROSTER_REFRESH_RATE_LIMIT: '2' } });
    try {
      const c = await createConnection(limited);
      const user = await c.scim('POST', '/Users', { body: userBody('limited@example.com') });
      const signedIn = await limited.api('POST', '/v1/sessions', {
        body: { user_id: user.body.id, organization_id: c.organizationId },
      });
      let token = signedIn.body.refresh_token as string;
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await refresh(token, limited);
        statuses.push(r.status);
        if (r.status === 200) token = r.body.refresh_token;
        else {
          expect(r.body.error.code).toBe('rate_limited');
          expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        }
      }
      expect(statuses).toEqual([200, 200, 429]);
      // The limited request spent nothing: the token still works once the bucket refills.
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await refresh(token, limited)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('signing keys', () => {
  it('serves the JWKS with cache headers and one kid per key', async () => {
    const response = await server.fetch('/.well-known/jwks.json');
    expect(response.headers.get('cache-control')).toMatch(/max-age=60\b/);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as JSONWebKeySet;
    const listed = await server.api('GET', '/v1/signing_keys');
    expect(body.keys.map((k) => k.kid).sort()).toEqual(
      listed.body.data.map((k: { kid: string }) => k.kid).sort(),
    );
    expect(listed.body.data.map((k: { state: string }) => k.state).sort()).toEqual(['active', 'next']);
    for (const key of body.keys)
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
  });

  it('rotates without rejecting valid tokens; the new key was published before it signed', async () => {
    const session = await signIn(await scimUser());
    const before = await jwks();
    const oldKid = decodeProtectedHeader(session.token).kid;
    const rotated = await server.api('POST', '/v1/signing_keys/rotate', { body: {} });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body).toMatchObject({ state: 'active', alg: 'ES256' });
    expect(before.keys.map((k) => k.kid)).toContain(rotated.body.kid);

    // A token signed before the rotation verifies against the JWKS after it.
    const after = await jwks();
    await verify(session.token, after);
    const refreshed = await refresh(session.refresh_token);
    expect(decodeProtectedHeader(refreshed.body.token).kid).toBe(rotated.body.kid);
    // …and a verifier holding the JWKS from before the rotation verifies the new token too.
    await verify(refreshed.body.token, before);

    const states = (await server.api('GET', '/v1/signing_keys')).body.data as {
      kid: string;
      state: string;
      expires_at: string;
    }[];
    const retiring = states.find((k) => k.kid === oldKid)!;
    expect(retiring.state).toBe('retiring');
    // Unpublished once every token it signed has expired, then purged.
    offsetMs += new Date(retiring.expires_at).getTime() - now().getTime() + 1_000;
    expect((await jwks()).keys.map((k) => k.kid)).not.toContain(oldKid);
    await server.maintenance.run();
    const rows = await server.ctx.db
      .selectFrom('signing_keys')
      .select('kid')
      .where('kid', '=', oldKid!)
      .execute();
    expect(rows).toEqual([]);
  });

  it('switches to EdDSA, and revoke_previous unpublishes the old key at once', async () => {
    const session = await signIn(await scimUser());
    const rotated = await server.api('POST', '/v1/signing_keys/rotate', {
      body: { alg: 'EdDSA', revoke_previous: true },
    });
    expect(rotated.body).toMatchObject({ alg: 'EdDSA', state: 'active' });
    const keys = await jwks();
    expect(keys.keys.map((k) => k.kid)).not.toContain(decodeProtectedHeader(session.token).kid);
    await expect(verify(session.token, keys)).rejects.toThrow();
    // The session itself lives on: its next refresh is signed with the new key.
    const refreshed = await refresh(session.refresh_token);
    expect(decodeProtectedHeader(refreshed.body.token)).toMatchObject({
      alg: 'EdDSA',
      kid: rotated.body.kid,
    });
    expect((await verify(refreshed.body.token)).payload.sid).toBe(session.id);
    const bad = await server.api('POST', '/v1/signing_keys/rotate', { body: { alg: 'HS256' } });
    expect(bad.status).toBe(400);
  });

  it('keeps private keys encrypted at rest and the same keys across restarts', async () => {
    const rows = await server.ctx.db.selectFrom('signing_keys').select(['kid', 'private_key']).execute();
    for (const row of rows) {
      expect(row.private_key).toMatch(/^v1:/);
      expect(row.private_key).not.toContain('"d"');
    }
  });
});

describe('retention', () => {
  it('purges sessions that ended longer ago than ROSTER_DELETED_RETENTION, with their refresh tokens', async () => {
    const userId = await scimUser();
    const ended = await signIn(userId);
    await server.api('POST', `/v1/sessions/${ended.id}/revoke`);
    offsetMs += 3 * 3_600_000;
    const live = await signIn(userId);
    const purged = await server.maintenance.run();
    expect(purged.sessions).toBeGreaterThanOrEqual(1);
    expect((await server.api('GET', `/v1/sessions/${ended.id}`)).status).toBe(404);
    expect((await refresh(ended.refresh_token)).body.error.code).toBe('invalid_refresh_token');
    expect((await server.api('GET', `/v1/sessions/${live.id}`)).body.status).toBe('active');
  });
});
