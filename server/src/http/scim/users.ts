import type { Context } from '../../context.js';
import {
  createScimUser,
  deleteScimUser,
  getScimUser,
  listScimUsers,
  patchScimUser,
  replaceScimUser,
} from '../../directory/scim-users.js';
import { project } from '../../scim/core/render.js';
import { normalizeResource } from '../../scim/core/resource.js';
import { USER_RESOURCE } from '../../scim/core/schemas.js';
import { parsePatchRequest } from '../../scim/patch/patch.js';
import { listResponse } from '../../scim/protocol/list-response.js';
import { requiredBody, searchRequest } from './body.js';
import { changeFor, ifMatch, type Route, resourceId, type ScimCall } from './call.js';
import { listParams, projectionOf } from './list-params.js';
import type { PageCursors } from './page-cursors.js';
import { created, noContent, ok, renderUsers, send, userResource, wantsGroups } from './response.js';

/** `/Users` (RFC 7644 §3): what an IdP's user sync calls. */
export function userRoutes(ctx: Context, cursors: PageCursors): Record<string, Route> {
  const listUsers = async (call: ScimCall, source: Record<string, unknown>) => {
    const { query, projection } = listParams(source);
    const { rows, total } = await cursors.page(call, 'users', source, query, (from) =>
      listScimUsers(ctx, call.principal, from, { withGroups: wantsGroups(projection, false) }),
    );
    send(call, 200, listResponse(renderUsers(call.baseUrl, rows, projection), total, query.startIndex));
  };

  return {
    'GET /Users': (call) => listUsers(call, call.query),
    'POST /Users/.search': (call) => listUsers(call, searchRequest(call.body)),
    'GET /Users/:id': async (call) => {
      const projection = projectionOf(call);
      const row = await getScimUser(ctx, call.principal, resourceId(call, 'user'), {
        withGroups: wantsGroups(projection, true),
      });
      ok(call, renderUsers(call.baseUrl, [row], projection)[0]!);
    },
    'POST /Users': async (call) => {
      const attributes = normalizeResource(USER_RESOURCE, requiredBody(call));
      const row = await createScimUser(ctx, call.principal, attributes, changeFor(ctx, call));
      created(call, project(USER_RESOURCE, userResource(call.baseUrl, row, undefined), projectionOf(call)));
    },
    'PUT /Users/:id': async (call) => {
      const id = resourceId(call, 'user');
      const attributes = normalizeResource(USER_RESOURCE, requiredBody(call));
      const row = await replaceScimUser(
        ctx,
        call.principal,
        id,
        attributes,
        ifMatch(call),
        changeFor(ctx, call),
      );
      ok(call, renderUsers(call.baseUrl, [row], projectionOf(call))[0]!);
    },
    'PATCH /Users/:id': async (call) => {
      const id = resourceId(call, 'user');
      const operations = parsePatchRequest(requiredBody(call));
      const row = await patchScimUser(
        ctx,
        call.principal,
        id,
        operations,
        ifMatch(call),
        changeFor(ctx, call),
      );
      ok(call, renderUsers(call.baseUrl, [row], projectionOf(call))[0]!);
    },
    'DELETE /Users/:id': async (call) => {
      await deleteScimUser(ctx, call.principal, resourceId(call, 'user'), ifMatch(call));
      noContent(call);
    },
  };
}
