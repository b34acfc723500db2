import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRoster } from '@roster/sdk';
import { type ChildServer, freshDatabase, startRoster } from '../server/bench/lib.js';
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

/** Whether the tests run against PostgreSQL (DATABASE_URL) rather than the embedded database. */
export const POSTGRES = Boolean(process.env.DATABASE_URL);

/** Built server processes sharing one database, as replicas behind a load balancer run. */
export interface Cluster {
  processes: ChildServer[];
  secretKey: string;
  env: Record<string, string>;
  drop: () => Promise<void>;
}

/**
 * Three server processes on a fresh PostgreSQL database, or one on a fresh embedded database (which
 * serves one process); `env` is added to each process's environment.
 */
export async function startCluster(name: string, env: Record<string, string>): Promise<Cluster> {
  const secretKey = `rst_sk_${name}_${randomBytes(24).toString('hex')}`;
  if (POSTGRES) {
    const database = await freshDatabase(process.env.DATABASE_URL!);
    const all = { ...env, ...database.env, ROSTER_SECRET_KEY: secretKey };
    const processes = await Promise.all([startRoster(all), startRoster(all), startRoster(all)]);
    return { processes, secretKey, env: all, drop: database.drop };
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), `roster-${name}-`));
  const all = { ...env, ROSTER_DATA_DIR: dataDir, ROSTER_SECRET_KEY: secretKey };
  return {
    processes: [await startRoster(all)],
    secretKey,
    env: all,
    drop: async () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

export async function stopCluster(cluster: Cluster | undefined): Promise<void> {
  for (const p of cluster?.processes ?? []) await p.stop().catch(() => {});
  await cluster?.drop();
}

/** An organization with one SCIM connection, made through the first process of a cluster. */
export async function scimConnection(cluster: Cluster, name: string, provider: 'okta' | 'entra') {
  const admin = createRoster({ baseUrl: cluster.processes[0]!.url, secretKey: cluster.secretKey });
  const org = await admin.organizations.create({ name });
  const connection = await admin.connections.create({ organizationId: org.id, name: provider, provider });
  return { org, base: new URL(connection.scim.base_url).pathname, token: connection.scim.token };
}

/**
 * One SCIM request to one server process. Rejects when the connection breaks (a killed process):
 * the caller decides whether that outcome is in doubt or worth a retry elsewhere.
 */
export async function scimSend(
  serverUrl: string,
  scim: { base: string; token: string },
  method: string,
  route: string,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: SCIM bodies are read field by field in the tests
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${serverUrl}${scim.base}${route}`, {
    method,
    headers: { authorization: `Bearer ${scim.token}`, 'content-type': 'application/scim+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}
