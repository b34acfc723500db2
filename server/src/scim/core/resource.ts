import { invalidSyntax, invalidValue } from '../protocol/error.js';
import {
  type AttributeDef,
  COMMON_ATTRIBUTES,
  findAttribute,
  findExtension,
  isCoreSchema,
  type ResourceTypeDef,
  SCHEMA_URNS,
  type SchemaDef,
} from './schemas.js';

/**
 * Input normalisation: what an IdP sends -> the canonical stored form of a resource.
 *
 * The stored form keeps exactly what was written (RFC 7643 round trip: Entra re-PATCHes every
 * cycle when GET differs), with these normalisations, each from observed IdP traffic
 * (docs/idp-behaviour.md#what-roster-tolerates):
 * - attribute names matched case-insensitively and stored in their canonical case (Microsoft's
 *   fixtures send `Department`, `Primary`);
 * - booleans accepted as `true`/`false` or the strings `"True"`/`"False"` in any case (Entra);
 * - `null` and `""` mean absent (OneLogin templates send `""` for unmapped fields);
 * - read-only (`id`, `meta`, `groups`) and unknown core attributes are ignored, `password` is
 *   discarded; `schemas` must name the core schema, or OneLogin's legacy `urn:scim:schemas:core:2.0`
 *   (see checkResourceSchemas), and its other URNs are not trusted;
 * - extension objects are recognised by key even when `schemas` does not list them (Entra), and
 *   unknown extension objects are kept as written;
 * - a single value where a list is expected is taken as a one-element list; the enterprise
 *   `manager` may be a bare id string, `{value}` or `[{value, $ref}]` (Entra variants).
 */

export type ScimObject = Record<string, unknown>;

const TRUE_STRINGS = new Set(['true']);
const FALSE_STRINGS = new Set(['false']);

export function isPlainObject(value: unknown): value is ScimObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `"True"`, `"false"`, `true` -> boolean; anything else undefined. */
export function coerceBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const lower = value.trim().toLowerCase();
    if (TRUE_STRINGS.has(lower)) return true;
    if (FALSE_STRINGS.has(lower)) return false;
  }
  return undefined;
}

function isAbsent(value: unknown): boolean {
  return value === null || value === undefined || value === '';
}

/**
 * Normalises one value by its attribute definition.
 * @returns the stored value, or `undefined` when the value means "absent".
 * @throws ScimError 400 invalidValue naming `where`.
 */
export function normalizeValue(def: AttributeDef, value: unknown, where: string): unknown {
  if (isAbsent(value)) return undefined;
  if (def.multiValued) {
    const list = Array.isArray(value) ? value : [value];
    const out: unknown[] = [];
    for (const [i, item] of list.entries()) {
      const normalized = normalizeSingle(def, item, `${where}[${i}]`);
      if (normalized === undefined) continue;
      if (isPlainObject(normalized) && Object.keys(normalized).length === 0) continue;
      out.push(normalized);
    }
    return out.length === 0 ? undefined : enforceSinglePrimary(out);
  }
  if (Array.isArray(value) && def.type === 'complex') {
    // Entra's legacy manager form: [{ "$ref": …, "value": … }].
    return value.length === 0 ? undefined : normalizeSingle(def, value[0], where);
  }
  return normalizeSingle(def, value, where);
}

function normalizeSingle(def: AttributeDef, value: unknown, where: string): unknown {
  if (isAbsent(value)) return undefined;
  switch (def.type) {
    case 'string':
    case 'reference':
      if (typeof value === 'string') return value;
      if (typeof value === 'number') return String(value);
      throw invalidValue(`${where} must be a string`);
    case 'boolean': {
      const b = coerceBoolean(value);
      if (b === undefined) throw invalidValue(`${where} must be a boolean (true or false)`);
      return b;
    }
    case 'integer':
    case 'decimal': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n) || (def.type === 'integer' && !Number.isInteger(n))) {
        throw invalidValue(`${where} must be ${def.type === 'integer' ? 'an integer' : 'a number'}`);
      }
      return n;
    }
    case 'dateTime':
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
        throw invalidValue(`${where} must be an xsd:dateTime string`);
      }
      return value;
    case 'complex': {
      if (!isPlainObject(value)) {
        // A bare string for a complex attribute means its `value` (Entra's manager, Postman's members).
        if (
          (typeof value === 'string' || typeof value === 'number') &&
          def.subAttributes?.some((s) => s.name === 'value')
        ) {
          return { value: String(value) };
        }
        throw invalidValue(`${where} must be an object`);
      }
      const out: ScimObject = {};
      for (const [key, raw] of Object.entries(value)) {
        const sub = findAttribute(def.subAttributes ?? [], key);
        if (!sub) continue;
        const normalized = normalizeSingle(sub, raw, `${where}.${sub.name}`);
        if (normalized !== undefined) out[sub.name] = normalized;
      }
      return out;
    }
  }
}

