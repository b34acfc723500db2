import { describe, expect, it } from 'vitest';
import { checkClaims, parseHeader, splitCompact, toAuth } from '../src/session/jwt.js';

/** The pure JWT rules, one row per case: no keys, no network, the time passed in. */

const NOW = 1_800_000_000;
const rules = { issuer: 'https://roster.test', clockSkewSeconds: 5, nowSeconds: NOW };
const valid = {
  iss: 'https://roster.test',
  sub: 'user_1',
  sid: 'sess_1',
  org_id: 'org_1',
  org_role: 'admin',
  org_permissions: ['invoices:read'],
  iat: NOW - 10,
  exp: NOW + 50,
};

describe('splitCompact', () => {
  it.each([
    ['', 'missing_token'],
    [undefined, 'missing_token'],
    ['a.b', 'malformed_token'],
    ['a.b.c.d', 'malformed_token'],
    ['.b.c', 'malformed_token'],
    ['a..c', 'malformed_token'],
    ['a.b.', 'malformed_token'],
    [`${'a'.repeat(8190)}.b.c`, 'malformed_token'],
  ])('%j is refused as %s', (token, reason) => {
    expect(splitCompact(token)).toMatchObject({ status: 'signed_out', reason });
  });

  it('splits a compact JWS into its segments and signing input', () => {
    expect(splitCompact('h.p.s')).toEqual({ header: 'h', payload: 'p', signature: 's', signingInput: 'h.p' });
  });
});

describe('parseHeader', () => {
  it.each([
    ['not json', 'malformed_token'],
    ['null', 'malformed_token'],
    ['{"alg":"none","kid":"k"}', 'unsupported_algorithm'],
    ['{"alg":"HS256","kid":"k"}', 'unsupported_algorithm'],
    ['{"alg":"RS256","kid":"k"}', 'unsupported_algorithm'],
    ['{"kid":"k"}', 'unsupported_algorithm'],
    ['{"alg":"ES256","kid":"k","crit":["exp"]}', 'malformed_token'],
    ['{"alg":"ES256","kid":"k","typ":"at+jwt"}', 'malformed_token'],
    ['{"alg":"ES256"}', 'malformed_token'],
    ['{"alg":"ES256","kid":""}', 'malformed_token'],
  ])('%s is refused as %s', (json, reason) => {
    expect(parseHeader(json)).toMatchObject({ status: 'signed_out', reason });
  });

  it.each([
    ['{"alg":"ES256","kid":"k1","typ":"JWT"}', { alg: 'ES256', kid: 'k1' }],
    ['{"alg":"EdDSA","kid":"k2"}', { alg: 'EdDSA', kid: 'k2' }],
  ])('%s is accepted', (json, header) => {
    expect(parseHeader(json)).toEqual(header);
  });
});

describe('checkClaims', () => {
  const json = (patch: Record<string, unknown>) => JSON.stringify({ ...valid, ...patch });
  it.each<[string, string, Partial<typeof rules> & { audiences?: Set<string> }, string]>([
    ['not JSON', '{', {}, 'malformed_token'],
    ['null', 'null', {}, 'malformed_token'],
    ['another issuer', json({ iss: 'https://evil.test' }), {}, 'wrong_issuer'],
    ['no aud when one is required', json({}), { audiences: new Set(['org_1']) }, 'wrong_audience'],
    ['another aud', json({ aud: 'org_2' }), { audiences: new Set(['org_1']) }, 'wrong_audience'],
    ['no exp', json({ exp: undefined }), {}, 'invalid_claims'],
    ['a string iat', json({ iat: '1' }), {}, 'invalid_claims'],
    ['expired past the skew', json({ exp: NOW - 5 }), {}, 'token_expired'],
    ['nbf beyond the skew', json({ nbf: NOW + 6 }), {}, 'token_not_yet_valid'],
    ['a string nbf', json({ nbf: 'soon' }), {}, 'token_not_yet_valid'],
    ['no sid', json({ sid: undefined }), {}, 'invalid_claims'],
    ['an empty sub', json({ sub: '' }), {}, 'invalid_claims'],
    ['permissions not strings', json({ org_permissions: [1] }), {}, 'invalid_claims'],
    ['permissions not an array', json({ org_permissions: 'x' }), {}, 'invalid_claims'],
  ])('refuses %s', (_name, payload, extra, reason) => {
    expect(checkClaims(payload, { ...rules, ...extra })).toMatchObject({ status: 'signed_out', reason });
  });

  it.each<[string, string, Partial<typeof rules> & { audiences?: Set<string> }]>([
    ['a valid token', json({}), {}],
    ['an expiry within the skew', json({ exp: NOW - 4 }), {}],
    ['nbf within the skew', json({ nbf: NOW + 4 }), {}],
    ['aud in a list', json({ aud: ['org_2', 'org_1'] }), { audiences: new Set(['org_1']) }],
    ['any aud when none is required', json({ aud: 'org_9' }), {}],
  ])('accepts %s', (_name, payload, extra) => {
    expect(checkClaims(payload, { ...rules, ...extra })).toMatchObject({ sub: 'user_1', sid: 'sess_1' });
  });

  it('maps verified claims to the session', () => {
    expect(toAuth(valid, 'tok')).toEqual({
      userId: 'user_1',
      sessionId: 'sess_1',
      orgId: 'org_1',
      role: 'admin',
      permissions: ['invoices:read'],
      issuedAt: new Date((NOW - 10) * 1000),
      expiresAt: new Date((NOW + 50) * 1000),
      token: 'tok',
      claims: valid,
    });
  });
});
