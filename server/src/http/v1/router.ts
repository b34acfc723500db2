import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { type Authenticator, createApiKey, listApiKeys, revokeApiKey } from '../../api-keys.js';
import type { Context } from '../../context.js';
import type { Schemas } from '../../contract.js';
import {
  createConnection,
  deleteConnection,
  getAttributeMappings,
  getConnection,
  getRoleMappings,
  getSyncHealth,
  listConnections,
  rotateScimToken,
  setAttributeMappings,
  setRoleMappings,
  updateConnection,
} from '../../directory/connections.js';
import { connectionWithGuard, parseWindow, releaseGuard } from '../../directory/deprovision-guard.js';
import {
  getGroup,
  getUser,
  listGroupMembers,
  listGroups,
  listUsers,
} from '../../directory/directory-reads.js';
import { directoryDiff, directorySnapshot } from '../../directory/history.js';
import {
  createMembership,
  deleteMembership,
  explainMembership,
  getMembership,
  listMemberships,
  updateMembershipRole,
} from '../../directory/memberships.js';
import {
  createOrganization,
  deleteOrganization,
  getOrganization,
  listOrganizations,
  updateOrganization,
} from '../../directory/organizations.js';
import {
  previewAttributeMappings,
  previewOrganizationUpdate,
  previewRoleMappings,
} from '../../directory/previews.js';
import { createRole, deleteRole, getRole, listRoles, toRole, updateRole } from '../../directory/roles.js';
import { scimBaseUrl, toConnection, toOrganization } from '../../directory/serialize.js';
import type { SyncLogWriter } from '../../directory/sync-log.js';
import { ApiError, parseInput } from '../../errors.js';
import { decodeEventCursor, positionBefore, readFeedWaiting } from '../../events/feed.js';
import type { WebhookTargets } from '../../events/webhook-target.js';
import {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  getWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  toWebhookEndpoint,
  updateWebhookEndpoint,
} from '../../events/webhooks.js';
import { isId } from '../../ids.js';
import type { KeyRing } from '../../key-ring.js';
import { createPortalLink } from '../../portal/links.js';
import {
  createSession,
  getSession,
  listUserSessions,
  revokeSession,
  revokeUserSessions,
  toSessionTokens,
} from '../../sessions/sessions.js';
import type { SigningKeyInfo, SigningKeys } from '../../sessions/signing-keys.js';
import { rejectUnsafeJsonInput } from '../json-input.js';
import type { RateLimiter } from '../scim/rate-limit.js';
import { assertInReach, authenticate, authorize, limitRate, organizationFilter } from './access.js';
import { apiErrorHandler, sendApiError } from './errors.js';
import { idempotency } from './idempotency.js';
import {
  ApiKeyCreate,
  AttributeMappingsUpdate,
  ConnectionCreate,
  ConnectionUpdate,
  DeprovisionGuardRelease,
  DiffQuery,
  EventsQuery,
  GroupListQuery,
  ListQuery,
  MembershipCreate,
  MembershipListQuery,
  MembershipUpdate,
  OrganizationCreate,
  OrganizationUpdate,
  PortalLinkCreate,
  RoleCreate,
  RoleMappingsUpdate,
  RoleUpdate,
  ScimTokenRotate,
  SessionCreate,
  SessionListQuery,
  SigningKeyRotate,
  SnapshotQuery,
  SyncHealthQuery,
  UserListQuery,
  WebhookEndpointCreate,
  WebhookEndpointUpdate,
} from './schemas.js';
import { apiChange, pathId, pathParam, send, withEventCursor } from './util.js';

export interface V1Deps {
  ctx: Context;
  /** The root key and the scoped API keys. */
  authenticator: Authenticator;
  /** Requests per second per API key. */
  rateLimiter: RateLimiter;
  bodyLimitBytes: number;
  syncLog: SyncLogWriter;
  keyRing: KeyRing;
  signingKeys: SigningKeys;
  /** Where webhooks may go (checked when an endpoint's URL is set). */
  webhookTargets: WebhookTargets;
  /** Resolves when the feed head passes `after` (or on timeout): the long-poll of GET /v1/events. */
  waitForFeed: (after: number, timeoutMs: number, signal?: AbortSignal) => Promise<number>;
}

function requireJsonBody(req: Request, _res: Response, next: NextFunction) {
  const hasBody =
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    throw new ApiError(415, 'unsupported_media_type', 'Send the request body as application/json.');
  }
  next();
}

