import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import { ApiError, parseInput } from '../errors.js';
import type { KeyRing } from '../key-ring.js';
import { refreshSession } from '../sessions/refresh.js';
import { toSessionTokens } from '../sessions/sessions.js';
import type { SigningKeys } from '../sessions/signing-keys.js';
import { readBoundedBody } from './bounded-body.js';
import { logAccess, RequestLog, requestIdOf } from './request-context.js';
import { bodyProblemError, toApiError } from './v1/errors.js';
import { SessionRefresh } from './v1/schemas.js';

/**
 * `POST /v1/sessions/refresh`, served straight on node:http as SCIM is. Every active user of every
 * app refreshes once per token lifetime: with the database work down to one statement, Express's
 * router, request decoration and body parser were a large share of what a refresh cost the server
 * (see the sessions benchmark in the README). What Express gave is done here directly: the
 * request id, the access log, a bounded UTF-8 JSON body, and every failure as a /v1 error body.
 */

export const REFRESH_PATH = '/v1/sessions/refresh';
/** The body is one refresh token (at most 200 characters): anything larger is not a refresh. */
const BODY_LIMIT = 4096;
/** `application/json` or a `+json` type (`application/*+json`), with or without parameters. */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;
/** The headers every answer sets itself (lower case). */
const OWN_HEADERS = new Set(['x-request-id', 'server-timing', 'content-type', 'content-length']);

export interface RefreshHandlerDeps {
  ctx: Context;
  keyRing: KeyRing;
  signingKeys: SigningKeys;
}

/** Whether `req` is a refresh (any other method or path goes to the Express app). */
export function isRefreshRequest(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  return (
    req.method === 'POST' &&
    url.startsWith(REFRESH_PATH) &&
    (url.length === REFRESH_PATH.length || url[REFRESH_PATH.length] === '?')
  );
}

export function createRefreshHandler(
  deps: RefreshHandlerDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const refreshDeps = { keys: deps.signingKeys, keyRing: deps.keyRing };
  return (req, res) => {
    const startedAt = performance.now();
    const id = requestIdOf(req.headers['x-request-id']);
    const log = new RequestLog(deps.ctx.log, id);
    const reply = (status: number, body: object, headers: Record<string, string>) => {
      const payload = JSON.stringify(body);
      // A flat list of names and values: node:http takes it as it is, where an object (spread from
      // differently shaped ones) is read key by key through megamorphic lookups (perf, 16 sessions).
      const list: (string | number)[] = [
        'X-Request-Id',
        id,
        'Server-Timing',
        `app;dur=${(performance.now() - startedAt).toFixed(2)}`,
        'Content-Type',
        'application/json; charset=utf-8',
        'Content-Length',
        Buffer.byteLength(payload),
      ];
      // An error's own headers (Retry-After, WWW-Authenticate) never replace or repeat these.
      for (const name in headers) if (!OWN_HEADERS.has(name.toLowerCase())) list.push(name, headers[name]!);
      res.writeHead(status, list);
      res.end(payload);
      logAccess(log, 'POST', REFRESH_PATH, status, startedAt);
    };
    readBody(req)
      .then((text) => {
        const input = parseInput(SessionRefresh, parseJson(text));
        return refreshSession(deps.ctx, refreshDeps, input.refresh_token);
      })
      .then(
        (issued) => {
          const body: Schemas['SessionTokens'] = toSessionTokens(issued);
          reply(200, body, { 'Cache-Control': 'no-store' });
        },
        (error: unknown) => {
          const apiError = toApiError(error);
          if (apiError.status === 503) log.warn({ err: error }, 'database unavailable');
          else if (apiError.status >= 500) log.error({ err: error }, 'unhandled error');
          else if (apiError.cause) log.debug({ err: apiError.cause }, apiError.message);
          const body: Schemas['ErrorResponse'] = {
            error: {
              code: apiError.code,
              message: apiError.message,
              request_id: id,
              ...(apiError.details ? { details: apiError.details } : {}),
            },
          };
          // A body the client is still sending is not read: the connection closes after the answer.
          if (!req.complete) res.shouldKeepAlive = false;
          reply(apiError.status, body, apiError.headers ?? {});
        },
      );
  };
}

/** An empty body is an empty object (as Express's JSON parser reads it): the schema says what is missing. */
function parseJson(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', 'The request body is not valid JSON.');
  }
}

/** The body as UTF-8 text, at most BODY_LIMIT bytes, of a JSON media type, uncompressed. */
async function readBody(req: IncomingMessage): Promise<string> {
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody || !JSON_MEDIA_TYPE.test(req.headers['content-type'] ?? '')) {
    throw new ApiError(415, 'unsupported_media_type', 'Send the request body as application/json.');
  }
  const body = await readBoundedBody(req, BODY_LIMIT);
  if (body.ok) return body.bytes.toString('utf8');
  throw bodyProblemError(body.reason);
}
