import type { Context } from '../context.js';
import type { Schemas } from '../contract.js';
import type { WebhookDeliveryRow, WebhookEndpointRow } from '../db/schema.js';
import { ApiError, notFound } from '../errors.js';
import { newId, newSecret } from '../ids.js';
import type { KeyRing } from '../key-ring.js';
import { decodeCursor, type Page, toPage } from '../pagination.js';
import { WebhookTargetRefused, type WebhookTargets } from './webhook-target.js';

// Webhook endpoints as the management API manages them (create, list, update, delete, their
// deliveries); delivering events to them is webhooks.ts.

export function toWebhookEndpoint(row: WebhookEndpointRow): Schemas['WebhookEndpoint'] {
  return {
    object: 'webhook_endpoint',
    id: row.id,
    url: row.url,
    description: row.description,
    types: row.types as Schemas['EventType'][],
    organization_id: row.organization_id,
    enabled: row.enabled,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export function toWebhookDelivery(row: WebhookDeliveryRow): Schemas['WebhookDelivery'] {
  return {
    object: 'webhook_delivery',
    id: row.id,
    endpoint_id: row.endpoint_id,
    event_id: row.event_id,
    event_type: row.event_type as Schemas['EventType'],
    attempt: row.attempt,
    outcome: row.outcome,
    response_status: row.response_status,
    error: row.error,
    duration_ms: row.duration_ms,
    created_at: row.created_at.toISOString(),
  };
}

export interface WebhookEndpointInput {
  url: string;
  description?: string | null | undefined;
  types?: string[] | undefined;
  organization_id?: string | null | undefined;
  enabled?: boolean | undefined;
}

/** Refuses (400) a URL whose host resolves to an address webhooks may not reach (webhook-target.ts). */
async function checkTarget(targets: WebhookTargets, url: string): Promise<void> {
  try {
    await targets.resolve(url);
  } catch (error) {
    if (!(error instanceof WebhookTargetRefused)) throw error;
    throw new ApiError(400, 'validation_failed', `url: ${error.message}`, {
      details: [{ path: 'url', code: 'forbidden_target', message: error.message }],
    });
  }
}

/** Creates an endpoint that receives events from now on; the secret is returned once. */
export async function createWebhookEndpoint(
  ctx: Context,
  keyRing: KeyRing,
  targets: WebhookTargets,
  input: WebhookEndpointInput,
): Promise<{ endpoint: WebhookEndpointRow; secret: string }> {
  await checkTarget(targets, input.url);
  const secret = newSecret('webhookSecret');
  const now = ctx.now();
  const head = await ctx.db
    .selectFrom('event_feed')
    .select('head')
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
  const endpoint = await ctx.db
    .insertInto('webhook_endpoints')
    .values({
      id: newId('webhookEndpoint', now.getTime()),
      organization_id: input.organization_id ?? null,
      url: input.url,
      description: input.description ?? null,
      types: JSON.stringify(input.types ?? []),
      secret: keyRing.encrypt(secret),
      enabled: input.enabled ?? true,
      cursor_position: head.head,
      next_attempt_at: now,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { endpoint, secret };
}

export async function listWebhookEndpoints(
  ctx: Context,
  options: { limit: number; after?: string | undefined; organizationId?: string | undefined },
): Promise<Page<Schemas['WebhookEndpoint']>> {
  const after = decodeCursor(options.after);
  let query = ctx.db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .orderBy('id')
    .limit(options.limit + 1);
  if (after !== undefined) query = query.where('id', '>', after);
  if (options.organizationId !== undefined)
    query = query.where('organization_id', '=', options.organizationId);
  return toPage(await query.execute(), options.limit, (row) => row.id, toWebhookEndpoint);
}

export async function getWebhookEndpoint(ctx: Context, id: string): Promise<WebhookEndpointRow> {
  const row = await ctx.db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) throw notFound('webhook endpoint', id);
  return row;
}

export async function updateWebhookEndpoint(
  ctx: Context,
  targets: WebhookTargets,
  id: string,
  patch: Partial<WebhookEndpointInput>,
): Promise<WebhookEndpointRow> {
  if (patch.url !== undefined) await checkTarget(targets, patch.url);
  const changes: Record<string, unknown> = { updated_at: ctx.now() };
  if (patch.url !== undefined) changes.url = patch.url;
  if (patch.description !== undefined) changes.description = patch.description;
  if (patch.types !== undefined) changes.types = JSON.stringify(patch.types);
  if (patch.organization_id !== undefined) changes.organization_id = patch.organization_id;
  if (patch.enabled !== undefined) {
    changes.enabled = patch.enabled;
    // Re-enabling retries at once.
    if (patch.enabled) Object.assign(changes, { next_attempt_at: ctx.now() });
  }
  const row = await ctx.db
    .updateTable('webhook_endpoints')
    .set(changes)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!row) throw notFound('webhook endpoint', id);
  return row;
}

export async function deleteWebhookEndpoint(ctx: Context, id: string): Promise<void> {
  const deleted = await ctx.db.deleteFrom('webhook_endpoints').where('id', '=', id).executeTakeFirst();
  if (Number(deleted.numDeletedRows) === 0) throw notFound('webhook endpoint', id);
}

export async function listWebhookDeliveries(
  ctx: Context,
  endpointId: string,
  options: { limit: number; after?: string | undefined },
): Promise<Page<Schemas['WebhookDelivery']>> {
  await getWebhookEndpoint(ctx, endpointId);
  const after = decodeCursor(options.after);
  // Newest first: ids sort by time, so "after" walks back in time.
  let query = ctx.db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('endpoint_id', '=', endpointId)
    .orderBy('id', 'desc')
    .limit(options.limit + 1);
  if (after !== undefined) query = query.where('id', '<', after);
  return toPage(await query.execute(), options.limit, (row) => row.id, toWebhookDelivery);
}
