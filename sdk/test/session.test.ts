import { createHmac } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createNodeSessionVerifier,
  hasPermission,
  requirePermission,
  requireSession,
} from '../src/express.js';
import { createSessionVerifier, type SessionVerifierOptions } from '../src/index.js';

/**
 * The session verifier against a JWKS served by a per-test fetch handler, with both crypto
 * backends (WebCrypto, node:crypto), and the attacks a verifier must refuse.
 */

const ISSUER = 'https://roster.test';
const NOW = 1_800_000_000_000;

interface Keys {
  es: { kid: string; privateKey: CryptoKey; jwk: JWK };
  ed: { kid: string; privateKey: CryptoKey; jwk: JWK };
  other: { privateKey: CryptoKey };
}
let keys: Keys;

beforeAll(async () => {
  const es = await generateKeyPair('ES256', { extractable: true });
  const ed = await generateKeyPair('EdDSA', { extractable: true });
  const other = await generateKeyPair('ES256');
  keys = {
    es: {
      kid: 'sk_es',
      privateKey: es.privateKey,
      jwk: { ...(await exportJWK(es.publicKey)), kid: 'sk_es', alg: 'ES256', use: 'sig' },
    },
    ed: {
      kid: 'sk_ed',
      privateKey: ed.privateKey,
      jwk: { ...(await exportJWK(ed.publicKey)), kid: 'sk_ed', alg: 'EdDSA', use: 'sig' },
    },
    other: { privateKey: other.privateKey },
  };
});

const claims = {
  sub: 'user_1',
  sid: 'sess_1',
  org_id: 'org_1',
  org_role: 'admin',
  org_permissions: ['invoices:read', 'members:*'],
};

async function token(
  options: {
    alg?: 'ES256' | 'EdDSA';
    kid?: string;
    key?: CryptoKey;
    iat?: number;
    exp?: number;
    nbf?: number;
    iss?: string;
    payload?: Record<string, unknown>;
  } = {},
): Promise<string> {
  const alg = options.alg ?? 'ES256';
  const iat = options.iat ?? NOW / 1000 - 10;
  const jwt = new SignJWT(options.payload ?? claims)
    .setProtectedHeader({
      alg,
      kid: options.kid ?? (alg === 'ES256' ? keys.es.kid : keys.ed.kid),
      typ: 'JWT',
    })
    .setIssuer(options.iss ?? ISSUER)
    .setIssuedAt(iat)
    .setNotBefore(options.nbf ?? iat)
    .setExpirationTime(options.exp ?? iat + 60);
  return jwt.sign(options.key ?? (alg === 'ES256' ? keys.es.privateKey : keys.ed.privateKey));
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A server double: the JWKS (counting fetches) and the refresh endpoint. */
function server(
  options: {
    jwks?: () => JWK[];
    refresh?: (body: { refresh_token: string }) => Response | Promise<Response>;
  } = {},
) {
  const calls = { jwks: 0, refresh: 0 };
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.pathname === '/.well-known/jwks.json') {
      calls.jwks++;
      return Response.json({ keys: options.jwks ? options.jwks() : [keys.es.jwk, keys.ed.jwk] });
    }
    if (url.pathname === '/v1/sessions/refresh' && options.refresh) {
      calls.refresh++;
      return options.refresh(await request.json());
    }
    return new Response('not found', { status: 404 });
  };
  return { fetch, calls };
}

const backends: [
  string,
  (o: Omit<SessionVerifierOptions, 'crypto'>) => ReturnType<typeof createSessionVerifier>,
][] = [
  ['WebCrypto', (o) => createSessionVerifier(o)],
  ['node:crypto', (o) => createNodeSessionVerifier(o)],
];

