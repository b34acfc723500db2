/**
 * Filter AST (RFC 7644 §3.4.2.2). Attribute names are kept as written; resolving them against a
 * schema (case-insensitively) is the consumer's job, so the parser needs no schema.
 */

/** `[uri ":"] attr ["." sub]`, e.g. `name.givenName` or `urn:…:enterprise:2.0:User:manager.value`. */
export interface AttrPath {
  /** Schema URN prefix when the path was fully qualified. */
  uri?: string;
  attr: string;
  sub?: string;
}

export const COMPARE_OPS = ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le'] as const;
export type CompareOp = (typeof COMPARE_OPS)[number];

export type FilterValue = string | number | boolean | null;

export type Filter =
  | { op: CompareOp; path: AttrPath; value: FilterValue }
  | { op: 'pr'; path: AttrPath }
  | { op: 'and' | 'or'; left: Filter; right: Filter }
  | { op: 'not'; filter: Filter }
  /** `emails[type eq "work"]`: `filter` applies to the elements of a multi-valued attribute. */
  | { op: 'valuePath'; path: AttrPath; filter: Filter };

/** A PATCH `path` (RFC 7644 §3.5.2): an attribute path, optionally with a value filter and a sub-attribute. */
export interface PatchPath {
  uri?: string;
  attr: string;
  /** `members[value eq "…"]` */
  filter?: Filter;
  /** `emails[type eq "work"].value` or `name.givenName` */
  sub?: string;
}
