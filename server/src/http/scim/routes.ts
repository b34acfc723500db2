import type { Context } from '../../context.js';
import { ScimError, scimNotFound } from '../../scim/protocol/error.js';
import type { Route, ScimRequest } from './call.js';
import { discoveryRoutes } from './discovery.js';
import { groupRoutes } from './groups.js';
import type { PageCursors } from './page-cursors.js';
import { rootSearchRoutes } from './search.js';
import { userRoutes } from './users.js';

/** Resource names as a URL may spell them (case-insensitively) -> as the route keys spell them. */
const RESOURCES: Record<string, string> = {
  users: 'Users',
  groups: 'Groups',
  serviceproviderconfig: 'ServiceProviderConfig',
  schemas: 'Schemas',
  resourcetypes: 'ResourceTypes',
  '.search': '.search',
};

/** `(method, segments)` -> route key, with resource names matched case-insensitively. */
function routeKey(method: string, segments: string[]): string | undefined {
  const resource = RESOURCES[(segments[0] ?? '').toLowerCase()];
  if (!resource) return undefined;
  if (segments.length === 1) return `${method} /${resource}`;
  if (segments.length === 2) {
    return segments[1] === '.search' ? `${method} /${resource}/.search` : `${method} /${resource}/:id`;
  }
  return undefined;
}

/** Every SCIM endpoint; the returned function finds a request's route or throws 501/404. */
export function createRouter(ctx: Context, cursors: PageCursors): (request: ScimRequest) => Route {
  const routes: Record<string, Route> = {
    ...userRoutes(ctx, cursors),
    ...groupRoutes(ctx, cursors),
    ...discoveryRoutes,
    ...rootSearchRoutes(ctx),
  };
  return (request) => {
    const lower = (request.segments[0] ?? '').toLowerCase();
    if (lower === 'bulk' || lower === 'me')
      throw new ScimError(501, undefined, 'Not implemented: Roster does not offer /Bulk or /Me');
    const key = routeKey(request.method, request.segments);
    const route = key ? routes[key] : undefined;
    if (!route) throw scimNotFound(`No SCIM endpoint ${request.method} ${request.path}`);
    return route;
  };
}
