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

export interface WebhookEndpointParams {
  endpointId: string;
}

export type UpdateWebhookEndpointParams = WebhookEndpointParams & Schemas['WebhookEndpointUpdate'];

export interface WebhooksResource {
  /** Creates an endpoint receiving events from now on; `secret` is returned only here. */
  create(
    body: Schemas['WebhookEndpointCreate'],
    options?: RequestOptions,
  ): Promise<Schemas['WebhookEndpointWithSecret']>;
  list(params?: ListParams, options?: CallOptions): PagePromise<Schemas['WebhookEndpoint']>;
  get(params: WebhookEndpointParams, options?: CallOptions): Promise<Schemas['WebhookEndpoint']>;
  update(params: UpdateWebhookEndpointParams, options?: CallOptions): Promise<Schemas['WebhookEndpoint']>;
  delete(params: WebhookEndpointParams, options?: CallOptions): Promise<void>;
  /** Delivery attempts, newest first. */
  listDeliveries(
    params: WebhookEndpointParams & ListParams,
    options?: CallOptions,
  ): PagePromise<Schemas['WebhookDelivery']>;
}

export function webhooksResource(client: ApiClient): WebhooksResource {
  const path = (endpointId: string) => ({ path: { webhook_endpoint_id: endpointId } });
  return {
    create: (body, options) => unwrap(client.POST('/v1/webhook_endpoints', { body, ...callInit(options) })),
    list: (params = {}, options) =>
      paged(params, options, (query, init) =>
        client.GET('/v1/webhook_endpoints', { params: { query }, ...init }),
      ),
    get: ({ endpointId }, options) =>
      unwrap(
        client.GET('/v1/webhook_endpoints/{webhook_endpoint_id}', {
          params: path(endpointId),
          ...callInit(options),
        }),
      ),
    update: ({ endpointId, ...body }, options) =>
      unwrap(
        client.PATCH('/v1/webhook_endpoints/{webhook_endpoint_id}', {
          params: path(endpointId),
          body,
          ...callInit(options),
        }),
      ),
    delete: ({ endpointId }, options) =>
      unwrapEmpty(
        client.DELETE('/v1/webhook_endpoints/{webhook_endpoint_id}', {
          params: path(endpointId),
          ...callInit(options),
        }),
      ),
    listDeliveries: ({ endpointId, ...page }, options) =>
      paged(page, options, (query, init) =>
        client.GET('/v1/webhook_endpoints/{webhook_endpoint_id}/deliveries', {
          params: { ...path(endpointId), query },
          ...init,
        }),
      ),
  };
}
