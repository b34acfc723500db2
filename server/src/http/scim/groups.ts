import type { Context } from '../../context.js';
import type { GroupRow } from '../../db/schema.js';
import {
  createScimGroup,
  deleteScimGroup,
  getScimGroup,
  listScimGroups,
  type MembersApplied,
  patchScimGroup,
  replaceScimGroup,
  splitMembers,
} from '../../directory/scim-groups.js';
import { normalizeResource } from '../../scim/core/resource.js';
import { GROUP_RESOURCE } from '../../scim/core/schemas.js';
import { parsePatchRequest } from '../../scim/patch/patch.js';
import { listResponse } from '../../scim/protocol/list-response.js';
import { requiredBody, searchRequest } from './body.js';
import { changeFor, ifMatch, type Route, resourceId, type ScimCall } from './call.js';
import { listParams, projectionOf } from './list-params.js';
import type { PageCursors } from './page-cursors.js';
import { created, noContent, ok, renderGroups, send } from './response.js';

/** `/Groups` (RFC 7644 §3): groups and their members, as an IdP's group push manages them. */
export function groupRoutes(ctx: Context, cursors: PageCursors): Record<string, Route> {
  const listGroups = async (call: ScimCall, source: Record<string, unknown>) => {
    const { query, projection } = listParams(source);
    const { rows, total } = await cursors.page(call, 'groups', source, query, (from) =>
      listScimGroups(ctx, call.principal, from),
    );
    const page = await renderGroups(ctx, call.baseUrl, rows, projection, false);
    send(call, 200, listResponse(page, total, query.startIndex));
  };
  const render = async (call: ScimCall, group: GroupRow) =>
    (await renderGroups(ctx, call.baseUrl, [group], projectionOf(call), true))[0]!;

  return {
    'GET /Groups': (call) => listGroups(call, call.query),
    'POST /Groups/.search': (call) => listGroups(call, searchRequest(call.body)),
    'GET /Groups/:id': async (call) => {
      const row = await getScimGroup(ctx, call.principal, resourceId(call, 'group'));
      ok(call, await render(call, row));
    },
    'POST /Groups': async (call) => {
      const { attributes, memberIds } = splitMembers(normalizeResource(GROUP_RESOURCE, requiredBody(call)));
      const { group, members } = await createScimGroup(
        ctx,
        call.principal,
        attributes,
        memberIds ?? [],
        changeFor(ctx, call),
      );
      noteUnknownMembers(call, members);
      created(call, await render(call, group));
    },
    'PUT /Groups/:id': async (call) => {
      const id = resourceId(call, 'group');
      const { attributes, memberIds } = splitMembers(normalizeResource(GROUP_RESOURCE, requiredBody(call)));
      const { group, members } = await replaceScimGroup(
        ctx,
        call.principal,
        id,
        attributes,
        memberIds ?? [],
        ifMatch(call),
        changeFor(ctx, call),
      );
      noteUnknownMembers(call, members);
      ok(call, await render(call, group));
    },
    'PATCH /Groups/:id': async (call) => {
      const id = resourceId(call, 'group');
      const operations = parsePatchRequest(requiredBody(call));
      const { group, members } = await patchScimGroup(
        ctx,
        call.principal,
        id,
        operations,
        ifMatch(call),
        changeFor(ctx, call),
      );
      noteUnknownMembers(call, members);
      const projection = projectionOf(call);
      // 204 suits Entra and Okta alike; with attributes= or excludedAttributes= the caller asked for a body.
      if (!projection.attributes && !projection.excludedAttributes) {
        noContent(call, { ETag: `W/"${group.version}"` });
        return;
      }
      ok(call, await render(call, group));
    },
    'DELETE /Groups/:id': async (call) => {
      await deleteScimGroup(
        ctx,
        call.principal,
        resourceId(call, 'group'),
        ifMatch(call),
        changeFor(ctx, call),
      );
      noContent(call);
    },
  };
}

/** Member ids that are not users of the connection are ignored; the sync log says which. */
function noteUnknownMembers(call: ScimCall, members: MembersApplied): void {
  if (members.unknown.length > 0) {
    const shown = members.unknown.slice(0, 10).join(', ');
    call.outcome.detail = `ignored ${members.unknown.length} member id(s) that are not users of this connection: ${shown}`;
  }
}
