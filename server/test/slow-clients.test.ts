import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Child, freePort, run, waitFor } from './child-server.js';
import { createTestDatabase, type TestDatabase } from './harness.js';

/**
 * Clients that hold connections without finishing a request (one body byte a second, a thousand
 * connections that send nothing) and bodies of 100 MB, against a real server process whose file
 * descriptors and memory are read from /proc. Timeouts are shortened by their variables
 * (ROSTER_HEADERS_TIMEOUT, ROSTER_REQUEST_TIMEOUT) so that the test takes seconds.
 */

const HEADERS_TIMEOUT_S = 2;
const REQUEST_TIMEOUT_S = 4;
const MAX_CONNECTIONS = 1100;
const IDLE = 1000;
const secretKey = `rst_sk_slow_${'s'.repeat(32)}`;

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** A raw TCP connection that records what the server sends and when it closes. */
function connect(
  port: number,
): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.once('error', () => {});
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms),
    ),
  ]);

describe('slow and idle clients, and bodies of 100 MB', () => {
  let testDb: TestDatabase | undefined;
  let dataDir: string | undefined;
  let child: Child;
  let port: number;
  let url: string;
  let pid: number;
  let scimUsers: string;
  let scimToken: string;

  beforeAll(async () => {
    let env: Record<string, string>;
    if (process.env.DATABASE_URL) {
      testDb = await createTestDatabase();
      await testDb.database.close();
      env = testDb.env;
    } else {
      dataDir = mkdtempSync(path.join(tmpdir(), 'roster-slow-'));
      env = { ROSTER_DATA_DIR: dataDir };
    }
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = run({
      ...env,
      PORT: String(port),
      ROSTER_SECRET_KEY: secretKey,
      ROSTER_HEADERS_TIMEOUT: `${HEADERS_TIMEOUT_S}s`,
      ROSTER_REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_S}s`,
      ROSTER_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      LOG_LEVEL: 'warn',
    });
    await waitFor(() => {
      if (child.process.exitCode !== null) throw new Error(`the server exited: ${child.stderr}`);
      return child.stderr.includes('Roster is listening') ? true : undefined;
    }, 110_000);
    pid = child.process.pid!;
    const admin = { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' };
    const org = (await (
      await fetch(`${url}/v1/organizations`, { method: 'POST', headers: admin, body: '{"name":"Slow"}' })
    ).json()) as { id: string };
    const conn = (await (
      await fetch(`${url}/v1/organizations/${org.id}/connections`, {
        method: 'POST',
        headers: admin,
        body: '{"name":"Okta","provider":"okta"}',
      })
    ).json()) as { scim: { base_url: string; token: string } };
    scimUsers = `${new URL(conn.scim.base_url).pathname}/Users`;
    scimToken = conn.scim.token;
  }, 120_000);

  afterAll(async () => {
    if (child && child.process.exitCode === null) {
      child.process.kill('SIGTERM');
      await child.exited;
    }
    await testDb?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('cuts off a body sent a byte a second and 1,000 idle connections, serving others meanwhile', async () => {
    const baseFds = fds(pid);
    const baseRss = rssMb(pid);

    const slow = await connect(port);
    const body = '{"name":"Slowly"}'.padEnd(100, ' ');
    slow.socket.write(
      `POST /v1/organizations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secretKey}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    let sent = 0;
    const drip = setInterval(() => {
      if (!slow.socket.destroyed) slow.socket.write(body[sent++]!);
    }, 1000);
    const started = performance.now();

    const idle = await Promise.all(Array.from({ length: IDLE }, () => connect(port)));
    await waitFor(() => (fds(pid) >= baseFds + IDLE ? true : undefined), 30_000);
    // Others are served while they wait.
    const health = await within(fetch(`${url}/healthz`), 10_000, 'GET /healthz');
    expect(health.status).toBe(200);
    const created = await within(
      fetch(`${url}/v1/organizations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' },
        body: '{"name":"Served"}',
      }),
      10_000,
      'POST /v1/organizations',
    );
    expect(created.status).toBe(201);
    // Connections beyond ROSTER_MAX_CONNECTIONS are closed at once: descriptors stay bounded.
    const extra = await Promise.all(Array.from({ length: 200 }, () => connect(port)));
    await within(Promise.all(extra.slice(0, 50).map((c) => c.closed)), 10_000, 'connections over the limit');
    expect(fds(pid)).toBeLessThanOrEqual(baseFds + MAX_CONNECTIONS + 5);
    expect(rssMb(pid) - baseRss).toBeLessThan(100);

    // No headers within ROSTER_HEADERS_TIMEOUT (checked each second): closed.
    await within(
      Promise.all(idle.map((c) => c.closed)),
      (HEADERS_TIMEOUT_S + 15) * 1000,
      'idle connections closed',
    );
    // The body that would take 100 s: 408 once ROSTER_REQUEST_TIMEOUT has passed, and closed.
    await within(slow.closed, (REQUEST_TIMEOUT_S + 15) * 1000, 'slow body cut off');
    clearInterval(drip);
    const seconds = (performance.now() - started) / 1000;
    // Far below what Node's defaults allow (a 60 s headers timeout, checked every 30 s), with room
    // for a machine busy with other tests.
    expect(seconds).toBeLessThan(REQUEST_TIMEOUT_S + 15);
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /);
    for (const c of extra) c.socket.destroy();
    for (let i = 0; i < 300 && fds(pid) > baseFds + 10; i++) await new Promise((r) => setTimeout(r, 100));
    expect(
      fds(pid),
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`);
          } catch {
            return '?';
          }
        })
        .join(' ')
        .slice(0, 3000),
    ).toBeLessThanOrEqual(baseFds + 10);
    // The slow organization was never created.
    const list = (await (
      await fetch(`${url}/v1/organizations?limit=100`, { headers: { authorization: `Bearer ${secretKey}` } })
    ).json()) as { data: { name: string }[] };
    expect(list.data.map((o) => o.name)).not.toContain('Slowly');
  }, 120_000);

  const HUNDRED_MB = 100 * 1024 * 1024;
  const targets = () => [
    { name: '/v1', path: '/v1/organizations', auth: secretKey, type: 'application/json' },
    { name: 'SCIM', path: scimUsers, auth: scimToken, type: 'application/scim+json' },
  ];

  it('refuses a declared 100 MB body with 413 before reading any of it, and closes the connection', async () => {
    for (const target of targets()) {
      const c = await connect(port);
      c.socket.write(
        `POST ${target.path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${target.auth}\r\nContent-Type: ${target.type}\r\nContent-Length: ${HUNDRED_MB}\r\n\r\n`,
      );
      // Not one byte of the body is sent: the answer cannot have waited for it.
      await within(c.closed, 5000, `${target.name}: connection closed`);
      expect(c.received(), target.name).toMatch(/^HTTP\/1\.1 413 /);
      expect(c.received().toLowerCase(), target.name).toContain('connection: close');
    }
  });

  it('refuses a chunked 100 MB body with 413 once it passes the limit, having read about 1 MB', async () => {
    for (const target of targets()) {
      const c = await connect(port);
      c.socket.write(
        `POST ${target.path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${target.auth}\r\nContent-Type: ${target.type}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      );
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const frame = Buffer.concat([
        Buffer.from(`${chunk.length.toString(16)}\r\n`),
        chunk,
        Buffer.from('\r\n'),
      ]);
      let sent = 0;
      let closed = false;
      void c.closed.then(() => {
        closed = true;
      });
      while (!closed && !c.received() && sent < HUNDRED_MB) {
        sent += chunk.length;
        if (!c.socket.write(frame)) {
          await Promise.race([new Promise((resolve) => c.socket.once('drain', resolve)), c.closed]);
        }
      }
      await within(c.closed, 5000, `${target.name}: connection closed`);
      // The 413 is sent before the close; a client still writing when the server closes may get a
      // reset that discards it (TCP), so only an answer that arrived is checked.
      if (c.received()) expect(c.received(), target.name).toMatch(/^HTTP\/1\.1 413 /);
      // The body limit (1 MB) plus what the socket buffers held: far from 100 MB.
      expect(sent, target.name).toBeLessThan(16 * 1024 * 1024);
    }
  });

  it('still reads a chunked JSON body within the limit', async () => {
    const response = await fetch(`${url}/v1/organizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' },
      body: new Blob(['{"name":"Chunked"}']).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(201);
    expect(((await response.json()) as { name: string }).name).toBe('Chunked');
  });
});
