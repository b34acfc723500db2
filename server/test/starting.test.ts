import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerStarting } from '../src/http/app.js';

/** The answer before the application is ready (process.test.ts shows it is given, never a hang). */
describe('a request while the server starts', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer(answerStarting);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('gets 503 with Retry-After in the management API error shape, with its request id', async () => {
    const response = await fetch(`${url}/v1/organizations`, { headers: { 'x-request-id': 'lb-probe-7' } });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('x-request-id')).toBe('lb-probe-7');
    expect(await response.json()).toEqual({
      error: { code: 'service_unavailable', message: 'Roster is starting.', request_id: 'lb-probe-7' },
    });
  });

  it('gets the SCIM Error schema on /scim, as an IdP expects', async () => {
    const response = await fetch(`${url}/scim/v2/conn_x/Users?filter=userName%20eq%20%22a%22`);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(response.headers.get('content-type')).toMatch(/^application\/scim\+json/);
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(await response.json()).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '503',
      detail: 'Roster is starting.',
    });
  });
});
