import { createHmac, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { Context } from '../context.js';
import type { WebhookEndpointRow } from '../db/schema.js';
import { newId } from '../ids.js';
import type { KeyRing } from '../key-ring.js';
import { encodeEventCursor } from './feed.js';
import { postToTarget, WebhookTargetRefused, WebhookTargets } from './webhook-target.js';

/**
 * Webhooks: each endpoint follows the feed with its own cursor, so deliveries to one endpoint are
 * in feed order, one event per request, and nothing is lost across restarts. A failed delivery is
 * retried with exponential backoff (2 s doubling, at most an hour apart) for up to 24 hours; then
 * the event is recorded as given up and the endpoint moves on. Every attempt is recorded.
 *
 * Signing: `Roster-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 * The body is serialised once and those exact bytes are both signed and sent.
 */

/** The signature header value for `body` sent at `timestamp` (unix seconds). */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${signature}`;
}

const GIVE_UP_AFTER_MS = 24 * 3_600_000;
/** The one error text of a delivery that got no HTTP response, whatever the reason. */
export const NO_RESPONSE = 'no HTTP response';
const MAX_BACKOFF_MS = 3_600_000;
const BATCH = 50;

export interface DispatcherOptions {
  ctx: Context;
  keyRing: KeyRing;
  /** Where deliveries may go; checked again at every attempt (default: no private addresses). */
  targets?: WebhookTargets;
  /** How often due endpoints are looked for (they are also woken when the feed advances). */
  pollMs?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** First retry delay; doubles per attempt up to an hour. */
  baseBackoffMs?: number;
  /**
   * How long a claim on an endpoint lasts; renewed before every attempt. Default: the request
   * timeout plus 20 s, so that a lease renewed before an attempt outlives the attempt.
   */
  leaseMs?: number;
}

/**
 * Delivers webhooks. Runs in every server process; an endpoint is leased by one process at a time
 * (claimed with `for update skip locked`). The lease is renewed before every attempt and every
 * write of the endpoint's state is conditional on still holding it at the cursor this process read:
 * a process that lost its lease (stalled past it) stops before sending anything more, so two
 * processes never deliver to one endpoint at once and deliveries stay in order.
 */
export class WebhookDispatcher {
  readonly #ctx: Context;
  readonly #keyRing: KeyRing;
  readonly #targets: WebhookTargets;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #timeoutMs: number;
  readonly #baseBackoffMs: number;
  readonly #owner = randomUUID();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;

  constructor(options: DispatcherOptions) {
    this.#ctx = options.ctx;
    this.#keyRing = options.keyRing;
    this.#targets = options.targets ?? new WebhookTargets();
    this.#pollMs = options.pollMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#leaseMs = options.leaseMs ?? this.#timeoutMs + 20_000;
    this.#baseBackoffMs = options.baseBackoffMs ?? 2000;
  }

  start(): void {
    this.#stopped = false;
    const tick = () => {
      if (this.#stopped) return;
      this.wake();
      this.#timer = setTimeout(tick, this.#pollMs);
      this.#timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }

  /** Looks for due deliveries soon (called when the feed advances). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
  }

  /** One pass over due endpoints; resolves when they are served. For tests. */
  async runOnce(): Promise<void> {
    await this.#running;
    await this.#pass();
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#pass();
      } catch (error) {
        this.#ctx.log.error({ err: error }, 'webhook dispatch failed; retrying at the next poll');
        return;
      }
    } while (this.#again && !this.#stopped);
  }

  async #pass(): Promise<void> {
    const now = this.#ctx.now();
    const { rows: claimed } = await sql<WebhookEndpointRow>`
      update webhook_endpoints set lease_owner = ${this.#owner}, lease_until = ${new Date(now.getTime() + this.#leaseMs)}
      where id in (
        select w.id from webhook_endpoints w
        where w.enabled and w.next_attempt_at <= ${now} and (w.lease_until is null or w.lease_until < ${now})
          and exists (
            select 1 from feed f
            where f.position > w.cursor_position
              and (jsonb_array_length(w.types) = 0 or jsonb_exists(w.types, f.type))
              and (w.organization_id is null or f.organization_id = w.organization_id))
        order by w.next_attempt_at
        limit 20
        for update skip locked)
      returning *`.execute(this.#ctx.db);
    await Promise.all(claimed.map((endpoint) => this.#serve(endpoint)));
  }

  async #serve(endpoint: WebhookEndpointRow): Promise<void> {
    const secret = this.#keyRing.decrypt(endpoint.secret);
    let current = endpoint;
    try {
      const events = await this.#ctx.db
        .selectFrom('feed as f')
        .innerJoin('events as e', 'e.seq', 'f.seq')
        .select(['f.position', 'e.id', 'e.type', 'e.organization_id', 'e.created_at', 'e.data', 'e.actor'])
        .where('f.position', '>', current.cursor_position)
        .$if(current.types.length > 0, (qb) => qb.where(sql<boolean>`f.type = any(${current.types}::text[])`))
        .$if(current.organization_id !== null, (qb) =>
          qb.where('f.organization_id', '=', current.organization_id),
        )
        .orderBy('f.position')
        .limit(BATCH)
        .execute();
      for (const event of events) {
        // Renew the lease before each attempt, and stop if it was lost or the cursor moved.
        const renewed = await this.#ctx.db
          .updateTable('webhook_endpoints')
          .set({ lease_until: new Date(this.#ctx.now().getTime() + this.#leaseMs) })
          .where('id', '=', current.id)
          .where('lease_owner', '=', this.#owner)
          .where('cursor_position', '=', current.cursor_position)
          .returningAll()
          .executeTakeFirst();
        if (!renewed) return;
        current = renewed;
        const body = JSON.stringify({
          object: 'event',
          id: event.id,
          type: event.type,
          organization_id: event.organization_id,
          created_at: event.created_at.toISOString(),
          ...(event.actor ? { actor: event.actor } : {}),
          cursor: encodeEventCursor(event.position),
          data: event.data,
        });
        const outcome = await this.#attempt(current, event.id, event.type, body, secret);
        const now = this.#ctx.now();
        const attempt = current.attempts + 1;
        if (
          outcome.ok ||
          (current.first_failure_at && now.getTime() - current.first_failure_at.getTime() >= GIVE_UP_AFTER_MS)
        ) {
          await this.#record(current, event, attempt, outcome.ok ? 'delivered' : 'gave_up', outcome);
          const moved = await this.#ctx.db
            .updateTable('webhook_endpoints')
            .set({
              cursor_position: event.position,
              attempts: 0,
              first_failure_at: null,
              next_attempt_at: now,
            })
            .where('id', '=', current.id)
            .where('lease_owner', '=', this.#owner)
            .where('cursor_position', '=', current.cursor_position)
            .returningAll()
            .executeTakeFirst();
          if (!moved) return;
          current = moved;
          continue;
        }
        await this.#record(current, event, attempt, 'failed', outcome);
        const backoff = Math.min(MAX_BACKOFF_MS, this.#baseBackoffMs * 2 ** (attempt - 1));
        await this.#ctx.db
          .updateTable('webhook_endpoints')
          .set({
            attempts: attempt,
            first_failure_at: current.first_failure_at ?? now,
            next_attempt_at: new Date(now.getTime() + backoff),
          })
          .where('id', '=', current.id)
          .where('lease_owner', '=', this.#owner)
          .where('cursor_position', '=', current.cursor_position)
          .execute();
        return;
      }
    } finally {
      await this.#ctx.db
        .updateTable('webhook_endpoints')
        .set({ lease_owner: null, lease_until: null })
        .where('id', '=', endpoint.id)
        .where('lease_owner', '=', this.#owner)
        .execute();
    }
  }

  async #attempt(
    endpoint: WebhookEndpointRow,
    eventId: string,
    eventType: string,
    body: string,
    secret: string,
  ): Promise<{ ok: boolean; status: number | null; error: string | null; durationMs: number }> {
    const started = performance.now();
    const timestamp = Math.floor(this.#ctx.now().getTime() / 1000);
    try {
      // Checked at every attempt, not only at creation: the host may resolve elsewhere since.
      const target = await this.#targets.resolve(endpoint.url);
      const status = await postToTarget(
        target,
        {
          'Content-Type': 'application/json',
          'User-Agent': 'Roster-Webhooks/1',
          'Roster-Event-Id': eventId,
          'Roster-Event-Type': eventType,
          'Roster-Signature': signWebhook(secret, timestamp, body),
        },
        body,
        this.#timeoutMs,
      );
      const ok = status >= 200 && status < 300;
      return {
        ok,
        status,
        error: ok ? null : `HTTP ${status}`,
        durationMs: performance.now() - started,
      };
    } catch (error) {
      if (error instanceof WebhookTargetRefused) {
        return { ok: false, status: null, error: error.message, durationMs: 0 };
      }
      // The delivery record is readable through the API: it must not tell a refused connection
      // from a filtered port or a timeout (a port scanner's oracle), by its text or its duration.
      // The operator finds the cause in the log.
      this.#ctx.log.info(
        { err: error, webhook_endpoint_id: endpoint.id, event_id: eventId },
        'webhook delivery got no HTTP response',
      );
      return { ok: false, status: null, error: NO_RESPONSE, durationMs: 0 };
    }
  }

  async #record(
    endpoint: WebhookEndpointRow,
    event: { id: string; type: string; position: number; organization_id: string | null },
    attempt: number,
    outcome: 'delivered' | 'failed' | 'gave_up',
    result: { status: number | null; error: string | null; durationMs: number },
  ): Promise<void> {
    const now = this.#ctx.now();
    await this.#ctx.db
      .insertInto('webhook_deliveries')
      .values({
        id: newId('webhookDelivery', now.getTime()),
        endpoint_id: endpoint.id,
        organization_id: event.organization_id,
        event_id: event.id,
        event_type: event.type,
        position: event.position,
        attempt,
        outcome,
        response_status: result.status,
        error: result.error,
        duration_ms: Math.round(result.durationMs * 100) / 100,
        created_at: now,
      })
      .execute();
  }
}
