import type { Router } from 'express';
import type { Schemas } from '../../../contract.js';
import {
  createMembership,
  deleteMembership,
  explainMembership,
  getMembership,
  listMemberships,
  updateMembershipRole,
} from '../../../directory/memberships.js';
import { parseInput } from '../../../errors.js';
import { assertInReach } from '../access.js';
import type { V1Deps } from '../deps.js';
import { MembershipCreate, MembershipListQuery, MembershipUpdate } from '../schemas.js';
import { apiChange, pathId, send, withEventCursor } from '../util.js';

/** Memberships: routes of /v1, registered by ../router.ts. */
export function membershipRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
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
}
