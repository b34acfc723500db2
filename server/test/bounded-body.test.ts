import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BoundedBody, readBoundedBody } from '../src/http/bounded-body.js';
import { startTestServer, type TestServer } from './harness.js';
import { createConnection, expectScimError, type TestConnection, userBody } from './scim-helpers.js';

/** A bare node:http server whose handler reads the body with a limit of 64 bytes and reports the outcome. */
async function withReader(
  run: (port: number, outcomes: BoundedBody[], reading: () => number) => Promise<void>,
): Promise<void> {
  const outcomes: BoundedBody[] = [];
  let reading = 0;
  const server = http.createServer((req, res) => {
    reading++;
    void readBoundedBody(req, 64).then((outcome) => {
      outcomes.push(outcome);
      res.shouldKeepAlive = false;
      res.end(outcome.ok ? 'ok' : outcome.reason);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await run((server.address() as AddressInfo).port, outcomes, () => reading);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

function send(port: number, headers: Record<string, string>, chunks: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('readBoundedBody', () => {
  it('answers the bytes, or why not: too large (declared or streamed), compressed, another charset', async () => {
    await withReader(async (port, outcomes) => {
      expect(await send(port, { 'content-type': 'application/json' }, ['{"a":', '"é"}'])).toBe('ok');
      const first = outcomes[0];
      expect(first?.ok && first.bytes.toString('utf8')).toBe('{"a":"é"}');
      // Exactly at the limit is fine; one byte more is not.
      expect(await send(port, {}, ['x'.repeat(64)])).toBe('ok');
      expect(await send(port, { 'content-length': '65' }, ['x'.repeat(65)])).toBe('too_large');
      expect(await send(port, { 'transfer-encoding': 'chunked' }, ['x'.repeat(40), 'x'.repeat(40)])).toBe(
        'too_large',
      );
      expect(await send(port, { 'content-encoding': 'gzip' }, ['x'])).toBe('encoding');
      expect(await send(port, { 'content-encoding': 'Identity' }, ['x'])).toBe('ok');
      expect(await send(port, { 'content-type': 'application/json; charset="latin1"' }, ['x'])).toBe(
        'charset',
      );
      expect(await send(port, { 'content-type': 'application/json; charset=UTF8' }, ['x'])).toBe('ok');
      expect(outcomes.filter((o) => !o.ok)).toEqual([
        { ok: false, reason: 'too_large' },
        { ok: false, reason: 'too_large' },
        { ok: false, reason: 'encoding', value: 'gzip' },
        { ok: false, reason: 'charset', value: 'latin1' },
      ]);
    });
  });

  it('a body the client abandons midway is `aborted`', async () => {
    await withReader(async (port, outcomes, reading) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        headers: { 'content-length': '60' },
      });
      req.on('error', () => {});
      req.write('x'.repeat(10));
      req.flushHeaders();
      await expect.poll(reading).toBe(1);
      expect(outcomes).toEqual([]);
      req.destroy();
      await expect.poll(() => outcomes).toEqual([{ ok: false, reason: 'aborted' }]);
    });
  });
});

describe('each protocol answers the reason in its own error format', () => {
  let server: TestServer;
  let conn: TestConnection;
  beforeAll(async () => {
    server = await startTestServer({ env: { ROSTER_BODY_LIMIT: '64kb' } });
    conn = await createConnection(server, 'generic');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('SCIM: 413 and 415 as SCIM errors that say why, storing nothing', async () => {
    const body = JSON.stringify(userBody('body@x.com'));
    const compressed = await conn.scim('POST', '/Users', {
      body,
      headers: { 'content-encoding': 'gzip' },
    });
    expectScimError(compressed, 415);
    expect(compressed.body.detail).toBe('Unsupported Content-Encoding "gzip"; send uncompressed JSON');
    const latin1 = await conn.scim('POST', '/Users', {
      body,
      headers: { 'content-type': 'application/scim+json; charset=ISO-8859-1' },
    });
    expectScimError(latin1, 415);
    expect(latin1.body.detail).toBe('Unsupported charset "iso-8859-1"; send UTF-8 JSON');
    const large = await conn.scim('POST', '/Users', {
      body: userBody('body@x.com', { title: 'x'.repeat(70_000) }),
    });
    expectScimError(large, 413);
    expect(large.body.detail).toBe('The request body is larger than 65536 bytes');
    expect((await conn.scim('GET', '/Users?count=0')).body.totalResults).toBe(0);
  });
});
