import type { NextFunction, Request, Response } from 'express';
import { ApiError } from '../errors.js';

/**
 * Checks on a parsed JSON request body that no schema validation makes: nesting depth and NUL
 * characters. Both used to reach the database and fail there (500): PostgreSQL text and jsonb
 * cannot hold U+0000, and deeply nested jsonb (or a recursive walk of it) exhausts a stack. Shared
 * by the SCIM handler and the management API, each rendering the problem in its own error format.
 */

/** Deeper than any SCIM resource, PatchOp or /v1 body (the deepest real ones nest 4 to 5 levels). */
export const MAX_JSON_DEPTH = 32;

export interface JsonProblem {
  kind: 'depth' | 'nul';
  message: string;
}

/** The first problem of `value`, or undefined. Iterative: safe on any depth JSON.parse accepted. */
export function jsonInputProblem(value: unknown): JsonProblem | undefined {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: item, depth } = stack.pop()!;
    if (typeof item === 'string') {
      if (item.includes('\0')) return { kind: 'nul', message: 'strings must not contain NUL (U+0000)' };
      continue;
    }
    if (typeof item !== 'object' || item === null) continue;
    if (depth >= MAX_JSON_DEPTH) {
      return { kind: 'depth', message: `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels` };
    }
    if (Array.isArray(item)) {
      for (const element of item) stack.push({ value: element, depth: depth + 1 });
      continue;
    }
    for (const [key, element] of Object.entries(item)) {
      if (key.includes('\0')) return { kind: 'nul', message: 'member names must not contain NUL (U+0000)' };
      stack.push({ value: element, depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * Management API middleware (after the JSON body parser): a body nested too deep, or NUL in the
 * body or the query string, is a 400 `validation_failed` instead of a database error.
 */
export function rejectUnsafeJsonInput(req: Request, _res: Response, next: NextFunction): void {
  for (const [where, value] of [
    ['(body)', req.body],
    ['query', req.query],
  ] as const) {
    const problem = jsonInputProblem(value);
    if (!problem) continue;
    throw new ApiError(400, 'validation_failed', `${where}: ${problem.message}`, {
      details: [
        {
          path: where,
          code: problem.kind === 'nul' ? 'invalid_string' : 'too_deep',
          message: problem.message,
        },
      ],
    });
  }
  next();
}