describe.each(backends)('verifyToken (%s)', (_name, create) => {
  const verifier = (extra: Partial<SessionVerifierOptions> = {}, srv = server()) =>
    create({ baseUrl: ISSUER, fetch: srv.fetch, now: () => NOW, ...extra });

  it('accepts a valid ES256 or EdDSA token and maps its claims', async () => {
    const v = verifier();
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const result = await v.verifyToken(await token({ alg }));
      expect(result.status).toBe('signed_in');
      if (result.status !== 'signed_in') return;
      expect(result.auth).toMatchObject({
        userId: 'user_1',
        sessionId: 'sess_1',
        orgId: 'org_1',
        role: 'admin',
        permissions: ['invoices:read', 'members:*'],
        expiresAt: new Date(NOW + 50_000),
      });
    }
  });

  it.each([
    ['expired beyond the clock skew', () => token({ exp: NOW / 1000 - 6 }), 'token_expired'],
    ['not valid yet', () => token({ iat: NOW / 1000 + 30, nbf: NOW / 1000 + 30 }), 'token_not_yet_valid'],
    ['of another issuer', () => token({ iss: 'https://evil.test' }), 'wrong_issuer'],
    ['signed by another key under our kid', () => token({ key: keys.other.privateKey }), 'invalid_signature'],
    [
      'with a tampered payload (role raised)',
      async () => {
        const [h, , s] = (await token()).split('.');
        return `${h}.${b64({ ...claims, org_role: 'owner', iss: ISSUER, iat: NOW / 1000, exp: NOW / 1000 + 60 })}.${s}`;
      },
      'invalid_signature',
    ],
    [
      'with alg "none"',
      async () =>
        `${b64({ alg: 'none', kid: 'sk_es' })}.${b64({ ...claims, iss: ISSUER, exp: NOW / 1000 + 60, iat: NOW / 1000 })}.AAAA`,
      'unsupported_algorithm',
    ],
    [
      'HS256 keyed with the public key (algorithm confusion)',
      async () => {
        const signingInput = `${b64({ alg: 'HS256', kid: 'sk_es', typ: 'JWT' })}.${b64({ ...claims, iss: ISSUER, exp: NOW / 1000 + 60, iat: NOW / 1000 })}`;
        const mac = createHmac('sha256', JSON.stringify(keys.es.jwk))
          .update(signingInput)
          .digest('base64url');
        return `${signingInput}.${mac}`;
      },
      'unsupported_algorithm',
    ],
    [
      'RS256',
      async () => `${b64({ alg: 'RS256', kid: 'sk_es' })}.${b64(claims)}.AAAA`,
      'unsupported_algorithm',
    ],
    [
      'EdDSA under the kid of an ES256 key',
      () => token({ alg: 'EdDSA', kid: 'sk_es' }),
      'unsupported_algorithm',
    ],
    ['without claims Roster always sets', () => token({ payload: { sub: 'user_1' } }), 'invalid_claims'],
    ['with two parts', async () => 'abc.def', 'malformed_token'],
    [
      'with an empty signature',
      async () => `${(await token()).split('.').slice(0, 2).join('.')}.`,
      'malformed_token',
    ],
    ['with a header that is not JSON', async () => `bm90IGpzb24.${b64(claims)}.AAAA`, 'malformed_token'],
    [
      'with a critical header',
      async () => `${b64({ alg: 'ES256', kid: 'sk_es', crit: ['exp'] })}.${b64(claims)}.AAAA`,
      'malformed_token',
    ],
    ['absent', async () => '', 'missing_token'],
  ])('rejects a token %s', async (_case, make, reason) => {
    const result = await verifier().verifyToken(await make());
    expect(result).toMatchObject({ status: 'signed_out', reason });
  });

  it('tolerates 5 s of clock skew', async () => {
    const result = await verifier().verifyToken(await token({ exp: NOW / 1000 - 4 }));
    expect(result.status).toBe('signed_in');
  });

  it('fetches the JWKS again for an unknown kid, at most once per cool-down', async () => {
    let published: JWK[] = [keys.es.jwk];
    const srv = server({ jwks: () => published });
    let now = NOW;
    const v = verifier({ now: () => now, jwksCooldownMs: 30_000 }, srv);
    expect((await v.verifyToken(await token())).status).toBe('signed_in');
    expect(srv.calls.jwks).toBe(1);
    // A rotation: tokens of the new key arrive before this process has seen it.
    published = [keys.es.jwk, keys.ed.jwk];
    now += 31_000;
    const ed = await token({ alg: 'EdDSA', iat: now / 1000 - 1 });
    expect((await v.verifyToken(ed)).status).toBe('signed_in');
    expect(srv.calls.jwks).toBe(2);
    // Unknown kids do not turn into a JWKS fetch per request.
    for (let i = 0; i < 5; i++) {
      expect(await v.verifyToken(await token({ kid: `sk_unknown_${i}`, iat: now / 1000 - 1 }))).toMatchObject(
        { reason: 'unknown_key' },
      );
    }
    expect(srv.calls.jwks).toBe(2);
  });

  it('says roster_unavailable when no JWKS could ever be fetched', async () => {
    const v = verifier({ fetch: async () => new Response('down', { status: 503 }) });
    expect(await v.verifyToken(await token())).toMatchObject({
      status: 'signed_out',
      reason: 'roster_unavailable',
    });
  });

  it('asks the revocation list', async () => {
    const revoked = new Set(['sess_1']);
    const v = verifier({ revocations: { isRevoked: (c) => revoked.has(c.sid) } });
    expect(await v.verifyToken(await token())).toMatchObject({ reason: 'session_revoked' });
    revoked.clear();
    expect((await v.verifyToken(await token())).status).toBe('signed_in');
  });

  it('stops using a key Roster unpublished within jwksMaxAgeMs (default 60 s), and old keys when the JWKS is down', async () => {
    let published: JWK[] = [keys.es.jwk, keys.ed.jwk];
    let up = true;
    const srv = server({ jwks: () => published });
    let now = NOW;
    const v = verifier({
      now: () => now,
      fetch: async (input, init) => (up ? srv.fetch(input, init) : new Response('down', { status: 503 })),
    });
    const t = () => token({ iat: now / 1000 - 1 });
    expect((await v.verifyToken(await t())).status).toBe('signed_in');
    // rotate with revoke_previous: the ES256 key leaves the JWKS.
    published = [keys.ed.jwk];
    now += 59_000;
    expect((await v.verifyToken(await t())).status).toBe('signed_in');
    now += 2_000;
    expect(await v.verifyToken(await t())).toMatchObject({ reason: 'unknown_key' });
    expect((await v.verifyToken(await token({ alg: 'EdDSA', iat: now / 1000 - 1 }))).status).toBe(
      'signed_in',
    );
    // Roster unreachable: keys past their age are not trusted any more.
    up = false;
    now += 61_000;
    expect(await v.verifyToken(await token({ alg: 'EdDSA', iat: now / 1000 - 1 }))).toMatchObject({
      reason: 'roster_unavailable',
    });
  });

  it('requires aud when asked to (audience), and ignores it otherwise', async () => {
    const withAud = (aud: unknown) => token({ payload: { ...claims, aud } });
    const v = verifier({ audience: ['org_1', 'org_2'] });
    expect((await v.verifyToken(await withAud('org_1'))).status).toBe('signed_in');
    expect((await v.verifyToken(await withAud(['org_9', 'org_2']))).status).toBe('signed_in');
    expect(await v.verifyToken(await withAud('org_3'))).toMatchObject({ reason: 'wrong_audience' });
    expect(await v.verifyToken(await token())).toMatchObject({ reason: 'wrong_audience' });
    expect((await verifier().verifyToken(await withAud('org_3'))).status).toBe('signed_in');
  });

  it('says role_changed when the revocation list holds a newer role for the member', async () => {
    let stale = true;
    const v = verifier({
      revocations: { isRevoked: () => false, isStale: (c) => stale && c.org_role === 'admin' },
    });
    expect(await v.verifyToken(await token())).toMatchObject({
      status: 'signed_out',
      reason: 'role_changed',
    });
    stale = false;
    expect((await v.verifyToken(await token())).status).toBe('signed_in');
  });
});

