import { type RawBuilder, sql } from 'kysely';
import { coerceBoolean } from '../scim/core/resource.js';
import {
  type AttributeDef,
  COMMON_ATTRIBUTES,
  findAttribute,
  findExtension,
  GROUP_RESOURCE,
  isCoreSchema,
  type ResourceTypeDef,
  USER_RESOURCE,
} from '../scim/core/schemas.js';
import type { AttrPath, CompareOp, Filter, FilterValue } from '../scim/filter/ast.js';
import { serializeAttrPath } from '../scim/filter/serialize.js';
import { invalidFilter } from '../scim/protocol/error.js';

/**
 * SCIM filter AST -> SQL boolean expression over `users u` or `groups g`. Every value is a bound
 * parameter; identifiers come from the schema, never from the request. Case rules follow the
 * schema: `userName` (caseExact=false) compares `lower(user_name) = lower($1)`, the very
 * expression of the unique index, so the lookup an IdP does before POST and the 409 check agree.
 * Logic is two-valued as SCIM means it: `not (title eq "x")` includes users without a title. SQL's
 * NULL only matters under NOT (WHERE already treats NULL as false), so `coalesce` is applied
 * there alone and plain comparisons stay sargable (the unique index serves `userName eq`).
 */

type Sql = RawBuilder<unknown>;
type ColumnType = 'string' | 'boolean' | 'dateTime';

interface Column {
  expr: Sql;
  type: ColumnType;
  caseExact: boolean;
}

interface Target {
  resource: ResourceTypeDef;
  attributes: Sql;
  columns: Record<string, Column>;
  /** Relationship attributes (group members, user groups) answered with EXISTS over group_members. */
  relation?: { key: string; exists: (id: Sql) => Sql };
}

const col = (expr: string, type: ColumnType, caseExact: boolean): Column => ({
  expr: sql.raw(expr),
  type,
  caseExact,
});

const USER_TARGET: Target = {
  resource: USER_RESOURCE,
  attributes: sql.raw('u.attributes'),
  columns: {
    id: col('u.id', 'string', true),
    externalid: col('u.external_id', 'string', true),
    username: col('u.user_name', 'string', false),
    active: col('u.active', 'boolean', false),
    displayname: col('u.display_name', 'string', false),
    'name.givenname': col('u.given_name', 'string', false),
    'name.familyname': col('u.family_name', 'string', false),
    'meta.created': col('u.created_at', 'dateTime', false),
    'meta.lastmodified': col('u.updated_at', 'dateTime', false),
  },
  relation: {
    key: 'groups',
    exists: (id) =>
      sql`exists (select 1 from group_members gm where gm.user_id = u.id and gm.group_id = ${id})`,
  },
};

const GROUP_TARGET: Target = {
  resource: GROUP_RESOURCE,
  attributes: sql.raw('g.attributes'),
  columns: {
    id: col('g.id', 'string', true),
    externalid: col('g.external_id', 'string', true),
    displayname: col('g.display_name', 'string', false),
    'meta.created': col('g.created_at', 'dateTime', false),
    'meta.lastmodified': col('g.updated_at', 'dateTime', false),
  },
  relation: {
    key: 'members',
    exists: (id) =>
      sql`exists (select 1 from group_members gm where gm.group_id = g.id and gm.user_id = ${id})`,
  },
};

/**
 * A filter whose SQL text does not depend on its values: its shape (the text with the values
 * left out), its values in order, and its SQL with other expressions (placeholders) in their
 * place. A list statement with such a filter can be compiled once per shape (listPage):
 * building and compiling it for every lookup cost more server CPU than the lookup's own work.
 */
export interface FilterShape {
  key: string;
  values: string[];
  sql: (values: readonly unknown[]) => RawBuilder<boolean>;
}

/**
 * A filter's SQL with its values bound, and its shape when it has one: a filter of comparisons
 * (eq, ne, gt, ge, lt, le) of core string columns with strings (an IdP's lookup:
 * `userName eq "…"`, `externalId eq "…"`), joined by and, or and not. Any other filter has no
 * shape and is compiled with its values each time.
 */
export interface CompiledFilter {
  sql: RawBuilder<boolean>;
  shape: FilterShape | undefined;
}