/** RFC 7643 §2.4: `primary: true` at most once; the first one wins. */
function enforceSinglePrimary(items: unknown[]): unknown[] {
  let seen = false;
  return items.map((item) => {
    if (!isPlainObject(item) || item.primary !== true) return item;
    if (!seen) {
      seen = true;
      return item;
    }
    return { ...item, primary: false };
  });
}

/** Normalises the attributes of an extension object (open schemas keep every non-null key). */
export function normalizeExtension(schema: SchemaDef, value: unknown, where: string): ScimObject | undefined {
  if (isAbsent(value)) return undefined;
  if (!isPlainObject(value)) throw invalidValue(`${where} must be an object`);
  const out: ScimObject = {};
  // Keys of an open extension as first written, by lower case: one lookup per key (a scan of
  // `out` per key was quadratic in the number of keys a body may carry).
  const openKeys = new Map<string, string>();
  for (const [key, raw] of Object.entries(value)) {
    if (schema.open) {
      const existing = openKeys.get(key.toLowerCase());
      if (existing === undefined) openKeys.set(key.toLowerCase(), key);
      if (!isAbsent(raw)) out[existing ?? key] = raw;
      continue;
    }
    const def = findAttribute(schema.attributes, key);
    if (!def || def.mutability === 'readOnly') continue;
    const normalized = normalizeValue(def, raw, `${where}.${def.name}`);
    if (normalized !== undefined) out[def.name] = normalized;
  }
  return Object.keys(out).length ? out : undefined;
}

/** Where a top-level key of a resource body belongs. */
export type KeyTarget =
  | { kind: 'core'; def: AttributeDef }
  | { kind: 'extension'; schema: SchemaDef }
  | { kind: 'extensionAttribute'; schema: SchemaDef; name: string }
  | { kind: 'unknownExtension'; uri: string; attr?: string }
  | { kind: 'ignored' };

const IGNORED_KEYS = new Set(['schemas', 'id', 'meta']);

/** Resolves a top-level body key, case-insensitively, including full-URN and dotted URN keys. */
export function resolveKey(resource: ResourceTypeDef, key: string): KeyTarget {
  const lower = key.toLowerCase();
  if (IGNORED_KEYS.has(lower)) return { kind: 'ignored' };
  if (lower.startsWith('urn:')) {
    const extension = findExtension(resource, key);
    if (extension) return { kind: 'extension', schema: extension };
    if (isCoreSchema(resource, key)) return { kind: 'ignored' };
    const colon = key.lastIndexOf(':');
    const uri = key.slice(0, colon);
    const attr = key.slice(colon + 1);
    if (isCoreSchema(resource, uri)) {
      const def = findAttribute(resource.schema.attributes, attr) ?? findAttribute(COMMON_ATTRIBUTES, attr);
      return def ? { kind: 'core', def } : { kind: 'ignored' };
    }
    const owner = findExtension(resource, uri);
    if (owner) return { kind: 'extensionAttribute', schema: owner, name: attr };
    return /^urn:[a-z0-9][a-z0-9-]{0,31}:/i.test(key)
      ? { kind: 'unknownExtension', uri: key }
      : { kind: 'ignored' };
  }
  const def = findAttribute(resource.schema.attributes, key) ?? findAttribute(COMMON_ATTRIBUTES, key);
  return def ? { kind: 'core', def } : { kind: 'ignored' };
}