describe('authenticate: bearer, cookies and the refresh flow', () => {
  const tokens = async (iat: number) => ({
    token: await token({ iat }),
    refresh_token: 'rst_rt_new',
    session_expires_at: new Date(NOW + 86_400_000).toISOString(),
    expires_at: new Date((iat + 60) * 1000).toISOString(),
  });

  it('reads the Authorization header first, then the session cookie', async () => {
    const v = createSessionVerifier({ baseUrl: ISSUER, fetch: server().fetch, now: () => NOW });
    const t = await token();
    expect(
      (await v.authenticate(new Request(ISSUER, { headers: { authorization: `Bearer ${t}` } }))).status,
    ).toBe('signed_in');
    expect(
      (await v.authenticate({ headers: { cookie: `other=1; __Host-roster_session=${t}` } })).status,
    ).toBe('signed_in');
    expect(await v.authenticate({ headers: {} })).toMatchObject({ reason: 'missing_token', setCookie: [] });
  });

  it('refreshes an expired cookie token once for parallel requests, and sets the new cookies', async () => {
    const fresh = await tokens(NOW / 1000);
    const srv = server({
      refresh: async (body) => {
        expect(body.refresh_token).toBe('rst_rt_old');
        await new Promise((resolve) => setTimeout(resolve, 20));
        return Response.json(fresh);
      },
    });
    const v = createSessionVerifier({ baseUrl: ISSUER, fetch: srv.fetch, now: () => NOW });
    const expired = await token({ iat: NOW / 1000 - 3600 });
    const request = () => ({
      headers: { cookie: `__Host-roster_session=${expired}; __Host-roster_refresh=rst_rt_old` },
    });
    const results = await Promise.all([
      v.authenticate(request()),
      v.authenticate(request()),
      v.authenticate(request()),
    ]);
    expect(srv.calls.refresh).toBe(1);
    for (const result of results) {
      expect(result.status).toBe('signed_in');
      expect(result.setCookie).toHaveLength(2);
      expect(result.setCookie[0]).toMatch(
        /^__Host-roster_session=.+; Path=\/; HttpOnly; Secure; SameSite=Lax; Max-Age=86400$/,
      );
      expect(result.setCookie[1]).toMatch(/^__Host-roster_refresh=rst_rt_new;/);
    }
  });

  it('clears the cookies when the refresh is refused, keeps them when Roster is down', async () => {
    const expired = await token({ iat: NOW / 1000 - 3600 });
    const headers = { cookie: `__Host-roster_session=${expired}; __Host-roster_refresh=rst_rt_dead` };
    const refused = createSessionVerifier({
      baseUrl: ISSUER,
      now: () => NOW,
      fetch: server({
        refresh: () =>
          Response.json({ error: { code: 'user_inactive', message: 'deactivated' } }, { status: 401 }),
      }).fetch,
    });
    const result = await refused.authenticate({ headers });
    expect(result).toMatchObject({ status: 'signed_out', reason: 'user_inactive' });
    expect(result.setCookie).toEqual([
      '__Host-roster_session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0',
      '__Host-roster_refresh=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0',
    ]);
    const down = createSessionVerifier({
      baseUrl: ISSUER,
      now: () => NOW,
      fetch: server({ refresh: () => new Response('', { status: 502 }) }).fetch,
    });
    expect(await down.authenticate({ headers })).toMatchObject({
      reason: 'roster_unavailable',
      setCookie: [],
    });
  });

  it('keeps the cookies on a rate-limited refresh (429): a stale-role token passes, an expired one waits Retry-After', async () => {
    let clock = NOW;
    let limited = true;
    const fresh = await tokens(NOW / 1000);
    const srv = server({
      refresh: () =>
        limited
          ? Response.json(
              { error: { code: 'rate_limited', message: 'Too many refreshes.' } },
              { status: 429, headers: { 'retry-after': '2' } },
            )
          : Response.json(fresh),
    });
    let stale = true;
    const v = createSessionVerifier({
      baseUrl: ISSUER,
      fetch: srv.fetch,
      now: () => clock,
      revocations: { isRevoked: () => false, isStale: () => stale },
    });
    // A token whose only fault is an outdated role: it serves the request, nothing is cleared.
    const current = await token();
    const roleChanged = await v.authenticate({
      headers: { cookie: `__Host-roster_session=${current}; __Host-roster_refresh=rst_rt_old` },
    });
    expect(roleChanged).toMatchObject({ status: 'signed_in', auth: { userId: 'user_1' }, setCookie: [] });
    expect(srv.calls.refresh).toBe(1);

    // An expired token: a retryable failure that says when, and keeps the cookies.
    stale = false;
    const expired = await token({ iat: NOW / 1000 - 3600 });
    const headers = { cookie: `__Host-roster_session=${expired}; __Host-roster_refresh=rst_rt_old` };
    expect(await v.authenticate({ headers })).toMatchObject({
      status: 'signed_out',
      reason: 'roster_unavailable',
      retryAfter: 2,
      setCookie: [],
    });
    expect(srv.calls.refresh).toBe(1); // within Retry-After: not asked again

    // After Retry-After the refresh token is tried again, and the session goes on.
    limited = false;
    clock += 2_000;
    const later = await v.authenticate({ headers });
    expect(later).toMatchObject({ status: 'signed_in' });
    expect(later.setCookie).toHaveLength(2);
    expect(srv.calls.refresh).toBe(2);
  });

  it('requireSession answers a rate-limited refresh with 503 and Retry-After, never clearing cookies', async () => {
    const v = createNodeSessionVerifier({
      baseUrl: ISSUER,
      now: () => NOW,
      fetch: server({
        refresh: () =>
          Response.json(
            { error: { code: 'rate_limited', message: 'Too many refreshes.' } },
            { status: 429, headers: { 'retry-after': '1' } },
          ),
      }).fetch,
    });
    const expired = await token({ iat: NOW / 1000 - 3600 });
    const sent: { status?: number; headers: Record<string, string | string[]>; body?: unknown } = {
      headers: {},
    };
    const res = {
      status(code: number) {
        sent.status = code;
        return res;
      },
      json(body: unknown) {
        sent.body = body;
      },
      append(field: string, value: string | string[]) {
        sent.headers[field.toLowerCase()] = value;
      },
      setHeader(name: string, value: string) {
        sent.headers[name.toLowerCase()] = value;
      },
    };
    await new Promise<void>((resolve, reject) => {
      const req = {
        headers: { cookie: `__Host-roster_session=${expired}; __Host-roster_refresh=rst_rt_old` },
      };
      requireSession({ baseUrl: ISSUER, verifier: v })(req, res, (error) =>
        reject(error ?? new Error('next() was called')),
      );
      setTimeout(resolve, 200);
    });
    expect(sent.status).toBe(503);
    expect(sent.headers['retry-after']).toBe('1');
    expect(sent.headers['set-cookie']).toBeUndefined();
    expect(sent.body).toMatchObject({ error: { code: 'roster_unavailable' } });
  });

  it('never refreshes a forged or bearer token', async () => {
    const srv = server({ refresh: () => Response.json({}) });
    const v = createSessionVerifier({ baseUrl: ISSUER, fetch: srv.fetch, now: () => NOW });
    const forged = await token({ key: keys.other.privateKey });
    expect(
      await v.authenticate({
        headers: { cookie: `__Host-roster_session=${forged}; __Host-roster_refresh=x` },
      }),
    ).toMatchObject({
      reason: 'invalid_signature',
    });
    const expired = await token({ iat: NOW / 1000 - 3600 });
    expect(
      await v.authenticate({
        headers: { authorization: `Bearer ${expired}`, cookie: '__Host-roster_refresh=x' },
      }),
    ).toMatchObject({
      reason: 'token_expired',
    });
    expect(srv.calls.refresh).toBe(0);
  });

  it('names the cookies __Host-… by default, plainly for plain-http development', async () => {
    const fresh = await tokens(NOW / 1000);
    const secure = createSessionVerifier({ baseUrl: ISSUER, fetch: server().fetch, now: () => NOW });
    expect(secure.sessionCookies(fresh).map((c) => c.split('=')[0])).toEqual([
      '__Host-roster_session',
      '__Host-roster_refresh',
    ]);
    for (const cookie of secure.sessionCookies(fresh)) {
      expect(cookie).toMatch(/; Path=\/;/);
      expect(cookie).toMatch(/; Secure;/);
      expect(cookie).not.toMatch(/Domain=/);
    }
    const dev = createSessionVerifier({
      baseUrl: ISSUER,
      fetch: server().fetch,
      now: () => NOW,
      cookies: { secure: false },
    });
    expect(dev.sessionCookies(fresh).map((c) => c.split('=')[0])).toEqual([
      'roster_session',
      'roster_refresh',
    ]);
    const t = await token();
    expect((await dev.authenticate({ headers: { cookie: `roster_session=${t}` } })).status).toBe('signed_in');
    // A cookie without the prefix (e.g. planted by a subdomain) is not read by a secure verifier.
    expect(await secure.authenticate({ headers: { cookie: `roster_session=${t}` } })).toMatchObject({
      reason: 'missing_token',
    });
  });

  it('with SameSite=None, unsafe cookie requests need an allowed Origin', async () => {
    const t = await token();
    const make = (cookies: SessionVerifierOptions['cookies']) =>
      createSessionVerifier({ baseUrl: ISSUER, fetch: server().fetch, now: () => NOW, cookies });
    const none = make({ sameSite: 'none' });
    const request = (method: string, origin?: string) => ({
      method,
      headers: {
        host: 'app.example.com',
        cookie: `__Host-roster_session=${t}`,
        ...(origin ? { origin } : {}),
      },
    });
    expect(await none.authenticate(request('POST', 'https://evil.example'))).toMatchObject({
      status: 'signed_out',
      reason: 'origin_not_allowed',
    });
    expect(await none.authenticate(request('DELETE'))).toMatchObject({ reason: 'origin_not_allowed' });
    expect((await none.authenticate(request('POST', 'https://app.example.com'))).status).toBe('signed_in');
    expect((await none.authenticate(request('GET', 'https://evil.example'))).status).toBe('signed_in');
    // Bearer tokens are not sent by browsers on their own: no origin check.
    expect(
      (
        await none.authenticate({
          method: 'POST',
          headers: { authorization: `Bearer ${t}`, origin: 'https://evil.example' },
        })
      ).status,
    ).toBe('signed_in');
    const listed = make({ sameSite: 'none', allowedOrigins: ['https://spa.example.com/'] });
    expect((await listed.authenticate(request('PUT', 'https://spa.example.com'))).status).toBe('signed_in');
    expect(await listed.authenticate(request('PUT', 'https://app.example.com'))).toMatchObject({
      reason: 'origin_not_allowed',
    });
    // Lax cookies are not sent on cross-site POSTs: nothing to check.
    expect((await make({}).authenticate(request('POST', 'https://evil.example'))).status).toBe('signed_in');
  });

  it('refreshes a role_changed cookie token transparently', async () => {
    const fresh = {
      ...(await tokens(NOW / 1000)),
      token: await token({ payload: { ...claims, org_role: 'viewer' } }),
    };
    const srv = server({ refresh: () => Response.json(fresh) });
    const v = createSessionVerifier({
      baseUrl: ISSUER,
      fetch: srv.fetch,
      now: () => NOW,
      revocations: { isRevoked: () => false, isStale: (c) => c.org_role !== 'viewer' },
    });
    const result = await v.authenticate({
      headers: { cookie: `__Host-roster_session=${await token()}; __Host-roster_refresh=rst_rt_old` },
    });
    expect(result).toMatchObject({ status: 'signed_in', auth: { role: 'viewer' } });
    expect(srv.calls.refresh).toBe(1);
  });

  it('keeps at most 10,000 refreshes in its de-duplication map', async () => {
    const srv = { calls: { refresh: 0 } };
    const fetch = async () => {
      srv.calls.refresh++;
      return new Response('{"error":{"code":"session_revoked"}}', { status: 401 });
    };
    const v = createSessionVerifier({ baseUrl: ISSUER, fetch, now: () => NOW });
    const present = (i: number) =>
      v.authenticate({ headers: { cookie: `__Host-roster_refresh=rst_rt_${i}` } });
    for (let i = 0; i <= 10_000; i++) await present(i);
    expect(srv.calls.refresh).toBe(10_001);
    await present(10_000); // remembered
    expect(srv.calls.refresh).toBe(10_001);
    await present(0); // the oldest was dropped
    expect(srv.calls.refresh).toBe(10_002);
  }, 30_000);
});

