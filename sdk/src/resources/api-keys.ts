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

export interface ApiKeysResource {
  /**
   * Creates a scoped API key (root key or `api_keys:write` scope); `key` is returned only here.
   * Pass it as `secretKey` to another client.
   */
  create(body: Schemas['ApiKeyCreate'], options?: RequestOptions): Promise<Schemas['ApiKeyWithSecret']>;
  /** Live API keys (never their secrets), oldest first. */
  list(params?: ListParams, options?: CallOptions): PagePromise<Schemas['ApiKey']>;
  /** Revokes a key: it stops working at once. */
  delete(params: { apiKeyId: string }, options?: CallOptions): Promise<void>;
}

export function apiKeysResource(client: ApiClient): ApiKeysResource {
  return {
    create: (body, options) => unwrap(client.POST('/v1/api_keys', { body, ...callInit(options) })),
    list: (params = {}, options) =>
      paged(params, options, (query, init) => client.GET('/v1/api_keys', { params: { query }, ...init })),
    delete: ({ apiKeyId }, options) =>
      unwrapEmpty(
        client.DELETE('/v1/api_keys/{api_key_id}', {
          params: { path: { api_key_id: apiKeyId } },
          ...callInit(options),
        }),
      ),
  };
}
