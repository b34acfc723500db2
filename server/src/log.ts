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
      redact: {
        paths: ['authorization', '*.authorization', 'token', '*.token', 'refresh_token', '*.refresh_token'],
        censor: '[redacted]',
      },
    },
    destination ?? process.stdout,
  );
}
