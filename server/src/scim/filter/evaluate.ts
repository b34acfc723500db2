import { coerceBoolean, isPlainObject, type ScimObject } from '../core/resource.js';
import { type AttributeDef, findAttribute } from '../core/schemas.js';
import { invalidFilter } from '../protocol/error.js';
import type { CompareOp, Filter, FilterValue } from './ast.js';

/**
 * In-memory evaluation of a value filter against one element of a multi-valued complex attribute
 * (the `[...]` of a PATCH path, e.g. `emails[type eq "work"]`). Case sensitivity and types come from
 * the sub-attribute definitions; a string `"True"` compares equal to a boolean `true`
 * (`roles[primary eq "True"]`, Entra).
 */
export function matchesElement(
  element: unknown,
  filter: Filter,
  subAttributes: readonly AttributeDef[],
): boolean {
  switch (filter.op) {
    case 'and':
      return (
        matchesElement(element, filter.left, subAttributes) &&
        matchesElement(element, filter.right, subAttributes)
      );
    case 'or':
      return (
        matchesElement(element, filter.left, subAttributes) ||
        matchesElement(element, filter.right, subAttributes)
      );
    case 'not':
      return !matchesElement(element, filter.filter, subAttributes);
    case 'valuePath':
      throw invalidFilter('value filters cannot nest');
    case 'pr': {
      const value = subValue(element, filter.path.attr, subAttributes);
      return value !== undefined && value !== null && value !== '';
    }
    default: {
      if (filter.path.sub)
        throw invalidFilter(
          `"${filter.path.attr}.${filter.path.sub}": sub-attributes of sub-attributes do not exist`,
        );
      const def = findAttribute(subAttributes, filter.path.attr);
      const actual = subValue(element, filter.path.attr, subAttributes);
      return compare(actual, filter.op, filter.value, def);
    }
  }
}

function subValue(element: unknown, name: string, subAttributes: readonly AttributeDef[]): unknown {
  if (!isPlainObject(element)) return name.toLowerCase() === 'value' ? element : undefined;
  const def = findAttribute(subAttributes, name);
  const key = def?.name ?? Object.keys(element).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
  return (element as ScimObject)[key];
}

export function compare(
  actual: unknown,
  op: CompareOp,
  expected: FilterValue,
  def: AttributeDef | undefined,
): boolean {
  if (expected === null) {
    const absent = actual === undefined || actual === null;
    if (op === 'eq') return absent;
    if (op === 'ne') return !absent;
    return false;
  }
  if (actual === undefined || actual === null) return op === 'ne';
  if (def?.type === 'boolean' || typeof actual === 'boolean') {
    const a = coerceBoolean(actual);
    const e = coerceBoolean(expected);
    if (a === undefined || e === undefined) return false;
    if (op === 'eq') return a === e;
    if (op === 'ne') return a !== e;
    throw invalidFilter(`operator "${op}" does not apply to boolean attributes`);
  }
  if (typeof actual === 'number' || def?.type === 'integer' || def?.type === 'decimal') {
    const a = Number(actual);
    const e = Number(expected);
    if (Number.isNaN(a) || Number.isNaN(e)) return false;
    return compareOrdered(a, e, op);
  }
  const caseExact = def?.caseExact ?? false;
  const a = caseExact ? String(actual) : String(actual).toLowerCase();
  const e = caseExact ? String(expected) : String(expected).toLowerCase();
  switch (op) {
    case 'co':
      return a.includes(e);
    case 'sw':
      return a.startsWith(e);
    case 'ew':
      return a.endsWith(e);
    default:
      return compareOrdered(a, e, op);
  }
}

function compareOrdered<T extends number | string>(a: T, e: T, op: CompareOp): boolean {
  switch (op) {
    case 'eq':
      return a === e;
    case 'ne':
      return a !== e;
    case 'gt':
      return a > e;
    case 'ge':
      return a >= e;
    case 'lt':
      return a < e;
    case 'le':
      return a <= e;
    default:
      return false;
  }
}

/**
 * The element a value filter describes, when it is a conjunction of `eq` comparisons
 * (`type eq "work"`, `type eq "work" and primary eq true`); `undefined` when it is not. Used to
 * create the entry on `add`/`replace` when no element matches (Entra's create-on-absent).
 */
export function elementFromFilter(
  filter: Filter,
  subAttributes: readonly AttributeDef[],
): ScimObject | undefined {
  if (filter.op === 'and') {
    const left = elementFromFilter(filter.left, subAttributes);
    const right = elementFromFilter(filter.right, subAttributes);
    return left && right ? { ...left, ...right } : undefined;
  }
  if (filter.op !== 'eq' || filter.path.sub || filter.value === null) return undefined;
  const def = findAttribute(subAttributes, filter.path.attr);
  if (!def) return undefined;
  const value = def.type === 'boolean' ? coerceBoolean(filter.value) : filter.value;
  return value === undefined ? undefined : { [def.name]: value };
}
