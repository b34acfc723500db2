/** PostgreSQL error classification, identical for `pg` and PGlite (both expose SQLSTATE `code`). */

interface PgError {
  code?: string;
  constraint?: string;
}

function pgError(error: unknown): PgError | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? (error as PgError) : undefined;
}

/** 23505: a unique constraint (optionally: this one) rejected the write. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = pgError(error);
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

/** 23503: a foreign key (optionally: this one) rejected the write. */
export function isForeignKeyViolation(error: unknown, constraint?: string): boolean {
  const e = pgError(error);
  return e?.code === '23503' && (constraint === undefined || e.constraint === constraint);
}

/** 40001 / 40P01: retry the transaction. */
export function isSerializationFailure(error: unknown): boolean {
  const code = pgError(error)?.code;
  return code === '40001' || code === '40P01';
}
