import { performance } from 'node:perf_hooks';
import type { NextFunction, Request, Response } from 'express';
import { newId } from '../ids.js';
import type { Logger } from '../log.js';

/**
 * The logger of one request: every line carries `request_id`. The pino child is made on first use,
 * since most requests (at LOG_LEVEL=warn, all successful ones) never log.
 */
export class RequestLog {
  readonly #base: Logger;
  readonly #requestId: string;
  #child: Logger | undefined;

  constructor(base: Logger, requestId: string) {
    this.#base = base;
    this.#requestId = requestId;
  }

  get logger(): Logger {
    this.#child ??= this.#base.child({ request_id: this.#requestId });
    return this.#child;
  }

  /** Whether lines of `level` are written (at LOG_LEVEL=warn, no access line is: skip building it). */
  enabled(level: 'error' | 'warn' | 'info' | 'debug'): boolean {
    return this.#base.isLevelEnabled(level);
  }

  error(fields: object, message: string): void {
    if (this.#base.isLevelEnabled('error')) this.logger.error(fields, message);
  }
  warn(fields: object, message: string): void {
    if (this.#base.isLevelEnabled('warn')) this.logger.warn(fields, message);
  }
  info(fields: object, message: string): void {
    if (this.#base.isLevelEnabled('info')) this.logger.info(fields, message);
  }
  debug(fields: object, message: string): void {
    if (this.#base.isLevelEnabled('debug')) this.logger.debug(fields, message);
  }
}

declare global {
  namespace Express {
    interface Request {
      /** `req_…`, or the caller's `X-Request-Id` when it is a sane token. */
      id: string;
      /** Logger whose every line carries this request's id. */
      log: RequestLog;
      /** performance.now() at arrival. */
      startedAt: number;
    }
  }
}

const INCOMING_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** The request id: the caller's `X-Request-Id` when it is a sane token, else a new `req_…`. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && INCOMING_ID.test(header) ? header : newId('request');
}

/** One access-log line per finished request (info), or an error line for a 5xx. */
export function logAccess(
  log: RequestLog,
  method: string,
  path: string,
  status: number,
  startedAt: number,
): void {
  const failed = status >= 500;
  if (!log.enabled(failed ? 'error' : 'info')) return;
  const fields = {
    method,
    path,
    status,
    duration_ms: Math.round((performance.now() - startedAt) * 100) / 100,
  };
  if (failed) log.error(fields, 'request failed');
  else log.info(fields, 'request');
}

/**
 * Gives each request an id (echoed in `X-Request-Id`, put in every error body and on every log line)
 * and writes one access-log line when the response is finished.
 */
export function requestContext(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    req.id = requestIdOf(req.headers['x-request-id']);
    req.startedAt = performance.now();
    req.log = new RequestLog(log, req.id);
    res.setHeader('X-Request-Id', req.id);
    res.on('finish', () =>
      logAccess(req.log, req.method, req.originalUrl.split('?')[0]!, res.statusCode, req.startedAt),
    );
    next();
  };
}
