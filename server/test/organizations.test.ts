import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('health', () => {
  it('answers /healthz and /readyz without a key', async () => {
    const health = await server.api('GET', '/healthz', { key: null });
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
    const ready = await server.api('GET', '/readyz', { key: null });
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ok' });
  });
});

describe('management API authentication', () => {
  it.each([
    ['no key', null],
    ['a wrong key', 'rst_sk_wrong_wrong_wrong_wrong_wrong_wrong'],
    ['an empty bearer', ''],
  ])('rejects %s with 401 in the error shape', async (_, key) => {
    const response =
      key === ''
        ? await server.api('GET', '/v1/organizations', { key: null, headers: { authorization: 'Bearer ' } })
        : await server.api('GET', '/v1/organizations', { key });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="roster"');
    expect(response.body).toEqual({
      error: {
        code: 'unauthorized',
        message: expect.stringContaining('secret key'),
        request_id: response.headers.get('x-request-id'),
      },
    });
    expect(response.body.error.request_id).toMatch(/^req_/);
  });

  it('accepts the key in any Bearer casing', async () => {
    const response = await server.api('GET', '/v1/organizations', {
      key: null,
      headers: { authorization: `bearer ${server.secretKey}` },
    });
    expect(response.status).toBe(200);
  });

  it('echoes a sane incoming X-Request-Id and replaces an unsafe one', async () => {
    const echoed = await server.api('GET', '/v1/nope', { headers: { 'x-request-id': 'trace-1234abcd' } });
    expect(echoed.headers.get('x-request-id')).toBe('trace-1234abcd');
    expect(echoed.body.error.request_id).toBe('trace-1234abcd');
    const replaced = await server.api('GET', '/v1/nope', { headers: { 'x-request-id': 'bad id<script>' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^req_/);
  });
});

describe('organizations', () => {
  it('creates, reads, updates and deletes', async () => {
    const created = await server.api('POST', '/v1/organizations', {
      body: { name: 'Acme Corp', metadata: { plan: 'enterprise' } },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      object: 'organization',
      id: expect.stringMatching(/^org_[0-9a-z]{26}$/),
      name: 'Acme Corp',
      slug: 'acme-corp',
      default_role: 'member',
      metadata: { plan: 'enterprise' },
      created_at: expect.any(String),
      updated_at: created.body.created_at,
    });
    const id = created.body.id;

    const got = await server.api('GET', `/v1/organizations/${id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);

    const updated = await server.api('PATCH', `/v1/organizations/${id}`, {
      body: { name: 'Acme Corporation', default_role: 'admin' },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      name: 'Acme Corporation',
      slug: 'acme-corp',
      default_role: 'admin',
    });
    expect(updated.body.metadata).toEqual({ plan: 'enterprise' });

    expect((await server.api('DELETE', `/v1/organizations/${id}`)).status).toBe(204);
    const gone = await server.api('GET', `/v1/organizations/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('not_found');
    expect((await server.api('DELETE', `/v1/organizations/${id}`)).status).toBe(404);
  });

  it('moves the members whose role is the default to a new default role, and only them', async () => {
    const id = (await server.api('POST', '/v1/organizations', { body: { name: 'Default mover' } })).body.id;
    const plain = await server.api('POST', `/v1/organizations/${id}/memberships`, {
      body: { email: 'plain@default.test' },
    });
    const pinned = await server.api('POST', `/v1/organizations/${id}/memberships`, {
      body: { email: 'pinned@default.test', role: 'member' },
    });
    expect(
      (await server.api('PATCH', `/v1/organizations/${id}`, { body: { default_role: 'admin' } })).status,
    ).toBe(200);
    const role = async (membershipId: string) =>
      (await server.api('GET', `/v1/organizations/${id}/memberships/${membershipId}`)).body.role;
    expect(await role(plain.body.id)).toBe('admin');
    expect(await role(pinned.body.id)).toBe('member');
    const explained = await server.api('GET', `/v1/memberships/${plain.body.id}/explain`);
    expect(explained.body).toMatchObject({ reason: 'default_role', default_role: 'admin', role: 'admin' });
  });

  it('rejects a taken slug with 409 and derives a free one from the name', async () => {
    const first = await server.api('POST', '/v1/organizations', { body: { name: 'Globex', slug: 'globex' } });
    expect(first.status).toBe(201);
    const taken = await server.api('POST', '/v1/organizations', { body: { name: 'Other', slug: 'globex' } });
    expect(taken.status).toBe(409);
    expect(taken.body.error).toMatchObject({ code: 'slug_taken', details: [{ path: 'slug' }] });
    const derived = await server.api('POST', '/v1/organizations', { body: { name: 'Globex' } });
    expect(derived.status).toBe(201);
    expect(derived.body.slug).toMatch(/^globex-[0-9a-f]{6}$/);
    const renamed = await server.api('PATCH', `/v1/organizations/${derived.body.id}`, {
      body: { slug: 'globex' },
    });
    expect(renamed.status).toBe(409);
  });

  it('creates exactly one organization per slug under concurrency', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 10 }, () =>
        server.api('POST', '/v1/organizations', { body: { name: 'Race', slug: 'race-slug' } }),
      ),
    );
    expect(attempts.filter((r) => r.status === 201)).toHaveLength(1);
    expect(attempts.filter((r) => r.status === 409)).toHaveLength(9);
  });

  it.each([
    [{}, 'name'],
    [{ name: '' }, 'name'],
    [{ name: 'x', slug: 'Not A Slug' }, 'slug'],
    [{ name: 'x', metadata: [1, 2] }, 'metadata'],
    [{ name: 'x', unknown_field: 1 }, '(body)'],
    [{ name: 'x', default_role: 'no-such-role' }, 'default_role'],
  ])('rejects %j with 400 naming %s', async (body, field) => {
    const before = await server.api('GET', '/v1/organizations?limit=100');
    const response = await server.api('POST', '/v1/organizations', { body });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('validation_failed');
    expect(response.body.error.message.startsWith(field === '(body)' ? '(body)' : `${field}:`)).toBe(true);
    expect(response.body.error.details[0].path).toBe(field);
    const after = await server.api('GET', '/v1/organizations?limit=100');
    expect(after.body.data).toHaveLength(before.body.data.length);
  });

  it('rejects malformed JSON, a non-JSON body and an oversized body without a 500', async () => {
    const malformed = await server.api('POST', '/v1/organizations', { body: '{"name": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('invalid_json');
    const text = await server.api('POST', '/v1/organizations', {
      body: 'name=x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('unsupported_media_type');
    const huge = await server.api('POST', '/v1/organizations', {
      body: { name: 'x', metadata: { blob: 'x'.repeat(2 * 1024 * 1024) } },
    });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('payload_too_large');
  });

  it('pages with a cursor, in creation order, without repeats', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `Paged ${i}`);
    for (const name of names) await server.api('POST', '/v1/organizations', { body: { name } });
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page = await server.api('GET', `/v1/organizations?limit=3${after ? `&after=${after}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.data.map((o: { id: string }) => o.id));
      after = page.body.next_cursor;
      pages++;
    } while (after);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(seen);
    const all = await server.api('GET', '/v1/organizations?limit=100');
    expect(seen).toEqual(all.body.data.map((o: { id: string }) => o.id));
    expect(pages).toBe(Math.ceil(seen.length / 3) + (seen.length % 3 === 0 ? 1 : 0));
  });

  it('rejects bad list parameters', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'after=not-a-cursor']) {
      const response = await server.api('GET', `/v1/organizations?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.body.error.code).toBe('validation_failed');
    }
  });

  it('answers unknown ids and routes with 404', async () => {
    expect((await server.api('GET', '/v1/organizations/org_00000000000000000000000000')).status).toBe(404);
    expect((await server.api('GET', '/v1/organizations/not-an-id')).status).toBe(404);
    const route = await server.api('GET', '/v1/nothing-here');
    expect(route.status).toBe(404);
    expect(route.body.error.code).toBe('route_not_found');
  });

  it('records organization events in the outbox, in the same transaction', async () => {
    const created = await server.api('POST', '/v1/organizations', { body: { name: 'Evented' } });
    await server.api('PATCH', `/v1/organizations/${created.body.id}`, { body: { name: 'Evented 2' } });
    await server.api('DELETE', `/v1/organizations/${created.body.id}`);
    const events = await server.ctx.db
      .selectFrom('events')
      .select(['type', 'data'])
      .where('organization_id', '=', created.body.id)
      .orderBy('seq')
      .execute();
    expect(events.map((e) => e.type)).toEqual([
      'organization.created',
      'organization.updated',
      'organization.deleted',
    ]);
    expect(events[1]!.data).toMatchObject({ name: 'Evented 2', changed_attributes: ['name'] });
  });
});
