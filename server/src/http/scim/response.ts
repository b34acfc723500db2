import type { Context } from '../../context.js';
import type { GroupRow, UserRow } from '../../db/schema.js';
import { membersOfGroups } from '../../directory/scim-groups.js';
import type { UserWithGroups } from '../../directory/user-rows.js';
import { excludes, type Projection, project, renderResource, requests } from '../../scim/core/render.js';
import type { ScimObject } from '../../scim/core/resource.js';
import { GROUP_RESOURCE, USER_RESOURCE } from '../../scim/core/schemas.js';
import { SCIM_MEDIA_TYPE } from '../../scim/protocol/messages.js';
import type { ScimRequest } from './call.js';

/** Writing SCIM responses, and rendering database rows as SCIM User and Group resources. */

export const SCIM_CONTENT_TYPE = `${SCIM_MEDIA_TYPE}; charset=utf-8`;

export function send(
  request: ScimRequest,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  const payload = JSON.stringify(body);
  const { res } = request;
  if (headers) for (const name of Object.keys(headers)) res.setHeader(name, headers[name]!);
  res.writeHead(status, {
    'X-Request-Id': request.id,
    'Content-Type': SCIM_CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

export function noContent(request: ScimRequest, headers?: Record<string, string>): void {
  const { res } = request;
  if (headers) for (const name of Object.keys(headers)) res.setHeader(name, headers[name]!);
  res.writeHead(204, { 'X-Request-Id': request.id });
  res.end();
}

export function created(request: ScimRequest, resource: ScimObject): void {
  const meta = resource.meta as { location: string; version: string };
  send(request, 201, resource, { Location: meta.location, ETag: meta.version });
}

export function ok(request: ScimRequest, resource: ScimObject): void {
  const meta = resource.meta as { version?: string } | undefined;
  send(request, 200, resource, meta?.version ? { ETag: meta.version } : {});
}

/** `baseUrl` is the connection's SCIM base URL, which the `$ref`s and `meta.location` start with. */
export function userResource(
  baseUrl: string,
  row: UserRow,
  groups: { value: string; display: string }[] | undefined,
): ScimObject {
  const extra: ScimObject = {};
  if (groups?.length) {
    extra.groups = groups.map((g) => ({
      value: g.value,
      display: g.display,
      $ref: `${baseUrl}/Groups/${g.value}`,
      type: 'direct',
    }));
  }
  return renderResource(
    USER_RESOURCE,
    row.id,
    { ...row.attributes, active: row.active },
    {
      created: row.created_at,
      lastModified: row.updated_at,
      location: `${baseUrl}/Users/${row.id}`,
      version: row.version,
    },
    extra,
  );
}

function groupResource(
  baseUrl: string,
  row: GroupRow,
  members: { value: string; display: string }[] | undefined,
): ScimObject {
  const extra: ScimObject = {};
  if (members) {
    extra.members = members.map((m) => ({
      value: m.value,
      display: m.display,
      $ref: `${baseUrl}/Users/${m.value}`,
      type: 'User',
    }));
  }
  return renderResource(
    GROUP_RESOURCE,
    row.id,
    row.attributes,
    {
      created: row.created_at,
      lastModified: row.updated_at,
      location: `${baseUrl}/Groups/${row.id}`,
      version: row.version,
    },
    extra,
  );
}

export function renderUsers(baseUrl: string, rows: UserWithGroups[], projection: Projection): ScimObject[] {
  return rows.map((row) => project(USER_RESOURCE, userResource(baseUrl, row, row.groups), projection));
}

/**
 * Whether a user response carries the read-only `groups` attribute. Like `members` of groups, it is
 * returned by GET /Users/{id} (unless excluded) but in lists only when `attributes` asks for it: a
 * page of 100 users in 20 groups each would otherwise expand 2,000 relationships per page. No IdP
 * reads group membership from user lists; they manage it through /Groups.
 */
export const wantsGroups = (projection: Projection, single: boolean) =>
  single ? !excludes(projection, 'groups') : requests(projection, 'groups');

/**
 * Group lists omit `members` unless asked for (`attributes=members`): a list call must not load
 * every member of every group on the page (a group can have 50,000). GET /Groups/{id} returns them
 * unless `excludedAttributes=members` (Entra's form).
 */
export async function renderGroups(
  ctx: Context,
  baseUrl: string,
  rows: GroupRow[],
  projection: Projection,
  single: boolean,
): Promise<ScimObject[]> {
  const withMembers = single ? !excludes(projection, 'members') : requests(projection, 'members');
  const members = withMembers
    ? await membersOfGroups(
        ctx,
        rows.map((r) => r.id),
      )
    : undefined;
  return rows.map((row) =>
    project(
      GROUP_RESOURCE,
      groupResource(baseUrl, row, members ? (members.get(row.id) ?? []) : undefined),
      projection,
    ),
  );
}
