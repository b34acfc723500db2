import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './contract.js';
import { errorFromResponse } from './errors.js';
import { eventsResource } from './events.js';
import { type Page, PagePromise } from './pagination.js';
import { type RetryOptions, retryingFetch } from './transport.js';

type Schemas = components['schemas'];

export interface RosterOptions {
  /** Where the Roster server is, e.g. `https://roster.internal.example.com`. */
  baseUrl: string;
  /** The management secret key (`rst_sk_…`) or a scoped API key (`rst_ak_…`). Keep it on your servers. */
  secretKey: string;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /**
   * Retries of 429/503 answers and network failures, for requests safe to repeat (GET, PUT,
   * DELETE, and POSTs given an `idempotencyKey`). A number is the retry count; default 2.
   */
  retries?: number | RetryOptions;
}

/** Per-call options. */
export interface RequestOptions {
  /** Makes a POST safe to retry: the server runs it once per key (24 h). */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** Page size and cursor of a list call. */
export interface ListParams {
  limit?: number;
  after?: string;
}

/** The result of an openapi-fetch call: the data, or a RosterError. */
async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  throw errorFromResponse(response, error);
}

async function unwrapEmpty(call: Promise<{ error?: unknown; response: Response }>): Promise<void> {
  const { error, response } = await call;
  if (!response.ok) throw errorFromResponse(response, error);
}

function headers(options: RequestOptions | undefined): Record<string, string> {
  return options?.idempotencyKey ? { 'Idempotency-Key': options.idempotencyKey } : {};
}

function list<T>(fetchPage: (after: string | undefined) => Promise<Page<T>>, after?: string): PagePromise<T> {
  return new PagePromise(fetchPage, after);
}

/**
 * Creates a client of the Roster management API. Everything is typed from openapi/roster.yaml;
 * resources are returned as the API spells them (snake_case); list methods return a
 * {@link PagePromise} (await one page, or `for await` every item); failures throw a
 * {@link RosterError}.
 *
 * @example
 * ```ts
 * import { createRoster } from '@roster/sdk';
 *
 * const roster = createRoster({ baseUrl: 'http://127.0.0.1:3000', secretKey: process.env.ROSTER_SECRET_KEY! });
 * const org = await roster.organizations.create({ name: 'Acme Corp' });
 * for await (const member of roster.organizations.listMembers({ organizationId: org.id })) {
 *   console.log(member.user.email, member.role, member.permissions);
 * }
 * ```
 */
