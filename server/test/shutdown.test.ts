import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';

/**
 * Graceful shutdown (SIGTERM in production): requests in flight finish, nothing else holds the
 * process. The shutdown timeout is set far beyond the test timeout, so a connection that holds
 * close() fails the test instead of being cut by the timeout.
 */

const LONG = 10 * 60_000;

function openRawSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

function closedPromise(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}

describe('graceful shutdown', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('is not held by a connection that never sent a request, nor by an idle keep-alive one', async () => {
    server = await startTestServer({ shutdownTimeoutMs: LONG });
    // A pre-connected socket, as undici leaves behind after an aborted request.
    const bare = await openRawSocket(server.url);
    const bareClosed = closedPromise(bare);
    bare.on('error', () => {});
    // A keep-alive connection that served one request and now sits idle.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server!.url}/healthz`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    const [kept] = Object.values(agent.freeSockets).flat();
    expect(kept).toBeDefined();
    const keptClosed = closedPromise(kept!);

    await server.close();
    server = undefined;
    await bareClosed;
    await keptClosed;
    expect(bare.destroyed).toBe(true);
    expect(kept!.destroyed).toBe(true);
    agent.destroy();
  });

  it('lets a request in flight finish, and answers a waiting long-poll at once', async () => {
    server = await startTestServer({ shutdownTimeoutMs: LONG });
    const org = await server.api('POST', '/v1/organizations', { body: { name: 'Shutdown' } });
    expect(org.status).toBe(201);
    await server.sequencer.flush();
    const head = (await server.api('GET', '/v1/events?limit=1000')).body.next_cursor as string;

    // Waits up to 30 s for an event that never comes: the shutdown must not wait for it.
    const poll = server.api('GET', `/v1/events?after=${head}&wait=30`);
    // Let the long-poll reach the server and start waiting.
    for (let i = 0; i < 200 && server.connections.requests === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));

    const closing = server.close();
    server = undefined;
    const answered = await poll;
    expect(answered.status).toBe(200);
    expect(answered.body.data).toEqual([]);
    expect(answered.body.next_cursor).toBe(head);
    await closing;
  });
});