export function userFilter(filter: Filter): CompiledFilter {
  return compileShaped(USER_TARGET, filter);
}

export function groupFilter(filter: Filter): CompiledFilter {
  return compileShaped(GROUP_TARGET, filter);
}

/**
 * What the compiler writes for a value that a shape may hold (a string compared with a core
 * string column): the value itself, bound as a parameter, or a shape's placeholder. Every other
 * value is bound as it is.
 */
type Slot = (value: string) => unknown;

/**
 * The SQL of a filter, and its shape key (see FilterShape) when the SQL text depends on the
 * filter's structure and columns alone, that is when every value went through `slot`.
 */
interface Compiled {
  sql: Sql;
  key: string | undefined;
}

function compileShaped(target: Target, filter: Filter): CompiledFilter {
  const values: string[] = [];
  const compiled = compile(target, filter, (value) => {
    values.push(value);
    return value;
  });
  const key = compiled.key;
  const shape: FilterShape | undefined =
    key === undefined
      ? undefined
      : {
          key,
          values,
          // The same walk with the i-th placeholder where the i-th value went.
          sql: (slots) => {
            let i = 0;
            return compile(target, filter, () => slots[i++]).sql as RawBuilder<boolean>;
          },
        };
  return { sql: compiled.sql as RawBuilder<boolean>, shape };
}

function compile(target: Target, filter: Filter, slot: Slot): Compiled {
  switch (filter.op) {
    case 'and':
    case 'or': {
      const left = compile(target, filter.left, slot);
      const right = compile(target, filter.right, slot);
      return {
        sql: sql`(${left.sql} ${sql.raw(filter.op)} ${right.sql})`,
        key:
          left.key === undefined || right.key === undefined
            ? undefined
            : `(${left.key} ${filter.op} ${right.key})`,
      };
    }
    case 'not': {
      const inner = compile(target, filter.filter, slot);
      return {
        sql: sql`(not ${two(inner.sql)})`,
        key: inner.key === undefined ? undefined : `(not ${inner.key})`,
      };
    }
    case 'valuePath':
      return { sql: valuePath(target, filter.path, filter.filter), key: undefined };
    default:
      return leaf(target, filter.path, filter.op, filter.op === 'pr' ? undefined : filter.value, slot);
  }
}

/** Core attribute names are matched without a URN when the URN is the core schema's. */
function corePath(target: Target, path: AttrPath): boolean {
  return !path.uri || isCoreSchema(target.resource, path.uri);
}

function leaf(
  target: Target,
  path: AttrPath,
  op: CompareOp | 'pr',
  value: FilterValue | undefined,
  slot: Slot,
): Compiled {
  const text = serializeAttrPath(path);
  if (corePath(target, path)) {
    const key = `${path.attr}${path.sub ? `.${path.sub}` : ''}`.toLowerCase();
    const column = target.columns[key];
    if (column) {
      // A string compared by equality or order: the SQL text is the same for every value.
      if (
        column.type === 'string' &&
        typeof value === 'string' &&
        op !== 'pr' &&
        op !== 'co' &&
        op !== 'sw' &&
        op !== 'ew'
      ) {
        return { sql: textCompare(column.expr, column.caseExact, op, value, slot), key: `${key} ${op}` };
      }
      return { sql: columnCompare(column, op, value, text), key: undefined };
    }
    const relation = target.relation;
    if (relation && (key === relation.key || key === `${relation.key}.value`)) {
      return { sql: relationCompare(relation, op, value, text), key: undefined };
    }
  }
  return { sql: jsonLeaf(target, path, op, value, text), key: undefined };
}

