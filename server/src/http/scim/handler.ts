import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parse as parseQueryString } from 'node:querystring';
import { sql } from 'kysely';
import type { Context } from '../../context.js';
import {
  DatabaseUnavailableError,
  databaseUnavailableRetryAfter,
  isForeignKeyViolation,
  isInvalidInputValue,
} from '../../db/errors.js';
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
  type ListQuery,
  listScimUsers,
  patchScimUser,
  replaceScimUser,
  type UserWithGroups,
} from '../../directory/scim-users.js';
import type { SyncLogWriter } from '../../directory/sync-log.js';
import { isId } from '../../ids.js';
import type { Logger } from '../../log.js';
import type { LocalRateLimiter, RateLimiter } from '../../rate-limit.js';
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
import { GROUP_RESOURCE, USER_RESOURCE } from '../../scim/core/schemas.js';
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
import { clientAddress } from '../client-address.js';
import { jsonInputProblem } from '../json-input.js';
import { logAccess, RequestLog, requestIdOf } from '../request-context.js';

/**
 * The SCIM 2.0 service provider (`/scim/v2/{connection_id}/…`), served straight on node:http.
 *
 * This is the hot path of Roster: an IdP's sync is thousands of small requests (lookup, POST,
 * PATCH). It does not go through Express: Express's router, request decoration and body parser
 * cost more per request than the work itself here (see the SCIM benchmark). What Express would
 * give is done directly and explicitly: a request id, the access log, the query string (node's
 * querystring: `+` is a space, as Entra sends it), a bounded JSON body of any media type, and
 * every failure rendered as a SCIM Error.
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

export const SCIM_PREFIX = '/scim/v2/';
const DEFAULT_COUNT = 100;
/**
 * Larger `startIndex` values are read as this one (an empty page), so that `startIndex=1e25` never
 * reaches the database as an OFFSET it cannot hold.
 */
const MAX_START_INDEX = 2_147_483_647;
export const SCIM_CONTENT_TYPE = `${SCIM_MEDIA_TYPE}; charset=utf-8`;

/** One SCIM request as the handlers see it. */
interface Call {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly id: string;
  readonly log: RequestLog;
  readonly method: string;
  readonly connectionId: string;
  /** Path below the connection's base, e.g. `/Users/user_…`. */
  readonly path: string;
  readonly segments: string[];
  /** Query parameters by lower-cased name; a repeated parameter counts once (the first). */
  readonly query: Record<string, string>;
  principal: ScimPrincipal;
  body: unknown;
  /** What the sync log records about an outcome. */
  scimType: string | undefined;
  detail: string | undefined;
}

function send(call: Call, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  call.res.writeHead(status, {
    ...headers,
    'X-Request-Id': call.id,
    'Content-Type': SCIM_CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(payload),
  });
  call.res.end(payload);
}

function noContent(call: Call, headers: Record<string, string> = {}): void {
  call.res.writeHead(204, { ...headers, 'X-Request-Id': call.id });
  call.res.end();
}

function baseUrl(ctx: Context, connectionId: string): string {
  return `${ctx.settings.publicUrl}${SCIM_PREFIX}${connectionId}`;
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
  const list = (name: string) => {
    const value = get(name);
    if (Array.isArray(value) && !value.every((item) => typeof item === 'string')) {
      throw invalidValue(`${name} must be a list of attribute path strings`);
    }
    return parseAttributeList(Array.isArray(value) ? value.join(',') : value, name);
  };
  const sortOrder = get('sortOrder');
  const sortBy = get('sortBy');
  return {
    query: {
      filter: filterText ? parseFilter(filterText) : undefined,
      startIndex: Math.min(MAX_START_INDEX, Math.max(1, int(get('startIndex')) ?? 1)),
      count: Math.min(MAX_RESULTS, Math.max(0, int(get('count')) ?? DEFAULT_COUNT)),
      sortBy: typeof sortBy === 'string' ? sortBy : undefined,
      sortOrder:
        typeof sortOrder === 'string' && sortOrder.toLowerCase() === 'descending'
          ? 'descending'
          : 'ascending',
    },
    projection: { attributes: list('attributes'), excludedAttributes: list('excludedAttributes') },
  };
}

