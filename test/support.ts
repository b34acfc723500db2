import { createRoster } from '@roster/sdk';
import { recorded } from '../server/test/contract.js';
import type { TestServer } from '../server/test/harness.js';

/**
 * An SDK client of a test server whose every response is recorded for the contract check (as the
 * server tests' own requests are).
 */
export function sdkFor(server: TestServer, options: { retries?: number } = {}) {
  const recordingFetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const response = await fetch(request);
    const url = new URL(request.url);
    const text = await response.clone().text();
    recorded.push({
      method: request.method,
      path: url.pathname + url.search,
      status: response.status,
      contentType: response.headers.get('content-type'),
      body: text ? JSON.parse(text) : undefined,
    });
    return response;
  };
  return createRoster({
    baseUrl: server.url,
    secretKey: server.secretKey,
    fetch: recordingFetch,
    retries: options.retries ?? 0,
  });
}
