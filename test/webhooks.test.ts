import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '@roster/sdk';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../server/test/harness.js';
import { sdkFor } from './support.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { ROSTER_WEBHOOK_ALLOW_PRIVATE: 'true' }, webhooks: { pollMs: 30 } });
});
afterAll(async () => {
  await server?.close();
});

it('a real delivery verifies with the SDK on the raw body', async () => {
  const bodies: { raw: Buffer; headers: Record<string, string | string[] | undefined> }[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push({ raw: Buffer.concat(chunks), headers: req.headers });
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const roster = sdkFor(server);
    const endpoint = await roster.webhooks.create({
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`,
      types: ['organization.created'],
    });
    const org = await roster.organizations.create({ name: 'Verified' });
    for (let i = 0; i < 200 && bodies.length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    const event = await verifyWebhook(bodies[0]!.raw, bodies[0]!.headers, endpoint.secret);
    expect(event).toMatchObject({ type: 'organization.created', data: { id: org.id } });
    await expect(verifyWebhook(bodies[0]!.raw, bodies[0]!.headers, 'whsec_wrong')).rejects.toThrow();
    const deliveries = await roster.webhooks.listDeliveries({ endpointId: endpoint.id });
    expect(deliveries.data.map((d) => d.outcome)).toEqual(['delivered']);
  } finally {
    receiver.close();
  }
});
