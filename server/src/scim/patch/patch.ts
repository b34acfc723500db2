import { sameJson } from '../../lib/json.js';
import {
  isPlainObject,
  normalizeExtension,
  normalizeValue,
  type ScimObject,
  stripNulls,
} from '../core/resource.js';
import {
  type AttributeDef,
  COMMON_ATTRIBUTES,
  findAttribute,
  findExtension,
  isCoreSchema,
  type ResourceTypeDef,
  type SchemaDef,
} from '../core/schemas.js';
import type { PatchPath } from '../filter/ast.js';
import { elementFromFilter, matchesElement } from '../filter/evaluate.js';
import { parsePatchPath } from '../filter/parse.js';
import { serializePatchPath } from '../filter/serialize.js';
import {
  invalidPath,
  invalidSyntax,
  invalidValue,
  mutability,
  noTarget,
  ScimError,
} from '../protocol/error.js';
import { MESSAGE_SCHEMAS } from '../protocol/messages.js';

/**
 * The PATCH engine (RFC 7644 §3.5.2), pure: current stored attributes + operations -> new
 * attributes, plus the membership changes of a Group as a list of set operations. Members are
 * never materialised here: the store applies {@link MemberChange}s with SQL set operations, so that
 * concurrent PATCHes of one group compose instead of overwriting each other.
 *
 * Tolerated, because real IdPs send it (docs/idp-behaviour.md#what-roster-tolerates): Title-Case
 * `op` (Entra), `operations` for `Operations`, no-path `value` objects with dotted keys
 * (`name.givenName`) and URN-qualified keys (Entra with aadOptscim062020), read-only keys inside
 * them (Okta sends `id`), string booleans, `add`/`replace` on a value filter that matches nothing
 * creating the entry (Entra), `remove` of `members` with a `value` list removing only those members
 * (Entra, JumpCloud), a filter on the single-valued `manager`.
 */

export const MAX_OPERATIONS = 1000;
const PATCH_OP_URN = MESSAGE_SCHEMAS.patchOp;

export type PatchOpName = 'add' | 'remove' | 'replace';

export interface PatchOperation {
  op: PatchOpName;
  path?: PatchPath;
  value?: unknown;
}

export type MemberChange = { kind: 'add' | 'remove' | 'replace'; ids: string[] } | { kind: 'removeAll' };

export interface PatchOutcome {
  attributes: ScimObject;
  members: MemberChange[];
}

/** Validates a PatchOp message (RFC 7644 §3.5.2) and parses its paths. */
export function parsePatchRequest(body: unknown): PatchOperation[] {
  if (!isPlainObject(body)) throw invalidSyntax('the request body must be a PatchOp message');
  const schemasKey = Object.keys(body).find((k) => k.toLowerCase() === 'schemas');
  const schemas = schemasKey === undefined ? undefined : body[schemasKey];
  const named = (uri: unknown) => typeof uri === 'string' && uri.toLowerCase() === PATCH_OP_URN.toLowerCase();
  if (!(Array.isArray(schemas) ? schemas.some(named) : named(schemas))) {
    throw invalidSyntax(`"schemas" must be ["${PATCH_OP_URN}"]`);
  }
  const key = Object.keys(body).find((k) => k.toLowerCase() === 'operations');
  const operations = key === undefined ? undefined : body[key];
  if (!Array.isArray(operations) || operations.length === 0) {
    throw invalidSyntax('"Operations" must be a non-empty array of operations');
  }
  if (operations.length > MAX_OPERATIONS) {
    throw new ScimError(413, undefined, `at most ${MAX_OPERATIONS} operations per request`);
  }
  return operations.map((raw, i) => {
    if (!isPlainObject(raw)) throw invalidSyntax(`Operations[${i}] must be an object`);
    const fields = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v]));
    const op = typeof fields.op === 'string' ? fields.op.trim().toLowerCase() : undefined;
    if (op !== 'add' && op !== 'remove' && op !== 'replace') {
      throw invalidSyntax(`Operations[${i}].op must be "add", "remove" or "replace"`);
    }
    const operation: PatchOperation = { op };
    if (fields.path !== undefined && fields.path !== null && fields.path !== '') {
      if (typeof fields.path !== 'string') throw invalidPath(`Operations[${i}].path must be a string`);
      operation.path = parsePatchPath(fields.path);
    }
    if ('value' in fields) operation.value = fields.value;
    if (op !== 'remove' && !('value' in fields)) throw invalidValue(`Operations[${i}] (${op}) needs a value`);
    return operation;
  });
}

