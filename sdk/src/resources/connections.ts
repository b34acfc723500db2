import type { PagePromise } from '../pagination.js';
import {
  type ApiClient,
  type CallOptions,
  callInit,
  type ListParams,
  paged,
  type RequestOptions,
  type Schemas,
  unwrap,
  unwrapEmpty,
} from '../request.js';

export interface ConnectionParams {
  connectionId: string;
}

export type CreateConnectionParams = { organizationId: string } & Schemas['ConnectionCreate'];
export type UpdateConnectionParams = ConnectionParams & Schemas['ConnectionUpdate'];
export type ListConnectionsParams = ListParams & { organizationId?: string };
export type RoleMappingsParams = ConnectionParams & Schemas['RoleMappingsUpdate'];
export type AttributeMappingsParams = ConnectionParams & Schemas['AttributeMappingsUpdate'];

export interface RotateTokenParams extends ConnectionParams {
  /** How long the previous tokens keep working; 0 ends them now. */
  previousTokenGraceSeconds?: number;
}

export interface ReleaseDeprovisionGuardParams extends ConnectionParams {
  /** e.g. `"2h"`: every deprovision passes for that long; without, the count restarts now. */
  window?: string;
}

export interface SyncParams extends ConnectionParams {
  /** How many recent failures to include. */
  failures?: number;
}

export interface ConnectionsResource {
  /** Creates a SCIM connection; the returned `scim.token` is shown only here. */
  create(params: CreateConnectionParams, options?: RequestOptions): Promise<Schemas['ConnectionWithToken']>;
  list(params?: ListConnectionsParams, options?: CallOptions): PagePromise<Schemas['Connection']>;
  get(params: ConnectionParams, options?: CallOptions): Promise<Schemas['Connection']>;
  update(params: UpdateConnectionParams, options?: CallOptions): Promise<Schemas['Connection']>;
  /** Deletes a connection: its users are deactivated and their sessions revoked. */
  delete(params: ConnectionParams, options?: CallOptions): Promise<void>;
  /** Issues a new SCIM token; previous tokens work for a grace period (0 ends them now). */
  rotateToken(params: RotateTokenParams, options?: RequestOptions): Promise<Schemas['ScimTokenRotation']>;
  getRoleMappings(params: ConnectionParams, options?: CallOptions): Promise<Schemas['RoleMappings']>;
  /** Replaces the ordered IdP group -> role mappings (first match wins); roles are recomputed. */
  setRoleMappings(params: RoleMappingsParams, options?: CallOptions): Promise<Schemas['RoleMappings']>;
  /** Who would change role, from what to what and why, under these mappings; changes nothing. */
  previewRoleMappings(
    params: RoleMappingsParams,
    options?: RequestOptions,
  ): Promise<Schemas['ChangePreview']>;
  /**
   * Releases a held deprovisioning guard: the IdP's retries go through. With `window` (e.g. `"2h"`)
   * every deprovision passes for that long; without, the count restarts now.
   */
  releaseDeprovisionGuard(
    params: ReleaseDeprovisionGuardParams,
    options?: RequestOptions,
  ): Promise<Schemas['Connection']>;
  getAttributeMappings(
    params: ConnectionParams,
    options?: CallOptions,
  ): Promise<Schemas['AttributeMappings']>;
  setAttributeMappings(
    params: AttributeMappingsParams,
    options?: CallOptions,
  ): Promise<Schemas['AttributeMappings']>;
  /** Whose metadata would change, from what to what, under these mappings; changes nothing. */
  previewAttributeMappings(
    params: AttributeMappingsParams,
    options?: RequestOptions,
  ): Promise<Schemas['ChangePreview']>;
  /** Sync health: last request, volumes and error rates, recent failures. */
  sync(params: SyncParams, options?: CallOptions): Promise<Schemas['SyncHealth']>;
}

export function connectionsResource(client: ApiClient): ConnectionsResource {
  const path = (connectionId: string) => ({ path: { connection_id: connectionId } });
  return {
    create: ({ organizationId, ...body }, options) =>
      unwrap(
        client.POST('/v1/organizations/{organization_id}/connections', {
          params: { path: { organization_id: organizationId } },
          body,
          ...callInit(options),
        }),
      ),
    list: ({ organizationId, ...page } = {}, options) =>
      organizationId
        ? paged(page, options, (query, init) =>
            client.GET('/v1/organizations/{organization_id}/connections', {
              params: { path: { organization_id: organizationId }, query },
              ...init,
            }),
          )
        : paged(page, options, (query, init) =>
            client.GET('/v1/connections', { params: { query }, ...init }),
          ),
    get: ({ connectionId }, options) =>
      unwrap(
        client.GET('/v1/connections/{connection_id}', { params: path(connectionId), ...callInit(options) }),
      ),
    update: ({ connectionId, ...body }, options) =>
      unwrap(
        client.PATCH('/v1/connections/{connection_id}', {
          params: path(connectionId),
          body,
          ...callInit(options),
        }),
      ),
    delete: ({ connectionId }, options) =>
      unwrapEmpty(
        client.DELETE('/v1/connections/{connection_id}', {
          params: path(connectionId),
          ...callInit(options),
        }),
      ),
    rotateToken: ({ connectionId, previousTokenGraceSeconds }, options) =>
      unwrap(
        client.POST('/v1/connections/{connection_id}/scim_tokens', {
          params: path(connectionId),
          body:
            previousTokenGraceSeconds === undefined
              ? {}
              : { previous_token_grace_seconds: previousTokenGraceSeconds },
          ...callInit(options),
        }),
      ),
    getRoleMappings: ({ connectionId }, options) =>
      unwrap(
        client.GET('/v1/connections/{connection_id}/role_mappings', {
          params: path(connectionId),
          ...callInit(options),
        }),
      ),
    setRoleMappings: ({ connectionId, mappings }, options) =>
      unwrap(
        client.PUT('/v1/connections/{connection_id}/role_mappings', {
          params: path(connectionId),
          body: { mappings },
          ...callInit(options),
        }),
      ),
    previewRoleMappings: ({ connectionId, mappings }, options) =>
      unwrap(
        client.POST('/v1/connections/{connection_id}/role_mappings/preview', {
          params: path(connectionId),
          body: { mappings },
          ...callInit(options),
        }),
      ),
    releaseDeprovisionGuard: ({ connectionId, window }, options) =>
      unwrap(
        client.POST('/v1/connections/{connection_id}/deprovision_guard/release', {
          params: path(connectionId),
          body: window === undefined ? {} : { window },
          ...callInit(options),
        }),
      ),
    getAttributeMappings: ({ connectionId }, options) =>
      unwrap(
        client.GET('/v1/connections/{connection_id}/attribute_mappings', {
          params: path(connectionId),
          ...callInit(options),
        }),
      ),
    setAttributeMappings: ({ connectionId, mappings }, options) =>
      unwrap(
        client.PUT('/v1/connections/{connection_id}/attribute_mappings', {
          params: path(connectionId),
          body: { mappings },
          ...callInit(options),
        }),
      ),
    previewAttributeMappings: ({ connectionId, mappings }, options) =>
      unwrap(
        client.POST('/v1/connections/{connection_id}/attribute_mappings/preview', {
          params: path(connectionId),
          body: { mappings },
          ...callInit(options),
        }),
      ),
    sync: ({ connectionId, failures }, options) =>
      unwrap(
        client.GET('/v1/connections/{connection_id}/sync', {
          params: { ...path(connectionId), query: { failures } },
          ...callInit(options),
        }),
      ),
  };
}