/** A comparison of an attribute kept in the JSON document (not a column of its own). */
function jsonLeaf(
  target: Target,
  path: AttrPath,
  op: CompareOp | 'pr',
  value: FilterValue | undefined,
  text: string,
): Sql {
  const resolved = resolveAttribute(target, path);
  if (resolved.def?.multiValued) {
    const def = resolved.def;
    const subName = path.sub ?? (def.type === 'complex' ? 'value' : undefined);
    const subDef = subName ? findAttribute(def.subAttributes ?? [], subName) : undefined;
    if (subName && !subDef) throw invalidFilter(`"${text}": no sub-attribute "${subName}"`);
    const element = subDef ? sql`e.v -> ${subDef.name}` : sql`e.v`;
    return sql`exists (select 1 from jsonb_array_elements(${arrayOf(sql`${resolved.container} -> ${def.name}`)}) as e(v)
      where ${jsonCompare(element, subDef ?? def, op, value, text)})`;
  }
  let expr = sql`${resolved.container} -> ${resolved.name}`;
  let def = resolved.def;
  if (def?.type === 'complex') {
    const subName = path.sub ?? 'value';
    const subDef = findAttribute(def.subAttributes ?? [], subName);
    if (!subDef) throw invalidFilter(`"${text}": name a sub-attribute of "${def.name}"`);
    expr = sql`${expr} -> ${subDef.name}`;
    def = subDef;
  } else if (path.sub) {
    if (def) throw invalidFilter(`"${text}": "${def.name}" has no sub-attributes`);
    expr = sql`${expr} -> ${path.sub}`;
  }
  return jsonCompare(expr, def, op, value, text);
}

interface Resolved {
  container: Sql;
  def: AttributeDef | undefined;
  name: string;
}

/** Resolves a path to its JSON container and definition; unknown attributes are a 400. */
function resolveAttribute(target: Target, path: AttrPath): Resolved {
  const text = serializeAttrPath(path);
  if (corePath(target, path)) {
    const def =
      findAttribute(target.resource.schema.attributes, path.attr) ??
      findAttribute(COMMON_ATTRIBUTES, path.attr);
    if (!def || def.name === 'meta' || def.returned === 'never' || def.name === target.relation?.key) {
      throw invalidFilter(`"${text}" is not a filterable attribute of ${target.resource.name}`);
    }
    return { container: target.attributes, def, name: def.name };
  }
  const extension = findExtension(target.resource, path.uri!);
  if (!extension) throw invalidFilter(`"${text}": unknown schema "${path.uri}"`);
  const container = sql`${target.attributes} -> ${extension.id}`;
  if (extension.open) return { container, def: undefined, name: path.attr };
  const def = findAttribute(extension.attributes, path.attr);
  if (!def) throw invalidFilter(`"${text}" is not an attribute of ${extension.name}`);
  return { container, def, name: def.name };
}

/** `emails[type eq "work" and value co "@x"]`: EXISTS over the elements. */
function valuePath(target: Target, path: AttrPath, inner: Filter): Sql {
  const text = serializeAttrPath(path);
  const relation = target.relation;
  if (relation && corePath(target, path) && path.attr.toLowerCase() === relation.key) {
    return relationValuePath(relation, inner, text);
  }
  const resolved = resolveAttribute(target, path);
  const def = resolved.def;
  if (def?.type !== 'complex') throw invalidFilter(`"${text}[…]": a value filter needs a complex attribute`);
  const source = def.multiValued
    ? arrayOf(sql`${resolved.container} -> ${def.name}`)
    : sql`jsonb_build_array(${resolved.container} -> ${def.name})`;
  return sql`exists (select 1 from jsonb_array_elements(${source}) as e(v) where ${elementFilter(def, inner, text)})`;
}

function elementFilter(def: AttributeDef, filter: Filter, text: string): Sql {
  switch (filter.op) {
    case 'and':
      return sql`(${elementFilter(def, filter.left, text)} and ${elementFilter(def, filter.right, text)})`;
    case 'or':
      return sql`(${elementFilter(def, filter.left, text)} or ${elementFilter(def, filter.right, text)})`;
    case 'not':
      return sql`(not ${two(elementFilter(def, filter.filter, text))})`;
    case 'valuePath':
      throw invalidFilter(`"${text}": value filters cannot nest`);
    default: {
      if (filter.path.uri || filter.path.sub)
        throw invalidFilter(`"${text}": name sub-attributes of "${def.name}" only`);
      const subDef = findAttribute(def.subAttributes ?? [], filter.path.attr);
      if (!subDef) throw invalidFilter(`"${text}": "${def.name}" has no sub-attribute "${filter.path.attr}"`);
      const value = filter.op === 'pr' ? undefined : filter.value;
      return jsonCompare(sql`e.v -> ${subDef.name}`, subDef, filter.op, value, text);
    }
  }
}