type Target =
  | { kind: 'attribute'; container: string | undefined; def: AttributeDef }
  | { kind: 'open'; container: string; name: string }
  | { kind: 'extension'; schema: SchemaDef }
  | { kind: 'unknownExtension'; uri: string }
  | { kind: 'members' }
  | { kind: 'ignore' };

const READ_ONLY_ROOT = new Set(['id', 'meta', 'schemas']);

function resolve(resource: ResourceTypeDef, path: PatchPath): Target {
  const text = serializePatchPath(path);
  let schema: SchemaDef | undefined;
  let container: string | undefined;
  if (path.uri) {
    if (isCoreSchema(resource, path.uri)) {
      schema = resource.schema;
    } else {
      schema = findExtension(resource, path.uri);
      if (!schema) {
        // `urn:…:enterprise:2.0:User` as a whole: parsePatchPath split it at the last colon.
        const whole = findExtension(resource, `${path.uri}:${path.attr}`);
        if (whole && !path.sub && !path.filter) return { kind: 'extension', schema: whole };
        if (/^urn:/i.test(path.uri) && !path.filter)
          return { kind: 'unknownExtension', uri: `${path.uri}:${path.attr}` };
        throw invalidPath(`"${text}": unknown schema "${path.uri}"`);
      }
      container = schema.id;
    }
  }
  if (!container && READ_ONLY_ROOT.has(path.attr.toLowerCase())) {
    throw mutability(`"${path.attr}" is read-only`);
  }
  if (schema?.open) return { kind: 'open', container: schema.id, name: path.attr };
  const attributes = schema?.attributes ?? resource.schema.attributes;
  const def =
    findAttribute(attributes, path.attr) ??
    (container ? undefined : findAttribute(COMMON_ATTRIBUTES, path.attr));
  if (!def) throw invalidPath(`"${text}": no attribute "${path.attr}" in ${schema?.name ?? resource.name}`);
  if (def.mutability === 'readOnly') throw mutability(`"${def.name}" is read-only`);
  if (def.mutability === 'writeOnly') return { kind: 'ignore' };
  if (resource.name === 'Group' && def.name === 'members' && !container) return { kind: 'members' };
  return { kind: 'attribute', container, def };
}

function containerOf(
  doc: ScimObject,
  container: string | undefined,
  create: boolean,
): ScimObject | undefined {
  if (container === undefined) return doc;
  const existing = doc[container];
  if (isPlainObject(existing)) return existing;
  if (!create) return undefined;
  const fresh: ScimObject = {};
  doc[container] = fresh;
  return fresh;
}

function setPrimaryExclusive(list: unknown[], chosen: unknown): void {
  if (!isPlainObject(chosen) || chosen.primary !== true) return;
  for (const item of list)
    if (item !== chosen && isPlainObject(item) && item.primary === true) item.primary = false;
}

/** Member ids from `[{value}, …]`, `{value}` or bare id strings; `$ref`/`display` are ignored. */
function memberIds(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((item, i) => {
    const id = isPlainObject(item) ? item.value : item;
    if (typeof id !== 'string' || id === '') throw invalidValue(`members[${i}].value must be a member id`);
    return id;
  });
}

/** `members[value eq "a"]`, `members[value eq "a" or value eq "b"]` -> ids. */
function memberIdsFromFilter(path: PatchPath): string[] {
  const ids: string[] = [];
  const walk = (f: NonNullable<PatchPath['filter']>): void => {
    if (f.op === 'or') {
      walk(f.left);
      walk(f.right);
    } else if (
      f.op === 'eq' &&
      f.path.attr.toLowerCase() === 'value' &&
      !f.path.sub &&
      typeof f.value === 'string'
    ) {
      ids.push(f.value);
    } else {
      throw invalidPath(`"${serializePatchPath(path)}": members can be selected by value eq "<id>" only`);
    }
  };
  walk(path.filter!);
  return ids;
}

