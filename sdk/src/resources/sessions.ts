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
} from '../request.js';

export interface CreateSessionParams {
  userId: string;
  organizationId: string;
}

export interface RefreshSessionParams {
  refreshToken: string;
}

export interface ListUserSessionsParams extends ListParams {
  userId: string;
  status?: Schemas['SessionStatus'];
}

export interface SessionsResource {
  /**
   * Signs a member in (after your app authenticated them): the session, its first token and its
   * refresh token (shown only here). Store both in HttpOnly cookies (`setSessionCookies` of
   * `@roster/sdk/express`).
   */
  create(params: CreateSessionParams, options?: RequestOptions): Promise<Schemas['SessionTokens']>;
  /** @deprecated Pass `{ userId, organizationId }`: the API's snake_case body still works. */
  create(body: Schemas['SessionCreate'], options?: RequestOptions): Promise<Schemas['SessionTokens']>;
  /**
   * A new token and refresh token for a refresh token (spent by this call). Needs no secret key:
   * the middleware calls it by itself when a cookie token expires.
   */
  refresh(params: RefreshSessionParams, options?: CallOptions): Promise<Schemas['SessionTokens']>;
  /** @deprecated Pass `{ refreshToken }`: the API's snake_case body still works. */
  refresh(body: Schemas['SessionRefresh'], options?: CallOptions): Promise<Schemas['SessionTokens']>;
  get(params: { sessionId: string }, options?: CallOptions): Promise<Schemas['Session']>;
  /** Sign-out: the refresh token stops working at once. */
  revoke(params: { sessionId: string }, options?: RequestOptions): Promise<Schemas['Session']>;
  /** A user's sessions, oldest first; `status` filters. */
  listForUser(params: ListUserSessionsParams, options?: CallOptions): PagePromise<Schemas['Session']>;
  /** Revokes every live session of a user ("sign out everywhere"). */
  revokeAllForUser(params: { userId: string }, options?: RequestOptions): Promise<Schemas['SessionsRevoked']>;
}

export function sessionsResource(client: ApiClient): SessionsResource {
  return {
    create: (params: CreateSessionParams | Schemas['SessionCreate'], options?: RequestOptions) => {
      const body =
        'user_id' in params ? params : { user_id: params.userId, organization_id: params.organizationId };
      return unwrap(client.POST('/v1/sessions', { body, ...callInit(options) }));
    },
    refresh: (params: RefreshSessionParams | Schemas['SessionRefresh'], options?: CallOptions) => {
      const body = 'refresh_token' in params ? params : { refresh_token: params.refreshToken };
      return unwrap(client.POST('/v1/sessions/refresh', { body, ...callInit(options) }));
    },
    get: ({ sessionId }, options) =>
      unwrap(
        client.GET('/v1/sessions/{session_id}', {
          params: { path: { session_id: sessionId } },
          ...callInit(options),
        }),
      ),
    revoke: ({ sessionId }, options) =>
      unwrap(
        client.POST('/v1/sessions/{session_id}/revoke', {
          params: { path: { session_id: sessionId } },
          ...callInit(options),
        }),
      ),
    listForUser: ({ userId, status, ...page }, options) =>
      paged(page, options, (query, init) =>
        client.GET('/v1/users/{user_id}/sessions', {
          params: { path: { user_id: userId }, query: { ...query, status } },
          ...init,
        }),
      ),
    revokeAllForUser: ({ userId }, options) =>
      unwrap(
        client.POST('/v1/users/{user_id}/sessions/revoke_all', {
          params: { path: { user_id: userId } },
          ...callInit(options),
        }),
      ),
  };
}
