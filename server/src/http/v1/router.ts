import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { ApiError } from '../../errors.js';
import { rejectUnsafeJsonInput } from '../json-input.js';
import { authenticate, authorize } from './access.js';
import type { V1Deps } from './deps.js';
import { apiErrorHandler } from './errors.js';
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

/** The management API (`/v1`), as described by openapi/roster.yaml. */
export function v1Router(deps: V1Deps): Router {
  const router = express.Router();
  router.use(authenticate(deps.authenticator));
  router.use(authorize);
  router.use(requireJsonBody);
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
