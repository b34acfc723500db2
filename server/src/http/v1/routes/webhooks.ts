import type { Router } from 'express';
import type { Schemas } from '../../../contract.js';
import { parseInput } from '../../../errors.js';
import {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  getWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  toWebhookEndpoint,
  updateWebhookEndpoint,
} from '../../../events/webhook-endpoints.js';
import { assertInReach, organizationFilter } from '../access.js';
import type { V1Deps } from '../deps.js';
import { ListQuery, WebhookEndpointCreate, WebhookEndpointUpdate } from '../schemas.js';
import { pathId, send, withEventCursor } from '../util.js';

/** Webhook endpoints and their deliveries: routes of /v1, registered by ../router.ts. */
export function webhookRoutes(router: Router, deps: V1Deps): void {
  const { ctx } = deps;
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
}
