import type { NextFunction, Request, Response } from 'express';
import type { ApiKeyScope, Authenticator, Principal } from '../../api-keys.js';
import type { Context } from '../../context.js';
import { ApiError, notFound } from '../../errors.js';
import type { RateLimiter } from '../../rate-limit.js';

declare global {
  namespace Express {
    interface Request {
      /** Who the /v1 request acts for (set by {@link authenticate}). */
      principal: Principal;
    }
  }
}

const unauthorized = () =>
  new ApiError(
    401,
    'unauthorized',
    'Missing or invalid secret key. Send "Authorization: Bearer <secret key>".',
    {
      headers: { 'WWW-Authenticate': 'Bearer realm="roster"' },
    },
  );

export function authenticate(authenticator: Authenticator) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const principal = match ? await authenticator.authenticate(match[1]!) : undefined;
    if (!principal) throw unauthorized();
    req.principal = principal;
    next();
  };
}

/**
 * Refuses, with 429 and Retry-After, a request beyond the API key's rate: one budget per key (the
 * root key is one key), shared by every process on PostgreSQL. Checked after authentication, so
 * only a valid key spends anything, and before any work.
 */
export function limitRate(limiter: RateLimiter) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const wait = await limiter.take(req.principal.id);
    if (wait > 0) {
      throw new ApiError(429, 'rate_limited', `Too many requests with this API key; retry after ${wait} s.`, {
        headers: { 'Retry-After': String(wait) },
      });
    }
    next();
  };
}

const SESSION_PATH = /^\/(sessions(\/|$)|users\/[^/]+\/sessions(\/|$))/;
/** Changes to what every organization shares: only a key without an organization may make them. */
const INSTANCE_WIDE_CHANGE = /^\/(organizations\/?$|roles(\/|$)|signing_keys\/)/;

/**
 * The scopes that allow an operation (any one of them suffices), decided from the method and path
 * in one place so that no route can be left unguarded: reads need `read` (or `write`), changes
 * `write`; sessions also accept `sessions:write`, the events feed `events:read`, and API key
 * management needs `api_keys:write`.
 */
export function allowedScopes(method: string, path: string): ApiKeyScope[] {
  const reading = method === 'GET' || method === 'HEAD';
  if (path === '/api_keys' || path.startsWith('/api_keys/')) return ['api_keys:write'];
  if (reading && path === '/events') return ['read', 'write', 'events:read'];
  if (SESSION_PATH.test(path))
    return reading ? ['read', 'write', 'sessions:write'] : ['write', 'sessions:write'];
  return reading ? ['read', 'write'] : ['write'];
}

const forbidden = (message: string) => new ApiError(403, 'forbidden', message);

/** Refuses, with 403, an operation outside the principal's scopes. */
export function authorize(req: Request, _res: Response, next: NextFunction): void {
  const { principal } = req;
  if (principal.root) {
    next();
    return;
  }
  const allowed = allowedScopes(req.method, req.path);
  if (!allowed.some((scope) => principal.scopes.has(scope))) {
    throw forbidden(`This API key lacks the scope for this operation (one of: ${allowed.join(', ')}).`);
  }
  const reading = req.method === 'GET' || req.method === 'HEAD';
  if (principal.organizationId !== null && !reading && INSTANCE_WIDE_CHANGE.test(req.path)) {
    throw forbidden('This API key is confined to one organization; this change affects every organization.');
  }
  next();
}

/** Tables whose rows belong to one organization, and what a 404 calls them. */
type Owned = 'connections' | 'memberships' | 'users' | 'groups' | 'sessions' | 'webhook_endpoints';

/**
 * For a principal confined to an organization: a resource of another organization answers 404, as
 * if it did not exist. Unconfined principals pay nothing. A missing row passes: the operation's
 * own lookup answers its usual 404.
 */
export async function assertInReach(
  ctx: Context,
  req: Request,
  table: Owned | 'organizations',
  id: string,
  resource: string,
): Promise<void> {
  const reach = req.principal.organizationId;
  if (reach === null) return;
  if (table === 'organizations') {
    if (id !== reach) throw notFound(resource, id);
    return;
  }
  const row = await ctx.db
    .selectFrom(table)
    .select('organization_id')
    .where('id', '=', id)
    .executeTakeFirst();
  if (row && row.organization_id !== reach) throw notFound(resource, id);
}

/**
 * An id no organization has (ids begin with their creation time; this one's is 1970): a filter on
 * it matches nothing, which is what a confined key asking for another organization must see.
 */
const NO_ORGANIZATION = 'org_00000000000000000000000000';

/**
 * The organization filter of a list: the one requested, narrowed to the principal's reach. A
 * confined key naming another organization gets the answer of an organization that does not exist.
 */
export function organizationFilter(req: Request, requested: string | undefined): string | undefined {
  const reach = req.principal.organizationId;
  if (reach === null) return requested;
  return requested === undefined || requested === reach ? reach : NO_ORGANIZATION;
}