/**
 * Refuses a body over the limit without reading it. body-parser answers 413 only after reading the
 * whole request off the socket, so a client could make the server take in 100 MB to be told no: a
 * declared Content-Length over the limit is refused at once, a chunked body as soon as it passes
 * the limit, and the connection is closed after the answer.
 */
function limitBody(limit: number) {
  const tooLarge = () =>
    new ApiError(413, 'payload_too_large', `The request body is larger than ${limit} bytes.`, {
      headers: { Connection: 'close' },
    });
  return (req: Request, res: Response, next: NextFunction) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) throw tooLarge();
    if (declared === undefined && req.headers['transfer-encoding'] !== undefined) {
      let size = 0;
      const count = (chunk: Buffer) => {
        size += chunk.length;
        if (size <= limit) return;
        req.off('data', count);
        // body-parser still waits for the end of the body: the answer goes now, the socket after it.
        if (!res.headersSent) sendApiError(req, res, tooLarge());
      };
      req.on('data', count);
    }
    next();
  };
}

/** Optional id filters in query strings: a malformed id matches nothing, as a 400 names it. */
function toSigningKey(key: SigningKeyInfo): Schemas['SigningKey'] {
  return {
    object: 'signing_key',
    kid: key.kid,
    alg: key.alg,
    state: key.state,
    created_at: key.created_at.toISOString(),
    retired_at: key.retired_at?.toISOString() ?? null,
    expires_at: key.expires_at?.toISOString() ?? null,
  };
}

function idFilter(
  value: string | undefined,
  kind: 'organization' | 'connection',
  name: string,
): string | undefined {
  if (value === undefined) return undefined;
  if (!isId(kind, value)) {
    throw new ApiError(400, 'validation_failed', `${name}: not a ${kind} id`, {
      details: [{ path: name, code: 'invalid_id', message: `not a ${kind} id` }],
    });
  }
  return value;
}

