import { type RawBuilder, sql } from 'kysely';

/**
 * `= any($1::text[])` instead of `in ($1, $2, …)`: one parameter whatever the list's length, so a
 * prepared statement serves every batch size, and its generic plan uses the key's index (an
 * unbounded `in` list produced a statement per size, and a generic plan that scanned another index).
 */
export function anyText(values: readonly string[]): RawBuilder<unknown> {
  return sql`any(${[...values]}::text[])`;
}
