import type { Kysely } from 'kysely';
import { expect } from 'vitest';
import type { DB } from '../src/db/schema.js';
import { readResponse, type TestResponse, type TestServer } from './harness.js';

export interface TestConnection {
  organizationId: string;
  connectionId: string;
  token: string;
  /** Path prefix of the connection's SCIM base, relative to the server URL. */
  base: string;
  scim: ScimClient;
}

export type ScimClient = (
  method: string,
  path: string,
  options?: { body?: unknown; token?: string | null; headers?: Record<string, string> },
) => Promise<TestResponse>;

export const SCIM_JSON = 'application/scim+json; charset=utf-8';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** Creates an organization and a connection, and a SCIM client that speaks like an IdP. */
export async function createConnection(
  server: TestServer,
  provider = 'generic',
  organizationId?: string,
): Promise<TestConnection> {
  const orgId =
    organizationId ??
    (
      await server.api('POST', '/v1/organizations', {
        body: { name: `Org ${Math.random().toString(36).slice(2)}` },
      })
    ).body.id;
  const created = await server.api('POST', `/v1/organizations/${orgId}/connections`, {
    body: { name: `${provider} connection`, provider },
  });
  expect(created.status).toBe(201);
  const base = new URL(created.body.scim.base_url).pathname;
  const token: string = created.body.scim.token;
  const scim: ScimClient = async (method, path, options = {}) => {
    const headers: Record<string, string> = { accept: 'application/scim+json', ...options.headers };
    const bearer = options.token === undefined ? token : options.token;
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] ??= SCIM_JSON;
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    }
    return readResponse(await server.fetch(`${base}${path}`, { method, headers, body }));
  };
  return { organizationId: orgId, connectionId: created.body.id, token, base, scim };
}

export function patchOp(...operations: unknown[]) {
  return { schemas: [PATCH_OP], Operations: operations };
}

/** Asserts a SCIM Error body (RFC 7644 §3.12) with the SCIM media type. */
export function expectScimError(response: TestResponse, status: number, scimType?: string): void {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/scim\+json/);
  expect(response.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
  expect(response.body.status).toBe(String(status));
  expect(typeof response.body.detail).toBe('string');
  if (scimType) expect(response.body.scimType).toBe(scimType);
  else expect(response.body.scimType).toBeUndefined();
}

export function userBody(userName: string, extra: Record<string, unknown> = {}) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName,
    name: { givenName: 'Test', familyName: 'User' },
    emails: [{ primary: true, value: userName, type: 'work' }],
    active: true,
    ...extra,
  };
}

export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** The headers of Okta's SCIM client (docs/idp-behaviour.md#okta). */
export const OKTA_HEADERS = {
  accept: 'application/scim+json',
  'accept-charset': 'utf-8',
  'user-agent': 'Okta SCIM Client 1.0.0',
};

// Okta SCIM 2.0 reference, "Create the user" request body.
export const oktaCreateBody = (userName: string, externalId: string) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName,
  name: { givenName: 'Test', familyName: 'User' },
  emails: [{ primary: true, value: userName, type: 'work' }],
  displayName: 'Test User',
  locale: 'en-US',
  externalId,
  groups: [],
  password: '1mz050nq',
  active: true,
});

// Entra's Learn tutorial "Create User" body (client meta, empty roles, enterprise URN without attributes).
export const entraUser = (userName: string, externalId: string) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
  externalId,
  userName,
  active: true,
  emails: [{ primary: true, type: 'work', value: `${userName}@testuser.com` }],
  meta: { resourceType: 'User' },
  name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
  roles: [],
});

/** The member count a group's row holds (kept by every member write, checked against its members). */
export async function memberCount(db: Kysely<DB>, groupId: string): Promise<number> {
  const row = await db
    .selectFrom('groups')
    .select('member_count')
    .where('id', '=', groupId)
    .executeTakeFirstOrThrow();
  return row.member_count;
}

/** An organization's events in feed order, of the given types only if any are given. */
export function eventsOf(db: Kysely<DB>, organizationId: string, types?: readonly string[]) {
  return db
    .selectFrom('events')
    .select(['type', 'data'])
    .where('organization_id', '=', organizationId)
    .$if(types !== undefined, (qb) => qb.where('type', 'in', types!))
    .orderBy('seq')
    .execute();
}
