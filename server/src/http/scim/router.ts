import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Context } from '../../context.js';
import type { GroupRow, UserRow } from '../../db/schema.js';
import { authenticateScimToken, type ScimPrincipal } from '../../directory/connections.js';
import {
  createScimGroup,
  deleteScimGroup,
  getScimGroup,
  listScimGroups,
  type MembersApplied,
  membersOfGroups,
  patchScimGroup,
  replaceScimGroup,
  splitMembers,
} from '../../directory/scim-groups.js';
import {
  changeOf,
  createScimUser,
  deleteScimUser,
  getScimUser,
  groupsOfUsers,
  type ListQuery,
  listScimUsers,
  patchScimUser,
  replaceScimUser,
} from '../../directory/scim-users.js';
import type { SyncLogWriter } from '../../directory/sync-log.js';
import { isId } from '../../ids.js';
import {
  ALL_RESOURCE_TYPES,
  ALL_SCHEMAS,
  MAX_RESULTS,
  resourceTypeDocument,
  schemaDocument,
  serviceProviderConfig,
} from '../../scim/core/discovery.js';
import {
  excludes,
  type Projection,
  parseAttributeList,
  project,
  renderResource,
  requests,
} from '../../scim/core/render.js';
import { isPlainObject, normalizeResource, type ScimObject } from '../../scim/core/resource.js';
import { GROUP_RESOURCE, type ResourceTypeDef, USER_RESOURCE } from '../../scim/core/schemas.js';
import { parseFilter } from '../../scim/filter/parse.js';
import { parsePatchRequest } from '../../scim/patch/patch.js';
import {
  invalidSyntax,
  invalidValue,
  notFound,
  ScimError,
  toScimErrorBody,
} from '../../scim/protocol/error.js';
import { listResponse } from '../../scim/protocol/list-response.js';
import { SCIM_MEDIA_TYPE } from '../../scim/protocol/messages.js';
import type { RateLimiter } from './rate-limit.js';

declare global {
  namespace Express {
    interface Request {
      /** The authenticated SCIM connection (set by the SCIM router's auth). */
      scim?: ScimPrincipal;
    }
  }
}

export interface ScimDeps {
  ctx: Context;
  bodyLimitBytes: number;
  rateLimiter: RateLimiter;
  syncLog: SyncLogWriter;
}

const DEFAULT_COUNT = 100;
const CONTENT_TYPE = `${SCIM_MEDIA_TYPE}; charset=utf-8`;

function send(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res
    .status(status)
    .set({ 'Content-Type': CONTENT_TYPE, ...headers })
    .send(JSON.stringify(body));
}

function principalOf(req: Request): ScimPrincipal {
  return req.scim!;
}

function baseUrl(ctx: Context, connectionId: string): string {
  return `${ctx.settings.publicUrl}/scim/v2/${connectionId}`;
}

/** Reads a query parameter case-insensitively; a repeated parameter counts once (the first). */
function queryParam(req: Request, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(req.query)) {
    if (key.toLowerCase() !== lower) continue;
    const first = Array.isArray(value) ? value[0] : value;
    return typeof first === 'string' ? first : undefined;
  }
  return undefined;
}

function int(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return undefined;
}

interface ListParams {
  query: ListQuery;
  projection: Projection;
}

/** List parameters from the query string or a SearchRequest body (RFC 7644 §3.4.2, §3.4.3). */
function listParams(source: Record<string, unknown>): ListParams {
  const get = (name: string) => {
    const key = Object.keys(source).find((k) => k.toLowerCase() === name.toLowerCase());
    return key === undefined ? undefined : source[key];
  };
  const filterText = get('filter');
  if (filterText !== undefined && typeof filterText !== 'string')
    throw invalidValue('filter must be a string');
  const startIndex = Math.max(1, int(get('startIndex')) ?? 1);
  const count = Math.min(MAX_RESULTS, Math.max(0, int(get('count')) ?? DEFAULT_COUNT));
  const list = (name: string) => {
    const value = get(name);
    return parseAttributeList(Array.isArray(value) ? value.join(',') : value, name);
  };
  const sortOrderRaw = get('sortOrder');
  const sortBy = get('sortBy');
  return {
    query: {
      filter: filterText ? parseFilter(filterText) : undefined,
      startIndex,
      count,
      sortBy: typeof sortBy === 'string' ? sortBy : undefined,
      sortOrder:
        typeof sortOrderRaw === 'string' && sortOrderRaw.toLowerCase() === 'descending'
          ? 'descending'
          : 'ascending',
    },
    projection: { attributes: list('attributes'), excludedAttributes: list('excludedAttributes') },
  };
}

