import { describe, expect, it } from 'vitest';
import { createRoster, RosterError } from '../src/index.js';

/** A client over a per-test fetch handler: no server, every request observed. */
function setup(handler: (request: Request, attempt: number) => Response | Promise<Response>) {
  const requests: Request[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    requests.push(request.clone());
    return handler(request, requests.length);
  };
  const roster = createRoster({
    baseUrl: 'https://roster.test/',
    secretKey: 'rst_sk_test',
    fetch,
    retries: { retries: 2, baseDelayMs: 1, maxDelayMs: 50 },
  });
  return { roster, requests };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const org = (id: string) => ({
  object: 'organization',
  id,
  name: id,
  slug: id,
  default_role: 'member',
  metadata: {},
  created_at: '2026-11-28T00:00:00.000Z',
  updated_at: '2026-11-28T00:00:00.000Z',
});

describe('createRoster', () => {
  it('sends the secret key and the typed request', async () => {
    const { roster, requests } = setup(() => json(201, org('org_1')));
    const created = await roster.organizations.create({ name: 'Acme', slug: 'acme' });
    expect(created.id).toBe('org_1');
    expect(requests[0]!.url).toBe('https://roster.test/v1/organizations');
    expect(requests[0]!.method).toBe('POST');
    expect(requests[0]!.headers.get('authorization')).toBe('Bearer rst_sk_test');
    expect(await requests[0]!.json()).toEqual({ name: 'Acme', slug: 'acme' });
  });

  it('creates an Admin Portal link for an organization', async () => {
    const link = {
      object: 'portal_link',
      url: 'https://roster.test/portal/start?token=t',
      expires_at: '2026-11-28T00:05:00.000Z',
    };
    const { roster, requests } = setup(() => json(201, link));
    const created = await roster.organizations.createPortalLink({
      organizationId: 'org_1',
      intent: 'directory_sync',
      return_url: 'https://app.test/settings',
    });
    expect(created).toEqual(link);
    expect(requests[0]!.url).toBe('https://roster.test/v1/organizations/org_1/portal_links');
    expect(requests[0]!.method).toBe('POST');
    expect(await requests[0]!.json()).toEqual({
      intent: 'directory_sync',
      return_url: 'https://app.test/settings',
    });
  });

  it('refuses to start without a base URL or key', () => {
    expect(() => createRoster({ baseUrl: '', secretKey: 'x' })).toThrow(/baseUrl is required/);
    expect(() => createRoster({ baseUrl: 'http://x', secretKey: '' })).toThrow(/secretKey is required/);
  });

  it('throws a RosterError with status, code, request id and details', async () => {
    const { roster } = setup(() =>
      json(409, {
        error: {
          code: 'slug_taken',
          message: 'taken',
          request_id: 'req_1',
          details: [{ path: 'slug', code: 'slug_taken', message: 'taken' }],
        },
      }),
    );
    const error = await roster.organizations.create({ name: 'Acme', slug: 'acme' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RosterError);
    expect(error).toMatchObject({
      status: 409,
      code: 'slug_taken',
      requestId: 'req_1',
      details: [{ path: 'slug' }],
    });
  });

  it('maps a non-JSON failure and a network failure', async () => {
    const { roster } = setup(
      () => new Response('bad gateway', { status: 502, headers: { 'x-request-id': 'req_2' } }),
    );
    await expect(roster.organizations.get({ organizationId: 'org_1' })).rejects.toMatchObject({
      status: 502,
      code: 'unexpected_response',
      requestId: 'req_2',
    });
    const down = setup(() => {
      throw new TypeError('connect ECONNREFUSED');
    });
    await expect(down.roster.organizations.get({ organizationId: 'org_1' })).rejects.toMatchObject({
      status: 0,
      code: 'network_error',
    });
    expect(down.requests).toHaveLength(3);
  });
});

describe('retries', () => {
  it('retries a GET on 429 and 503, honouring Retry-After', async () => {
    const { roster, requests } = setup((_, attempt) =>
      attempt === 1
        ? json(
            429,
            { error: { code: 'rate_limited', message: 'slow', request_id: 'r' } },
            { 'retry-after': '0' },
          )
        : attempt === 2
          ? json(503, {})
          : json(200, org('org_1')),
    );
    expect((await roster.organizations.get({ organizationId: 'org_1' })).id).toBe('org_1');
    expect(requests).toHaveLength(3);
  });

  it('gives up after the configured retries', async () => {
    const { roster, requests } = setup(() =>
      json(503, { error: { code: 'service_unavailable', message: 'down', request_id: 'r' } }),
    );
    await expect(roster.roles.list()).rejects.toMatchObject({ status: 503, code: 'service_unavailable' });
    expect(requests).toHaveLength(3);
  });

  it('never retries a POST without an idempotency key', async () => {
    const { roster, requests } = setup(() =>
      json(503, { error: { code: 'service_unavailable', message: 'down', request_id: 'r' } }),
    );
    await expect(roster.organizations.create({ name: 'Acme' })).rejects.toMatchObject({ status: 503 });
    expect(requests).toHaveLength(1);
  });

  it('retries a POST with an idempotency key, sending the same key and body each time', async () => {
    const { roster, requests } = setup((_, attempt) =>
      attempt < 3 ? json(503, {}) : json(201, org('org_9')),
    );
    const created = await roster.organizations.create({ name: 'Acme' }, { idempotencyKey: 'k-1' });
    expect(created.id).toBe('org_9');
    expect(requests.map((r) => r.headers.get('idempotency-key'))).toEqual(['k-1', 'k-1', 'k-1']);
    expect(await Promise.all(requests.map((r) => r.json()))).toEqual([
      { name: 'Acme' },
      { name: 'Acme' },
      { name: 'Acme' },
    ]);
  });

  it('does not retry client errors', async () => {
    const { roster, requests } = setup(() =>
      json(404, { error: { code: 'not_found', message: 'no', request_id: 'r' } }),
    );
    await expect(roster.users.get({ userId: 'user_x' })).rejects.toMatchObject({ code: 'not_found' });
    expect(requests).toHaveLength(1);
  });
});

describe('lists', () => {
  it('await gives one page; for await walks every page', async () => {
    const pages: Record<string, { data: unknown[]; next_cursor: string | null }> = {
      '': { data: [org('org_1'), org('org_2')], next_cursor: 'c1' },
      c1: { data: [org('org_3')], next_cursor: 'c2' },
      c2: { data: [], next_cursor: null },
    };
    const { roster, requests } = setup((request) =>
      json(200, pages[new URL(request.url).searchParams.get('after') ?? '']),
    );
    const first = await roster.organizations.list({ limit: 2 });
    expect(first.data.map((o) => o.id)).toEqual(['org_1', 'org_2']);
    expect(first.next_cursor).toBe('c1');
    const ids: string[] = [];
    for await (const organization of roster.organizations.list({ limit: 2 })) ids.push(organization.id);
    expect(ids).toEqual(['org_1', 'org_2', 'org_3']);
    expect(new URL(requests[1]!.url).searchParams.get('limit')).toBe('2');
    expect(await roster.organizations.list().toArray()).toHaveLength(3);
  });

  it('passes list filters as query parameters', async () => {
    const { roster, requests } = setup(() => json(200, { data: [], next_cursor: null }));
    await roster.organizations.listMembers({
      organizationId: 'org_1',
      status: 'inactive',
      role: 'admin',
      query: 'ada',
      limit: 5,
    });
    const url = new URL(requests[0]!.url);
    expect(url.pathname).toBe('/v1/organizations/org_1/memberships');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      status: 'inactive',
      role: 'admin',
      query: 'ada',
      limit: '5',
    });
    await roster.users.list({ organizationId: 'org_1', active: false, userName: 'ada' });
    expect(Object.fromEntries(new URL(requests[1]!.url).searchParams)).toEqual({
      organization_id: 'org_1',
      active: 'false',
      user_name: 'ada',
    });
  });

  it('creates, lists and revokes API keys', async () => {
    const key = {
      object: 'api_key',
      id: 'key_1',
      name: 'feed',
      organization_id: 'org_1',
      scopes: ['events:read'],
      hint: 'rst_ak_…abcd',
      created_at: '2026-11-28T00:00:00.000Z',
    };
    const { roster, requests } = setup((request) =>
      request.method === 'POST'
        ? json(201, { ...key, key: 'rst_ak_secret' })
        : request.method === 'GET'
          ? json(200, { data: [key], next_cursor: null })
          : new Response(null, { status: 204 }),
    );
    const created = await roster.apiKeys.create(
      { name: 'feed', organization_id: 'org_1', scopes: ['events:read'] },
      { idempotencyKey: 'k1' },
    );
    expect(created.key).toBe('rst_ak_secret');
    expect(requests[0]!.url).toBe('https://roster.test/v1/api_keys');
    expect(requests[0]!.headers.get('idempotency-key')).toBe('k1');
    expect(await requests[0]!.json()).toEqual({
      name: 'feed',
      organization_id: 'org_1',
      scopes: ['events:read'],
    });
    expect((await roster.apiKeys.list().toArray()).map((k) => k.id)).toEqual(['key_1']);
    await roster.apiKeys.delete({ apiKeyId: 'key_1' });
    expect(requests[2]!.method).toBe('DELETE');
    expect(requests[2]!.url).toBe('https://roster.test/v1/api_keys/key_1');
  });
  it("sessions.create and sessions.refresh take camelCase, and still the API's snake_case", async () => {
    const tokens = { object: 'session_tokens', id: 'sess_1', token: 't', refresh_token: 'r' };
    const { roster, requests } = setup(() => json(201, tokens));
    await roster.sessions.create({ userId: 'user_1', organizationId: 'org_1' }, { idempotencyKey: 'k1' });
    await roster.sessions.create({ user_id: 'user_2', organization_id: 'org_2' });
    await roster.sessions.refresh({ refreshToken: 'rst_rt_1' });
    await roster.sessions.refresh({ refresh_token: 'rst_rt_2' });
    expect(await Promise.all(requests.map((r) => r.json()))).toEqual([
      { user_id: 'user_1', organization_id: 'org_1' },
      { user_id: 'user_2', organization_id: 'org_2' },
      { refresh_token: 'rst_rt_1' },
      { refresh_token: 'rst_rt_2' },
    ]);
    expect(requests[0]!.headers.get('idempotency-key')).toBe('k1');
    expect(requests[1]!.headers.get('idempotency-key')).toBeNull();
  });

  it('every method takes request options: signal, timeoutMs (per page), idempotencyKey on POSTs', async () => {
    const { roster, requests } = setup(
      (request) =>
        new Promise<Response>((resolve, reject) => {
          // Answers after 1 s unless the request is aborted first.
          const timer = setTimeout(() => resolve(json(200, org('org_1'))), 1_000);
          request.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(request.signal.reason);
          });
        }),
    );
    const started = Date.now();
    await expect(
      roster.organizations.get({ organizationId: 'org_1' }, { timeoutMs: 20 }),
    ).rejects.toMatchObject({
      code: 'network_error',
    });
    expect(Date.now() - started).toBeLessThan(900);
    const controller = new AbortController();
    const pending = roster.roles.get({ key: 'admin' }, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(RosterError);
    await expect(
      roster.connections.list({ organizationId: 'org_1' }, { timeoutMs: 20 }),
    ).rejects.toMatchObject({ code: 'network_error' });
    expect(requests.map((r) => new URL(r.url).pathname)).toEqual([
      '/v1/organizations/org_1',
      '/v1/roles/admin',
      '/v1/organizations/org_1/connections',
    ]);

    const posted = setup(() => json(201, { object: 'session', id: 'sess_1' }));
    await posted.roster.sessions.revoke({ sessionId: 'sess_1' }, { idempotencyKey: 'revoke-1' });
    await posted.roster.organizations.previewUpdate({ organizationId: 'org_1' }, { idempotencyKey: 'p-1' });
    expect(posted.requests.map((r) => r.headers.get('idempotency-key'))).toEqual(['revoke-1', 'p-1']);
  });

  it('signingKeys.rotate takes camelCase, and still the snake_case body', async () => {
    const { roster, requests } = setup(() => json(200, { object: 'signing_key', id: 'sk_1' }));
    await roster.signingKeys.rotate({ revokePrevious: true });
    await roster.signingKeys.rotate({ revoke_previous: true });
    await roster.signingKeys.rotate();
    expect(await Promise.all(requests.map((r) => r.json()))).toEqual([
      { revoke_previous: true },
      { revoke_previous: true },
      {},
    ]);
  });
});
