import createClient from 'openapi-fetch';
import type { paths } from './contract.js';
import { type EventsResource, eventsResource } from './events.js';
import { type ApiKeysResource, apiKeysResource } from './resources/api-keys.js';
import { type ConnectionsResource, connectionsResource } from './resources/connections.js';
import { type GroupsResource, groupsResource } from './resources/groups.js';
import { type OrganizationsResource, organizationsResource } from './resources/organizations.js';
import { type RolesResource, rolesResource } from './resources/roles.js';
import { type SessionsResource, sessionsResource } from './resources/sessions.js';
import { type SigningKeysResource, signingKeysResource } from './resources/signing-keys.js';
import { type UsersResource, usersResource } from './resources/users.js';
import { type WebhooksResource, webhooksResource } from './resources/webhooks.js';
import { type RetryOptions, retryingFetch } from './transport.js';

export type { CallOptions, ListParams, RequestOptions } from './request.js';

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

/**
 * The client created by {@link createRoster}: one property per resource (each in its own file
 * under `src/resources/`). Every method takes its parameters, then optional per-call options
 * (`signal`, `timeoutMs`, and `idempotencyKey` on methods that create or change something by POST).
 */
export interface Roster {
  organizations: OrganizationsResource;
  roles: RolesResource;
  connections: ConnectionsResource;
  users: UsersResource;
  groups: GroupsResource;
  events: EventsResource;
  webhooks: WebhooksResource;
  sessions: SessionsResource;
  signingKeys: SigningKeysResource;
  apiKeys: ApiKeysResource;
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
export function createRoster(options: RosterOptions): Roster {
  if (!options.baseUrl)
    throw new TypeError('createRoster: baseUrl is required, e.g. "http://127.0.0.1:3000"');
  if (!options.secretKey)
    throw new TypeError('createRoster: secretKey is required (the Roster management key, rst_sk_…)');
  const retry = typeof options.retries === 'number' ? { retries: options.retries } : options.retries;
  const baseFetch = options.fetch ?? globalThis.fetch;
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    fetch: retryingFetch((input, init) => baseFetch(input, init), retry),
    headers: { Authorization: `Bearer ${options.secretKey}`, 'User-Agent': 'roster-sdk' },
  });
  const connections = connectionsResource(client);
  return {
    organizations: organizationsResource(client, connections),
    roles: rolesResource(client),
    connections,
    users: usersResource(client),
    groups: groupsResource(client),
    events: eventsResource(client),
    webhooks: webhooksResource(client),
    sessions: sessionsResource(client),
    signingKeys: signingKeysResource(client),
    apiKeys: apiKeysResource(client),
  };
}