/** The management API (`/v1`), as described by openapi/roster.yaml. */
export function v1Router(deps: V1Deps): Router {
  const { ctx } = deps;
  const router = express.Router();
  router.use(authenticate(deps.authenticator));
  router.use(limitRate(deps.rateLimiter));
  router.use(authorize);
  router.use(requireJsonBody);
  router.use(limitBody(deps.bodyLimitBytes));
  router.use(express.json({ limit: deps.bodyLimitBytes, type: ['application/json', 'application/*+json'] }));
  router.use(rejectUnsafeJsonInput);
  router.use(idempotency(ctx, deps.keyRing, (req) => req.principal.id));
  // Every handler below that names a resource first checks that it is in the key's reach
  // (assertInReach), and every list narrows itself to it (organizationFilter).

  // Organizations
  router.post('/organizations', async (req, res) => {
    const input = parseInput(OrganizationCreate, req.body ?? {});
    send<Schemas['Organization']>(req, res, 201, toOrganization(await createOrganization(ctx, input)));
  });
  router.get('/organizations', async (req, res) => {
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['OrganizationList']>(
      req,
      res,
      200,
      await withEventCursor(ctx, () =>
        listOrganizations(ctx, { ...query, organizationId: organizationFilter(req, undefined) }),
      ),
    );
  });
  router.get('/organizations/:organization_id', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const row = await getOrganization(ctx, organizationId);
    send<Schemas['Organization']>(req, res, 200, toOrganization(row));
  });
  router.patch('/organizations/:organization_id', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const patch = parseInput(OrganizationUpdate, req.body ?? {});
    send<Schemas['Organization']>(
      req,
      res,
      200,
      toOrganization(await updateOrganization(ctx, organizationId, patch, apiChange(req, ctx.now()))),
    );
  });
  router.post('/organizations/:organization_id/preview', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const patch = parseInput(OrganizationUpdate, req.body ?? {});
    send<Schemas['ChangePreview']>(
      req,
      res,
      200,
      await previewOrganizationUpdate(ctx, organizationId, patch, apiChange(req, ctx.now())),
    );
  });
  router.get('/organizations/:organization_id/snapshot', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const q = parseInput(SnapshotQuery, req.query, 'query');
    const asOf = q.as_of === undefined ? undefined : decodeEventCursor(q.as_of, 'as_of');
    send<Schemas['DirectorySnapshot']>(
      req,
      res,
      200,
      await directorySnapshot(ctx, organizationId, asOf, q.members),
    );
  });
  router.get('/organizations/:organization_id/diff', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const q = parseInput(DiffQuery, req.query, 'query');
    const from = decodeEventCursor(q.from, 'from');
    const to = q.to === undefined ? undefined : decodeEventCursor(q.to, 'to');
    send<Schemas['DirectoryDiff']>(req, res, 200, await directoryDiff(ctx, organizationId, from, to));
  });
  router.delete('/organizations/:organization_id', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    await deleteOrganization(ctx, organizationId);
    res.status(204).end();
  });

  // Admin Portal links (the portal itself is served under /portal, see http/portal)
  router.post('/organizations/:organization_id/portal_links', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const input = parseInput(PortalLinkCreate, req.body ?? {});
    res.setHeader('Cache-Control', 'no-store');
    send<Schemas['PortalLink']>(req, res, 201, await createPortalLink(ctx, organizationId, input));
  });

  // Memberships
  router.get('/organizations/:organization_id/memberships', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const query = parseInput(MembershipListQuery, req.query, 'query');
    send<Schemas['MembershipList']>(
      req,
      res,
      200,
      await withEventCursor(ctx, () => listMemberships(ctx, organizationId, query)),
    );
  });
  router.post('/organizations/:organization_id/memberships', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const input = parseInput(MembershipCreate, req.body ?? {});
    send<Schemas['Membership']>(
      req,
      res,
      201,
      await createMembership(ctx, organizationId, input, apiChange(req, ctx.now())),
    );
  });
  router.get('/organizations/:organization_id/memberships/:membership_id', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const id = pathId(req, 'membership_id', 'membership', 'membership');
    send<Schemas['Membership']>(req, res, 200, await getMembership(ctx, organizationId, id));
  });
  router.patch('/organizations/:organization_id/memberships/:membership_id', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const id = pathId(req, 'membership_id', 'membership', 'membership');
    const { role } = parseInput(MembershipUpdate, req.body ?? {});
    send<Schemas['Membership']>(
      req,
      res,
      200,
      await updateMembershipRole(ctx, organizationId, id, role, apiChange(req, ctx.now())),
    );
  });
  router.delete('/organizations/:organization_id/memberships/:membership_id', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    await deleteMembership(ctx, organizationId, pathId(req, 'membership_id', 'membership', 'membership'));
    res.status(204).end();
  });
  router.get('/memberships/:membership_id/explain', async (req, res) => {
    const id = pathId(req, 'membership_id', 'membership', 'membership');
    await assertInReach(ctx, req, 'memberships', id, 'membership');
    send<Schemas['MembershipExplanation']>(req, res, 200, await explainMembership(ctx, id));
  });

  // Roles
  router.get('/roles', async (req, res) => {
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['RoleList']>(req, res, 200, await withEventCursor(ctx, () => listRoles(ctx, query)));
  });
  router.post('/roles', async (req, res) => {
    const input = parseInput(RoleCreate, req.body ?? {});
    send<Schemas['Role']>(req, res, 201, toRole(await createRole(ctx, input)));
  });
  router.get('/roles/:role_key', async (req, res) => {
    send<Schemas['Role']>(req, res, 200, toRole(await getRole(ctx, pathParam(req, 'role_key'))));
  });
  router.patch('/roles/:role_key', async (req, res) => {
    const patch = parseInput(RoleUpdate, req.body ?? {});
    send<Schemas['Role']>(req, res, 200, toRole(await updateRole(ctx, pathParam(req, 'role_key'), patch)));
  });
  router.delete('/roles/:role_key', async (req, res) => {
    await deleteRole(ctx, pathParam(req, 'role_key'));
    res.status(204).end();
  });

  // Connections
  router.get('/organizations/:organization_id/connections', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['ConnectionList']>(
      req,
      res,
      200,
      await withEventCursor(ctx, () => listConnections(ctx, { ...query, organizationId })),
    );
  });
  router.get('/connections', async (req, res) => {
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['ConnectionList']>(
      req,
      res,
      200,
      await withEventCursor(ctx, () =>
        listConnections(ctx, { ...query, organizationId: organizationFilter(req, undefined) }),
      ),
    );
  });
  router.post('/organizations/:organization_id/connections', async (req, res) => {
    const organizationId = pathId(req, 'organization_id', 'organization', 'organization');
    await assertInReach(ctx, req, 'organizations', organizationId, 'organization');
    const input = parseInput(ConnectionCreate, req.body ?? {});
    const { connection, token } = await createConnection(ctx, organizationId, input);
    const resource = toConnection(connection, ctx.settings.publicUrl);
    send<Schemas['ConnectionWithToken']>(req, res, 201, { ...resource, scim: { ...resource.scim, token } });
  });
  router.get('/connections/:connection_id', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    const row = await getConnection(ctx, id);
    send<Schemas['Connection']>(req, res, 200, await connectionWithGuard(ctx, ctx.db, row));
  });
  router.patch('/connections/:connection_id', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    const input = parseInput(ConnectionUpdate, req.body ?? {});
    send<Schemas['Connection']>(req, res, 200, await updateConnection(ctx, id, input));
  });
  router.post('/connections/:connection_id/deprovision_guard/release', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    const input = parseInput(DeprovisionGuardRelease, req.body ?? {});
    const window = input.window === undefined ? undefined : parseWindow(input.window, 'window');
    send<Schemas['Connection']>(req, res, 200, await releaseGuard(ctx, id, window));
  });
  router.delete('/connections/:connection_id', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    await deleteConnection(ctx, id);
    res.status(204).end();
  });
  router.post('/connections/:connection_id/scim_tokens', async (req, res) => {
    const connectionId = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', connectionId, 'connection');
    const input = parseInput(ScimTokenRotate, req.body ?? {});
    const graceMs =
      input.previous_token_grace_seconds === undefined
        ? undefined
        : input.previous_token_grace_seconds * 1000;
    const rotation = await rotateScimToken(ctx, connectionId, graceMs);
    send<Schemas['ScimTokenRotation']>(req, res, 201, {
      object: 'scim_token',
      connection_id: connectionId,
      base_url: scimBaseUrl(ctx.settings.publicUrl, connectionId),
      token: rotation.token,
      previous_tokens_expire_at: rotation.previousExpireAt.toISOString(),
    });
  });
  router.get('/connections/:connection_id/role_mappings', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    send<Schemas['RoleMappings']>(req, res, 200, await getRoleMappings(ctx, id));
  });
  router.put('/connections/:connection_id/role_mappings', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    const { mappings } = parseInput(RoleMappingsUpdate, req.body ?? {});
    send<Schemas['RoleMappings']>(
      req,
      res,
      200,
      await setRoleMappings(ctx, id, mappings, apiChange(req, ctx.now())),
    );
  });
  router.post('/connections/:connection_id/role_mappings/preview', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    const { mappings } = parseInput(RoleMappingsUpdate, req.body ?? {});
    send<Schemas['ChangePreview']>(
      req,
      res,
      200,
      await previewRoleMappings(ctx, id, mappings, apiChange(req, ctx.now())),
    );
  });
  router.post('/connections/:connection_id/attribute_mappings/preview', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    const { mappings } = parseInput(AttributeMappingsUpdate, req.body ?? {});
    send<Schemas['ChangePreview']>(
      req,
      res,
      200,
      await previewAttributeMappings(ctx, id, mappings, apiChange(req, ctx.now())),
    );
  });
  router.get('/connections/:connection_id/attribute_mappings', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    send<Schemas['AttributeMappings']>(req, res, 200, await getAttributeMappings(ctx, id));
  });
  router.put('/connections/:connection_id/attribute_mappings', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    const { mappings } = parseInput(AttributeMappingsUpdate, req.body ?? {});
    send<Schemas['AttributeMappings']>(
      req,
      res,
      200,
      await setAttributeMappings(ctx, id, mappings, apiChange(req, ctx.now())),
    );
  });
  router.get('/connections/:connection_id/sync', async (req, res) => {
    const id = pathId(req, 'connection_id', 'connection', 'connection');
    await assertInReach(ctx, req, 'connections', id, 'connection');
    const { failures } = parseInput(SyncHealthQuery, req.query, 'query');
    await deps.syncLog.flush();
    send<Schemas['SyncHealth']>(req, res, 200, await getSyncHealth(ctx, id, failures));
  });

  // Directory
  router.get('/users', async (req, res) => {
    const q = parseInput(UserListQuery, req.query, 'query');
    const page = await withEventCursor(ctx, () =>
      listUsers(ctx, {
        limit: q.limit,
        after: q.after,
        organizationId: organizationFilter(
          req,
          idFilter(q.organization_id, 'organization', 'organization_id'),
        ),
        connectionId: idFilter(q.connection_id, 'connection', 'connection_id'),
        email: q.email,
        userName: q.user_name,
        active: q.active,
      }),
    );
    send<Schemas['UserList']>(req, res, 200, page);
  });
  router.get('/users/:user_id', async (req, res) => {
    const id = pathId(req, 'user_id', 'user', 'user');
    await assertInReach(ctx, req, 'users', id, 'user');
    send<Schemas['User']>(req, res, 200, await getUser(ctx, id));
  });
  router.get('/groups', async (req, res) => {
    const q = parseInput(GroupListQuery, req.query, 'query');
    const page = await withEventCursor(ctx, () =>
      listGroups(ctx, {
        limit: q.limit,
        after: q.after,
        organizationId: organizationFilter(
          req,
          idFilter(q.organization_id, 'organization', 'organization_id'),
        ),
        connectionId: idFilter(q.connection_id, 'connection', 'connection_id'),
      }),
    );
    send<Schemas['GroupList']>(req, res, 200, page);
  });
  router.get('/groups/:group_id', async (req, res) => {
    const id = pathId(req, 'group_id', 'group', 'group');
    await assertInReach(ctx, req, 'groups', id, 'group');
    send<Schemas['Group']>(req, res, 200, await getGroup(ctx, id));
  });
  router.get('/groups/:group_id/members', async (req, res) => {
    const id = pathId(req, 'group_id', 'group', 'group');
    await assertInReach(ctx, req, 'groups', id, 'group');
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['UserList']>(
      req,
      res,
      200,
      await withEventCursor(ctx, () => listGroupMembers(ctx, id, query)),
    );
  });

  // Events
  router.get('/events', async (req, res) => {
    const q = parseInput(EventsQuery, req.query, 'query');
    if (q.after !== undefined && q.since !== undefined) {
      throw new ApiError(400, 'validation_failed', 'Give either after or since, not both.', {
        details: [{ path: 'since', code: 'conflict', message: 'not with after' }],
      });
    }
    const closed = new AbortController();
    res.once('close', () => closed.abort());
    const page = await readFeedWaiting(
      ctx,
      {
        after:
          q.after !== undefined
            ? decodeEventCursor(q.after)
            : q.since !== undefined
              ? await positionBefore(ctx, new Date(q.since))
              : undefined,
        limit: q.limit,
        types: q.types,
        organizationId: organizationFilter(
          req,
          idFilter(q.organization_id, 'organization', 'organization_id'),
        ),
      },
      q.wait * 1000,
      deps.waitForFeed,
      closed.signal,
    );
    send<Schemas['EventList']>(req, res, 200, page);
  });

  // Webhooks
  router.get('/webhook_endpoints', async (req, res) => {
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['WebhookEndpointList']>(
      req,
      res,
      200,
      await withEventCursor(ctx, () =>
        listWebhookEndpoints(ctx, { ...query, organizationId: organizationFilter(req, undefined) }),
      ),
    );
  });
  router.post('/webhook_endpoints', async (req, res) => {
    const input = parseInput(WebhookEndpointCreate, req.body ?? {});
    const reach = req.principal.organizationId;
    if (reach !== null) {
      // A confined key's endpoints receive its organization's events only.
      input.organization_id ??= reach;
      await assertInReach(ctx, req, 'organizations', input.organization_id, 'organization');
    }
    const { endpoint, secret } = await createWebhookEndpoint(ctx, deps.keyRing, deps.webhookTargets, input);
    send<Schemas['WebhookEndpointWithSecret']>(req, res, 201, { ...toWebhookEndpoint(endpoint), secret });
  });
  router.get('/webhook_endpoints/:webhook_endpoint_id', async (req, res) => {
    const id = pathId(req, 'webhook_endpoint_id', 'webhookEndpoint', 'webhook endpoint');
    await assertInReach(ctx, req, 'webhook_endpoints', id, 'webhook endpoint');
    send<Schemas['WebhookEndpoint']>(req, res, 200, toWebhookEndpoint(await getWebhookEndpoint(ctx, id)));
  });
  router.patch('/webhook_endpoints/:webhook_endpoint_id', async (req, res) => {
    const id = pathId(req, 'webhook_endpoint_id', 'webhookEndpoint', 'webhook endpoint');
    await assertInReach(ctx, req, 'webhook_endpoints', id, 'webhook endpoint');
    const patch = parseInput(WebhookEndpointUpdate, req.body ?? {});
    send<Schemas['WebhookEndpoint']>(
      req,
      res,
      200,
      toWebhookEndpoint(await updateWebhookEndpoint(ctx, deps.webhookTargets, id, patch)),
    );
  });
  router.delete('/webhook_endpoints/:webhook_endpoint_id', async (req, res) => {
    const id = pathId(req, 'webhook_endpoint_id', 'webhookEndpoint', 'webhook endpoint');
    await assertInReach(ctx, req, 'webhook_endpoints', id, 'webhook endpoint');
    await deleteWebhookEndpoint(ctx, id);
    res.status(204).end();
  });
  router.get('/webhook_endpoints/:webhook_endpoint_id/deliveries', async (req, res) => {
    const id = pathId(req, 'webhook_endpoint_id', 'webhookEndpoint', 'webhook endpoint');
    await assertInReach(ctx, req, 'webhook_endpoints', id, 'webhook endpoint');
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['WebhookDeliveryList']>(
      req,
      res,
      200,
      await withEventCursor(ctx, () => listWebhookDeliveries(ctx, id, query)),
    );
  });

  // Sessions (POST /v1/sessions/refresh is mounted apart: it takes no secret key, see app.ts)
  router.post('/sessions', async (req, res) => {
    const input = parseInput(SessionCreate, req.body ?? {});
    await assertInReach(ctx, req, 'organizations', input.organization_id, 'organization');
    await assertInReach(ctx, req, 'users', input.user_id, 'user');
    send<Schemas['SessionTokens']>(
      req,
      res,
      201,
      toSessionTokens(await createSession(ctx, deps.signingKeys, input)),
    );
  });
  router.get('/sessions/:session_id', async (req, res) => {
    const id = pathId(req, 'session_id', 'session', 'session');
    await assertInReach(ctx, req, 'sessions', id, 'session');
    send<Schemas['Session']>(req, res, 200, await getSession(ctx, id));
  });
  router.post('/sessions/:session_id/revoke', async (req, res) => {
    const id = pathId(req, 'session_id', 'session', 'session');
    await assertInReach(ctx, req, 'sessions', id, 'session');
    send<Schemas['Session']>(req, res, 200, await revokeSession(ctx, id));
  });
  router.get('/users/:user_id/sessions', async (req, res) => {
    const id = pathId(req, 'user_id', 'user', 'user');
    await assertInReach(ctx, req, 'users', id, 'user');
    const query = parseInput(SessionListQuery, req.query, 'query');
    send<Schemas['SessionList']>(
      req,
      res,
      200,
      await withEventCursor(ctx, () => listUserSessions(ctx, id, query)),
    );
  });
  router.post('/users/:user_id/sessions/revoke_all', async (req, res) => {
    const id = pathId(req, 'user_id', 'user', 'user');
    await assertInReach(ctx, req, 'users', id, 'user');
    send<Schemas['SessionsRevoked']>(req, res, 200, { revoked: await revokeUserSessions(ctx, id) });
  });

  // Signing keys
  router.get('/signing_keys', (req, res) => {
    send<Schemas['SigningKeyList']>(req, res, 200, { data: deps.signingKeys.list().map(toSigningKey) });
  });
  router.post('/signing_keys/rotate', async (req, res) => {
    const input = parseInput(SigningKeyRotate, req.body ?? {});
    const key = await deps.signingKeys.rotate({ alg: input.alg, revokePrevious: input.revoke_previous });
    req.log.info(
      { kid: key.kid, alg: key.alg, revoke_previous: input.revoke_previous ?? false },
      'signing key rotated',
    );
    send<Schemas['SigningKey']>(req, res, 200, toSigningKey(key));
  });

  // API keys (only the root key or the api_keys:write scope reach here: see authorize)
  router.get('/api_keys', async (req, res) => {
    const query = parseInput(ListQuery, req.query, 'query');
    send<Schemas['ApiKeyList']>(req, res, 200, await listApiKeys(ctx, req.principal, query));
  });
  router.post('/api_keys', async (req, res) => {
    const input = parseInput(ApiKeyCreate, req.body ?? {});
    const created = await createApiKey(ctx, req.principal, input);
    req.log.info(
      { api_key_id: created.id, organization_id: created.organization_id, scopes: created.scopes },
      'API key created',
    );
    send<Schemas['ApiKeyWithSecret']>(req, res, 201, created);
  });
  router.delete('/api_keys/:api_key_id', async (req, res) => {
    await revokeApiKey(ctx, req.principal, pathId(req, 'api_key_id', 'apiKey', 'API key'));
    res.status(204).end();
  });

  router.use((req: Request) => {
    throw new ApiError(404, 'route_not_found', `No route ${req.method} ${req.baseUrl}${req.path}.`);
  });
  router.use(apiErrorHandler);
  return router;
}
