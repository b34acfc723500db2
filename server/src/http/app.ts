import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type Request, type Response } from 'express';
import { type ApiKeyVerifier, Authenticator } from '../api-keys.js';
import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { Database } from '../db/database.js';
import type { SyncLogWriter } from '../directory/sync-log.js';
import { ApiError } from '../errors.js';
import type { WebhookTargets } from '../events/webhook-target.js';
import type { KeyRing } from '../key-ring.js';
import type { LocalRateLimiter, RateLimiter } from '../rate-limit.js';
import { ScimError, toScimErrorBody } from '../scim/protocol/error.js';
import type { SigningKeys } from '../sessions/signing-keys.js';
import { docsRouter } from './docs.js';
import { portalRouter } from './portal/router.js';
import { requestContext, requestIdOf } from './request-context.js';
import { createScimHandler } from './scim/handler.js';
import { SCIM_CONTENT_TYPE } from './scim/response.js';
import { createRefreshHandler, isRefreshRequest } from './session-refresh.js';
import { apiErrorHandler, sendApiError } from './v1/errors.js';
import { v1Router } from './v1/router.js';

export interface AppDeps {
  ctx: Context;
  database: Pick<Database, 'ping'>;
  apiKeys: ApiKeyVerifier;
  bodyLimitBytes: number;
  scimRateLimiter: RateLimiter;
  /** Failed SCIM authentications per client address. */
  authFailureRateLimiter: LocalRateLimiter;
  /** Proxies whose X-Forwarded-For entries are trusted (see clientAddress). */
  trustProxyHops: number;
  syncLog: SyncLogWriter;
  waitForFeed: (after: number, timeoutMs: number, signal?: AbortSignal) => Promise<number>;
  keyRing: KeyRing;
  signingKeys: SigningKeys;
  webhookTargets: WebhookTargets;
  /** Per-API-key limit of `/v1` (the root key counts as one key). */
  apiRateLimiter: RateLimiter;
}

/**
 * The request listener of the server: `/scim/…` goes to the SCIM handler (node:http, see
 * scim/handler.ts), `POST /v1/sessions/refresh` to its own (node:http, see session-refresh.ts),
 * everything else to the Express app (management API, probes, docs).
 */
export function createRequestListener(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const app = createApp(deps);
  const scim = createScimHandler({
    ctx: deps.ctx,
    log: deps.ctx.log,
    bodyLimitBytes: deps.bodyLimitBytes,
    rateLimiter: deps.scimRateLimiter,
    authFailureLimiter: deps.authFailureRateLimiter,
    trustProxyHops: deps.trustProxyHops,
    syncLog: deps.syncLog,
  });
  // Authenticated by the refresh token alone: apps call it from their edge, without the secret key.
  const refresh = createRefreshHandler({
    ctx: deps.ctx,
    keyRing: deps.keyRing,
    signingKeys: deps.signingKeys,
  });
  return (req, res) => {
    if (isScimPath(req.url)) scim(req, res);
    else if (isRefreshRequest(req)) refresh(req, res);
    else app(req, res);
  };
}

const isScimPath = (url: string | undefined) => url?.startsWith('/scim/') || url === '/scim';

/**
 * What a request gets before the application is ready (see startServer): 503 with Retry-After,
 * in the error format of the protocol it was sent to.
 */
export function answerStarting(req: IncomingMessage, res: ServerResponse): void {
  const message = 'Roster is starting.';
  const requestId = requestIdOf(req.headers['x-request-id']);
  const [contentType, body] = isScimPath(req.url)
    ? [SCIM_CONTENT_TYPE, toScimErrorBody(new ScimError(503, undefined, message))]
    : [
        'application/json; charset=utf-8',
        {
          error: { code: 'service_unavailable', message, request_id: requestId },
        } satisfies Schemas['ErrorResponse'],
      ];
  const text = JSON.stringify(body);
  res.writeHead(503, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'retry-after': '1',
    'x-request-id': requestId,
  });
  res.end(text);
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

  app.use(docsRouter({ publicUrl: deps.ctx.settings.publicUrl }));

  // Public keys of session tokens: cacheable (the next key is published before it signs).
  app.get('/.well-known/jwks.json', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=60');
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.type('application/json').send(deps.signingKeys.jwks());
  });

  // The Admin Portal: HTML pages for a customer's IT admin, opened from a one-time link.
  app.use('/portal', portalRouter({ ctx: deps.ctx, syncLog: deps.syncLog }));

  app.use(
    '/v1',
    v1Router({
      ctx: deps.ctx,
      authenticator: new Authenticator(deps.apiKeys, deps.ctx.db),
      rateLimiter: deps.apiRateLimiter,
      bodyLimitBytes: deps.bodyLimitBytes,
      syncLog: deps.syncLog,
      waitForFeed: deps.waitForFeed,
      keyRing: deps.keyRing,
      signingKeys: deps.signingKeys,
      webhookTargets: deps.webhookTargets,
    }),
  );
  app.use((req: Request) => {
    throw new ApiError(404, 'route_not_found', `No route ${req.method} ${req.path}.`);
  });
  app.use(apiErrorHandler);
  return app;
}
