import { type Logger as PinoLogger, pino } from 'pino';
import type { LogLevel } from './config.js';

export type Logger = PinoLogger;

/**
 * Structured JSON logs on stdout, one object per line. Request-scoped lines carry `request_id`
 * (see http/request-context.ts); secrets never reach a log line (the redact list is a backstop).
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'roster' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
      redact: {
        paths: ['authorization', '*.authorization', 'token', '*.token', 'refresh_token', '*.refresh_token'],
        censor: '[redacted]',
      },
    },
    destination ?? process.stdout,
  );
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * Errors as pino logs them, except database errors: only their type, SQLSTATE `code` and message.
 * The rest of a driver error is user data: PGlite attaches the query's `params`, PostgreSQL's
 * `detail` quotes the offending values (`Key (user_name)=(ada@example.com) already exists`), and a
 * failed idempotency write carries the response it stored, tokens included.
 */
export function serializeError(error: unknown): unknown {
  if (typeof error === 'object' && error !== null) {
    const e = error as { code?: unknown; params?: unknown; message?: unknown; name?: unknown };
    if ((typeof e.code === 'string' && SQLSTATE.test(e.code)) || 'params' in e) {
      return {
        type: error.constructor?.name ?? e.name,
        code: e.code,
        message: typeof e.message === 'string' ? e.message : undefined,
      };
    }
  }
  return pino.stdSerializers.err(error as Error);
}
