import type { AttrPath } from '../filter/ast.js';
import { parseAttrPath } from '../filter/parse.js';
import { invalidValue } from '../protocol/error.js';
import { isPlainObject, type ScimObject } from './resource.js';
import { findAttribute, findExtension, type ResourceTypeDef } from './schemas.js';

/** Resource rendering (RFC 7643 §3) and `attributes`/`excludedAttributes` projection (RFC 7644 §3.9). */

export interface ResourceMeta {
  created: Date;
  lastModified: Date;
  location: string;
  /** Incremented on every change; rendered as a weak ETag. */
  version: number;
}

export function etag(version: number): string {
  return `W/"${version}"`;
}

const attributeOrders = new WeakMap<ResourceTypeDef, Map<string, number>>();

/** Each attribute's position in the resource's schema, made once per resource type (not per response). */
function attributeOrder(resource: ResourceTypeDef): Map<string, number> {
  let order = attributeOrders.get(resource);
  if (!order) {
    order = new Map(resource.schema.attributes.map((a, i) => [a.name, i]));
    attributeOrders.set(resource, order);
  }
  return order;
}

/**
 * The SCIM representation: `schemas` (core + each extension present), `id`, `externalId`, the
 * stored attributes as written, `extra` (server-computed: `members`, `groups`), then `meta`.
 *
 * Every SCIM read renders through here (a lookup renders its user, a page 100), so the object is
 * built in one pass, in its final key order, without a sort callback or spread copies (which cost
 * about 3 % of a lookup's server CPU; README, bench:scim --round-trips --cpu-prof).
 */
export function renderResource(
  resource: ResourceTypeDef,
  id: string,
  attributes: ScimObject,
  meta: ResourceMeta,
  extra?: ScimObject,
): ScimObject {
  const schemas = [resource.schema.id];
  const out: ScimObject = { schemas, id };
  if (attributes.externalId !== undefined) out.externalId = attributes.externalId;
  // Schema order (userName, name, …) first: stored JSON (jsonb) does not keep the IdP's key order.
  // Others keep their stored order after them (a stable insertion sort: a resource has few keys).
  const order = attributeOrder(resource);
  const keys = Object.keys(attributes);
  const ranks = keys.map((key) => order.get(key) ?? order.size);
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    const rank = ranks[i]!;
    let j = i - 1;
    for (; j >= 0 && ranks[j]! > rank; j--) {
      keys[j + 1] = keys[j]!;
      ranks[j + 1] = ranks[j]!;
    }
    keys[j + 1] = key;
    ranks[j + 1] = rank;
  }
  const extensions: string[] = [];
  for (const key of keys) {
    // A stored `__proto__` key is not an attribute: assigning it would set the prototype.
    if (key === 'externalId' || key === '__proto__') continue;
    if (isUrn(key)) extensions.push(key);
    else out[key] = attributes[key];
  }
  if (extra) for (const key of Object.keys(extra)) out[key] = extra[key];
  for (const key of extensions) {
    schemas.push(key);
    out[key] = attributes[key];
  }
  out.meta = {
    resourceType: resource.name,
    created: meta.created.toISOString(),
    lastModified: meta.lastModified.toISOString(),
    location: meta.location,
    version: etag(meta.version),
  };
  return out;
}

const isUrn = (key: string) => key.length >= 4 && key.slice(0, 4).toLowerCase() === 'urn:';

export interface Projection {
  attributes?: AttrPath[];
  excludedAttributes?: AttrPath[];
}

/**
 * Most distinct paths one `attributes` or `excludedAttributes` may list. Projection costs
 * (paths x resources on the page): unbounded, one 1 MB search of 500,000 selectors held the event
 * loop for seconds. The whole User schema has fewer than 100 attribute paths.
 */
export const MAX_ATTRIBUTE_PATHS = 100;
/** Most entries, repeats included: beyond it the list is refused before any per-entry work. */
const MAX_LISTED_PATHS = 10 * MAX_ATTRIBUTE_PATHS;

/**
 * Parses `attributes=userName,name.givenName,emails[type eq "work"]` (a filter part is ignored).
 * Paths are de-duplicated case-insensitively; more than {@link MAX_ATTRIBUTE_PATHS} distinct ones
 * (or more than {@link MAX_LISTED_PATHS} entries, repeats included) is a 400 invalidValue.
 */
export function parseAttributeList(param: unknown, name: string): AttrPath[] | undefined {
  if (param === undefined || param === null || param === '') return undefined;
  if (typeof param !== 'string')
    throw invalidValue(`${name} must be a comma-separated list of attribute paths`);
  const listed = param.split(',', MAX_LISTED_PATHS + 1);
  if (listed.length > MAX_LISTED_PATHS) {
    throw invalidValue(`${name} lists more than ${MAX_LISTED_PATHS} attribute paths`);
  }
  const distinct = new Map<string, string>();
  for (const raw of listed) {
    const part = raw.trim().replace(/\[.*\]/, '');
    if (!part || distinct.has(part.toLowerCase())) continue;
    if (distinct.size === MAX_ATTRIBUTE_PATHS) {
      throw invalidValue(`${name} lists more than ${MAX_ATTRIBUTE_PATHS} distinct attribute paths`);
    }
    distinct.set(part.toLowerCase(), part);
  }
  return [...distinct.values()].map((part) =>
    parseAttrPath(part, (detail) => invalidValue(`${name}: ${detail}`)),
  );
}

