import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import type { Context } from '../../context.js';
import { changeOf } from '../../directory/scim-users.js';
import { isId } from '../../ids.js';
import type { Logger } from '../../log.js';
import { scimNotFound } from '../../scim/protocol/error.js';
import type { ScimPrincipal } from '../../scim-principal.js';
import { RequestLog, requestIdOf } from '../request-context.js';

/** One SCIM request: parsed from the URL (ScimRequest), then authenticated (ScimCall). */

export const SCIM_PREFIX = '/scim/v2/';

/** What the sync log records about one request, filled in while it is served. */
export interface Outcome {
  /** Set once the bearer token is accepted: only such requests reach a connection's sync log. */
  authenticated: boolean;
  scimType: string | undefined;
  detail: string | undefined;
}

/** One request below `/scim/`, parsed, not yet authenticated. */
export interface ScimRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly id: string;
  readonly log: RequestLog;
  readonly method: string;
  /** The path without the query string, for the access log. */
  readonly pathname: string;
  readonly connectionId: string;
  /** Path below the connection's base, e.g. `/Users/user_…`. */
  readonly path: string;
  readonly segments: string[];
  /** Query parameters by lower-cased name; a repeated parameter counts once (the first). */
  readonly query: Record<string, string>;
  readonly outcome: Outcome;
}

/** An authenticated request, as the routes see it. */
export interface ScimCall extends ScimRequest {
  readonly principal: ScimPrincipal;
  /** The connection's SCIM base URL, e.g. `https://roster.example/scim/v2/conn_…`. */
  readonly baseUrl: string;
  /** The JSON body of a POST, PUT or PATCH (undefined when empty or for other methods). */
  readonly body: unknown;
}

export type Route = (call: ScimCall) => Promise<void> | void;

/**
 * A request as the handler serves it: parsed with the authenticated fields still empty, then
 * filled in and handed to its route as the same object (not a copy per request).
 */
export interface PendingCall extends ScimRequest {
  principal: ScimPrincipal | undefined;
  baseUrl: string;
  body: unknown;
}

/**
 * Splits the URL: the query string is read with node's querystring, where `+` is a space, as Entra
 * sends it.
 */
export function parseRequest(req: IncomingMessage, res: ServerResponse, logger: Logger): PendingCall {
  const id = requestIdOf(req.headers['x-request-id']);
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const pathname = queryAt === -1 ? url : url.slice(0, queryAt);
  const rest = pathname.startsWith(SCIM_PREFIX) ? pathname.slice(SCIM_PREFIX.length) : '';
  const slash = rest.indexOf('/');
  const path = slash === -1 ? '/' : rest.slice(slash);
  const query: Record<string, string> = {};
  if (queryAt !== -1) {
    const parsed = parseQueryString(url.slice(queryAt + 1));
    for (const key in parsed) {
      const lowerKey = key.toLowerCase();
      if (lowerKey in query) continue;
      const value = parsed[key];
      const first = Array.isArray(value) ? value[0] : value;
      if (typeof first === 'string') query[lowerKey] = first;
    }
  }
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment) segments.push(segment.includes('%') ? safeDecode(segment) : segment);
  }
  return {
    req,
    res,
    id,
    log: new RequestLog(logger, id),
    method: req.method ?? 'GET',
    pathname,
    connectionId: slash === -1 ? rest : rest.slice(0, slash),
    path,
    segments,
    query,
    outcome: { authenticated: false, scimType: undefined, detail: undefined },
    principal: undefined,
    baseUrl: '',
    body: undefined,
  };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The `{id}` of `/Users/{id}` or `/Groups/{id}`; one that cannot be an id is simply not found. */
export function resourceId(call: ScimCall, kind: 'user' | 'group'): string {
  const id = call.segments[1] ?? '';
  if (!isId(kind, id)) throw scimNotFound(`${kind === 'user' ? 'User' : 'Group'} ${id} not found`);
  return id;
}

export function ifMatch(call: ScimCall): string | undefined {
  const header = call.req.headers['if-match'];
  return typeof header === 'string' ? header : undefined;
}

/** The `last_change` a write through this request stamps on the resource. */
export function changeFor(ctx: Context, call: ScimCall) {
  return changeOf(call.principal, { id: call.id, method: call.method, path: call.path }, ctx.now());
}