/**
 * Core URNs of the SCIM drafts that stand for the resource's own core schema: OneLogin's
 * admin-edited templates send `urn:scim:schemas:core:2.0` (with
 * `urn:scim:schemas:extension:enterprise:2.0`) in PUT and POST bodies; `…:core:1.0` is the SCIM 1.1
 * form of its "Core Schema" connector.
 */
const LEGACY_CORE_URNS = new Set(['urn:scim:schemas:core:2.0', 'urn:scim:schemas:core:1.0']);
const CORE_URNS = [SCHEMA_URNS.user, SCHEMA_URNS.group];

/**
 * RFC 7643 §3: `schemas` of a POST or PUT body must name the resource's core schema. Refused with
 * 400 invalidSyntax: another resource type's core URN (a Group body sent to /Users), or no core
 * URN at all. Extension and vendor URNs beside it are ignored (Entra adds a Microsoft one); a body
 * without `schemas` is tolerated, as clients built from hand-written JSON omit it.
 */
function checkResourceSchemas(resource: ResourceTypeDef, body: ScimObject): void {
  const key = Object.keys(body).find((k) => k.toLowerCase() === 'schemas');
  const schemas = key === undefined ? undefined : body[key];
  if (schemas === undefined || schemas === null) return;
  const list = typeof schemas === 'string' ? [schemas] : schemas;
  if (!Array.isArray(list) || !list.every((uri) => typeof uri === 'string')) {
    throw invalidSyntax('"schemas" must be an array of schema URNs');
  }
  const lower = list.map((uri) => uri.toLowerCase());
  const foreign = CORE_URNS.find((uri) => !isCoreSchema(resource, uri) && lower.includes(uri.toLowerCase()));
  if (foreign) {
    throw invalidSyntax(
      `"schemas" names ${foreign}, the core schema of another resource type; ${resource.endpoint} takes ${resource.schema.id}`,
    );
  }
  if (!lower.some((uri) => isCoreSchema(resource, uri) || LEGACY_CORE_URNS.has(uri))) {
    throw invalidSyntax(`"schemas" must include ${resource.schema.id}`);
  }
}

/**
 * Normalises a POST or PUT body into the stored attributes of a resource.
 * @throws ScimError 400 (invalidSyntax for a non-object or wrong `schemas`, invalidValue for a bad
 * or missing value)
 */
export function normalizeResource(resource: ResourceTypeDef, body: unknown): ScimObject {
  if (!isPlainObject(body)) throw invalidSyntax(`the request body must be a ${resource.name} object`);
  checkResourceSchemas(resource, body);
  const out: ScimObject = {};
  for (const [key, raw] of Object.entries(body)) {
    const target = resolveKey(resource, key);
    switch (target.kind) {
      case 'ignored':
        break;
      case 'core': {
        const def = target.def;
        if (def.mutability === 'readOnly' || def.mutability === 'writeOnly') break;
        const normalized = normalizeValue(def, raw, def.name);
        if (normalized !== undefined) out[def.name] = normalized;
        break;
      }
      case 'extension': {
        const normalized = normalizeExtension(target.schema, raw, target.schema.id);
        if (normalized) out[target.schema.id] = { ...(out[target.schema.id] as ScimObject), ...normalized };
        break;
      }
      case 'extensionAttribute': {
        const normalized = normalizeExtension(target.schema, { [target.name]: raw }, target.schema.id);
        if (normalized) out[target.schema.id] = { ...(out[target.schema.id] as ScimObject), ...normalized };
        break;
      }
      case 'unknownExtension':
        if (isPlainObject(raw)) out[key] = stripNulls(raw);
        break;
    }
  }
  for (const def of resource.schema.attributes) {
    if (def.required && out[def.name] === undefined) throw invalidValue(`${def.name} is required`);
  }
  return out;
}

/** Deep copy without null members (unknown extensions are kept, minus explicit nulls). */
export function stripNulls(value: ScimObject): ScimObject {
  const out: ScimObject = {};
  for (const [key, raw] of Object.entries(value)) {
    if (raw === null || raw === undefined) continue;
    out[key] = isPlainObject(raw) ? stripNulls(raw) : raw;
  }
  return out;
}
