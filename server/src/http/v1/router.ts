import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { ApiKeyVerifier } from '../../api-keys.js';
import type { Context } from '../../context.js';
import type { Schemas } from '../../contract.js';
import { createConnection, getConnection, rotateScimToken } from '../../directory/connections.js';
import {
  createOrganization,
  deleteOrganization,
  getOrganization,
  listOrganizations,
  updateOrganization,
} from '../../directory/organizations.js';
import { scimBaseUrl, toConnection, toOrganization } from '../../directory/serialize.js';
import { ApiError, notFound, parseInput } from '../../errors.js';
import { type IdKind, isId } from '../../ids.js';
import { apiErrorHandler } from './errors.js';
import {
  ConnectionCreate,
  ListQuery,
  OrganizationCreate,
  OrganizationUpdate,
  ScimTokenRotate,
} from './schemas.js';

export interface V1Deps {
  ctx: Context;
  apiKeys: ApiKeyVerifier;
  bodyLimitBytes: number;
}

/** Sends a body typed by the contract: a handler cannot return a shape roster.yaml does not allow. */
function send<T extends object>(res: Response, status: number, body: T): void {
  res.status(status).json(body);
}

const unauthorized = () =>
  new ApiError(
    401,
    'unauthorized',
    'Missing or invalid secret key. Send "Authorization: Bearer <secret key>".',
    {
      headers: { 'WWW-Authenticate': 'Bearer realm="roster"' },
    },
  );

function requireSecretKey(apiKeys: ApiKeyVerifier) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !apiKeys.verify(match[1]!)) throw unauthorized();
    next();
  };
}

/** Path ids that cannot exist answer 404 without a database round trip. */
function id(req: Request, name: string, kind: IdKind, resource: string): string {
  const raw = req.params[name];
  const value = typeof raw === 'string' ? raw : '';
  if (!isId(kind, value)) throw notFound(resource, value);
  return value;
}

function requireJsonBody(req: Request, _res: Response, next: NextFunction) {
  const hasBody =
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    throw new ApiError(415, 'unsupported_media_type', 'Send the request body as application/json.');
  }
  next();
}

export function v1Router(deps: V1Deps): Router {
  const { ctx } = deps;
  const router = express.Router();
  router.use(requireSecretKey(deps.apiKeys));
  router.use(requireJsonBody);
  router.use(express.json({ limit: deps.bodyLimitBytes, type: ['application/json', 'application/*+json'] }));

  // Organizations
  router.post('/organizations', async (req, res) => {
    const input = parseInput(OrganizationCreate, req.body ?? {});
    send<Schemas['Organization']>(res, 201, toOrganization(await createOrganization(ctx, input)));
  });
  router.get('/organizations', async (req, res) => {
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['OrganizationList']>(res, 200, await listOrganizations(ctx, query));
  });
  router.get('/organizations/:organization_id', async (req, res) => {
    const row = await getOrganization(ctx, id(req, 'organization_id', 'organization', 'organization'));
    send<Schemas['Organization']>(res, 200, toOrganization(row));
  });
  router.patch('/organizations/:organization_id', async (req, res) => {
    const organizationId = id(req, 'organization_id', 'organization', 'organization');
    const patch = parseInput(OrganizationUpdate, req.body ?? {});
    send<Schemas['Organization']>(
      res,
      200,
      toOrganization(await updateOrganization(ctx, organizationId, patch)),
    );
  });
  router.delete('/organizations/:organization_id', async (req, res) => {
    await deleteOrganization(ctx, id(req, 'organization_id', 'organization', 'organization'));
    res.status(204).end();
  });

  // Connections
  router.post('/organizations/:organization_id/connections', async (req, res) => {
    const organizationId = id(req, 'organization_id', 'organization', 'organization');
    const input = parseInput(ConnectionCreate, req.body ?? {});
    const { connection, token } = await createConnection(ctx, organizationId, input);
    const resource = toConnection(connection, ctx.settings.publicUrl);
    send<Schemas['ConnectionWithToken']>(res, 201, { ...resource, scim: { ...resource.scim, token } });
  });
  router.get('/connections/:connection_id', async (req, res) => {
    const row = await getConnection(ctx, id(req, 'connection_id', 'connection', 'connection'));
    send<Schemas['Connection']>(res, 200, toConnection(row, ctx.settings.publicUrl));
  });
  router.post('/connections/:connection_id/scim_tokens', async (req, res) => {
    const connectionId = id(req, 'connection_id', 'connection', 'connection');
    const input = parseInput(ScimTokenRotate, req.body ?? {});
    const graceMs =
      input.previous_token_grace_seconds === undefined
        ? undefined
        : input.previous_token_grace_seconds * 1000;
    const rotation = await rotateScimToken(ctx, connectionId, graceMs);
    send<Schemas['ScimTokenRotation']>(res, 201, {
      object: 'scim_token',
      connection_id: connectionId,
      base_url: scimBaseUrl(ctx.settings.publicUrl, connectionId),
      token: rotation.token,
      previous_tokens_expire_at: rotation.previousExpireAt.toISOString(),
    });
  });

  router.use((req: Request) => {
    throw new ApiError(404, 'route_not_found', `No route ${req.method} ${req.baseUrl}${req.path}.`);
  });
  router.use(apiErrorHandler);
  return router;
}
