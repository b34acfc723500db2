import { sql } from 'kysely';
import type { Context } from './context.js';
import { foldIntoBaseline } from './directory/history.js';
import { purgePortal } from './portal/links.js';
import { purgeSessions } from './sessions/sessions.js';
import type { SigningKeys } from './sessions/signing-keys.js';

/**
 * Periodic clean-up, the same in every process (each statement is idempotent, so processes may
 * overlap): purge users and groups soft-deleted longer than ROSTER_DELETED_RETENTION ago, and
 * sessions ended as long ago; sync log lines older than ROSTER_SYNC_LOG_RETENTION; events past
 * ROSTER_EVENT_RETENTION; expired idempotency keys; retired signing keys whose tokens have all
 * expired; ended Admin Portal sessions and links.
 */
export class Maintenance {
  readonly #ctx: Context;
  readonly #signingKeys: SigningKeys | undefined;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PurgeCounts> | undefined;

  constructor(ctx: Context, signingKeys?: SigningKeys, intervalMs = 3_600_000) {
    this.#ctx = ctx;
    this.#signingKeys = signingKeys;
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
    await purgePortal(this.#ctx);
    const events = await this.#purgeEvents(new Date(now - settings.eventRetentionMs));
    // Ended sessions are kept as long as deleted users, for audit.
    const sessions = await purgeSessions(this.#ctx, settings.deletedRetentionMs);
    const signingKeys = (await this.#signingKeys?.purgeExpired()) ?? 0;
    const counts = {
      users: Number(users.numDeletedRows),
      groups: Number(groups.numDeletedRows),
      syncLog: Number(syncLog.numDeletedRows),
      events,
      sessions,
      signingKeys,
    };
    if (Object.values(counts).some((n) => n > 0)) {
      this.#ctx.log.info({ purged: counts }, 'retention purge');
    }
    return counts;
  }

  /**
   * Drops feed entries (and their events) older than the retention. `purged_through` moves first,
   * in the same transaction, so a reader behind it gets 410 cursor_expired instead of a silent gap.
   */
  async #purgeEvents(cutoff: Date): Promise<number> {
    return this.#ctx.db.transaction().execute(async (trx) => {
      const last = await trx
        .selectFrom('feed')
        .select('position')
        .where('created_at', '<', cutoff)
        .orderBy('position', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (!last) return 0;
      // The directory as of the dropped events lives on in the baseline (directory/history.ts).
      await foldIntoBaseline(trx, Number(last.position));
      await trx
        .updateTable('event_feed')
        .set({ purged_through: sql<number>`greatest(purged_through, ${last.position}::bigint)` })
        .where('id', '=', 1)
        .execute();
      const removed = await trx
        .deleteFrom('feed')
        .where('position', '<=', last.position)
        .returning('seq')
        .execute();
      for (let i = 0; i < removed.length; i += 10_000) {
        const seqs = removed.slice(i, i + 10_000).map((r) => r.seq);
        await sql`delete from events where seq = any(${seqs}::bigint[])`.execute(trx);
      }
      return removed.length;
    });
  }
}

export interface PurgeCounts {
  users: number;
  groups: number;
  syncLog: number;
  events: number;
  sessions: number;
  signingKeys: number;
}
