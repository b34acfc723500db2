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

export interface RoleParams {
  /** The role key, e.g. `admin`. */
  key: string;
}

export type UpdateRoleParams = RoleParams & Schemas['RoleUpdate'];

export interface RolesResource {
  list(params?: ListParams, options?: CallOptions): PagePromise<Schemas['Role']>;
  get(params: RoleParams, options?: CallOptions): Promise<Schemas['Role']>;
  create(body: Schemas['RoleCreate'], options?: RequestOptions): Promise<Schemas['Role']>;
  update(params: UpdateRoleParams, options?: CallOptions): Promise<Schemas['Role']>;
  delete(params: RoleParams, options?: CallOptions): Promise<void>;
}

export function rolesResource(client: ApiClient): RolesResource {
  const path = (key: string) => ({ path: { role_key: key } });
  return {
    list: (params = {}, options) =>
      paged(params, options, (query, init) => client.GET('/v1/roles', { params: { query }, ...init })),
    get: ({ key }, options) =>
      unwrap(client.GET('/v1/roles/{role_key}', { params: path(key), ...callInit(options) })),
    create: (body, options) => unwrap(client.POST('/v1/roles', { body, ...callInit(options) })),
    update: ({ key, ...body }, options) =>
      unwrap(client.PATCH('/v1/roles/{role_key}', { params: path(key), body, ...callInit(options) })),
    delete: ({ key }, options) =>
      unwrapEmpty(client.DELETE('/v1/roles/{role_key}', { params: path(key), ...callInit(options) })),
  };
}