function projectionOf(call: Call): Projection {
  return {
    attributes: parseAttributeList(call.query.attributes, 'attributes'),
    excludedAttributes: parseAttributeList(call.query.excludedattributes, 'excludedAttributes'),
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

function renderUsers(ctx: Context, rows: UserWithGroups[], projection: Projection): ScimObject[] {
  return rows.map((row) => project(USER_RESOURCE, userResource(ctx, row, row.groups), projection));
}

/**
 * Whether a user response carries the read-only `groups` attribute. Like `members` of groups, it is
 * returned by GET /Users/{id} (unless excluded) but in lists only when `attributes` asks for it: a
 * page of 100 users in 20 groups each would otherwise expand 2,000 relationships per page. No IdP
 * reads group membership from user lists; they manage it through /Groups.
 */
const wantsGroups = (projection: Projection, single: boolean) =>
  single ? !excludes(projection, 'groups') : requests(projection, 'groups');

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

function noteUnknownMembers(call: Call, members: MembersApplied): void {
  if (members.unknown.length > 0) {
    const shown = members.unknown.slice(0, 10).join(', ');
    call.detail = `ignored ${members.unknown.length} member id(s) that are not users of this connection: ${shown}`;
  }
}

function resourceId(call: Call, kind: 'user' | 'group'): string {
  const id = call.segments[1] ?? '';
  if (!isId(kind, id)) throw notFound(`${kind === 'user' ? 'User' : 'Group'} ${id} not found`);
  return id;
}

function ifMatch(call: Call): string | undefined {
  const header = call.req.headers['if-match'];
  return typeof header === 'string' ? header : undefined;
}

function created(call: Call, resource: ScimObject): void {
  const meta = resource.meta as { location: string; version: string };
  send(call, 201, resource, { Location: meta.location, ETag: meta.version });
}

function ok(call: Call, resource: ScimObject): void {
  const meta = resource.meta as { version?: string } | undefined;
  send(call, 200, resource, meta?.version ? { ETag: meta.version } : {});
}

function searchRequest(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isPlainObject(body)) throw invalidSyntax('the body must be a SearchRequest object');
  return body;
}

/** Reads a JSON body of any media type (IdPs send application/scim+json or application/json), bounded. */
function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new ScimError(413, undefined, `The request body is larger than ${limit} bytes`));
  }
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    return Promise.reject(
      new ScimError(415, undefined, `Unsupported Content-Encoding "${encoding}"; send uncompressed JSON`),
    );
  }
  const charset = /charset\s*=\s*"?([\w-]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return Promise.reject(new ScimError(415, undefined, `Unsupported charset "${charset}"; send UTF-8 JSON`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new ScimError(413, undefined, `The request body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {
      if (!failed) reject(invalidSyntax('The request body was not received completely'));
      failed = true;
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        resolve(undefined);
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        reject(invalidSyntax('The request body is not valid JSON'));
        return;
      }
      const problem = jsonInputProblem(parsed);
      if (problem) reject(invalidValue(problem.message));
      else resolve(parsed);
    });
  });
}

/** The body of a POST/PUT/PATCH that must have one. */
function requiredBody(call: Call): unknown {
  if (call.body === undefined) throw invalidSyntax('The request body is empty');
  return call.body;
}

/**
 * Maps anything thrown onto a SCIM error: an unavailable or overloaded database is a 503 with
 * Retry-After; unexpected errors become a generic 500 (logged).
 */
export function toScimError(error: unknown): ScimError {
  if (error instanceof ScimError) return error;
  const retryAfter = databaseUnavailableRetryAfter(error);
  if (retryAfter !== undefined) {
    return new ScimError(503, undefined, `The service is busy; retry after ${retryAfter} s`, {
      cause: error,
      headers: { 'Retry-After': String(retryAfter) },
    });
  }
  if (isInvalidInputValue(error)) {
    return new ScimError(
      400,
      'invalidValue',
      'A value of the request cannot be stored (too large or invalid)',
      {
        cause: error,
      },
    );
  }
  // The connection (or its organization) was deleted after this request authenticated, e.g. on
  // another server process whose token cache still held it: answer as for a deleted connection.
  if (isForeignKeyViolation(error) && /_(connection|organization)_id_fkey$/.test(foreignKeyOf(error))) {
    return new ScimError(
      401,
      undefined,
      'Missing, invalid or expired bearer token for this SCIM connection',
      {
        cause: error,
        headers: { 'WWW-Authenticate': 'Bearer realm="roster-scim"' },
      },
    );
  }
  return new ScimError(500, undefined, 'Internal error; the request id identifies it in the server logs', {
    cause: error,
  });
}

