import type { PagePromise } from '../pagination.js';
import {
  type ApiClient,
  type CallOptions,
  callInit,
  type ListParams,
  paged,
  type Schemas,
  unwrap,
} from '../request.js';

export interface ListGroupsParams extends ListParams {
  organizationId?: string;
  connectionId?: string;
}

export interface GroupParams {
  groupId: string;
}

export interface GroupsResource {
  list(params?: ListGroupsParams, options?: CallOptions): PagePromise<Schemas['Group']>;
  get(params: GroupParams, options?: CallOptions): Promise<Schemas['Group']>;
  listMembers(params: GroupParams & ListParams, options?: CallOptions): PagePromise<Schemas['User']>;
}

export function groupsResource(client: ApiClient): GroupsResource {
  const path = (groupId: string) => ({ path: { group_id: groupId } });
  return {
    list: ({ organizationId, connectionId, ...page } = {}, options) =>
      paged(page, options, (query, init) =>
        client.GET('/v1/groups', {
          params: { query: { ...query, organization_id: organizationId, connection_id: connectionId } },
          ...init,
        }),
      ),
    get: ({ groupId }, options) =>
      unwrap(client.GET('/v1/groups/{group_id}', { params: path(groupId), ...callInit(options) })),
    listMembers: ({ groupId, ...page }, options) =>
      paged(page, options, (query, init) =>
        client.GET('/v1/groups/{group_id}/members', { params: { ...path(groupId), query }, ...init }),
      ),
  };
}