function relationValuePath(relation: NonNullable<Target['relation']>, inner: Filter, text: string): Sql {
  switch (inner.op) {
    case 'and':
    case 'or':
      return sql`(${relationValuePath(relation, inner.left, text)} ${sql.raw(inner.op)} ${relationValuePath(relation, inner.right, text)})`;
    case 'not':
      return sql`(not ${two(relationValuePath(relation, inner.filter, text))})`;
    default:
      if (
        inner.op === 'valuePath' ||
        inner.path.attr.toLowerCase() !== 'value' ||
        inner.path.sub ||
        inner.path.uri
      ) {
        throw invalidFilter(`"${text}[…]": filter ${relation.key} by value only`);
      }
      return relationCompare(relation, inner.op, inner.op === 'pr' ? undefined : inner.value, text);
  }
}

function relationCompare(
  relation: NonNullable<Target['relation']>,
  op: CompareOp | 'pr',
  value: FilterValue | undefined,
  text: string,
): Sql {
  if (op === 'pr') {
    const any =
      relation.key === 'members'
        ? sql`exists (select 1 from group_members gm where gm.group_id = g.id)`
        : sql`exists (select 1 from group_members gm where gm.user_id = u.id)`;
    return any;
  }
  if (op !== 'eq' && op !== 'ne')
    throw invalidFilter(`"${text}": only eq, ne and pr apply to ${relation.key}`);
  if (typeof value !== 'string') throw invalidFilter(`"${text}": compare ${relation.key} with an id string`);
  const exists = relation.exists(sql`${value}`);
  return op === 'eq' ? exists : sql`(not ${exists})`;
}

/** Makes a condition two-valued: unknown (NULL) becomes false. */
function two(expr: Sql): Sql {
  return sql`coalesce(${expr}, false)`;
}

function arrayOf(json: Sql): Sql {
  return sql`(case when jsonb_typeof(${json}) = 'array' then ${json} else '[]'::jsonb end)`;
}

/** LIKE pattern for co/sw/ew with the value's own %, _ and \ escaped. */
function likePattern(op: 'co' | 'sw' | 'ew', value: string): string {
  const escaped = value.replace(/[\\%_]/g, (c) => `\\${c}`);
  return op === 'co' ? `%${escaped}%` : op === 'sw' ? `${escaped}%` : `%${escaped}`;
}

const ORDER_OPS: Record<string, string> = { eq: '=', ne: '<>', gt: '>', ge: '>=', lt: '<', le: '<=' };

function textCompare(expr: Sql, caseExact: boolean, op: CompareOp, value: string, slot?: Slot): Sql {
  const left = caseExact ? expr : sql`lower(${expr})`;
  if (op === 'co' || op === 'sw' || op === 'ew') {
    const pattern = likePattern(op, value);
    return caseExact ? sql`${left} like ${pattern}` : sql`${left} like lower(${pattern})`;
  }
  const bound = slot ? slot(value) : value;
  const right = caseExact ? sql`${bound}` : sql`lower(${bound})`;
  if (op === 'ne') return sql`(${expr} is null or ${left} <> ${right})`;
  return sql`${left} ${sql.raw(ORDER_OPS[op]!)} ${right}`;
}

/** `eq null` and `ne null` (absent and present); no other operator compares with null. */
function nullCompare(op: CompareOp, absent: Sql, present: Sql, text: string): Sql {
  if (op === 'eq') return absent;
  if (op === 'ne') return present;
  throw invalidFilter(`"${text} ${op} null": only eq and ne compare with null`);
}

/** The value compared with a boolean attribute, which only eq and ne (and pr) apply to. */
function booleanOperand(op: CompareOp, value: FilterValue | undefined, text: string): boolean {
  const b = coerceBoolean(value);
  if (b === undefined) throw invalidFilter(`"${text}" is a boolean: compare it with true or false`);
  if (op !== 'eq' && op !== 'ne') throw invalidFilter(`"${text}" is a boolean: only eq, ne and pr apply`);
  return b;
}

/** The value compared with a dateTime attribute: an ISO 8601 string. */
function dateTimeOperand(value: FilterValue | undefined, text: string): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    throw invalidFilter(`"${text}" is a dateTime: compare it with an ISO 8601 string`);
  }
  return value;
}

