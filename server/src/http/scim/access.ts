import type { Context } from '../../context.js';
import { authenticateScimToken } from '../../directory/scim-tokens.js';
import { isId } from '../../ids.js';
import type { LocalRateLimiter, RateLimiter } from '../../rate-limit.js';
import { ScimError, scimNotFound } from '../../scim/protocol/error.js';
import type { ScimPrincipal } from '../../scim-principal.js';
import { clientAddress } from '../client-address.js';
import type { ScimRequest } from './call.js';
import { unauthorized } from './errors.js';

export interface AccessDeps {
  ctx: Context;
  /** Failed authentications per client address (checked before authenticating). */
  authFailureLimiter: LocalRateLimiter;
  /** See clientAddress. */
  trustProxyHops: number;
}

/** The connection's principal for the request's bearer token, or a SCIM error (404, 429, 401). */
export async function authenticate(deps: AccessDeps, request: ScimRequest): Promise<ScimPrincipal> {
  const { req } = request;
  if (!isId('connection', request.connectionId)) {
    throw scimNotFound(`No SCIM endpoint at ${req.url?.split('?')[0]}; use the base URL of a connection`);
  }
  // Before authentication (which costs a database lookup), per client address: failed attempts
  // are limited, so that guessing tokens or flooding with garbage ones is cheap to refuse.
  const address = clientAddress(req, deps.trustProxyHops);
  const blocked = deps.authFailureLimiter.wait(address);
  if (blocked > 0) {
    throw new ScimError(
      429,
      undefined,
      `Too many failed authentications from this address; retry after ${blocked} s`,
      { headers: { 'Retry-After': String(blocked) } },
    );
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  const principal = match
    ? await authenticateScimToken(deps.ctx, request.connectionId, match[1]!)
    : undefined;
  if (!principal) {
    deps.authFailureLimiter.take(address);
    throw unauthorized();
  }
  return principal;
}

/** Throws a 429 with Retry-After when the connection is over its request rate. */
export async function limit(rateLimiter: RateLimiter, principal: ScimPrincipal): Promise<void> {
  const wait = await rateLimiter.take(principal.connectionId);
  if (wait > 0) {
    throw new ScimError(429, undefined, `Too many requests for this connection; retry after ${wait} s`, {
      headers: { 'Retry-After': String(wait) },
    });
  }
}