class PatchApplier {
  readonly doc: ScimObject;
  readonly members: MemberChange[] = [];
  readonly #resource: ResourceTypeDef;

  constructor(resource: ResourceTypeDef, current: ScimObject) {
    this.#resource = resource;
    this.doc = structuredClone(current);
  }

  apply(operation: PatchOperation): void {
    if (!operation.path) {
      this.#applyNoPath(operation);
      return;
    }
    this.#applyPath(operation.op, operation.path, operation.value);
  }

  /** RFC 7644 §3.5.2.1/3: no path -> `value` is an object of attributes, merged (never substituted). */
  #applyNoPath(operation: PatchOperation): void {
    if (operation.op === 'remove') throw noTarget('"remove" needs a path');
    if (!isPlainObject(operation.value))
      throw invalidValue(`"${operation.op}" without a path needs an object value`);
    for (const [key, value] of Object.entries(operation.value)) {
      if (READ_ONLY_ROOT.has(key.toLowerCase())) continue;
      const extension = findExtension(this.#resource, key);
      if (extension) {
        if (value === null) {
          if (operation.op === 'replace') delete this.doc[extension.id];
          continue;
        }
        if (!isPlainObject(value)) throw invalidValue(`${extension.id} must be an object`);
        for (const [name, inner] of Object.entries(value)) {
          this.#applyLenient(operation.op, { uri: extension.id, attr: name }, inner);
        }
        continue;
      }
      let path: PatchPath;
      try {
        path = parsePatchPath(key);
      } catch {
        continue; // a key that is no attribute path at all: ignored, as in a POST body
      }
      this.#applyLenient(operation.op, path, value);
    }
  }

