import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateAddress, WebhookTargets } from '../src/events/webhook-target.js';
import { WebhookDispatcher } from '../src/events/webhooks.js';
import { waitFor } from './child-server.js';
import { startTestServer, type TestServer } from './harness.js';

/**
 * Webhook targets (issue 9, finding 5) and delivery leases (finding 7). Only loopback is ever
 * connected to: names are resolved by an injected lookup, and "public" answers are only ever
 * checked, never connected to.
 */

interface Receiver {
  url: string;
  port: number;
  requests: { body: string; host: string | undefined }[];
  server: Server;
}

async function receiver(handle?: (req: IncomingMessage) => Promise<void>): Promise<Receiver> {
  const requests: Receiver['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      requests.push({ body: Buffer.concat(chunks).toString('utf8'), host: req.headers.host });
      await handle?.(req);
      res.statusCode = 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/hook`, port, requests, server };
}

/** The newest delivery record of an endpoint, once there is one. */
async function firstDelivery(server: TestServer, endpointId: string) {
  for (let i = 0; i < 400; i++) {
    const list = await server.api('GET', `/v1/webhook_endpoints/${endpointId}/deliveries`);
    if (list.body.data.length > 0) return list.body.data[0];
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('no delivery recorded');
}

const close = (server: { close(cb: () => void): unknown }) =>
  new Promise<void>((resolve) => server.close(() => resolve()));

describe('webhook target addresses', () => {
  it('refuses loopback, private, link-local, CGNAT, metadata, ULA and mapped forms', () => {
    for (const address of [
      '127.0.0.1',
      '127.1.2.3',
      '0.0.0.0',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '100.100.100.200',
      '192.0.0.192',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      'fd00:ec2::254',
      'fc00::1',
      'fe80::1',
      'fe80::1%eth0',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:169.254.169.254',
      '64:ff9b::a9fe:a9fe',
      '2002:7f00:1::1',
      '2001:db8::1',
    ]) {
      expect(privateAddress(address), address).toBe(true);
    }
    for (const address of [
      '93.184.215.14',
      '8.8.8.8',
      '172.32.0.1',
      '2606:4700::1111',
      '::ffff:8.8.8.8',
      '64:ff9b::808:808',
    ]) {
      expect(privateAddress(address), address).toBe(false);
    }
  });

  it('checks every resolved address, and the allow-list opens ranges and hosts', async () => {
    const answers: Record<string, string[]> = {
      'mixed.test': ['93.184.215.14', '10.0.0.7'],
      'public.test': ['93.184.215.14'],
      'internal.test': ['10.20.0.5'],
    };
    const lookup = async (host: string) => (answers[host] ?? []).map((address) => ({ address, family: 4 }));
    const strict = new WebhookTargets({ lookup });
    await expect(strict.resolve('https://mixed.test/h')).rejects.toThrow(/reserved address/);
    await expect(strict.resolve('https://nowhere.test/h')).rejects.toThrow(/does not resolve/);
    expect((await strict.resolve('https://public.test/h')).address).toBe('93.184.215.14');
    const ranges = new WebhookTargets({ lookup, allowed: ['10.20.0.0/16'] });
    expect((await ranges.resolve('https://internal.test/h')).address).toBe('10.20.0.5');
    await expect(ranges.resolve('https://mixed.test/h')).rejects.toThrow(/reserved address/);
    const hosts = new WebhookTargets({ lookup, allowed: ['mixed.test'] });
    expect((await hosts.resolve('https://mixed.test/h')).address).toBe('93.184.215.14');
  });
});

describe('webhook endpoints without the operator allowing private targets', () => {
  let server: TestServer;
  let hook: Receiver;
  const answers: Record<string, string> = {};
  beforeAll(async () => {
    hook = await receiver();
    server = await startTestServer({
      webhooks: {
        pollMs: 20,
        timeoutMs: 300,
        lookup: async (host) => {
          const address = answers[host];
          if (!address) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
          return [{ address, family: address.includes(':') ? 6 : 4 }];
        },
      },
    });
  });
  afterAll(async () => {
    await server?.close();
    await close(hook.server);
  });

  it('refuses URLs that are or resolve to private addresses, at creation and update', async () => {
    answers['intranet.test'] = '10.0.0.8';
    answers.localhost = '127.0.0.1';
    answers['public.test'] = '93.184.215.14';
    for (const url of [
      hook.url,
      `http://localhost:${hook.port}/hook`,
      'http://intranet.test/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]:8080/hook',
      'http://[::ffff:127.0.0.1]:8080/hook',
      'http://[fd00:ec2::254]/hook',
      'http://100.100.100.200/hook',
    ]) {
      const response = await server.api('POST', '/v1/webhook_endpoints', { body: { url } });
      expect(response.status, url).toBe(400);
      expect(response.body.error.details[0]).toMatchObject({ path: 'url', code: 'forbidden_target' });
    }
    const created = await server.api('POST', '/v1/webhook_endpoints', {
      body: { url: 'http://public.test/hook', enabled: false },
    });
    expect(created.status).toBe(201);
    const moved = await server.api('PATCH', `/v1/webhook_endpoints/${created.body.id}`, {
      body: { url: 'http://intranet.test/hook' },
    });
    expect(moved.status).toBe(400);
    await server.api('DELETE', `/v1/webhook_endpoints/${created.body.id}`);
  });

  it('checks again at delivery: a name that now resolves to loopback is not connected to', async () => {
    answers['rebind.test'] = '93.184.215.14';
    const created = await server.api('POST', '/v1/webhook_endpoints', {
      body: { url: `http://rebind.test:${hook.port}/hook`, types: ['role.created'] },
    });
    expect(created.status).toBe(201);
    // Before any event exists: the public answer is never connected to.
    answers['rebind.test'] = '127.0.0.1';
    await server.api('POST', '/v1/roles', { body: { key: 'rebound', name: 'Rebound' } });
    const failed = await firstDelivery(server, created.body.id);
    expect(failed).toMatchObject({ outcome: 'failed', response_status: null });
    expect(failed.error).toMatch(/reserved address/);
    expect(hook.requests).toHaveLength(0);
    await server.api('DELETE', `/v1/webhook_endpoints/${created.body.id}`);
  });
});

