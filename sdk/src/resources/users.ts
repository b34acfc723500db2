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

export interface ListUsersParams extends ListParams {
  organizationId?: string;
  connectionId?: string;
  email?: string;
  userName?: string;
  active?: boolean;
}

export interface UsersResource {
  list(params?: ListUsersParams, options?: CallOptions): PagePromise<Schemas['User']>;
  get(params: { userId: string }, options?: CallOptions): Promise<Schemas['User']>;
}

export function usersResource(client: ApiClient): UsersResource {
  return {
    list: ({ organizationId, connectionId, email, userName, active, ...page } = {}, options) =>
      paged(page, options, (query, init) =>
        client.GET('/v1/users', {
          params: {
            query: {
              ...query,
              organization_id: organizationId,
              connection_id: connectionId,
              email,
              user_name: userName,
              active,
            },
          },
          ...init,
        }),
      ),
    get: ({ userId }, options) =>
      unwrap(
        client.GET('/v1/users/{user_id}', { params: { path: { user_id: userId } }, ...callInit(options) }),
      ),
  };
}
