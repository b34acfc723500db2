import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

/**
 * Validates real management API responses against openapi/roster.yaml. Strict on purpose: every
 * object schema that lists its properties is closed (`unevaluatedProperties: false`), so a field
 * the server returns but the document does not describe fails, as does a status the operation does
 * not declare. The harness records every response it sees; a setup file validates them after each
 * test file (test/contract-setup.ts).
 */

export interface RecordedResponse {
  method: string;
  path: string;
  status: number;
  contentType: string | null;
  body: unknown;
}

export const recorded: RecordedResponse[] = [];

type JsonObject = Record<string, unknown>;

const require = createRequire(import.meta.url);
const document = parse(readFileSync(require.resolve('@roster/openapi/roster.yaml'), 'utf8')) as JsonObject;

/** Closes every object schema that declares properties and says nothing about extra ones. */
function closeObjects(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) closeObjects(item);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const schema = node as JsonObject;
  if (
    schema.properties &&
    schema.additionalProperties === undefined &&
    schema.unevaluatedProperties === undefined
  ) {
    schema.unevaluatedProperties = false;
  }
  for (const value of Object.values(schema)) closeObjects(value);
}

const strict = structuredClone(document);
closeObjects(strict.components);
closeObjects(strict.paths);

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema(strict, 'roster');

interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  literalSegments: number;
  responses: JsonObject;
}

const operations: Operation[] = [];
for (const [template, item] of Object.entries(strict.paths as JsonObject)) {
  for (const [method, operation] of Object.entries(item as JsonObject)) {
    if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
    const segments = template.split('/');
    operations.push({
      method: method.toUpperCase(),
      template,
      pattern: new RegExp(
        `^${segments.map((s) => (s.startsWith('{') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`,
      ),
      literalSegments: segments.filter((s) => !s.startsWith('{')).length,
      responses: (operation as JsonObject).responses as JsonObject,
    });
  }
}

function resolveResponse(response: JsonObject): JsonObject {
  const ref = response.$ref as string | undefined;
  if (!ref) return response;
  const name = ref.replace('#/components/responses/', '');
  return ((strict.components as JsonObject).responses as JsonObject)[name] as JsonObject;
}

const cache = new Map<string, ValidateFunction>();
function validatorFor(pointer: string): ValidateFunction {
  let validate = cache.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `roster#${pointer}` });
    cache.set(pointer, validate);
  }
  return validate;
}

const escapePointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');
/** Bodies of errors any endpoint can answer (body parsing, limits, rate limits) need not be declared per operation. */
const GLOBAL_STATUSES = new Set([413, 415, 429, 500, 503]);

/** @returns problems found, one line each (empty when every response conforms). */
export function validateResponse(response: RecordedResponse): string[] {
  const path = response.path.split('?')[0]!;
  const candidates = operations
    .filter((op) => op.method === response.method && op.pattern.test(path))
    .sort((a, b) => b.literalSegments - a.literalSegments);
  const operation = candidates[0];
  const where = `${response.method} ${path} -> ${response.status}`;
  if (!operation) {
    // Unknown routes answer 404 route_not_found (or 401 first): still the error shape.
    if (response.status === 404 || response.status === 401) return checkError(response, where);
    return [`${where}: no operation in roster.yaml matches`];
  }
  const declared = operation.responses[String(response.status)];
  if (!declared) {
    if (GLOBAL_STATUSES.has(response.status)) return checkError(response, where);
    return [
      `${where}: status ${response.status} is not declared for ${operation.method} ${operation.template}`,
    ];
  }
  const resolved = resolveResponse(declared as JsonObject);
  const content = resolved.content as JsonObject | undefined;
  if (!content) {
    return response.body === undefined
      ? []
      : [`${where}: the document declares no body, the server sent one`];
  }
  if (!response.contentType?.startsWith('application/json'))
    return [`${where}: content type ${response.contentType}`];
  const ref = (declared as JsonObject).$ref as string | undefined;
  const pointer = ref
    ? `${ref.slice(1)}/content/application~1json/schema`
    : `/paths/${escapePointer(operation.template)}/${operation.method.toLowerCase()}/responses/${response.status}/content/application~1json/schema`;
  const validate = validatorFor(pointer);
  if (validate(response.body)) return [];
  return (validate.errors ?? []).map(
    (e) => `${where}: ${e.instancePath || '(body)'} ${e.message} ${JSON.stringify(e.params)}`,
  );
}

function checkError(response: RecordedResponse, where: string): string[] {
  const validate = validatorFor('/components/schemas/ErrorResponse');
  if (validate(response.body)) return [];
  return (validate.errors ?? []).map((e) => `${where}: ${e.instancePath || '(body)'} ${e.message}`);
}

/** Validates and clears what was recorded. */
export function validateRecorded(): { checked: number; problems: string[] } {
  const batch = recorded.splice(0);
  return { checked: batch.length, problems: batch.flatMap(validateResponse) };
}