describe('webhook deliveries with private targets allowed', () => {
  let server: TestServer;
  let hook: Receiver;
  let silent: ReturnType<typeof createTcpServer>;
  let silentPort: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    hook = await receiver();
    // Accepts connections and never answers: a filtered-looking or slow port.
    silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as AddressInfo).port;
    server = await startTestServer({
      env: { ROSTER_WEBHOOK_ALLOWED_TARGETS: '127.0.0.0/8,pinned.test' },
      webhooks: {
        pollMs: 20,
        timeoutMs: 300,
        baseBackoffMs: 60_000,
        lookup: async (host) => (host === 'pinned.test' ? [{ address: '127.0.0.1', family: 4 }] : []),
      },
    });
  });
  afterAll(async () => {
    await server?.close();
    await close(hook.server);
    for (const socket of sockets) socket.destroy();
    await close(silent);
  });

  it('connects to the checked address, with the URL host in the Host header', async () => {
    const created = await server.api('POST', '/v1/webhook_endpoints', {
      body: { url: `http://pinned.test:${hook.port}/hook`, types: ['role.created'] },
    });
    expect(created.status, created.text).toBe(201);
    await server.api('POST', '/v1/roles', { body: { key: 'pinned', name: 'Pinned' } });
    await waitFor(() => hook.requests.length >= 1);
    expect(hook.requests[0]!.host).toBe(`pinned.test:${hook.port}`);
    await server.api('DELETE', `/v1/webhook_endpoints/${created.body.id}`);
  });

  it('records a closed port and a silent port alike: no port-scanning oracle', async () => {
    // A port that was just free: connections to it are refused.
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as AddressInfo).port;
    await close(probe);

    const records = [];
    for (const port of [closedPort, silentPort]) {
      const created = await server.api('POST', '/v1/webhook_endpoints', {
        body: { url: `http://127.0.0.1:${port}/hook`, types: ['role.created'] },
      });
      await server.api('POST', '/v1/roles', { body: { key: `scan-${port}`, name: 'Scan' } });
      records.push(await firstDelivery(server, created.body.id));
      await server.api('DELETE', `/v1/webhook_endpoints/${created.body.id}`);
    }
    const visible = records.map((r) => ({
      status: r.response_status,
      error: r.error,
      duration: r.duration_ms,
    }));
    expect(visible[0]).toEqual({ status: null, error: 'no HTTP response', duration: 0 });
    expect(visible[1]).toEqual(visible[0]);
  });
});

describe('webhook delivery leases', () => {
  it('two deliverers on one database never deliver to one endpoint at once', async () => {
    let offsetMs = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const hook = await receiver(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      // A slow endpoint: each delivery takes 20 s of the server's clock.
      offsetMs += 20_000;
      await new Promise((resolve) => setTimeout(resolve, 150));
      inFlight--;
    });
    const server = await startTestServer({
      now: () => new Date(Date.now() + offsetMs),
      env: { ROSTER_WEBHOOK_ALLOW_PRIVATE: 'true' },
      webhooks: { pollMs: 20, leaseMs: 30_000 },
    });
    const second = new WebhookDispatcher({
      ctx: server.ctx,
      keyRing: server.keyRing,
      targets: new WebhookTargets({ allowPrivate: true }),
      pollMs: 20,
      leaseMs: 30_000,
    });
    try {
      const created = await server.api('POST', '/v1/webhook_endpoints', {
        body: { url: hook.url, types: ['role.created'] },
      });
      expect(created.status).toBe(201);
      second.start();
      const keys = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6'];
      for (const key of keys) await server.api('POST', '/v1/roles', { body: { key, name: key } });
      await waitFor(() => hook.requests.length >= keys.length || maxInFlight > 1, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(maxInFlight).toBe(1);
      expect(hook.requests.map((r) => JSON.parse(r.body).data.key)).toEqual(keys);
    } finally {
      await second.stop();
      await server.close();
      await close(hook.server);
    }
  }, 90_000);
});
