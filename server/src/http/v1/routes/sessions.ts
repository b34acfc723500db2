import type { Router } from 'express';
import type { Schemas } from '../../../contract.js';
import { parseInput } from '../../../errors.js';
import { toSigningKey } from '../../../sessions/serialize.js';
import {
  createSession,
  getSession,
  listUserSessions,
  revokeSession,
  revokeUserSessions,
  toSessionTokens,
} from '../../../sessions/sessions.js';
import { assertInReach } from '../access.js';
import type { V1Deps } from '../deps.js';
import { SessionCreate, SessionListQuery, SigningKeyRotate } from '../schemas.js';
import { pathId, send, withEventCursor } from '../util.js';

/** Sessions and signing keys: routes of /v1, registered by ../router.ts. */
export function sessionRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
  // Sessions (POST /v1/sessions/refresh is mounted apart: it takes no secret key, see app.ts)
  router.post('/sessions', async (req, res) => {
    const input = parseInput(SessionCreate, req.body ?? {});
    await assertInReach(ctx, req, 'organizations', input.organization_id, 'organization');
    await assertInReach(ctx, req, 'users', input.user_id, 'user');
    send<Schemas['SessionTokens']>(
      req,
      res,
      201,
      toSessionTokens(await createSession(ctx, deps.signingKeys, deps.keyRing, input)),
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
}