function queryAsRecord(req: Request): Record<string, unknown> {
  return Object.fromEntries(Object.keys(req.query).map((key) => [key, queryParam(req, key)]));
}

function projectionFromQuery(req: Request): Projection {
  return {
    attributes: parseAttributeList(queryParam(req, 'attributes'), 'attributes'),
    excludedAttributes: parseAttributeList(queryParam(req, 'excludedAttributes'), 'excludedAttributes'),
  };
}

function userResource(
  ctx: Context,
  row: UserRow,
  groups: { value: string; display: string }[] | undefined,
): ScimObject {
  const base = baseUrl(ctx, row.connection_id!);
  const extra: ScimObject = {};
  if (groups?.length) {
    extra.groups = groups.map((g) => ({
      value: g.value,
      display: g.display,
      $ref: `${base}/Groups/${g.value}`,
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
      location: `${base}/Users/${row.id}`,
      version: row.version,
    },
    extra,
  );
}

function groupResource(
  ctx: Context,
  row: GroupRow,
  members: { value: string; display: string }[] | undefined,
): ScimObject {
  const base = baseUrl(ctx, row.connection_id);
  const extra: ScimObject = {};
  if (members) {
    extra.members = members.map((m) => ({
      value: m.value,
      display: m.display,
      $ref: `${base}/Users/${m.value}`,
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
      location: `${base}/Groups/${row.id}`,
      version: row.version,
    },
    extra,
  );
}

async function renderUsers(ctx: Context, rows: UserRow[], projection: Projection): Promise<ScimObject[]> {
  const groups = excludes(projection, 'groups')
    ? new Map()
    : await groupsOfUsers(
        ctx,
        rows.map((r) => r.id),
      );
  return rows.map((row) => project(USER_RESOURCE, userResource(ctx, row, groups.get(row.id)), projection));
}

/**
 * Group lists omit `members` unless asked for (`attributes=members`): a list call must not load
 * every member of every group on the page (a group can have 50,000). GET /Groups/{id} returns them
 * unless `excludedAttributes=members` (Entra's form).
 */
async function renderGroups(
  ctx: Context,
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
      groupResource(ctx, row, members ? (members.get(row.id) ?? []) : undefined),
      projection,
    ),
  );
}

function noteUnknownMembers(res: Response, members: MembersApplied): void {
  if (members.unknown.length > 0) {
    const shown = members.unknown.slice(0, 10).join(', ');
    res.locals.scimDetail = `ignored ${members.unknown.length} member id(s) that are not users of this connection: ${shown}`;
  }
}

function resourceId(req: Request, kind: 'user' | 'group'): string {
  const raw = req.params.id;
  const id = typeof raw === 'string' ? raw : '';
  if (!isId(kind, id)) throw notFound(`${kind === 'user' ? 'User' : 'Group'} ${id} not found`);
  return id;
}

function ifMatch(req: Request): string | undefined {
  const header = req.headers['if-match'];
  return typeof header === 'string' ? header : undefined;
}

function created(ctx: Context, res: Response, resource: ScimObject): void {
  const meta = resource.meta as { location: string; version: string };
  send(res, 201, resource, { Location: meta.location, ETag: meta.version });
}

function ok(res: Response, resource: ScimObject): void {
  const meta = resource.meta as { version?: string } | undefined;
  send(res, 200, resource, meta?.version ? { ETag: meta.version } : {});
}

function bodyOf(req: Request): unknown {
  const empty =
    req.headers['content-length'] === '0' ||
    (req.headers['content-length'] === undefined && !req.headers['transfer-encoding']);
  if (empty) throw invalidSyntax('The request body is empty');
  return req.body;
}

/** The SCIM 2.0 service provider of one connection: `/scim/v2/{connection_id}/…`. */
export function scimRouter(deps: ScimDeps): Router {
  const { ctx } = deps;
  const router = express.Router({ mergeParams: true, caseSensitive: false });

  // Sync log: every request to a connection's SCIM base, authenticated or not.
  router.use((req: Request, res: Response, next: NextFunction) => {
    const connectionId = String(req.params.connectionId ?? '');
    if (isId('connection', connectionId)) {
      res.on('finish', () => {
        deps.syncLog.record({
          connectionId,
          requestId: req.id,
          method: req.method,
          path: req.path,
          status: res.statusCode,
          scimType: (res.locals.scimType as string | undefined) ?? null,
          detail: ((res.locals.scimDetail as string | undefined) ?? null)?.slice(0, 500) ?? null,
          durationMs: Math.round((performance.now() - req.startedAt) * 100) / 100,
          at: ctx.now(),
        });
      });
    }
    next();
  });

  // Authentication: this connection's bearer token only.
  router.use(async (req: Request, _res: Response, next: NextFunction) => {
    const connectionId = String(req.params.connectionId ?? '');
    if (!isId('connection', connectionId)) {
      throw notFound(
        `No SCIM endpoint at ${req.originalUrl.split('?')[0]}; use the base URL of a connection`,
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const principal = match ? await authenticateScimToken(ctx, connectionId, match[1]!) : undefined;
    if (!principal) {
      throw new ScimError(
        401,
        undefined,
        'Missing, invalid or expired bearer token for this SCIM connection',
        {
          headers: { 'WWW-Authenticate': 'Bearer realm="roster-scim"' },
        },
      );
    }
    req.scim = principal;
    next();
  });

  router.use((req: Request, _res: Response, next: NextFunction) => {
    const wait = deps.rateLimiter.take(principalOf(req).connectionId);
    if (wait > 0) {
      throw new ScimError(429, undefined, `Too many requests for this connection; retry after ${wait} s`, {
        headers: { 'Retry-After': String(wait) },
      });
    }
    next();
  });

  // Any JSON body, whatever Content-Type the IdP sends (application/scim+json, application/json, …).
  router.use(express.json({ limit: deps.bodyLimitBytes, type: () => true, strict: true }));

  const change = (req: Request) =>
    changeOf(principalOf(req), { id: req.id, method: req.method, path: req.path }, ctx.now());

  // Discovery (RFC 7644 §4)
  router.get('/ServiceProviderConfig', (req, res) => {
    send(res, 200, serviceProviderConfig(baseUrl(ctx, principalOf(req).connectionId)));
  });
  router.get('/Schemas', (req, res) => {
    const base = baseUrl(ctx, principalOf(req).connectionId);
    const docs = ALL_SCHEMAS.map((schema) => schemaDocument(schema, base));
    send(res, 200, listResponse(docs, docs.length, 1));
  });
  router.get('/Schemas/:schemaId', (req, res) => {
    const schema = ALL_SCHEMAS.find((s) => s.id.toLowerCase() === String(req.params.schemaId).toLowerCase());
    if (!schema) throw notFound(`Schema ${req.params.schemaId} not found`);
    send(res, 200, schemaDocument(schema, baseUrl(ctx, principalOf(req).connectionId)));
  });
  router.get('/ResourceTypes', (req, res) => {
    const base = baseUrl(ctx, principalOf(req).connectionId);
    const docs = ALL_RESOURCE_TYPES.map((type) => resourceTypeDocument(type, base));
    send(res, 200, listResponse(docs, docs.length, 1));
  });
  router.get('/ResourceTypes/:name', (req, res) => {
    const type = ALL_RESOURCE_TYPES.find(
      (t) => t.name.toLowerCase() === String(req.params.name).toLowerCase(),
    );
    if (!type) throw notFound(`ResourceType ${req.params.name} not found`);
    send(res, 200, resourceTypeDocument(type, baseUrl(ctx, principalOf(req).connectionId)));
  });

  // Users
  const listUsers = async (req: Request, res: Response, source: Record<string, unknown>) => {
    const { query, projection } = listParams(source);
    const { rows, total } = await listScimUsers(ctx, principalOf(req), query);
    send(res, 200, listResponse(await renderUsers(ctx, rows, projection), total, query.startIndex));
  };
  router.get('/Users', (req, res) => listUsers(req, res, queryAsRecord(req)));
  router.post('/Users/.search', (req, res) => listUsers(req, res, searchRequest(req.body)));
  router.get('/Users/:id', async (req, res) => {
    const row = await getScimUser(ctx, principalOf(req), resourceId(req, 'user'));
    ok(res, (await renderUsers(ctx, [row], projectionFromQuery(req)))[0]!);
  });
  router.post('/Users', async (req, res) => {
    const attributes = normalizeResource(USER_RESOURCE, bodyOf(req));
    const row = await createScimUser(ctx, principalOf(req), attributes, change(req));
    created(ctx, res, project(USER_RESOURCE, userResource(ctx, row, undefined), projectionFromQuery(req)));
  });
  router.put('/Users/:id', async (req, res) => {
    const id = resourceId(req, 'user');
    const attributes = normalizeResource(USER_RESOURCE, bodyOf(req));
    const row = await replaceScimUser(ctx, principalOf(req), id, attributes, ifMatch(req), change(req));
    ok(res, (await renderUsers(ctx, [row], projectionFromQuery(req)))[0]!);
  });
  router.patch('/Users/:id', async (req, res) => {
    const id = resourceId(req, 'user');
    const operations = parsePatchRequest(bodyOf(req));
    const row = await patchScimUser(ctx, principalOf(req), id, operations, ifMatch(req), change(req));
    ok(res, (await renderUsers(ctx, [row], projectionFromQuery(req)))[0]!);
  });
  router.delete('/Users/:id', async (req, res) => {
    await deleteScimUser(ctx, principalOf(req), resourceId(req, 'user'), ifMatch(req));
    res.status(204).end();
  });

  // Groups
  const listGroups = async (req: Request, res: Response, source: Record<string, unknown>) => {
    const { query, projection } = listParams(source);
    const { rows, total } = await listScimGroups(ctx, principalOf(req), query);
    send(res, 200, listResponse(await renderGroups(ctx, rows, projection, false), total, query.startIndex));
  };
  router.get('/Groups', (req, res) => listGroups(req, res, queryAsRecord(req)));
  router.post('/Groups/.search', (req, res) => listGroups(req, res, searchRequest(req.body)));
  router.get('/Groups/:id', async (req, res) => {
    const row = await getScimGroup(ctx, principalOf(req), resourceId(req, 'group'));
    ok(res, (await renderGroups(ctx, [row], projectionFromQuery(req), true))[0]!);
  });
  router.post('/Groups', async (req, res) => {
    const { attributes, memberIds } = splitMembers(normalizeGroup(bodyOf(req)));
    const { group, members } = await createScimGroup(
      ctx,
      principalOf(req),
      attributes,
      memberIds ?? [],
      change(req),
    );
    noteUnknownMembers(res, members);
    const [resource] = await renderGroups(ctx, [group], projectionFromQuery(req), true);
    created(ctx, res, resource!);
  });
  router.put('/Groups/:id', async (req, res) => {
    const id = resourceId(req, 'group');
    const { attributes, memberIds } = splitMembers(normalizeGroup(bodyOf(req)));
    const { group, members } = await replaceScimGroup(
      ctx,
      principalOf(req),
      id,
      attributes,
      memberIds ?? [],
      ifMatch(req),
      change(req),
    );
    noteUnknownMembers(res, members);
    ok(res, (await renderGroups(ctx, [group], projectionFromQuery(req), true))[0]!);
  });
  router.patch('/Groups/:id', async (req, res) => {
    const id = resourceId(req, 'group');
    const operations = parsePatchRequest(bodyOf(req));
    const { group, members } = await patchScimGroup(
      ctx,
      principalOf(req),
      id,
      operations,
      ifMatch(req),
      change(req),
    );
    noteUnknownMembers(res, members);
    const projection = projectionFromQuery(req);
    // 204 suits Entra and Okta alike; with attributes= or excludedAttributes= the caller asked for a body.
    if (!projection.attributes && !projection.excludedAttributes) {
      res.status(204).set('ETag', `W/"${group.version}"`).end();
      return;
    }
    ok(res, (await renderGroups(ctx, [group], projection, true))[0]!);
  });
  router.delete('/Groups/:id', async (req, res) => {
    await deleteScimGroup(ctx, principalOf(req), resourceId(req, 'group'), ifMatch(req), change(req));
    res.status(204).end();
  });

  // Root search across Users and Groups (RFC 7644 §3.4.3).
  router.post('/.search', async (req, res) => {
    const params = listParams(searchRequest(req.body));
    const everything = { ...params.query, startIndex: 1, count: MAX_RESULTS };
    const attempt = async <R>(fn: () => Promise<{ rows: R[]; total: number }>) => {
      try {
        return await fn();
      } catch (error) {
        // An attribute only one resource type has (userName) simply matches nothing of the other.
        if (error instanceof ScimError && error.scimType === 'invalidFilter')
          return { rows: [] as R[], total: 0, error };
        throw error;
      }
    };
    const users = await attempt(() => listScimUsers(ctx, principalOf(req), everything));
    const groups = await attempt(() => listScimGroups(ctx, principalOf(req), everything));
    if ('error' in users && 'error' in groups) throw users.error;
    const resources = [
      ...(await renderUsers(ctx, users.rows, params.projection)),
      ...(await renderGroups(ctx, groups.rows, params.projection, false)),
    ];
    const { startIndex, count } = params.query;
    send(
      res,
      200,
      listResponse(
        resources.slice(startIndex - 1, startIndex - 1 + count),
        users.total + groups.total,
        startIndex,
      ),
    );
  });

  router.all(['/Bulk', '/Me'], () => {
    throw new ScimError(501, undefined, 'Not implemented: Roster does not offer /Bulk or /Me');
  });
  router.use((req: Request) => {
    throw notFound(`No SCIM endpoint ${req.method} ${req.path}`);
  });
  router.use(scimErrorHandler);
  return router;
}

function normalizeGroup(body: unknown): ScimObject {
  return normalizeResource(GROUP_RESOURCE, body);
}

function searchRequest(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isPlainObject(body)) throw invalidSyntax('the body must be a SearchRequest object');
  return body;
}

type HttpError = Error & { type?: string; status?: number };

/** Maps framework errors (body parsing) onto SCIM errors; anything unexpected is a generic 500. */
export function toScimError(error: unknown): ScimError {
  if (error instanceof ScimError) return error;
  const e = error as HttpError;
  switch (e?.type) {
    case 'entity.parse.failed':
      return invalidSyntax('The request body is not valid JSON');
    case 'entity.too.large':
      return new ScimError(413, undefined, 'The request body is too large');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ScimError(415, undefined, 'Unsupported request body encoding or charset; send UTF-8 JSON');
    case 'request.aborted':
      return invalidSyntax('The request body was not received completely');
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500)
    return invalidSyntax('The request could not be read');
  return new ScimError(500, undefined, 'Internal error; the request id identifies it in the server logs', {
    cause: error,
  });
}

export function scimErrorHandler(error: unknown, req: Request, res: Response, _next: NextFunction): void {
  const scimError = toScimError(error);
  if (scimError.status >= 500 && scimError.status !== 501)
    req.log.error({ err: error }, 'unhandled SCIM error');
  res.locals.scimType = scimError.scimType;
  res.locals.scimDetail = scimError.detail;
  if (res.headersSent) {
    res.end();
    return;
  }
  send(res, scimError.status, toScimErrorBody(scimError), { ...scimError.headers, 'X-Request-Id': req.id });
}

export type { ResourceTypeDef };
