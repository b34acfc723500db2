import type { Router } from 'express';
import type { Schemas } from '../../../contract.js';
import { createRole, deleteRole, getRole, listRoles, toRole, updateRole } from '../../../directory/roles.js';
import { parseInput } from '../../../errors.js';
import type { V1Deps } from '../deps.js';
import { ListQuery, RoleCreate, RoleUpdate } from '../schemas.js';
import { pathParam, send, withEventCursor } from '../util.js';

/** Roles: routes of /v1, registered by ../router.ts. */
export function roleRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
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
}
