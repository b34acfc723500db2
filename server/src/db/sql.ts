import {
  type Compilable,
  type CompiledQuery,
  type Kysely,
  type QueryResult,
  type RawBuilder,
  sql,
} from 'kysely';
import type { DB } from './schema.js';

/**
 * `= any($1::text[])` instead of `in ($1, $2, …)`: one parameter whatever the list's length, so a
 * prepared statement serves every batch size, and its generic plan uses the key's index (an
 * unbounded `in` list produced a statement per size, and a generic plan that scanned another index).
 */
export function anyText(values: readonly string[]): RawBuilder<unknown> {
  return sql`any(${[...values]}::text[])`;
}

/** Stands for `params[name]` in a query that {@link compiledOnce} builds. */
class Slot {
  constructor(readonly name: string) {}
}

interface Template<R> {
  compiled: CompiledQuery<R>;
  names: string[];
}

/**
 * A query of the hot path built and compiled once, then executed with new parameters: building a
 * Kysely query and compiling it cost more server CPU than sending it (0.05 to 0.1 ms a query,
 * measured with `bench:scim -- --round-trips --cpu-prof`). `build` gets `params` whose every
 * property is a placeholder: use them as values only, unchanged (no JSON.stringify, no
 * conditions on them; pass derived values as parameters of their own). A query whose text varies
 * (optional parts) names its variant by `shape`: one template per shape. A shape of several flags
 * is an object, with `keyOf` naming each variant by a string in one place, so that a misspelt flag
 * is a type error rather than a variant of its own.
 *
 * Every parameter of the compiled query must come from `params`: a value computed inside `build`
 * (an id, a timestamp) would be frozen into the template, so it is refused on first use.
 */
export function compiledOnce<P extends object, R>(
  build: (db: Kysely<DB>, params: P, shape: string) => Compilable<R> | RawBuilder<R>,
): (db: Kysely<DB>, params: P, shape?: string) => Promise<QueryResult<R>>;
export function compiledOnce<P extends object, R, S>(
  build: (db: Kysely<DB>, params: P, shape: S) => Compilable<R> | RawBuilder<R>,
  keyOf: (shape: S) => string,
): (db: Kysely<DB>, params: P, shape: S) => Promise<QueryResult<R>>;
export function compiledOnce<P extends object, R>(
  // `never`: either overload's build and keyOf, each called with the shape it was given.
  build: (db: Kysely<DB>, params: P, shape: never) => Compilable<R> | RawBuilder<R>,
  keyOf: (shape: never) => string = (shape: string) => shape,
): (db: Kysely<DB>, params: P, shape?: unknown) => Promise<QueryResult<R>> {
  const templates = new Map<string, Template<R>>();
  const compile = (db: Kysely<DB>, shape: unknown): Template<R> => {
    const slots = new Proxy({} as P, { get: (_, name) => new Slot(String(name)) });
    // A query builder compiles with its own db, raw SQL with the one passed (the same dialect).
    const compiled = (build(db, slots, shape as never) as RawBuilder<R>).compile(db);
    const names = compiled.parameters.map((value) => {
      if (!(value instanceof Slot)) {
        throw new Error(`compiledOnce: a parameter of "${compiled.sql.slice(0, 80)}…" is not from params`);
      }
      return value.name;
    });
    return { compiled, names };
  };
  return (db, params, shape = '') => {
    const key = keyOf(shape as never);
    let template = templates.get(key);
    if (!template) {
      try {
        template = compile(db, shape);
      } catch (error) {
        return Promise.reject(error);
      }
      templates.set(key, template);
    }
    const parameters = template.names.map((name) => (params as Record<string, unknown>)[name]);
    return db.executeQuery<R>({ ...template.compiled, parameters });
  };
}
