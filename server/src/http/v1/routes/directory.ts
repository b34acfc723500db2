import type { Request, Router } from 'express';
import type { Schemas } from '../../../contract.js';
import {
  getGroup,
  getUser,
  listGroupMembers,
  listGroups,
  listUsers,
} from '../../../directory/directory-reads.js';
import { parseInput } from '../../../errors.js';
import { assertInReach, organizationFilter } from '../access.js';
import type { V1Deps } from '../deps.js';
import { GroupListQuery, ListQuery, UserListQuery } from '../schemas.js';
import { idFilter, pathId, send, withEventCursor } from '../util.js';

/** Directory users and groups (read-only: the IdP writes them over SCIM): routes of /v1, registered by ../router.ts. */
export function directoryRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
  /** The page window and the organization and connection a list is narrowed to (an org-confined key: its own). */
  const listScope = (
    req: Request,
    q: {
      limit: number;
      after?: string | undefined;
      organization_id?: string | undefined;
      connection_id?: string | undefined;
    },
  ) => ({
    limit: q.limit,
    after: q.after,
    organizationId: organizationFilter(req, idFilter(q.organization_id, 'organization', 'organization_id')),
    connectionId: idFilter(q.connection_id, 'connection', 'connection_id'),
  });
  router.get('/users', async (req, res) => {
    const q = parseInput(UserListQuery, req.query, 'query');
    const page = await withEventCursor(ctx, () =>
      listUsers(ctx, {
        ...listScope(req, q),
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
    const page = await withEventCursor(ctx, () => listGroups(ctx, listScope(req, q)));
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
}
