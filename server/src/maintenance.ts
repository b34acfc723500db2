import type { Context } from './context.js';

/**
 * Periodic clean-up, the same in every process (each statement is idempotent, so processes may
 * overlap): purge users and groups soft-deleted longer than ROSTER_DELETED_RETENTION ago, and sync
 * log lines older than ROSTER_SYNC_LOG_RETENTION.
 */
export class Maintenance {
  readonly #ctx: Context;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PurgeCounts> | undefined;

  constructor(ctx: Context, intervalMs = 3_600_000) {
    this.#ctx = ctx;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    const tick = () => {
      void this.run().catch((error: unknown) => this.#ctx.log.warn({ err: error }, 'maintenance run failed'));
      this.#timer = setTimeout(tick, this.#intervalMs);
      this.#timer.unref();
    };
    // First run shortly after start, off the boot path.
    this.#timer = setTimeout(tick, 5_000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** One pass; concurrent calls share it. */
  run(): Promise<PurgeCounts> {
    this.#running ??= this.#purge().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #purge(): Promise<PurgeCounts> {
    const { db, settings } = this.#ctx;
    const now = this.#ctx.now().getTime();
    const deletedBefore = new Date(now - settings.deletedRetentionMs);
    // Group rows first: group_members of purged users cascade with them.
    const groups = await db
      .deleteFrom('groups')
      .where('deleted_at', 'is not', null)
      .where('deleted_at', '<', deletedBefore)
      .executeTakeFirst();
    const users = await db
      .deleteFrom('users')
      .where('deleted_at', 'is not', null)
      .where('deleted_at', '<', deletedBefore)
      .executeTakeFirst();
    const syncLog = await db
      .deleteFrom('sync_log')
      .where('created_at', '<', new Date(now - settings.syncLogRetentionMs))
      .executeTakeFirst();
    await db.deleteFrom('idempotency_keys').where('expires_at', '<', new Date(now)).execute();
    const counts = {
      users: Number(users.numDeletedRows),
      groups: Number(groups.numDeletedRows),
      syncLog: Number(syncLog.numDeletedRows),
    };
    if (counts.users || counts.groups || counts.syncLog)
      this.#ctx.log.info({ purged: counts }, 'retention purge');
    return counts;
  }
}

export interface PurgeCounts {
  users: number;
  groups: number;
  syncLog: number;
}
