import type { Router } from 'express';
import type { Schemas } from '../../../contract.js';
import { directoryDiff, directorySnapshot } from '../../../directory/history.js';
import {
  createOrganization,
  deleteOrganization,
  getOrganization,
  listOrganizations,
  updateOrganization,
} from '../../../directory/organizations.js';
import { previewOrganizationUpdate } from '../../../directory/previews.js';
import { toOrganization } from '../../../directory/serialize.js';
import { parseInput } from '../../../errors.js';
import { decodeEventCursor } from '../../../events/feed.js';
import { createPortalLink } from '../../../portal/links.js';
import { assertInReach, organizationFilter } from '../access.js';
import type { V1Deps } from '../deps.js';
import {
  DiffQuery,
  ListQuery,
  OrganizationCreate,
  OrganizationUpdate,
  PortalLinkCreate,
  SnapshotQuery,
} from '../schemas.js';
import { apiChange, pathId, send, withEventCursor } from '../util.js';

/** Organizations, their preview, snapshot and diff, and Admin Portal links: routes of /v1, registered by ../router.ts. */
export function organizationRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
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
}
