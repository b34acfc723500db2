import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import express, { type Express, type Request, type Response } from 'express';
import type { ApiKeyVerifier } from '../api-keys.js';
import type { Context } from '../context.js';
import type { Database } from '../db/database.js';
import type { SyncLogWriter } from '../directory/sync-log.js';
import { ApiError } from '../errors.js';
import type { KeyRing } from '../key-ring.js';
import { requestContext } from './request-context.js';
import { createScimHandler } from './scim/handler.js';
import type { RateLimiter } from './scim/rate-limit.js';
import { apiErrorHandler, sendApiError } from './v1/errors.js';
import { v1Router } from './v1/router.js';

export interface AppDeps {
  ctx: Context;
  database: Pick<Database, 'ping'>;
  apiKeys: ApiKeyVerifier;
  bodyLimitBytes: number;
  scimRateLimiter: RateLimiter;
  syncLog: SyncLogWriter;
  waitForFeed: (after: number, timeoutMs: number, signal?: AbortSignal) => Promise<number>;
  keyRing: KeyRing;
}

const require = createRequire(import.meta.url);

/** The contract and its rendered reference, read once (they ship with @roster/openapi). */
function loadDocs(): { yaml: string; html: string | undefined } {
  const yaml = readFileSync(require.resolve('@roster/openapi/roster.yaml'), 'utf8');
  let html: string | undefined;
  try {
    html = readFileSync(require.resolve('@roster/openapi/docs.html'), 'utf8');
  } catch {
    html = undefined; // not built (npm run build -w @roster/openapi)
  }
  return { yaml, html };
}

/**
 * The request listener of the server: `/scim/…` goes to the SCIM handler (node:http, see
 * scim/handler.ts), everything else to the Express app (management API, probes, docs).
 */
export function createRequestListener(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const app = createApp(deps);
  const scim = createScimHandler({
    ctx: deps.ctx,
    log: deps.ctx.log,
    bodyLimitBytes: deps.bodyLimitBytes,
    rateLimiter: deps.scimRateLimiter,
    syncLog: deps.syncLog,
  });
  return (req, res) => {
    if (req.url?.startsWith('/scim/') || req.url === '/scim') scim(req, res);
    else app(req, res);
  };
}

/** The Express app: framework code stays here and in ./v1; services know no Express. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', false);
  app.use(requestContext(deps.ctx.log));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (req: Request, res: Response) => {
    try {
      await deps.database.ping(2000);
      res.json({ status: 'ok' });
    } catch (error) {
      req.log.warn({ err: error }, 'readiness check failed');
      sendApiError(req, res, new ApiError(503, 'service_unavailable', 'The database does not answer.'));
    }
  });

  const docs = loadDocs();
  app.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(docs.yaml);
  });
  app.get('/docs', (req, res) => {
    if (!docs.html) {
      sendApiError(
        req,
        res,
        new ApiError(404, 'route_not_found', 'API reference not built: run npm run build.'),
      );
      return;
    }
    res.type('html').send(docs.html);
  });

  app.use(
    '/v1',
    v1Router({
      ctx: deps.ctx,
      apiKeys: deps.apiKeys,
      bodyLimitBytes: deps.bodyLimitBytes,
      syncLog: deps.syncLog,
      waitForFeed: deps.waitForFeed,
      keyRing: deps.keyRing,
    }),
  );
  app.use((req: Request) => {
    throw new ApiError(404, 'route_not_found', `No route ${req.method} ${req.path}.`);
  });
  app.use(apiErrorHandler);
  return app;
}
