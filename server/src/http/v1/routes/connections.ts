import type { Router } from 'express';
import type { Schemas } from '../../../contract.js';
import { getAttributeMappings, setAttributeMappings } from '../../../directory/attribute-mappings.js';
import {
  createConnection,
  deleteConnection,
  getConnection,
  listConnections,
  updateConnection,
} from '../../../directory/connections.js';
import { connectionWithGuard, parseWindow, releaseGuard } from '../../../directory/deprovision-guard.js';
import { previewAttributeMappings, previewRoleMappings } from '../../../directory/previews.js';
import { getRoleMappings, setRoleMappings } from '../../../directory/role-mappings.js';
import { rotateScimToken } from '../../../directory/scim-tokens.js';
import { scimBaseUrl, toConnection } from '../../../directory/serialize.js';
import { getSyncHealth } from '../../../directory/sync-health.js';
import { parseInput } from '../../../errors.js';
import { assertInReach, organizationFilter } from '../access.js';
import type { V1Deps } from '../deps.js';
import {
  AttributeMappingsUpdate,
  ConnectionCreate,
  ConnectionUpdate,
  DeprovisionGuardRelease,
  ListQuery,
  RoleMappingsUpdate,
  ScimTokenRotate,
  SyncHealthQuery,
} from '../schemas.js';
import { apiChange, pathId, send, withEventCursor } from '../util.js';

/** Connections, their SCIM tokens, deprovision guard, role and attribute mappings and sync health: routes of /v1, registered by ../router.ts. */
export function connectionRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
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
}
