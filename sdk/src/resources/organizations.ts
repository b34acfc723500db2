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
import type { ConnectionsResource } from './connections.js';
import { type MemberMethods, memberMethods } from './members.js';
import { type PortalLinkMethods, portalLinkMethods } from './portal-links.js';

export interface OrganizationParams {
  organizationId: string;
}

export type UpdateOrganizationParams = OrganizationParams & Schemas['OrganizationUpdate'];

export interface SnapshotParams extends OrganizationParams {
  /** An events cursor; the head when omitted. */
  asOf?: string;
  /** `false` answers the count and digest only. */
  members?: boolean;
}

export interface DiffParams extends OrganizationParams {
  from: string;
  /** The head when omitted. */
  to?: string;
}

export interface OrganizationsResource extends MemberMethods, PortalLinkMethods {
  create(body: Schemas['OrganizationCreate'], options?: RequestOptions): Promise<Schemas['Organization']>;
  list(params?: ListParams, options?: CallOptions): PagePromise<Schemas['Organization']>;
  get(params: OrganizationParams, options?: CallOptions): Promise<Schemas['Organization']>;
  update(params: UpdateOrganizationParams, options?: CallOptions): Promise<Schemas['Organization']>;
  delete(params: OrganizationParams, options?: CallOptions): Promise<void>;
  /** What an update would do to members' roles (a new default role), without changing anything. */
  previewUpdate(
    params: UpdateOrganizationParams,
    options?: RequestOptions,
  ): Promise<Schemas['ChangePreview']>;
  /**
   * The members as they were at an events cursor (`asOf`; the head when omitted), with a digest
   * (see {@link snapshotDigest}); `members: false` answers the count and digest only.
   */
  snapshot(params: SnapshotParams, options?: CallOptions): Promise<Schemas['DirectorySnapshot']>;
  /** The net member changes between two events cursors (`to`: the head when omitted), each with its event. */
  diff(params: DiffParams, options?: CallOptions): Promise<Schemas['DirectoryDiff']>;
  listConnections(
    params: OrganizationParams & ListParams,
    options?: CallOptions,
  ): PagePromise<Schemas['Connection']>;
}

export function organizationsResource(
  client: ApiClient,
  connections: ConnectionsResource,
): OrganizationsResource {
  const path = (organizationId: string) => ({ path: { organization_id: organizationId } });
  return {
    create: (body, options) => unwrap(client.POST('/v1/organizations', { body, ...callInit(options) })),
    list: (params = {}, options) =>
      paged(params, options, (query, init) =>
        client.GET('/v1/organizations', { params: { query }, ...init }),
      ),
    get: ({ organizationId }, options) =>
      unwrap(
        client.GET('/v1/organizations/{organization_id}', {
          params: path(organizationId),
          ...callInit(options),
        }),
      ),
    update: ({ organizationId, ...body }, options) =>
      unwrap(
        client.PATCH('/v1/organizations/{organization_id}', {
          params: path(organizationId),
          body,
          ...callInit(options),
        }),
      ),
    delete: ({ organizationId }, options) =>
      unwrapEmpty(
        client.DELETE('/v1/organizations/{organization_id}', {
          params: path(organizationId),
          ...callInit(options),
        }),
      ),
    previewUpdate: ({ organizationId, ...body }, options) =>
      unwrap(
        client.POST('/v1/organizations/{organization_id}/preview', {
          params: path(organizationId),
          body,
          ...callInit(options),
        }),
      ),
    snapshot: ({ organizationId, asOf, members }, options) =>
      unwrap(
        client.GET('/v1/organizations/{organization_id}/snapshot', {
          params: {
            ...path(organizationId),
            query: { as_of: asOf, members: members === undefined ? undefined : members ? 'true' : 'false' },
          },
          ...callInit(options),
        }),
      ),
    diff: ({ organizationId, from, to }, options) =>
      unwrap(
        client.GET('/v1/organizations/{organization_id}/diff', {
          params: { ...path(organizationId), query: { from, to } },
          ...callInit(options),
        }),
      ),
    listConnections: (params, options) => connections.list(params, options),
    ...memberMethods(client),
    ...portalLinkMethods(client),
  };
}