type Handler = (call: Call) => Promise<void> | void;

/**
 * Remembers, per connection and query, the id that ends each page served in the default order, so
 * that the request for the next page (startIndex = previous startIndex + count) continues after it
 * instead of skipping rows with OFFSET. Continuing after the last id also keeps a walk stable while
 * the directory changes: with OFFSET, a user deleted from an earlier page would make the next page
 * skip one. A request without a remembered cursor uses OFFSET.
 */
interface PageCursors {
  get(key: string): Promise<string | undefined>;
  set(key: string, lastId: string): Promise<void>;
}

function pageCursorKey(
  connectionId: string,
  kind: string,
  source: Record<string, unknown>,
  startIndex: number,
  count: number,
): string {
  const filter = Object.entries(source).find(([k]) => k.toLowerCase() === 'filter')?.[1];
  return `${connectionId}|${kind}|${typeof filter === 'string' ? filter : ''}|${count}|${startIndex}`;
}

/** In this process's memory, bounded (oldest entries dropped): for the embedded database. */
class LocalPageCursors implements PageCursors {
  readonly #entries = new Map<string, string>();

  async get(key: string): Promise<string | undefined> {
    return this.#entries.get(key);
  }

  async set(key: string, lastId: string): Promise<void> {
    if (this.#entries.size >= 5000) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, lastId);
  }
}

/**
 * In PostgreSQL (an unlogged table), so that the next page continues after the previous one
 * whichever server process serves it: an IdP's walk is spread over all of them.
 */
class SharedPageCursors implements PageCursors {
  readonly #db: Context['db'];
  #writes = 0;

  constructor(db: Context['db']) {
    this.#db = db;
  }

  async get(key: string): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('scim_page_cursors')
      .select('last_id')
      .where('key', '=', key)
      .executeTakeFirst();
    return row?.last_id;
  }