  /** Inside a no-path value, unknown and read-only attributes are ignored as in POST bodies. */
  #applyLenient(op: PatchOpName, path: PatchPath, value: unknown): void {
    try {
      this.#applyPath(op, path, value);
    } catch (error) {
      if (error instanceof ScimError && (error.scimType === 'invalidPath' || error.scimType === 'mutability'))
        return;
      throw error;
    }
  }

  #applyPath(op: PatchOpName, path: PatchPath, value: unknown): void {
    const target = resolve(this.#resource, path);
    switch (target.kind) {
      case 'ignore':
        return;
      case 'members':
        this.#members(op, path, value);
        return;
      case 'extension':
        this.#wholeExtension(op, target.schema, value);
        return;
      case 'unknownExtension':
        if (op === 'remove' || value === null) delete this.doc[target.uri];
        else if (isPlainObject(value)) this.doc[target.uri] = stripNulls(value);
        else throw invalidValue(`${target.uri} must be an object`);
        return;
      case 'open':
        this.#open(op, target.container, target.name, path, value);
        return;
      case 'attribute':
        if (path.filter) this.#valuePath(op, target.container, target.def, path, value);
        else if (path.sub) this.#subAttribute(op, target.container, target.def, path.sub, value);
        else this.#attribute(op, target.container, target.def, value);
        this.#dropEmptyContainer(target.container);
    }
  }

  #wholeExtension(op: PatchOpName, schema: SchemaDef, value: unknown): void {
    if (op === 'remove' || value === null) {
      delete this.doc[schema.id];
      return;
    }
    const normalized = normalizeExtension(schema, value, schema.id);
    if (normalized)
      this.doc[schema.id] = { ...(containerOf(this.doc, schema.id, false) ?? {}), ...normalized };
  }

  #open(op: PatchOpName, container: string, name: string, path: PatchPath, value: unknown): void {
    if (path.filter)
      throw invalidPath(`"${serializePatchPath(path)}": value filters need a defined attribute`);
    const target = containerOf(this.doc, container, op !== 'remove');
    if (!target) return;
    const key = Object.keys(target).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
    if (path.sub) {
      const parent = isPlainObject(target[key]) ? (target[key] as ScimObject) : undefined;
      if (op === 'remove' || value === null || value === '') {
        if (parent) delete parent[path.sub];
      } else {
        target[key] = { ...(parent ?? {}), [path.sub]: value };
      }
    } else if (op === 'remove' || value === null || value === '') {
      delete target[key];
    } else {
      target[key] = value;
    }
    this.#dropEmptyContainer(container);
  }

  #attribute(op: PatchOpName, container: string | undefined, def: AttributeDef, value: unknown): void {
    const where = container ? `${container}:${def.name}` : def.name;
    if (op === 'remove') {
      const parent = containerOf(this.doc, container, false);
      if (!parent || parent[def.name] === undefined) return;
      if (def.multiValued && value !== undefined && value !== null) {
        // Entra/JumpCloud: remove with a value list removes those entries only.
        const list = parent[def.name] as unknown[];
        const doomed = (Array.isArray(value) ? value : [value]).map((v) => (isPlainObject(v) ? v.value : v));
        const kept = list.filter(
          (item) => !doomed.some((d) => sameJson(isPlainObject(item) ? item.value : item, d)),
        );
        if (kept.length) parent[def.name] = kept;
        else delete parent[def.name];
        return;
      }
      if (def.required) throw invalidValue(`${def.name} is required and cannot be removed`);
      delete parent[def.name];
      return;
    }
    const normalized = normalizeValue(def, value, where);
    const parent = containerOf(this.doc, container, normalized !== undefined)!;
    if (normalized === undefined) {
      if (!parent) return;
      if (def.required) throw invalidValue(`${def.name} is required and cannot be cleared`);
      delete parent[def.name];
      return;
    }
    if (def.multiValued) {
      const items = normalized as unknown[];
      if (op === 'replace') {
        parent[def.name] = items;
        return;
      }
      const list = Array.isArray(parent[def.name]) ? [...(parent[def.name] as unknown[])] : [];
      for (const item of items) {
        if (list.some((existing) => sameJson(existing, item))) continue;
        list.push(item);
        setPrimaryExclusive(list, item);
      }
      parent[def.name] = list;
      return;
    }
    if (def.type === 'complex' && isPlainObject(parent[def.name])) {
      // RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged.
      parent[def.name] = { ...(parent[def.name] as ScimObject), ...(normalized as ScimObject) };
      return;
    }
    parent[def.name] = normalized;
  }

  #subAttribute(
    op: PatchOpName,
    container: string | undefined,
    def: AttributeDef,
    sub: string,
    value: unknown,
  ): void {
    const subDef = findAttribute(def.subAttributes ?? [], sub);
    if (def.type !== 'complex' || !subDef) {
      throw invalidPath(`"${def.name}.${sub}": no sub-attribute "${sub}"`);
    }
    if (subDef.mutability === 'readOnly') throw mutability(`"${def.name}.${subDef.name}" is read-only`);
    const normalized =
      op === 'remove' ? undefined : normalizeValue(subDef, value, `${def.name}.${subDef.name}`);
    const parent = containerOf(this.doc, container, normalized !== undefined);
    if (!parent) return;
    const setOn = (element: ScimObject) => {
      if (normalized === undefined) delete element[subDef.name];
      else element[subDef.name] = normalized;
    };
    if (def.multiValued) {
      const list = Array.isArray(parent[def.name]) ? (parent[def.name] as ScimObject[]) : [];
      if (list.length === 0) {
        if (normalized !== undefined) parent[def.name] = [{ [subDef.name]: normalized }];
        return;
      }
      for (const element of list) setOn(element);
      parent[def.name] = list.filter((element) => Object.keys(element).length > 0);
      if ((parent[def.name] as unknown[]).length === 0) delete parent[def.name];
      return;
    }
    const element = isPlainObject(parent[def.name]) ? (parent[def.name] as ScimObject) : {};
    setOn(element);
    if (Object.keys(element).length) parent[def.name] = element;
    else delete parent[def.name];
  }

  /** `emails[type eq "work"].value`, `manager[value eq "…"]`, `roles[primary eq "True"].value`. */
  #valuePath(
    op: PatchOpName,
    container: string | undefined,
    def: AttributeDef,
    path: PatchPath,
    value: unknown,
  ): void {
    const text = serializePatchPath(path);
    if (def.type !== 'complex') throw invalidPath(`"${text}": a value filter needs a complex attribute`);
    const subAttributes = def.subAttributes ?? [];
    const subDef = path.sub ? findAttribute(subAttributes, path.sub) : undefined;
    if (path.sub && !subDef) throw invalidPath(`"${text}": no sub-attribute "${path.sub}"`);
    if (subDef?.mutability === 'readOnly') throw mutability(`"${text}" is read-only`);

    const parent = containerOf(this.doc, container, op !== 'remove');
    if (!parent) return;
    const current = parent[def.name];
    const list: ScimObject[] = def.multiValued
      ? Array.isArray(current)
        ? (current as ScimObject[])
        : []
      : isPlainObject(current)
        ? [current]
        : [];
    const matching = list.filter((element) => matchesElement(element, path.filter!, subAttributes));

    let next: ScimObject[];
    if (op === 'remove') {
      if (subDef) {
        for (const element of matching) delete element[subDef.name];
        next = list.filter((element) => Object.keys(element).length > 0);
      } else {
        next = list.filter((element) => !matching.includes(element));
      }
    } else {
      const clear = value === null || value === '';
      const patchFor = (): ScimObject | undefined => {
        if (subDef) {
          const v = clear ? undefined : normalizeValue(subDef, value, `${text}`);
          return v === undefined ? undefined : { [subDef.name]: v };
        }
        if (clear) return undefined;
        const element = normalizeValue({ ...def, multiValued: false }, value, text);
        return element as ScimObject;
      };
      const patch = patchFor();
      if (matching.length > 0) {
        for (const element of matching) {
          if (patch === undefined) {
            if (subDef) delete element[subDef.name];
            else list.splice(list.indexOf(element), 1);
          } else {
            Object.assign(element, patch);
            if (def.multiValued) setPrimaryExclusive(list, element);
          }
        }
        next = list.filter((element) => Object.keys(element).length > 0);
      } else {
        if (patch === undefined) return;
        // Entra creates the entry it filtered for (create-on-absent) on add and replace alike.
        const template = elementFromFilter(path.filter!, subAttributes);
        if (!template) throw noTarget(`"${text}" matches no value and does not say how to create one`);
        const created = { ...template, ...patch };
        next = [...list, created];
        if (def.multiValued) setPrimaryExclusive(next, created);
      }
    }

    if (def.multiValued) {
      if (next.length) parent[def.name] = next;
      else delete parent[def.name];
    } else if (next[0]) {
      parent[def.name] = next[0];
    } else {
      delete parent[def.name];
    }
  }

  #members(op: PatchOpName, path: PatchPath, value: unknown): void {
    if (path.sub)
      throw invalidPath(`"${serializePatchPath(path)}": change members as a whole or by value filter`);
    if (path.filter) {
      if (op !== 'remove')
        throw invalidPath(`"${serializePatchPath(path)}": only "remove" takes a member filter`);
      this.members.push({ kind: 'remove', ids: memberIdsFromFilter(path) });
      return;
    }
    if (op === 'add') {
      this.members.push({ kind: 'add', ids: memberIds(value) });
    } else if (op === 'replace') {
      this.members.push({ kind: 'replace', ids: memberIds(value) });
    } else if (value === undefined || value === null) {
      // RFC 7644 §3.5.2.2: remove without a filter or value removes all members.
      this.members.push({ kind: 'removeAll' });
    } else {
      // Entra (without aadOptscim062020) and JumpCloud: only the listed members.
      this.members.push({ kind: 'remove', ids: memberIds(value) });
    }
  }

  #dropEmptyContainer(container: string | undefined): void {
    if (
      container &&
      isPlainObject(this.doc[container]) &&
      Object.keys(this.doc[container] as object).length === 0
    ) {
      delete this.doc[container];
    }
  }
}

/**
 * Applies operations in order; the result reflects all of them or the call throws (atomicity:
 * the caller persists nothing on a throw).
 */
export function applyPatch(
  resource: ResourceTypeDef,
  current: ScimObject,
  operations: PatchOperation[],
): PatchOutcome {
  const applier = new PatchApplier(resource, current);
  for (const operation of operations) applier.apply(operation);
  for (const def of resource.schema.attributes) {
    if (def.required && def.name !== 'members' && applier.doc[def.name] === undefined) {
      throw invalidValue(`${def.name} is required`);
    }
  }
  return { attributes: applier.doc, members: applier.members };
}