export function createRoster(options: RosterOptions) {
  if (!options.baseUrl)
    throw new TypeError('createRoster: baseUrl is required, e.g. "http://127.0.0.1:3000"');
  if (!options.secretKey)
    throw new TypeError('createRoster: secretKey is required (the Roster management key, rst_sk_…)');
  const retry = typeof options.retries === 'number' ? { retries: options.retries } : options.retries;
  const baseFetch = options.fetch ?? globalThis.fetch;
  const client: Client<paths> = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    fetch: retryingFetch((input, init) => baseFetch(input, init), retry),
    headers: { Authorization: `Bearer ${options.secretKey}`, 'User-Agent': 'roster-sdk' },
  });

  const organizations = {
    create: (body: Schemas['OrganizationCreate'], opts?: RequestOptions) =>
      unwrap(client.POST('/v1/organizations', { body, headers: headers(opts), signal: opts?.signal })),
    list: (params: ListParams = {}) =>
      list<Schemas['Organization']>(
        (after) =>
          unwrap(client.GET('/v1/organizations', { params: { query: { limit: params.limit, after } } })),
        params.after,
      ),
    get: ({ organizationId }: { organizationId: string }) =>
      unwrap(
        client.GET('/v1/organizations/{organization_id}', {
          params: { path: { organization_id: organizationId } },
        }),
      ),
    update: ({ organizationId, ...body }: { organizationId: string } & Schemas['OrganizationUpdate']) =>
      unwrap(
        client.PATCH('/v1/organizations/{organization_id}', {
          params: { path: { organization_id: organizationId } },
          body,
        }),
      ),
    delete: ({ organizationId }: { organizationId: string }) =>
      unwrapEmpty(
        client.DELETE('/v1/organizations/{organization_id}', {
          params: { path: { organization_id: organizationId } },
        }),
      ),
    /** Members with their role and permissions, filtered by status, role, or a name/email prefix. */
    listMembers: ({
      organizationId,
      ...query
    }: {
      organizationId: string;
      status?: Schemas['MembershipStatus'];
      role?: string;
      query?: string;
    } & ListParams) =>
      list<Schemas['Membership']>(
        (after) =>
          unwrap(
            client.GET('/v1/organizations/{organization_id}/memberships', {
              params: {
                path: { organization_id: organizationId },
                query: {
                  limit: query.limit,
                  after,
                  status: query.status,
                  role: query.role,
                  query: query.query,
                },
              },
            }),
          ),
        query.after,
      ),
    getMember: ({ organizationId, membershipId }: { organizationId: string; membershipId: string }) =>
      unwrap(
        client.GET('/v1/organizations/{organization_id}/memberships/{membership_id}', {
          params: { path: { organization_id: organizationId, membership_id: membershipId } },
        }),
      ),
    /** Adds a member who does not come from an IdP (`source: "api"`). */
    addMember: (
      { organizationId, ...body }: { organizationId: string } & Schemas['MembershipCreate'],
      opts?: RequestOptions,
    ) =>
      unwrap(
        client.POST('/v1/organizations/{organization_id}/memberships', {
          params: { path: { organization_id: organizationId } },
          body,
          headers: headers(opts),
          signal: opts?.signal,
        }),
      ),
    /** Pins a role (`role: 'admin'`), or unpins it (`role: null`) so IdP groups decide again. */
    updateMember: ({
      organizationId,
      membershipId,
      role,
    }: { organizationId: string; membershipId: string } & Schemas['MembershipUpdate']) =>
      unwrap(
        client.PATCH('/v1/organizations/{organization_id}/memberships/{membership_id}', {
          params: { path: { organization_id: organizationId, membership_id: membershipId } },
          body: { role },
        }),
      ),
    removeMember: ({ organizationId, membershipId }: { organizationId: string; membershipId: string }) =>
      unwrapEmpty(
        client.DELETE('/v1/organizations/{organization_id}/memberships/{membership_id}', {
          params: { path: { organization_id: organizationId, membership_id: membershipId } },
        }),
      ),
    /** Why a member has their role: the mapped group, the default role, or a pinned role. */
    explainMember: ({ membershipId }: { membershipId: string }) =>
      unwrap(
        client.GET('/v1/memberships/{membership_id}/explain', {
          params: { path: { membership_id: membershipId } },
        }),
      ),
    /** What an update would do to members' roles (a new default role), without changing anything. */
    previewUpdate: ({
      organizationId,
      ...body
    }: { organizationId: string } & Schemas['OrganizationUpdate']) =>
      unwrap(
        client.POST('/v1/organizations/{organization_id}/preview', {
          params: { path: { organization_id: organizationId } },
          body,
        }),
      ),
    /**
     * The members as they were at an events cursor (`asOf`; the head when omitted), with a digest
     * (see {@link snapshotDigest}); `members: false` answers the count and digest only.
     */
    snapshot: ({
      organizationId,
      asOf,
      members,
    }: {
      organizationId: string;
      asOf?: string;
      members?: boolean;
    }) =>
      unwrap(
        client.GET('/v1/organizations/{organization_id}/snapshot', {
          params: {
            path: { organization_id: organizationId },
            query: { as_of: asOf, members: members === undefined ? undefined : members ? 'true' : 'false' },
          },
        }),
      ),
    /** The net member changes between two events cursors (`to`: the head when omitted), each with its event. */
    diff: ({ organizationId, from, to }: { organizationId: string; from: string; to?: string }) =>
      unwrap(
        client.GET('/v1/organizations/{organization_id}/diff', {
          params: { path: { organization_id: organizationId }, query: { from, to } },
        }),
      ),
    /**
     * A one-time link to the Admin Portal for this organization's IT admin (connect their IdP, map
     * groups to roles, watch the sync). Redirect the admin to `url` at once: it works once and
     * expires 5 minutes after creation.
     */
    createPortalLink: (
      { organizationId, ...body }: { organizationId: string } & Schemas['PortalLinkCreate'],
      opts?: RequestOptions,
    ) =>
      unwrap(
        client.POST('/v1/organizations/{organization_id}/portal_links', {
          params: { path: { organization_id: organizationId } },
          body,
          headers: headers(opts),
          signal: opts?.signal,
        }),
      ),
    listConnections: ({ organizationId, ...params }: { organizationId: string } & ListParams) =>
      list<Schemas['Connection']>(
        (after) =>
          unwrap(
            client.GET('/v1/organizations/{organization_id}/connections', {
              params: { path: { organization_id: organizationId }, query: { limit: params.limit, after } },
            }),
          ),
        params.after,
      ),
  };

  const roles = {
    list: (params: ListParams = {}) =>
      list<Schemas['Role']>(
        (after) => unwrap(client.GET('/v1/roles', { params: { query: { limit: params.limit, after } } })),
        params.after,
      ),
    get: ({ key }: { key: string }) =>
      unwrap(client.GET('/v1/roles/{role_key}', { params: { path: { role_key: key } } })),
    create: (body: Schemas['RoleCreate'], opts?: RequestOptions) =>
      unwrap(client.POST('/v1/roles', { body, headers: headers(opts), signal: opts?.signal })),
    update: ({ key, ...body }: { key: string } & Schemas['RoleUpdate']) =>
      unwrap(client.PATCH('/v1/roles/{role_key}', { params: { path: { role_key: key } }, body })),
    delete: ({ key }: { key: string }) =>
      unwrapEmpty(client.DELETE('/v1/roles/{role_key}', { params: { path: { role_key: key } } })),
  };

  const connections = {
    /** Creates a SCIM connection; the returned `scim.token` is shown only here. */
    create: (
      { organizationId, ...body }: { organizationId: string } & Schemas['ConnectionCreate'],
      opts?: RequestOptions,
    ) =>
      unwrap(
        client.POST('/v1/organizations/{organization_id}/connections', {
          params: { path: { organization_id: organizationId } },
          body,
          headers: headers(opts),
          signal: opts?.signal,
        }),
      ),
    list: (params: ListParams & { organizationId?: string } = {}) =>
      params.organizationId
        ? organizations.listConnections({ ...params, organizationId: params.organizationId })
        : list<Schemas['Connection']>(
            (after) =>
              unwrap(client.GET('/v1/connections', { params: { query: { limit: params.limit, after } } })),
            params.after,
          ),
    get: ({ connectionId }: { connectionId: string }) =>
      unwrap(
        client.GET('/v1/connections/{connection_id}', { params: { path: { connection_id: connectionId } } }),
      ),
    update: ({ connectionId, ...body }: { connectionId: string } & Schemas['ConnectionUpdate']) =>
      unwrap(
        client.PATCH('/v1/connections/{connection_id}', {
          params: { path: { connection_id: connectionId } },
          body,
        }),
      ),
    /** Deletes a connection: its users are deactivated and their sessions revoked. */
    delete: ({ connectionId }: { connectionId: string }) =>
      unwrapEmpty(
        client.DELETE('/v1/connections/{connection_id}', {
          params: { path: { connection_id: connectionId } },
        }),
      ),
    /** Issues a new SCIM token; previous tokens work for a grace period (0 ends them now). */
    rotateToken: (
      {
        connectionId,
        previousTokenGraceSeconds,
      }: { connectionId: string; previousTokenGraceSeconds?: number },
      opts?: RequestOptions,
    ) =>
      unwrap(
        client.POST('/v1/connections/{connection_id}/scim_tokens', {
          params: { path: { connection_id: connectionId } },
          body:
            previousTokenGraceSeconds === undefined
              ? {}
              : { previous_token_grace_seconds: previousTokenGraceSeconds },
          headers: headers(opts),
          signal: opts?.signal,
        }),
      ),
    getRoleMappings: ({ connectionId }: { connectionId: string }) =>
      unwrap(
        client.GET('/v1/connections/{connection_id}/role_mappings', {
          params: { path: { connection_id: connectionId } },
        }),
      ),
    /** Replaces the ordered IdP group -> role mappings (first match wins); roles are recomputed. */
    setRoleMappings: ({ connectionId, mappings }: { connectionId: string } & Schemas['RoleMappingsUpdate']) =>
      unwrap(
        client.PUT('/v1/connections/{connection_id}/role_mappings', {
          params: { path: { connection_id: connectionId } },
          body: { mappings },
        }),
      ),
    /** Who would change role, from what to what and why, under these mappings; changes nothing. */
    previewRoleMappings: ({
      connectionId,
      mappings,
    }: { connectionId: string } & Schemas['RoleMappingsUpdate']) =>
      unwrap(
        client.POST('/v1/connections/{connection_id}/role_mappings/preview', {
          params: { path: { connection_id: connectionId } },
          body: { mappings },
        }),
      ),
    /**
     * Releases a held deprovisioning guard: the IdP's retries go through. With `window` (e.g. `"2h"`)
     * every deprovision passes for that long; without, the count restarts now.
     */
    releaseDeprovisionGuard: ({ connectionId, window }: { connectionId: string; window?: string }) =>
      unwrap(
        client.POST('/v1/connections/{connection_id}/deprovision_guard/release', {
          params: { path: { connection_id: connectionId } },
          body: window === undefined ? {} : { window },
        }),
      ),
    getAttributeMappings: ({ connectionId }: { connectionId: string }) =>
      unwrap(
        client.GET('/v1/connections/{connection_id}/attribute_mappings', {
          params: { path: { connection_id: connectionId } },
        }),
      ),
    setAttributeMappings: ({
      connectionId,
      mappings,
    }: { connectionId: string } & Schemas['AttributeMappingsUpdate']) =>
      unwrap(
        client.PUT('/v1/connections/{connection_id}/attribute_mappings', {
          params: { path: { connection_id: connectionId } },
          body: { mappings },
        }),
      ),
    /** Whose metadata would change, from what to what, under these mappings; changes nothing. */
    previewAttributeMappings: ({
      connectionId,
      mappings,
    }: { connectionId: string } & Schemas['AttributeMappingsUpdate']) =>
      unwrap(
        client.POST('/v1/connections/{connection_id}/attribute_mappings/preview', {
          params: { path: { connection_id: connectionId } },
          body: { mappings },
        }),
      ),
    /** Sync health: last request, volumes and error rates, recent failures. */
    sync: ({ connectionId, failures }: { connectionId: string; failures?: number }) =>
      unwrap(
        client.GET('/v1/connections/{connection_id}/sync', {
          params: { path: { connection_id: connectionId }, query: { failures } },
        }),
      ),
  };

  const users = {
    list: (
      params: ListParams & {
        organizationId?: string;
        connectionId?: string;
        email?: string;
        userName?: string;
        active?: boolean;
      } = {},
    ) =>
      list<Schemas['User']>(
        (after) =>
          unwrap(
            client.GET('/v1/users', {
              params: {
                query: {
                  limit: params.limit,
                  after,
                  organization_id: params.organizationId,
                  connection_id: params.connectionId,
                  email: params.email,
                  user_name: params.userName,
                  active: params.active,
                },
              },
            }),
          ),
        params.after,
      ),
    get: ({ userId }: { userId: string }) =>
      unwrap(client.GET('/v1/users/{user_id}', { params: { path: { user_id: userId } } })),
  };

  const groups = {
    list: (params: ListParams & { organizationId?: string; connectionId?: string } = {}) =>
      list<Schemas['Group']>(
        (after) =>
          unwrap(
            client.GET('/v1/groups', {
              params: {
                query: {
                  limit: params.limit,
                  after,
                  organization_id: params.organizationId,
                  connection_id: params.connectionId,
                },
              },
            }),
          ),
        params.after,
      ),
    get: ({ groupId }: { groupId: string }) =>
      unwrap(client.GET('/v1/groups/{group_id}', { params: { path: { group_id: groupId } } })),
    listMembers: ({ groupId, ...params }: { groupId: string } & ListParams) =>
      list<Schemas['User']>(
        (after) =>
          unwrap(
            client.GET('/v1/groups/{group_id}/members', {
              params: { path: { group_id: groupId }, query: { limit: params.limit, after } },
            }),
          ),
        params.after,
      ),
  };

  const webhooks = {
    /** Creates an endpoint receiving events from now on; `secret` is returned only here. */
    create: (body: Schemas['WebhookEndpointCreate'], opts?: RequestOptions) =>
      unwrap(client.POST('/v1/webhook_endpoints', { body, headers: headers(opts), signal: opts?.signal })),
    list: (params: ListParams = {}) =>
      list<Schemas['WebhookEndpoint']>(
        (after) =>
          unwrap(client.GET('/v1/webhook_endpoints', { params: { query: { limit: params.limit, after } } })),
        params.after,
      ),
    get: ({ endpointId }: { endpointId: string }) =>
      unwrap(
        client.GET('/v1/webhook_endpoints/{webhook_endpoint_id}', {
          params: { path: { webhook_endpoint_id: endpointId } },
        }),
      ),
    update: ({ endpointId, ...body }: { endpointId: string } & Schemas['WebhookEndpointUpdate']) =>
      unwrap(
        client.PATCH('/v1/webhook_endpoints/{webhook_endpoint_id}', {
          params: { path: { webhook_endpoint_id: endpointId } },
          body,
        }),
      ),
    delete: ({ endpointId }: { endpointId: string }) =>
      unwrapEmpty(
        client.DELETE('/v1/webhook_endpoints/{webhook_endpoint_id}', {
          params: { path: { webhook_endpoint_id: endpointId } },
        }),
      ),
    /** Delivery attempts, newest first. */
    listDeliveries: ({ endpointId, ...params }: { endpointId: string } & ListParams) =>
      list<Schemas['WebhookDelivery']>(
        (after) =>
          unwrap(
            client.GET('/v1/webhook_endpoints/{webhook_endpoint_id}/deliveries', {
              params: { path: { webhook_endpoint_id: endpointId }, query: { limit: params.limit, after } },
            }),
          ),
        params.after,
      ),
  };

  const sessions = {
    /**
     * Signs a member in (after your app authenticated them): the session, its first token and its
     * refresh token (shown only here). Store both in HttpOnly cookies (`setSessionCookies` of
     * `@roster/sdk/express`).
     */
    create: (body: Schemas['SessionCreate'], opts?: RequestOptions) =>
      unwrap(client.POST('/v1/sessions', { body, headers: headers(opts), signal: opts?.signal })),
    /**
     * A new token and refresh token for a refresh token (spent by this call). Needs no secret key:
     * the middleware calls it by itself when a cookie token expires.
     */
    refresh: (body: Schemas['SessionRefresh'], opts?: { signal?: AbortSignal }) =>
      unwrap(client.POST('/v1/sessions/refresh', { body, signal: opts?.signal })),
    get: ({ sessionId }: { sessionId: string }) =>
      unwrap(client.GET('/v1/sessions/{session_id}', { params: { path: { session_id: sessionId } } })),
    /** Sign-out: the refresh token stops working at once. */
    revoke: ({ sessionId }: { sessionId: string }) =>
      unwrap(
        client.POST('/v1/sessions/{session_id}/revoke', { params: { path: { session_id: sessionId } } }),
      ),
    /** A user's sessions, oldest first; `status` filters. */
    listForUser: ({
      userId,
      ...params
    }: { userId: string; status?: Schemas['SessionStatus'] } & ListParams) =>
      list<Schemas['Session']>(
        (after) =>
          unwrap(
            client.GET('/v1/users/{user_id}/sessions', {
              params: {
                path: { user_id: userId },
                query: { limit: params.limit, after, status: params.status },
              },
            }),
          ),
        params.after,
      ),
    /** Revokes every live session of a user ("sign out everywhere"). */
    revokeAllForUser: ({ userId }: { userId: string }) =>
      unwrap(
        client.POST('/v1/users/{user_id}/sessions/revoke_all', { params: { path: { user_id: userId } } }),
      ),
  };

  const signingKeys = {
    /** The keys in the JWKS, with their state (`next`, `active`, `retiring`). */
    list: () => unwrap(client.GET('/v1/signing_keys')),
    /** The pre-published next key starts signing; see the API reference for `revoke_previous`. */
    rotate: (body: Schemas['SigningKeyRotate'] = {}) =>
      unwrap(client.POST('/v1/signing_keys/rotate', { body })),
  };

  const apiKeys = {
    /**
     * Creates a scoped API key (root key or `api_keys:write` scope); `key` is returned only here.
     * Pass it as `secretKey` to another client.
     */
    create: (body: Schemas['ApiKeyCreate'], opts?: RequestOptions) =>
      unwrap(client.POST('/v1/api_keys', { body, headers: headers(opts), signal: opts?.signal })),
    /** Live API keys (never their secrets), oldest first. */
    list: (params: ListParams = {}) =>
      list<Schemas['ApiKey']>(
        (after) => unwrap(client.GET('/v1/api_keys', { params: { query: { limit: params.limit, after } } })),
        params.after,
      ),
    /** Revokes a key: it stops working at once. */
    delete: ({ apiKeyId }: { apiKeyId: string }) =>
      unwrapEmpty(client.DELETE('/v1/api_keys/{api_key_id}', { params: { path: { api_key_id: apiKeyId } } })),
  };

  return {
    organizations,
    roles,
    connections,
    users,
    groups,
    events: eventsResource(client),
    webhooks,
    sessions,
    signingKeys,
    apiKeys,
  };
}

/** The client created by {@link createRoster}. */
export type Roster = ReturnType<typeof createRoster>;