describe('permissions', () => {
  it('matches exact permissions, "*" and "prefix:*"', () => {
    expect(hasPermission(['invoices:read'], 'invoices:read')).toBe(true);
    expect(hasPermission(['invoices:read'], 'invoices:write')).toBe(false);
    expect(hasPermission(['invoices:*'], 'invoices:write')).toBe(true);
    expect(hasPermission(['invoices:*'], 'invoicesx:write')).toBe(false);
    expect(hasPermission(['*'], 'anything')).toBe(true);
  });

  it('requirePermission answers 401 without a session and 403 without the permission', () => {
    const middleware = requirePermission('invoices:read', 'invoices:write');
    const respond = () => {
      const res = {
        code: 0,
        body: undefined as unknown,
        status(code: number) {
          this.code = code;
          return this;
        },
        json(body: unknown) {
          this.body = body;
        },
        append() {},
        setHeader() {},
      };
      return res;
    };
    let nextCalled = 0;
    const r1 = respond();
    middleware({ headers: {}, auth: null }, r1, () => nextCalled++);
    expect(r1.code).toBe(401);
    const auth = { permissions: ['invoices:read'] } as never;
    const r2 = respond();
    middleware({ headers: {}, auth }, r2, () => nextCalled++);
    expect([r2.code, (r2.body as { error: { code: string } }).error.code]).toEqual([403, 'forbidden']);
    const r3 = respond();
    middleware({ headers: {}, auth: { permissions: ['invoices:*'] } as never }, r3, () => nextCalled++);
    expect(nextCalled).toBe(1);
  });
});
