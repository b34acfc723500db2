import type { IncomingMessage } from 'node:http';
import { isPlainObject } from '../../scim/core/resource.js';
import { invalidSyntax, invalidValue, ScimError } from '../../scim/protocol/error.js';
import { jsonInputProblem } from '../json-input.js';
import type { ScimCall } from './call.js';

/** Reads a JSON body of any media type (IdPs send application/scim+json or application/json), bounded. */
export function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
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
