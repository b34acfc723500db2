import type { Router } from 'express';
import { createApiKey, listApiKeys, revokeApiKey } from '../../../api-keys.js';
import type { Schemas } from '../../../contract.js';
import { parseInput } from '../../../errors.js';
import type { V1Deps } from '../deps.js';
import { ApiKeyCreate, ListQuery } from '../schemas.js';
import { pathId, send } from '../util.js';

/** API keys: routes of /v1, registered by ../router.ts. */
export function apiKeyRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
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
}
