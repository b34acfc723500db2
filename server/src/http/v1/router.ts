import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { ApiError } from '../../errors.js';
import { rejectUnsafeJsonInput } from '../json-input.js';
import { authenticate, authorize, limitRate } from './access.js';
import type { V1Deps } from './deps.js';
import { apiErrorHandler, sendApiError } from './errors.js';
import { idempotency } from './idempotency.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { connectionRoutes } from './routes/connections.js';
import { directoryRoutes } from './routes/directory.js';
import { eventRoutes } from './routes/events.js';
import { membershipRoutes } from './routes/memberships.js';
import { organizationRoutes } from './routes/organizations.js';
import { roleRoutes } from './routes/roles.js';
import { sessionRoutes } from './routes/sessions.js';
import { webhookRoutes } from './routes/webhooks.js';

function requireJsonBody(req: Request, _res: Response, next: NextFunction) {
  const hasBody =
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    throw new ApiError(415, 'unsupported_media_type', 'Send the request body as application/json.');
  }
  next();
}

/**
 * Refuses a body over the limit without reading it. body-parser answers 413 only after reading the
 * whole request off the socket, so a client could make the server take in 100 MB to be told no: a
 * declared Content-Length over the limit is refused at once, a chunked body as soon as it passes
 * the limit, and the connection is closed after the answer.
 */
function limitBody(limit: number) {
  const tooLarge = () =>
    new ApiError(413, 'payload_too_large', `The request body is larger than ${limit} bytes.`, {
      headers: { Connection: 'close' },
    });
  return (req: Request, res: Response, next: NextFunction) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) throw tooLarge();
    if (declared === undefined && req.headers['transfer-encoding'] !== undefined) {
      let size = 0;
      const count = (chunk: Buffer) => {
        size += chunk.length;
        if (size <= limit) return;
        req.off('data', count);
        // body-parser still waits for the end of the body: the answer goes now, the socket after it.
        if (!res.headersSent) sendApiError(req, res, tooLarge());
      };
      req.on('data', count);
    }
    next();
  };
}

/** The management API (`/v1`), as described by openapi/roster.yaml. */
export function v1Router(deps: V1Deps): Router {
  const router = express.Router();
  router.use(authenticate(deps.authenticator));
  router.use(limitRate(deps.rateLimiter));
  router.use(authorize);
  router.use(requireJsonBody);
  router.use(limitBody(deps.bodyLimitBytes));
  router.use(express.json({ limit: deps.bodyLimitBytes, type: ['application/json', 'application/*+json'] }));
  router.use(rejectUnsafeJsonInput);
  router.use(idempotency(deps.ctx, deps.keyRing, (req) => req.principal.id));
  // Every handler in routes/ that names a resource first checks that it is in the key's reach
  // (assertInReach), and every list narrows itself to it (organizationFilter).

  organizationRoutes(router, deps);
  membershipRoutes(router, deps);
  roleRoutes(router, deps);
  connectionRoutes(router, deps);
  directoryRoutes(router, deps);
  eventRoutes(router, deps);
  webhookRoutes(router, deps);
  sessionRoutes(router, deps);
  apiKeyRoutes(router, deps);

  router.use((req: Request) => {
    throw new ApiError(404, 'route_not_found', `No route ${req.method} ${req.baseUrl}${req.path}.`);
  });
  router.use(apiErrorHandler);
  return router;
}
