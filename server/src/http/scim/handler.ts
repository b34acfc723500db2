import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Context } from '../../context.js';
import { scimBaseUrl } from '../../directory/serialize.js';
import type { SyncLogWriter } from '../../directory/sync-log.js';
import type { Logger } from '../../log.js';
import type { LocalRateLimiter, RateLimiter } from '../../rate-limit.js';
import { logAccess } from '../request-context.js';
import { authenticate, limit } from './access.js';
import { readJson } from './body.js';
import { type PendingCall, parseRequest, type ScimCall } from './call.js';
import { answerError } from './errors.js';
import { PageCursors } from './page-cursors.js';
import { createRouter } from './routes.js';

/**
 * The SCIM 2.0 service provider (`/scim/v2/{connection_id}/…`), served straight on node:http.
 *
 * This is the hot path of Roster: an IdP's sync is thousands of small requests (lookup, POST,
 * PATCH). It does not go through Express: Express's router, request decoration and body parser
 * cost more per request than the work itself here (see the SCIM benchmark). What Express would
 * give is done directly and explicitly: a request id, the access log, the query string, a bounded
 * JSON body of any media type, and every failure rendered as a SCIM Error.
 *
 * Each request goes through the same steps, each in its own module of this folder:
 * parse (call.ts) -> authenticate and limit (access.ts) -> route (routes.ts: users.ts, groups.ts,
 * discovery.ts, search.ts) -> read the body (body.ts) -> answer (response.ts); whatever is thrown
 * on the way is answered in one place (errors.ts).
 */

export interface ScimDeps {
  ctx: Context;
  log: Logger;
  bodyLimitBytes: number;
  rateLimiter: RateLimiter;
  /** Failed authentications per client address (checked before authenticating). */
  authFailureLimiter: LocalRateLimiter;
  /** See clientAddress. */
  trustProxyHops: number;
  syncLog: SyncLogWriter;
}

/** Creates the request listener for every path under `/scim/`. */
export function createScimHandler(deps: ScimDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { ctx } = deps;
  const route = createRouter(ctx, new PageCursors(ctx));

  const serve = async (request: PendingCall): Promise<void> => {
    const principal = await authenticate(deps, request);
    request.outcome.authenticated = true;
    await limit(deps.rateLimiter, principal);
    const handler = route(request);
    const { method } = request;
    request.principal = principal;
    request.baseUrl = scimBaseUrl(ctx.settings.publicUrl, request.connectionId);
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      request.body = await readJson(request.req, deps.bodyLimitBytes);
    }
    await handler(request as ScimCall);
  };

  return (req, res) => {
    const startedAt = performance.now();
    const request = parseRequest(req, res, deps.log);
    res.on('finish', () => {
      const { method, path, outcome } = request;
      logAccess(request.log, method, request.pathname, res.statusCode, startedAt);
      // Only authenticated requests reach a connection's sync log: anyone may send the others.
      if (!outcome.authenticated) return;
      deps.syncLog.record({
        connectionId: request.connectionId,
        requestId: request.id,
        method,
        path,
        status: res.statusCode,
        scimType: outcome.scimType ?? null,
        detail: outcome.detail?.slice(0, 500) ?? null,
        durationMs: Math.round((performance.now() - startedAt) * 100) / 100,
        at: ctx.now(),
      });
    });
    serve(request).catch((error: unknown) => answerError(ctx, request, error));
  };
}
