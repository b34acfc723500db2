import { performance } from 'node:perf_hooks';
import type { NextFunction, Request, Response } from 'express';
import { newId } from '../ids.js';
import type { Logger } from '../log.js';

declare global {
  namespace Express {
    interface Request {
      /** `req_…`, or the caller's `X-Request-Id` when it is a sane token. */
      id: string;
      /** Logger whose every line carries this request's id. */
      log: Logger;
      /** performance.now() at arrival. */
      startedAt: number;
    }
  }
}

const INCOMING_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Gives each request an id (echoed in `X-Request-Id`, put in every error body and on every log line)
 * and writes one access-log line when the response is finished.
 */
export function requestContext(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const incoming = req.headers['x-request-id'];
    req.id = typeof incoming === 'string' && INCOMING_ID.test(incoming) ? incoming : newId('request');
    req.startedAt = performance.now();
    req.log = log.child({ request_id: req.id });
    res.setHeader('X-Request-Id', req.id);
    res.on('finish', () => {
      const status = res.statusCode;
      const fields = {
        method: req.method,
        path: req.originalUrl.split('?')[0],
        status,
        duration_ms: Math.round((performance.now() - req.startedAt) * 100) / 100,
      };
      if (status >= 500) req.log.error(fields, 'request failed');
      else req.log.info(fields, 'request');
    });
    next();
  };
}