function columnCompare(
  column: Column,
  op: CompareOp | 'pr',
  value: FilterValue | undefined,
  text: string,
): Sql {
  if (op === 'pr')
    return column.type === 'string'
      ? sql`(${column.expr} is not null and ${column.expr} <> '')`
      : sql`${column.expr} is not null`;
  if (value === null) {
    return nullCompare(op, sql`${column.expr} is null`, sql`${column.expr} is not null`, text);
  }
  switch (column.type) {
    case 'boolean': {
      const b = booleanOperand(op, value, text);
      return op === 'eq' ? sql`${column.expr} = ${b}` : sql`${column.expr} <> ${b}`;
    }
    case 'dateTime': {
      const date = new Date(dateTimeOperand(value, text));
      if (op === 'co' || op === 'sw' || op === 'ew')
        throw invalidFilter(`"${text}" is a dateTime: ${op} does not apply`);
      if (op === 'ne') return sql`${column.expr} <> ${date}`;
      return sql`${column.expr} ${sql.raw(ORDER_OPS[op]!)} ${date}`;
    }
    default:
      return textCompare(column.expr, column.caseExact, op, String(value));
  }
}

/** Comparison on a jsonb expression; `def` undefined means a free-form (Roster extension) value. */
function jsonCompare(
  json: Sql,
  def: AttributeDef | undefined,
  op: CompareOp | 'pr',
  value: FilterValue | undefined,
  text: string,
): Sql {
  if (op === 'pr') {
    return sql`(${json} is not null and ${json} not in ('null'::jsonb, '""'::jsonb, '[]'::jsonb, '{}'::jsonb))`;
  }
  if (value === null) {
    const absent = sql`(${json} is null or ${json} = 'null'::jsonb)`;
    return nullCompare(op, absent, sql`(not ${absent})`, text);
  }
  const textValue = sql`(${json} #>> '{}')`;
  const type = def?.type;
  if (type === 'boolean' || (type === undefined && typeof value === 'boolean')) {
    const literal = booleanOperand(op, value, text) ? sql`'true'::jsonb` : sql`'false'::jsonb`;
    return op === 'eq' ? sql`${json} = ${literal}` : sql`(${json} is null or ${json} <> ${literal})`;
  }
  if (type === undefined && typeof value === 'number') {
    // Free-form values: numbers compare numerically, guarded so that a non-number never errors.
    const numeric = sql`(case when jsonb_typeof(${json}) = 'number' then (${json} #>> '{}')::numeric end)`;
    if (op === 'co' || op === 'sw' || op === 'ew') return textCompare(textValue, false, op, String(value));
    if (op === 'ne') return sql`(${numeric} is null or ${numeric} <> ${value})`;
    return sql`${numeric} ${sql.raw(ORDER_OPS[op]!)} ${value}`;
  }
  if (type === 'dateTime' && (op === 'gt' || op === 'ge' || op === 'lt' || op === 'le')) {
    dateTimeOperand(value, text);
  }
  return textCompare(textValue, def?.caseExact ?? false, op, String(value));
}

/** Sort keys (RFC 7644 §3.4.2.3) with an index-friendly expression each; unknown keys sort by id. */
export function sortExpression(
  resource: 'User' | 'Group',
  sortBy: string | undefined,
): RawBuilder<unknown> | undefined {
  if (!sortBy) return undefined;
  const key = sortBy.replace(/^urn:ietf:params:scim:schemas:core:2\.0:(User|Group):/i, '').toLowerCase();
  const alias = resource === 'User' ? 'u' : 'g';
  const expressions: Record<string, string> =
    resource === 'User'
      ? {
          id: 'u.id',
          username: 'lower(u.user_name)',
          externalid: 'u.external_id',
          displayname: 'lower(u.display_name)',
          'name.givenname': 'lower(u.given_name)',
          'name.familyname': 'lower(u.family_name)',
          emails: 'lower(u.email)',
          'emails.value': 'lower(u.email)',
          active: 'u.active',
          'meta.created': 'u.created_at',
          'meta.lastmodified': 'u.updated_at',
        }
      : {
          id: 'g.id',
          displayname: 'lower(g.display_name)',
          externalid: 'g.external_id',
          'meta.created': 'g.created_at',
          'meta.lastmodified': 'g.updated_at',
        };
  const expression = expressions[key];
  return expression ? sql.raw(expression) : sql.raw(`${alias}.id`);
}
