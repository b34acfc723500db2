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

/**
 * The database cannot serve a request now: no connection within the connect timeout, too many
 * requests already waiting for one, or the server refused or dropped the connection. Answered as
 * 503 with `Retry-After` (in the protocol's error format), never queued without bound.
 */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
  /** What the client is told to wait: short when merely busy, longer when unreachable. */
  readonly retryAfterSeconds: number;

  constructor(message: string, options: { cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, { cause: options.cause });
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }
}

/**
 * SQLSTATEs and driver failures after which the same request may succeed later: connection
 * exceptions (08…), operator intervention (57P01–57P03: shutdown, crash, cannot connect now), our
 * statement timeout (57014), lock timeout (55P03), idle-in-transaction timeout (25P03), too many
 * connections or insufficient resources (53…).
 */
const UNAVAILABLE_STATES = /^(08...|57P0[123]|57014|55P03|25P03|53...)$/;
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** The seconds a client should wait before retrying, when `error` means "database unavailable". */
export function databaseUnavailableRetryAfter(error: unknown): number | undefined {
  if (error instanceof DatabaseUnavailableError) return error.retryAfterSeconds;
  const code = pgError(error)?.code;
  if (typeof code === 'string' && (UNAVAILABLE_STATES.test(code) || NETWORK_CODES.has(code))) {
    return code.startsWith('08') || NETWORK_CODES.has(code) || code.startsWith('57P') ? 5 : 1;
  }
  // pg's own words for a connection that went away mid-query (no SQLSTATE).
  if (error instanceof Error && /^Connection terminated|not queryable/.test(error.message)) return 5;
  return undefined;
}