const ALWAYS = new Set(['schemas', 'id']);

interface Selector {
  /** Top-level key in the rendered resource (attribute name or extension URN). */
  key: string;
  /** Attribute inside an extension object, or sub-attribute of a core attribute. */
  inner?: string;
  /** Sub-attribute of an extension attribute. */
  innerSub?: string;
}

function toSelector(resource: ResourceTypeDef, rendered: ScimObject, path: AttrPath): Selector | undefined {
  const keyOf = (name: string) => Object.keys(rendered).find((k) => k.toLowerCase() === name.toLowerCase());
  if (path.uri) {
    const whole = findExtension(resource, `${path.uri}:${path.attr}`);
    if (whole) return { key: whole.id };
    const extension = findExtension(resource, path.uri);
    if (extension) {
      const def = findAttribute(extension.attributes, path.attr);
      return {
        key: extension.id,
        inner: def?.name ?? path.attr,
        ...(path.sub ? { innerSub: path.sub } : {}),
      };
    }
    if (path.uri.toLowerCase() !== resource.schema.id.toLowerCase()) {
      const unknown = keyOf(`${path.uri}:${path.attr}`);
      return unknown ? { key: unknown } : undefined;
    }
  }
  const key = keyOf(path.attr) ?? findAttribute(resource.schema.attributes, path.attr)?.name ?? path.attr;
  return { key, ...(path.sub ? { inner: path.sub } : {}) };
}

function pick(value: unknown, name: string): unknown {
  const pickOne = (item: unknown) => {
    if (!isPlainObject(item)) return undefined;
    const key = Object.keys(item).find((k) => k.toLowerCase() === name.toLowerCase());
    return key === undefined ? undefined : { [key]: item[key] };
  };
  if (Array.isArray(value)) {
    const items = value.map(pickOne).filter((v) => v !== undefined);
    return items.length ? items : undefined;
  }
  return pickOne(value);
}

function omit(value: unknown, name: string): unknown {
  const omitOne = (item: unknown) => {
    if (!isPlainObject(item)) return item;
    const copy = { ...item };
    for (const key of Object.keys(copy)) if (key.toLowerCase() === name.toLowerCase()) delete copy[key];
    return copy;
  };
  return Array.isArray(value) ? value.map(omitOne) : omitOne(value);
}

function merge(a: unknown, b: unknown): unknown {
  if (isPlainObject(a) && isPlainObject(b)) return { ...a, ...b };
  return b ?? a;
}

/** Applies `attributes` (keep only these, plus `schemas` and `id`) or `excludedAttributes`. */
export function project(resource: ResourceTypeDef, rendered: ScimObject, projection: Projection): ScimObject {
  const projected = projectAttributes(resource, rendered, projection);
  if (projected === rendered || !Array.isArray(projected.schemas)) return projected;
  // `schemas` lists the extensions that are still in the projected resource.
  const schemas = (projected.schemas as string[]).filter(
    (uri) => uri === resource.schema.id || uri in projected,
  );
  return { ...projected, schemas };
}

function projectAttributes(
  resource: ResourceTypeDef,
  rendered: ScimObject,
  projection: Projection,
): ScimObject {
  if (projection.attributes?.length) {
    const out: ScimObject = {};
    for (const key of Object.keys(rendered)) if (ALWAYS.has(key)) out[key] = rendered[key];
    for (const path of projection.attributes) {
      const selector = toSelector(resource, rendered, path);
      if (!selector || rendered[selector.key] === undefined) continue;
      const value = rendered[selector.key];
      if (!selector.inner) {
        out[selector.key] = value;
        continue;
      }
      let picked = pick(value, selector.inner);
      if (picked !== undefined && selector.innerSub) {
        const innerValue = (picked as ScimObject)[Object.keys(picked as ScimObject)[0]!];
        const sub = pick(innerValue, selector.innerSub);
        picked = sub === undefined ? undefined : { [Object.keys(picked as ScimObject)[0]!]: sub };
      }
      if (picked !== undefined) out[selector.key] = merge(out[selector.key], picked);
    }
    // Keep the rendered key order (schemas, id, …, meta).
    return Object.fromEntries(
      Object.keys(rendered)
        .filter((k) => k in out)
        .map((k) => [k, out[k]]),
    );
  }
  if (projection.excludedAttributes?.length) {
    let out: ScimObject = { ...rendered };
    for (const path of projection.excludedAttributes) {
      const selector = toSelector(resource, out, path);
      if (!selector || ALWAYS.has(selector.key) || out[selector.key] === undefined) continue;
      if (!selector.inner) {
        const { [selector.key]: _removed, ...rest } = out;
        out = rest;
      } else {
        out[selector.key] = omit(out[selector.key], selector.inner);
      }
    }
    return out;
  }
  return rendered;
}

/** True when the projection asks for `name` (a top-level attribute), e.g. `members` on a list. */
export function requests(projection: Projection, name: string): boolean {
  return projection.attributes?.some((p) => !p.uri && p.attr.toLowerCase() === name.toLowerCase()) ?? false;
}

/** True when the projection excludes `name`. */
export function excludes(projection: Projection, name: string): boolean {
  if (projection.attributes?.length) return !requests(projection, name);
  return (
    projection.excludedAttributes?.some(
      (p) => !p.uri && !p.sub && p.attr.toLowerCase() === name.toLowerCase(),
    ) ?? false
  );
}
