import type { z } from 'zod';
import type { ErrorCode, Schemas } from './contract.js';

export type ErrorDetail = Schemas['ErrorDetail'];

/**
 * An expected failure of a management API operation. Rendered by http/v1 as
 * `{"error": {code, message, request_id, details?}}`; `code` is typed against the contract's
 * ErrorCode enum, so a code missing from openapi/roster.yaml does not compile. The message is for
 * the API caller: never put internal causes in it (use `cause`, which is logged).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  readonly code: ErrorCode;
  readonly details: ErrorDetail[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    options: { details?: ErrorDetail[]; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = status;
    this.code = code;
    this.details = options.details;
    this.headers = options.headers;
  }
}

/** The /v1 `not_found` error (the SCIM one is scimNotFound in scim/protocol/error.ts). */
export function notFound(resource: string, id: string): ApiError {
  return new ApiError(404, 'not_found', `No ${resource} with id "${id}".`);
}

/** Converts zod issues into a 400 whose message names the first offending field. */
export function validationError(issues: readonly z.core.$ZodIssue[], where?: string): ApiError {
  const details = issues.map((issue) => ({
    path: [...(where ? [where] : []), ...issue.path.map(String)].join('.') || '(body)',
    code: issue.code,
    message: issue.message,
  }));
  const first = details[0]!;
  return new ApiError(400, 'validation_failed', `${first.path}: ${first.message}`, { details });
}

/** Parses `value` with `schema`, or throws a 400 naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(result.error.issues, where);
  return result.data;
}
