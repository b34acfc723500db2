import type { NextFunction, Request, Response } from 'express';
import type { Schemas } from '../../contract.js';
import { databaseUnavailableRetryAfter, isInvalidInputValue } from '../../db/errors.js';
import { ApiError } from '../../errors.js';
import type { BodyProblem } from '../bounded-body.js';

type HttpError = Error & { type?: string; status?: number; statusCode?: number };

/** express's body parser names the same problems as `readBoundedBody` (http/bounded-body.ts), by its own `type`s. */
const BODY_PARSER_PROBLEMS: Record<string, BodyProblem['reason']> = {
  'entity.too.large': 'too_large',
  'encoding.unsupported': 'encoding',
  'charset.unsupported': 'charset',
  'request.aborted': 'aborted',
};

/**
 * The /v1 answer to a request body that could not be read: one wording whether express's body
 * parser read it or the refresh endpoint's `readBoundedBody` (http/bounded-body.ts).
 */
export function bodyProblemError(reason: BodyProblem['reason']): ApiError {
  switch (reason) {
    case 'too_large':
      return new ApiError(413, 'payload_too_large', 'The request body is too large.');
    case 'encoding':
    case 'charset':
      return new ApiError(415, 'unsupported_media_type', 'Unsupported request body encoding or charset.');
    case 'aborted':
      return new ApiError(400, 'invalid_json', 'The request body was not received completely.');
  }
}

/**
 * Maps body-parser and other framework errors to API errors, an unavailable or overloaded database
 * to a 503 with Retry-After; anything else is a 500.
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const retryAfter = databaseUnavailableRetryAfter(error);
  if (retryAfter !== undefined) {
    return new ApiError(503, 'service_unavailable', `The service is busy; retry after ${retryAfter} s.`, {
      cause: error,
      headers: { 'Retry-After': String(retryAfter) },
    });
  }
  if (isInvalidInputValue(error)) {
    return new ApiError(
      400,
      'validation_failed',
      'A value of the request cannot be stored (too large or invalid).',
      {
        cause: error,
      },
    );
  }
  const e = error as HttpError;
  if (e?.type === 'entity.parse.failed') {
    return new ApiError(400, 'invalid_json', 'The request body is not valid JSON.');
  }
  const problem = e?.type ? BODY_PARSER_PROBLEMS[e.type] : undefined;
  if (problem) return bodyProblemError(problem);
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError(400, 'validation_failed', 'The request could not be read.', { cause: error });
  }
  return new ApiError(
    500,
    'internal_error',
    'Internal error. The request id identifies it in the server logs.',
    {
      cause: error,
    },
  );
}

export function sendApiError(req: Request, res: Response, error: ApiError): void {
  const body: Schemas['ErrorResponse'] = {
    error: {
      code: error.code,
      message: error.message,
      request_id: req.id,
      ...(error.details ? { details: error.details } : {}),
    },
  };
  if (error.headers) res.set(error.headers);
  res.status(error.status).json(body);
}

/** Error middleware of the management API: every failure leaves as `{"error": {...}}`. */
export function apiErrorHandler(error: unknown, req: Request, res: Response, _next: NextFunction): void {
  const apiError = toApiError(error);
  if (apiError.status === 503) req.log.warn({ err: error }, 'database unavailable');
  else if (apiError.status >= 500) req.log.error({ err: error }, 'unhandled error');
  else if (apiError.cause) req.log.debug({ err: apiError.cause }, apiError.message);
  if (res.headersSent) {
    res.end();
    return;
  }
  sendApiError(req, res, apiError);
}
