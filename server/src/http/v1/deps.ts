import type { Authenticator } from '../../api-keys.js';
import type { Context } from '../../context.js';
import type { SyncLogWriter } from '../../directory/sync-log.js';
import type { WebhookTargets } from '../../events/webhook-target.js';
import type { KeyRing } from '../../key-ring.js';
import type { RateLimiter } from '../../rate-limit.js';
import type { SigningKeys } from '../../sessions/signing-keys.js';

export interface V1Deps {
  ctx: Context;
  /** The root key and the scoped API keys. */
  authenticator: Authenticator;
  /** Requests per second per API key. */
  rateLimiter: RateLimiter;
  bodyLimitBytes: number;
  syncLog: SyncLogWriter;
  keyRing: KeyRing;
  signingKeys: SigningKeys;
  /** Where webhooks may go (checked when an endpoint's URL is set). */
  webhookTargets: WebhookTargets;
  /** Resolves when the feed head passes `after` (or on timeout): the long-poll of GET /v1/events. */
  waitForFeed: (after: number, timeoutMs: number, signal?: AbortSignal) => Promise<number>;
}
