import type { IncomingMessage } from 'node:http';
import { isPlainObject } from '../../scim/core/resource.js';
import { invalidSyntax, invalidValue, ScimError } from '../../scim/protocol/error.js';
import { type BodyProblem, readBoundedBody } from '../bounded-body.js';
import { jsonInputProblem } from '../json-input.js';
import type { ScimCall } from './call.js';

/** Reads a JSON body of any media type (IdPs send application/scim+json or application/json), bounded. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const body = await readBoundedBody(req, limit);
  if (!body.ok) throw bodyError(body, limit);
  const text = body.bytes.toString('utf8');
  if (text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidSyntax('The request body is not valid JSON');
  }
  const problem = jsonInputProblem(parsed);
  if (problem) throw invalidValue(problem.message);
  return parsed;
}

/** Why the body was not read, as a SCIM error. */
function bodyError(problem: BodyProblem, limit: number): ScimError {
  switch (problem.reason) {
    case 'too_large':
      return new ScimError(413, undefined, `The request body is larger than ${limit} bytes`);
    case 'encoding':
      return new ScimError(
        415,
        undefined,
        `Unsupported Content-Encoding "${problem.value}"; send uncompressed JSON`,
      );
    case 'charset':
      return new ScimError(415, undefined, `Unsupported charset "${problem.value}"; send UTF-8 JSON`);
    case 'aborted':
      return invalidSyntax('The request body was not received completely');
  }
}

/** The body of a POST/PUT/PATCH that must have one. */
export function requiredBody(call: ScimCall): unknown {
  if (call.body === undefined) throw invalidSyntax('The request body is empty');
  return call.body;
}

/** The body of a `POST …/.search`: a SearchRequest object, or nothing (all defaults). */
export function searchRequest(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isPlainObject(body)) throw invalidSyntax('the body must be a SearchRequest object');
  return body;
}
