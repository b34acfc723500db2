import {
  type ApiClient,
  type CallOptions,
  callInit,
  type RequestOptions,
  type Schemas,
  unwrap,
} from '../request.js';

export interface RotateSigningKeyParams {
  alg?: Schemas['SigningKeyRotate']['alg'];
  /** Unpublish the previous key at once: its tokens stop verifying (see the API reference). */
  revokePrevious?: boolean;
}

export interface SigningKeysResource {
  /** The keys in the JWKS, with their state (`next`, `active`, `retiring`). */
  list(options?: CallOptions): Promise<Schemas['SigningKeyList']>;
  /** The pre-published next key starts signing; see the API reference for `revokePrevious`. */
  rotate(params?: RotateSigningKeyParams, options?: RequestOptions): Promise<Schemas['SigningKey']>;
  /** @deprecated Pass `{ revokePrevious }`: the API's snake_case body still works. */
  rotate(body: Schemas['SigningKeyRotate'], options?: RequestOptions): Promise<Schemas['SigningKey']>;
}

export function signingKeysResource(client: ApiClient): SigningKeysResource {
  return {
    list: (options?: CallOptions) => unwrap(client.GET('/v1/signing_keys', callInit(options))),
    rotate: (params: RotateSigningKeyParams | Schemas['SigningKeyRotate'] = {}, options?: RequestOptions) => {
      const body =
        'revokePrevious' in params
          ? { alg: params.alg, revoke_previous: params.revokePrevious }
          : (params as Schemas['SigningKeyRotate']);
      return unwrap(client.POST('/v1/signing_keys/rotate', { body, ...callInit(options) }));
    },
  };
}
