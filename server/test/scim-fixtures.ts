import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { ID_PREFIXES } from '../src/ids.js';
import type { TestResponse } from './harness.js';

/**
 * Golden SCIM exchanges: the exact request and response, as Okta and Entra parse them, kept as JSON
 * under test/__fixtures__/scim/. A refactoring that changes a status, a header, a key, the key
 * order or a value changes the file, and the test fails with a readable diff.
 *
 * Regenerate after an intended change with
 *   UPDATE_FIXTURES=1 npx vitest run test/scim-golden.test.ts
 * then read the diff (`git diff test/__fixtures__`) before committing it; without the variable the
 * test only compares.
 */

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '__fixtures__', 'scim');

export interface Exchange {
  request: { method: string; path: string; headers?: Record<string, string>; body?: unknown };
  response: TestResponse;
}

/** Response headers an IdP reads; any other header is left out of the fixture. */
const KEPT_HEADERS = ['content-type', 'location', 'etag', 'retry-after', 'www-authenticate'];

const ID = new RegExp(`\\b(${Object.values(ID_PREFIXES).join('|')})_[0-9a-z]{26}\\b`, 'g');
const TIMESTAMP = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z\b/g;

/**
 * What differs from run to run, replaced by placeholders; everything else is kept verbatim:
 * - the server's origin (`http://127.0.0.1:<random port>`) becomes `<origin>`;
 * - each id (`user_…`, `grp_…`, `conn_…`: every prefix of src/ids.ts) becomes `<user-1>`,
 *   `<grp-2>`…, numbered by first appearance within the exchange (request first), so the same id
 *   keeps the same placeholder in the path, the body and the Location header;
 * - ISO-8601 timestamps become `<timestamp>`.
 * ETags (`W/"<version>"`) are kept: versions count changes and are the same on every run, and so is
 * `Retry-After` in the one rate-limit fixture (a bucket of one request per second answers 1).
 */
export function normaliseExchange(exchange: Exchange, origin: string): unknown {
  const labels = new Map<string, string>();
  const perPrefix = new Map<string, number>();
  const text = (value: string) =>
    value
      .split(origin)
      .join('<origin>')
      .replace(ID, (id, prefix: string) => {
        let label = labels.get(id);
        if (!label) {
          const n = (perPrefix.get(prefix) ?? 0) + 1;
          perPrefix.set(prefix, n);
          label = `<${prefix}-${n}>`;
          labels.set(id, label);
        }
        return label;
      })
      .replace(TIMESTAMP, '<timestamp>');
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return text(value);
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [text(k), walk(v)]));
    }
    return value;
  };
  const { request, response } = exchange;
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = response.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  return walk({
    request,
    response: {
      status: response.status,
      headers,
      ...(response.body !== undefined
        ? { body: response.body }
        : response.text
          ? { text: response.text }
          : {}),
    },
  });
}

/** Compares the normalised exchange with its fixture file, or rewrites the file under UPDATE_FIXTURES=1. */
export function expectFixture(name: string, exchange: Exchange, origin: string): void {
  const file = join(FIXTURE_DIR, `${name}.json`);
  const actual = `${JSON.stringify(normaliseExchange(exchange, origin), null, 2)}\n`;
  if (process.env.UPDATE_FIXTURES === '1') {
    mkdirSync(FIXTURE_DIR, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  expect(existsSync(file), `${file} is missing: run with UPDATE_FIXTURES=1 to create it`).toBe(true);
  const expected = readFileSync(file, 'utf8');
  const message = `${name}: response differs from ${file} (UPDATE_FIXTURES=1 rewrites it)`;
  // Parsed first for a readable diff, then as text: key order is part of what an IdP sees.
  expect(JSON.parse(actual), message).toEqual(JSON.parse(expected));
  expect(actual, `${message}: key order`).toBe(expected);
}
