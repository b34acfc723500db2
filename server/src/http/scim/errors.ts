import type { Context } from '../../context.js';
import {
  DatabaseUnavailableError,
  databaseUnavailableRetryAfter,
  isForeignKeyViolation,
  isInvalidInputValue,
} from '../../db/errors.js';
import { ScimError, toScimErrorBody } from '../../scim/protocol/error.js';
import type { ScimRequest } from './call.js';
import { send } from './response.js';

/** The 401 of a request without a valid bearer token for its connection. */
export function unauthorized(cause?: unknown): ScimError {
  return new ScimError(401, undefined, 'Missing, invalid or expired bearer token for this SCIM connection', {
    cause,
    headers: { 'WWW-Authenticate': 'Bearer realm="roster-scim"' },
  });
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
    return unauthorized(error);
  }
  return new ScimError(500, undefined, 'Internal error; the request id identifies it in the server logs', {
    cause: error,
  });
}

function foreignKeyOf(error: unknown): string {
  const constraint = (error as { constraint?: unknown }).constraint;
  return typeof constraint === 'string' ? constraint : '';
}

/** The one place a failed request is answered: a SCIM Error, logged when it is the server's fault. */
export function answerError(ctx: Context, request: ScimRequest, error: unknown): void {
  const { req, res, log } = request;
  const scimError = toScimError(error);
  // 501 and a held deprovision's 503 (deprovision-guard.ts) are answers, not failures; a 503
  // from an unreachable database is worth a warning.
  if (scimError.status === 503 && error instanceof DatabaseUnavailableError)
    log.warn({ err: error }, 'database unavailable');
  else if (scimError.status >= 500 && scimError.status !== 501 && scimError.status !== 503)
    log.error({ err: error }, 'unhandled SCIM error');
  if (scimError.status === 401 && error !== scimError) ctx.scimAuthCache.clear();
  request.outcome.scimType = scimError.scimType;
  request.outcome.detail = scimError.detail;
  if (res.headersSent) {
    res.end();
    return;
  }
  // The body may be unread (rejected before reading, e.g. 401 or 413): close after replying.
  const headers: Record<string, string> = { ...scimError.headers };
  if (!req.complete) headers.Connection = 'close';
  send(request, scimError.status, toScimErrorBody(scimError), headers);
  if (!req.complete) req.resume();
}