  async set(key: string, lastId: string): Promise<void> {
    await this.#db
      .insertInto('scim_page_cursors')
      .values({ key, last_id: lastId })
      .onConflict((oc) => oc.column('key').doUpdateSet({ last_id: lastId, created_at: sql`now()` }))
      .execute();
    // A walk takes minutes at most: forget cursors after an hour.
    if (++this.#writes % 1000 === 0) {
      sql`delete from scim_page_cursors where created_at < now() - interval '1 hour'`
        .execute(this.#db)
        .catch(() => {});
    }
  }
}

/** Creates the request listener for every path under `/scim/`. */
export function createScimHandler(deps: ScimDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { ctx } = deps;
  const change = (call: Call) =>
    changeOf(call.principal, { id: call.id, method: call.method, path: call.path }, ctx.now());

  const cursors: PageCursors =
    ctx.dbKind === 'postgres' ? new SharedPageCursors(ctx.db) : new LocalPageCursors();
  /** Uses the remembered end of the previous page when the query is in the default order. */
  const withCursor = async (
    call: Call,
    kind: string,
    source: Record<string, unknown>,
    query: ListQuery,
  ): Promise<ListQuery> => {
    if (query.sortBy || query.startIndex === 1 || query.count === 0) return query;
    const afterId = await cursors.get(
      pageCursorKey(call.connectionId, kind, source, query.startIndex, query.count),
    );
    return afterId ? { ...query, afterId } : query;
  };
  const remember = async (
    call: Call,
    kind: string,
    source: Record<string, unknown>,
    query: ListQuery,
    rows: { id: string }[],
  ) => {
    const last = rows[rows.length - 1];
    if (query.sortBy || !last || rows.length < query.count) return;
    await cursors.set(
      pageCursorKey(call.connectionId, kind, source, query.startIndex + rows.length, query.count),
      last.id,
    );
  };

  const listUsers = async (call: Call, source: Record<string, unknown>) => {
    const { query, projection } = listParams(source);
    const { rows, total } = await listScimUsers(
      ctx,
      call.principal,
      await withCursor(call, 'users', source, query),
      {
        withGroups: wantsGroups(projection, false),
      },
    );
    await remember(call, 'users', source, query, rows);
    send(call, 200, listResponse(renderUsers(ctx, rows, projection), total, query.startIndex));
  };

  const listGroups = async (call: Call, source: Record<string, unknown>) => {
    const { query, projection } = listParams(source);
    const { rows, total } = await listScimGroups(
      ctx,
      call.principal,
      await withCursor(call, 'groups', source, query),
    );
    await remember(call, 'groups', source, query, rows);
    send(call, 200, listResponse(await renderGroups(ctx, rows, projection, false), total, query.startIndex));
  };

  const users: Record<string, Handler> = {
    'GET /Users': (call) => listUsers(call, call.query),
    'POST /Users/.search': (call) => listUsers(call, searchRequest(call.body)),
    'GET /Users/:id': async (call) => {
      const projection = projectionOf(call);
      const row = await getScimUser(ctx, call.principal, resourceId(call, 'user'), {
        withGroups: wantsGroups(projection, true),
      });
      ok(call, renderUsers(ctx, [row], projection)[0]!);
    },
    'POST /Users': async (call) => {
      const attributes = normalizeResource(USER_RESOURCE, requiredBody(call));
      const row = await createScimUser(ctx, call.principal, attributes, change(call));
      created(call, project(USER_RESOURCE, userResource(ctx, row, undefined), projectionOf(call)));
    },
    'PUT /Users/:id': async (call) => {
      const id = resourceId(call, 'user');
      const attributes = normalizeResource(USER_RESOURCE, requiredBody(call));
      const row = await replaceScimUser(ctx, call.principal, id, attributes, ifMatch(call), change(call));
      ok(call, renderUsers(ctx, [row], projectionOf(call))[0]!);
    },
    'PATCH /Users/:id': async (call) => {
      const id = resourceId(call, 'user');
      const operations = parsePatchRequest(requiredBody(call));
      const row = await patchScimUser(ctx, call.principal, id, operations, ifMatch(call), change(call));
      ok(call, renderUsers(ctx, [row], projectionOf(call))[0]!);
    },
    'DELETE /Users/:id': async (call) => {
      await deleteScimUser(ctx, call.principal, resourceId(call, 'user'), ifMatch(call));
      noContent(call);
    },
  };

  const groups: Record<string, Handler> = {
    'GET /Groups': (call) => listGroups(call, call.query),
    'POST /Groups/.search': (call) => listGroups(call, searchRequest(call.body)),
    'GET /Groups/:id': async (call) => {
      const row = await getScimGroup(ctx, call.principal, resourceId(call, 'group'));
      ok(call, (await renderGroups(ctx, [row], projectionOf(call), true))[0]!);
    },
    'POST /Groups': async (call) => {
      const { attributes, memberIds } = splitMembers(normalizeResource(GROUP_RESOURCE, requiredBody(call)));
      const { group, members } = await createScimGroup(
        ctx,
        call.principal,
        attributes,
        memberIds ?? [],
        change(call),
      );
      noteUnknownMembers(call, members);
      created(call, (await renderGroups(ctx, [group], projectionOf(call), true))[0]!);
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
        change(call),
      );
      noteUnknownMembers(call, members);
      ok(call, (await renderGroups(ctx, [group], projectionOf(call), true))[0]!);
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
        change(call),
      );
      noteUnknownMembers(call, members);
      const projection = projectionOf(call);
      // 204 suits Entra and Okta alike; with attributes= or excludedAttributes= the caller asked for a body.
      if (!projection.attributes && !projection.excludedAttributes) {
        noContent(call, { ETag: `W/"${group.version}"` });
        return;
      }
      ok(call, (await renderGroups(ctx, [group], projection, true))[0]!);
    },
    'DELETE /Groups/:id': async (call) => {
      await deleteScimGroup(ctx, call.principal, resourceId(call, 'group'), ifMatch(call), change(call));
      noContent(call);
    },
  };

  const discovery: Record<string, Handler> = {
    'GET /ServiceProviderConfig': (call) =>
      send(call, 200, serviceProviderConfig(baseUrl(ctx, call.connectionId))),
    'GET /Schemas': (call) => {
      const docs = ALL_SCHEMAS.map((schema) => schemaDocument(schema, baseUrl(ctx, call.connectionId)));
      send(call, 200, listResponse(docs, docs.length, 1));
    },
    'GET /Schemas/:id': (call) => {
      const wanted = (call.segments[1] ?? '').toLowerCase();
      const schema = ALL_SCHEMAS.find((s) => s.id.toLowerCase() === wanted);
      if (!schema) throw notFound(`Schema ${call.segments[1]} not found`);
      send(call, 200, schemaDocument(schema, baseUrl(ctx, call.connectionId)));
    },
    'GET /ResourceTypes': (call) => {
      const docs = ALL_RESOURCE_TYPES.map((type) =>
        resourceTypeDocument(type, baseUrl(ctx, call.connectionId)),
      );
      send(call, 200, listResponse(docs, docs.length, 1));
    },
    'GET /ResourceTypes/:id': (call) => {
      const wanted = (call.segments[1] ?? '').toLowerCase();
      const type = ALL_RESOURCE_TYPES.find((t) => t.name.toLowerCase() === wanted);
      if (!type) throw notFound(`ResourceType ${call.segments[1]} not found`);
      send(call, 200, resourceTypeDocument(type, baseUrl(ctx, call.connectionId)));
    },
    // Root search across Users and Groups (RFC 7644 §3.4.3).
    'POST /.search': async (call) => {
      const params = listParams(searchRequest(call.body));
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
      const userRows = await attempt(() =>
        listScimUsers(ctx, call.principal, everything, { withGroups: wantsGroups(params.projection, false) }),
      );
      const groupRows = await attempt(() => listScimGroups(ctx, call.principal, everything));
      if ('error' in userRows && 'error' in groupRows) throw userRows.error;
      // Users first, then groups; only the requested page is rendered (rendering and projecting
      // every row fetched would cost up to 2,000 resources for a page of one).
      const { startIndex, count } = params.query;
      const from = Math.min(startIndex - 1, userRows.rows.length + groupRows.rows.length);
      const to = Math.min(from + count, userRows.rows.length + groupRows.rows.length);
      const pageUsers = userRows.rows.slice(from, to);
      const pageGroups = groupRows.rows.slice(
        Math.max(0, from - userRows.rows.length),
        Math.max(0, to - userRows.rows.length),
      );
      const page = [
        ...renderUsers(ctx, pageUsers, params.projection),
        ...(await renderGroups(ctx, pageGroups, params.projection, false)),
      ];
      send(call, 200, listResponse(page, userRows.total + groupRows.total, startIndex));
    },
  };

  const routes: Record<string, Handler> = { ...users, ...groups, ...discovery };
  const RESOURCES: Record<string, string> = {
    users: 'Users',
    groups: 'Groups',
    serviceproviderconfig: 'ServiceProviderConfig',
    schemas: 'Schemas',
    resourcetypes: 'ResourceTypes',
    '.search': '.search',
  };

  /** `(method, segments)` -> route key, with resource names matched case-insensitively. */
  const routeKey = (method: string, segments: string[]): string | undefined => {
    const resource = RESOURCES[(segments[0] ?? '').toLowerCase()];
    if (!resource) return undefined;
    if (segments.length === 1) return `${method} /${resource}`;
    if (segments.length === 2) {
      return segments[1] === '.search' ? `${method} /${resource}/.search` : `${method} /${resource}/:id`;
    }
    return undefined;
  };

  const handle = async (call: Call): Promise<void> => {
    if (!isId('connection', call.connectionId)) {
      throw notFound(`No SCIM endpoint at ${call.req.url?.split('?')[0]}; use the base URL of a connection`);
    }
    // Before authentication (which costs a database lookup), per client address: failed attempts
    // are limited, so that guessing tokens or flooding with garbage ones is cheap to refuse.
    const address = clientAddress(call.req, deps.trustProxyHops);
    const blocked = deps.authFailureLimiter.wait(address);
    if (blocked > 0) {
      throw new ScimError(
        429,
        undefined,
        `Too many failed authentications from this address; retry after ${blocked} s`,
        { headers: { 'Retry-After': String(blocked) } },
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(call.req.headers.authorization ?? '');
    const principal = match ? await authenticateScimToken(ctx, call.connectionId, match[1]!) : undefined;
    if (!principal) {
      deps.authFailureLimiter.take(address);
      throw new ScimError(
        401,
        undefined,
        'Missing, invalid or expired bearer token for this SCIM connection',
        {
          headers: { 'WWW-Authenticate': 'Bearer realm="roster-scim"' },
        },
      );
    }
    call.principal = principal;
    const wait = await deps.rateLimiter.take(principal.connectionId);
    if (wait > 0) {
      throw new ScimError(429, undefined, `Too many requests for this connection; retry after ${wait} s`, {
        headers: { 'Retry-After': String(wait) },
      });
    }
    const lower = (call.segments[0] ?? '').toLowerCase();
    if (lower === 'bulk' || lower === 'me')
      throw new ScimError(501, undefined, 'Not implemented: Roster does not offer /Bulk or /Me');
    const key = routeKey(call.method, call.segments);
    const route = key ? routes[key] : undefined;
    if (!route) throw notFound(`No SCIM endpoint ${call.method} ${call.path}`);
    if (call.method === 'POST' || call.method === 'PUT' || call.method === 'PATCH') {
      call.body = await readJson(call.req, deps.bodyLimitBytes);
    }
    await route(call);
  };

  return (req, res) => {
    const startedAt = performance.now();
    const id = requestIdOf(req.headers['x-request-id']);
    const log = new RequestLog(deps.log, id);
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const pathname = queryAt === -1 ? url : url.slice(0, queryAt);
    const rest = pathname.startsWith(SCIM_PREFIX) ? pathname.slice(SCIM_PREFIX.length) : '';
    const slash = rest.indexOf('/');
    const connectionId = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '/' : rest.slice(slash);
    const query: Record<string, string> = {};
    if (queryAt !== -1) {
      for (const [key, value] of Object.entries(parseQueryString(url.slice(queryAt + 1)))) {
        const lowerKey = key.toLowerCase();
        if (lowerKey in query) continue;
        const first = Array.isArray(value) ? value[0] : value;
        if (typeof first === 'string') query[lowerKey] = first;
      }
    }
    const call: Call = {
      req,
      res,
      id,
      log,
      method: req.method ?? 'GET',
      connectionId,
      path,
      segments: path.split('/').filter(Boolean).map(safeDecode),
      query,
      principal: undefined as unknown as ScimPrincipal,
      body: undefined,
      scimType: undefined,
      detail: undefined,
    };

    res.on('finish', () => {
      logAccess(log, call.method, pathname, res.statusCode, startedAt);
      // Only authenticated requests reach a connection's sync log: anyone may send the others.
      if (call.principal === undefined) return;
      deps.syncLog.record({
        connectionId,
        requestId: id,
        method: call.method,
        path,
        status: res.statusCode,
        scimType: call.scimType ?? null,
        detail: call.detail?.slice(0, 500) ?? null,
        durationMs: Math.round((performance.now() - startedAt) * 100) / 100,
        at: ctx.now(),
      });
    });

    handle(call).catch((error: unknown) => {
      const scimError = toScimError(error);
      // 501 and a held deprovision's 503 (deprovision-guard.ts) are answers, not failures; a 503
      // from an unreachable database is worth a warning.
      if (scimError.status === 503 && error instanceof DatabaseUnavailableError)
        log.warn({ err: error }, 'database unavailable');
      else if (scimError.status >= 500 && scimError.status !== 501 && scimError.status !== 503)
        log.error({ err: error }, 'unhandled SCIM error');
      if (scimError.status === 401 && error !== scimError) ctx.scimAuthCache.clear();
      call.scimType = scimError.scimType;
      call.detail = scimError.detail;
      if (res.headersSent) {
        res.end();
        return;
      }
      // The body may be unread (rejected before reading, e.g. 401 or 413): close after replying.
      const headers: Record<string, string> = { ...scimError.headers };
      if (!req.complete) headers.Connection = 'close';
      send(call, scimError.status, toScimErrorBody(scimError), headers);
      if (!req.complete) req.resume();
    });
  };
}

function foreignKeyOf(error: unknown): string {
  const constraint = (error as { constraint?: unknown }).constraint;
  return typeof constraint === 'string' ? constraint : '';
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
