import { describe, expect, it } from 'vitest';
import { validateResponse } from './contract.js';

const organization = {
  object: 'organization',
  id: 'org_01jdq3x0v8m4w2c7f9k1n5r6t8',
  name: 'Acme',
  slug: 'acme',
  default_role: 'member',
  metadata: {},
  created_at: '2026-11-28T12:00:00.000Z',
  updated_at: '2026-11-28T12:00:00.000Z',
};
const json = 'application/json; charset=utf-8';

describe('the response contract check', () => {
  it('accepts a conforming response', () => {
    expect(
      validateResponse({
        method: 'GET',
        path: `/v1/organizations/${organization.id}`,
        status: 200,
        contentType: json,
        body: organization,
      }),
    ).toEqual([]);
  });

  it('rejects a field the document does not describe', () => {
    const problems = validateResponse({
      method: 'GET',
      path: `/v1/organizations/${organization.id}`,
      status: 200,
      contentType: json,
      body: { ...organization, secret: 'x' },
    });
    expect(problems.join('\n')).toMatch(/unevaluated properties/);
  });

  it('rejects a missing required field and a wrong type', () => {
    const { slug: _slug, ...withoutSlug } = organization;
    expect(
      validateResponse({
        method: 'GET',
        path: `/v1/organizations/${organization.id}`,
        status: 200,
        contentType: json,
        body: withoutSlug,
      }),
    ).not.toEqual([]);
    expect(
      validateResponse({
        method: 'GET',
        path: '/v1/organizations',
        status: 200,
        contentType: json,
        body: { data: [organization], next_cursor: 5 },
      }),
    ).not.toEqual([]);
  });

  it('rejects a status the operation does not declare, and checks error bodies', () => {
    expect(
      validateResponse({
        method: 'GET',
        path: '/v1/organizations',
        status: 409,
        contentType: json,
        body: {},
      })[0],
    ).toMatch(/not declared/);
    expect(
      validateResponse({
        method: 'POST',
        path: '/v1/organizations',
        status: 400,
        contentType: json,
        body: { error: { code: 'nope', message: 'x', request_id: 'r' } },
      }),
    ).not.toEqual([]);
    expect(
      validateResponse({
        method: 'POST',
        path: '/v1/organizations',
        status: 400,
        contentType: json,
        body: { error: { code: 'validation_failed', message: 'x', request_id: 'r' } },
      }),
    ).toEqual([]);
  });

  it('matches literal path segments before parameters', () => {
    expect(
      validateResponse({
        method: 'GET',
        path: '/v1/connections',
        status: 200,
        contentType: json,
        body: { data: [], next_cursor: null, event_cursor: 'ZTE6MA' },
      }),
    ).toEqual([]);
  });
});
