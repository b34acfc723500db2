import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './child-server.js';
import { startTestServer, type TestServer } from './harness.js';

/** A webhook receiver on 127.0.0.1 that records raw bodies and answers what the test says. */
interface Received {
  body: string;
  headers: Record<string, string | string[] | undefined>;
}
function receiver() {
  const received: Received[] = [];
  let answer = (_: Received) => 200;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const delivery = { body: Buffer.concat(chunks).toString('utf8'), headers: req.headers };
      received.push(delivery);
      res.statusCode = answer(delivery);
      res.end();
    });
  });
  return {
    received,
    answer: (fn: (r: Received) => number) => {
      answer = fn;
    },
    start: () =>
      new Promise<string>((resolve) =>
        server.listen(0, '127.0.0.1', () =>
          resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`),
        ),
      ),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let server: TestServer;
let clock: Date | undefined;
const hook = receiver();
let url: string;
beforeAll(async () => {
  url = await hook.start();
  server = await startTestServer({
    now: () => clock ?? new Date(),
    // The receiver listens on loopback: allowed by the operator's allow-list.
    env: { ROSTER_WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' },
    webhooks: { baseBackoffMs: 20, pollMs: 30 },
  });
});
afterAll(async () => {
  await server?.close();
  await hook.stop();
});

function verify(delivery: Received, secret: string): boolean {
  const header = String(delivery.headers['roster-signature']);
  const t = /t=(\d+)/.exec(header)?.[1];
  const v1 = /v1=([0-9a-f]+)/.exec(header)?.[1];
  return createHmac('sha256', secret).update(`${t}.${delivery.body}`).digest('hex') === v1;
}

describe('webhooks', () => {
  it('delivers signed events in feed order, and only the subscribed types', async () => {
    hook.received.length = 0;
    const created = await server.api('POST', '/v1/webhook_endpoints', {
      body: { url, types: ['organization.created', 'organization.updated'], description: 'orgs' },
    });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    const secret: string = created.body.secret;
    const got = await server.api('GET', `/v1/webhook_endpoints/${created.body.id}`);
    expect(got.body).not.toHaveProperty('secret');
    expect(JSON.stringify(got.body)).not.toContain(secret);

    const org = await server.api('POST', '/v1/organizations', { body: { name: 'Hooked' } });
    await server.api('PATCH', `/v1/organizations/${org.body.id}`, { body: { name: 'Hooked 2' } });
    await server.api('POST', `/v1/organizations/${org.body.id}/connections`, {
      body: { name: 'c', provider: 'okta' },
    });
    await server.api('PATCH', `/v1/organizations/${org.body.id}`, { body: { name: 'Hooked 3' } });
    await waitFor(() => hook.received.length >= 3);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const events = hook.received.map((r) => JSON.parse(r.body));
    expect(events.map((e) => [e.type, e.data.name])).toEqual([
      ['organization.created', 'Hooked'],
      ['organization.updated', 'Hooked 2'],
      ['organization.updated', 'Hooked 3'],
    ]);
    for (const delivery of hook.received) {
      expect(verify(delivery, secret)).toBe(true);
      expect(delivery.headers['content-type']).toBe('application/json');
      expect(delivery.headers['roster-event-id']).toBe(JSON.parse(delivery.body).id);
    }
    // The signature covers the exact bytes: re-serialised JSON would not verify if it differed.
    expect(verify({ ...hook.received[0]!, body: `${hook.received[0]!.body} ` }, secret)).toBe(false);
    await server.api('DELETE', `/v1/webhook_endpoints/${created.body.id}`);
  });

  it('retries a failing endpoint with backoff, in order, and records every attempt', async () => {
    hook.received.length = 0;
    let failures = 0;
    hook.answer(() => (failures++ < 2 ? 503 : 200));
    const endpoint = await server.api('POST', '/v1/webhook_endpoints', {
      body: { url, types: ['role.created'] },
    });
    await server.api('POST', '/v1/roles', { body: { key: 'hook-a', name: 'A' } });
    await server.api('POST', '/v1/roles', { body: { key: 'hook-b', name: 'B' } });
    await waitFor(() => hook.received.length >= 4);
    const keys = hook.received.map((r) => JSON.parse(r.body).data.key);
    // The failing event is retried before the next one is ever sent.
    expect(keys).toEqual(['hook-a', 'hook-a', 'hook-a', 'hook-b']);
    const deliveries = await server.api('GET', `/v1/webhook_endpoints/${endpoint.body.id}/deliveries`);
    expect(
      deliveries.body.data
        .map((d: { outcome: string; attempt: number; response_status: number }) => [
          d.outcome,
          d.attempt,
          d.response_status,
        ])
        .reverse(),
    ).toEqual([
      ['failed', 1, 503],
      ['failed', 2, 503],
      ['delivered', 3, 200],
      ['delivered', 1, 200],
    ]);
    hook.answer(() => 200);
    await server.api('DELETE', `/v1/webhook_endpoints/${endpoint.body.id}`);
  });

  it('gives up on an event after 24 hours of failures and moves on', async () => {
    hook.received.length = 0;
    hook.answer((r) => (JSON.parse(r.body).data.key === 'doomed' ? 500 : 200));
    const endpoint = await server.api('POST', '/v1/webhook_endpoints', {
      body: { url, types: ['role.created'] },
    });
    await server.api('POST', '/v1/roles', { body: { key: 'doomed', name: 'Doomed' } });
    await waitFor(() => hook.received.length >= 2);
    await server.api('POST', '/v1/roles', { body: { key: 'after-doomed', name: 'After' } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(hook.received.every((r) => JSON.parse(r.body).data.key === 'doomed')).toBe(true);
    clock = new Date(Date.now() + 25 * 3_600_000);
    try {
      await waitFor(() => hook.received.some((r) => JSON.parse(r.body).data.key === 'after-doomed'));
    } finally {
      clock = undefined;
    }
    const deliveries = await server.api(
      'GET',
      `/v1/webhook_endpoints/${endpoint.body.id}/deliveries?limit=100`,
    );
    expect(deliveries.body.data.map((d: { outcome: string }) => d.outcome)).toContain('gave_up');
    hook.answer(() => 200);
    await server.api('DELETE', `/v1/webhook_endpoints/${endpoint.body.id}`);
  });

  it('pauses while disabled and resumes where it stopped', async () => {
    hook.received.length = 0;
    const endpoint = await server.api('POST', '/v1/webhook_endpoints', {
      body: { url, types: ['role.created'], enabled: false },
    });
    await server.api('POST', '/v1/roles', { body: { key: 'paused-1', name: 'P1' } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(hook.received).toHaveLength(0);
    await server.api('PATCH', `/v1/webhook_endpoints/${endpoint.body.id}`, { body: { enabled: true } });
    await waitFor(() => hook.received.length >= 1);
    expect(JSON.parse(hook.received[0]!.body).data.key).toBe('paused-1');
    await server.api('DELETE', `/v1/webhook_endpoints/${endpoint.body.id}`);
  });

  it('validates endpoints', async () => {
    for (const body of [
      { url: 'ftp://x' },
      { url: 'not a url' },
      { url, types: ['user.exploded'] },
      { url, organization_id: 'x' },
    ]) {
      expect((await server.api('POST', '/v1/webhook_endpoints', { body })).status).toBe(400);
    }
    expect((await server.api('GET', '/v1/webhook_endpoints/whep_00000000000000000000000000')).status).toBe(
      404,
    );
    const list = await server.api('GET', '/v1/webhook_endpoints');
    expect(list.status).toBe(200);
  });
});
